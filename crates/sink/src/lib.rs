//! trawl-sink: where items go (Scrapy's feed exports).
//!
//! Each sink implements [`trawl_core::Sink`]. Writes of one batch happen
//! under [`output_lock`], so a process that must exit at once (second Ctrl-C)
//! can take the lock first and never leave half a line behind.
//!
//! # Layout
//! - [`amqp`]: persistent messages in a durable AMQP 0-9-1 (RabbitMQ)
//!   queue (publisher confirms, a stable `message_id` per item; at least
//!   once, consumers deduplicate).
//! - [`csv`]: CSV with a fixed header, optionally gzipped and rotated.
//! - [`jsonl`]: one JSON object per line, to a file or stdout.
//! - [`memory`]: items kept in memory (tests, in-process use).
//! - [`message_id`]: the id of an item's message (NATS, AMQP): a hash of
//!   the item without its fetch time.
//! - [`nats`]: messages on a NATS JetStream subject (publisher acks,
//!   deduplicated by message id).
//! - [`postgres`]: rows in a PostgreSQL table (COPY, upsert on a key).
//! - [`postgres_tables`]: PostgreSQL, one table per item type.
//! - [`rotating`]: the file layer of CSV and JSONL (batches of records,
//!   gzip member per batch, rotation, resume at a position, undo of a
//!   failed batch).
//! - [`spec`]: sink specifications (`--sink`, a spider file's `[[sinks]]`).
//! - [`warc`]: WARC 1.1 writer (gzip member per record, rotation) for HTTP
//!   exchanges and extracted items.

pub mod amqp;
pub mod csv;
pub mod jsonl;
pub mod memory;
pub mod message_id;
pub mod nats;
pub mod open;
pub mod postgres;
pub mod postgres_tables;
pub mod rotating;
pub mod spec;
pub mod warc;

pub use csv::{CsvOptions, CsvSink};
pub use jsonl::JsonlSink;
pub use memory::MemorySink;
pub use open::{ItemSchema, OpenError, OutputContext};
pub use spec::SinkSpec;
pub use warc::WarcSink;

static OUTPUT_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Held while a batch is being written to any output. Take it before a hard
/// exit to leave every file at a record boundary.
pub fn output_lock() -> &'static parking_lot::Mutex<()> {
    &OUTPUT_LOCK
}
