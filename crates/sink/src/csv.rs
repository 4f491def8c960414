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
//! # Files
//! The rows go through a [`RotatingFile`], which this module shares with the
//! JSONL sink; its docs tell the details:
//! - A batch is written with one `write_all` per file under
//!   [`crate::output_lock`], so files only grow by whole rows.
//!   [`Sink::position`] is a global offset over all files of the sink,
//!   reported in every mode; [`CsvSink::resume`] cuts the files back to
//!   such a position (deleting later rotated files) and carries on from
//!   there, so a persistent crawl that was killed writes each item exactly
//!   once.
//! - If writing a batch fails part-way (a full disk), everything the batch
//!   wrote is undone before the error is returned, so no file holds half a
//!   row and the engine can retry the batch.
//! - With [`CsvOptions::gzip`] each batch is compressed as its own complete
//!   gzip member and appended (read whole by `gzip -d`, `zcat`, Python's
//!   `gzip` and flate2's `MultiGzDecoder`).
//! - [`CsvOptions::rotate_rows`] caps the data rows of a file and
//!   [`CsvOptions::rotate_bytes`] its uncompressed CSV bytes (header
//!   included); a row that would pass a limit starts the next file, and
//!   every file holds at least one row. Files are named `name.csv`,
//!   `name.0001.csv`, `name.0002.csv`, … (for `name.csv.gz`:
//!   `name.0001.csv.gz`), each with its own header. Files are created
//!   (truncated) as they are reached.

use std::io::Read;
use std::path::Path;

use serde_json::Value;
use trawl_core::{Item, Sink, SinkError};

pub use crate::rotating::rotated_path;
use crate::rotating::{FileOptions, Records, RotatingFile, decoded};

/// How a [`CsvSink`] writes its files: `rotate_rows` counts data rows.
pub type CsvOptions = FileOptions;

/// Writes items as CSV to a file, optionally gzipped and rotated.
pub struct CsvSink {
    label: String,
    columns: Option<Vec<String>>,
    file: RotatingFile,
}

fn check_columns(path: &Path, columns: Option<&Vec<String>>) -> Result<(), SinkError> {
    if columns.is_some_and(|c| c.is_empty()) {
        return Err(SinkError::Other(format!(
            "{}: a CSV sink needs at least one column",
            path.display()
        )));
    }
    Ok(())
}

/// The data rows of a file's CSV text: its records but the header.
fn count_rows(text: &mut dyn Read) -> Result<u64, String> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut record = ::csv::ByteRecord::new();
    let mut records: u64 = 0;
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| e.to_string())?
    {
        records += 1;
    }
    Ok(records.saturating_sub(1))
}

/// The header row of a file, `None` if it is empty.
fn read_header(path: &Path, gzip: bool) -> Result<Option<Vec<String>>, SinkError> {
    let io_err = |source| SinkError::Io {
        target: path.display().to_string(),
        error: source,
    };
    if std::fs::metadata(path).map_err(io_err)?.len() == 0 {
        return Ok(None); // (an empty file is not valid gzip)
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(decoded(path, gzip).map_err(io_err)?);
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
        check_columns(path, columns.as_ref())?;
        Ok(CsvSink {
            label: Self::open_name(path),
            columns,
            file: RotatingFile::create(path, opts)?,
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
        check_columns(path, columns.as_ref())?;
        let gzip = opts.gzip;
        let file = RotatingFile::resume(path, opts, position, count_rows)?;
        let header = read_header(path, gzip)?;
        let columns = match (columns, header) {
            (Some(given), Some(found)) if given != found => {
                return Err(SinkError::Other(format!(
                    "{}: the columns {given:?} differ from the header {found:?} of the file to resume",
                    path.display()
                )));
            }
            (given, found) => given.or(found),
        };
        Ok(CsvSink {
            label: Self::open_name(path),
            columns,
            file,
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

/// One cell: see the module docs.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// Encode one record (header or row) as CSV bytes onto `out`.
fn encode_record<I, S>(out: &mut Vec<u8>, fields: I) -> Result<(), SinkError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(out);
    w.write_record(fields)
        .map_err(|e| SinkError::Encode(e.to_string()))?;
    w.flush().map_err(|e| SinkError::Encode(e.to_string()))
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
        let mut header = Vec::new();
        encode_record(&mut header, columns)?;
        let mut rows = Records::with_capacity(items.len() * 256);
        for item in items {
            encode_record(rows.buffer(), columns.iter().map(|c| cell(item.0.get(c))))?;
            rows.end_record();
        }
        self.file.write_batch(header, rows).await
    }

    fn position(&self) -> Option<u64> {
        Some(self.file.position())
    }

    fn bytes_written(&self) -> u64 {
        self.file.bytes_written()
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        self.file.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonl::small_fs::{SmallFs, noise};
    use serde_json::json;
    use std::path::PathBuf;

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
            decoded(&path, gzip)
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
