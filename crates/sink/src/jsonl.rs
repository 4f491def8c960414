//! JSON Lines sink.
//!
//! A batch is encoded to complete lines in memory and written with a single
//! `write_all` under the output lock, so the file only ever grows by whole
//! lines. Writes go straight to the file (no user-space buffer to lose).
//!
//! # Failed writes
//! If a batch's write fails part-way (a full disk: some of it landed), the
//! file is cut back to where the batch started before the error is returned,
//! so it never holds half a line and the engine can retry the same batch
//! without duplicating its first lines. Should that cut fail too, it is
//! retried before the next write (which fails if it still cannot be made).
//! [`Sink::position`] and [`Sink::bytes_written`] only count complete batches.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use trawl_core::{Item, Sink, SinkError};

enum Target {
    File {
        file: File,
        /// A failed batch could not be cut away: do it before writing more.
        needs_cut: bool,
    },
    Stdout,
}

/// Writes items as JSON Lines to a file (created or appended) or stdout.
pub struct JsonlSink {
    label: String,
    target: Arc<Mutex<Target>>,
    /// Bytes in the file after the last complete batch.
    written: Option<u64>,
    /// Bytes of complete batches written by this sink.
    bytes: u64,
}

/// Cut `file` back to `len` bytes and continue writing at its end.
fn cut(file: &mut File, len: u64) -> std::io::Result<()> {
    file.set_len(len)?;
    file.seek(SeekFrom::Start(len))?;
    Ok(())
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
                bytes: 0,
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
            target: Arc::new(Mutex::new(Target::File {
                file,
                needs_cut: false,
            })),
            written: Some(len),
            bytes: 0,
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
        let start = self.written.unwrap_or(0);
        let written = tokio::task::spawn_blocking(move || {
            let _whole_lines = crate::output_lock().lock();
            let mut target = target.lock();
            match &mut *target {
                Target::File { file, needs_cut } => {
                    if *needs_cut {
                        cut(file, start)?;
                        *needs_cut = false;
                    }
                    let res = file.write_all(&buf);
                    if res.is_err()
                        && let Err(error) = cut(file, start)
                    {
                        tracing::error!(%error, "Cutting a failed batch off the output failed; retrying before the next write.");
                        *needs_cut = true;
                    }
                    res
                }
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
        self.bytes += len;
        Ok(())
    }

    fn position(&self) -> Option<u64> {
        self.written
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let target = self.target.clone();
        let label = self.label.clone();
        let res = tokio::task::spawn_blocking(move || match &mut *target.lock() {
            Target::File { file, .. } => file.sync_data(),
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

/// A small tmpfs to fill up, for the sinks' full-disk tests.
#[cfg(test)]
pub(crate) mod small_fs {
    #![allow(clippy::unwrap_used)]

    use std::fs::File;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A tmpfs mounted on a fresh temporary directory; unmounted on drop
    /// (drop everything that holds a file on it first).
    pub(crate) struct SmallFs {
        dir: tempfile::TempDir,
    }

    impl SmallFs {
        /// Mount a tmpfs of `kib` KiB. Needs root (as the tests run in CI);
        /// elsewhere prints why and returns `None`, and the test returns.
        pub(crate) fn mount(kib: u32) -> Option<SmallFs> {
            let dir = tempfile::tempdir().unwrap();
            let out = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
                .arg(dir.path())
                .output();
            match out {
                Ok(o) if o.status.success() => Some(SmallFs { dir }),
                Ok(o) => {
                    eprintln!(
                        "skipping the full-disk test: cannot mount a tmpfs (needs root): {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                    None
                }
                Err(e) => {
                    eprintln!("skipping the full-disk test: cannot run mount: {e}");
                    None
                }
            }
        }

        pub(crate) fn path(&self) -> &Path {
            self.dir.path()
        }

        /// Take every free page with a filler file; delete it to free them.
        /// Space left in the last page of other files stays usable, so the
        /// next big write lands in part and then fails.
        pub(crate) fn fill(&self) -> PathBuf {
            let path = self.path().join("filler");
            let mut f = File::create(&path).unwrap();
            let page = [0u8; 4096];
            loop {
                match f.write(&page) {
                    Ok(0) => panic!("filling the tmpfs: wrote nothing"),
                    Ok(_) => {}
                    Err(e) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                        return path;
                    }
                }
            }
        }
    }

    impl Drop for SmallFs {
        fn drop(&mut self) {
            let ok = Command::new("umount")
                .arg(self.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(self.dir.path())
                    .status();
            }
        }
    }

    /// A string of `len` bytes that gzip cannot shrink much.
    pub(crate) fn noise(seed: u64, len: usize) -> String {
        let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::small_fs::{SmallFs, noise};
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

    #[tokio::test]
    async fn a_failed_batch_is_cut_away_and_can_be_retried() {
        for append in [false, true] {
            let Some(fs) = SmallFs::mount(64) else {
                return;
            };
            let path = fs.path().join("out.jsonl");
            let mut sink = JsonlSink::open(&path, append).unwrap();
            sink.write_batch(&[item(1)]).await.unwrap();
            let pos = sink.position().unwrap();
            assert_ne!(pos % 4096, 0, "room for part of the next batch");
            let filler = fs.fill();
            let big: Vec<Item> = (2..=4)
                .map(|n| {
                    let mut i = item(n);
                    i.0.insert("big".into(), noise(n as u64, 3000).into());
                    i
                })
                .collect();
            let err = sink.write_batch(&big).await.expect_err("disk full");
            assert!(err.to_string().contains("out.jsonl"), "{err}");
            assert_eq!(sink.position(), Some(pos));
            assert_eq!(std::fs::metadata(&path).unwrap().len(), pos);
            assert_eq!(read_jsonl(&path).unwrap().len(), 1);

            std::fs::remove_file(filler).unwrap();
            sink.write_batch(&big).await.unwrap();
            sink.close().await.unwrap();
            let rows = read_jsonl(&path).unwrap();
            let ns: Vec<i64> = rows.iter().map(|r| r["n"].as_i64().unwrap()).collect();
            assert_eq!(ns, [1, 2, 3, 4], "append={append}");
            let len = std::fs::metadata(&path).unwrap().len();
            assert_eq!(sink.position(), Some(len));
            assert_eq!(sink.bytes_written(), len);
            drop(sink);
        }
    }

    #[tokio::test]
    async fn bytes_written_counts_this_sinks_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut sink = JsonlSink::open(&path, false).unwrap();
        sink.write_batch(&[item(1)]).await.unwrap();
        let first = std::fs::metadata(&path).unwrap().len();
        assert_eq!(sink.bytes_written(), first);
        drop(sink);
        let mut sink = JsonlSink::open(&path, true).unwrap();
        assert_eq!(sink.bytes_written(), 0);
        sink.write_batch(&[item(2), item(3)]).await.unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(sink.bytes_written(), len - first);
        assert_eq!(sink.position(), Some(len));
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
