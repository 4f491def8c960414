//! Crawls whose items go to a stream: `--sink nats://…` into the real NATS
//! JetStream on 127.0.0.1:4222, read back through a pull consumer, and
//! `--sink amqp://…` into the real RabbitMQ on 127.0.0.1:5672, read back
//! through a consumer and deduplicated by message id, beside the same
//! crawl's JSONL: every page once, the same records. A broker that is not
//! there stops the crawl before it starts.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use async_nats::jetstream;
use common::{read_jsonl, trawl};
use serde_json::Value;
use trawl_testsite::{SiteConfig, TestSite};

const NATS: &str = "nats://127.0.0.1:4222";
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

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

/// `trawl crawl URL -o DIR/items.jsonl --sink SINK --batch-size 32`
/// (`stats`: and `--stats-json DIR/stats.json`), run to its end.
async fn crawl_into(
    url: String,
    sink: String,
    dir: &std::path::Path,
    stats: bool,
) -> std::process::Output {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut cmd = trawl();
        cmd.arg("crawl")
            .arg(url)
            .arg("-q")
            .arg("-o")
            .arg(dir.join("items.jsonl"));
        if stats {
            cmd.arg("--stats-json").arg(dir.join("stats.json"));
        }
        cmd.arg("--sink")
            .arg(sink)
            .arg("--batch-size")
            .arg("32")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// `pid_ms`: a name no other run uses (streams, subjects, queues).
fn unique_id() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    )
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
    let id = unique_id();
    let stream = format!("TRAWL_CLI_{id}");
    let subject = format!("trawl.cli.{id}");
    let out = crawl_into(
        site.base_url(),
        format!("{NATS}/{subject},stream={stream}"),
        dir.path(),
        false,
    )
    .await;
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

#[tokio::test]
async fn a_crawl_into_amqp_queues_every_page_once() {
    let site = TestSite::start(SiteConfig {
        pages: 300,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("trawl_cli_{}", unique_id());
    let out = crawl_into(
        site.base_url(),
        format!("{AMQP},queue={queue}"),
        dir.path(),
        true,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("stats.json")).unwrap()).unwrap();
    let amqp = stats["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with("amqp:"))
        .unwrap()
        .clone();
    assert_eq!(
        amqp["name"],
        format!("amqp:guest@127.0.0.1:5672/%2f/{queue}"),
        "{amqp}"
    );
    assert!(amqp["batches"].as_u64().unwrap() > 1, "{amqp}");
    let from_file = by_url(read_jsonl(&dir.path().join("items.jsonl")));
    let messages = trawl_sink::amqp::read_all(AMQP, &queue).await.unwrap();
    let read = messages.len();
    let (messages, repeated) = trawl_sink::amqp::dedupe(messages);
    // At least once: a retried batch may have queued some items twice,
    // with the same message id. A crawl without a retry queues each once.
    if amqp["retries"].as_u64().unwrap_or(0) == 0 {
        assert_eq!(repeated, 0, "{read} messages, {amqp}");
    }
    for m in &messages {
        let item: Value = serde_json::from_slice(&m.payload).unwrap();
        let Value::Object(map) = &item else {
            panic!("{item}")
        };
        assert_eq!(
            m.message_id.as_deref(),
            Some(&*trawl_sink::message_id::message_id(&trawl_core::Item(
                map.clone()
            ))),
            "{item}"
        );
    }
    let from_queue = by_url(
        messages
            .iter()
            .map(|m| serde_json::from_slice(&m.payload).unwrap())
            .collect(),
    );
    // The site's pages reachable from its start page (most of its 300).
    assert!(from_file.len() > 200, "{} pages", from_file.len());
    assert_eq!(
        from_queue.keys().collect::<Vec<_>>(),
        from_file.keys().collect::<Vec<_>>()
    );
    assert_eq!(from_queue, from_file);
    assert_eq!(
        trawl_sink::amqp::delete_queue(AMQP, &queue, true)
            .await
            .unwrap(),
        0
    );
}

#[test]
fn an_unreachable_amqp_server_stops_the_crawl_before_it_starts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = trawl()
        .arg("crawl")
        .arg("http://127.0.0.1:9/")
        .arg("-o")
        .arg(dir.path().join("items.jsonl"))
        .arg("--sink")
        .arg(format!(
            "amqp://guest:s3cret@127.0.0.1:{port}/%2f,queue=items"
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AMQP sink") && stderr.contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // Before it starts: nothing fetched, nothing written.
    assert_eq!(common::line_count(&dir.path().join("items.jsonl")), 0);
}
