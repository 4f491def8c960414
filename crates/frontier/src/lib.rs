//! trawl-frontier: implementations of the [`Frontier`](trawl_core::Frontier) trait.
//!
//! # Layout
//! - [`memory`]: an in-process frontier with per-host queues, for single
//!   crawls that need no persistence.
//! - [`embedded`]: a persistent frontier in a directory (fjall), which
//!   resumes after `kill -9`.
//! - [`redis`]: a frontier in Redis shared by many worker processes on many
//!   machines (global per-host limits and delays, leases that expire).
//! - [`spec`]: which of them a crawl uses ([`FrontierSpec`]), and opening it.

pub mod embedded;
pub mod memory;
pub mod redis;
mod ring;
pub mod spec;
#[doc(hidden)]
pub mod testing;

pub use self::redis::{RedisFrontier, RedisFrontierConfig, RedisIndex};
pub use embedded::DiskFrontier;
pub use memory::MemoryFrontier;
pub use spec::{DiskStart, FrontierKind, FrontierSpec, Opened, Resumed};
