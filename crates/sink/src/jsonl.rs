//! JSON Lines sink.
//!
//! A batch is encoded to complete lines in memory and written with a single
//! `write_all` under the output lock, so the file only ever grows by whole
//! lines. Writes go straight to the file (no user-space buffer to lose).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use trawl_core::{Item, Sink, SinkError};

enum Target {
    File(File),
    Stdout,
}

/// Writes items as JSON Lines to a file (created or appended) or stdout.
pub struct JsonlSink {
    label: String,
    target: Arc<Mutex<Target>>,
    /// Bytes in the file after the last complete batch.
    written: Option<u64>,
}

impl JsonlSink {
    /// `path` "-" means stdout. Existing files are appended to when
    /// `append`, else truncated.
    pub fn open(path: &Path, append: bool) -> Result<JsonlSink, SinkError> {
        if path == Path::new("-") {
            return Ok(JsonlSink {
                label: "jsonl:stdout".into(),
                target: Arc::new(Mutex::new(Target::Stdout)),
                written: None,
            });
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|source| SinkError::Io {
                target: path.display().to_string(),
                source,
            })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonlSink {
            label: Self::open_name(path),
            target: Arc::new(Mutex::new(Target::File(file))),
            written: Some(len),
        })
    }

    /// Reopen a file written by an interrupted crawl: cut it back to
    /// `position` (the end of the last batch the frontier acknowledged) and
    /// append from there. Items after it belong to unacknowledged work that
    /// will be fetched and written again.
    pub fn resume(path: &Path, position: u64) -> Result<JsonlSink, SinkError> {
        let io = |source| SinkError::Io {
            target: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < position {
            return Err(SinkError::Other(format!(
                "{} has {len} bytes but the crawl state says {position} were written: the output was changed or lost",
                path.display()
            )));
        }
        file.set_len(position).map_err(io)?;
        drop(file);
        Self::open(path, true)
    }

    /// The name a sink opened on `path` reports (stable for one path).
    pub fn open_name(path: &Path) -> String {
        if path == Path::new("-") {
            return "jsonl:stdout".into();
        }
        format!(
            "jsonl:{}",
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
        )
    }

    /// The file path this sink writes, if any.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Encode items as newline-terminated JSON objects.
pub fn encode_lines(items: &[Item]) -> Result<Vec<u8>, SinkError> {
    let mut buf = Vec::with_capacity(items.len() * 512);
    for item in items {
        serde_json::to_writer(&mut buf, item).map_err(|e| SinkError::Encode(e.to_string()))?;
        buf.push(b'\n');
    }
    Ok(buf)
}

#[async_trait::async_trait]
impl Sink for JsonlSink {
    fn name(&self) -> String {
        self.label.clone()
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        let buf = encode_lines(items)?;
        let len = buf.len() as u64;
        let target = self.target.clone();
        let label = self.label.clone();
        let written = tokio::task::spawn_blocking(move || {
            let _whole_lines = crate::output_lock().lock();
            let mut target = target.lock();
            match &mut *target {
                Target::File(f) => f.write_all(&buf),
                Target::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&buf).and_then(|_| out.flush())
                }
            }
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))?;
        written.map_err(|source| SinkError::Io {
            target: label,
            source,
        })?;
        if let Some(n) = &mut self.written {
            *n += len;
        }
        Ok(())
    }

    fn position(&self) -> Option<u64> {
        self.written
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let target = self.target.clone();
        let label = self.label.clone();
        let res = tokio::task::spawn_blocking(move || match &mut *target.lock() {
            Target::File(f) => f.sync_data(),
            Target::Stdout => std::io::stdout().flush(),
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))?;
        res.map_err(|source| SinkError::Io {
            target: label,
            source,
        })
    }
}

/// A convenience for tests and tools: read a JSONL file back as items.
pub fn read_jsonl(path: &Path) -> std::io::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: i64) -> Item {
        let mut m = serde_json::Map::new();
        m.insert("n".into(), n.into());
        m.insert("s".into(), "line\nbreak \"quoted\"".into());
        Item(m)
    }

    #[tokio::test]
    async fn writes_whole_lines_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut sink = JsonlSink::open(&path, false).unwrap();
        sink.write_batch(&[item(1), item(2)]).await.unwrap();
        sink.close().await.unwrap();
        let mut sink = JsonlSink::open(&path, true).unwrap();
        sink.write_batch(&[item(3)]).await.unwrap();
        sink.close().await.unwrap();
        let rows = read_jsonl(&path).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2]["n"], 3);
        assert_eq!(rows[0]["s"], "line\nbreak \"quoted\"");
    }

    #[tokio::test]
    async fn resume_cuts_back_to_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut sink = JsonlSink::open(&path, false).unwrap();
        sink.write_batch(&[item(1)]).await.unwrap();
        let pos = sink.position().unwrap();
        sink.write_batch(&[item(2)]).await.unwrap();
        drop(sink);
        let mut sink = JsonlSink::resume(&path, pos).unwrap();
        assert_eq!(sink.position(), Some(pos));
        sink.write_batch(&[item(3)]).await.unwrap();
        let rows = read_jsonl(&path).unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| r["n"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert!(JsonlSink::resume(&path, 1 << 30).is_err());
    }

    #[test]
    fn unwritable_path_is_a_clear_error() {
        let err = JsonlSink::open(Path::new("/nonexistent-dir/x.jsonl"), false)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("/nonexistent-dir/x.jsonl"),
            "{err}"
        );
    }
}
