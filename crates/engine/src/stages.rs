//! The stages of a crawl, each started on its own: the downloader, the
//! parse pool (the router has its own module), and the background tasks (sitemap seeding,
//! proxy reloads, the retry stopper). `Engine::run` wires them together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use trawl_core::{CrawlStats, Frontier, Url};
use trawl_fetch::{Downloader, FetchError};

use crate::config::CrawlConfig;
use crate::engine::{EngineError, FetchContext, ProxyReloads};
use crate::parse::{Fetched, ParseContext, Parsed, parse};
use crate::shutdown::Shutdown;

/// The downloader, with a started browser when pages may be rendered (a
/// missing or broken Chromium stops the crawl before it starts).
pub(crate) async fn downloader(
    cfg: &CrawlConfig,
    stats: &Arc<CrawlStats>,
    wants_exchanges: bool,
) -> Result<Downloader, EngineError> {
    let mut fetch_cfg = cfg.fetch.clone();
    fetch_cfg.record_exchanges |= wants_exchanges;
    let mut downloader =
        Downloader::new(fetch_cfg, stats.clone()).map_err(EngineError::Downloader)?;
    if let Some(rc) = &cfg.render {
        let renderer = Arc::new(trawl_render::Renderer::new(rc.clone()));
        renderer
            .start()
            .await
            .map_err(|e| EngineError::Downloader(FetchError::Other(e.to_string())))?;
        downloader = downloader.with_renderer(renderer);
    }
    Ok(downloader)
}

/// The parse pool: OS threads, so CPU work never blocks the runtime.
pub(crate) fn parse_pool(
    threads: usize,
    ctx: Arc<ParseContext>,
    parse_rx: async_channel::Receiver<Fetched>,
    route_tx: async_channel::Sender<Parsed>,
) -> Vec<std::thread::JoinHandle<()>> {
    ctx.stats
        .cpu_workers
        .store(threads as u64, Ordering::Relaxed);
    let mut workers = Vec::with_capacity(threads);
    for n in 0..threads {
        let rx = parse_rx.clone();
        let tx = route_tx.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("trawl-parse-{n}"))
            .spawn(move || {
                while let Ok(fetched) = rx.recv_blocking() {
                    let parsed = {
                        let _busy = trawl_core::stats::GaugeGuard::new(&ctx.stats.cpu_busy);
                        parse(&ctx, fetched)
                    };
                    if tx.send_blocking(parsed).is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(error) => tracing::error!(%error, "Could not start a parse worker."),
        }
    }
    workers
}

/// Sitemaps seed in the background; the crawl is not over until they are
/// read (the flag says when).
pub(crate) fn sitemap_seeding(
    sitemaps: bool,
    ctx: &Arc<FetchContext>,
    seeds: &[Url],
    stats: &Arc<CrawlStats>,
) -> Arc<AtomicBool> {
    let seeding_done = Arc::new(AtomicBool::new(!sitemaps));
    if sitemaps {
        let ctx = ctx.clone();
        let seeds = seeds.to_vec();
        let stats = stats.clone();
        let done = seeding_done.clone();
        tokio::spawn(async move {
            if let Err(error) = crate::sitemaps::seed(
                ctx.fetcher.as_ref(),
                &seeds,
                &ctx.scope,
                ctx.frontier.as_ref(),
                &stats,
            )
            .await
            {
                tracing::error!(%error, "Sitemap seeding failed.");
            }
            done.store(true, Ordering::SeqCst);
            ctx.frontier.wait_ready(Duration::ZERO).await;
        });
    }
    seeding_done
}

/// New proxy lists handed to the downloader while the crawl runs.
pub(crate) fn proxy_reloader(mut reloads: ProxyReloads, ctx: Arc<FetchContext>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while reloads.changed().await.is_ok() {
            let lists = reloads.borrow_and_update().clone();
            for (pool, specs) in lists {
                match ctx.fetcher.reload_proxies(&pool, &specs) {
                    Ok((added, removed)) => tracing::info!(
                        pool,
                        added,
                        removed,
                        listed = specs.len(),
                        "Proxy list reloaded."
                    ),
                    Err(error) => {
                        tracing::error!(pool, %error, "Proxy list not reloaded.")
                    }
                }
            }
        }
    })
}

/// On shutdown, stop retries at once.
pub(crate) fn retry_stopper(shutdown: Shutdown, ctx: Arc<FetchContext>) -> JoinHandle<()> {
    tokio::spawn(async move {
        shutdown.wait().await;
        ctx.fetcher.stop_retrying();
    })
}

/// Refresh the frontier's queued and leased counts in the stats every
/// second, for the progress line and the metrics (the scheduler also
/// refreshes them when it finds nothing to lease).
pub(crate) fn frontier_sizes(
    frontier: Arc<dyn Frontier>,
    stats: Arc<CrawlStats>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Ok(sizes) = frontier.stats().await {
                stats
                    .queued
                    .store(sizes.queued, std::sync::atomic::Ordering::Relaxed);
                stats
                    .leased
                    .store(sizes.leased, std::sync::atomic::Ordering::Relaxed);
            }
        }
    })
}
