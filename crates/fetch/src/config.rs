//! Downloader settings.

use std::time::Duration;

/// Everything the downloader can be told. Defaults follow what a careful
/// Scrapy user would set.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Keep each page's raw exchange (headers, body) in the outcome, for
    /// archiving sinks (WARC).
    pub record_exchanges: bool,
    /// Sent as the User-Agent header.
    pub user_agent: String,
    /// The product token matched against robots.txt `User-agent` lines.
    pub robots_token: String,
    /// Obey robots.txt (on by default).
    pub obey_robots: bool,
    pub connect_timeout: Duration,
    /// Limit for one HTTP exchange, headers and body.
    pub timeout: Duration,
    /// Stop reading a body after this many (decoded) bytes.
    pub max_body: usize,
    pub max_redirects: u32,
    /// Retries after the first attempt, for timeouts, resets, 5xx and 429.
    pub retries: u32,
    /// First back-off step; doubles each retry, with full jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A server's Retry-After longer than this is cut to this.
    pub max_retry_after: Duration,
    /// Concurrent requests per host.
    pub per_host: usize,
    /// Minimum time between request starts on one host.
    pub delay: Duration,
    /// Upper bound for a robots.txt Crawl-delay.
    pub max_crawl_delay: Duration,
    /// Idle keep-alive connections kept per host.
    pub pool_idle_per_host: usize,
    /// Extra root certificates to trust for HTTPS, each a PEM file's bytes
    /// (one or more `CERTIFICATE` blocks), on top of the system's roots.
    /// A file without a certificate, or one that does not parse, makes
    /// [`crate::Downloader::new`] fail with [`crate::FetchError::Other`].
    pub extra_root_certs: Vec<Vec<u8>>,
    /// Headers sent with every request (`--header`), after the identity's.
    pub headers: Vec<(String, String)>,
    /// Rotate User-Agent profiles (with their matching headers): one per
    /// session with sessions, else one at random per request.
    pub identities: Option<std::sync::Arc<crate::identity::Identities>>,
    /// Adapt each host's delay to its latency and back off on 429/503.
    pub autothrottle: Option<crate::autothrottle::AutoThrottleConfig>,
    /// Send requests through these proxies (rotated by `proxy_strategy`).
    pub proxies: Vec<crate::proxy::ProxySpec>,
    pub proxy_strategy: crate::proxy::Strategy,
    /// Named proxy pools that hosts (`host_pools`) and requests (a spider
    /// rule's `proxy_pool`) can choose instead of `proxies`.
    pub proxy_pools: Vec<crate::proxy::NamedPool>,
    /// Hosts that go through a named pool (or `direct`); the first match
    /// wins.
    pub host_pools: Vec<crate::proxy::HostRule>,
    /// Cooldowns and retirement of proxies.
    pub proxy_health: crate::proxy::HealthConfig,
    /// What counts as a ban (with proxies or sessions).
    pub ban_rules: crate::proxy::BanRules,
    /// Sticky sessions (proxy + cookie jar + identity), Crawlee-style.
    pub sessions: Option<SessionConfig>,
    /// Tries of one request on different proxies/sessions after bans or
    /// proxy failures (on top of `retries`).
    pub proxy_attempts: u32,
    /// Per (exit, host) request rates ([`crate::pacing`]); its
    /// `max_in_flight` is set from `per_host` by the downloader.
    pub pacing: crate::pacing::PacingConfig,
    /// How pages are rendered unless their request says otherwise
    /// (`--render`); rendering needs a renderer
    /// ([`crate::Downloader::with_renderer`]).
    pub render: trawl_core::RenderSpec,
    /// Tries of one request after rate-limit answers (429, …), on top of
    /// `retries`: each waits for a ready exit, not a back-off.
    pub rate_limit_retries: u32,
    /// Refuse loopback, private, link-local, CGNAT, multicast and metadata
    /// addresses (the SSRF guard of [`crate::guard`]): off for crawls a
    /// user runs, on for crawls run on someone's behalf (the Scraper API).
    pub address_guard: Option<std::sync::Arc<crate::guard::AddressGuard>>,
}

impl FetchConfig {
    /// Requests in flight to one host across all exits: `per_host` for
    /// each proxy of the largest pool (the site sees each exit as another
    /// client), `per_host` when crawling directly. The frontier's per-host
    /// lease limit should be this.
    pub fn host_concurrency(&self) -> usize {
        let exits = self
            .proxy_pools
            .iter()
            .map(|p| p.proxies.len())
            .chain([self.proxies.len()])
            .max()
            .unwrap_or(0)
            .max(1);
        self.per_host.max(1).saturating_mul(exits)
    }
}

/// A session pool's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    pub max_sessions: usize,
    /// Requests per session before it is replaced (0: no limit).
    pub max_uses: u32,
    /// Net failures before a session is replaced.
    pub max_errors: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_sessions: 20,
            max_uses: 50,
            max_errors: 3,
        }
    }
}

impl Default for FetchConfig {
    fn default() -> Self {
        let version = env!("CARGO_PKG_VERSION");
        FetchConfig {
            record_exchanges: false,
            user_agent: format!(
                "Mozilla/5.0 (compatible; trawl/{version}; +https://github.com/trawl-rs/trawl)"
            ),
            robots_token: "trawl".to_string(),
            obey_robots: true,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body: 10 * 1024 * 1024,
            max_redirects: 10,
            retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            per_host: 2,
            delay: Duration::ZERO,
            max_crawl_delay: Duration::from_secs(30),
            pool_idle_per_host: 2,
            extra_root_certs: Vec::new(),
            headers: Vec::new(),
            identities: None,
            autothrottle: None,
            proxies: Vec::new(),
            proxy_strategy: crate::proxy::Strategy::default(),
            proxy_pools: Vec::new(),
            host_pools: Vec::new(),
            proxy_health: crate::proxy::HealthConfig::default(),
            ban_rules: crate::proxy::BanRules::default(),
            sessions: None,
            proxy_attempts: 8,
            pacing: crate::pacing::PacingConfig::default(),
            render: trawl_core::RenderSpec::mode(trawl_core::RenderMode::Never),
            rate_limit_retries: 10,
            address_guard: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use trawl_core::CrawlStats;

    use super::FetchConfig;
    use crate::{Downloader, FetchError};

    /// A self-signed P-256 CA certificate (no key anywhere; only parsed).
    const GOOD_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBijCCATGgAwIBAgIUdEeMgIDCO0DjScdF6gIH5asujBUwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPdHJhd2wtdGVzdC1yb290MCAXDTI2MTEyNTEzNTA1NVoYDzIx
MjYxMTAxMTM1MDU1WjAaMRgwFgYDVQQDDA90cmF3bC10ZXN0LXJvb3QwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAATl+LuuwcuuI09+d6WPbE+7GQrJXkqpJeHPKC1r
DZ5o+pX7lSYLixjzOVYVoTlcR99KREK7Fyi11ev9VZs86vHJo1MwUTAdBgNVHQ4E
FgQU8D8F8AhAs+XtLgEhQxf8NnjKZQ4wHwYDVR0jBBgwFoAU8D8F8AhAs+XtLgEh
Qxf8NnjKZQ4wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiAylKfg
2id/mSeFPdkjbJ/r67A/lXVL3vn2P9QeEuk2CAIgD9cu0y7oMHW3VPRwzZvLGs9X
jPvgnzJ/eAMy+gC0oh8=
-----END CERTIFICATE-----
";

    fn build(pems: &[&str]) -> Result<Downloader, FetchError> {
        let cfg = FetchConfig {
            extra_root_certs: pems.iter().map(|p| p.as_bytes().to_vec()).collect(),
            ..FetchConfig::default()
        };
        Downloader::new(cfg, Arc::new(CrawlStats::default()))
    }

    fn other_message(r: Result<Downloader, FetchError>) -> String {
        match r {
            Err(FetchError::Other(m)) => m,
            Err(e) => panic!("expected FetchError::Other, got {e:?}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn no_extra_roots_by_default() {
        assert!(FetchConfig::default().extra_root_certs.is_empty());
        assert!(build(&[]).is_ok());
    }

    #[test]
    fn good_certificates_and_bundles_are_accepted() {
        assert!(build(&[GOOD_PEM]).is_ok());
        let bundle = format!("# a comment line\n{GOOD_PEM}\n{GOOD_PEM}");
        assert!(build(&[GOOD_PEM, &bundle]).is_ok());
    }

    #[test]
    fn a_file_without_a_certificate_is_named() {
        let m = other_message(build(&[GOOD_PEM, "just some text\n"]));
        assert!(m.contains("#2") && m.contains("no PEM CERTIFICATE"), "{m}");
        let key_only = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let m = other_message(build(&[key_only]));
        assert!(m.contains("#1") && m.contains("no PEM CERTIFICATE"), "{m}");
        let m = other_message(build(&[""]));
        assert!(m.contains("#1"), "{m}");
    }

    #[test]
    fn broken_pem_is_an_error_not_a_panic() {
        let bad_base64 =
            "-----BEGIN CERTIFICATE-----\n!!!*** not base64 ***\n-----END CERTIFICATE-----\n";
        let m = other_message(build(&[bad_base64]));
        assert!(m.contains("#1") && m.contains("not valid PEM"), "{m}");
        let unterminated = "-----BEGIN CERTIFICATE-----\nMIIBijCCATGgAwIBAgIU\n";
        let m = other_message(build(&[unterminated]));
        assert!(m.contains("#1"), "{m}");
    }

    #[test]
    fn pem_that_is_not_a_certificate_fails_the_build() {
        // Valid PEM and base64, but the DER inside is no certificate.
        let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let m = other_message(build(&[not_der]));
        assert!(m.contains("extra root certificate"), "{m}");
        assert!(m.contains("BadEncoding"), "{m}");
    }
}
