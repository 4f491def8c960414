//! Downloader settings.

use std::time::Duration;

/// Everything the downloader can be told. Defaults follow what a careful
/// Scrapy user would set.
#[derive(Debug, Clone)]
pub struct FetchConfig {
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
}

impl Default for FetchConfig {
    fn default() -> Self {
        let version = env!("CARGO_PKG_VERSION");
        FetchConfig {
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
        }
    }
}
