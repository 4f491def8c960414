//! WARC 1.1 output: HTTP exchanges and extracted items as web archive records.
//!
//! [`WarcWriter`] is synchronous; [`WarcSink`] runs it as a
//! [`trawl_core::Sink`] (exchanges from the engine, items as `metadata`
//! records; see [`sink`] for batches, positions and resuming). It writes
//! files `PREFIX-00000.warc.gz`, `PREFIX-00001.warc.gz`, … in one
//! directory; each file starts with a `warcinfo` record, and every record is
//! its own gzip member, so a file can be cut or indexed at any record
//! boundary and read with ordinary tools (warcio, pywb, wget's CDX tools).
//!
//! Per exchange ([`WarcWriter::write_exchange`]) two records are written, a
//! `request` then a `response`, each naming the other in
//! `WARC-Concurrent-To`. Extracted items go to `metadata` records
//! ([`WarcWriter::write_metadata`], `application/json`) that point at the
//! response with `WARC-Refers-To` (see [`WarcWriter::last_response_id`]).
//!
//! # What is stored, and how it differs from the wire
//! - HTTP/2 (and HTTP/1.0) exchanges are written as **HTTP/1.1 header
//!   blocks**: `HTTP/1.1 <status> <reason>\r\n`, then the headers, then a
//!   blank line. The request block is rebuilt the same way from the method,
//!   the URL's path and query, and the request headers (a `Host` header is
//!   added when the request headers lack one, as HTTP/2 sends `:authority`).
//! - Response bodies are stored **as received after content decoding** (the
//!   downloader has already undone gzip/br/zstd/deflate and chunking). So
//!   that replay tools see a consistent message, the `Content-Encoding`,
//!   `Transfer-Encoding` and `Content-Length` headers are dropped and one
//!   `Content-Length` equal to the stored body length is written instead.
//! - `WARC-Payload-Digest` is the SHA-1 (base32) of that stored body;
//!   `WARC-Block-Digest` is the SHA-1 of the whole block (header block and
//!   body). For `warcinfo` and `metadata` records the payload is the block.
//! - CR and LF inside header names or values are replaced by spaces, so a
//!   hostile header cannot forge lines of the header block.
//! - A body cut short by the crawler's body cap ([`Exchange::truncated`])
//!   marks its response record `WARC-Truncated: length`.
//!
//! # Rotation
//! With `rotate_bytes = Some(n)`, a new file is started before the next
//! exchange or metadata record once the current file holds at least `n`
//! compressed bytes (and at least one record besides its `warcinfo`). A
//! request and its response are never split across files, so a file can
//! exceed `n` by one exchange.
//!
//! # Positions and resuming
//! [`WarcWriter::position`] is a global offset over the files: the sizes of
//! the earlier files plus the bytes of the current one, `warcinfo` records
//! included; it is always at a record boundary. [`WarcWriter::resume`] cuts
//! the files back to such a position (deleting later files) and appends
//! after it; a file started by rotation afterwards gets its `warcinfo`.
//!
//! # Failure
//! Each record is compressed in memory and written with one `write_all`.
//! A write that fails can leave part of a record; [`WarcWriter::mark`] and
//! [`WarcWriter::rewind`] take everything since the mark back (the sink does
//! this around every batch). Files are opened with `create_new`: an
//! existing file of the same name is an error, never overwritten (resume
//! and rewind delete the files they cut away first).

pub mod sink;
mod writer;

#[cfg(test)]
mod sink_tests;
#[cfg(test)]
mod tests;

pub use sink::WarcSink;
pub use writer::{Exchange, WarcMark, WarcWriter};
