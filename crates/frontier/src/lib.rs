//! trawl-frontier: implementations of the [`Frontier`](trawl_core::Frontier) trait.
//!
//! # Layout
//! - [`memory`]: an in-process frontier with per-host queues, for single
//!   crawls that need no persistence.
//! - [`embedded`]: a persistent frontier in a directory (fjall), which
//!   resumes after `kill -9`.

pub mod embedded;
pub mod memory;

pub use embedded::DiskFrontier;
pub use memory::MemoryFrontier;
