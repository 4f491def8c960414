//! A job's items: NDJSON lines appended to `items.jsonl` in the job's
//! directory (with an index of where each line ends), or rows of
//! PostgreSQL ([`super::pg`]) when the server has a store.
//!
//! The stream shows only items the crawl has made durable: the engine
//! acknowledges pages together with the sink's position (the checkpoint:
//! bytes of the file, or items in PostgreSQL), and [`ItemLog::publish`]
//! moves the visible end there. A server killed between writing and
//! acknowledging cuts the log back to the checkpoint on restart and
//! fetches those pages again, so a reader resuming with `?after=N` never
//! sees an item twice nor misses one.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;
use trawl_core::{Item, Sink, SinkError};

use super::pg::PgStore;

/// The items file of a job directory.
pub const ITEMS_FILE: &str = "items.jsonl";

/// Bytes read for one chunk of the stream (at least one whole line).
const CHUNK_BYTES: u64 = 256 * 1024;

/// Rows read for one chunk of the stream from PostgreSQL.
const CHUNK_ROWS: i64 = 1000;

/// Where the items are.
enum Backend {
    File(PathBuf),
    Pg { store: Arc<PgStore>, job: String },
}

/// How many items there are and how many are shown.
#[derive(Default)]
struct Index {
    /// File: the end offset of every line written, in order.
    ends: Vec<u64>,
    /// Items written.
    written: usize,
    /// Items acknowledged with their pages (shown to readers).
    visible: usize,
}

/// The items of one job.
pub struct ItemLog {
    backend: Backend,
    index: parking_lot::Mutex<Index>,
    /// Woken when items become visible or the job ends.
    pub changed: Notify,
}

impl ItemLog {
    /// Open the log of `dir`, cut back to `position` bytes (the last
    /// checkpoint; `None`: keep the whole file). Every line kept is
    /// visible.
    pub fn open(dir: &Path, position: Option<u64>) -> std::io::Result<Arc<ItemLog>> {
        let path = dir.join(ITEMS_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        let keep = position.map_or(len, |p| p.min(len));
        if keep < len {
            file.set_len(keep)?;
            file.sync_all()?;
        }
        let mut ends = Vec::new();
        let mut reader = BufReader::new(file.take(keep));
        let mut at = 0u64;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            at += n as u64;
            if line.ends_with(b"\n") {
                ends.push(at);
            }
        }
        // A torn last line (no newline) is cut off.
        let whole = ends.last().copied().unwrap_or(0);
        if whole < keep {
            let file = std::fs::OpenOptions::new().write(true).open(&path)?;
            file.set_len(whole)?;
            file.sync_all()?;
        }
        let n = ends.len();
        Ok(Arc::new(ItemLog {
            backend: Backend::File(path),
            index: parking_lot::Mutex::new(Index {
                ends,
                written: n,
                visible: n,
            }),
            changed: Notify::new(),
        }))
    }

    /// Open the log of `job` in PostgreSQL, cut back to `position` items.
    pub async fn open_pg(
        store: Arc<PgStore>,
        job: &str,
        position: Option<u64>,
    ) -> Result<Arc<ItemLog>, String> {
        let n = store.cut(job, position).await?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Arc::new(ItemLog {
            backend: Backend::Pg {
                store,
                job: job.to_string(),
            },
            index: parking_lot::Mutex::new(Index {
                ends: Vec::new(),
                written: n,
                visible: n,
            }),
            changed: Notify::new(),
        }))
    }

    /// Items readers can see.
    pub fn visible(&self) -> usize {
        self.index.lock().visible
    }

    /// Items written, shown or not.
    pub fn written(&self) -> usize {
        self.index.lock().written
    }

    /// Show every item that ends at or before `position` (bytes of the
    /// file, or items in PostgreSQL).
    pub fn publish(&self, position: u64) {
        let mut index = self.index.lock();
        let upto = match self.backend {
            Backend::File(_) => index.ends.partition_point(|&end| end <= position),
            Backend::Pg { .. } => usize::try_from(position)
                .unwrap_or(usize::MAX)
                .min(index.written),
        };
        if upto > index.visible {
            index.visible = upto;
            drop(index);
            self.changed.notify_waiters();
        }
    }

    /// Show every item written (the job is over and its sink closed).
    pub fn publish_all(&self) {
        let mut index = self.index.lock();
        index.visible = index.written;
        drop(index);
        self.changed.notify_waiters();
    }

    /// Visible items from item `from` on, a chunk at a time (at least
    /// one): NDJSON and how many items it holds.
    pub async fn read_from(&self, from: usize) -> std::io::Result<Option<(Vec<u8>, usize)>> {
        let visible = self.visible();
        if from >= visible {
            return Ok(None);
        }
        match &self.backend {
            Backend::File(path) => {
                let (start, end, lines) = {
                    let index = self.index.lock();
                    let start = if from == 0 { 0 } else { index.ends[from - 1] };
                    let limit = start + CHUNK_BYTES;
                    let shown = &index.ends[from..visible];
                    let n = shown.partition_point(|&end| end <= limit).max(1);
                    (start, shown[n - 1], n)
                };
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let mut file = File::open(&path)?;
                    file.seek(SeekFrom::Start(start))?;
                    let mut bytes = vec![0; (end - start) as usize];
                    file.read_exact(&mut bytes)?;
                    Ok(Some((bytes, lines)))
                })
                .await
                .map_err(std::io::Error::other)?
            }
            Backend::Pg { store, job } => {
                let rows = store
                    .read(job, from as u64, visible as u64, CHUNK_ROWS)
                    .await
                    .map_err(std::io::Error::other)?;
                let n = rows.len();
                let mut bytes = Vec::new();
                for row in rows {
                    bytes.extend_from_slice(row.as_bytes());
                    bytes.push(b'\n');
                }
                Ok((n > 0).then_some((bytes, n)))
            }
        }
    }

    /// The sink the engine writes this log through.
    pub fn sink(self: &Arc<Self>) -> std::io::Result<JobSink> {
        let (target, written) = match &self.backend {
            Backend::File(path) => {
                let file = std::fs::OpenOptions::new().append(true).open(path)?;
                let written = file.metadata()?.len();
                (
                    Target::File(Arc::new(parking_lot::Mutex::new(std::io::BufWriter::new(
                        file,
                    )))),
                    written,
                )
            }
            Backend::Pg { store, job } => (
                Target::Pg {
                    store: store.clone(),
                    job: job.clone(),
                },
                self.written() as u64,
            ),
        };
        Ok(JobSink {
            log: self.clone(),
            target,
            written,
        })
    }

    fn describe(&self) -> String {
        match &self.backend {
            Backend::File(path) => path.display().to_string(),
            Backend::Pg { store, job } => format!("postgres {} job {job}", store.target),
        }
    }
}

/// Where a [`JobSink`] writes.
enum Target {
    File(Arc<parking_lot::Mutex<std::io::BufWriter<File>>>),
    Pg { store: Arc<PgStore>, job: String },
}

/// Items of a job, appended to its log: each batch is written (off the
/// runtime, as the JSONL sink writes; or in one statement) before its
/// pages are acknowledged; `flush` syncs the file to disk.
pub struct JobSink {
    log: Arc<ItemLog>,
    target: Target,
    /// The log's position: bytes of the file, or items in PostgreSQL.
    written: u64,
}

/// A batch failed: drop what of it is buffered or written, so the
/// engine's retry writes it whole once.
fn cut_back(file: &mut std::io::BufWriter<File>, written: u64) {
    let Ok(clone) = file.get_ref().try_clone() else {
        return;
    };
    let failed = std::mem::replace(file, std::io::BufWriter::new(clone));
    // Without writing its buffer.
    let _ = failed.into_parts();
    if let Err(error) = file.get_ref().set_len(written) {
        tracing::error!(%error, "Could not cut a job's items back after a failed batch.");
    }
}

#[async_trait::async_trait]
impl Sink for JobSink {
    fn name(&self) -> String {
        // The checkpoint names the sink: one name for every run of a job.
        "job-items".to_string()
    }

    /// The batch is in the log when this returns (its position goes into
    /// the checkpoint acknowledged next).
    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        let mut bytes = Vec::new();
        for item in items {
            serde_json::to_writer(&mut bytes, &item.0)
                .map_err(|e| SinkError::Encode(e.to_string()))?;
            bytes.push(b'\n');
        }
        self.append(bytes).await.map(|_| ())
    }

    fn position(&self) -> Option<u64> {
        Some(self.written)
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let Target::File(file) = &self.target else {
            return Ok(());
        };
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = file.lock();
            file.flush()?;
            file.get_ref().sync_data()
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))?
        .map_err(|e| SinkError::io(self.log.describe(), e))
    }
}

impl JobSink {
    /// Append whole NDJSON lines; the log's position after them.
    pub async fn append(&mut self, bytes: Vec<u8>) -> Result<u64, SinkError> {
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        match &self.target {
            Target::File(file) => {
                let ends: Vec<u64> = bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| self.written + i as u64 + 1)
                    .collect();
                let file = file.clone();
                let written = self.written;
                let wrote = tokio::task::spawn_blocking(move || {
                    let mut file = file.lock();
                    let wrote = file.write_all(&bytes).and_then(|()| file.flush());
                    if wrote.is_err() {
                        cut_back(&mut file, written);
                    }
                    wrote
                })
                .await
                .map_err(|e| SinkError::Other(format!("writer task: {e}")))?;
                wrote.map_err(|e| SinkError::io(self.log.describe(), e))?;
                if let Some(&end) = ends.last() {
                    self.written = end;
                }
                let mut index = self.log.index.lock();
                index.ends.extend(ends);
                index.written += lines;
            }
            Target::Pg { store, job } => {
                let rows: Vec<String> = String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_string)
                    .collect();
                store
                    .append(job, self.written, rows)
                    .await
                    .map_err(SinkError::Other)?;
                self.written += lines as u64;
                self.log.index.lock().written += lines;
            }
        }
        Ok(self.written)
    }

    /// Show every item written.
    pub fn publish_all(&self) {
        self.log.publish_all();
    }
}
