//! trawl's own deterministic test web site: a real HTTP server on a loopback
//! address that every integration test and the benchmark crawl.
//!
//! * [`Site::generate`] builds a page graph from a [`SiteConfig`] (seeded,
//!   identical on every platform) and knows its ground truth:
//!   [`Site::ground_truth`], [`Site::disallowed_paths`],
//!   [`Site::sitemap_only_paths`], [`Site::title_of`] and, for the fault
//!   routes, [`Site::expected`].
//! * [`TestSite::start`] serves it (HTTP/1.1 and h2c, hyper 1) and records
//!   [`SiteStats`]: per-path and per-HTTP-version counts, per-Host request
//!   counts and maximum concurrency, and an optional bounded request log.
//! * [`TestSite::start_tls`] serves it over HTTPS instead (a self-signed
//!   certificate made at start, [`TestSite::ca_pem`]; ALPN `h2` and
//!   `http/1.1`). Absolute links, sitemaps and robots.txt then say
//!   `https://`.
//!
//! Normal pages are always sent uncompressed, whatever `Accept-Encoding`
//! says (compression would cost the benchmark more CPU than it saves on
//! loopback); `/gzip` and `/brotli` are always compressed, and
//! `/sitemap2.xml.gz` is a gzip file.
//!
//! Routes: `/`, `/p/{i}`, `/robots.txt`, `/sitemap_index.xml`,
//! `/sitemap1.xml`, `/sitemap2.xml.gz`, `/sitemap.txt`, `/private/secret`,
//! `/private/public-ok`, `/private/from-sitemap`, `/nottrawl/page`,
//! `/__testsite/stats` (JSON, not counted), and the fault routes
//! `/redirect/chain/{n}`, `/redirect/loop/{a,b}`, `/redirect/offsite`,
//! `/status/{code}`, `/flaky/{id}`, `/flaky429/{id}`, `/slow/{ms}`,
//! `/stall`, `/hang`, `/reset`, `/gzip`, `/brotli`, `/huge`, `/malformed`,
//! `/binary`, `/latin1`, `/sjis`, `/calendar/{year}/{month}`,
//! `/session/{n}?sid=…`; with [`SiteConfig::shop`] also `/shop/`,
//! `/shop/page/{n}`, `/shop/product/{id}`, `/shop/images/{id}.png`,
//! `/blog/`, `/blog/page/{n}` and `/blog/{slug}` (ground truth:
//! [`Site::products`], [`Site::articles`], [`Site::listing_pages`],
//! [`Site::blog_pages`]); with [`SiteConfig::traps`] the trap site of
//! [`TrapSite`] (`/products?page={n}`, `/p?id={id}`, `/news?page={n}`,
//! `/archive?page={n}`, `/docs/…`, `/calendar?d={n}`, `/events/…/`,
//! `/s/{sid}/…`, `/search?…`; ground truth [`Site::traps`], requests per
//! trap [`SiteStats::by_trap`]). Paths are matched exactly as sent (no
//! percent-decoding, no trailing-slash or leading-zero tolerance), so a
//! crawler that fails to canonicalize gets 404s.
//!
//! With [`SiteConfig::defended`] the site defends itself like a real one
//! ([`Defense`]): it sets a `sid` session cookie, rate-limits per client IP
//! and/or session and bans offenders for a while with 429, 403 or a CAPTCHA
//! page (`/robots.txt` exempt); [`SiteStats::by_client`],
//! [`SiteStats::by_session`] and the request log say who got what.
//!
//! Test utilities beyond the site: [`postgres::TempPostgres`] (a private,
//! throwaway PostgreSQL server that tests may stop, kill and restart),
//! [`tmpfs::Tmpfs`] (a small tmpfs mount to provoke `ENOSPC`) and
//! [`proxies::TinyProxy`] / [`proxies::MicroSocks`] (real HTTP and SOCKS5
//! proxies on loopback, each with its own outgoing address, so the site
//! sees one client IP per proxy).

mod body;
mod compress;
mod config;
mod defense;
#[cfg(feature = "fixtures")]
pub mod js_site;
#[cfg(feature = "fixtures")]
pub mod nginx;
#[cfg(feature = "fixtures")]
pub mod postgres;
#[cfg(feature = "fixtures")]
pub mod proxies;
mod render;
mod rng;
pub mod robots;
mod server;
mod shop;
mod site;
mod stats;
mod tls;
#[cfg(feature = "fixtures")]
pub mod tmpfs;
mod traps;

pub use config::{
    BanAnswer, BanKey, CAPTCHA_TEXT, Defense, RobotsMode, SiteConfig, parse_duration,
};
pub use server::{HUGE_BYTES, STATS_PATH, TestSite};
pub use shop::{ARTICLES_PER_PAGE, Article, PRODUCTS_PER_PAGE, Product};
pub use site::{Expected, LATIN1_TITLE, ROOT_TITLE, SJIS_TITLE, Site, error_kind};
pub use stats::{ClientCounts, HostStats, LOG_CAPACITY, RequestLogEntry, SiteStats};
pub use traps::{
    ARCHIVE_REAL_PAGES, NEWS_PAGES, TRAP_ENTRIES, TRAP_NAMES, TRAP_PRODUCTS_PER_PAGE, TrapSite,
};

/// Errors of the `trawl-testsite` binary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or serving failed.
    #[error("cannot serve on {addr}: {source}")]
    Serve {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing the `--ca-out` certificate file failed.
    #[error("cannot write the certificate to {}: {source}", path.display())]
    WriteCa {
        /// The file asked for.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing to stdout failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}
