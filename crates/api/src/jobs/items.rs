//! A job's items: NDJSON lines appended to `items.jsonl` in the job's
//! directory, with an index of where each line ends.
//!
//! The stream shows only lines the crawl has made durable: the engine
//! acknowledges pages together with the sink's byte position (the
//! checkpoint), and [`ItemLog::publish`] moves the visible end there. A
//! server killed between writing and acknowledging cuts the file back to
//! the checkpoint on restart and fetches those pages again, so a reader
//! resuming with `?after=N` never sees an item twice nor misses one.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;
use trawl_core::{Item, Sink, SinkError};

/// The items file of a job directory.
pub const ITEMS_FILE: &str = "items.jsonl";

/// Bytes read for one chunk of the stream (at least one whole line).
const CHUNK_BYTES: u64 = 256 * 1024;

/// Where each line ends, and how much of the file is durable.
#[derive(Default)]
struct Index {
    /// End offset of every line written, in order.
    ends: Vec<u64>,
    /// Lines acknowledged with their pages (shown to readers).
    visible: usize,
}

/// The items of one job.
pub struct ItemLog {
    path: PathBuf,
    index: parking_lot::Mutex<Index>,
    /// Woken when lines become visible or the job ends.
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
        let visible = ends.len();
        Ok(Arc::new(ItemLog {
            path,
            index: parking_lot::Mutex::new(Index { ends, visible }),
            changed: Notify::new(),
        }))
    }

    /// Items readers can see.
    pub fn visible(&self) -> usize {
        self.index.lock().visible
    }

    /// Items written (flushed), shown or not.
    pub fn written(&self) -> usize {
        self.index.lock().ends.len()
    }

    /// Show every line that ends at or before `position` bytes.
    pub fn publish(&self, position: u64) {
        let mut index = self.index.lock();
        let upto = index.ends.partition_point(|&end| end <= position);
        if upto > index.visible {
            index.visible = upto;
            drop(index);
            self.changed.notify_waiters();
        }
    }

    /// Show every line written (the job is over and its sink closed).
    pub fn publish_all(&self) {
        let mut index = self.index.lock();
        index.visible = index.ends.len();
        drop(index);
        self.changed.notify_waiters();
    }

    /// Visible lines from line `from` on, up to [`CHUNK_BYTES`] (at least
    /// one line): the bytes and how many lines they hold.
    pub fn read_from(&self, from: usize) -> std::io::Result<Option<(Vec<u8>, usize)>> {
        let (start, end, lines) = {
            let index = self.index.lock();
            if from >= index.visible {
                return Ok(None);
            }
            let start = if from == 0 { 0 } else { index.ends[from - 1] };
            let limit = start + CHUNK_BYTES;
            let visible = &index.ends[from..index.visible];
            let n = visible.partition_point(|&end| end <= limit).max(1);
            (start, visible[n - 1], n)
        };
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = vec![0; (end - start) as usize];
        file.read_exact(&mut bytes)?;
        Ok(Some((bytes, lines)))
    }

    /// The sink the engine writes this log through.
    pub fn sink(self: &Arc<Self>) -> std::io::Result<JobSink> {
        let file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        let written = file.metadata()?.len();
        Ok(JobSink {
            log: self.clone(),
            file: Arc::new(parking_lot::Mutex::new(std::io::BufWriter::new(file))),
            written,
        })
    }
}

/// Items of a job, appended to its log: each batch is written (off the
/// runtime, as the JSONL sink writes) before its pages are acknowledged;
/// `flush` syncs it to disk.
pub struct JobSink {
    log: Arc<ItemLog>,
    file: Arc<parking_lot::Mutex<std::io::BufWriter<File>>>,
    /// Bytes in the file.
    written: u64,
}

impl JobSink {
    fn target(&self) -> String {
        self.log.path.display().to_string()
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
}

#[async_trait::async_trait]
impl Sink for JobSink {
    fn name(&self) -> String {
        // The checkpoint names the sink: one name for every run of a job.
        "job-items".to_string()
    }

    /// The batch is in the file when this returns (its position goes
    /// into the checkpoint acknowledged next).
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
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = file.lock();
            file.flush()?;
            file.get_ref().sync_data()
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))?
        .map_err(|e| SinkError::io(self.target(), e))
    }
}

impl JobSink {
    /// Append whole NDJSON lines; the file's length after them.
    pub async fn append(&mut self, bytes: Vec<u8>) -> Result<u64, SinkError> {
        let ends: Vec<u64> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| self.written + i as u64 + 1)
            .collect();
        let file = self.file.clone();
        let written = self.written;
        let wrote = tokio::task::spawn_blocking(move || {
            let mut file = file.lock();
            let wrote = file.write_all(&bytes).and_then(|()| file.flush());
            if wrote.is_err() {
                JobSink::cut_back(&mut file, written);
            }
            wrote
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))?;
        wrote.map_err(|e| SinkError::io(self.target(), e))?;
        if let Some(&end) = ends.last() {
            self.written = end;
        }
        self.log.index.lock().ends.extend(ends);
        Ok(self.written)
    }

    /// Show every line written.
    pub fn publish_all(&self) {
        self.log.publish_all();
    }
}
