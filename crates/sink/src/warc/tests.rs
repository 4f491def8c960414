//! WARC writer tests. The archives are read back with the real Python
//! `warcio` package (installed by `scripts/test.sh`), digests checked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::writer::rfc3339;
use super::{Exchange, WarcWriter};

/// Reads every file with warcio (`check_digests='raise'`, so a bad digest is
/// an exception), counts gzip members, and prints one JSON object per file.
const READER: &str = r#"
import sys, json, zlib, hashlib, base64
from warcio.archiveiterator import ArchiveIterator
out = []
for path in sys.argv[1:]:
    raw = open(path, 'rb').read()
    members = 0
    while raw:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        d.decompress(raw)
        assert d.eof, 'truncated gzip member'
        raw = d.unused_data
        members += 1
    recs = []
    with open(path, 'rb') as f:
        for r in ArchiveIterator(f, check_digests='raise'):
            h = r.rec_headers
            content = r.content_stream().read()
            http = r.http_headers
            recs.append({
                'version': h.protocol,
                'type': r.rec_type,
                'id': h.get_header('WARC-Record-ID'),
                'date': h.get_header('WARC-Date'),
                'uri': h.get_header('WARC-Target-URI'),
                'content_type': h.get_header('Content-Type'),
                'concurrent_to': h.get_header('WARC-Concurrent-To'),
                'refers_to': h.get_header('WARC-Refers-To'),
                'ip': h.get_header('WARC-IP-Address'),
                'truncated': h.get_header('WARC-Truncated'),
                'filename': h.get_header('WARC-Filename'),
                'payload_len': len(content),
                'payload_b32': base64.b32encode(hashlib.sha1(content).digest()).decode(),
                'payload_digest': h.get_header('WARC-Payload-Digest'),
                'block_digest': h.get_header('WARC-Block-Digest'),
                'digests_passed': r.digest_checker.passed,
                'problems': r.digest_checker.problems,
                'status_line': http.protocol + ' ' + http.statusline if http else None,
                'http_headers': http.headers if http else None,
                'content': content.decode('utf-8', 'replace') if r.rec_type in ('metadata', 'warcinfo') else None,
            })
    out.append({'path': path, 'members': members, 'records': recs})
print(json.dumps(out))
"#;

pub(super) fn warcio_read(files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(READER)
        .args(files)
        .output()
        .expect("python3 not found: run scripts/test.sh, which installs warcio");
    assert!(
        out.status.success(),
        "warcio failed (missing? run `python3 -m pip install warcio` or scripts/test.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("reader JSON");
    v.as_array().expect("array").clone()
}

pub(super) fn sha1_b32(b: &[u8]) -> String {
    data_encoding::BASE32.encode(&Sha1::digest(b))
}

fn hdrs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, x)| (k.to_string(), x.to_string()))
        .collect()
}

struct Owned {
    url: String,
    req: Vec<(String, String)>,
    status: u16,
    reason: String,
    resp: Vec<(String, String)>,
    body: Vec<u8>,
}

fn samples() -> Vec<Owned> {
    let binary: Vec<u8> = (0..=255u8)
        .chain([0x1f, 0x8b, 0, b'\r', b'\n', b'\r', b'\n'])
        .cycle()
        .take(5000)
        .collect();
    vec![
        Owned {
            url: "https://example.com/".into(),
            req: hdrs(&[("User-Agent", "trawl"), ("Accept", "*/*")]),
            status: 200,
            reason: "OK".into(),
            resp: hdrs(&[
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Encoding", "gzip"),
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "12"),
            ]),
            body: "<html><body>héllo</body></html>".as_bytes().to_vec(),
        },
        Owned {
            url: "http://user@example.org:8080?q=1#frag".into(),
            req: hdrs(&[]),
            status: 200,
            reason: "OK".into(),
            resp: hdrs(&[
                ("Content-Type", "image/png"),
                ("X-Evil", "a\r\nInjected: yes"),
            ]),
            body: binary,
        },
        Owned {
            url: "https://example.com/missing".into(),
            req: hdrs(&[("Host", "example.com")]),
            status: 404,
            reason: "Not Found".into(),
            resp: hdrs(&[]),
            body: Vec::new(),
        },
    ]
}

fn ex(o: &Owned) -> Exchange<'_> {
    Exchange {
        url: &o.url,
        method: "GET",
        request_headers: &o.req,
        status: o.status,
        reason: &o.reason,
        response_headers: &o.resp,
        body: &o.body,
        truncated: false,
        rendered: None,
        ip: Some("127.0.0.1".parse().expect("ip")),
        date: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        revisit: None,
    }
}

pub(super) fn s<'a>(r: &'a Value, k: &str) -> &'a str {
    r[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {r}"))
}

/// Checks every record's common fields and digests.
pub(super) fn check_common(files: &[Value]) {
    for f in files {
        let recs = f["records"].as_array().expect("records");
        assert_eq!(
            f["members"].as_u64(),
            Some(recs.len() as u64),
            "one gzip member per record: {f}"
        );
        assert_eq!(s(&recs[0], "type"), "warcinfo", "warcinfo first: {f}");
        let name = Path::new(s(f, "path"))
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert_eq!(s(&recs[0], "filename"), name);
        assert!(s(&recs[0], "content").contains("WARC File Format 1.1"));
        for r in recs {
            assert_eq!(s(r, "version"), "WARC/1.1");
            let id = s(r, "id");
            assert!(
                id.starts_with("<urn:uuid:") && id.ends_with('>') && id.len() == 47,
                "{id}"
            );
            let date = s(r, "date");
            assert_eq!(date.len(), 20, "{date}");
            assert!(date.ends_with('Z') && date.as_bytes()[10] == b'T', "{date}");
            assert_eq!(r["digests_passed"], json!(true), "{r}");
            assert_eq!(r["problems"], json!([]), "{r}");
            assert_eq!(
                s(r, "payload_digest"),
                format!("sha1:{}", s(r, "payload_b32")),
                "{r}"
            );
            assert!(s(r, "block_digest").starts_with("sha1:"));
        }
    }
}

#[test]
fn exchanges_and_metadata_read_back_with_warcio() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = WarcWriter::create(dir.path(), "crawl", None).expect("create");
    let samples = samples();
    let mut resp_ids = Vec::new();
    for o in &samples {
        w.write_exchange(&ex(o)).expect("exchange");
        resp_ids.push(w.last_response_id().expect("id").to_string());
    }
    let item = json!({"url": "https://example.com/", "title": "héllo", "links": ["a", "b"]});
    w.write_metadata("https://example.com/", Some(&resp_ids[0]), &item)
        .expect("metadata");
    w.write_metadata("https://example.com/x", None, &json!({}))
        .expect("metadata");
    w.sync().expect("sync");
    assert_eq!(w.files(), vec![dir.path().join("crawl-00000.warc.gz")]);

    let files = warcio_read(&w.files());
    check_common(&files);
    let recs = files[0]["records"].as_array().expect("records");
    let types: Vec<&str> = recs.iter().map(|r| s(r, "type")).collect();
    assert_eq!(
        types,
        [
            "warcinfo", "request", "response", "request", "response", "request", "response",
            "metadata", "metadata"
        ]
    );
    for (i, o) in samples.iter().enumerate() {
        let (req, resp) = (&recs[1 + 2 * i], &recs[2 + 2 * i]);
        assert_eq!(s(req, "uri"), o.url);
        assert_eq!(s(resp, "uri"), o.url);
        assert_eq!(s(req, "content_type"), "application/http;msgtype=request");
        assert_eq!(s(resp, "content_type"), "application/http;msgtype=response");
        assert_eq!(s(req, "concurrent_to"), s(resp, "id"));
        assert_eq!(s(resp, "concurrent_to"), s(req, "id"));
        assert_eq!(s(resp, "id"), resp_ids[i]);
        assert_eq!(s(resp, "ip"), "127.0.0.1");
        assert_eq!(s(resp, "date"), "2023-11-14T22:13:20Z");
        assert_eq!(req["payload_len"], json!(0));
        assert_eq!(resp["payload_len"], json!(o.body.len()));
        assert_eq!(s(resp, "payload_b32"), sha1_b32(&o.body));
        assert_eq!(
            s(resp, "status_line"),
            format!("HTTP/1.1 {} {}", o.status, o.reason)
        );
        // Encoding headers dropped, one Content-Length equal to the stored body.
        let h = resp["http_headers"].as_array().expect("headers");
        let names: Vec<String> = h
            .iter()
            .map(|p| p[0].as_str().unwrap_or("").to_ascii_lowercase())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n == "content-encoding" || n == "transfer-encoding" || n == "injected")
        );
        let cl: Vec<&Value> = h
            .iter()
            .filter(|p| p[0] == json!("Content-Length"))
            .collect();
        assert_eq!(cl.len(), 1);
        assert_eq!(cl[0][1], json!(o.body.len().to_string()));
        let rh = req["http_headers"].as_array().expect("headers");
        assert_eq!(
            rh.iter()
                .filter(|p| p[0]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("host")))
                .count(),
            1
        );
    }
    // Request line of the URL with userinfo, port, query and fragment.
    let host: Vec<&Value> = recs[3]["http_headers"]
        .as_array()
        .expect("h")
        .iter()
        .filter(|p| p[0] == json!("Host"))
        .collect();
    assert_eq!(host[0][1], json!("example.org:8080"));
    let m = &recs[7];
    assert_eq!(s(m, "content_type"), "application/json");
    assert_eq!(s(m, "refers_to"), resp_ids[0]);
    assert_eq!(
        serde_json::from_str::<Value>(s(m, "content")).expect("json"),
        item
    );
    assert_eq!(recs[8]["refers_to"], Value::Null);
}

#[test]
fn rotates_by_size_without_splitting_an_exchange() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = WarcWriter::create(dir.path(), "rot", Some(1)).expect("create");
    let samples = samples();
    for o in &samples {
        w.write_exchange(&ex(o)).expect("exchange");
    }
    w.write_metadata(
        "https://example.com/",
        w.last_response_id().map(str::to_string).as_deref(),
        &json!({"a": 1}),
    )
    .expect("metadata");
    let paths = w.files();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().expect("n").to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "rot-00000.warc.gz",
            "rot-00001.warc.gz",
            "rot-00002.warc.gz",
            "rot-00003.warc.gz"
        ]
    );
    drop(w);
    let files = warcio_read(&paths);
    check_common(&files);
    for (i, f) in files.iter().enumerate() {
        let types: Vec<&str> = f["records"]
            .as_array()
            .expect("r")
            .iter()
            .map(|r| s(r, "type"))
            .collect();
        if i < 3 {
            assert_eq!(types, ["warcinfo", "request", "response"]);
            assert_eq!(f["records"][2]["payload_len"], json!(samples[i].body.len()));
        } else {
            assert_eq!(types, ["warcinfo", "metadata"]);
        }
    }

    // A large limit keeps everything in one file.
    let mut w = WarcWriter::create(dir.path(), "big", Some(1 << 30)).expect("create");
    for o in &samples {
        w.write_exchange(&ex(o)).expect("exchange");
    }
    assert_eq!(w.files().len(), 1);
}

#[test]
fn never_overwrites_an_existing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _w = WarcWriter::create(dir.path(), "x", None).expect("create");
    let err = WarcWriter::create(dir.path(), "x", None).expect_err("must refuse");
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_999)),
        "2000-02-29T00:00:00Z"
    );
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_secs(4_102_444_799)),
        "2099-12-31T23:59:59Z"
    );
    assert_eq!(
        rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
        "1970-01-01T00:00:00Z"
    );
}
