//! Distributed crawls through Redis: seeding (`trawl crawl --redis`),
//! joining (`trawl worker`) and watching (`trawl status`).
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
use trawl_engine::Engine;
use trawl_frontier::{RedisFrontier, RedisFrontierConfig};
use trawl_spider::Spider;

use crate::args::{CrawlOpts, StatusArgs};
use crate::run::{crawl_config, output_specs, parse_seeds, run_engine_custom};
use crate::sinks::OutputContext;
use crate::spider::SpiderRun;

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
    fn from_opts(seeds: &[Url], o: &CrawlOpts) -> CrawlSpec {
        CrawlSpec {
            seeds: seeds.iter().map(|s| s.to_string()).collect(),
            scope: match o.scope {
                trawl_core::ScopeMode::Host => "host",
                trawl_core::ScopeMode::Domain => "domain",
                trawl_core::ScopeMode::Prefix => "prefix",
                trawl_core::ScopeMode::Any => "any",
            }
            .to_string(),
            include: o.include.clone(),
            exclude: o.exclude.clone(),
            max_depth: o.max_depth,
            max_url_len: o.max_url_len,
        }
    }

    /// The worker's options with the crawl's scope settings applied.
    fn apply(&self, o: &CrawlOpts) -> anyhow::Result<(Vec<Url>, CrawlOpts)> {
        let mut o = o.clone();
        o.scope = self.scope.parse().map_err(anyhow::Error::msg)?;
        o.include = self.include.clone();
        o.exclude = self.exclude.clone();
        o.max_depth = self.max_depth;
        o.max_url_len = self.max_url_len;
        Ok((parse_seeds(&self.seeds)?, o))
    }
}

async fn connect(url: &str, o: &CrawlOpts) -> anyhow::Result<Arc<RedisFrontier>> {
    let mut cfg = RedisFrontierConfig::new(url, o.crawl.clone());
    if let Some(id) = &o.worker_id {
        cfg.worker_id = id.clone();
    }
    // Each exit may send --per-host requests to a host.
    cfg.host_limit = crate::run::crawl_config(Vec::new(), o)?
        .fetch
        .host_concurrency();
    cfg.host_delay = o.delay;
    cfg.lease_timeout = o.lease_timeout;
    let frontier = RedisFrontier::connect(cfg)
        .await
        .with_context(|| format!("connecting to the crawl {:?} at {url}", o.crawl))?;
    Ok(Arc::new(frontier))
}

/// `trawl crawl --redis URL --crawl NAME SEEDS`: seed the crawl, then work on it.
pub async fn crawl(url: &str, seeds: Vec<Url>, o: &CrawlOpts) -> anyhow::Result<u8> {
    let frontier = connect(url, o).await?;
    if o.fresh {
        frontier
            .reset()
            .await
            .context("--fresh: deleting the crawl's previous keys")?;
    }
    let spec = CrawlSpec::from_opts(&seeds, o);
    match frontier.spec().await? {
        Some(stored) if !o.fresh => {
            let stored: CrawlSpec =
                serde_json::from_slice(&stored).context("the crawl's stored spec")?;
            if stored != spec && !o.quiet {
                eprintln!(
                    "trawl: crawl {:?} already exists with other settings; continuing it as stored (use --fresh to start over)",
                    o.crawl
                );
            }
        }
        _ => frontier.set_spec(&serde_json::to_vec(&spec)?).await?,
    }
    let stored = frontier.spec().await?.context("the crawl spec vanished")?;
    let stored: CrawlSpec = serde_json::from_slice(&stored)?;
    let (seeds, opts) = stored.apply(o)?;
    frontier
        .push(
            seeds
                .iter()
                .cloned()
                .map(trawl_core::Request::seed)
                .collect(),
        )
        .await?;
    work(frontier, seeds, &opts, None).await
}

/// `trawl worker --redis URL --crawl NAME`: join a crawl.
pub async fn worker(url: &str, o: &CrawlOpts, wait_for_seed: Duration) -> anyhow::Result<u8> {
    let frontier = connect(url, o).await?;
    let deadline = Instant::now() + wait_for_seed;
    let spec = loop {
        if let Some(spec) = frontier.spec().await? {
            break spec;
        }
        if Instant::now() >= deadline {
            bail!(
                "crawl {:?} has not been seeded (run `trawl crawl --redis {url} --crawl {} SEEDS`)",
                o.crawl,
                o.crawl
            );
        }
        frontier.wait_ready(Duration::from_millis(250)).await;
    };
    let spec: CrawlSpec = serde_json::from_slice(&spec).context("the crawl's stored spec")?;
    let (seeds, opts) = spec.apply(o)?;
    work(frontier, seeds, &opts, None).await
}

/// `trawl run spider.toml --redis URL --crawl NAME`: every process given the
/// same spider file offers its start URLs (deduplicated) and works.
pub async fn run_spider(url: &str, run: SpiderRun, o: &CrawlOpts) -> anyhow::Result<u8> {
    let frontier = connect(url, o).await?;
    if o.fresh {
        frontier
            .reset()
            .await
            .context("--fresh: deleting the crawl's previous keys")?;
    }
    let seeds = run.spider.start_urls();
    frontier
        .push(
            seeds
                .iter()
                .cloned()
                .map(trawl_core::Request::seed)
                .collect(),
        )
        .await?;
    work(frontier, seeds, o, Some(run)).await
}

async fn work(
    frontier: Arc<RedisFrontier>,
    seeds: Vec<Url>,
    o: &CrawlOpts,
    spider: Option<SpiderRun>,
) -> anyhow::Result<u8> {
    let mut cfg = crawl_config(seeds, o)?;
    cfg.push_seeds = false;
    // Resume this worker's own output if it was killed (same --worker-id).
    let checkpoint = frontier.checkpoint().await?;
    let heartbeat = frontier.spawn_heartbeat(o.lease_timeout / 3);
    let stats = Arc::new(CrawlStats::default());
    // Report progress to the crawl's counters every second, and once more at the end.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reporter = {
        let frontier = frontier.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut last = (0, 0);
            loop {
                let stopping = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    _ = &mut stop_rx => true,
                };
                let now = (stats.pages.load(Relaxed), stats.errors.load(Relaxed));
                if now != last {
                    match frontier.record_done(now.0 - last.0, now.1 - last.1).await {
                        Ok(()) => last = now,
                        Err(error) => tracing::warn!(%error, "Progress report failed."),
                    }
                }
                if stopping {
                    return;
                }
            }
        })
    };
    let dyn_frontier: Arc<dyn Frontier> = frontier.clone();
    let (engine, sinks) = match spider {
        Some(run) => {
            run.engine(cfg, stats.clone(), checkpoint.as_deref(), o.append)
                .await?
        }
        None => {
            let specs = output_specs(o, Vec::new())?;
            let ctx = OutputContext {
                checkpoint: checkpoint.as_deref(),
                append: o.append,
                ..OutputContext::default()
            };
            let sinks = crate::sinks::open_all(&specs, &ctx).await?;
            (Engine::new(cfg, stats.clone()), sinks)
        }
    };
    let code = run_engine_custom(engine, dyn_frontier, sinks, o).await;
    let _ = stop_tx.send(());
    let _ = reporter.await;
    heartbeat.abort();
    code
}

/// `trawl status`: one snapshot of a crawl.
pub async fn status(args: &StatusArgs) -> anyhow::Result<u8> {
    let mut cfg = RedisFrontierConfig::new(args.redis.clone(), args.crawl.clone());
    cfg.worker_id = format!("status-{}", std::process::id());
    let frontier = RedisFrontier::connect(cfg)
        .await
        .with_context(|| format!("connecting to {}", args.redis))?;
    let st = frontier.status().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(0);
    }
    println!("crawl {}", st.crawl);
    println!(
        "  queued {} | leased {} | seen {} | hosts {} (ready {}, at limit {})",
        st.frontier.queued,
        st.frontier.leased,
        st.frontier.seen,
        st.frontier.hosts,
        st.ready_hosts,
        st.full_hosts
    );
    println!(
        "  pages done {} | errors {} | expired leases {} | reclaimed {}",
        st.pages, st.errors, st.expired_leases, st.reclaimed
    );
    // `trawl status` processes register like workers; leave them out.
    let workers: Vec<_> = st
        .workers
        .iter()
        .filter(|w| !w.id.starts_with("status-"))
        .collect();
    println!(
        "  workers: {} live, {} silent",
        workers.len(),
        st.dead_workers
    );
    for w in workers {
        println!(
            "    {}  pages {}  errors {}  leases {}  {:.1} pages/s  last seen {:.1}s ago",
            w.id,
            w.pages,
            w.errors,
            w.leases,
            w.pages_per_sec(),
            w.silent_for(st.server_time_ms).as_secs_f64()
        );
    }
    Ok(0)
}
