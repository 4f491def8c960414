//! The terminal side of a crawl: signals, the progress line, the
//! summary, the stats file and the exit status.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use trawl_core::{CrawlStats, Frontier, Sink, Spider};
use trawl_engine::{Engine, Shutdown};
use trawl_metrics::{Board, Identity};

use super::Job;
use crate::args::RunFlags;
use crate::progress;

/// Exit code of a crawl stopped by a signal (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// Who this crawl is in logs, metrics and the dashboard: the distributed
/// crawl's name (else the spider's, else `local`) and the worker id.
pub fn identity(job: &Job) -> Identity {
    let settings = &job.settings.settings;
    let crawl = if settings.redis.is_some() {
        settings.crawl.clone()
    } else {
        job.spider
            .as_ref()
            .map_or_else(|| "local".to_string(), |s| s.spider.name().to_string())
    };
    let worker = settings
        .worker_id
        .clone()
        .unwrap_or_else(crate::logs::process_worker_id);
    Identity { crawl, worker }
}

/// The metrics board of a crawl, known as `identity`, whose counters are
/// `stats`.
pub fn board(identity: Identity, job: &Job, stats: Arc<CrawlStats>) -> Arc<Board> {
    let mut board = Board::single(identity, stats);
    board.host_series = job.run.metrics_hosts;
    Arc::new(board)
}

/// Serve `board` on `--metrics-addr`, if given, saying where.
pub async fn serve_metrics(
    o: &RunFlags,
    board: Arc<Board>,
) -> anyhow::Result<Option<trawl_metrics::MetricsServer>> {
    let Some(addr) = &o.metrics_addr else {
        return Ok(None);
    };
    let server = trawl_metrics::serve(addr, board)
        .await
        .context("--metrics-addr")?;
    if !o.quiet {
        eprintln!(
            "trawl: metrics on http://{0}/metrics, dashboard on http://{0}/dashboard",
            server.addr
        );
    }
    Ok(Some(server))
}

/// Run a prepared engine with the terminal UI: signals, progress line,
/// summary, the stats file, and the metrics server (`--metrics-addr`)
/// showing `board`.
pub async fn run(
    engine: Engine,
    frontier: Arc<dyn Frontier>,
    sinks: Vec<Box<dyn Sink>>,
    job: &Job,
    board: Arc<Board>,
) -> anyhow::Result<u8> {
    let o = &job.run;
    if let Some(path) = &o.stats_json {
        check_writable(path).context("--stats-json")?;
    }
    let ids = board.identity();
    crate::logs::set_ids(&ids.crawl, &ids.worker);
    let metrics = serve_metrics(o, board.clone()).await?;
    let engine = crate::reload::attach(engine, job);
    let stats = engine.stats().clone();
    let shutdown = Shutdown::default();
    let signals = tokio::spawn(watch_signals(shutdown.clone(), o.quiet));
    let show_progress = !o.quiet && (o.progress || std::io::stderr().is_terminal());
    let progress_task = show_progress.then(|| tokio::spawn(progress::run(stats.clone())));

    let result = engine.run(frontier, sinks, shutdown.clone()).await;
    if let Some(task) = progress_task {
        task.abort();
        let _ = task.await;
        progress::clear();
    }
    signals.abort();
    let report = result.context("crawl failed")?;
    if !o.quiet {
        eprint!("{}", progress::summary(&report.stats, report.left_queued));
        for e in &report.sink_errors {
            eprintln!("  sink error    {e}");
        }
    }
    if let Some(path) = &o.stats_json {
        let mut value = serde_json::to_value(&report.stats)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("left_queued".into(), report.left_queued.into());
            map.insert("sink_errors".into(), report.sink_errors.clone().into());
        }
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(server) = metrics {
        if let Some(linger) = o.metrics_linger.filter(|_| !shutdown.is_triggered()) {
            linger_until_signal(linger).await;
        }
        server.stop();
    }
    if !report.sink_errors.is_empty() {
        return Ok(1);
    }
    if let Some(why) = nothing_fetched(&report.stats) {
        eprintln!("trawl: nothing was fetched: {why}");
        return Ok(EXIT_NOTHING_FETCHED);
    }
    Ok(if report.stats.interrupted {
        EXIT_INTERRUPTED
    } else {
        0
    })
}

/// Wait `linger`, or less if SIGINT or SIGTERM comes.
async fn linger_until_signal(linger: std::time::Duration) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::time::sleep(linger) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Fail now, not after the crawl, when `path` cannot be written (a missing
/// directory, no permission). Leaves no file behind that was not there.
fn check_writable(path: &std::path::Path) -> anyhow::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("{} cannot be written", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Exit status of a crawl that ran to its end without one good page.
pub const EXIT_NOTHING_FETCHED: u8 = 1;

/// Why a crawl that ran to its end has nothing to show: every page it
/// tried failed (the seeds included), or robots.txt kept it from trying.
/// `None` when some page arrived, when nothing was left to do (a finished
/// crawl resumed), or when the crawl was stopped early.
fn nothing_fetched(s: &trawl_core::stats::StatsSnapshot) -> Option<String> {
    // A recrawl's 304s are pages fetched (and found unchanged).
    if s.pages_ok + s.unchanged > 0 || s.interrupted || s.output_closed {
        return None;
    }
    if s.robots_denied > 0 && s.robots_denied >= s.pages {
        return Some(format!(
            "robots.txt disallows every URL tried ({} denied; an unreachable robots.txt disallows its host): --ignore-robots crawls anyway",
            s.robots_denied
        ));
    }
    (s.pages > 0).then(|| {
        format!(
            "all {} pages failed ({} requests, {} retries); the items' \"error\" fields say why",
            s.pages, s.requests, s.retries
        )
    })
}

/// First SIGINT/SIGTERM: graceful stop. Second: exit at once, but only
/// between two output batches, so no file is left with half a line.
async fn watch_signals(shutdown: Shutdown, quiet: bool) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(error) => {
            tracing::warn!(%error, "Cannot listen for SIGTERM.");
            None
        }
    };
    let mut count = 0;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        count += 1;
        if count == 1 {
            if !quiet {
                progress::clear();
                eprintln!(
                    "trawl: stopping: no new fetches, draining the pipeline (press Ctrl-C again to quit now)"
                );
            }
            shutdown.trigger();
        } else {
            let _guard = trawl_sink::output_lock().lock();
            eprintln!("\ntrawl: quitting now");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    }
}
