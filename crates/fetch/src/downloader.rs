//! The downloader: the whole fetch of one URL.
//!
//! For each hop of a redirect chain: ask robots.txt, take the host's slot,
//! pick an exit (direct, or a proxy) that is ready for the host now by its
//! pace ([`crate::pacing`]), send, and read the body under the cap; a
//! rate-limit answer slows that exit's pace for the host (and a
//! `Retry-After` holds back that pair only) and the request goes again
//! through whichever exit is ready first; other retryable failures back off
//! and try again. Each redirect hop is canonicalized and
//! checked for loops, the hop limit and the crawl scope before it is
//! followed.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header;
use trawl_core::{CrawlStats, Url, canonicalize, host_key, stats::GaugeGuard};
use trawl_robots::Robots;

use crate::autothrottle::AutoThrottle;
use crate::config::FetchConfig;
use crate::error::{FetchError, chain, is_retryable_status};
use crate::pacing::RateInfo;
use crate::proxy::{ProxyScheme, ProxySpec, Signal, TransportFailure};
use crate::rendering::RenderedPage;
use crate::retry::{backoff, parse_retry_after};
use crate::robots_cache::{RobotsCache, robots_path, robots_url, rules_from_response};
use crate::routing::{Route, Routing, Stop, proxy_refused_credentials, transport_failure};
use crate::slots::Slots;

/// What came of fetching one URL.
#[derive(Debug, Clone)]
pub struct FetchOutcome {
    /// The URL the last response came from (after redirects).
    pub final_url: Url,
    /// Status of the last response, if any arrived.
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The (decoded) body, at most `max_body` bytes.
    pub body: Bytes,
    pub truncated: bool,
    pub redirects: u32,
    pub retries: u32,
    pub elapsed: Duration,
    /// Why the fetch failed; `None` for any response with status < 400.
    pub error: Option<FetchError>,
    /// The last response's raw exchange, when
    /// [`FetchConfig::record_exchanges`] is on.
    pub exchange: Option<trawl_core::Exchange>,
    /// Set when the page was rendered: `body` is then the rendered DOM.
    pub rendered: Option<RenderedPage>,
}

/// One HTTP exchange's result.
enum Exchange {
    Redirect {
        status: u16,
        location: Option<String>,
    },
    Page(Page),
}

struct Page {
    status: u16,
    content_type: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
    retry_after: Option<Duration>,
    /// The answer was a rate limit (the pace of its exit was cut).
    rate_limited: bool,
    body: Bytes,
    truncated: bool,
    /// Version, reason, headers and peer of the response, when recorded.
    raw: Option<Box<RawResponse>>,
    /// The body as it came, when `body` is the rendered DOM.
    raw_body: Option<Bytes>,
    rendered: Option<Box<RenderedPage>>,
}

/// What a browser tab needs of the exchange besides the body.
struct RenderInput<'a> {
    /// The response's headers.
    headers: &'a [(String, String)],
    user_agent: Option<&'a str>,
    /// The request's own headers (and validators, left out).
    request_headers: &'a header::HeaderMap,
}

struct RawResponse {
    /// The headers this request was sent with (reqwest adds `accept` and
    /// `accept-encoding` when absent; listed as it sends them).
    request_headers: Vec<(String, String)>,
    version: &'static str,
    reason: String,
    headers: Vec<(String, String)>,
    ip: Option<std::net::IpAddr>,
}

impl FetchOutcome {
    /// An answer from a [`Fetcher`](crate::Fetcher) other than the
    /// downloader: `status`, `content_type` and `body` from `final_url`;
    /// no redirects, retries, validators or raw exchange.
    pub fn answered(
        final_url: Url,
        status: u16,
        content_type: Option<String>,
        body: impl Into<Bytes>,
        elapsed: Duration,
    ) -> FetchOutcome {
        FetchOutcome {
            status: Some(status),
            content_type,
            body: body.into(),
            elapsed,
            error: None,
            ..FetchOutcome::failed(final_url, Instant::now(), FetchError::Stopped)
        }
    }

    /// An outcome without a response: `error` for `url`.
    pub fn failed(final_url: Url, started: Instant, error: FetchError) -> FetchOutcome {
        FetchOutcome {
            final_url,
            status: None,
            content_type: None,
            etag: None,
            last_modified: None,
            body: Bytes::new(),
            truncated: false,
            redirects: 0,
            retries: 0,
            elapsed: started.elapsed(),
            error: Some(error),
            exchange: None,
            rendered: None,
        }
    }
}

/// Fetches URLs politely. Cheap to share (`Arc`).
pub struct Downloader {
    cfg: FetchConfig,
    slots: Slots,
    robots: RobotsCache,
    stats: Arc<CrawlStats>,
    /// Set when the crawl is stopping: no more retries, waits cut short.
    stop: Arc<Stop>,
    autothrottle: Option<Arc<AutoThrottle>>,
    /// `cfg.headers` parsed once.
    extra_headers: header::HeaderMap,
    /// How each request goes out: the proxy pools, sessions and pacers
    /// (see [`crate::routing`]).
    routing: Routing,
    /// When the renderer's state was last put into the stats.
    last_render_publish: parking_lot::Mutex<Instant>,
    /// The browser tabs, when the crawl renders pages.
    renderer: Option<Arc<trawl_render::Renderer>>,
    /// What `render = "auto"` learned per URL pattern, and its counts.
    auto: trawl_render::auto::AutoMemory,
}

/// robots.txt and sitemaps are never rendered.
static NEVER_RENDER: trawl_core::RenderSpec = trawl_core::RenderSpec {
    mode: trawl_core::RenderMode::Never,
    wait: Vec::new(),
    actions: Vec::new(),
    block: Vec::new(),
    html: false,
    screenshot: false,
    pdf: false,
    require: Vec::new(),
    timeout: None,
};

/// What one fetch asks for besides its URL.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestOptions<'a> {
    /// Validators of an earlier fetch: a conditional GET.
    pub etag: Option<&'a str>,
    pub last_modified: Option<&'a str>,
    /// Headers of this request only, after the crawl-wide ones.
    pub headers: &'a [(String, String)],
    /// A named proxy pool (or `direct`) instead of the host's.
    pub proxy_pool: Option<&'a str>,
    /// How to render the page, instead of the crawl's [`FetchConfig::render`].
    pub render: Option<&'a trawl_core::RenderSpec>,
}

impl<'a> RequestOptions<'a> {
    /// The options a frontier request carries.
    pub fn of(request: &'a trawl_core::Request) -> RequestOptions<'a> {
        RequestOptions {
            etag: request.etag.as_deref(),
            last_modified: request.last_modified.as_deref(),
            headers: request.own_headers(),
            proxy_pool: request.proxy_pool.as_deref(),
            render: request.render.as_deref(),
        }
    }
}

/// The HTTP client for the crawl's settings, optionally through a proxy and
/// with a cookie jar.
pub(crate) fn build_client(
    cfg: &FetchConfig,
    roots: &[reqwest::Certificate],
    proxy: Option<&ProxySpec>,
    jar: Option<Arc<reqwest::cookie::Jar>>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    if let Some(guard) = &cfg.address_guard
        && proxy.is_none()
    {
        // Checked again after resolution, at connect time (a name that
        // resolves, or is re-bound, to a refused address).
        builder = builder.dns_resolver(Arc::new(crate::guard::GuardedResolver(guard.clone())));
    }
    let mut builder = builder
        .user_agent(cfg.user_agent.clone())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(cfg.connect_timeout)
        .timeout(cfg.timeout)
        .pool_idle_timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(cfg.pool_idle_per_host.max(cfg.per_host))
        .tcp_nodelay(true);
    if !roots.is_empty() {
        // On top of the platform's roots (rustls-platform-verifier),
        // which also parses them: a block that is not a certificate
        // fails the build below.
        builder = builder.tls_certs_merge(roots.to_vec());
    }
    if let Some(spec) = proxy {
        let p = reqwest::Proxy::all(spec.url()).map_err(|e| chain(&e))?;
        builder = builder.proxy(p);
        if matches!(spec.scheme(), ProxyScheme::Http | ProxyScheme::Https) {
            // HTTP proxies often close a client connection after each
            // response without saying so (tinyproxy does): a pooled
            // connection would fail on reuse. Connect afresh each time.
            builder = builder.pool_max_idle_per_host(0);
        }
    }
    if let Some(jar) = jar {
        builder = builder.cookie_provider(jar);
    }
    builder.build().map_err(|e| chain(&e))
}

/// A route group for `proxies` (none: direct): a client per proxy, the
/// pool, and a session pool when the crawl uses sessions.
impl Downloader {
    /// Builds the HTTP client (rustls; HTTP/2 when the server offers it by
    /// ALPN, else HTTP/1.1) trusting the system's roots plus
    /// `cfg.extra_root_certs`. A bad certificate is a [`FetchError::Other`]
    /// naming it, never a panic.
    pub fn new(cfg: FetchConfig, stats: Arc<CrawlStats>) -> Result<Downloader, FetchError> {
        let mut roots = Vec::new();
        for (i, pem) in cfg.extra_root_certs.iter().enumerate() {
            let n = i + 1;
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                FetchError::Other(format!(
                    "extra root certificate #{n} is not valid PEM: {}",
                    chain(&e)
                ))
            })?;
            if certs.is_empty() {
                return Err(FetchError::Other(format!(
                    "extra root certificate #{n} has no PEM CERTIFICATE block"
                )));
            }
            roots.extend(certs);
        }
        let extra_roots = roots.len();
        let client = build_client(&cfg, &roots, None, None).map_err(|e| {
            if extra_roots > 0 {
                FetchError::Other(format!(
                    "building the HTTP client with {extra_roots} extra root certificate(s): {e}"
                ))
            } else {
                FetchError::Other(format!("building the HTTP client: {e}"))
            }
        })?;
        let slots = Slots::new(cfg.host_concurrency(), cfg.delay);
        let autothrottle = cfg.autothrottle.clone().map(|mut at| {
            at.min_delay = at.min_delay.max(cfg.delay);
            Arc::new(AutoThrottle::new(at))
        });
        let stop = Arc::new(Stop::default());
        let routing = Routing::new(
            &cfg,
            roots,
            client,
            stats.clone(),
            stop.clone(),
            autothrottle.clone(),
        )?;
        let extra_headers = parse_headers(&cfg.headers)?;
        Ok(Downloader {
            cfg,
            slots,
            robots: RobotsCache::default(),
            stats,
            stop,
            autothrottle,
            extra_headers,
            routing,
            last_render_publish: parking_lot::Mutex::new(Instant::now()),
            renderer: None,
            auto: trawl_render::auto::AutoMemory::default(),
        })
    }

    /// Replace the proxy list of pool `name` (`default` for `--proxy`)
    /// while the crawl runs (see [`Routing::reload`]); returns how many
    /// were added and removed.
    pub fn reload_proxies(
        &self,
        name: &str,
        specs: &[ProxySpec],
    ) -> Result<(usize, usize), FetchError> {
        self.routing.reload(name, specs)
    }

    /// Put the proxies' and sessions' state into the crawl stats (at most
    /// every 250 ms unless `force`).
    pub fn publish_proxy_stats(&self, force: bool) {
        self.routing.publish_stats(force);
    }

    /// The headers of one request: the identity's (User-Agent and its
    /// matching browser headers), then `--header`s, then `extra`
    /// (conditional-request validators).
    fn request_headers(
        &self,
        url: &Url,
        identity: Option<usize>,
        extra: &header::HeaderMap,
    ) -> header::HeaderMap {
        let mut headers = header::HeaderMap::new();
        if let Some(ids) = &self.cfg.identities {
            let i = identity.unwrap_or_else(|| ids.random_index());
            if let Some(profile) = ids.get(i) {
                if let Ok(v) = header::HeaderValue::from_str(&profile.user_agent) {
                    headers.insert(header::USER_AGENT, v);
                }
                for (k, v) in profile.headers_for(url.scheme() == "https") {
                    if let (Ok(k), Ok(v)) = (
                        header::HeaderName::from_bytes(k.as_bytes()),
                        header::HeaderValue::from_str(v),
                    ) {
                        headers.insert(k, v);
                    }
                }
            }
        }
        for (k, v) in &self.extra_headers {
            headers.insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            headers.insert(k.clone(), v.clone());
        }
        headers
    }

    /// The per-host delays AutoThrottle has settled on, when it is on.
    pub fn throttle_snapshot(&self) -> Vec<crate::autothrottle::HostThrottle> {
        self.autothrottle
            .as_ref()
            .map(|a| a.snapshot())
            .unwrap_or_default()
    }

    /// Stop retrying: requests in flight finish with what they have.
    pub fn stop_retrying(&self) {
        self.stop.trigger();
    }

    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &Arc<CrawlStats> {
        &self.stats
    }

    /// Robots rules for `url`'s host, fetching robots.txt on first use.
    pub async fn robots(&self, url: &Url) -> Arc<Robots> {
        let cell = self.robots.cell(url);
        cell.get_or_init(|| async {
            let rules = Arc::new(self.fetch_robots(url).await);
            if let Some(delay) = rules.crawl_delay() {
                let delay = delay.min(self.cfg.max_crawl_delay);
                self.slots.set_min_delay(&host_key(url), delay);
                tracing::debug!(host = %host_key(url), ?delay, "Crawl-delay applied.");
            }
            rules
        })
        .await
        .clone()
    }

    async fn fetch_robots(&self, url: &Url) -> Robots {
        let token = &self.cfg.robots_token;
        let Some(mut target) = robots_url(url) else {
            return Robots::allow_all();
        };
        for _ in 0..=5 {
            match self.robots_exchange(&target).await {
                Ok(Exchange::Page(page)) => {
                    return rules_from_response(page.status, &page.body, token);
                }
                Ok(Exchange::Redirect {
                    location: Some(loc),
                    ..
                }) => match target.join(&loc) {
                    Ok(next) => target = next,
                    Err(_) => return Robots::allow_all(),
                },
                // A redirect without Location is like a 4xx: nothing to obey.
                Ok(Exchange::Redirect { location: None, .. }) => return Robots::allow_all(),
                Err(error) => {
                    tracing::warn!(host = %host_key(url), %error, "robots.txt unreachable: the host is disallowed (RFC 9309); use --ignore-robots to crawl it anyway.");
                    return Robots::disallow_all();
                }
            }
        }
        Robots::allow_all()
    }

    /// One hop of a robots.txt fetch. Failures of the route (every proxy
    /// tried banned or failing) say nothing about the site, so they are
    /// tried again after a back-off (the route pauses while no proxy is
    /// usable) instead of disallowing the host for the whole crawl; after
    /// [`ROBOTS_ROUTE_ROUNDS`] rounds the error stands.
    async fn robots_exchange(&self, target: &Url) -> Result<Exchange, FetchError> {
        let mut rounds = 0u32;
        loop {
            let mut retries = 0;
            let result = self
                .exchange_with_retries(
                    target,
                    MAX_ROBOTS_FETCH,
                    &header::HeaderMap::new(),
                    None,
                    &NEVER_RENDER,
                    &mut retries,
                )
                .await;
            match &result {
                Err(e) if e.needs_another_route() && rounds < ROBOTS_ROUTE_ROUNDS => {
                    rounds += 1;
                    let wait = backoff(rounds, self.cfg.backoff_base, self.cfg.backoff_max);
                    tracing::debug!(%target, rounds, error = %e, ?wait, "robots.txt: no route got through; trying again.");
                    if !self.stop.sleep(wait).await {
                        return result;
                    }
                }
                _ => return result,
            }
        }
    }

    /// Fetch `url`, following redirects that `in_scope` accepts.
    pub async fn fetch(&self, url: &Url, in_scope: &(dyn Fn(&Url) -> bool + Sync)) -> FetchOutcome {
        self.fetch_with(url, &RequestOptions::default(), in_scope)
            .await
    }

    /// [`Downloader::fetch`] with a request's own headers, proxy pool and
    /// validators ([`RequestOptions::of`] a frontier request). Validators
    /// make it a conditional GET (`If-None-Match`, `If-Modified-Since`): an
    /// unchanged page answers 304 without a body.
    ///
    /// The request's headers go to every hop of a redirect chain, except
    /// `Authorization` and `Cookie` once the chain leaves the first host.
    /// A header that is not valid HTTP, or a pool that does not exist, is
    /// the outcome's error; nothing is sent.
    pub async fn fetch_with(
        &self,
        url: &Url,
        options: &RequestOptions<'_>,
        in_scope: &(dyn Fn(&Url) -> bool + Sync),
    ) -> FetchOutcome {
        let started = Instant::now();
        let own_headers = match parse_headers(options.headers) {
            Ok(h) => h,
            Err(error) => return FetchOutcome::failed(url.clone(), started, error),
        };
        let mut conditional = header::HeaderMap::new();
        for (name, value) in [
            (header::IF_NONE_MATCH, options.etag),
            (header::IF_MODIFIED_SINCE, options.last_modified),
        ] {
            if let Some(v) = value.and_then(|v| header::HeaderValue::from_str(v).ok()) {
                conditional.insert(name, v);
            }
        }
        let first_host = host_key(url);
        let mut current = url.clone();
        let mut visited: HashSet<String> = HashSet::new();
        visited.insert(current.as_str().to_string());
        let mut redirects = 0u32;
        let mut retries = 0u32;
        let mut last_status = None;
        let fail = |final_url: Url, status, redirects, retries, error| FetchOutcome {
            status,
            redirects,
            retries,
            ..FetchOutcome::failed(final_url, started, error)
        };
        loop {
            // Before robots.txt: a refused host gets no packet at all.
            if let Some(guard) = &self.cfg.address_guard
                && let Some(why) = guard.refuses_url(&current)
            {
                return fail(
                    current,
                    last_status,
                    redirects,
                    retries,
                    FetchError::Refused(why),
                );
            }
            if self.cfg.obey_robots
                && !self
                    .robots(&current)
                    .await
                    .is_allowed(&robots_path(&current))
            {
                // A host whose name resolves to a refused address has no
                // reachable robots.txt: say it is refused, not denied.
                if let Some(guard) = &self.cfg.address_guard
                    && let Err(refused) = crate::guard::check_resolved(guard, &current).await
                {
                    return fail(
                        current,
                        last_status,
                        redirects,
                        retries,
                        FetchError::Refused(refused.0),
                    );
                }
                CrawlStats::inc(&self.stats.robots_denied);
                return fail(
                    current,
                    last_status,
                    redirects,
                    retries,
                    FetchError::RobotsDenied,
                );
            }
            let mut headers = own_headers.clone();
            if redirects == 0 {
                // Validators belong to the requested URL, not to redirect targets.
                headers.extend(conditional.clone());
            } else if host_key(&current) != first_host {
                headers.remove(header::AUTHORIZATION);
                headers.remove(header::COOKIE);
            }
            match self
                .exchange_with_retries(
                    &current,
                    self.cfg.max_body,
                    &headers,
                    options.proxy_pool,
                    options.render.unwrap_or(&self.cfg.render),
                    &mut retries,
                )
                .await
            {
                Err(error) => return fail(current, last_status, redirects, retries, error),
                Ok(Exchange::Redirect { status, location }) => {
                    last_status = Some(status);
                    let next = location
                        .and_then(|l| current.join(l.trim()).ok())
                        .and_then(canonicalize);
                    let Some(next) = next else {
                        return fail(
                            current,
                            last_status,
                            redirects,
                            retries,
                            FetchError::BadRedirect,
                        );
                    };
                    if redirects >= self.cfg.max_redirects {
                        return fail(
                            current,
                            last_status,
                            redirects,
                            retries,
                            FetchError::TooManyRedirects(self.cfg.max_redirects),
                        );
                    }
                    if !visited.insert(next.as_str().to_string()) {
                        return fail(
                            current,
                            last_status,
                            redirects,
                            retries,
                            FetchError::RedirectLoop(next.to_string()),
                        );
                    }
                    if !in_scope(&next) {
                        return fail(
                            current,
                            last_status,
                            redirects,
                            retries,
                            FetchError::OffsiteRedirect(next.to_string()),
                        );
                    }
                    redirects += 1;
                    CrawlStats::inc(&self.stats.redirects);
                    current = next;
                }
                Ok(Exchange::Page(mut page)) => {
                    let error = (page.status >= 400).then_some(FetchError::Status {
                        status: page.status,
                        retry_after: page.retry_after,
                    });
                    let exchange = page
                        .raw
                        .take()
                        .map(|raw| self.recorded(&current, &page, *raw));
                    return FetchOutcome {
                        final_url: current,
                        status: Some(page.status),
                        content_type: page.content_type,
                        etag: page.etag,
                        last_modified: page.last_modified,
                        body: page.body,
                        truncated: page.truncated,
                        redirects,
                        retries,
                        elapsed: started.elapsed(),
                        error,
                        exchange,
                        rendered: page.rendered.map(|r| *r),
                    };
                }
            }
        }
    }

    /// One hop with retries: transport errors, 5xx, 408 and 429 are tried
    /// again after a back-off (or the server's Retry-After).
    async fn exchange_with_retries(
        &self,
        url: &Url,
        cap: usize,
        headers: &header::HeaderMap,
        pool: Option<&str>,
        render: &trawl_core::RenderSpec,
        retries: &mut u32,
    ) -> Result<Exchange, FetchError> {
        let host = host_key(url);
        let mut attempt = 0u32;
        let mut rotations = 0u32;
        let mut rate_limited = 0u32;
        loop {
            let result = self.exchange(url, &host, cap, headers, pool, render).await;
            // A rate limit without Retry-After has its own budget: the
            // pace makes each try wait. One with Retry-After counts as a
            // retry (a site answering 503 + Retry-After for good must not
            // hold a URL for ten waits), without sleeping here: the pair
            // is held back, and another exit may be ready.
            let paced_only = matches!(&result, Ok(Exchange::Page(p)) if p.rate_limited && p.retry_after.is_none());
            if let Ok(Exchange::Page(page)) = &result
                && paced_only
            {
                // The exit's pace for the host was cut (and a Retry-After
                // holds that pair back): go again at once through whichever
                // exit is ready first; the pace is the wait.
                if rate_limited < self.cfg.rate_limit_retries && !self.stop.is_stopping() {
                    rate_limited += 1;
                    *retries += 1;
                    CrawlStats::inc(&self.stats.retries);
                    tracing::debug!(%url, rate_limited, status = page.status, "Rate limited; going again at the exit's new pace.");
                    continue;
                }
                return result;
            }
            if let Err(e) = &result
                && e.needs_another_route()
            {
                // Banned or a dead proxy: at once, through another route.
                if rotations < self.cfg.proxy_attempts && !self.stop.is_stopping() {
                    rotations += 1;
                    CrawlStats::inc(&self.stats.rotations);
                    tracing::debug!(%url, rotations, error = %e, "Trying another proxy or session.");
                    continue;
                }
                return result;
            }
            let (retryable, server_wait) = match &result {
                Ok(Exchange::Page(p)) if p.rate_limited => (true, Some(Duration::ZERO)),
                Ok(Exchange::Page(p)) => (is_retryable_status(p.status), p.retry_after),
                Ok(Exchange::Redirect { .. }) => (false, None),
                Err(e) => (e.is_retryable(), None),
            };
            if !retryable || attempt >= self.cfg.retries || self.stop.is_stopping() {
                return result;
            }
            attempt += 1;
            *retries += 1;
            CrawlStats::inc(&self.stats.retries);
            let wait = match server_wait {
                // A Retry-After on an answer that is not a rate limit (a
                // 500, say): this request waits; the pace of its pair was
                // told too.
                Some(w) => w.min(self.cfg.max_retry_after),
                None => backoff(attempt, self.cfg.backoff_base, self.cfg.backoff_max),
            };
            tracing::debug!(%url, attempt, ?wait, "Retrying.");
            if !self.stop.sleep(wait).await {
                return result;
            }
        }
    }

    /// One HTTP exchange under the host's slot.
    async fn exchange(
        &self,
        url: &Url,
        host: &str,
        cap: usize,
        headers: &header::HeaderMap,
        pool: Option<&str>,
        render: &trawl_core::RenderSpec,
    ) -> Result<Exchange, FetchError> {
        let own_headers = headers;
        // Every request goes out here (pages, robots.txt, sitemaps, each
        // redirect hop): the one place the guard cannot be missed.
        if let Some(guard) = &self.cfg.address_guard
            && let Some(why) = guard.refuses_url(url)
        {
            return Err(FetchError::Refused(why));
        }
        if let Some(at) = &self.autothrottle {
            self.slots.set_delay(host, at.delay(host));
        }
        // The host's slot first (its concurrency across all exits, delay,
        // Crawl-delay), then an exit ready for the host now.
        let _permit = self.slots.acquire(host).await;
        let route = self.routing.pick(host, pool).await?;
        let judged = route.is_judged();
        if route.is_proxied()
            && let Some(guard) = &self.cfg.address_guard
        {
            // The proxy resolves the name, past the guarded resolver:
            // resolve it here too, so a name pointing at a refused
            // address is not handed to the proxy.
            crate::guard::check_resolved(guard, url)
                .await
                .map_err(|refused| FetchError::Refused(refused.0))?;
        }
        let request_headers = self.request_headers(url, route.identity(), headers);
        let sent_headers = self.cfg.record_exchanges.then(|| request_headers.clone());
        let may_render = self.renderer.is_some() && render.mode != trawl_core::RenderMode::Never;
        let user_agent = may_render.then(|| {
            request_headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(&self.cfg.user_agent)
                .to_string()
        });
        let _in_flight = GaugeGuard::new(&self.stats.in_flight);
        CrawlStats::inc(&self.stats.requests);
        let sent = Instant::now();
        let response = match route
            .client()
            .get(url.as_str())
            .headers(request_headers)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let error = FetchError::from_reqwest(&e);
                self.stats.exchange_done(host, None, sent.elapsed());
                self.throttle(host, sent.elapsed(), None);
                self.routing.report_failed(&route, host, sent.elapsed());
                if judged {
                    let failure = if route.is_proxied() {
                        transport_failure(&e, &error)
                    } else {
                        TransportFailure::Target(error.to_string())
                    };
                    let signal = self.cfg.ban_rules.classify(None, &[], Some(failure));
                    self.routing.report(&route, host, signal, sent.elapsed())?;
                }
                return Err(error);
            }
        };
        let status = response.status().as_u16();
        self.throttle(host, sent.elapsed(), Some(status));
        let headers = response.headers();
        let rate = RateInfo::from_response(status, |name| {
            headers.get(name).and_then(|v| v.to_str().ok())
        });
        // Plain-HTTP requests through an HTTP proxy get the proxy's own
        // answers (through SOCKS or a CONNECT tunnel, only the site's).
        let via_http_proxy = url.scheme() == "http"
            && self.routing.proxy_spec(&route).is_some_and(|spec| {
                matches!(spec.scheme(), ProxyScheme::Http | ProxyScheme::Https)
            });
        let refused = via_http_proxy && proxy_refused_credentials(status, headers);
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if (300..400).contains(&status) && status != 304 {
            self.stats.exchange_done(host, Some(status), sent.elapsed());
            self.routing
                .report_pace(&route, host, &rate, sent.elapsed());
            if judged {
                self.routing
                    .report(&route, host, Signal::Ok, sent.elapsed())?;
            }
            return Ok(Exchange::Redirect {
                status,
                location: text(header::LOCATION),
            });
        }
        let raw = sent_headers.map(|sent| {
            Box::new(RawResponse {
                request_headers: header_list(&sent),
                version: match response.version() {
                    reqwest::Version::HTTP_09 => "HTTP/0.9",
                    reqwest::Version::HTTP_10 => "HTTP/1.0",
                    reqwest::Version::HTTP_2 => "HTTP/2.0",
                    reqwest::Version::HTTP_3 => "HTTP/3.0",
                    _ => "HTTP/1.1",
                },
                reason: response
                    .status()
                    .canonical_reason()
                    .unwrap_or("")
                    .to_string(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                ip: response.remote_addr().map(|a| a.ip()),
            })
        });
        let content_type = text(header::CONTENT_TYPE);
        let etag = text(header::ETAG);
        let last_modified = text(header::LAST_MODIFIED);
        let retry_after =
            text(header::RETRY_AFTER).and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let document_headers: Vec<(String, String)> = if may_render {
            header_list(headers)
        } else {
            Vec::new()
        };
        let read = self.read_body(response, cap).await;
        let latency = sent.elapsed();
        self.stats.exchange_done(host, Some(status), latency);
        let (mut body, truncated) = read?;
        let mut rate_limited = false;
        // Rendered only when the page is a clean, whole HTML answer.
        let wants_render = if may_render
            && status < 400
            && status != 304
            && !truncated
            && !refused
            && crate::rendering::is_html(content_type.as_deref())
        {
            crate::rendering::reason(render, &self.auto, url, &body)
        } else {
            None
        };
        let plain_in_auto =
            render.mode == trawl_core::RenderMode::Auto && wants_render.is_none() && status < 400;
        let mut raw_body = None;
        let mut rendered = None;
        let document = RenderInput {
            headers: &document_headers,
            user_agent: user_agent.as_deref(),
            request_headers: own_headers,
        };
        if judged {
            let failure = refused.then_some(TransportFailure::ProxyAuth);
            let mut signal = self
                .cfg
                .ban_rules
                .classify_with(Some(status), &body, failure, &rate);
            if let Signal::RateLimited(_) = &signal {
                rate_limited = true;
            }
            if let (Signal::Ok, Some(reason)) = (&signal, wants_render) {
                match self
                    .render_page(
                        url, &route, status, &body, &document, render, reason, latency,
                    )
                    .await
                {
                    Ok((page, info)) => {
                        // A block page or CAPTCHA built by script is a ban too.
                        signal = self
                            .cfg
                            .ban_rules
                            .classify_with(Some(status), &page, None, &rate);
                        raw_body = Some(std::mem::replace(&mut body, page));
                        rendered = Some(Box::new(info));
                    }
                    Err(error) => {
                        self.routing.report_pace(&route, host, &rate, latency);
                        self.routing.report(&route, host, signal, latency)?;
                        return Err(error);
                    }
                }
            }
            if !matches!(signal, Signal::Banned(_)) {
                self.routing.report_pace(&route, host, &rate, latency);
            }
            self.routing.report(&route, host, signal, latency)?;
        } else {
            rate_limited = self.routing.report_pace(&route, host, &rate, latency);
            if !rate_limited && let Some(reason) = wants_render {
                let (page, info) = self
                    .render_page(
                        url, &route, status, &body, &document, render, reason, latency,
                    )
                    .await?;
                raw_body = Some(std::mem::replace(&mut body, page));
                rendered = Some(Box::new(info));
            }
        }
        if plain_in_auto {
            self.auto.count(false, false, latency.as_millis() as u64);
        }
        Ok(Exchange::Page(Page {
            status,
            content_type,
            etag,
            last_modified,
            retry_after,
            rate_limited,
            body,
            truncated,
            raw,
            raw_body,
            rendered,
        }))
    }

    /// Renders a fetched page in a browser tab that goes out the way the
    /// request did (the same proxy, the session's cookies, the identity's
    /// User-Agent); the session's jar gets the browser's cookies back.
    #[allow(clippy::too_many_arguments)]
    async fn render_page(
        &self,
        url: &Url,
        route: &Route,
        status: u16,
        body: &Bytes,
        document: &RenderInput<'_>,
        spec: &trawl_core::RenderSpec,
        reason: trawl_render::auto::Reason,
        fetch_latency: Duration,
    ) -> Result<(Bytes, RenderedPage), FetchError> {
        let Some(renderer) = &self.renderer else {
            return Err(FetchError::Render {
                reason: "no renderer".into(),
                retryable: false,
            });
        };
        let proxy = self
            .routing
            .proxy_spec(route)
            .map(|spec| crate::rendering::browser_proxy(&spec));
        let cookies = route
            .jar()
            .map(|jar| crate::rendering::jar_cookies(jar, url))
            .unwrap_or_default();
        let mut request_headers: Vec<(String, String)> = self.cfg.headers.clone();
        for (k, v) in document.request_headers {
            if k == header::IF_NONE_MATCH || k == header::IF_MODIFIED_SINCE {
                continue;
            }
            if let Ok(v) = v.to_str() {
                request_headers.push((k.as_str().to_string(), v.to_string()));
            }
        }
        let browser_guard = self
            .cfg
            .address_guard
            .clone()
            .map(|g| g as Arc<dyn trawl_render::RequestGuard>);
        let job = trawl_render::RenderJob {
            url,
            status,
            headers: document.headers,
            body,
            spec,
            proxy: proxy.as_ref(),
            session: route.session_id(),
            user_agent: document.user_agent,
            request_headers: &request_headers,
            cookies: &cookies,
            guard: browser_guard.as_ref(),
        };
        let result = {
            let _busy = GaugeGuard::new(&self.stats.render_busy);
            renderer.render(&job).await
        };
        self.publish_render_stats(false);
        let learned = matches!(reason, trawl_render::auto::Reason::Learned(_));
        match result {
            Ok(page) => {
                CrawlStats::inc(&self.stats.rendered);
                if spec.mode == trawl_core::RenderMode::Auto {
                    self.auto.count(
                        true,
                        learned,
                        (fetch_latency + page.elapsed).as_millis() as u64,
                    );
                }
                if let Some(jar) = route.jar() {
                    crate::rendering::store_cookies(jar, url, &page.cookies);
                }
                let info = RenderedPage {
                    reason: reason.to_string(),
                    screenshot: page.screenshot.map(Bytes::from),
                    pdf: page.pdf.map(Bytes::from),
                    keep_html: spec.html,
                    elapsed: page.elapsed,
                    requests: page.requests,
                    blocked: page.blocked,
                };
                Ok((Bytes::from(page.html), info))
            }
            Err(e) => {
                let retryable = matches!(
                    e,
                    trawl_render::RenderError::Browser(_) | trawl_render::RenderError::Crashed
                );
                Err(FetchError::Render {
                    reason: e.to_string(),
                    retryable,
                })
            }
        }
    }

    /// Renders pages of this crawl in `renderer`'s tabs (per the crawl's
    /// [`FetchConfig::render`] and each request's own spec).
    pub fn with_renderer(mut self, renderer: Arc<trawl_render::Renderer>) -> Downloader {
        self.stats
            .render_tabs
            .store(renderer.config().tabs.max(1) as u64, Ordering::Relaxed);
        self.renderer = Some(renderer);
        self
    }

    /// The renderer, when the crawl renders.
    pub fn renderer(&self) -> Option<&Arc<trawl_render::Renderer>> {
        self.renderer.as_ref()
    }

    /// Put the renderer's state and `auto`'s counts into the crawl stats
    /// (at most every 500 ms unless `force`).
    pub fn publish_render_stats(&self, force: bool) {
        let Some(renderer) = &self.renderer else {
            return;
        };
        if !due(&self.last_render_publish, Duration::from_millis(500), force) {
            return;
        }
        let mut value = renderer.stats().to_json();
        if self.auto.plain.load(Ordering::Relaxed) + self.auto.rendered.load(Ordering::Relaxed) > 0
        {
            value["auto"] = self.auto.to_json();
        }
        *self.stats.render.lock() = Some(value);
    }

    /// The exchange of a final response, with the request headers as sent
    /// (those reqwest adds itself are listed as it sends them).
    fn recorded(&self, url: &Url, page: &Page, raw: RawResponse) -> trawl_core::Exchange {
        let mut request_headers = raw.request_headers;
        let has = |h: &[(String, String)], n: &str| h.iter().any(|(k, _)| k == n);
        if !has(&request_headers, "user-agent") {
            request_headers.insert(0, ("user-agent".into(), self.cfg.user_agent.clone()));
        }
        if !has(&request_headers, "accept") {
            request_headers.push(("accept".into(), "*/*".into()));
        }
        request_headers.push(("accept-encoding".into(), "gzip, br, zstd, deflate".into()));
        trawl_core::Exchange {
            url: url.to_string(),
            method: "GET".to_string(),
            request_headers,
            status: page.status,
            reason: raw.reason,
            http_version: raw.version.to_string(),
            response_headers: raw.headers,
            body: page.raw_body.clone().unwrap_or_else(|| page.body.clone()),
            rendered: page.raw_body.is_some().then(|| page.body.clone()),
            truncated: page.truncated,
            ip: raw.ip,
            date: SystemTime::now(),
            revisit: None,
        }
    }

    /// Feed AutoThrottle one response's latency (time to headers) and status.
    fn throttle(&self, host: &str, latency: Duration, status: Option<u16>) {
        if let Some(at) = &self.autothrottle {
            let delay = at.on_response(host, latency, status, std::time::Instant::now());
            self.slots.set_delay(host, delay);
            self.publish_proxy_stats(false);
        }
    }

    /// Read at most `cap` bytes; past it, stop and drop the connection.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        cap: usize,
    ) -> Result<(Bytes, bool), FetchError> {
        let hint = response.content_length().unwrap_or(0).min(cap as u64) as usize;
        let mut buf = BytesMut::with_capacity(hint);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::from_reqwest(&e))?
        {
            CrawlStats::add(&self.stats.bytes, chunk.len() as u64);
            let room = cap - buf.len();
            if chunk.len() > room {
                buf.extend_from_slice(&chunk[..room]);
                CrawlStats::inc(&self.stats.truncated);
                return Ok((buf.freeze(), true));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((buf.freeze(), false))
    }
}

/// Whether `every` has passed since `last` (or `force`); if so, `last`
/// becomes now. Paces how often state is published into the stats.
pub(crate) fn due(last: &parking_lot::Mutex<Instant>, every: Duration, force: bool) -> bool {
    let mut last = last.lock();
    if !force && last.elapsed() < every {
        return false;
    }
    *last = Instant::now();
    true
}

/// A request's own headers as a header map; a name or value that is not
/// valid HTTP is an error naming it.
fn parse_headers(pairs: &[(String, String)]) -> Result<header::HeaderMap, FetchError> {
    let mut map = header::HeaderMap::new();
    for (k, v) in pairs {
        let name = header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| FetchError::Other(format!("header {k:?}: {e}")))?;
        let value = header::HeaderValue::from_str(v)
            .map_err(|e| FetchError::Other(format!("header {k:?}: {e}")))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// Header map as (name, value) text pairs.
fn header_list(headers: &header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Rounds of a robots.txt fetch that failed on proxies or bans, each
/// after a back-off, before the host counts as unreachable.
const ROBOTS_ROUTE_ROUNDS: u32 = 6;

/// robots.txt is read up to this many bytes (RFC 9309's 500 KiB minimum).
const MAX_ROBOTS_FETCH: usize = trawl_robots::MAX_ROBOTS_BYTES;
