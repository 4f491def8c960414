//! trawl-extract: the CPU work done on every fetched page.
//!
//! Everything here is synchronous and runs on the engine's parse pool, never
//! on the async runtime: decoding the body's charset, scanning it for links
//! and page metadata, and hashing it.
//!
//! # Layout
//! - [`charset`]: which encoding a body is in, and decoding it to UTF-8.
//! - [`css`]: CSS selectors with parsel's `::text` / `::attr(name)`, and
//!   errors that name the selector and the column.
//! - [`html`]: link and metadata extraction for every page's record, over
//!   [`scan`] (a single-pass scanner for the few tags it needs, no DOM).
//! - [`select`]: user field rules (CSS selector, regex, type conversion)
//!   over a scraper DOM.
//! - [`structured`]: JSON-LD, OpenGraph, Twitter cards, `<meta>` pairs and
//!   microdata.
//! - [`xpath`]: XPath field selectors (skyscraper), for Scrapy habits.
//! - [`readable`]: main-content text and Markdown (htmd), absolute link and
//!   image lists.
//! - [`builtin`]: the named extractors of item rules and scrapes, over the
//!   two above.

pub mod builtin;
pub mod charset;
pub mod css;
pub mod html;
pub mod readable;
pub mod scan;
pub mod select;
pub mod simhash;
pub mod structured;
pub mod xpath;

pub use html::{PageInfo, extract_page, extract_page_with, page_simhash};

/// blake3 of a body, as lowercase hex.
pub fn content_hash(body: &[u8]) -> String {
    blake3::hash(body).to_hex().to_string()
}

/// Whether a Content-Type (or its absence with an HTML-looking body) should
/// be parsed as HTML.
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    match content_type {
        Some(ct) => {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("text/html") || ct.starts_with("application/xhtml")
        }
        None => {
            let head = &body[..body.len().min(512)];
            let head = String::from_utf8_lossy(head).to_ascii_lowercase();
            head.contains("<html") || head.contains("<!doctype html")
        }
    }
}
