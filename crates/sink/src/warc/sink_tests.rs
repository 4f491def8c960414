//! [`WarcSink`] tests: archives read back with the real Python `warcio`
//! (digests checked), as in the writer's tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use trawl_core::{Item, Sink};

use super::WarcSink;
use super::tests::{check_common, s, sha1_b32, warcio_read};
use crate::jsonl::small_fs::{SmallFs, noise};

fn url(n: u32) -> String {
    format!("https://example.com/page/{n}")
}

fn page(n: u32, body_len: usize) -> trawl_core::Exchange {
    trawl_core::Exchange {
        url: url(n),
        method: "GET".into(),
        request_headers: vec![("User-Agent".into(), "trawl".into())],
        status: 200,
        reason: "OK".into(),
        http_version: "HTTP/2.0".into(),
        response_headers: vec![
            ("Content-Type".into(), "text/html".into()),
            ("Content-Encoding".into(), "br".into()),
        ],
        body: noise(u64::from(n), body_len).into_bytes().into(),
        truncated: false,
        rendered: None,
        ip: Some("10.0.0.1".parse().expect("ip")),
        date: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + u64::from(n)),
        revisit: None,
    }
}

fn item(v: Value) -> Item {
    match v {
        Value::Object(m) => Item(m),
        _ => panic!("not an object"),
    }
}

fn page_item(n: u32) -> Item {
    item(json!({"url": url(n), "final_url": url(n), "title": format!("page {n}")}))
}

/// Write one batch the way the engine does: exchanges (if any), then items.
async fn write(sink: &mut WarcSink, exchanges: &[trawl_core::Exchange], items: &[Item]) {
    if !exchanges.is_empty() {
        sink.write_exchanges(exchanges).await.expect("exchanges");
    }
    sink.write_batch(items).await.expect("items");
}

fn records(files: &[Value]) -> Vec<&Value> {
    files
        .iter()
        .flat_map(|f| f["records"].as_array().expect("records"))
        .collect()
}

fn of_type<'a>(files: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records(files)
        .into_iter()
        .filter(|r| r["type"] == json!(kind))
        .collect()
}

fn uris(records: &[&Value]) -> Vec<String> {
    records.iter().map(|r| s(r, "uri").to_string()).collect()
}

/// Every response follows its request in the same file, each naming the
/// other; every `WARC-Refers-To` names a response of the same URI.
fn check_links(files: &[Value]) {
    for f in files {
        let recs = f["records"].as_array().expect("records");
        for (i, r) in recs.iter().enumerate() {
            if r["type"] == json!("response") {
                let req = &recs[i - 1];
                assert_eq!(s(req, "type"), "request", "{f}");
                assert_eq!(s(req, "uri"), s(r, "uri"));
                assert_eq!(s(req, "concurrent_to"), s(r, "id"));
                assert_eq!(s(r, "concurrent_to"), s(req, "id"));
            }
        }
    }
    let responses = of_type(files, "response");
    for m in of_type(files, "metadata") {
        if let Some(id) = m["refers_to"].as_str() {
            let resp = responses
                .iter()
                .find(|r| s(r, "id") == id)
                .unwrap_or_else(|| panic!("{m} refers to no response"));
            assert_eq!(s(resp, "uri"), s(m, "uri"));
        }
    }
}

fn disk_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|p| std::fs::metadata(p).expect("metadata").len())
        .sum()
}

#[tokio::test]
async fn exchanges_and_items_read_back_with_warcio() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sink = WarcSink::create(dir.path(), "crawl", None, true).expect("create");
    assert!(sink.wants_exchanges());
    assert_eq!(
        sink.name(),
        format!(
            "warc:{}/crawl",
            std::path::absolute(dir.path()).expect("abs").display()
        )
    );
    let mut truncated = page(2, 100);
    truncated.truncated = true;
    let mut missing = page(3, 0);
    missing.status = 404;
    missing.reason = "Not Found".into();
    let batch1 = vec![page(1, 100), truncated];
    let batch2 = vec![missing];
    let items1 = vec![
        page_item(1),
        item(json!({"url": url(2), "n": 2})),
        item(json!({"x": 1})),
        page_item(9),
    ];
    let items2 = vec![item(
        json!({"url": "https://example.com/old", "final_url": url(3)}),
    )];
    write(&mut sink, &batch1, &items1).await;
    write(&mut sink, &batch2, &items2).await;
    sink.close().await.expect("close");

    let paths = sink.files();
    assert_eq!(paths, [dir.path().join("crawl-00000.warc.gz")]);
    let len = disk_size(&paths);
    assert_eq!(sink.position(), Some(len));
    assert_eq!(sink.bytes_written(), len);

    let files = warcio_read(&paths);
    check_common(&files);
    check_links(&files);
    let types: Vec<&str> = records(&files).iter().map(|r| s(r, "type")).collect();
    assert_eq!(
        types,
        [
            "warcinfo", "request", "response", "request", "response", "metadata", "metadata",
            "metadata", "metadata", "request", "response", "metadata"
        ]
    );
    let responses = of_type(&files, "response");
    let exchanges: Vec<&trawl_core::Exchange> = batch1.iter().chain(&batch2).collect();
    for (r, e) in responses.iter().zip(&exchanges) {
        assert_eq!(s(r, "uri"), e.url);
        assert_eq!(s(r, "payload_b32"), sha1_b32(&e.body));
        assert_eq!(r["payload_len"], json!(e.body.len()));
        assert_eq!(
            s(r, "status_line"),
            format!("HTTP/1.1 {} {}", e.status, e.reason)
        );
        assert_eq!(s(r, "ip"), "10.0.0.1");
        let want = if e.truncated {
            json!("length")
        } else {
            Value::Null
        };
        assert_eq!(r["truncated"], want, "{r}");
    }
    let metadata = of_type(&files, "metadata");
    let all_items: Vec<&Item> = items1.iter().chain(&items2).collect();
    for (m, i) in metadata.iter().zip(&all_items) {
        assert_eq!(s(m, "content_type"), "application/json");
        let content: Value = serde_json::from_str(s(m, "content")).expect("json");
        assert_eq!(content, Value::Object(i.0.clone()));
    }
    let refers: Vec<&Value> = metadata.iter().map(|m| &m["refers_to"]).collect();
    let id = |i: usize| json!(s(responses[i], "id"));
    assert_eq!(refers, [&id(0), &id(1), &Value::Null, &Value::Null, &id(2)]);
    let targets: Vec<&Value> = metadata.iter().map(|m| &m["uri"]).collect();
    assert_eq!(
        targets,
        [
            &json!(url(1)),
            &json!(url(2)),
            &Value::Null,
            &json!(url(9)),
            &json!(url(3))
        ]
    );
}

#[tokio::test]
async fn without_write_items_only_exchanges_are_archived() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sink = WarcSink::create(&dir.path().join("new/sub"), "x", None, false).expect("create");
    sink.write_exchanges(&[page(1, 10)])
        .await
        .expect("exchanges");
    let position = sink.position();
    sink.write_batch(&[page_item(1)]).await.expect("items");
    assert_eq!(sink.position(), position);
    sink.flush().await.expect("flush");
    let files = warcio_read(&sink.files());
    check_common(&files);
    let types: Vec<&str> = records(&files).iter().map(|r| s(r, "type")).collect();
    assert_eq!(types, ["warcinfo", "request", "response"]);
}

type Batch = (Vec<trawl_core::Exchange>, Vec<Item>);

fn batches() -> Vec<Batch> {
    let b = |pages: &[u32], items: &[u32]| -> Batch {
        (
            pages.iter().map(|&n| page(n, 2000)).collect(),
            items.iter().map(|&n| page_item(n)).collect(),
        )
    };
    vec![
        b(&[1, 2], &[1, 2]),
        b(&[3], &[3]),
        b(&[4, 5], &[4, 5]),
        b(&[], &[6]),
        b(&[7], &[7]),
    ]
}

/// Checkpoint after `k` batches, write the rest, resume at the checkpoint
/// and redo the rest: each response and item exactly once, in order.
#[tokio::test]
async fn resume_at_any_batch_boundary_archives_each_page_once() {
    let batches = batches();
    let want_pages: Vec<String> = batches
        .iter()
        .flat_map(|(e, _)| e.iter().map(|e| e.url.clone()))
        .collect();
    let want_items: Vec<String> = (1..=7).map(url).collect();
    for rotate in [None, Some(3000)] {
        for k in 0..=batches.len() {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut sink = WarcSink::create(dir.path(), "c", rotate, true).expect("create");
            let mut position = sink.position().expect("position");
            for (i, (e, items)) in batches.iter().enumerate() {
                write(&mut sink, e, items).await;
                if i + 1 == k {
                    position = sink.position().expect("position");
                }
            }
            let files_before = sink.files().len();
            drop(sink);
            let mut sink =
                WarcSink::resume(dir.path(), "c", rotate, true, position).expect("resume");
            assert_eq!(sink.position(), Some(position), "{rotate:?} k={k}");
            assert_eq!(sink.bytes_written(), 0);
            assert_eq!(disk_size(&sink.files()), position, "{rotate:?} k={k}");
            for (e, items) in &batches[k..] {
                write(&mut sink, e, items).await;
            }
            sink.close().await.expect("close");
            let paths = sink.files();
            if rotate.is_some() {
                assert!(paths.len() > 2, "{rotate:?} k={k}: rotates");
            } else {
                assert_eq!(paths.len(), 1);
            }
            assert_eq!(paths.len(), files_before, "{rotate:?} k={k}");
            assert!(
                !dir.path()
                    .join(format!("c-{:05}.warc.gz", paths.len()))
                    .exists()
            );
            let size = disk_size(&paths);
            assert_eq!(sink.position(), Some(size));
            assert_eq!(sink.bytes_written(), size - position);
            let files = warcio_read(&paths);
            check_common(&files);
            check_links(&files);
            assert_eq!(
                uris(&of_type(&files, "response")),
                want_pages,
                "{rotate:?} k={k}"
            );
            assert_eq!(uris(&of_type(&files, "request")), want_pages);
            let metadata = of_type(&files, "metadata");
            assert_eq!(uris(&metadata), want_items, "{rotate:?} k={k}");
            let linked = metadata
                .iter()
                .filter(|m| m["refers_to"].is_string())
                .count();
            assert_eq!(linked, 6, "item 6 has no exchange in its batch");
        }
    }
}

#[tokio::test]
async fn rotates_with_a_warcinfo_per_file_and_a_global_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sink = WarcSink::create(dir.path(), "rot", Some(1), true).expect("create");
    let mut positions = vec![sink.position().expect("p")];
    for (e, items) in batches() {
        write(&mut sink, &e, &items).await;
        positions.push(sink.position().expect("p"));
        assert_eq!(positions.last().copied(), Some(disk_size(&sink.files())));
    }
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    sink.close().await.expect("close");
    let paths = sink.files();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().expect("n").to_string_lossy().into_owned())
        .collect();
    // With a 1-byte limit every exchange and every item starts a file.
    assert_eq!(names.len(), 6 + 7);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(name, &format!("rot-{i:05}.warc.gz"));
    }
    assert_eq!(sink.bytes_written(), disk_size(&paths));
    let files = warcio_read(&paths);
    check_common(&files);
    check_links(&files);
    for f in &files {
        let types: Vec<&str> = f["records"]
            .as_array()
            .expect("r")
            .iter()
            .map(|r| s(r, "type"))
            .collect();
        assert!(
            types == ["warcinfo", "request", "response"] || types == ["warcinfo", "metadata"],
            "{types:?}"
        );
    }
    assert_eq!(of_type(&files, "response").len(), 6);
}

#[tokio::test]
async fn resume_refuses_what_it_cannot_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sink = WarcSink::create(dir.path(), "c", None, true).expect("create");
    let (e, items) = &batches()[0];
    write(&mut sink, e, items).await;
    let end = sink.position().expect("position");
    drop(sink);
    let err = WarcSink::resume(dir.path(), "c", None, true, end + 1)
        .err()
        .expect("beyond the end");
    assert!(err.to_string().contains("changed or lost"), "{err}");
    let err = WarcSink::resume(dir.path(), "nothing", None, true, 0)
        .err()
        .expect("no files");
    assert!(err.to_string().contains("changed or lost"), "{err}");
    std::fs::write(dir.path().join("junk-00000.warc.gz"), "not gzip").expect("write");
    let err = WarcSink::resume(dir.path(), "junk", None, true, 8)
        .err()
        .expect("junk");
    assert!(err.to_string().contains("not a WARC file"), "{err}");
    // The end itself continues, and an empty first file gets its warcinfo.
    assert!(WarcSink::resume(dir.path(), "c", None, true, end).is_ok());
    let sink = WarcSink::resume(dir.path(), "junk", None, true, 0).expect("empty");
    let files = warcio_read(&sink.files());
    check_common(&files);
}

/// A full disk fails a write part-way; it is undone (no new files, the
/// file back at its last record) and succeeds when retried with room again,
/// items still linked to their responses.
#[tokio::test]
async fn a_failed_write_is_undone_and_can_be_retried() {
    for rotate in [None, Some(2500)] {
        let Some(fs) = SmallFs::mount(64) else {
            return;
        };
        let dir = fs.path().join("warc");
        let mut sink = WarcSink::create(&dir, "c", rotate, true).expect("create");
        write(&mut sink, &[page(1, 300)], &[page_item(1)]).await;
        let check_unchanged = |sink: &WarcSink, files: &[PathBuf], position: u64| {
            assert_eq!(sink.files(), files, "{rotate:?}");
            assert_eq!(sink.position(), Some(position), "{rotate:?}");
            assert_eq!(disk_size(files), position, "{rotate:?}");
            let next = dir.join(format!("c-{:05}.warc.gz", files.len()));
            assert!(!next.exists(), "{rotate:?}");
            check_common(&warcio_read(files));
        };

        let (files, position) = (sink.files(), sink.position().expect("p"));
        let filler = fs.fill();
        let big = [page(2, 6000), page(3, 6000)];
        sink.write_exchanges(&big).await.expect_err("disk full");
        check_unchanged(&sink, &files, position);
        std::fs::remove_file(&filler).expect("free");
        sink.write_exchanges(&big).await.expect("retry");

        let (files, position) = (sink.files(), sink.position().expect("p"));
        let filler = fs.fill();
        let items: Vec<Item> = (2..=3)
            .map(|n| {
                let mut i = page_item(n);
                i.0.insert("text".into(), noise(u64::from(n), 6000).into());
                i
            })
            .collect();
        sink.write_batch(&items).await.expect_err("disk full");
        check_unchanged(&sink, &files, position);
        std::fs::remove_file(&filler).expect("free");
        sink.write_batch(&items).await.expect("retry");
        sink.close().await.expect("close");

        let paths = sink.files();
        assert_eq!(sink.position(), Some(disk_size(&paths)));
        let files = warcio_read(&paths);
        check_common(&files);
        check_links(&files);
        let want: Vec<String> = (1..=3).map(url).collect();
        assert_eq!(uris(&of_type(&files, "response")), want, "{rotate:?}");
        let metadata = of_type(&files, "metadata");
        assert_eq!(uris(&metadata), want, "{rotate:?}");
        assert!(metadata.iter().all(|m| m["refers_to"].is_string()));
        drop(sink);
    }
}

#[test]
fn names_are_stable() {
    assert_eq!(
        WarcSink::open_name(Path::new("/data/warc"), "crawl"),
        "warc:/data/warc/crawl"
    );
}
