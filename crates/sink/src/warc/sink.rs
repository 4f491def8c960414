//! [`WarcSink`]: a [`WarcWriter`] behind the [`trawl_core::Sink`] trait.
//!
//! The engine hands the sink each batch's raw exchanges
//! ([`Sink::write_exchanges`], a `request` and a `response` record each),
//! then the batch's items ([`Sink::write_batch`]), written as `metadata`
//! records when the sink was created with `write_items`. An item's record
//! refers (`WARC-Refers-To`) to the response of its URL in the same batch:
//! its `final_url` field, else its `url` field, looked up among the URLs of
//! the batch's exchanges. Items without a match get no `WARC-Refers-To`, and
//! items without either field no `WARC-Target-URI`.
//!
//! # Batches, positions, failures
//! Each call writes its records under [`crate::output_lock`] on a blocking
//! thread, so a hard exit leaves every file at a record boundary.
//! [`Sink::position`] is a global offset over the files (see
//! [`WarcWriter::position`]); [`WarcSink::resume`] cuts back to it. A call
//! whose write fails part-way is undone ([`WarcWriter::rewind`]: the cut
//! file shrinks back, files it rotated to are deleted) before the error is
//! returned, so the engine can retry it; should the undo fail too, it is
//! retried before the next write. The URL → response map survives a failed
//! `write_batch`, so its retry still links the items.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use trawl_core::{Item, Sink, SinkError};

use super::writer::{Exchange, WarcMark, WarcWriter};

struct Shared {
    writer: WarcWriter,
    /// Where a failed write started, while undoing it is still owed.
    undo: Option<WarcMark>,
}

/// Writes HTTP exchanges (and optionally items) to rotating WARC files.
pub struct WarcSink {
    label: String,
    shared: Arc<Mutex<Shared>>,
    write_items: bool,
    /// URL → `WARC-Record-ID` of the responses of the current batch.
    responses: HashMap<String, String>,
    /// The writer's position after the last complete write.
    position: u64,
    /// The writer's byte count after the last complete write.
    bytes: u64,
}

/// Errors of a resume that are about the files, not the disk, read as such.
fn sink_error(label: &str, e: io::Error) -> SinkError {
    if e.kind() == io::ErrorKind::InvalidData {
        SinkError::Other(format!("{label}: {e}"))
    } else {
        SinkError::Io {
            target: label.to_string(),
            error: e,
        }
    }
}

/// The writer's view of an exchange.
fn record(e: &trawl_core::Exchange) -> Exchange<'_> {
    Exchange {
        url: &e.url,
        method: &e.method,
        request_headers: &e.request_headers,
        status: e.status,
        reason: &e.reason,
        response_headers: &e.response_headers,
        body: &e.body,
        truncated: e.truncated,
        rendered: e.rendered.as_deref(),
        ip: e.ip,
        date: e.date,
        revisit: e.revisit.as_ref(),
    }
}

impl WarcSink {
    /// Start `dir/PREFIX-00000.warc.gz` (which must not exist; `dir` is
    /// created if needed). `rotate_bytes` as for [`WarcWriter::create`];
    /// `write_items` adds a `metadata` record per item.
    pub fn create(
        dir: &Path,
        prefix: &str,
        rotate_bytes: Option<u64>,
        write_items: bool,
    ) -> Result<WarcSink, SinkError> {
        let label = Self::open_name(dir, prefix);
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Io {
            target: dir.display().to_string(),
            error: source,
        })?;
        let writer = {
            let _whole_records = crate::output_lock().lock();
            WarcWriter::create(dir, prefix, rotate_bytes)
        }
        .map_err(|e| sink_error(&label, e))?;
        Ok(Self::with_writer(label, writer, write_items))
    }

    /// Reopen the files of an interrupted crawl at `position` (a
    /// [`Sink::position`] the crawl state acknowledged): the file holding it
    /// is cut back there, later files are deleted, and records are appended
    /// after it. A position beyond the files is an error.
    pub fn resume(
        dir: &Path,
        prefix: &str,
        rotate_bytes: Option<u64>,
        write_items: bool,
        position: u64,
    ) -> Result<WarcSink, SinkError> {
        let label = Self::open_name(dir, prefix);
        let writer = {
            let _whole_records = crate::output_lock().lock();
            WarcWriter::resume(dir, prefix, rotate_bytes, position)
        }
        .map_err(|e| sink_error(&label, e))?;
        Ok(Self::with_writer(label, writer, write_items))
    }

    fn with_writer(label: String, writer: WarcWriter, write_items: bool) -> WarcSink {
        WarcSink {
            label,
            position: writer.position(),
            bytes: writer.bytes_written(),
            shared: Arc::new(Mutex::new(Shared { writer, undo: None })),
            write_items,
            responses: HashMap::new(),
        }
    }

    /// The name a sink on `dir` and `prefix` reports: `warc:DIR/PREFIX`,
    /// with `DIR` absolute.
    pub fn open_name(dir: &Path, prefix: &str) -> String {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        format!("warc:{}", dir.join(prefix).display())
    }

    /// Whether `dir` holds files of a sink with `prefix`
    /// (`PREFIX-NNNNN.warc.gz`): a crawl to continue.
    pub fn has_files(dir: &Path, prefix: &str) -> bool {
        let start = format!("{prefix}-");
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with(&start) && name.ends_with(".warc.gz")
            })
        })
    }

    /// Every file written so far, in order (the last one is current).
    pub fn files(&self) -> Vec<PathBuf> {
        self.shared.lock().writer.files()
    }

    /// Run `write` on the writer, all or nothing (see the module docs).
    async fn run<R, F>(&mut self, write: F) -> Result<R, SinkError>
    where
        F: FnOnce(&mut WarcWriter) -> io::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let shared = self.shared.clone();
        let label = self.label.clone();
        let (out, position, bytes) = tokio::task::spawn_blocking(move || {
            let _whole_records = crate::output_lock().lock();
            let mut guard = shared.lock();
            let shared = &mut *guard;
            if let Some(mark) = &shared.undo {
                shared.writer.rewind(mark)?;
                shared.undo = None;
            }
            let mark = shared.writer.mark();
            match write(&mut shared.writer) {
                Ok(out) => Ok((
                    out,
                    shared.writer.position(),
                    shared.writer.bytes_written(),
                )),
                Err(e) => {
                    if let Err(error) = shared.writer.rewind(&mark) {
                        tracing::error!(%error, "Undoing a failed WARC write failed; retrying before the next write.");
                        shared.undo = Some(mark);
                    }
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))?
        .map_err(|e| sink_error(&label, e))?;
        self.position = position;
        self.bytes = bytes;
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Sink for WarcSink {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn wants_exchanges(&self) -> bool {
        true
    }

    async fn write_exchanges(
        &mut self,
        exchanges: &[trawl_core::Exchange],
    ) -> Result<(), SinkError> {
        self.responses.clear();
        if exchanges.is_empty() {
            return Ok(());
        }
        let exchanges = exchanges.to_vec();
        let ids = self
            .run(move |w| {
                let mut ids = Vec::with_capacity(exchanges.len());
                for e in &exchanges {
                    w.write_exchange(&record(e))?;
                    if let Some(id) = w.last_response_id() {
                        ids.push((e.url.clone(), id.to_string()));
                    }
                }
                Ok(ids)
            })
            .await?;
        self.responses.extend(ids);
        Ok(())
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        if !self.write_items || items.is_empty() {
            self.responses.clear();
            return Ok(());
        }
        let mut records = Vec::with_capacity(items.len());
        for item in items {
            let urls: Vec<&str> = ["final_url", "url"]
                .iter()
                .filter_map(|k| item.0.get(*k).and_then(Value::as_str))
                .collect();
            let found = urls
                .iter()
                .find_map(|u| self.responses.get(*u).map(|id| (*u, id.clone())));
            let (target, refers_to) = match found {
                Some((url, id)) => (Some(url.to_string()), Some(id)),
                None => (urls.first().map(|u| u.to_string()), None),
            };
            let body = serde_json::to_vec(item).map_err(|e| SinkError::Encode(e.to_string()))?;
            records.push((target, refers_to, body));
        }
        self.run(move |w| {
            for (target, refers_to, body) in &records {
                w.write_json_metadata(target.as_deref(), refers_to.as_deref(), body)?;
            }
            Ok(())
        })
        .await?;
        self.responses.clear();
        Ok(())
    }

    fn position(&self) -> Option<u64> {
        Some(self.position)
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let shared = self.shared.clone();
        let label = self.label.clone();
        tokio::task::spawn_blocking(move || shared.lock().writer.sync())
            .await
            .map_err(|e| SinkError::Other(format!("writer task: {e}")))?
            .map_err(|source| SinkError::Io {
                target: label,
                error: source,
            })
    }
}
