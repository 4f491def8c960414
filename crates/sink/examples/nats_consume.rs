//! Read back what a `--sink nats://…` crawl published: every message of a
//! JetStream stream, from the first, through a pull consumer that
//! acknowledges each one ([`trawl_sink::nats::read_all`]), written to
//! standard output as JSON Lines.
//!
//!   cargo run -p trawl-sink --example nats_consume -- nats://127.0.0.1:4222 TRAWL_ITEMS > items.jsonl

use std::io::Write as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let stream = args.next().unwrap_or_else(|| "TRAWL_ITEMS".into());
    let messages = trawl_sink::nats::read_all(&url, &stream).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for payload in &messages {
        out.write_all(payload)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!("{} items from the stream {stream}", messages.len());
    Ok(())
}
