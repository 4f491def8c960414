//! Embedded persistent frontier: the crawl state in a directory (`--state DIR`).
//!
//! Backed by fjall, an LSM key-value store in pure Rust (journaled writes,
//! atomic cross-keyspace batches, bounded block cache, concurrent readers).
//! An LSM suits a frontier: the workload is append-heavy (new URLs, seen
//! fingerprints) with deletions of finished work, and lookups are point
//! reads of fingerprints. redb's single-writer copy-on-write B-tree amplifies
//! random fingerprint inserts; RocksDB would need a C++ build.
//!
//! # Crash safety
//! Leasing does not remove anything from disk: a request leaves the `queue`
//! keyspace only when its lease is acknowledged, in the same atomic batch
//! that stores the sinks' output checkpoint. After `kill -9` the requests
//! that were leased but not acknowledged are simply still queued (they are
//! fetched again: at-least-once fetching), and the outputs are cut back to
//! the checkpoint, so every item is written exactly once.
//!
//! # Keyspaces
//! | keyspace | key | value |
//! |---|---|---|
//! | `seen`  | 16-byte URL fingerprint | empty |
//! | `queue` | host, `0x00`, sequence (u64 big-endian) | `Request` as JSON |
//! | `meta`  | `"seq"`, `"seen"`, `"checkpoint"` | u64 BE / bytes |
//! | `known` | 16-byte URL fingerprint | the last visit as JSON (validators, hashes, revisit interval) |
//! | `dupes` | 16-byte URL fingerprint | an original page of the duplicate index (see [`dupes`]) |
//!
//! Per host the sequence keeps FIFO order (breadth-first by depth). In
//! memory the frontier keeps only per-host counters and read cursors, the
//! ready ring, the outstanding leases, and a cache of recent fingerprints
//! in front of the on-disk seen-set (which stays the exact authority).

pub mod dupes;
mod state;

pub use dupes::StateIndex;
pub use state::DiskFrontier;
