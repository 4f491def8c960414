//! Distributed crawls through Redis: seeding (`trawl crawl --redis`),
//! joining (`trawl worker`) and a spider file run by every worker.
//!
//! The seeding process stores the crawl's *spec* (seeds and scope settings)
//! in Redis next to the frontier, so a worker started anywhere with only
//! `--redis URL --crawl NAME` crawls exactly the same scope.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use trawl_core::{CrawlStats, Frontier, Url};
use trawl_frontier::RedisFrontier;
use trawl_metrics::{Board, WorkerLive, WorkerRow};

use super::{Job, parse_seeds, terminal};

/// What every worker of a crawl must agree on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct CrawlSpec {
    seeds: Vec<String>,
    scope: String,
    include: Vec<String>,
    exclude: Vec<String>,
    max_depth: Option<u32>,
    max_url_len: usize,
}

impl CrawlSpec {
    fn new(seeds: &[Url], job: &Job) -> CrawlSpec {
        let s = &job.settings.settings;
        CrawlSpec {
            seeds: seeds.iter().map(|s| s.to_string()).collect(),
            scope: s.scope.to_string(),
            include: s.include.clone(),
            exclude: s.exclude.clone(),
            max_depth: s.max_depth,
            max_url_len: s.max_url_len,
        }
    }

    /// The worker's settings with the crawl's scope settings applied.
    fn apply(&self, job: &mut Job) -> anyhow::Result<Vec<Url>> {
        let s = &mut job.settings.settings;
        s.scope = self.scope.parse().map_err(anyhow::Error::msg)?;
        s.include = self.include.clone();
        s.exclude = self.exclude.clone();
        s.max_depth = self.max_depth;
        s.max_url_len = self.max_url_len;
        parse_seeds(&self.seeds)
    }
}

/// Connect to the crawl's Redis; `fresh` deletes what it held.
async fn connect(job: &Job, fresh: bool) -> anyhow::Result<Arc<RedisFrontier>> {
    let plan = job.plan(Vec::new())?;
    let frontier = plan.frontier.connect_redis().await?;
    if fresh {
        frontier
            .reset()
            .await
            .context("--fresh: deleting the crawl's previous keys")?;
    }
    Ok(frontier)
}

/// `trawl crawl --redis URL --crawl NAME SEEDS` (and `trawl run` of a
/// spider file with `--redis`): seed the crawl, then work on it.
pub async fn seed_and_work(mut job: Job, seeds: Vec<Url>) -> anyhow::Result<u8> {
    if job.run.resume || job.run.recrawl {
        bail!("--resume and --recrawl are for a --state crawl; a Redis crawl resumes by itself");
    }
    let frontier = connect(&job, job.run.fresh).await?;
    let name = job.settings.settings.crawl.clone();
    let seeds = if job.spider.is_some() {
        // The same file on every machine: each process offers its start
        // URLs (deduplicated) and works.
        seeds
    } else {
        let spec = CrawlSpec::new(&seeds, &job);
        match frontier.spec().await? {
            Some(stored) if !job.run.fresh => {
                let stored: CrawlSpec =
                    serde_json::from_slice(&stored).context("the crawl's stored spec")?;
                if stored != spec && !job.run.quiet {
                    eprintln!(
                        "trawl: crawl {name:?} already exists with other settings; continuing it as stored (use --fresh to start over)"
                    );
                }
            }
            _ => frontier.set_spec(&serde_json::to_vec(&spec)?).await?,
        }
        let stored = frontier.spec().await?.context("the crawl spec vanished")?;
        let stored: CrawlSpec = serde_json::from_slice(&stored)?;
        stored.apply(&mut job)?
    };
    frontier
        .push(
            seeds
                .iter()
                .cloned()
                .map(trawl_core::Request::seed)
                .collect(),
        )
        .await?;
    work(frontier, seeds, job).await
}

/// `trawl worker --redis URL --crawl NAME`: join a crawl.
pub async fn join(mut job: Job, wait_for_seed: Duration) -> anyhow::Result<u8> {
    let Some(url) = job.settings.settings.redis.clone() else {
        bail!("trawl worker needs --redis URL (and --crawl NAME)");
    };
    if job.run.fresh {
        bail!("--fresh is for the process that seeds the crawl, not for a worker");
    }
    let frontier = connect(&job, false).await?;
    let name = job.settings.settings.crawl.clone();
    let deadline = Instant::now() + wait_for_seed;
    let spec = loop {
        if let Some(spec) = frontier.spec().await? {
            break spec;
        }
        if Instant::now() >= deadline {
            bail!(
                "crawl {name:?} has not been seeded (run `trawl crawl --redis {url} --crawl {name} SEEDS`)"
            );
        }
        frontier.wait_ready(Duration::from_millis(250)).await;
    };
    let spec: CrawlSpec = serde_json::from_slice(&spec).context("the crawl's stored spec")?;
    let seeds = spec.apply(&mut job)?;
    work(frontier, seeds, job).await
}

async fn work(frontier: Arc<RedisFrontier>, seeds: Vec<Url>, job: Job) -> anyhow::Result<u8> {
    let mut plan = job.plan(seeds)?;
    plan.crawl.push_seeds = false;
    // Resume this worker's own output if it was killed (same --worker-id).
    let checkpoint = frontier.checkpoint().await?;
    let heartbeat = frontier.spawn_heartbeat(job.settings.settings.lease_timeout / 3);
    let stats = Arc::new(CrawlStats::default());
    // The worker id is the frontier's: the one its Redis rows carry.
    let identity = trawl_metrics::Identity {
        worker: frontier.worker_id().to_string(),
        ..terminal::identity(&job)
    };
    let board = terminal::board(identity, &job, stats.clone());
    // Report progress to the crawl's counters every second, and once more
    // at the end; publish this worker's live figures and read every
    // worker's for the dashboard.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reporter = {
        let frontier = frontier.clone();
        let stats = stats.clone();
        let board = board.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            let mut last = (0, 0);
            loop {
                let stopping = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    _ = &mut stop_rx => true,
                };
                let now = (stats.pages.load(Relaxed), stats.errors.load(Relaxed));
                if now != last {
                    match frontier.record_done(now.0, now.1).await {
                        Ok(()) => last = now,
                        Err(error) => tracing::warn!(%error, "Progress report failed."),
                    }
                }
                if stopping {
                    return;
                }
                let live = WorkerLive::of(&stats.snapshot(started.elapsed()));
                if let Err(error) = publish_and_read_workers(&frontier, &live, &board).await {
                    tracing::warn!(%error, "Worker figures not shared.");
                }
            }
        })
    };
    let dyn_frontier: Arc<dyn Frontier> = frontier.clone();
    let (engine, sinks) = job.engine(&plan, stats, checkpoint.as_deref()).await?;
    // Every worker checks its pages against every worker's.
    let engine = engine.with_content_index(Arc::new(
        frontier.content_index(plan.frontier.near_distance),
    ));
    let code = terminal::run(engine, dyn_frontier, sinks, &job, board).await;
    let _ = stop_tx.send(());
    let _ = reporter.await;
    heartbeat.abort();
    code
}

/// Publish this worker's live figures and refresh the board's table of
/// the crawl's live workers (each with the figures it last published).
async fn publish_and_read_workers(
    frontier: &RedisFrontier,
    live: &WorkerLive,
    board: &Board,
) -> anyhow::Result<()> {
    frontier.publish_live(&serde_json::to_string(live)?).await?;
    let status = frontier.status().await?;
    let ids: Vec<String> = status.workers.iter().map(|w| w.id.clone()).collect();
    let figures = frontier.workers_live(&ids).await?;
    let rows = status
        .workers
        .iter()
        .zip(figures)
        .map(|(w, figures)| WorkerRow {
            id: w.id.clone(),
            pages: w.pages,
            errors: w.errors,
            leases: w.leases,
            silent_ms: w.silent_for(status.server_time_ms).as_millis() as u64,
            live: figures.and_then(|json| serde_json::from_str(&json).ok()),
        })
        .collect();
    board.set_workers(rows);
    Ok(())
}
