//! trawl-core: the shared vocabulary of the crawler.
//!
//! Every other crate speaks in these types: a [`Request`] leaves the
//! [`Frontier`], the downloader turns it into a fetch outcome, the parse stage
//! turns that into an [`Item`] plus child requests, and [`Sink`]s write items
//! out. Keeping the types and the seams (traits) here lets the frontier and the
//! sinks be swapped (memory, persistent, Redis; JSONL, CSV, …) without the
//! engine knowing which one it drives.
//!
//! # Layout
//! - [`canon`]: one canonical form per URL, so duplicates are found by equality.
//! - [`scope`]: which URLs a crawl may visit (host/domain/prefix, regexes, traps).
//! - [`request`]: a URL scheduled for fetching, with its depth and referrer.
//! - [`item`]: the record written for each fetched page.
//! - [`frontier`]: the `Frontier` trait (queue + seen-set with leases).
//! - [`sink`]: the `Sink` trait (where items go).
//! - [`exchange`]: a raw HTTP exchange, for sinks that archive them (WARC).
//! - [`stats`]: lock-free counters shared by all stages ([`histogram`],
//!   [`host_latency`]).
//! - [`render`]: how a page is rendered in a browser (mode, waits, actions).

pub mod canon;
pub mod checkpoint;
pub mod config;
pub mod exchange;
pub mod frontier;
pub mod histogram;
pub mod host_latency;
pub mod item;
pub mod number;
pub mod render;
pub mod request;
pub mod scope;
pub mod sink;
pub mod spider;
pub mod stats;

pub use canon::{canonicalize, host_key, parse_canonical};
pub use exchange::{Exchange, Revisit, RevisitProfile};
pub use frontier::{Frontier, FrontierError, FrontierStats, Lease, Visit};
pub use histogram::{Histogram, HistogramSnapshot};
pub use item::{Item, PageRecord};
pub use render::{RenderMode, RenderSpec};
pub use request::{Prehashed, PreviousVisit, Request, fingerprint};
pub use scope::{Scope, ScopeConfig, ScopeError, ScopeMode, ScopeReject};
pub use sink::{Sink, SinkError};
pub use spider::{Output, Response, Spider};
pub use stats::{
    CrawlStats, QueueDepth, QueueProbe, SinkStats, SinkStatsSnapshot, StatsSnapshot, TrapReport,
};
pub use url::Url;
