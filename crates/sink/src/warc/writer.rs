//! The [`WarcWriter`]: records, digests, gzip members, rotation.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha1::{Digest, Sha1};

/// One HTTP exchange to archive. `body` is the response body as stored (after
/// content decoding); see the [module docs](super) for what is rewritten.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub url: &'a str,
    pub method: &'a str,
    pub request_headers: &'a [(String, String)],
    pub status: u16,
    pub reason: &'a str,
    pub response_headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// The body was cut short (a size cap): the response record gets
    /// `WARC-Truncated: length`.
    pub truncated: bool,
    /// The page's DOM after rendering: written as a `conversion` record
    /// that refers to the response.
    pub rendered: Option<&'a [u8]>,
    pub ip: Option<IpAddr>,
    pub date: SystemTime,
    /// The response repeats an earlier capture: a `revisit` record (its
    /// HTTP headers, no payload) replaces the `response`.
    pub revisit: Option<&'a trawl_core::Revisit>,
}

/// Writes WARC 1.1 records, one gzip member each, to rotating files.
#[derive(Debug)]
pub struct WarcWriter {
    dir: PathBuf,
    prefix: String,
    rotate_bytes: Option<u64>,
    file: File,
    /// Compressed bytes in the current file.
    written: u64,
    /// Compressed bytes in the files before the current one.
    earlier: u64,
    /// Bytes of every record this writer wrote (rewound ones excepted).
    total: u64,
    /// Whether the current file holds a record besides its `warcinfo`.
    has_records: bool,
    files: Vec<PathBuf>,
    last_response_id: Option<String>,
}

/// Where a [`WarcWriter`] stood ([`WarcWriter::mark`]), to go back to with
/// [`WarcWriter::rewind`].
#[derive(Debug, Clone)]
pub struct WarcMark {
    files: usize,
    written: u64,
    earlier: u64,
    total: u64,
    has_records: bool,
    last_response_id: Option<String>,
}

impl WarcWriter {
    /// Opens `dir/PREFIX-00000.warc.gz` (which must not exist) and writes its
    /// `warcinfo` record. `rotate_bytes: None` never rotates.
    pub fn create(dir: &Path, prefix: &str, rotate_bytes: Option<u64>) -> io::Result<WarcWriter> {
        let path = file_path(dir, prefix, 0);
        let file = open_new(&path)?;
        let mut w = WarcWriter {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            rotate_bytes,
            file,
            written: 0,
            earlier: 0,
            total: 0,
            has_records: false,
            files: vec![path],
            last_response_id: None,
        };
        w.write_warcinfo()?;
        Ok(w)
    }

    /// Reopens the files of an interrupted writer at `position` (a
    /// [`position`](Self::position) it reported at a record boundary): the
    /// file holding it is cut back there, later files are deleted, and
    /// records are appended after it. A position beyond the files is an
    /// [`io::ErrorKind::InvalidData`] error, as is a file that does not
    /// start with a gzipped `warcinfo` record.
    pub fn resume(
        dir: &Path,
        prefix: &str,
        rotate_bytes: Option<u64>,
        position: u64,
    ) -> io::Result<WarcWriter> {
        let mut files = Vec::new();
        let mut earlier = 0;
        let offset = loop {
            let path = file_path(dir, prefix, files.len());
            let len = match std::fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} holds {earlier} bytes of {prefix}-*.warc.gz but the crawl state says {position} were written: the output was changed or lost",
                            dir.display()
                        ),
                    ));
                }
                Err(e) => return Err(e),
            };
            files.push(path);
            if position - earlier <= len {
                break position - earlier;
            }
            earlier += len;
        };
        remove_from(dir, prefix, files.len())?;
        let path = files.last().cloned().unwrap_or_default();
        let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
        file.set_len(offset)?;
        let has_records = offset > 0 && more_than_warcinfo(&mut file, &path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut w = WarcWriter {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            rotate_bytes,
            file,
            written: offset,
            earlier,
            total: 0,
            has_records,
            files,
            last_response_id: None,
        };
        if offset == 0 {
            w.write_warcinfo()?;
        }
        Ok(w)
    }

    /// Writes a `request` and a `response` record, each naming the other in
    /// `WARC-Concurrent-To`. The pair always lands in one file.
    pub fn write_exchange(&mut self, ex: &Exchange) -> io::Result<()> {
        self.maybe_rotate()?;
        let req_id = record_id();
        let resp_id = record_id();
        let date = rfc3339(ex.date);
        let ip = ex.ip.map(|ip| ip.to_string());

        // Request block.
        let (authority, target) = split_url(ex.url);
        let mut head = String::new();
        let _ = write!(head, "{} {} HTTP/1.1\r\n", clean(ex.method), clean(&target));
        if !ex
            .request_headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host"))
            && !authority.is_empty()
        {
            let _ = write!(head, "Host: {}\r\n", clean(authority));
        }
        for (k, v) in ex.request_headers {
            let _ = write!(head, "{}: {}\r\n", clean(k), clean(v));
        }
        head.push_str("\r\n");
        let mut extra = vec![("WARC-Concurrent-To", resp_id.clone())];
        if let Some(ip) = &ip {
            extra.push(("WARC-IP-Address", ip.clone()));
        }
        self.write_record(
            "request",
            &req_id,
            &date,
            Some(ex.url),
            "application/http;msgtype=request",
            head.as_bytes(),
            b"",
            &extra,
        )?;

        // Response block.
        let mut head = String::new();
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", ex.status, clean(ex.reason));
        for (k, v) in ex.response_headers {
            if ["content-encoding", "transfer-encoding", "content-length"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
            {
                continue;
            }
            let _ = write!(head, "{}: {}\r\n", clean(k), clean(v));
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", ex.body.len());
        let mut extra = vec![("WARC-Concurrent-To", req_id)];
        if let Some(ip) = ip {
            extra.push(("WARC-IP-Address", ip));
        }
        if let Some(revisit) = ex.revisit {
            // WARC 1.1 §6.7.2: the headers, and where the payload is.
            extra.push(("WARC-Profile", revisit.profile.uri().to_string()));
            extra.push(("WARC-Refers-To-Target-URI", clean(&revisit.refers_to_uri)));
            if let Some(when) = revisit.refers_to_date {
                extra.push(("WARC-Refers-To-Date", rfc3339(when)));
            }
            if revisit.profile == trawl_core::RevisitProfile::IdenticalPayloadDigest {
                let digest = format!("sha1:{}", b32(&Sha1::digest(ex.body)));
                extra.push(("WARC-Payload-Digest", digest));
            }
            self.write_record(
                "revisit",
                &resp_id,
                &date,
                Some(ex.url),
                "application/http;msgtype=response",
                head.as_bytes(),
                b"",
                &extra,
            )?;
            self.last_response_id = Some(resp_id);
            return Ok(());
        }
        if ex.truncated {
            extra.push(("WARC-Truncated", "length".to_string()));
        }
        self.write_record(
            "response",
            &resp_id,
            &date,
            Some(ex.url),
            "application/http;msgtype=response",
            head.as_bytes(),
            ex.body,
            &extra,
        )?;
        if let Some(dom) = ex.rendered {
            // WARC 1.1 §6.7: an alternative version of a record's content.
            self.write_record(
                "conversion",
                &record_id(),
                &date,
                Some(ex.url),
                "text/html; charset=utf-8",
                b"",
                dom,
                &[("WARC-Refers-To", resp_id.clone())],
            )?;
        }
        self.last_response_id = Some(resp_id);
        Ok(())
    }

    /// Writes a `metadata` record (`application/json`) for an item extracted
    /// from `target_uri`. `refers_to` is a WARC-Record-ID (with or without the
    /// angle brackets), normally [`last_response_id`](Self::last_response_id)
    /// right after the exchange was written.
    pub fn write_metadata(
        &mut self,
        target_uri: &str,
        refers_to: Option<&str>,
        json: &serde_json::Value,
    ) -> io::Result<()> {
        let body = serde_json::to_vec(json).map_err(io::Error::other)?;
        self.write_json_metadata(Some(target_uri), refers_to, &body)
    }

    /// [`write_metadata`](Self::write_metadata) of JSON already encoded,
    /// with the target URI optional.
    pub(crate) fn write_json_metadata(
        &mut self,
        target_uri: Option<&str>,
        refers_to: Option<&str>,
        body: &[u8],
    ) -> io::Result<()> {
        self.maybe_rotate()?;
        let mut extra = Vec::new();
        if let Some(r) = refers_to {
            let r = clean(r.trim());
            let r = if r.starts_with('<') {
                r
            } else {
                format!("<{r}>")
            };
            extra.push(("WARC-Refers-To", r));
        }
        self.write_record(
            "metadata",
            &record_id(),
            &rfc3339(SystemTime::now()),
            target_uri,
            "application/json",
            b"",
            body,
            &extra,
        )
    }

    /// Every file opened so far, in order (the last one is being written).
    pub fn files(&self) -> Vec<PathBuf> {
        self.files.clone()
    }

    /// `WARC-Record-ID` (`<urn:uuid:…>`) of the last response record written.
    pub fn last_response_id(&self) -> Option<&str> {
        self.last_response_id.as_deref()
    }

    /// Flushes and syncs the current file to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_data()
    }

    /// A global offset over the files: the sizes of the earlier files plus
    /// the bytes of the current one (every record is whole, `warcinfo`
    /// records included). [`resume`](Self::resume) cuts back to it.
    pub fn position(&self) -> u64 {
        self.earlier + self.written
    }

    /// Compressed bytes of the records this writer wrote (not counting
    /// what a [`rewind`](Self::rewind) took back).
    pub fn bytes_written(&self) -> u64 {
        self.total
    }

    /// Where the writer stands now, to [`rewind`](Self::rewind) to.
    pub fn mark(&self) -> WarcMark {
        WarcMark {
            files: self.files.len(),
            written: self.written,
            earlier: self.earlier,
            total: self.total,
            has_records: self.has_records,
            last_response_id: self.last_response_id.clone(),
        }
    }

    /// Undoes everything written since `mark` (after a failed write, which
    /// may have left part of a record): deletes the files opened since,
    /// cuts the file then current back to its size then, and continues
    /// there. If it fails it can be called again.
    pub fn rewind(&mut self, mark: &WarcMark) -> io::Result<()> {
        let keep = mark.files.clamp(1, self.files.len());
        for path in &self.files[keep..] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.files.truncate(keep);
        let path = self.files[keep - 1].clone();
        let mut file = OpenOptions::new().write(true).open(&path)?;
        file.set_len(mark.written)?;
        file.seek(SeekFrom::Start(mark.written))?;
        self.file = file;
        self.written = mark.written;
        self.earlier = mark.earlier;
        self.total = mark.total;
        self.has_records = mark.has_records;
        self.last_response_id.clone_from(&mark.last_response_id);
        Ok(())
    }

    fn maybe_rotate(&mut self) -> io::Result<()> {
        let Some(limit) = self.rotate_bytes else {
            return Ok(());
        };
        if self.written < limit || !self.has_records {
            return Ok(());
        }
        self.file.flush()?;
        self.file.sync_data()?;
        let path = file_path(&self.dir, &self.prefix, self.files.len());
        let file = open_new(&path)?;
        self.files.push(path);
        self.file = file;
        self.earlier += self.written;
        self.written = 0;
        self.has_records = false;
        self.write_warcinfo()
    }

    fn write_warcinfo(&mut self) -> io::Result<()> {
        let name = self
            .files
            .last()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let body = format!(
            "software: trawl/{}\r\nformat: WARC File Format 1.1\r\n\
             conformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n",
            env!("CARGO_PKG_VERSION")
        );
        self.write_record(
            "warcinfo",
            &record_id(),
            &rfc3339(SystemTime::now()),
            None,
            "application/warc-fields",
            b"",
            body.as_bytes(),
            &[("WARC-Filename", clean(&name))],
        )
    }

    /// One record: header, block = `head` + `payload`, `\r\n\r\n`, gzipped
    /// as its own member and written with a single `write_all`.
    #[allow(clippy::too_many_arguments)]
    fn write_record(
        &mut self,
        kind: &str,
        id: &str,
        date: &str,
        target: Option<&str>,
        content_type: &str,
        head: &[u8],
        payload: &[u8],
        extra: &[(&str, String)],
    ) -> io::Result<()> {
        let mut block = Sha1::new();
        block.update(head);
        block.update(payload);
        let mut h = String::with_capacity(512);
        h.push_str("WARC/1.1\r\n");
        let _ = write!(h, "WARC-Type: {kind}\r\n");
        let _ = write!(h, "WARC-Record-ID: {id}\r\n");
        let _ = write!(h, "WARC-Date: {date}\r\n");
        if let Some(t) = target {
            let _ = write!(h, "WARC-Target-URI: {}\r\n", clean(t));
        }
        for (k, v) in extra {
            let _ = write!(h, "{k}: {v}\r\n");
        }
        let _ = write!(h, "Content-Type: {content_type}\r\n");
        let _ = write!(h, "WARC-Block-Digest: sha1:{}\r\n", b32(&block.finalize()));
        // A revisit's payload lives elsewhere: its digest, when known, is
        // among `extra`.
        if kind != "revisit" {
            let _ = write!(
                h,
                "WARC-Payload-Digest: sha1:{}\r\n",
                b32(&Sha1::digest(payload))
            );
        }
        let _ = write!(h, "Content-Length: {}\r\n\r\n", head.len() + payload.len());

        let mut gz = GzEncoder::new(
            Vec::with_capacity(payload.len() / 2 + 512),
            Compression::default(),
        );
        gz.write_all(h.as_bytes())?;
        gz.write_all(head)?;
        gz.write_all(payload)?;
        gz.write_all(b"\r\n\r\n")?;
        let member = gz.finish()?;
        self.file.write_all(&member)?;
        self.written += member.len() as u64;
        self.total += member.len() as u64;
        if kind != "warcinfo" {
            self.has_records = true;
        }
        Ok(())
    }
}

/// Deletes `PREFIX-n.warc.gz` and the files numbered after it, up to the
/// first one missing.
fn remove_from(dir: &Path, prefix: &str, mut n: usize) -> io::Result<()> {
    loop {
        match std::fs::remove_file(file_path(dir, prefix, n)) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Whether `file` (at a record boundary) holds a gzip member after its
/// first, which must be a `warcinfo` record.
fn more_than_warcinfo(file: &mut File, path: &Path) -> io::Result<bool> {
    let bad = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a WARC file to resume: {why}", path.display()),
        )
    };
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(file);
    let mut first = Vec::new();
    flate2::bufread::GzDecoder::new(&mut reader)
        .read_to_end(&mut first)
        .map_err(|e| bad(e.to_string()))?;
    const INFO: &[u8] = b"\r\nWARC-Type: warcinfo\r\n";
    let head = &first[..first.len().min(64)];
    if !head.starts_with(b"WARC/") || !head.windows(INFO.len()).any(|w| w == INFO) {
        return Err(bad("the first record is not a warcinfo record".into()));
    }
    Ok(!reader.fill_buf()?.is_empty())
}

fn file_path(dir: &Path, prefix: &str, n: usize) -> PathBuf {
    dir.join(format!("{prefix}-{n:05}.warc.gz"))
}

fn open_new(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

fn record_id() -> String {
    format!("<urn:uuid:{}>", uuid::Uuid::new_v4())
}

fn b32(digest: &[u8]) -> String {
    data_encoding::BASE32.encode(digest)
}

/// Replaces CR and LF so a value cannot add header lines.
fn clean(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// `(authority, origin-form target)` of an absolute URL; the fragment is
/// dropped and an empty path becomes `/`.
fn split_url(url: &str) -> (&str, String) {
    let url = url.split('#').next().unwrap_or(url);
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => {
            return (
                "",
                if url.is_empty() {
                    "/".into()
                } else {
                    url.into()
                },
            );
        }
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let target = &rest[end..];
    let target = if target.is_empty() {
        "/".to_string()
    } else if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_string()
    };
    (authority, target)
}

/// `YYYY-MM-DDThh:mm:ssZ` (UTC, whole seconds); times before 1970 clamp to
/// the epoch.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
