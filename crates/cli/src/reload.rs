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

use trawl_settings::{Effective, SpiderParts};

use crate::crawl::Job;

/// How often the proxy files' modification times are looked at.
const POLL: Duration = Duration::from_secs(2);

type Lists = Vec<(String, Vec<ProxySpec>)>;

/// Have `engine` take new proxy lists while it runs, when the crawl reads
/// any from files (or has proxies at all: SIGHUP re-reads `--proxy`,
/// `TRAWL_PROXIES` and the files).
pub fn attach(engine: Engine, job: &Job) -> Engine {
    let settings = job.settings.clone();
    let parts = job.parts();
    let Ok(first) = settings.proxy_lists(&parts) else {
        return engine;
    };
    if first.iter().all(|(_, list)| list.is_empty()) {
        return engine;
    }
    let (tx, rx) = tokio::sync::watch::channel(first);
    let quiet = job.run.quiet;
    tokio::spawn(async move { watch(settings, parts, quiet, tx).await });
    engine.with_proxy_reloads(rx)
}

fn modified(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

async fn watch(
    settings: Effective,
    parts: SpiderParts,
    quiet: bool,
    tx: tokio::sync::watch::Sender<Lists>,
) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(error) => {
            tracing::warn!(%error, "Cannot listen for SIGHUP; proxy files are still watched.");
            None
        }
    };
    let files = settings.proxy_files();
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
        match settings.proxy_lists(&parts) {
            Ok(lists) => {
                if !quiet {
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
