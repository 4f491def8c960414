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
//!
//! - [`limits`]: per-key request rate and running jobs (`429` with
//!   `Retry-After`).
//!
//! Not yet: jobs that survive a restart or run on `trawl worker`s,
//! spider files in jobs, webhooks, `/v1/map`, page quotas,
//! OpenAPI, rendering through the API (issue 16).

pub mod auth;
pub mod crawls;
pub mod error;
pub mod keys;
pub mod limits;
pub mod scrape;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use trawl_core::CrawlStats;
use trawl_fetch::guard::AddressGuard;
use trawl_fetch::{Downloader, FetchConfig, FetchError};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Reach loopback and private addresses (off: the address guard
    /// refuses them).
    pub allow_private: bool,
    /// Addresses reachable although private (an intranet host).
    pub allow_addresses: Vec<IpAddr>,
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
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            allow_private: false,
            allow_addresses: Vec::new(),
            obey_robots: true,
            max_body: 1 << 20,
            timeout: Duration::from_secs(30),
            keys: keys::Keys::default(),
            limits: limits::Limits::default(),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub cfg: ApiConfig,
    pub downloader: Downloader,
    pub jobs: crawls::Jobs,
    pub buckets: limits::Buckets,
}

/// The service's routes.
pub fn router(cfg: ApiConfig) -> Result<Router, FetchError> {
    let fetch = FetchConfig {
        obey_robots: cfg.obey_robots,
        timeout: cfg.timeout,
        address_guard: (!cfg.allow_private).then(|| {
            Arc::new(AddressGuard {
                allow: cfg.allow_addresses.clone(),
            })
        }),
        ..FetchConfig::default()
    };
    let downloader = Downloader::new(fetch, Arc::new(CrawlStats::default()))?;
    let max_body = cfg.max_body;
    let state = Arc::new(AppState {
        cfg,
        downloader,
        jobs: crawls::Jobs::default(),
        buckets: limits::Buckets::default(),
    });
    let v1 = Router::new()
        .route("/v1/scrape", post(scrape::handle))
        .route("/v1/crawls", post(crawls::create).get(crawls::list))
        .route("/v1/crawls/{id}", get(crawls::get).delete(crawls::cancel))
        .route("/v1/crawls/{id}/items", get(crawls::items))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Ok(Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .merge(v1)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state))
}

/// Serve on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: ApiConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(cfg).map_err(std::io::Error::other)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
