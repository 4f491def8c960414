//! The downloader: the whole fetch of one URL.
//!
//! For each hop of a redirect chain: ask robots.txt, take the host's slot,
//! send, and read the body under the cap; on a retryable failure, back off
//! (or wait what `Retry-After` says, also pushing back every other request
//! to that host) and try again. Each redirect hop is canonicalized and
//! checked for loops, the hop limit and the crawl scope before it is
//! followed.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header;
use tokio::sync::Notify;
use trawl_core::{CrawlStats, Url, canonicalize, host_key, stats::GaugeGuard};
use trawl_robots::Robots;

use crate::config::FetchConfig;
use crate::error::{FetchError, is_retryable_status};
use crate::retry::{backoff, parse_retry_after};
use crate::robots_cache::{RobotsCache, robots_path, robots_url, rules_from_response};
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
    body: Bytes,
    truncated: bool,
    /// Version, reason, headers and peer of the response, when recorded.
    raw: Option<RawResponse>,
}

struct RawResponse {
    version: &'static str,
    reason: String,
    headers: Vec<(String, String)>,
    ip: Option<std::net::IpAddr>,
}

/// Fetches URLs politely. Cheap to share (`Arc`).
pub struct Downloader {
    client: reqwest::Client,
    cfg: FetchConfig,
    slots: Slots,
    robots: RobotsCache,
    stats: Arc<CrawlStats>,
    /// Set when the crawl is stopping: no more retries, waits cut short.
    stopping: AtomicBool,
    stop_notify: Notify,
}

impl Downloader {
    /// Builds the HTTP client (rustls; HTTP/2 when the server offers it by
    /// ALPN, else HTTP/1.1) trusting the system's roots plus
    /// `cfg.extra_root_certs`. A bad certificate is a [`FetchError::Other`]
    /// naming it, never a panic.
    pub fn new(cfg: FetchConfig, stats: Arc<CrawlStats>) -> Result<Downloader, FetchError> {
        /// The error and its sources (reqwest's Display leaves the cause out).
        fn chain(err: &dyn std::error::Error) -> String {
            let mut out = err.to_string();
            let mut source = err.source();
            while let Some(e) = source {
                out.push_str(": ");
                out.push_str(&e.to_string());
                source = e.source();
            }
            out
        }

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
        let mut builder = reqwest::Client::builder()
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
            builder = builder.tls_certs_merge(roots);
        }
        let client = builder.build().map_err(|e| {
            if extra_roots > 0 {
                FetchError::Other(format!(
                    "building the HTTP client with {extra_roots} extra root certificate(s): {}",
                    chain(&e)
                ))
            } else {
                FetchError::Other(format!("building the HTTP client: {}", chain(&e)))
            }
        })?;
        let slots = Slots::new(cfg.per_host, cfg.delay);
        Ok(Downloader {
            client,
            cfg,
            slots,
            robots: RobotsCache::default(),
            stats,
            stopping: AtomicBool::new(false),
            stop_notify: Notify::new(),
        })
    }

    /// Stop retrying: requests in flight finish with what they have.
    pub fn stop_retrying(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop_notify.notify_waiters();
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
            let mut retries = 0;
            match self
                .exchange_with_retries(
                    &target,
                    MAX_ROBOTS_FETCH,
                    &header::HeaderMap::new(),
                    &mut retries,
                )
                .await
            {
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

    /// Fetch `url`, following redirects that `in_scope` accepts.
    pub async fn fetch(&self, url: &Url, in_scope: &(dyn Fn(&Url) -> bool + Sync)) -> FetchOutcome {
        self.fetch_conditional(url, None, None, in_scope).await
    }

    /// [`Downloader::fetch`] as a conditional GET: `If-None-Match` and
    /// `If-Modified-Since` from an earlier fetch's validators, so an
    /// unchanged page answers 304 without a body.
    pub async fn fetch_conditional(
        &self,
        url: &Url,
        etag: Option<&str>,
        last_modified: Option<&str>,
        in_scope: &(dyn Fn(&Url) -> bool + Sync),
    ) -> FetchOutcome {
        let mut conditional = header::HeaderMap::new();
        for (name, value) in [
            (header::IF_NONE_MATCH, etag),
            (header::IF_MODIFIED_SINCE, last_modified),
        ] {
            if let Some(v) = value.and_then(|v| header::HeaderValue::from_str(v).ok()) {
                conditional.insert(name, v);
            }
        }
        let started = Instant::now();
        let mut current = url.clone();
        let mut visited: HashSet<String> = HashSet::new();
        visited.insert(current.as_str().to_string());
        let mut redirects = 0u32;
        let mut retries = 0u32;
        let mut last_status = None;
        let fail = |final_url: Url, status, redirects, retries, error| FetchOutcome {
            final_url,
            status,
            content_type: None,
            etag: None,
            last_modified: None,
            body: Bytes::new(),
            truncated: false,
            redirects,
            retries,
            elapsed: started.elapsed(),
            error: Some(error),
            exchange: None,
        };
        loop {
            if self.cfg.obey_robots
                && !self
                    .robots(&current)
                    .await
                    .is_allowed(&robots_path(&current))
            {
                CrawlStats::inc(&self.stats.robots_denied);
                return fail(
                    current,
                    last_status,
                    redirects,
                    retries,
                    FetchError::RobotsDenied,
                );
            }
            // Validators belong to the requested URL, not to redirect targets.
            let headers = if redirects == 0 {
                conditional.clone()
            } else {
                header::HeaderMap::new()
            };
            match self
                .exchange_with_retries(&current, self.cfg.max_body, &headers, &mut retries)
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
                        .map(|raw| self.recorded(&current, &headers, &page, raw));
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
        retries: &mut u32,
    ) -> Result<Exchange, FetchError> {
        let host = host_key(url);
        let mut attempt = 0u32;
        loop {
            let result = self.exchange(url, &host, cap, headers).await;
            let (retryable, server_wait) = match &result {
                Ok(Exchange::Page(p)) => (is_retryable_status(p.status), p.retry_after),
                Ok(Exchange::Redirect { .. }) => (false, None),
                Err(e) => (e.is_retryable(), None),
            };
            if !retryable || attempt >= self.cfg.retries || self.stopping.load(Ordering::SeqCst) {
                return result;
            }
            attempt += 1;
            *retries += 1;
            CrawlStats::inc(&self.stats.retries);
            let wait = match server_wait {
                Some(w) => {
                    let w = w.min(self.cfg.max_retry_after);
                    // The whole host is asked to slow down, not just this URL.
                    self.slots.defer(&host, w);
                    w
                }
                None => backoff(attempt, self.cfg.backoff_base, self.cfg.backoff_max),
            };
            tracing::debug!(%url, attempt, ?wait, "Retrying.");
            let stopped = self.stop_notify.notified();
            if self.stopping.load(Ordering::SeqCst) {
                return result;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped => return result,
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
    ) -> Result<Exchange, FetchError> {
        let _permit = self.slots.acquire(host).await;
        let _in_flight = GaugeGuard::new(&self.stats.in_flight);
        CrawlStats::inc(&self.stats.requests);
        let response = self
            .client
            .get(url.as_str())
            .headers(headers.clone())
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if (300..400).contains(&status) && status != 304 {
            return Ok(Exchange::Redirect {
                status,
                location: text(header::LOCATION),
            });
        }
        let raw = self.cfg.record_exchanges.then(|| RawResponse {
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
        });
        let content_type = text(header::CONTENT_TYPE);
        let etag = text(header::ETAG);
        let last_modified = text(header::LAST_MODIFIED);
        let retry_after =
            text(header::RETRY_AFTER).and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let (body, truncated) = self.read_body(response, cap).await?;
        Ok(Exchange::Page(Page {
            status,
            content_type,
            etag,
            last_modified,
            retry_after,
            body,
            truncated,
            raw,
        }))
    }

    /// The exchange of a final response, with the request headers as sent
    /// (those reqwest adds itself are listed as it sends them).
    fn recorded(
        &self,
        url: &Url,
        extra: &header::HeaderMap,
        page: &Page,
        raw: RawResponse,
    ) -> trawl_core::Exchange {
        let mut request_headers = vec![
            ("user-agent".to_string(), self.cfg.user_agent.clone()),
            ("accept".to_string(), "*/*".to_string()),
            (
                "accept-encoding".to_string(),
                "gzip, br, zstd, deflate".to_string(),
            ),
        ];
        for (k, v) in extra {
            request_headers.push((
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
        }
        trawl_core::Exchange {
            url: url.to_string(),
            method: "GET".to_string(),
            request_headers,
            status: page.status,
            reason: raw.reason,
            http_version: raw.version.to_string(),
            response_headers: raw.headers,
            body: page.body.clone(),
            truncated: page.truncated,
            ip: raw.ip,
            date: SystemTime::now(),
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

/// robots.txt is read up to this many bytes (RFC 9309's 500 KiB minimum).
const MAX_ROBOTS_FETCH: usize = trawl_robots::MAX_ROBOTS_BYTES;
