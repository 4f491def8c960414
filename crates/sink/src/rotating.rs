//! The file layer the CSV and JSONL sinks share: records appended in
//! batches to a file, optionally gzipped and rotated, that can be cut back
//! to a batch boundary.
//!
//! A [`RotatingFile`] knows nothing of the format: a sink encodes a batch
//! into [`Records`] (each record a byte string: a CSV row, a JSON line) and
//! hands them over with the header every file starts with (a CSV header
//! row; nothing for JSONL).
//!
//! # Batches, the output lock and positions
//! A batch is written with one `write_all` per file under
//! [`crate::output_lock`], so files only grow by whole records.
//! [`RotatingFile::position`] is a global offset over all files: the
//! on-disk sizes of the earlier (rotated) files plus the on-disk bytes of
//! the current one, after the last complete batch; for a single plain file
//! that is simply its length. It is reported in every mode: with gzip each
//! batch ends its gzip member, so a batch boundary is a valid place to cut a
//! file. [`RotatingFile::resume`] cuts the files back to such a position
//! (deleting later rotated files) and carries on from there, so a
//! persistent crawl that was killed writes each record exactly once.
//!
//! # Failed writes
//! If writing a batch fails part-way (a full disk), everything the batch
//! wrote is undone before the error is returned: the file it started in is
//! cut back to its earlier size and files it created by rotating are
//! deleted, so no file holds half a record and the sink can retry the
//! batch. Should the undo fail too, it is retried before the next batch is
//! written.
//!
//! # Gzip
//! With [`FileOptions::gzip`] each batch is compressed as its own complete
//! gzip member and appended; a file is a series of members, which is valid
//! gzip (RFC 1952) and is read whole by `gzip -d`, `zcat`, Python's `gzip`
//! and flate2's `MultiGzDecoder` (flate2's single-member `GzDecoder` stops
//! after the first batch). Since every batch finishes its member, a reader
//! only ever sees whole records and nothing is left to finish at close; the
//! cost is a slightly worse ratio for small batches.
//!
//! # Rotation
//! [`FileOptions::rotate_rows`] caps the records of a file and
//! [`FileOptions::rotate_bytes`] its uncompressed bytes (header included);
//! a record that would pass a limit starts the next file, and every file
//! holds at least one record. Files are named as [`rotated_path`] says
//! (`name.csv`, `name.0001.csv`, …; `name.jsonl.gz`, `name.0001.jsonl.gz`,
//! …), each with its own header. Files are created (truncated) as they are
//! reached. Resuming a rotating file reads the current file back to count
//! its records and bytes, with a format's own [`CountRecords`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use trawl_core::SinkError;

/// How a [`RotatingFile`] writes its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileOptions {
    /// Compress each batch as a complete gzip member (see the module docs).
    pub gzip: bool,
    /// Start a new file before a record that would take the current one past
    /// this many uncompressed bytes.
    pub rotate_bytes: Option<u64>,
    /// Start a new file after this many records (CSV data rows, JSON lines).
    pub rotate_rows: Option<u64>,
}

impl FileOptions {
    /// Whether files are rotated at all.
    pub fn rotates(&self) -> bool {
        self.rotate_bytes.is_some() || self.rotate_rows.is_some()
    }

    /// Whether anything differs from one plain file.
    pub fn is_plain(&self) -> bool {
        !self.gzip && !self.rotates()
    }

    fn check(&self) -> Result<(), SinkError> {
        if self.rotate_rows == Some(0) {
            return Err(SinkError::Other("rotate_rows must be at least 1".into()));
        }
        Ok(())
    }
}

/// Counts the records in a file's (decompressed) text, its header not
/// included; an error is described in words. Used to resume a rotating file.
pub type CountRecords = fn(&mut dyn Read) -> Result<u64, String>;

/// The records of one batch, encoded back to back in one buffer.
#[derive(Debug, Clone, Default)]
pub struct Records {
    data: Vec<u8>,
    /// Where each record ends in `data`.
    ends: Vec<usize>,
}

impl Records {
    /// Room for about `bytes` bytes of records.
    pub fn with_capacity(bytes: usize) -> Records {
        Records {
            data: Vec::with_capacity(bytes),
            ends: Vec::new(),
        }
    }

    /// The buffer to encode the next record into;
    /// [`end_record`](Self::end_record) finishes it. Bytes after the last
    /// finished record are not written.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Finish the record encoded into [`buffer`](Self::buffer) since the
    /// previous one.
    pub fn end_record(&mut self) {
        self.ends.push(self.data.len());
    }

    /// Add one encoded record.
    pub fn push(&mut self, record: &[u8]) {
        self.data.extend_from_slice(record);
        self.end_record();
    }

    /// The number of finished records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// The path of file `index` of a rotating file on `base`: `base` itself for
/// 0, else the number inserted before the extension, or before the last two
/// when the last is `.gz` and the one before it is letters only: `out.csv`
/// → `out.0001.csv`, `out.jsonl.gz` → `out.0001.jsonl.gz`, `items` →
/// `items.0001`.
pub fn rotated_path(base: &Path, index: u32) -> PathBuf {
    if index == 0 {
        return base.to_path_buf();
    }
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot starts a hidden name, not an extension.
    let last_dot = |s: &str| s.rfind('.').filter(|&i| i > 0);
    let split = match last_dot(&name) {
        Some(gz) if name[gz..].eq_ignore_ascii_case(".gz") => last_dot(&name[..gz])
            .filter(|&i| name[i + 1..gz].bytes().all(|b| b.is_ascii_alphabetic()))
            .unwrap_or(gz),
        Some(i) => i,
        None => name.len(),
    };
    let (stem, ext) = name.split_at(split);
    base.with_file_name(format!("{stem}.{index:04}{ext}"))
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        target: path.display().to_string(),
        error: source,
    }
}

fn create(path: &Path) -> Result<File, SinkError> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(path))
}

/// Open an existing file, cut it to `len` bytes and continue at its end.
/// What is not a regular file (`/dev/null`, a FIFO, a terminal) has no
/// length to cut back to: it is written on.
fn open_at(path: &Path, len: u64) -> std::io::Result<File> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    if file.metadata()?.file_type().is_file() {
        file.set_len(len)?;
        file.seek(SeekFrom::Start(len))?;
    }
    Ok(file)
}

/// A reader of a file's text (decompressing every gzip member).
pub fn decoded(path: &Path, gzip: bool) -> std::io::Result<Box<dyn Read>> {
    let file = std::io::BufReader::new(File::open(path)?);
    Ok(if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// `(records, uncompressed bytes)` of a file, as `count` counts records.
fn count_file(path: &Path, gzip: bool, count: CountRecords) -> Result<(u64, u64), SinkError> {
    let mut text = Counting {
        inner: decoded(path, gzip).map_err(io_err(path))?,
        bytes: 0,
    };
    let records = count(&mut text).map_err(|e| {
        SinkError::Other(format!(
            "{}: reading the file back to resume: {e}",
            path.display()
        ))
    })?;
    std::io::copy(&mut text, &mut std::io::sink()).map_err(io_err(path))?;
    Ok((records, text.bytes))
}

fn gzip(header: &[u8], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(header)?;
    enc.write_all(body)?;
    enc.finish()
}

/// The file being written and how full it is.
struct State {
    base: PathBuf,
    opts: FileOptions,
    /// Index of the current file (0 = the base path).
    index: u32,
    /// `None` until the next file is created.
    file: Option<File>,
    /// Whether the current file has its header.
    has_header: bool,
    /// Records in the current file (kept for rotation; after resuming a
    /// file that does not rotate, the records written since).
    records: u64,
    /// Uncompressed bytes in the current file, header included (same
    /// caveat as `records`).
    bytes: u64,
    /// Bytes on disk in the current file.
    disk_bytes: u64,
    /// Bytes on disk in the files before the current one.
    earlier: u64,
    /// Bytes of complete batches written since opening.
    total: u64,
    /// Where the last failed batch started, while undoing it is still owed.
    undo: Option<Mark>,
}

/// The state at the start of a batch, to return to if it fails.
#[derive(Debug, Clone, Copy)]
struct Mark {
    index: u32,
    has_header: bool,
    records: u64,
    bytes: u64,
    disk_bytes: u64,
    earlier: u64,
}

impl State {
    fn new(base: &Path, opts: FileOptions, index: u32, file: File) -> State {
        State {
            base: base.to_path_buf(),
            opts,
            index,
            file: Some(file),
            has_header: false,
            records: 0,
            bytes: 0,
            disk_bytes: 0,
            earlier: 0,
            total: 0,
            undo: None,
        }
    }

    /// The global offset (see the module docs).
    fn position(&self) -> u64 {
        self.earlier + self.disk_bytes
    }

    fn current_path(&self) -> PathBuf {
        rotated_path(&self.base, self.index)
    }

    fn mark(&self) -> Mark {
        Mark {
            index: self.index,
            has_header: self.has_header,
            records: self.records,
            bytes: self.bytes,
            disk_bytes: self.disk_bytes,
            earlier: self.earlier,
        }
    }

    /// Return to `mark`: delete the files created since, cut the file it
    /// was in back to its size then, and continue there.
    fn rewind(&mut self, mark: Mark) -> Result<(), SinkError> {
        self.file = None;
        for index in mark.index + 1..=self.index {
            let path = rotated_path(&self.base, index);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(&path)(e));
                }
                _ => {}
            }
        }
        let path = rotated_path(&self.base, mark.index);
        self.file = Some(open_at(&path, mark.disk_bytes).map_err(io_err(&path))?);
        self.index = mark.index;
        self.has_header = mark.has_header;
        self.records = mark.records;
        self.bytes = mark.bytes;
        self.disk_bytes = mark.disk_bytes;
        self.earlier = mark.earlier;
        Ok(())
    }

    /// Write one batch, all or nothing (see the module docs).
    fn write_batch(&mut self, header: &[u8], records: &Records) -> Result<(), SinkError> {
        if let Some(mark) = self.undo {
            self.rewind(mark)?;
            self.undo = None;
        }
        let mark = self.mark();
        let start = self.position();
        if let Err(e) = self.write_records(header, records) {
            if let Err(error) = self.rewind(mark) {
                tracing::error!(%error, file = %self.base.display(), "Undoing a failed batch failed; retrying before the next batch.");
                self.undo = Some(mark);
            }
            return Err(e);
        }
        self.total += self.position() - start;
        Ok(())
    }

    /// Whether a record of `len` bytes must go to a new file.
    fn full(&self, header_len: u64, len: u64) -> bool {
        if self.records == 0 {
            return false;
        }
        let by_records = self.opts.rotate_rows.is_some_and(|max| self.records >= max);
        let by_bytes = self
            .opts
            .rotate_bytes
            .is_some_and(|max| self.bytes + len > max.max(header_len));
        by_records || by_bytes
    }

    /// Write one file's share of a batch: `header` (empty unless the file
    /// is new) and then `body`, with one write.
    fn write_chunk(&mut self, header: &[u8], body: &[u8]) -> Result<(), SinkError> {
        if header.is_empty() && body.is_empty() {
            return Ok(());
        }
        let path = self.current_path();
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(create(&path)?),
        };
        let out;
        let bytes = if self.opts.gzip {
            out = gzip(header, body).map_err(io_err(&path))?;
            &out[..]
        } else if header.is_empty() {
            body
        } else {
            out = [header, body].concat();
            &out[..]
        };
        file.write_all(bytes).map_err(io_err(&path))?;
        self.disk_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Append the records, rotating as needed.
    fn write_records(&mut self, header: &[u8], records: &Records) -> Result<(), SinkError> {
        let header_len = header.len() as u64;
        let data = &records.data;
        // The current file's share: `data[start..end]`, after the header
        // when `with_header`.
        let mut start = 0;
        let mut end = 0;
        let mut with_header = false;
        for &record_end in &records.ends {
            let len = (record_end - end) as u64;
            if self.full(header_len, len) {
                let head = if with_header { header } else { &[] };
                self.write_chunk(head, &data[start..end])?;
                if let Some(f) = self.file.take() {
                    sync(&f).map_err(io_err(&self.current_path()))?;
                }
                self.earlier += self.disk_bytes;
                self.index += 1;
                self.has_header = false;
                self.records = 0;
                self.bytes = 0;
                self.disk_bytes = 0;
                start = end;
                with_header = false;
            }
            if !self.has_header {
                // Only ever at the start of a file's share.
                with_header = true;
                self.bytes += header_len;
                self.has_header = true;
            }
            self.records += 1;
            self.bytes += len;
            end = record_end;
        }
        let head = if with_header { header } else { &[] };
        self.write_chunk(head, &data[start..end])
    }
}

/// Appends batches of records to a file, optionally gzipped and rotated
/// (see the module docs).
pub struct RotatingFile {
    state: Arc<Mutex<State>>,
    /// Global offset after the last complete batch.
    position: u64,
    /// Bytes of complete batches written since opening.
    bytes: u64,
}

impl RotatingFile {
    /// Create (truncate) `base` and write to it.
    pub fn create(base: &Path, opts: FileOptions) -> Result<RotatingFile, SinkError> {
        opts.check()?;
        let file = create(base)?;
        Ok(RotatingFile {
            state: Arc::new(Mutex::new(State::new(base, opts, 0, file))),
            position: 0,
            bytes: 0,
        })
    }

    /// Reopen the files on `base` at `position` (a
    /// [`position`](Self::position) a crawl acknowledged): the file holding
    /// it is cut back there, later rotated files are deleted, and writing
    /// carries on after it. When rotating, `count` counts the records of the
    /// file that is continued. A position beyond what the files hold is an
    /// error.
    pub fn resume(
        base: &Path,
        opts: FileOptions,
        position: u64,
        count: CountRecords,
    ) -> Result<RotatingFile, SinkError> {
        opts.check()?;
        // Find the first file that reaches the position.
        let mut index = 0;
        let mut earlier = 0;
        let disk_bytes = loop {
            let file = rotated_path(base, index);
            let len = match std::fs::metadata(&file) {
                // `/dev/null` and friends: nothing to check or cut back.
                Ok(m) if !m.file_type().is_file() => u64::MAX,
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(SinkError::Other(format!(
                        "{} and its rotated files hold {earlier} bytes but the crawl state says {position} were written: the output was changed or lost",
                        base.display()
                    )));
                }
                Err(e) => return Err(io_err(&file)(e)),
            };
            if position - earlier <= len {
                break position - earlier;
            }
            earlier += len;
            if !opts.rotates() {
                return Err(SinkError::Other(format!(
                    "{} has {earlier} bytes but the crawl state says {position} were written: the output was changed or lost",
                    base.display()
                )));
            }
            index += 1;
        };
        let current = rotated_path(base, index);
        let file = open_at(&current, disk_bytes).map_err(io_err(&current))?;
        if opts.rotates() {
            let mut later = index + 1;
            loop {
                let p = rotated_path(base, later);
                match std::fs::remove_file(&p) {
                    Ok(()) => later += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) => return Err(io_err(&p)(e)),
                }
            }
        }
        let (records, bytes) = if opts.rotates() && disk_bytes > 0 {
            count_file(&current, opts.gzip, count)?
        } else {
            (0, 0)
        };
        let mut state = State::new(base, opts, index, file);
        state.has_header = disk_bytes > 0;
        state.records = records;
        state.bytes = bytes;
        state.disk_bytes = disk_bytes;
        state.earlier = earlier;
        Ok(RotatingFile {
            state: Arc::new(Mutex::new(state)),
            position,
            bytes: 0,
        })
    }

    /// Continue after everything the files on `base` hold (the base file
    /// and, when rotating, the rotated files that follow it), or create
    /// `base` if it does not exist.
    pub fn append(
        base: &Path,
        opts: FileOptions,
        count: CountRecords,
    ) -> Result<RotatingFile, SinkError> {
        opts.check()?;
        let mut end = 0;
        for index in 0.. {
            let path = rotated_path(base, index);
            match std::fs::metadata(&path) {
                Ok(m) => end += m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && index == 0 => {
                    return Self::create(base, opts);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_err(&path)(e)),
            }
            if !opts.rotates() {
                break;
            }
        }
        Self::resume(base, opts, end, count)
    }

    /// Append one batch: each file it reaches starts with `header`. All or
    /// nothing (see the module docs).
    pub async fn write_batch(
        &mut self,
        header: Vec<u8>,
        records: Records,
    ) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let state = self.state.clone();
        let (position, total) = tokio::task::spawn_blocking(move || {
            let _whole_records = crate::output_lock().lock();
            let mut state = state.lock();
            state
                .write_batch(&header, &records)
                .map(|()| (state.position(), state.total))
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))??;
        self.position = position;
        self.bytes = total;
        Ok(())
    }

    /// The global offset after the last complete batch (see the module
    /// docs).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes (on disk) of complete batches written since opening.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Make the current file durable.
    pub async fn flush(&self) -> Result<(), SinkError> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let state = state.lock();
            match &state.file {
                Some(f) => sync(f).map_err(io_err(&state.current_path())),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))?
    }
}

/// `sync_data`, except that outputs which cannot be synced (`/dev/null`,
/// a pipe: EINVAL) are fine as they are.
fn sync(f: &std::fs::File) -> std::io::Result<()> {
    match f.sync_data() {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rotated_names() {
        let p = |s: &str, i| rotated_path(Path::new(s), i);
        assert_eq!(p("d/out.csv", 0), Path::new("d/out.csv"));
        assert_eq!(p("d/out.csv", 1), Path::new("d/out.0001.csv"));
        assert_eq!(p("out.CSV.gz", 12), Path::new("out.0012.CSV.gz"));
        assert_eq!(p("a.b.tsv", 2), Path::new("a.b.0002.tsv"));
        assert_eq!(p("items", 3), Path::new("items.0003"));
        assert_eq!(p(".csv", 1), Path::new(".csv.0001"));
        assert_eq!(p("d/out.jsonl", 1), Path::new("d/out.0001.jsonl"));
        assert_eq!(p("d/out.jsonl.gz", 1), Path::new("d/out.0001.jsonl.gz"));
        assert_eq!(p("out.JSONL.GZ", 2), Path::new("out.0002.JSONL.GZ"));
        assert_eq!(p("a.b.ndjson.gz", 3), Path::new("a.b.0003.ndjson.gz"));
        assert_eq!(p("out.gz", 1), Path::new("out.0001.gz"));
        assert_eq!(p(".csv.gz", 1), Path::new(".csv.0001.gz"));
        assert_eq!(p("dump.2024-01.gz", 1), Path::new("dump.2024-01.0001.gz"));
    }

    fn records(items: &[&str]) -> Records {
        let mut r = Records::default();
        for i in items {
            r.push(i.as_bytes());
        }
        r
    }

    /// Records of the form `rN\n`, with the header `h\n`.
    fn count_lines(text: &mut dyn Read) -> Result<u64, String> {
        let mut s = String::new();
        text.read_to_string(&mut s).map_err(|e| e.to_string())?;
        Ok(s.lines().filter(|l| *l != "h").count() as u64)
    }

    fn read_all(base: &Path, gzip: bool) -> Vec<String> {
        (0..)
            .map(|i| rotated_path(base, i))
            .take_while(|p| p.exists())
            .map(|p| {
                let mut s = String::new();
                decoded(&p, gzip).unwrap().read_to_string(&mut s).unwrap();
                s
            })
            .collect()
    }

    #[tokio::test]
    async fn header_starts_every_file_and_records_stay_whole() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("out.txt.gz");
        let opts = FileOptions {
            gzip: true,
            rotate_rows: Some(2),
            rotate_bytes: Some(9),
        };
        let mut f = RotatingFile::create(&base, opts.clone()).unwrap();
        f.write_batch(b"h\n".to_vec(), records(&["r1\n", "r2\n", "r3\n"]))
            .await
            .unwrap();
        // Over 9 bytes on its own: a file of its own.
        f.write_batch(b"h\n".to_vec(), records(&["r4 is long\n", "r5\n"]))
            .await
            .unwrap();
        f.write_batch(b"h\n".to_vec(), Records::default())
            .await
            .unwrap();
        let files = read_all(&base, true);
        assert_eq!(
            files,
            ["h\nr1\nr2\n", "h\nr3\n", "h\nr4 is long\n", "h\nr5\n"]
        );
        let on_disk: u64 = (0..4)
            .map(|i| std::fs::metadata(rotated_path(&base, i)).unwrap().len())
            .sum();
        assert_eq!(f.position(), on_disk);
        assert_eq!(f.bytes_written(), on_disk);

        // Resume in the second file: its one record is counted, so the
        // next record still fits there.
        let pos = std::fs::metadata(&base).unwrap().len()
            + std::fs::metadata(rotated_path(&base, 1)).unwrap().len();
        let mut f = RotatingFile::resume(&base, opts.clone(), pos, count_lines).unwrap();
        assert_eq!(f.position(), pos);
        f.write_batch(b"h\n".to_vec(), records(&["r6\n", "r7\n"]))
            .await
            .unwrap();
        assert_eq!(
            read_all(&base, true),
            ["h\nr1\nr2\n", "h\nr3\nr6\n", "h\nr7\n"]
        );

        // Appending continues in the last file.
        let mut f = RotatingFile::append(&base, opts, count_lines).unwrap();
        f.write_batch(b"h\n".to_vec(), records(&["r8\n"]))
            .await
            .unwrap();
        assert_eq!(
            read_all(&base, true),
            ["h\nr1\nr2\n", "h\nr3\nr6\n", "h\nr7\nr8\n"]
        );
    }

    #[tokio::test]
    async fn unfinished_record_bytes_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("out.txt");
        let mut f = RotatingFile::create(&base, FileOptions::default()).unwrap();
        let mut r = records(&["a\n"]);
        r.buffer().extend_from_slice(b"half");
        assert_eq!(r.len(), 1);
        f.write_batch(Vec::new(), r).await.unwrap();
        assert_eq!(std::fs::read(&base).unwrap(), b"a\n");
        assert_eq!(f.position(), 2);
    }

    #[test]
    fn zero_rows_per_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let opts = FileOptions {
            rotate_rows: Some(0),
            ..FileOptions::default()
        };
        let err = RotatingFile::create(&dir.path().join("x"), opts)
            .err()
            .unwrap();
        assert!(err.to_string().contains("rotate_rows"), "{err}");
    }
}
