//! Read back what a `--sink amqp://…` crawl published: every message ready
//! in a queue, through a consumer with manual acknowledgements (the queue
//! is drained; [`trawl_sink::amqp::read_all`]), written to standard output
//! as JSON Lines, each `message_id` once (the sink delivers at least once:
//! a retried batch or a resumed crawl may publish an item again).
//!
//!   cargo run -p trawl-sink --example amqp_consume -- amqp://guest:guest@127.0.0.1:5672/%2f trawl_items > items.jsonl
//!
//! `--delete` after the queue also deletes the queue once drained (only if
//! nothing was published to it meanwhile). Standard error ends with
//! `N messages, M distinct ids` for scripts.

use std::io::Write as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let queue = args
        .next()
        .unwrap_or_else(|| trawl_sink::amqp::DEFAULT_QUEUE.into());
    let delete = match args.next().as_deref() {
        None => false,
        Some("--delete") => true,
        Some(other) => return Err(format!("unexpected argument {other:?}").into()),
    };
    let messages = trawl_sink::amqp::read_all(&url, &queue).await?;
    let read = messages.len();
    let (messages, dropped) = trawl_sink::amqp::dedupe(messages);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for message in &messages {
        out.write_all(&message.payload)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if delete {
        trawl_sink::amqp::delete_queue(&url, &queue, true).await?;
        eprintln!("deleted the queue {queue}");
    }
    eprintln!(
        "{read} messages from the queue {queue} ({dropped} repeated ids left out): {read} messages, {} distinct ids",
        read - dropped
    );
    Ok(())
}
