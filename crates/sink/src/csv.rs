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
//! [`Sink::position`] is the byte length of the file for a plain, single-file
//! sink only. With rotation one number cannot say where a crawl stopped
//! across several files, and with gzip a byte offset of compressed data is
//! not something a resume could cut back to and carry on from a CSV view, so
//! those report `None` (no exactly-once resume for them).
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
use std::io::Write;
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
    /// Data rows in the current file.
    rows: u64,
    /// Uncompressed bytes in the current file (header included).
    csv_bytes: u64,
    /// Bytes on disk in the current file.
    disk_bytes: u64,
}

/// Writes items as CSV to a file, optionally gzipped and rotated.
pub struct CsvSink {
    label: String,
    columns: Option<Vec<String>>,
    state: Arc<Mutex<FileState>>,
    /// Bytes in the file after the last complete batch (plain, single file).
    written: Option<u64>,
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

impl CsvSink {
    /// Create (truncate) `path` and write items to it. `columns` fixes the
    /// column order; without it the first item's keys are used.
    pub fn open(
        path: &Path,
        columns: Option<Vec<String>>,
        opts: CsvOptions,
    ) -> Result<CsvSink, SinkError> {
        if columns.as_ref().is_some_and(|c| c.is_empty()) {
            return Err(SinkError::Other(format!(
                "{}: a CSV sink needs at least one column",
                path.display()
            )));
        }
        if opts.rotate_rows == Some(0) {
            return Err(SinkError::Other("rotate_rows must be at least 1".into()));
        }
        let file = create(path)?;
        let written = (!opts.gzip && !opts.rotates()).then_some(0);
        Ok(CsvSink {
            label: Self::open_name(path),
            columns,
            state: Arc::new(Mutex::new(FileState {
                base: path.to_path_buf(),
                opts,
                index: 0,
                file: Some(file),
                rows: 0,
                csv_bytes: 0,
                disk_bytes: 0,
            })),
            written,
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
                self.index += 1;
                self.rows = 0;
                self.csv_bytes = 0;
                self.disk_bytes = 0;
            }
            if self.rows == 0 && self.csv_bytes == 0 {
                chunk.extend_from_slice(header);
                self.csv_bytes += header_len;
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
        let disk_bytes = tokio::task::spawn_blocking(move || {
            let _whole_rows = crate::output_lock().lock();
            let mut state = state.lock();
            state.write_rows(&header, &rows).map(|()| state.disk_bytes)
        })
        .await
        .map_err(|e| SinkError::Other(format!("writer task: {e}")))??;
        if let Some(n) = &mut self.written {
            *n = disk_bytes;
        }
        Ok(())
    }

    fn position(&self) -> Option<u64> {
        self.written
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
        assert_eq!(sink.position(), None);
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
        assert_eq!(b.position(), None);
        let mut csv = Vec::new();
        let file = std::fs::File::open(&gz).unwrap();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(file), &mut csv).unwrap();
        assert_eq!(csv, std::fs::read(&plain).unwrap());
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
