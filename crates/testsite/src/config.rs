//! Configuration of the generated test site ([`SiteConfig`], [`RobotsMode`]).

use std::time::Duration;

/// What `/robots.txt` answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RobotsMode {
    /// The built-in robots.txt (several groups, wildcards, sitemaps); see
    /// [`crate::robots::default_robots_txt`].
    #[default]
    Default,
    /// `/robots.txt` answers 404: everything is allowed (RFC 9309 §2.3.1.3).
    None,
    /// `/robots.txt` answers 500: a correct crawler assumes complete
    /// disallow (RFC 9309 §2.3.1.4), so the ground truth is empty.
    ServerError,
    /// Serve this text verbatim (status 200), except that the placeholder
    /// `{base}` is replaced by the site's base URL as seen by the client
    /// (e.g. `http://127.0.0.1:41234`), so custom files can carry `Sitemap:`
    /// lines. The ground truth applies these rules for the `trawl` token.
    Custom(String),
}

/// Parameters of the generated site. Everything is deterministic for a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// Seed of the generator: same seed (and other fields) → same site.
    pub seed: u64,
    /// Number of `/p/{i}` pages (`i` in `0..pages`).
    pub pages: usize,
    /// Number of links from each `/p/` page to other `/p/` pages.
    pub fanout: usize,
    /// Median size of a `/p/` page in bytes (actual sizes vary ±40 %, but a
    /// page is never smaller than its markup and links).
    pub page_bytes: usize,
    /// Link the fault/trap routes from `/` (they are always *served*).
    pub nasty: bool,
    /// What `/robots.txt` answers.
    pub robots: RobotsMode,
    /// Extra delay added to every `/p/` page response.
    pub latency: Option<Duration>,
    /// Keep a per-request log in [`crate::SiteStats::log`] (bounded to
    /// [`crate::LOG_CAPACITY`] entries). The benchmark turns it off.
    pub log_requests: bool,
    /// Also serve a product catalogue (`/shop/…`) and a blog (`/blog/…`)
    /// with structured data, linked from `/` (see [`crate::Product`],
    /// [`crate::Article`]). Off: the site is exactly as without it.
    pub shop: bool,
    /// Number of products when `shop` is on.
    pub shop_products: usize,
    /// Number of blog articles when `shop` is on.
    pub shop_articles: usize,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            seed: 1,
            pages: 200,
            fanout: 8,
            page_bytes: 4000,
            nasty: false,
            robots: RobotsMode::Default,
            latency: None,
            log_requests: true,
            shop: false,
            shop_products: 100,
            shop_articles: 20,
        }
    }
}
