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
//! [`Site::blog_pages`]). Paths are matched exactly as sent (no
//! percent-decoding, no trailing-slash or leading-zero tolerance), so a
//! crawler that fails to canonicalize gets 404s.
//!
//! Test utilities beyond the site: [`postgres::TempPostgres`] (a private,
//! throwaway PostgreSQL server that tests may stop, kill and restart) and
//! [`tmpfs::Tmpfs`] (a small tmpfs mount to provoke `ENOSPC`).

mod body;
mod compress;
mod config;
pub mod postgres;
mod render;
mod rng;
pub mod robots;
mod server;
mod shop;
mod site;
mod stats;
mod tls;
pub mod tmpfs;

pub use config::{RobotsMode, SiteConfig};
pub use server::{HUGE_BYTES, STATS_PATH, TestSite};
pub use shop::{ARTICLES_PER_PAGE, Article, PRODUCTS_PER_PAGE, Product};
pub use site::{Expected, LATIN1_TITLE, ROOT_TITLE, SJIS_TITLE, Site, error_kind};
pub use stats::{HostStats, LOG_CAPACITY, RequestLogEntry, SiteStats};

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
