//! trawl-sink: where items go (Scrapy's feed exports).
//!
//! Each sink implements [`trawl_core::Sink`]. Writes of one batch happen
//! under [`output_lock`], so a process that must exit at once (second Ctrl-C)
//! can take the lock first and never leave half a line behind.
//!
//! # Layout
//! - [`jsonl`]: one JSON object per line, to a file or stdout.
//! - [`memory`]: items kept in memory (tests, in-process use).

pub mod jsonl;
pub mod memory;

pub use jsonl::JsonlSink;
pub use memory::MemorySink;

static OUTPUT_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Held while a batch is being written to any output. Take it before a hard
/// exit to leave every file at a record boundary.
pub fn output_lock() -> &'static parking_lot::Mutex<()> {
    &OUTPUT_LOCK
}
