//! Reloading proxy lists while a crawl runs: on SIGHUP, or when a proxy
//! file (`--proxy-file`, `--proxy-pool NAME=@FILE`) changes on disk.
//!
//! The lists are read again exactly as at start (a broken file is reported
//! with its line and the crawl keeps the list it has) and handed to the
//! engine, which replaces each pool's list in place: proxies still listed
//! keep their health and pace, new ones join, dropped ones stop being used.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use trawl_engine::Engine;
use trawl_fetch::proxy::ProxySpec;

use crate::args::CrawlOpts;

/// How often the proxy files' modification times are looked at.
const POLL: Duration = Duration::from_secs(2);

type Lists = Vec<(String, Vec<ProxySpec>)>;

/// Have `engine` take new proxy lists while it runs, when the crawl reads
/// any from files (or has proxies at all: SIGHUP re-reads `--proxy`,
/// `TRAWL_PROXIES` and the files).
pub fn attach(engine: Engine, o: &CrawlOpts) -> Engine {
    let Ok(first) = read_lists(o) else {
        return engine;
    };
    if first.iter().all(|(_, list)| list.is_empty()) {
        return engine;
    }
    let (tx, rx) = tokio::sync::watch::channel(first);
    let o = o.clone();
    tokio::spawn(async move { watch(o, tx).await });
    engine.with_proxy_reloads(rx)
}

/// Every pool's list as the command line and files give it now.
fn read_lists(o: &CrawlOpts) -> anyhow::Result<Lists> {
    let mut lists = vec![(
        trawl_fetch::proxy::DEFAULT.to_string(),
        crate::run::read_proxies(o)?,
    )];
    for pool in crate::run::read_proxy_pools(o)? {
        lists.push((pool.name, pool.proxies));
    }
    Ok(lists)
}

/// The proxy files named on the command line.
fn files(o: &CrawlOpts) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = o.proxy_file.iter().cloned().collect();
    for flag in &o.proxy_pools {
        if let Some((_, list)) = flag.split_once('=')
            && let Some(path) = list.trim().strip_prefix('@')
        {
            files.push(PathBuf::from(path));
        }
    }
    files
}

fn modified(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

async fn watch(o: CrawlOpts, tx: tokio::sync::watch::Sender<Lists>) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(error) => {
            tracing::warn!(%error, "Cannot listen for SIGHUP; proxy files are still watched.");
            None
        }
    };
    let files = files(&o);
    let mut seen = modified(&files);
    loop {
        let why = tokio::select! {
            _ = tokio::time::sleep(POLL) => {
                let now = modified(&files);
                if now == seen {
                    continue;
                }
                seen = now;
                "a proxy file changed"
            }
            _ = async {
                match hangup.as_mut() {
                    Some(h) => { h.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => "SIGHUP",
        };
        match read_lists(&o) {
            Ok(lists) => {
                if !o.quiet {
                    let total: usize = lists.iter().map(|(_, l)| l.len()).sum();
                    crate::progress::clear();
                    eprintln!("trawl: {why}: reloading the proxy lists ({total} proxies)");
                }
                if tx.send(lists).is_err() {
                    return;
                }
            }
            Err(error) => {
                crate::progress::clear();
                eprintln!("trawl: {why}, but the proxy lists were not reloaded: {error:#}");
            }
        }
    }
}
