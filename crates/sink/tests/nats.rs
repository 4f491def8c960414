//! The NATS JetStream sink against the real server on 127.0.0.1:4222:
//! items stored and read back through a consumer, a batch published again
//! stored once, a page fetched again stored once, clear errors for a
//! stream that does not store the subject and for a server that is not
//! there.

#![allow(clippy::unwrap_used)]

use async_nats::jetstream;
use serde_json::{Value, json};
use trawl_core::{Item, Sink};
use trawl_sink::nats::NatsSink;

const NATS: &str = "nats://127.0.0.1:4222";

/// A stream and subject of this test alone.
fn unique(what: &str) -> (String, String) {
    let id = format!("{}_{}", std::process::id(), uuid_like());
    (
        format!("TRAWL_TEST_{}_{id}", what.to_uppercase()),
        format!("trawl.test.{what}.{id}"),
    )
}

fn uuid_like() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn item(url: &str, n: u64, timestamp: &str) -> Item {
    let Value::Object(map) = json!({
        "url": url, "n": n, "title": format!("Page {n}"),
        "timestamp": timestamp, "fetch_ms": n % 7,
    }) else {
        unreachable!()
    };
    Item(map)
}

/// Every message of `stream`, read through a pull consumer.
async fn read_back(stream: &str) -> Vec<Value> {
    trawl_sink::nats::read_all(NATS, stream)
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_slice(m).unwrap())
        .collect()
}

async fn delete(stream: &str) {
    let js = jetstream::new(async_nats::connect(NATS).await.unwrap());
    let _ = js.delete_stream(stream).await;
}

#[tokio::test]
async fn items_are_stored_once_and_read_back() {
    let (stream, subject) = unique("once");
    let mut sink = NatsSink::connect(NATS, &subject, &stream).await.unwrap();
    let first: Vec<Item> = (0..150)
        .map(|n| item(&format!("http://a/{n}"), n, "2026-12-05T10:00:00Z"))
        .collect();
    sink.write_batch(&first[..100]).await.unwrap();
    sink.write_batch(&first[100..]).await.unwrap();
    assert_eq!(sink.duplicates(), 0);
    // The same batch again (a retry), and the same pages fetched again
    // later (a resumed crawl): nothing stored twice.
    sink.write_batch(&first[..100]).await.unwrap();
    let again: Vec<Item> = (0..150)
        .map(|n| item(&format!("http://a/{n}"), n, "2026-12-05T11:30:00Z"))
        .collect();
    sink.write_batch(&again).await.unwrap();
    assert_eq!(sink.duplicates(), 250);
    // A changed page is a new message.
    sink.write_batch(&[item("http://a/0", 1000, "2026-12-05T12:00:00Z")])
        .await
        .unwrap();
    sink.close().await.unwrap();
    let got = read_back(&stream).await;
    assert_eq!(got.len(), 151);
    for (n, (got, sent)) in got.iter().zip(&first).enumerate() {
        assert_eq!(got, &Value::Object(sent.0.clone()), "message {n}");
    }
    assert_eq!(got[150]["n"], 1000);
    assert!(sink.bytes_written() > 0);
    delete(&stream).await;
}

#[tokio::test]
async fn a_stream_that_does_not_store_the_subject_is_a_clear_error() {
    let (stream, subject) = unique("wrong");
    let _first = NatsSink::connect(NATS, &subject, &stream).await.unwrap();
    let Err(e) = NatsSink::connect(NATS, &format!("{subject}.other"), &stream).await else {
        panic!("a stream for another subject was taken");
    };
    let e = e.to_string();
    assert!(e.contains(&stream) && e.contains("stream="), "{e}");
    delete(&stream).await;
}

#[tokio::test]
async fn no_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let Err(e) = NatsSink::connect(&url, "s", "S").await else {
        panic!("connected to nothing");
    };
    let e = e.to_string();
    assert!(e.contains(&url) && e.contains("connecting"), "{e}");
}
