//! Crawls whose items go to a stream: `--sink nats://…` into the real NATS
//! JetStream on 127.0.0.1:4222, read back through a pull consumer beside
//! the same crawl's JSONL: every page once, the same records.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use async_nats::jetstream;
use common::{read_jsonl, trawl};
use serde_json::Value;
use trawl_testsite::{SiteConfig, TestSite};

const NATS: &str = "nats://127.0.0.1:4222";

async fn read_stream(stream: &str) -> Vec<Value> {
    trawl_sink::nats::read_all(NATS, stream)
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_slice(m).unwrap())
        .collect()
}

fn by_url(items: Vec<Value>) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for item in items {
        let url = item["url"].as_str().unwrap().to_string();
        assert!(map.insert(url.clone(), item).is_none(), "{url} twice");
    }
    map
}

#[tokio::test]
async fn a_crawl_into_nats_stores_every_page_once() {
    let site = TestSite::start(SiteConfig {
        pages: 300,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let stream = format!("TRAWL_CLI_{id}");
    let subject = format!("trawl.cli.{id}");
    let out = {
        let (d, url, sink) = (
            dir.path().to_path_buf(),
            site.base_url(),
            format!("{NATS}/{subject},stream={stream}"),
        );
        tokio::task::spawn_blocking(move || {
            trawl()
                .arg("crawl")
                .arg(url)
                .arg("-q")
                .arg("-o")
                .arg(d.join("items.jsonl"))
                .arg("--sink")
                .arg(sink)
                .arg("--batch-size")
                .arg("32")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_file = by_url(read_jsonl(&dir.path().join("items.jsonl")));
    let from_stream = by_url(read_stream(&stream).await);
    // The site's pages reachable from its start page (most of its 300).
    assert!(from_file.len() > 200, "{} pages", from_file.len());
    assert_eq!(
        from_stream.keys().collect::<Vec<_>>(),
        from_file.keys().collect::<Vec<_>>()
    );
    assert_eq!(from_stream, from_file);
    let js = jetstream::new(async_nats::connect(NATS).await.unwrap());
    js.delete_stream(&stream).await.unwrap();
}

#[test]
fn an_unreachable_nats_server_stops_the_crawl_before_it_starts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = trawl()
        .arg("crawl")
        .arg("http://127.0.0.1:9/")
        .arg("--sink")
        .arg(format!("nats://127.0.0.1:{port}/items"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NATS sink") && stderr.contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
}
