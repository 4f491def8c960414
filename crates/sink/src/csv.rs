//! CSV sink.
//!
//! # Columns
//! The columns are fixed once: the list given to [`CsvSink::open`] (a
//! spider's field order), else the keys of the first item that has any, in
//! their order (items keep insertion order). Keys that a later item has but
//! the columns lack are **ignored** (CSV has one header; growing it mid-file
//! would break every reader), and columns an item lacks are left empty.
//! Items seen before the columns are known that have no fields at all carry
//! no data and are skipped.
//!
//! # Values
//! Strings are written as they are, numbers and booleans as their JSON text,
//! `null` and missing fields as an empty cell, arrays and objects as compact
//! JSON. Quoting follows RFC 4180 (done by the `csv` crate); records end with
//! CRLF. The header row is written once per file, just before its first row.
//!
//! # Batches, the output lock and positions
//! A batch is encoded in memory and written with one `write_all` per file
//! under [`crate::output_lock`], so files only grow by whole rows.
//! [`Sink::position`] is a global offset over all files of the sink: the
//! on-disk sizes of the earlier (rotated) files plus the on-disk bytes of the
//! current one, after the last complete batch. It is reported in every mode:
//! with gzip each batch ends its gzip member, so a batch boundary is a valid
//! place to cut a file. [`CsvSink::resume`] cuts the files back to such a
//! position (deleting later rotated files) and carries on from there, so a
//! persistent crawl that was killed writes each item exactly once.
//!
//! # Failed writes
//! If writing a batch fails part-way (a full disk), everything the batch
//! wrote is undone before the error is returned: the file it started in is
//! cut back to its earlier size and files it created by rotating are
//! deleted, so no file holds half a row and the engine can retry the batch.
//! Should the undo fail too, it is retried before the next batch is written.
//!
//! # Gzip
//! With [`CsvOptions::gzip`] each batch is compressed as its own complete
//! gzip member and appended; a file is a series of members, which is valid
//! gzip (RFC 1952) and is read whole by `gzip -d`, `zcat`, Python's `gzip`
//! and flate2's `MultiGzDecoder` (flate2's single-member `GzDecoder` stops
//! after the first batch). Since every batch finishes its member, a reader
//! only ever sees whole rows and nothing is left to finish at close; the cost
//! is a slightly worse ratio for small batches.
//!
//! # Rotation
//! [`CsvOptions::rotate_rows`] caps the data rows of a file and
//! [`CsvOptions::rotate_bytes`] its uncompressed CSV bytes (header
//! included); a row that would pass a limit starts the next file, and every
//! file holds at least one row. Files are named `name.csv`, `name.0001.csv`,
//! `name.0002.csv`, … (for `name.csv.gz`: `name.0001.csv.gz`), each with its
//! own header. Files are created (truncated) as they are reached.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use trawl_core::{Item, Sink, SinkError};

/// How a [`CsvSink`] writes its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// Compress each batch as a complete gzip member (see the module docs).
    pub gzip: bool,
    /// Start a new file before a row that would take the current one past
    /// this many uncompressed bytes.
    pub rotate_bytes: Option<u64>,
    /// Start a new file after this many data rows.
    pub rotate_rows: Option<u64>,
}

impl CsvOptions {
    fn rotates(&self) -> bool {
        self.rotate_bytes.is_some() || self.rotate_rows.is_some()
    }
}

/// The file being written and how full it is.
struct FileState {
    base: PathBuf,
    opts: CsvOptions,
    /// Index of the current file (0 = the base path).
    index: u32,
    /// `None` until the next file is created.
    file: Option<File>,
    /// Whether the current file has its header row.
    has_header: bool,
    /// Data rows in the current file (kept for rotation; after resuming a
    /// sink that does not rotate, the rows written since).
    rows: u64,
    /// Uncompressed bytes in the current file, header included (same
    /// caveat as `rows`).
    csv_bytes: u64,
    /// Bytes on disk in the current file.
    disk_bytes: u64,
    /// Bytes on disk in the files before the current one.
    earlier: u64,
    /// Bytes of complete batches written through this sink.
    total: u64,
    /// Where the last failed batch started, while undoing it is still owed.
    undo: Option<Mark>,
}

/// The state at the start of a batch, to return to if it fails.
#[derive(Debug, Clone, Copy)]
struct Mark {
    index: u32,
    has_header: bool,
    rows: u64,
    csv_bytes: u64,
    disk_bytes: u64,
    earlier: u64,
}

/// Writes items as CSV to a file, optionally gzipped and rotated.
pub struct CsvSink {
    label: String,
    columns: Option<Vec<String>>,
    state: Arc<Mutex<FileState>>,
    /// Global offset after the last complete batch (see the module docs).
    position: u64,
    /// Bytes of complete batches written through this sink.
    bytes: u64,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        target: path.display().to_string(),
        source,
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
fn open_at(path: &Path, len: u64) -> std::io::Result<File> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.seek(SeekFrom::Start(len))?;
    Ok(file)
}

fn check_options(
    path: &Path,
    columns: Option<&Vec<String>>,
    opts: &CsvOptions,
) -> Result<(), SinkError> {
    if columns.is_some_and(|c| c.is_empty()) {
        return Err(SinkError::Other(format!(
            "{}: a CSV sink needs at least one column",
            path.display()
        )));
    }
    if opts.rotate_rows == Some(0) {
        return Err(SinkError::Other("rotate_rows must be at least 1".into()));
    }
    Ok(())
}

/// A reader of a file's CSV text (decompressing every gzip member).
fn csv_text(path: &Path, gzip: bool) -> std::io::Result<Box<dyn Read>> {
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

/// `(records, uncompressed bytes)` of a file, header row included.
fn count_records(path: &Path, gzip: bool) -> Result<(u64, u64), SinkError> {
    let bad = |e: ::csv::Error| {
        SinkError::Other(format!(
            "{}: reading the file back to resume: {e}",
            path.display()
        ))
    };
    let text = Counting {
        inner: csv_text(path, gzip).map_err(io_err(path))?,
        bytes: 0,
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut record = ::csv::ByteRecord::new();
    let mut records = 0;
    while reader.read_byte_record(&mut record).map_err(bad)? {
        records += 1;
    }
    let mut text = reader.into_inner();
    std::io::copy(&mut text, &mut std::io::sink()).map_err(io_err(path))?;
    Ok((records, text.bytes))
}

/// The header row of a file, `None` if it is empty.
fn read_header(path: &Path, gzip: bool) -> Result<Option<Vec<String>>, SinkError> {
    if std::fs::metadata(path).map_err(io_err(path))?.len() == 0 {
        return Ok(None); // (an empty file is not valid gzip)
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_text(path, gzip).map_err(io_err(path))?);
    let mut record = ::csv::StringRecord::new();
    let found = reader
        .read_record(&mut record)
        .map_err(|e| SinkError::Other(format!("{}: reading the header: {e}", path.display())))?;
    Ok(found.then(|| record.iter().map(String::from).collect()))
}

impl CsvSink {
    /// Create (truncate) `path` and write items to it. `columns` fixes the
    /// column order; without it the first item's keys are used.
    pub fn open(
        path: &Path,
        columns: Option<Vec<String>>,
        opts: CsvOptions,
    ) -> Result<CsvSink, SinkError> {
        check_options(path, columns.as_ref(), &opts)?;
        let file = create(path)?;
        Ok(CsvSink {
            label: Self::open_name(path),
            columns,
            state: Arc::new(Mutex::new(FileState {
                base: path.to_path_buf(),
                opts,
                index: 0,
                file: Some(file),
                has_header: false,
                rows: 0,
                csv_bytes: 0,
                disk_bytes: 0,
                earlier: 0,
                total: 0,
                undo: None,
            })),
            position: 0,
            bytes: 0,
        })
    }

    /// Reopen the files of an interrupted crawl at `position` (a
    /// [`Sink::position`] the crawl state acknowledged): the file holding it
    /// is cut back there, later rotated files are deleted, and writing
    /// carries on after it. `columns` as for [`open`](Self::open); without
    /// them the header of the first file is used, and given ones must match
    /// it. A position beyond what the files hold is an error.
    pub fn resume(
        path: &Path,
        columns: Option<Vec<String>>,
        opts: CsvOptions,
        position: u64,
    ) -> Result<CsvSink, SinkError> {
        check_options(path, columns.as_ref(), &opts)?;
        // Find the first file that reaches the position.
        let mut index = 0;
        let mut earlier = 0;
        let disk_bytes = loop {
            let file = rotated_path(path, index);
            let len = match std::fs::metadata(&file) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(SinkError::Other(format!(
                        "{} and its rotated files hold {earlier} bytes but the crawl state says {position} were written: the output was changed or lost",
                        path.display()
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
                    path.display()
                )));
            }
            index += 1;
        };
        let current = rotated_path(path, index);
        let file = open_at(&current, disk_bytes).map_err(io_err(&current))?;
        if opts.rotates() {
            let mut later = index + 1;
            loop {
                let p = rotated_path(path, later);
                match std::fs::remove_file(&p) {
                    Ok(()) => later += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) => return Err(io_err(&p)(e)),
                }
            }
        }
        let header = read_header(path, opts.gzip)?;
        let columns = match (columns, header) {
            (Some(given), Some(found)) if given != found => {
                return Err(SinkError::Other(format!(
                    "{}: the columns {given:?} differ from the header {found:?} of the file to resume",
                    path.display()
                )));
            }
            (given, found) => given.or(found),
        };
        let (rows, csv_bytes) = if opts.rotates() && disk_bytes > 0 {
            let (records, bytes) = count_records(&current, opts.gzip)?;
            (records.saturating_sub(1), bytes)
        } else {
            (0, 0)
        };
        Ok(CsvSink {
            label: Self::open_name(path),
            columns,
            state: Arc::new(Mutex::new(FileState {
                base: path.to_path_buf(),
                opts,
                index,
                file: Some(file),
                has_header: disk_bytes > 0,
                rows,
                csv_bytes,
                disk_bytes,
                earlier,
                total: 0,
                undo: None,
            })),
            position,
            bytes: 0,
        })
    }

    /// The name a sink opened on `path` reports (stable for one path).
    pub fn open_name(path: &Path) -> String {
        format!(
            "csv:{}",
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
        )
    }

    /// The columns, once known (given, or taken from the first item).
    pub fn columns(&self) -> Option<&[String]> {
        self.columns.as_deref()
    }
}

/// The path of file `index` of a rotating sink on `base`: `base` itself for
/// 0, else the number inserted before `.csv`/`.csv.gz` (or the last
/// extension): `out.csv` → `out.0001.csv`.
pub fn rotated_path(base: &Path, index: u32) -> PathBuf {
    if index == 0 {
        return base.to_path_buf();
    }
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let split = [".csv.gz", ".csv", ".gz"]
        .iter()
        .find(|s| lower.ends_with(*s) && lower.len() > s.len())
        .map(|s| name.len() - s.len())
        .or_else(|| name.rfind('.').filter(|&i| i > 0))
        .unwrap_or(name.len());
    let (stem, ext) = name.split_at(split);
    base.with_file_name(format!("{stem}.{index:04}{ext}"))
}

/// One cell: see the module docs.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// Encode one record (header or row) as CSV bytes.
fn encode_record<I, S>(fields: I) -> Result<Vec<u8>, SinkError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(fields)
        .map_err(|e| SinkError::Encode(e.to_string()))?;
    w.into_inner().map_err(|e| SinkError::Encode(e.to_string()))
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data)?;
    enc.finish()
}

impl FileState {
    /// The global offset (see the module docs).
    fn position(&self) -> u64 {
        self.earlier + self.disk_bytes
    }

    fn mark(&self) -> Mark {
        Mark {
            index: self.index,
            has_header: self.has_header,
            rows: self.rows,
            csv_bytes: self.csv_bytes,
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
        self.rows = mark.rows;
        self.csv_bytes = mark.csv_bytes;
        self.disk_bytes = mark.disk_bytes;
        self.earlier = mark.earlier;
        Ok(())
    }

    /// Write one batch's rows, all or nothing (see the module docs).
    fn write_batch(&mut self, header: &[u8], rows: &[Vec<u8>]) -> Result<(), SinkError> {
        if let Some(mark) = self.undo {
            self.rewind(mark)?;
            self.undo = None;
        }
        let mark = self.mark();
        let start = self.position();
        if let Err(e) = self.write_rows(header, rows) {
            if let Err(error) = self.rewind(mark) {
                tracing::error!(%error, "Undoing a failed CSV batch failed; retrying before the next batch.");
                self.undo = Some(mark);
            }
            return Err(e);
        }
        self.total += self.position() - start;
        Ok(())
    }

    /// Whether `row_len` more bytes must go to a new file.
    fn full(&self, header_len: u64, row_len: u64) -> bool {
        if self.rows == 0 {
            return false;
        }
        let by_rows = self.opts.rotate_rows.is_some_and(|max| self.rows >= max);
        let by_bytes = self
            .opts
            .rotate_bytes
            .is_some_and(|max| self.csv_bytes + row_len > max.max(header_len));
        by_rows || by_bytes
    }

    /// Write one file's share of a batch (already containing its header if
    /// the file is new).
    fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), SinkError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let path = rotated_path(&self.base, self.index);
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(create(&path)?),
        };
        let out;
        let bytes = if self.opts.gzip {
            out = gzip(chunk).map_err(io_err(&path))?;
            &out[..]
        } else {
            chunk
        };
        file.write_all(bytes).map_err(io_err(&path))?;
        self.disk_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Append encoded rows, rotating as needed.
    fn write_rows(&mut self, header: &[u8], rows: &[Vec<u8>]) -> Result<(), SinkError> {
        let header_len = header.len() as u64;
        let mut chunk = Vec::new();
        for row in rows {
            let row_len = row.len() as u64;
            if self.full(header_len, row_len) {
                self.write_chunk(&chunk)?;
                chunk.clear();
                if let Some(f) = self.file.take() {
                    f.sync_data()
                        .map_err(io_err(&rotated_path(&self.base, self.index)))?;
                }
                self.earlier += self.disk_bytes;
                self.index += 1;
                self.has_header = false;
                self.rows = 0;
                self.csv_bytes = 0;
                self.disk_bytes = 0;
            }
            if !self.has_header {
                chunk.extend_from_slice(header);
                self.csv_bytes += header_len;
                self.has_header = true;
            }
            chunk.extend_from_slice(row);
            self.rows += 1;
            self.csv_bytes += row_len;
        }
        self.write_chunk(&chunk)
    }
}

#[async_trait::async_trait]
impl Sink for CsvSink {
    fn name(&self) -> String {
        self.label.clone()
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        if self.columns.is_none() {
            self.columns = items
                .iter()
                .find(|i| !i.0.is_empty())
                .map(|i| i.0.keys().cloned().collect());
        }
        let Some(columns) = &self.columns else {
            return Ok(()); // only empty items so far: nothing to write
        };
        if items.is_empty() {
            return Ok(());
        }
        let header = encode_record(columns)?;
        let rows = items
            .iter()
            .map(|item| encode_record(columns.iter().map(|c| cell(item.0.get(c)))))
            .collect::<Result<Vec<_>, _>>()?;
        let state = self.state.clone();
        let (position, total) = tokio::task::spawn_blocking(move || {
            let _whole_rows = crate::output_lock().lock();
            let mut state = state.lock();
            state
                .write_batch(&header, &rows)
                .map(|()| (state.position(), state.total))
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))??;
        self.position = position;
        self.bytes = total;
        Ok(())
    }

    fn position(&self) -> Option<u64> {
        Some(self.position)
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let state = state.lock();
            match &state.file {
                Some(f) => f
                    .sync_data()
                    .map_err(io_err(&rotated_path(&state.base, state.index))),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonl::small_fs::{SmallFs, noise};
    use serde_json::json;

    fn item(v: Value) -> Item {
        match v {
            Value::Object(m) => Item(m),
            _ => panic!("not an object"),
        }
    }

    fn tricky() -> Vec<Item> {
        vec![
            item(json!({
                "url": "https://example.com/a,b",
                "title": "He said \"hi\", then left",
                "body": "line one\nline two\r\nline three",
                "n": 42, "f": 1.5, "ok": true, "none": null,
                "tags": ["x", "y,z", "\"q\""],
                "meta": {"k": [1, 2]},
            })),
            item(json!({
                "title": "ünïcödé — 日本語 🦀",
                "url": "  spaces  ",
                "extra": "ignored",
                "n": -7,
            })),
            item(json!({"url": "", "tags": []})),
        ]
    }

    /// What a CSV reader should get back for `items` under `columns`.
    fn expected(columns: &[&str], items: &[Item]) -> Vec<Vec<String>> {
        items
            .iter()
            .map(|i| columns.iter().map(|c| cell(i.0.get(*c))).collect())
            .collect()
    }

    fn read_csv(data: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = ::csv::Reader::from_reader(data);
        let header = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    const COLS: [&str; 9] = [
        "url", "title", "body", "n", "f", "ok", "none", "tags", "meta",
    ];

    #[tokio::test]
    async fn round_trip_of_tricky_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, CsvOptions::default()).unwrap();
        let items = tricky();
        sink.write_batch(&items[..1]).await.unwrap();
        sink.write_batch(&items[1..]).await.unwrap();
        sink.close().await.unwrap();
        assert_eq!(sink.columns().unwrap(), COLS);
        let data = std::fs::read(&path).unwrap();
        assert_eq!(sink.position(), Some(data.len() as u64));
        let (header, rows) = read_csv(&data);
        assert_eq!(header, COLS);
        assert_eq!(rows, expected(&COLS, &items));
        assert_eq!(rows[0][7], r#"["x","y,z","\"q\""]"#);
        assert_eq!(rows[0][8], r#"{"k":[1,2]}"#);
        assert_eq!(rows[0][3..7], ["42", "1.5", "true", ""]);
        assert_eq!(rows[2][7], "[]");
    }

    #[tokio::test]
    async fn given_columns_fix_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let cols = vec!["n".to_string(), "missing".into(), "url".into()];
        let mut sink = CsvSink::open(&path, Some(cols), CsvOptions::default()).unwrap();
        let items = tricky();
        sink.write_batch(&items).await.unwrap();
        sink.close().await.unwrap();
        let (header, rows) = read_csv(&std::fs::read(&path).unwrap());
        assert_eq!(header, ["n", "missing", "url"]);
        assert_eq!(rows, expected(&["n", "missing", "url"], &items));
        assert!(CsvSink::open(&path, Some(vec![]), CsvOptions::default()).is_err());
    }

    #[tokio::test]
    async fn python_csv_module_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, CsvOptions::default()).unwrap();
        let items = tricky();
        sink.write_batch(&items).await.unwrap();
        sink.close().await.unwrap();
        // python3 is a test requirement (scripts/test.sh): no silent skip.
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import csv,sys,json; \
                 print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline='')))))",
            )
            .arg(&path)
            .output()
            .expect("python3 is needed by this test (see scripts/test.sh)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(&out.stdout).unwrap();
        let want: Vec<serde_json::Map<String, Value>> = expected(&COLS, &items)
            .into_iter()
            .map(|row| {
                COLS.iter()
                    .map(|c| c.to_string())
                    .zip(row.into_iter().map(Value::String))
                    .collect()
            })
            .collect();
        assert_eq!(got, want);
    }

    fn numbered(n: i64) -> Item {
        item(json!({"n": n, "s": format!("row, {n}\n")}))
    }

    #[tokio::test]
    async fn rotates_by_rows_with_a_header_in_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let opts = CsvOptions {
            rotate_rows: Some(2),
            ..CsvOptions::default()
        };
        let mut sink = CsvSink::open(&path, None, opts).unwrap();
        sink.write_batch(&[numbered(1), numbered(2), numbered(3)])
            .await
            .unwrap();
        sink.write_batch(&[numbered(4), numbered(5)]).await.unwrap();
        sink.close().await.unwrap();
        let total: u64 = (0..3)
            .map(|i| std::fs::metadata(rotated_path(&path, i)).unwrap().len())
            .sum();
        assert_eq!(sink.position(), Some(total));
        assert_eq!(sink.bytes_written(), total);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["out.0001.csv", "out.0002.csv", "out.csv"]);
        let mut all = Vec::new();
        for (name, count) in [("out.csv", 2), ("out.0001.csv", 2), ("out.0002.csv", 1)] {
            let (header, rows) = read_csv(&std::fs::read(dir.path().join(name)).unwrap());
            assert_eq!(header, ["n", "s"], "{name}");
            assert_eq!(rows.len(), count, "{name}");
            all.extend(rows);
        }
        let items: Vec<_> = (1..=5).map(numbered).collect();
        assert_eq!(all, expected(&["n", "s"], &items));
    }

    #[tokio::test]
    async fn rotates_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let opts = CsvOptions {
            rotate_bytes: Some(31),
            ..CsvOptions::default()
        };
        let mut sink = CsvSink::open(&path, None, opts).unwrap();
        let items: Vec<_> = (1..=4).map(numbered).collect();
        sink.write_batch(&items).await.unwrap();
        sink.close().await.unwrap();
        // "n,s\r\n" is 5 bytes and each row 13, so two rows fit in 31.
        for (i, count) in [(0, 2), (1, 2)] {
            let data = std::fs::read(rotated_path(&path, i)).unwrap();
            assert_eq!(data.len(), 31);
            assert_eq!(read_csv(&data).1.len(), count);
        }
        assert!(!rotated_path(&path, 2).exists());
    }

    #[tokio::test]
    async fn gzip_decompresses_to_the_same_csv() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.csv");
        let gz = dir.path().join("out.csv.gz");
        let items = tricky();
        let mut a = CsvSink::open(&plain, None, CsvOptions::default()).unwrap();
        let opts = CsvOptions {
            gzip: true,
            ..CsvOptions::default()
        };
        let mut b = CsvSink::open(&gz, None, opts).unwrap();
        for batch in [&items[..1], &items[1..]] {
            a.write_batch(batch).await.unwrap();
            b.write_batch(batch).await.unwrap();
        }
        a.close().await.unwrap();
        b.close().await.unwrap();
        let gz_len = std::fs::metadata(&gz).unwrap().len();
        assert_eq!(b.position(), Some(gz_len));
        assert_eq!(b.bytes_written(), gz_len);
        let mut csv = Vec::new();
        let file = std::fs::File::open(&gz).unwrap();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(file), &mut csv).unwrap();
        assert_eq!(csv, std::fs::read(&plain).unwrap());
    }

    /// The CSV text of every file of a sink on `base`, in order.
    fn files_of(base: &Path, gzip: bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0.. {
            let path = rotated_path(base, i);
            if !path.exists() {
                break;
            }
            let mut text = Vec::new();
            csv_text(&path, gzip)
                .unwrap()
                .read_to_end(&mut text)
                .unwrap();
            out.push(text);
        }
        out
    }

    /// Every data row of every file, checking one header per file.
    fn rows_of(base: &Path, gzip: bool) -> Vec<Vec<String>> {
        let mut all = Vec::new();
        for (i, text) in files_of(base, gzip).iter().enumerate() {
            let (header, rows) = read_csv(text);
            assert_eq!(header, ["n", "s"], "file {i}");
            assert!(!rows.is_empty(), "file {i} has no rows");
            assert!(
                rows.iter().all(|r| r != &["n", "s"]),
                "a second header in file {i}"
            );
            all.extend(rows);
        }
        all
    }

    fn modes() -> Vec<(&'static str, CsvOptions)> {
        vec![
            ("plain", CsvOptions::default()),
            (
                "gzip",
                CsvOptions {
                    gzip: true,
                    ..CsvOptions::default()
                },
            ),
            (
                "rotate_rows",
                CsvOptions {
                    rotate_rows: Some(2),
                    ..CsvOptions::default()
                },
            ),
            (
                "gzip+rotate_bytes",
                CsvOptions {
                    gzip: true,
                    rotate_bytes: Some(40),
                    ..CsvOptions::default()
                },
            ),
        ]
    }

    fn batches() -> Vec<Vec<Item>> {
        [1..=2, 3..=5, 6..=6, 7..=9, 10..=10]
            .into_iter()
            .map(|r| r.map(numbered).collect())
            .collect()
    }

    /// Write batches, checkpoint after `k` of them, write the rest (work the
    /// crawl never acknowledged), resume at the checkpoint and redo the rest:
    /// every row exactly once, in order, and the very same files as a run
    /// that was never interrupted.
    #[tokio::test]
    async fn resume_at_any_batch_boundary_writes_each_row_once() {
        let batches = batches();
        let want = expected(&["n", "s"], &batches.concat());
        for (mode, opts) in modes() {
            let reference = tempfile::tempdir().unwrap();
            let ref_path = reference.path().join("out.csv");
            let mut sink = CsvSink::open(&ref_path, None, opts.clone()).unwrap();
            for b in &batches {
                sink.write_batch(b).await.unwrap();
            }
            sink.close().await.unwrap();
            let ref_files = files_of(&ref_path, opts.gzip);
            assert!(
                ref_files.len() > 1 || !opts.rotates(),
                "{mode}: the test should rotate"
            );

            for k in 0..=batches.len() {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("out.csv");
                let mut sink = CsvSink::open(&path, None, opts.clone()).unwrap();
                let mut position = sink.position().unwrap();
                for (i, b) in batches.iter().enumerate() {
                    sink.write_batch(b).await.unwrap();
                    if i + 1 == k {
                        position = sink.position().unwrap();
                    }
                }
                drop(sink);
                let mut sink = CsvSink::resume(&path, None, opts.clone(), position).unwrap();
                assert_eq!(sink.position(), Some(position), "{mode} k={k}");
                assert_eq!(sink.bytes_written(), 0);
                if k > 0 {
                    assert_eq!(sink.columns().unwrap(), ["n", "s"]);
                }
                for b in &batches[k..] {
                    sink.write_batch(b).await.unwrap();
                }
                sink.close().await.unwrap();
                assert_eq!(rows_of(&path, opts.gzip), want, "{mode} k={k}");
                assert_eq!(files_of(&path, opts.gzip), ref_files, "{mode} k={k}");
                let on_disk: u64 = (0..ref_files.len() as u32)
                    .map(|i| std::fs::metadata(rotated_path(&path, i)).unwrap().len())
                    .sum();
                assert_eq!(sink.position(), Some(on_disk), "{mode} k={k}");
                assert_eq!(sink.bytes_written(), on_disk - position, "{mode} k={k}");
            }
        }
    }

    #[tokio::test]
    async fn python_reads_resumed_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let opts = CsvOptions {
            rotate_rows: Some(3),
            ..CsvOptions::default()
        };
        let items = tricky();
        let cols: Vec<String> = COLS.iter().map(|c| c.to_string()).collect();
        let mut sink = CsvSink::open(&path, Some(cols.clone()), opts.clone()).unwrap();
        sink.write_batch(&items[..2]).await.unwrap();
        let position = sink.position().unwrap();
        sink.write_batch(&items[2..]).await.unwrap();
        sink.write_batch(&items).await.unwrap();
        drop(sink);
        let wrong = vec!["url".to_string()];
        let err = CsvSink::resume(&path, Some(wrong), opts.clone(), position)
            .err()
            .unwrap();
        assert!(err.to_string().contains("differ"), "{err}");
        let mut sink = CsvSink::resume(&path, Some(cols), opts, position).unwrap();
        sink.write_batch(&items[2..]).await.unwrap();
        sink.write_batch(&items).await.unwrap();
        sink.close().await.unwrap();
        let files: Vec<PathBuf> = (0..)
            .map(|i| rotated_path(&path, i))
            .take_while(|p| p.exists())
            .collect();
        assert_eq!(files.len(), 2);
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import csv,sys,json; \
                 print(json.dumps([r for p in sys.argv[1:] \
                     for r in csv.DictReader(open(p, newline=''))]))",
            )
            .args(&files)
            .output()
            .expect("python3 is needed by this test (see scripts/test.sh)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(&out.stdout).unwrap();
        let all: Vec<Item> = items.iter().chain(&items).cloned().collect();
        let want: Vec<serde_json::Map<String, Value>> = expected(&COLS, &all)
            .into_iter()
            .map(|row| {
                COLS.iter()
                    .map(|c| c.to_string())
                    .zip(row.into_iter().map(Value::String))
                    .collect()
            })
            .collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn resume_beyond_the_files_is_an_error() {
        for (mode, opts) in modes() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("out.csv");
            let mut sink = CsvSink::open(&path, None, opts.clone()).unwrap();
            for b in batches() {
                sink.write_batch(&b).await.unwrap();
            }
            let end = sink.position().unwrap();
            drop(sink);
            let err = CsvSink::resume(&path, None, opts.clone(), end + 1)
                .err()
                .unwrap();
            assert!(err.to_string().contains("changed or lost"), "{mode}: {err}");
            let missing = dir.path().join("missing.csv");
            assert!(CsvSink::resume(&missing, None, opts.clone(), 0).is_err());
            // The end itself is fine and changes nothing.
            let before = files_of(&path, opts.gzip);
            let sink = CsvSink::resume(&path, None, opts.clone(), end).unwrap();
            assert_eq!(sink.position(), Some(end));
            assert_eq!(files_of(&path, opts.gzip), before, "{mode}");
        }
    }

    /// Rows of about 3 KB that gzip cannot shrink much.
    fn big(n: i64) -> Item {
        item(json!({"n": n, "s": noise(n as u64, 3000)}))
    }

    /// On a full disk a batch fails part-way; what it wrote (rows in the
    /// first file, files it rotated to) is undone, and the same batch
    /// succeeds once there is room again.
    #[tokio::test]
    async fn a_failed_batch_is_undone_and_can_be_retried() {
        for (mode, opts) in modes() {
            let Some(fs) = SmallFs::mount(64) else {
                return;
            };
            let path = fs.path().join("out.csv");
            let mut sink = CsvSink::open(&path, None, opts.clone()).unwrap();
            sink.write_batch(&[numbered(1)]).await.unwrap();
            let position = sink.position().unwrap();
            let before = std::fs::read(&path).unwrap();
            let filler = fs.fill();
            let batch: Vec<Item> = (2..=5).map(big).collect();
            let err = sink.write_batch(&batch).await.expect_err("disk full");
            assert!(err.to_string().contains("out"), "{err}");
            assert_eq!(sink.position(), Some(position), "{mode}");
            let after = std::fs::read(&path).unwrap();
            assert!(
                after == before,
                "{mode}: {} bytes, not the {} of before the batch",
                after.len(),
                before.len()
            );
            assert!(!rotated_path(&path, 1).exists(), "{mode}");
            assert_eq!(
                rows_of(&path, opts.gzip),
                expected(&["n", "s"], &[numbered(1)])
            );

            std::fs::remove_file(filler).unwrap();
            sink.write_batch(&batch).await.unwrap();
            sink.write_batch(&[numbered(6)]).await.unwrap();
            sink.close().await.unwrap();
            let all: Vec<Item> = std::iter::once(numbered(1))
                .chain(batch.iter().cloned())
                .chain([numbered(6)])
                .collect();
            assert_eq!(
                rows_of(&path, opts.gzip),
                expected(&["n", "s"], &all),
                "{mode}"
            );
            let files = files_of(&path, opts.gzip).len() as u32;
            assert_eq!(files > 1, opts.rotates(), "{mode}");
            let on_disk: u64 = (0..files)
                .map(|i| std::fs::metadata(rotated_path(&path, i)).unwrap().len())
                .sum();
            assert_eq!(sink.position(), Some(on_disk), "{mode}");
            assert_eq!(sink.bytes_written(), on_disk, "{mode}");
            drop(sink);
        }
    }

    #[test]
    fn rotated_names() {
        let p = |s: &str, i| rotated_path(Path::new(s), i);
        assert_eq!(p("d/out.csv", 0), Path::new("d/out.csv"));
        assert_eq!(p("d/out.csv", 1), Path::new("d/out.0001.csv"));
        assert_eq!(p("out.CSV.gz", 12), Path::new("out.0012.CSV.gz"));
        assert_eq!(p("a.b.tsv", 2), Path::new("a.b.0002.tsv"));
        assert_eq!(p("items", 3), Path::new("items.0003"));
        assert_eq!(p(".csv", 1), Path::new(".csv.0001"));
    }

    #[test]
    fn unwritable_path_is_a_clear_error() {
        let err = CsvSink::open(
            Path::new("/nonexistent-dir/x.csv"),
            None,
            CsvOptions::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("/nonexistent-dir/x.csv"), "{err}");
    }
}
