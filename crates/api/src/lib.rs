//! trawl-api: the Scraper API, trawl as a service (`trawl serve`).
//!
//! - [`error`]: the JSON error body every failure answers with (a stable
//!   `code`, a message and the offending JSON pointer).
//! - [`scrape`]: `POST /v1/scrape`, one URL in, structured data out.
//! - [`crawls`]: crawl jobs (`/v1/crawls`), items streamed as NDJSON.
//! - `GET /healthz` (the process answers), `GET /readyz` (it takes
//!   requests).
//!
//! Targets pass the address guard ([`trawl_fetch::guard`]) unless the
//! server was started with `allow_private` (tests, intranets).
//!
//! - [`keys`], [`auth`]: API keys (a hash at rest), `Authorization:
//!   Bearer KEY` on every `/v1` call once any key exists; jobs are scoped
//!   to their key.
//! - [`limits`]: per-key request rate, scrapes in flight, running jobs
//!   and a page quota (`429` with `Retry-After`).
//! - [`jobs`]: crawl jobs on disk, resumed after a restart;
//!   [`webhook`]: signed calls when a job ends.
//!
//! - [`openapi`]: `GET /openapi.json`, generated from the handlers.
//!
//! - [`map`]: `POST /v1/map`, a site's URLs from its sitemaps and links.
//!
//! Jobs keep their records and items in the data directory, or in
//! PostgreSQL ([`jobs::pg`], `trawl serve --store`).

pub mod auth;
pub mod crawls;
pub mod error;
pub mod jobs;
pub mod keys;
pub mod limits;
pub mod map;
pub mod openapi;
pub mod scrape;
pub mod webhook;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use trawl_core::CrawlStats;
use trawl_fetch::guard::AddressGuard;
use trawl_fetch::{Downloader, FetchConfig};
use trawl_settings::{Effective, SpiderParts};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Reach loopback and private addresses (off: the address guard
    /// refuses them).
    pub allow_private: bool,
    /// Addresses reachable although private (an intranet host).
    pub allow_addresses: Vec<IpAddr>,
    /// When not empty, the only hosts requests may reach (each with its
    /// subdomains).
    pub hosts: Vec<String>,
    /// Where jobs, keys and the webhook secret live (none: a directory of
    /// this process, removed when it ends).
    pub data: Option<std::path::PathBuf>,
    /// Obey robots.txt when fetching.
    pub obey_robots: bool,
    /// Largest request body accepted.
    pub max_body: usize,
    /// A scrape's deadline unless the request sets a shorter one.
    pub timeout: Duration,
    /// The API keys; none: the API is open to whoever reaches the port.
    pub keys: keys::Keys,
    /// Per-key request rate and running jobs.
    pub limits: limits::Limits,
    /// The server's settings (`trawl serve --config FILE`): the
    /// downloader of scrapes (proxy pools, identities, the browser) and
    /// the layer every job's settings go on top of.
    pub settings: Vec<trawl_settings::Layer>,
    /// Crawl jobs are distributed crawls on this Redis, worked on by the
    /// server and any `trawl worker --redis URL --api`.
    pub redis: Option<String>,
    /// Job records and items in this PostgreSQL database (none: in the
    /// data directory).
    pub store: Option<String>,
    /// This server in metrics and logs (host, pid and a random part by
    /// default).
    pub worker_id: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            allow_private: false,
            allow_addresses: Vec::new(),
            hosts: Vec::new(),
            data: None,
            obey_robots: true,
            max_body: 1 << 20,
            timeout: Duration::from_secs(30),
            keys: keys::Keys::default(),
            limits: limits::Limits::default(),
            settings: Vec::new(),
            redis: None,
            store: None,
            worker_id: trawl_frontier::redis::default_worker_id(),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub cfg: ApiConfig,
    pub downloader: Downloader,
    /// The browser of rendered scrapes (started at the first).
    pub renderer: Arc<trawl_render::Renderer>,
    /// Proxy pools a scrape may name (with `direct` and `default`).
    pub pools: Vec<String>,
    /// Named scrape sessions, per key.
    pub sessions: scrape::Sessions,
    pub jobs: Arc<jobs::Jobs>,
    pub buckets: limits::Buckets,
    pub quotas: limits::Quotas,
    pub scrapes: limits::InFlight,
    /// What `/metrics` and the dashboard show: the scrapes' downloader and
    /// every running job.
    pub board: Arc<trawl_metrics::Board>,
    /// Scrapes parsing at once: one per core. Without a bound, a burst of
    /// scrapes puts as many threads on the blocking pool, which the kernel
    /// time-slices: every answer comes late. With it, they queue in order
    /// and each parse runs at full speed.
    pub parse_slots: tokio::sync::Semaphore,
}

/// The service's routes, with its jobs loaded (those that were running
/// resume).
pub async fn app(cfg: ApiConfig) -> std::io::Result<(Router, Arc<AppState>)> {
    let guard = Arc::new(AddressGuard {
        allow: cfg.allow_addresses.clone(),
        allow_private: cfg.allow_private,
        hosts: cfg.hosts.clone(),
    });
    let settings = Effective::stack(&cfg.settings).map_err(std::io::Error::other)?;
    let plan = settings
        .build(Vec::new(), &SpiderParts::default())
        .map_err(std::io::Error::other)?;
    let fetch = FetchConfig {
        obey_robots: cfg.obey_robots,
        timeout: cfg.timeout,
        address_guard: Some(guard.clone()),
        ..plan.crawl.fetch
    };
    let renderer = Arc::new(trawl_render::Renderer::new(settings.settings.browser()));
    let sessions = scrape::Sessions::new(fetch.clone(), renderer.clone());
    let board = Arc::new(trawl_metrics::Board::new(trawl_metrics::Identity {
        crawl: "serve".into(),
        worker: cfg.worker_id.clone(),
    }));
    let scrape_stats = Arc::new(CrawlStats::default());
    board.add("scrapes", scrape_stats.clone());
    let downloader = Downloader::new(fetch, scrape_stats)
        .map_err(std::io::Error::other)?
        .with_renderer(renderer.clone());
    let pools = settings.settings.proxy_pools.keys().cloned().collect();
    let jobs = Arc::new(
        jobs::Jobs::open(
            cfg.data.as_deref(),
            cfg.store.as_deref(),
            jobs::JobContext {
                board: board.clone(),
                guard: Some(guard),
                obey_robots: cfg.obey_robots,
                settings: cfg.settings.clone(),
                redis: cfg.redis.clone(),
            },
        )
        .await?,
    );
    jobs.load().await?;
    let max_body = cfg.max_body;
    let state = Arc::new(AppState {
        cfg,
        downloader,
        renderer,
        pools,
        sessions,
        jobs,
        buckets: limits::Buckets::default(),
        quotas: limits::Quotas::default(),
        scrapes: limits::InFlight::default(),
        board: board.clone(),
        parse_slots: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        ),
    });
    // The sampler lives as long as the board: until the server's state goes.
    board.spawn_sampler(Duration::from_secs(1));
    let weak_jobs = Arc::downgrade(&state.jobs);
    board.set_jobs(Box::new(move || {
        weak_jobs
            .upgrade()
            .map(|jobs| jobs.dashboard_rows())
            .unwrap_or_default()
    }));
    let operator = trawl_metrics::server::data_routes(board, Some(jobs_by_state(&state.jobs)))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::operator,
        ))
        .route("/dashboard", get(trawl_metrics::server::dashboard));
    let v1 = Router::new()
        .route("/v1/scrape", post(scrape::handle))
        .route("/v1/map", post(map::handle))
        .route("/v1/crawls", post(crawls::create).get(crawls::list))
        .route("/v1/crawls/{id}", get(crawls::get).delete(crawls::cancel))
        .route("/v1/crawls/{id}/items", get(crawls::items))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    let router = Router::new()
        .route("/healthz", get(openapi::healthz))
        .route("/readyz", get(openapi::readyz))
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    openapi::document(),
                )
            }),
        )
        .merge(v1)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state.clone())
        .merge(operator);
    Ok((router, state))
}

/// `trawl_api_jobs{state}`: the server's jobs by state, for `/metrics`.
fn jobs_by_state(jobs: &Arc<jobs::Jobs>) -> trawl_metrics::server::ExtraFn {
    let weak = Arc::downgrade(jobs);
    Arc::new(move || {
        let counts = weak
            .upgrade()
            .map(|jobs| jobs.count_by_state())
            .unwrap_or_default();
        vec![trawl_metrics::ExtraGauge {
            name: "trawl_api_jobs",
            help: "The server's crawl jobs by state.",
            label: "state",
            values: counts,
        }]
    })
}

/// Serve on `listener` until `shutdown` resolves; running jobs then stop
/// at a checkpoint and resume at the next start on the same data.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: ApiConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (app, state) = app(cfg).await?;
    // Jobs stop first, so item streams end and connections close.
    let jobs = state.jobs.clone();
    let stop = async move {
        shutdown.await;
        jobs.stop().await;
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await;
    state.renderer.shutdown().await;
    served
}
