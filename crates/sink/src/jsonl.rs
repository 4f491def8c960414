//! JSON Lines sink: one JSON object per line, to a file or stdout.
//!
//! A batch is encoded to complete lines in memory and written with a single
//! `write_all` (per file) under the output lock, so a file only ever grows
//! by whole lines. Writes go straight to the file (no user-space buffer to
//! lose).
//!
//! # Files
//! Files are written through a [`RotatingFile`], the layer this module
//! shares with the CSV sink (its docs tell the details); JSONL files have
//! no header.
//! - [`Sink::position`] is a global offset over all files of the sink; for
//!   a plain file (no gzip, no rotation) that is its length in bytes.
//!   [`JsonlSink::resume`] cuts the files back to such a position (deleting
//!   later rotated files) and carries on from there, so a persistent crawl
//!   that was killed writes each item exactly once.
//! - If a batch's write fails part-way (a full disk: some of it landed),
//!   what it wrote is undone (the file cut back to where the batch started,
//!   files it rotated to deleted) before the error is returned, so no file
//!   holds half a line and the engine can retry the same batch without
//!   duplicating its first lines. Should that fail too, it is retried
//!   before the next write (which fails if it still cannot be made).
//!   [`Sink::position`] and [`Sink::bytes_written`] only count complete
//!   batches.
//! - With [`JsonlOptions::gzip`] each batch is compressed as its own
//!   complete gzip member and appended (read whole by `gzip -d`, `zcat`,
//!   Python's `gzip` and flate2's `MultiGzDecoder`).
//! - [`JsonlOptions::rotate_rows`] caps the lines of a file and
//!   [`JsonlOptions::rotate_bytes`] its uncompressed bytes; a line that
//!   would pass a limit starts the next file, and every file holds at least
//!   one line. Files are named `name.jsonl`, `name.0001.jsonl`, … (for
//!   `name.jsonl.gz`: `name.0001.jsonl.gz`).
//!
//! Standard output (path `-`) is written as it comes: it is neither
//! gzipped nor rotated, and has no position.

use std::io::{Read, Write};
use std::path::Path;

use trawl_core::{Item, Sink, SinkError};

pub use crate::rotating::rotated_path;
use crate::rotating::{FileOptions, Records, RotatingFile};

/// How a [`JsonlSink`] writes its files: `rotate_rows` counts lines.
pub type JsonlOptions = FileOptions;

enum Target {
    Files(RotatingFile),
    Stdout,
}

/// Writes items as JSON Lines to a file (created or appended; optionally
/// gzipped and rotated) or stdout.
pub struct JsonlSink {
    label: String,
    target: Target,
    /// Bytes of complete batches written to stdout.
    stdout_bytes: u64,
}

/// The lines of a file's text (every record ends with a newline).
fn count_lines(text: &mut dyn Read) -> Result<u64, String> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = 0;
    loop {
        match text.read(&mut buf) {
            Ok(0) => return Ok(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

impl JsonlSink {
    /// `path` "-" means stdout. Existing files are appended to when
    /// `append`, else truncated.
    pub fn open(path: &Path, append: bool) -> Result<JsonlSink, SinkError> {
        Self::open_with(path, JsonlOptions::default(), append)
    }

    /// [`open`](Self::open) with gzip or rotation. Appending to a rotated
    /// file continues in the last of its files. Standard output cannot be
    /// gzipped or rotated.
    pub fn open_with(
        path: &Path,
        opts: JsonlOptions,
        append: bool,
    ) -> Result<JsonlSink, SinkError> {
        if path == Path::new("-") {
            if !opts.is_plain() {
                return Err(SinkError::Other(
                    "JSONL to standard output cannot be gzipped or rotated: write to a file".into(),
                ));
            }
            return Ok(JsonlSink {
                label: Self::open_name(path),
                target: Target::Stdout,
                stdout_bytes: 0,
            });
        }
        let file = if append {
            RotatingFile::append(path, opts, count_lines)?
        } else {
            RotatingFile::create(path, opts)?
        };
        Ok(JsonlSink {
            label: Self::open_name(path),
            target: Target::Files(file),
            stdout_bytes: 0,
        })
    }

    /// Reopen a file written by an interrupted crawl: cut it back to
    /// `position` (the end of the last batch the frontier acknowledged) and
    /// append from there. Items after it belong to unacknowledged work that
    /// will be fetched and written again.
    pub fn resume(path: &Path, position: u64) -> Result<JsonlSink, SinkError> {
        Self::resume_with(path, JsonlOptions::default(), position)
    }

    /// [`resume`](Self::resume) with gzip or rotation (the options the
    /// files were written with): the file holding `position` is cut back
    /// there and later rotated files are deleted.
    pub fn resume_with(
        path: &Path,
        opts: JsonlOptions,
        position: u64,
    ) -> Result<JsonlSink, SinkError> {
        Ok(JsonlSink {
            label: Self::open_name(path),
            target: Target::Files(RotatingFile::resume(path, opts, position, count_lines)?),
            stdout_bytes: 0,
        })
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

/// Encode items as lines, one record each.
fn encode_records(items: &[Item]) -> Result<Records, SinkError> {
    let mut lines = Records::with_capacity(items.len() * 512);
    for item in items {
        let buf = lines.buffer();
        serde_json::to_writer(&mut *buf, item).map_err(|e| SinkError::Encode(e.to_string()))?;
        buf.push(b'\n');
        lines.end_record();
    }
    Ok(lines)
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
        match &mut self.target {
            Target::Files(file) => file.write_batch(Vec::new(), encode_records(items)?).await,
            Target::Stdout => {
                let buf = encode_lines(items)?;
                let len = buf.len() as u64;
                let written = tokio::task::spawn_blocking(move || {
                    let _whole_lines = crate::output_lock().lock();
                    let mut out = std::io::stdout().lock();
                    out.write_all(&buf).and_then(|_| out.flush())
                })
                .await
                .map_err(|e| SinkError::Other(format!("writer task: {e}")))?;
                written.map_err(|source| SinkError::io(&self.label, source))?;
                self.stdout_bytes += len;
                Ok(())
            }
        }
    }

    fn position(&self) -> Option<u64> {
        match &self.target {
            Target::Files(file) => Some(file.position()),
            Target::Stdout => None,
        }
    }

    fn bytes_written(&self) -> u64 {
        match &self.target {
            Target::Files(file) => file.bytes_written(),
            Target::Stdout => self.stdout_bytes,
        }
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        match &self.target {
            Target::Files(file) => file.flush().await,
            Target::Stdout => {
                let res = tokio::task::spawn_blocking(|| std::io::stdout().flush())
                    .await
                    .map_err(|e| SinkError::Other(format!("writer task: {e}")))?;
                res.map_err(|source| SinkError::io(&self.label, source))
            }
        }
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

    // ---- gzip and rotation ----

    use crate::rotating::decoded;
    use std::path::PathBuf;

    /// The files of a sink on `base`, in order.
    fn files(base: &Path) -> Vec<PathBuf> {
        (0..)
            .map(|i| rotated_path(base, i))
            .take_while(|p| p.exists())
            .collect()
    }

    /// The (decompressed) text of every file of a sink on `base`.
    fn texts(base: &Path, gzip: bool) -> Vec<String> {
        files(base)
            .iter()
            .map(|p| {
                let mut text = String::new();
                decoded(p, gzip).unwrap().read_to_string(&mut text).unwrap();
                text
            })
            .collect()
    }

    /// The `n` of every line, file by file, checking that each file holds
    /// whole lines and at least one.
    fn ns_by_file(base: &Path, gzip: bool) -> Vec<Vec<i64>> {
        texts(base, gzip)
            .iter()
            .enumerate()
            .map(|(i, text)| {
                assert!(text.ends_with('\n'), "file {i} ends mid-line");
                let ns: Vec<i64> = text
                    .lines()
                    .map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).unwrap();
                        v["n"].as_i64().unwrap()
                    })
                    .collect();
                assert!(!ns.is_empty(), "file {i} is empty");
                ns
            })
            .collect()
    }

    fn on_disk(base: &Path) -> u64 {
        files(base)
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    }

    fn items(ns: std::ops::RangeInclusive<i64>) -> Vec<Item> {
        ns.map(item).collect()
    }

    fn gzip_opts() -> JsonlOptions {
        JsonlOptions {
            gzip: true,
            ..JsonlOptions::default()
        }
    }

    #[tokio::test]
    async fn gzip_decompresses_to_the_same_lines() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.jsonl");
        let gz = dir.path().join("out.jsonl.gz");
        let mut a = JsonlSink::open(&plain, false).unwrap();
        let mut b = JsonlSink::open_with(&gz, gzip_opts(), false).unwrap();
        assert_eq!(b.name(), JsonlSink::open_name(&gz));
        for batch in [items(1..=2), items(3..=3), items(4..=6)] {
            a.write_batch(&batch).await.unwrap();
            b.write_batch(&batch).await.unwrap();
        }
        a.close().await.unwrap();
        b.close().await.unwrap();
        let gz_len = std::fs::metadata(&gz).unwrap().len();
        assert_eq!(b.position(), Some(gz_len));
        assert_eq!(b.bytes_written(), gz_len);
        assert!(files(&gz).len() == 1);
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&gz).unwrap())
            .read_to_end(&mut text)
            .unwrap();
        let plain_text = std::fs::read(&plain).unwrap();
        assert_eq!(text, plain_text);
        // One gzip member per batch: a single-member reader stops early.
        let mut first = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
            .read_to_end(&mut first)
            .unwrap();
        assert_eq!(first, encode_lines(&items(1..=2)).unwrap());
    }

    /// Python's `gzip` reads every member of every rotated file.
    #[tokio::test]
    async fn python_reads_gzipped_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl.gz");
        let opts = JsonlOptions {
            gzip: true,
            rotate_rows: Some(3),
            ..JsonlOptions::default()
        };
        let mut sink = JsonlSink::open_with(&path, opts, false).unwrap();
        let all = items(1..=8);
        for batch in all.chunks(2) {
            sink.write_batch(batch).await.unwrap();
        }
        sink.close().await.unwrap();
        let names: Vec<String> = files(&path)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["out.jsonl.gz", "out.0001.jsonl.gz", "out.0002.jsonl.gz"]
        );
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import gzip,sys,json; \
                 print(json.dumps([json.loads(l) for p in sys.argv[1:] \
                     for l in gzip.open(p, 'rt', encoding='utf-8')]))",
            )
            .args(files(&path))
            .output()
            .expect("python3 is needed by this test (see scripts/test.sh)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let want: Vec<serde_json::Value> = all
            .iter()
            .map(|i| serde_json::Value::Object(i.0.clone()))
            .collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn rotates_by_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let opts = JsonlOptions {
            rotate_rows: Some(2),
            ..JsonlOptions::default()
        };
        let mut sink = JsonlSink::open_with(&path, opts, false).unwrap();
        sink.write_batch(&items(1..=3)).await.unwrap();
        sink.write_batch(&items(4..=5)).await.unwrap();
        sink.close().await.unwrap();
        assert_eq!(ns_by_file(&path, false), [vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(rotated_path(&path, 1), dir.path().join("out.0001.jsonl"));
        assert_eq!(sink.position(), Some(on_disk(&path)));
        assert_eq!(sink.bytes_written(), on_disk(&path));
    }

    #[tokio::test]
    async fn rotates_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let line = encode_lines(&[item(1)]).unwrap().len() as u64;
        let opts = JsonlOptions {
            rotate_bytes: Some(2 * line + 1),
            ..JsonlOptions::default()
        };
        let mut sink = JsonlSink::open_with(&path, opts, false).unwrap();
        let mut long = item(6);
        long.0
            .insert("long".into(), "x".repeat(3 * line as usize).into());
        sink.write_batch(&items(1..=5)).await.unwrap();
        sink.write_batch(&[long, item(7)]).await.unwrap();
        sink.close().await.unwrap();
        // A line longer than the limit gets a file of its own.
        assert_eq!(
            ns_by_file(&path, false),
            [vec![1, 2], vec![3, 4], vec![5], vec![6], vec![7]]
        );
        for (i, p) in files(&path).iter().enumerate() {
            let len = std::fs::metadata(p).unwrap().len();
            assert!(len <= 2 * line + 1 || i == 3, "file {i}: {len} bytes");
        }
        assert_eq!(sink.position(), Some(on_disk(&path)));
    }

    fn modes() -> Vec<(&'static str, JsonlOptions)> {
        vec![
            ("plain", JsonlOptions::default()),
            ("gzip", gzip_opts()),
            (
                "rotate_rows",
                JsonlOptions {
                    rotate_rows: Some(2),
                    ..JsonlOptions::default()
                },
            ),
            (
                "gzip+rotate_rows",
                JsonlOptions {
                    gzip: true,
                    rotate_rows: Some(3),
                    ..JsonlOptions::default()
                },
            ),
            (
                "gzip+rotate_bytes",
                JsonlOptions {
                    gzip: true,
                    rotate_bytes: Some(100),
                    ..JsonlOptions::default()
                },
            ),
        ]
    }

    fn batches() -> Vec<Vec<Item>> {
        [1..=2, 3..=5, 6..=6, 7..=9, 10..=10]
            .into_iter()
            .map(items)
            .collect()
    }

    /// Write batches, checkpoint after `k` of them, write the rest (work the
    /// crawl never acknowledged), resume at the checkpoint and redo the rest:
    /// every item exactly once, in order, and the very same files as a run
    /// that was never interrupted.
    #[tokio::test]
    async fn resume_at_any_batch_boundary_writes_each_item_once() {
        let batches = batches();
        for (mode, opts) in modes() {
            let reference = tempfile::tempdir().unwrap();
            let ref_path = reference.path().join("out.jsonl.gz");
            let mut sink = JsonlSink::open_with(&ref_path, opts.clone(), false).unwrap();
            for b in &batches {
                sink.write_batch(b).await.unwrap();
            }
            sink.close().await.unwrap();
            let ref_texts = texts(&ref_path, opts.gzip);
            assert!(
                ref_texts.len() > 1 || !opts.rotates(),
                "{mode}: the test should rotate"
            );
            let want: Vec<i64> = (1..=10).collect();
            assert_eq!(ns_by_file(&ref_path, opts.gzip).concat(), want, "{mode}");

            for k in 0..=batches.len() {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("out.jsonl.gz");
                let mut sink = JsonlSink::open_with(&path, opts.clone(), false).unwrap();
                let mut position = sink.position().unwrap();
                for (i, b) in batches.iter().enumerate() {
                    sink.write_batch(b).await.unwrap();
                    if i + 1 == k {
                        position = sink.position().unwrap();
                    }
                }
                drop(sink);
                let mut sink = JsonlSink::resume_with(&path, opts.clone(), position).unwrap();
                assert_eq!(sink.position(), Some(position), "{mode} k={k}");
                assert_eq!(sink.bytes_written(), 0);
                for b in &batches[k..] {
                    sink.write_batch(b).await.unwrap();
                }
                sink.close().await.unwrap();
                assert_eq!(ns_by_file(&path, opts.gzip).concat(), want, "{mode} k={k}");
                assert_eq!(texts(&path, opts.gzip), ref_texts, "{mode} k={k}");
                let on_disk = on_disk(&path);
                assert_eq!(sink.position(), Some(on_disk), "{mode} k={k}");
                assert_eq!(sink.bytes_written(), on_disk - position, "{mode} k={k}");
            }

            // Beyond what the files hold is an error; the end changes nothing.
            let end = on_disk(&ref_path);
            let err = JsonlSink::resume_with(&ref_path, opts.clone(), end + 1)
                .err()
                .unwrap();
            assert!(err.to_string().contains("changed or lost"), "{mode}: {err}");
            let sink = JsonlSink::resume_with(&ref_path, opts.clone(), end).unwrap();
            assert_eq!(sink.position(), Some(end));
            assert_eq!(texts(&ref_path, opts.gzip), ref_texts, "{mode}");
        }
    }

    /// Appending to a gzipped, rotated output continues in its last file
    /// as if it had never been closed.
    #[tokio::test]
    async fn append_continues_the_last_file() {
        for (mode, opts) in modes() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("out.jsonl");
            let reference = dir.path().join("ref.jsonl");
            let mut r = JsonlSink::open_with(&reference, opts.clone(), false).unwrap();
            for b in batches() {
                r.write_batch(&b).await.unwrap();
            }
            r.close().await.unwrap();
            let batches = batches();
            let mut sink = JsonlSink::open_with(&path, opts.clone(), true).unwrap();
            for b in &batches[..3] {
                sink.write_batch(b).await.unwrap();
            }
            sink.close().await.unwrap();
            let mut sink = JsonlSink::open_with(&path, opts.clone(), true).unwrap();
            assert_eq!(sink.position(), Some(on_disk(&path)), "{mode}");
            for b in &batches[3..] {
                sink.write_batch(b).await.unwrap();
            }
            sink.close().await.unwrap();
            assert_eq!(
                texts(&path, opts.gzip),
                texts(&reference, opts.gzip),
                "{mode}"
            );
            assert_eq!(sink.position(), Some(on_disk(&path)), "{mode}");
        }
    }

    /// On a full disk a batch fails part-way; what it wrote (lines and gzip
    /// members in the first file, files it rotated to) is undone, and the
    /// same batch succeeds once there is room again.
    #[tokio::test]
    async fn a_failed_gzipped_rotated_batch_is_undone_and_can_be_retried() {
        for (mode, opts) in modes() {
            let Some(fs) = SmallFs::mount(64) else {
                return;
            };
            let path = fs.path().join("out.jsonl.gz");
            let mut sink = JsonlSink::open_with(&path, opts.clone(), false).unwrap();
            sink.write_batch(&[item(1)]).await.unwrap();
            let position = sink.position().unwrap();
            let before = std::fs::read(&path).unwrap();
            let filler = fs.fill();
            let big: Vec<Item> = (2..=5)
                .map(|n| {
                    let mut i = item(n);
                    i.0.insert("big".into(), noise(n as u64, 3000).into());
                    i
                })
                .collect();
            let err = sink.write_batch(&big).await.expect_err("disk full");
            assert!(err.to_string().contains("out."), "{err}");
            assert_eq!(sink.position(), Some(position), "{mode}");
            assert!(std::fs::read(&path).unwrap() == before, "{mode}");
            assert!(!rotated_path(&path, 1).exists(), "{mode}");
            assert_eq!(ns_by_file(&path, opts.gzip), [vec![1]], "{mode}");

            std::fs::remove_file(filler).unwrap();
            sink.write_batch(&big).await.unwrap();
            sink.write_batch(&[item(6)]).await.unwrap();
            sink.close().await.unwrap();
            let want: Vec<i64> = (1..=6).collect();
            assert_eq!(ns_by_file(&path, opts.gzip).concat(), want, "{mode}");
            assert_eq!(files(&path).len() > 1, opts.rotates(), "{mode}");
            let on_disk = on_disk(&path);
            assert_eq!(sink.position(), Some(on_disk), "{mode}");
            assert_eq!(sink.bytes_written(), on_disk, "{mode}");
            drop(sink);
        }
    }

    #[tokio::test]
    async fn stdout_cannot_be_gzipped_or_rotated() {
        let dash = Path::new("-");
        let rotated = JsonlOptions {
            rotate_rows: Some(5),
            ..JsonlOptions::default()
        };
        for opts in [gzip_opts(), rotated] {
            let err = JsonlSink::open_with(dash, opts, true).err().unwrap();
            assert!(err.to_string().contains("standard output"), "{err}");
        }
        let sink = JsonlSink::open_with(dash, JsonlOptions::default(), true).unwrap();
        assert_eq!(sink.name(), "jsonl:stdout");
        assert_eq!(sink.position(), None);
    }
}
