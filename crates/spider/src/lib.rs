//! trawl-spider: turning pages into structured items.
//!
//! A [`Spider`] is Scrapy's spider: it names the start URLs and parses each
//! response into items and follow-up requests. It runs on the engine's
//! parse pool (CPU threads), so everything here is synchronous.
//!
//! # Layout
//! - the `Spider` trait and what it works with live in `trawl-core`
//!   (re-exported here), so the engine needs no spider crate.
//! - [`declarative`]: a spider described by a TOML file (`trawl run spider.toml`).
//! - [`pipeline`]: the item pipeline stages a spider file's `[[pipeline]]`
//!   tables configure (the `trawl-pipeline` crate).

pub mod declarative;

pub use declarative::{DeclarativeSpider, SpiderFileError};
pub use trawl_core::spider::{Output, Response, Spider};
/// The trait's module, as before it moved to `trawl-core`.
pub mod spider {
    pub use trawl_core::spider::{Output, Response, Spider};
}
pub use trawl_pipeline as pipeline;
pub use trawl_pipeline::{ItemPipeline, Pipeline, Processed, StageSpec, StageStats, Verdict};
