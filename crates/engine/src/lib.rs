//! trawl-engine: drives a crawl from seeds to written items.
//!
//! The data flow, in Scrapy's terms (see ARCHITECTURE.md):
//!
//! 1. The **scheduler** loop leases requests from the `Frontier` whenever a
//!    fetch slot is free (global `concurrency` limit).
//! 2. A **fetch task** per request runs the `Downloader` on the async
//!    runtime (robots, per-host slot, redirects, retries) and hands the
//!    response to the parse queue.
//! 3. The **parse pool**, plain OS threads sized to the cores, decodes,
//!    extracts links and metadata, hashes, filters links by scope and depth
//!    and builds the item — CPU work that never runs on the runtime.
//! 4. The **router** pushes new links to the frontier, passes the item to the
//!    sink stage and acknowledges the lease.
//! 5. The **sink stage** batches items and hands each batch to every sink's
//!    own task (bounded queue each); leases are acknowledged once all sinks
//!    have the batch.
//!
//! Stages are joined by bounded queues: a slow sink fills the item queue, the
//! router waits, the parse queue fills, fetch tasks wait holding their
//! slots, and the scheduler stops leasing. Only the frontier is unbounded.
//!
//! # Layout
//! - [`config`]: the `CrawlConfig` settings of a crawl.
//! - [`engine`]: the scheduler loop and the wiring of the stages.
//! - [`parse`]: the parse pool's work on one response.
//! - `router`: duplicates, traps and revisits; links to the frontier,
//!   items to the sink stage.
//! - [`sink_stage`]: batching, fan-out to the sink tasks, retries,
//!   dead letters, checkpoints.
//! - [`sitemaps`]: seeding from robots.txt `Sitemap:` lines.
//! - [`shutdown`]: the graceful-stop signal.

pub mod config;
pub mod engine;
pub mod parse;
mod retry;
mod router;
pub mod shutdown;
pub mod sink_stage;
pub mod sitemaps;
mod stages;

pub use config::{CrawlConfig, DuplicateConfig, DuplicatePolicy, SinkOptions};
pub use engine::{Engine, EngineError, ProxyReloads};
pub use shutdown::Shutdown;
