//! `trawl serve`: the Scraper API on a port, until SIGINT or SIGTERM.

use anyhow::Context;

use crate::args::ServeArgs;

pub async fn run(args: &ServeArgs) -> anyhow::Result<u8> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let cfg = trawl_api::ApiConfig {
        allow_private: args.allow_private,
        allow_addresses: args.allow_address.clone(),
        obey_robots: !args.ignore_robots,
        timeout: args.timeout,
        ..trawl_api::ApiConfig::default()
    };
    if args.allow_private {
        eprintln!(
            "trawl: the address guard is OFF (--allow-private): requests may reach this machine and its network."
        );
    }
    eprintln!("trawl: serving the Scraper API on http://{addr}");
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    };
    trawl_api::serve(listener, cfg, stop)
        .await
        .context("serving the API")?;
    Ok(0)
}
