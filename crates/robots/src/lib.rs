//! trawl-robots: the crawler's politeness inputs, robots.txt and sitemaps.
//!
//! Before fetching anything from a site the crawler fetches its robots.txt
//! and asks [`Robots::is_allowed`] about every URL; the sitemaps it lists
//! (and any others found) are parsed with [`sitemap::parse`] to seed the
//! frontier. Both parsers take untrusted bytes from the network, so both are
//! size-capped and never panic.
//!
//! # Layout
//!
//! - [`robots`](crate::Robots) (`robots.rs`): RFC 9309 parsing, group
//!   selection and the allow/deny decision; [`MAX_ROBOTS_BYTES`].
//! - `matcher.rs` (private): percent-encoding normalisation and the compiled,
//!   linear-time wildcard matcher for `Allow`/`Disallow` patterns.
//! - [`sitemap`] (`sitemap.rs`): XML urlset / sitemapindex and plain-text
//!   sitemaps, gzip-aware with a decompression cap.
//!
//! # Example
//!
//! ```
//! use trawl_robots::{Robots, sitemap};
//!
//! let body = b"User-agent: *\nDisallow: /private/\nCrawl-delay: 1.5\n\
//!              Sitemap: https://example.com/sitemap.xml\n";
//! let robots = Robots::from_status(200, body, "trawl");
//! assert!(robots.is_allowed("/public?page=2"));
//! assert!(!robots.is_allowed("/private/x"));
//! assert_eq!(robots.crawl_delay(), Some(std::time::Duration::from_millis(1500)));
//! assert_eq!(robots.sitemaps(), ["https://example.com/sitemap.xml"]);
//!
//! let xml = br#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
//!   <url><loc>https://example.com/a</loc></url></urlset>"#;
//! match sitemap::parse(xml)? {
//!     sitemap::Sitemap::UrlSet(urls) => assert_eq!(urls[0].loc, "https://example.com/a"),
//!     sitemap::Sitemap::Index(_) => unreachable!(),
//! }
//! # Ok::<(), trawl_robots::SitemapError>(())
//! ```

mod matcher;
mod robots;
pub mod sitemap;

pub use robots::{MAX_ROBOTS_BYTES, Robots};
pub use sitemap::{Sitemap, SitemapError, SitemapUrl};
