//! The `Spider` trait: the seam between the engine and whatever turns
//! pages into items (a declarative spider file, a Rust spider).

use crate::{Item, Request, Url};

/// A fetched page as a spider sees it.
pub struct Response<'a> {
    /// The request that led here (depth, referrer, callback).
    pub request: &'a Request,
    /// The URL the page came from, after redirects.
    pub url: &'a Url,
    pub status: u16,
    pub content_type: Option<&'a str>,
    /// The body decoded to UTF-8.
    pub text: &'a str,
}

/// What a spider makes of a response.
#[derive(Debug, Default)]
pub struct Output {
    /// Items for the sinks.
    pub items: Vec<Item>,
    /// Pages to fetch next (the engine still applies scope, depth and dedupe).
    pub requests: Vec<Request>,
    /// Error records (e.g. a required field missing) for the error output.
    pub errors: Vec<Item>,
}

/// Parses responses into items and requests, like a Scrapy spider.
///
/// Implementations must be `Send + Sync`: one spider serves every parse
/// thread at once.
pub trait Spider: Send + Sync {
    /// A short name for logs and stats.
    fn name(&self) -> &str;
    /// Where the crawl starts.
    fn start_urls(&self) -> Vec<Url>;
    /// Turn one HTML response into items and follow-up requests.
    fn parse(&self, response: &Response<'_>) -> Output;
}
