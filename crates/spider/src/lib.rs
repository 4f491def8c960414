//! trawl-spider: turning pages into structured items.
//!
//! A [`Spider`] is Scrapy's spider: it names the start URLs and parses each
//! response into items and follow-up requests. It runs on the engine's
//! parse pool (CPU threads), so everything here is synchronous.
//!
//! # Layout
//! - [`spider`]: the `Spider` trait and what it works with.
//! - [`declarative`]: a spider described by a TOML file (`trawl run spider.toml`).
//! - [`pipeline`]: the item pipeline stages a spider file's `[[pipeline]]`
//!   tables configure (the `trawl-pipeline` crate).

pub mod declarative;
pub mod spider;

pub use declarative::{DeclarativeSpider, SpiderFileError};
pub use spider::{Output, Response, Spider};
pub use trawl_pipeline as pipeline;
pub use trawl_pipeline::{ItemPipeline, Pipeline, Processed, StageSpec, StageStats, Verdict};
