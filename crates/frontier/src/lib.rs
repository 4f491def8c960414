//! trawl-frontier: implementations of the [`Frontier`](trawl_core::Frontier) trait.
//!
//! # Layout
//! - [`memory`]: an in-process frontier with per-host queues, for single
//!   crawls that need no persistence.

pub mod memory;

pub use memory::MemoryFrontier;
