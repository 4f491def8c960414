//! The scheduler loop and the wiring of the pipeline stages.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use trawl_core::Spider;
use trawl_core::{
    CrawlStats, Frontier, FrontierError, Lease, Request, Scope, ScopeError, Sink, StatsSnapshot,
    canonicalize,
};
use trawl_fetch::{FetchError, Fetcher, RequestOptions};

use crate::config::CrawlConfig;
use crate::parse::{Fetched, ParseContext, Parsed};
use crate::shutdown::Shutdown;
use crate::stages;

/// How long the scheduler waits for a lease batch's worth of free slots.
const LEASE_LINGER: Duration = Duration::from_millis(2);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no valid http(s) seed URL")]
    NoSeeds,
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error("building the downloader: {0}")]
    Downloader(FetchError),
    #[error(transparent)]
    Frontier(#[from] FrontierError),
}

/// How a crawl ended.
#[derive(Debug, Clone)]
pub struct CrawlReport {
    pub stats: StatsSnapshot,
    /// Requests still queued (a stopped or capped crawl leaves some).
    pub left_queued: u64,
    /// Sinks that failed to write some batch.
    pub sink_errors: Vec<String>,
}

/// Runs crawls. See the crate documentation for the data flow.
pub struct Engine {
    cfg: CrawlConfig,
    stats: Arc<CrawlStats>,
    spider: Option<Arc<dyn Spider>>,
    pipeline: Option<Arc<trawl_pipeline::Pipeline>>,
    /// Where spider error records go (taken by `run`).
    error_sinks: parking_lot::Mutex<Vec<Box<dyn Sink>>>,
    proxy_reloads: Option<ProxyReloads>,
    /// Fetches pages instead of a downloader built from the config.
    fetcher: Option<Arc<dyn Fetcher>>,
    /// The duplicate index (default: in memory).
    index: Option<Arc<dyn trawl_traps::ContentIndex>>,
}

/// New proxy lists for named pools (`default` for `--proxy`), sent while
/// the crawl runs (on SIGHUP, or when a proxy file changes).
pub type ProxyReloads =
    tokio::sync::watch::Receiver<Vec<(String, Vec<trawl_fetch::proxy::ProxySpec>)>>;

/// Shared by the fetch tasks.
pub(crate) struct FetchContext {
    pub(crate) fetcher: Arc<dyn Fetcher>,
    pub(crate) scope: Scope,
    pub(crate) frontier: Arc<dyn Frontier>,
    pub(crate) parse_tx: async_channel::Sender<Fetched>,
}

impl Engine {
    pub fn new(cfg: CrawlConfig, stats: Arc<CrawlStats>) -> Engine {
        Engine {
            cfg,
            stats,
            spider: None,
            pipeline: None,
            error_sinks: parking_lot::Mutex::new(Vec::new()),
            proxy_reloads: None,
            fetcher: None,
            index: None,
        }
    }

    /// Keep the duplicate index in `index` (the `--state` directory's, or
    /// Redis for a distributed crawl) instead of in memory.
    pub fn with_content_index(mut self, index: Arc<dyn trawl_traps::ContentIndex>) -> Engine {
        self.index = Some(index);
        self
    }

    /// Fetch pages with `fetcher` instead of a downloader built from the
    /// config (`fetch` and `render` are then unused).
    pub fn with_fetcher(mut self, fetcher: Arc<dyn Fetcher>) -> Engine {
        self.fetcher = Some(fetcher);
        self
    }

    /// Apply the proxy lists that arrive on `reloads` to the running crawl.
    pub fn with_proxy_reloads(mut self, reloads: ProxyReloads) -> Engine {
        self.proxy_reloads = Some(reloads);
        self
    }

    /// Parse pages with `spider` (its items replace the page records) and
    /// write its error records to `error_sinks`.
    pub fn with_spider(
        mut self,
        spider: Arc<dyn Spider>,
        error_sinks: Vec<Box<dyn Sink>>,
    ) -> Engine {
        self.spider = Some(spider);
        self.error_sinks = parking_lot::Mutex::new(error_sinks);
        self
    }

    /// Run every item through `pipeline` (on the parse pool) before the sinks.
    pub fn with_pipeline(mut self, pipeline: Arc<trawl_pipeline::Pipeline>) -> Engine {
        self.pipeline = (!pipeline.is_empty()).then_some(pipeline);
        self
    }

    pub fn stats(&self) -> &Arc<CrawlStats> {
        &self.stats
    }

    /// Crawl until the frontier is exhausted, a limit is reached or
    /// `shutdown` is triggered; then drain the pipeline and close the sinks.
    ///
    /// The stages (`crate::stages`): the downloader (with the browser when
    /// pages may be rendered), the parse pool, the router, the sink stage,
    /// sitemap seeding and proxy reloads in the background; then the
    /// scheduler runs until done and every stage drains in turn.
    pub async fn run(
        &self,
        frontier: Arc<dyn Frontier>,
        sinks: Vec<Box<dyn Sink>>,
        shutdown: Shutdown,
    ) -> Result<CrawlReport, EngineError> {
        let started = Instant::now();
        let cfg = &self.cfg;
        let stats = self.stats.clone();
        let seeds: Vec<_> = cfg.seeds.iter().cloned().filter_map(canonicalize).collect();
        if seeds.is_empty() {
            return Err(EngineError::NoSeeds);
        }
        let scope = Scope::new(&seeds, cfg.scope.clone())?;
        let wants_exchanges = sinks.iter().any(|s| s.wants_exchanges());
        let fetcher: Arc<dyn Fetcher> = match &self.fetcher {
            Some(f) => f.clone(),
            None => Arc::new(stages::downloader(cfg, &stats, wants_exchanges).await?),
        };
        if cfg.push_seeds {
            frontier
                .push(seeds.iter().cloned().map(Request::seed).collect())
                .await?;
        }

        // Stage queues. Small and bounded: they exist to keep every stage
        // busy, not to store work.
        let parse_threads = cfg.parse_threads.max(1);
        let (parse_tx, parse_rx) = async_channel::bounded::<Fetched>(parse_threads * 4);
        let (route_tx, route_rx) = async_channel::bounded::<Parsed>(parse_threads * 4);
        let (item_tx, item_rx) = mpsc::channel(cfg.batch_size * 2);
        register_queues(&stats, &parse_tx, &route_tx, &item_tx);

        let parse_ctx = Arc::new(ParseContext {
            scope: scope.clone(),
            spider: self.spider.clone(),
            max_depth: cfg.max_depth,
            stats: stats.clone(),
            pipeline: self.pipeline.clone(),
            render_dir: cfg.render_dir.clone(),
            near_distance: cfg.duplicates.near_distance,
            simhash: cfg.duplicates.policy != crate::DuplicatePolicy::Off,
        });
        let workers = stages::parse_pool(parse_threads, parse_ctx, parse_rx, route_tx);
        let error_sinks = std::mem::take(&mut *self.error_sinks.lock());
        let sink_task = tokio::spawn(crate::sink_stage::run(
            item_rx,
            sinks,
            error_sinks,
            cfg.batch_size,
            cfg.sinks.clone(),
            crate::sink_stage::Crawl {
                stats: stats.clone(),
                frontier: frontier.clone(),
                shutdown: shutdown.clone(),
            },
        ));
        let index = (cfg.duplicates.policy != crate::DuplicatePolicy::Off).then(|| {
            self.index.clone().unwrap_or_else(|| {
                Arc::new(trawl_traps::MemoryIndex::new(cfg.duplicates.near_distance))
            })
        });
        let router = crate::router::Router {
            frontier: frontier.clone(),
            stats: stats.clone(),
            index,
            cfg: cfg.duplicates.clone(),
        }
        .spawn(route_rx, item_tx);

        let ctx = Arc::new(FetchContext {
            fetcher,
            scope,
            frontier: frontier.clone(),
            parse_tx,
        });
        let seeding_done = stages::sitemap_seeding(cfg.sitemaps, &ctx, &seeds, &stats);
        let reloader = self
            .proxy_reloads
            .clone()
            .map(|reloads| stages::proxy_reloader(reloads, ctx.clone()));
        let stopper = stages::retry_stopper(shutdown.clone(), ctx.clone());
        let sizes = stages::frontier_sizes(frontier.clone(), stats.clone());

        self.schedule(&ctx, &shutdown, &seeding_done).await;
        stopper.abort();
        sizes.abort();
        if let Some(task) = reloader {
            task.abort();
        }
        // Every fetch is done: no page needs the browser any more.
        ctx.fetcher.finish().await;

        // Drain: the last fetch tasks finished inside `schedule`; closing the
        // parse queue lets each stage finish in turn.
        drop(ctx);
        for worker in workers {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        let _ = router.await;
        let sink_errors = sink_task
            .await
            .unwrap_or_else(|e| vec![format!("sink stage: {e}")]);

        let fstats = frontier.stats().await?;
        stats.queued.store(fstats.queued, Ordering::Relaxed);
        stats.leased.store(fstats.leased, Ordering::Relaxed);
        let mut snapshot = stats.snapshot(started.elapsed());
        snapshot.output_closed = stats.output_closed.load(Ordering::SeqCst);
        snapshot.interrupted = shutdown.is_triggered() && !snapshot.output_closed;
        Ok(CrawlReport {
            stats: snapshot,
            left_queued: fstats.queued,
            sink_errors,
        })
    }

    /// Lease and start fetches until done, capped, or stopped; returns once
    /// every started fetch task has handed its response on.
    async fn schedule(
        &self,
        ctx: &Arc<FetchContext>,
        shutdown: &Shutdown,
        seeding_done: &AtomicBool,
    ) {
        let cfg = &self.cfg;
        let stats = &self.stats;
        let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        let batch = ctx.frontier.lease_batch().min(cfg.concurrency / 4).max(1);
        let mut tasks = JoinSet::new();
        let mut started: u64 = 0;
        let mut per_host: HashMap<String, u64> = HashMap::new();
        // A fetch task reports whether it produced a page; URLs robots.txt
        // refused give their place in the page budgets back.
        fn settle(
            done: Result<(String, bool), tokio::task::JoinError>,
            started: &mut u64,
            per_host: &mut HashMap<String, u64>,
        ) {
            if let Ok((host, false)) = done {
                *started -= 1;
                if let Some(n) = per_host.get_mut(&host) {
                    *n = n.saturating_sub(1);
                }
            }
        }
        loop {
            while let Some(done) = tasks.try_join_next() {
                settle(done, &mut started, &mut per_host);
            }
            if shutdown.is_triggered() {
                break;
            }
            if cfg.max_pages.is_some_and(|m| started >= m) {
                // Budget spent, unless a running fetch gives its place back.
                match tasks.join_next().await {
                    Some(done) => {
                        settle(done, &mut started, &mut per_host);
                        continue;
                    }
                    None => break,
                }
            }
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.wait() => break,
            };
            // A frontier whose lease costs a round trip gets a batch: wait
            // a moment for more fetches to end rather than lease one at a
            // time as each slot frees up.
            if slots.available_permits() + 1 < batch {
                let until = tokio::time::Instant::now() + LEASE_LINGER;
                let mut more = Vec::new();
                while more.len() + 1 + slots.available_permits() < batch {
                    match tokio::time::timeout_at(until, slots.clone().acquire_owned()).await {
                        Ok(Ok(p)) => more.push(p),
                        _ => break,
                    }
                }
            }
            let mut want = (slots.available_permits() + 1).min(512);
            if let Some(max) = cfg.max_pages {
                want = want.min((max - started) as usize);
            }
            let leases = match ctx.frontier.lease(want).await {
                Ok(l) => l,
                Err(error) => {
                    tracing::error!(%error, "Frontier lease failed; retrying.");
                    drop(permit);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if leases.is_empty() {
                drop(permit);
                if let Ok(f) = ctx.frontier.stats().await {
                    stats.queued.store(f.queued, Ordering::Relaxed);
                    stats.leased.store(f.leased, Ordering::Relaxed);
                    if f.is_finished() && seeding_done.load(Ordering::SeqCst) {
                        break;
                    }
                }
                tokio::select! {
                    _ = ctx.frontier.wait_ready(Duration::from_millis(100)) => {}
                    _ = shutdown.wait() => break,
                }
                continue;
            }
            let mut permit = Some(permit);
            for lease in leases {
                if let Some(budget) = cfg.max_pages_per_host {
                    let count = per_host.entry(lease.host.clone()).or_insert(0);
                    if *count >= budget {
                        CrawlStats::inc(&stats.filtered);
                        if let Err(error) = ctx.frontier.ack(&lease).await {
                            tracing::error!(%error, "Frontier ack failed.");
                        }
                        continue;
                    }
                    *count += 1;
                }
                let permit = match permit.take() {
                    Some(p) => p,
                    None => match slots.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                started += 1;
                let ctx = ctx.clone();
                tasks.spawn(async move {
                    let host = lease.host.clone();
                    let produced = fetch_one(&ctx, lease).await;
                    drop(permit);
                    (host, produced)
                });
            }
            if shutdown.is_triggered() {
                break;
            }
        }
        while tasks.join_next().await.is_some() {}
        if let Ok(f) = ctx.frontier.stats().await {
            stats.queued.store(f.queued, Ordering::Relaxed);
            stats.leased.store(f.leased, Ordering::Relaxed);
        }
    }
}

/// Let the stats read the stage queues' depths (through weak handles, so
/// the queues still close when their stages end).
fn register_queues(
    stats: &CrawlStats,
    parse: &async_channel::Sender<Fetched>,
    route: &async_channel::Sender<Parsed>,
    items: &mpsc::Sender<crate::sink_stage::Done>,
) {
    fn probe<T: Send + 'static>(
        name: &'static str,
        tx: &async_channel::Sender<T>,
    ) -> trawl_core::QueueProbe {
        let weak = tx.downgrade();
        trawl_core::QueueProbe {
            name,
            depth: Box::new(move || {
                let tx = weak.upgrade()?;
                Some((tx.len() as u64, tx.capacity().unwrap_or(0) as u64))
            }),
        }
    }
    let weak_items = items.downgrade();
    let items = trawl_core::QueueProbe {
        name: "items",
        depth: Box::new(move || {
            let tx = weak_items.upgrade()?;
            let capacity = tx.max_capacity();
            Some(((capacity - tx.capacity()) as u64, capacity as u64))
        }),
    };
    *stats.queues.lock() = vec![probe("parse", parse), probe("route", route), items];
}

/// Fetch one leased request and hand the response to the parse pool.
/// Returns false when nothing was fetched (robots.txt said no).
async fn fetch_one(ctx: &FetchContext, lease: Lease) -> bool {
    let in_scope = |u: &trawl_core::Url| ctx.scope.allows(u).is_ok();
    let req = &lease.request;
    let outcome = ctx
        .fetcher
        .fetch(&req.url, &RequestOptions::of(req), &in_scope)
        .await;
    // Scrapy's line, at debug level (`-vv`).
    match (outcome.status, &outcome.error) {
        (Some(status), _) => tracing::debug!(
            target: "trawl::crawled",
            "Crawled ({status}) <GET {}> (referer: {})",
            outcome.final_url,
            req.referrer.as_deref().unwrap_or("None")
        ),
        (None, Some(error)) => tracing::debug!(
            target: "trawl::crawled",
            "Failed <GET {}>: {error}",
            req.url
        ),
        (None, None) => {}
    }
    // The host's fetch slot is free; the lease stays until its item is written.
    if let Err(error) = ctx.frontier.fetched(&lease).await {
        tracing::error!(%error, "Frontier fetched-mark failed.");
    }
    if matches!(outcome.error, Some(FetchError::Stopped)) {
        // Never sent (the crawl stopped while it waited for a route): back
        // to the queue for a resumed crawl, and no item.
        if let Err(error) = ctx.frontier.release(&lease).await {
            tracing::error!(%error, "Frontier release failed.");
        }
        return false;
    }
    if matches!(outcome.error, Some(FetchError::RobotsDenied)) {
        // Not fetched, so no item; the URL is done.
        if let Err(error) = ctx.frontier.ack(&lease).await {
            tracing::error!(%error, "Frontier ack failed.");
        }
        return false;
    }
    // Waits while the parse pool is saturated: backpressure to the scheduler.
    if ctx.parse_tx.send(Fetched { lease, outcome }).await.is_err() {
        tracing::error!("Parse pool gone; response dropped.");
    }
    true
}
