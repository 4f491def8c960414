//! trawl-fetch: the downloader.
//!
//! Turns a [`Request`](trawl_core::Request) into a [`FetchOutcome`] on the
//! async runtime, with everything a polite crawler owes the sites it visits:
//! per-host connection limits and delays ([`slots`]), robots.txt
//! ([`robots_cache`]), bounded redirects checked against the crawl scope, and
//! retries with exponential back-off and jitter that honour `Retry-After`
//! ([`retry`]). Bodies are streamed with a hard cap so a 10 GB response costs
//! at most the cap.
//!
//! # Layout
//! - [`autothrottle`]: per-host delays that follow server latency and back
//!   off on 429/503 (Scrapy's AutoThrottle).
//! - [`config`]: `FetchConfig`, the downloader's settings.
//! - [`downloader`]: `Downloader::fetch`, the whole fetch of one URL.
//! - [`error`]: `FetchError`, typed so the retry policy can classify it.
//! - [`identity`]: User-Agent profiles with matching browser headers, and
//!   `--header` parsing.
//! - [`pacing`]: per (exit, host) request rates: slow start, AIMD on rate
//!   limits, `Retry-After` and `RateLimit` headers.
//! - [`proxy`]: proxy rotation, ban detection, cooldowns and sessions.
//! - [`rendering`]: handing a fetched page to a browser tab when its render
//!   mode says so (`always`, or `auto` and the page needs it).
//! - [`retry`]: back-off and `Retry-After` parsing.
//! - [`robots_cache`]: robots.txt fetched once per host and cached.
//! - [`slots`]: per-host concurrency and delay (Scrapy's download slots).

pub mod autothrottle;
pub mod config;
pub mod downloader;
pub mod error;
pub mod fetcher;
pub mod guard;
pub mod identity;
pub mod pacing;
pub mod proxy;
pub mod rendering;
pub mod retry;
pub mod robots_cache;
mod routing;
pub mod slots;

pub use config::FetchConfig;
pub use downloader::{Downloader, FetchOutcome, RequestOptions};
pub use error::FetchError;
pub use fetcher::Fetcher;
pub use rendering::RenderedPage;
