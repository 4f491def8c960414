//! The AMQP sink against the real RabbitMQ on 127.0.0.1:5672 (guest/guest):
//! items published in batches read back as sent, each with the item's
//! message id; a batch sent again (a retry) and a page fetched again carry
//! the same ids, so a consumer dedupes them; an unroutable message (an
//! exchange without a binding for the routing key) fails its batch and the
//! retry declares the binding again; clear errors for a server that is not
//! there and for wrong credentials, without the password.

#![allow(clippy::unwrap_used)]

use lapin::options::ExchangeDeleteOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};
use trawl_core::{Item, Sink};
use trawl_sink::amqp::{AmqpSink, Received, dedupe, delete_queue, read_all};
use trawl_sink::message_id::message_id;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A queue (or exchange) name of this test alone.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("trawl_test_{what}_{}_{nanos}", std::process::id())
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

fn json_of(message: &Received) -> Value {
    serde_json::from_slice(&message.payload).unwrap()
}

fn ids(messages: &[Received]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m.message_id.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn items_in_two_batches_are_read_back_as_sent() {
    let queue = unique("read_back");
    let mut sink = AmqpSink::connect(AMQP, &queue, "", None).await.unwrap();
    assert_eq!(
        sink.name(),
        format!("amqp:guest@127.0.0.1:5672/%2f/{queue}")
    );
    let sent: Vec<Item> = (0..150)
        .map(|n| item(&format!("http://a/{n}"), n, "2026-12-05T10:00:00Z"))
        .collect();
    sink.write_batch(&sent[..100]).await.unwrap();
    sink.write_batch(&sent[100..]).await.unwrap();
    sink.close().await.unwrap();
    assert!(sink.bytes_written() > 0);
    assert_eq!(sink.reconnects(), 0);
    // Confirmed means queued: everything is there at once, in order.
    let got = read_all(AMQP, &queue).await.unwrap();
    assert_eq!(got.len(), 150);
    for (n, (got, sent)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(json_of(got), Value::Object(sent.0.clone()), "message {n}");
        assert_eq!(
            got.message_id.as_deref(),
            Some(&*message_id(sent)),
            "message {n}"
        );
    }
    // Read with acknowledgements: the queue is empty now.
    assert!(read_all(AMQP, &queue).await.unwrap().is_empty());
    assert_eq!(delete_queue(AMQP, &queue, true).await.unwrap(), 0);
}

#[tokio::test]
async fn a_batch_sent_again_carries_the_same_message_ids() {
    let queue = unique("again");
    let mut sink = AmqpSink::connect(AMQP, &queue, "", None).await.unwrap();
    let first: Vec<Item> = (0..40)
        .map(|n| item(&format!("http://a/{n}"), n, "2026-12-05T10:00:00Z"))
        .collect();
    sink.write_batch(&first).await.unwrap();
    // The same batch again (a retry), the same pages fetched again later (a
    // resumed crawl), and one page changed.
    sink.write_batch(&first).await.unwrap();
    let later: Vec<Item> = (0..40)
        .map(|n| item(&format!("http://a/{n}"), n, "2026-12-05T11:30:00Z"))
        .collect();
    sink.write_batch(&later).await.unwrap();
    sink.write_batch(&[item("http://a/0", 1000, "2026-12-05T12:00:00Z")])
        .await
        .unwrap();
    sink.close().await.unwrap();
    // RabbitMQ keeps every copy (at least once) ...
    let got = read_all(AMQP, &queue).await.unwrap();
    assert_eq!(got.len(), 121);
    let all = ids(&got);
    assert_eq!(all[..40], all[40..80]);
    assert_eq!(all[..40], all[80..120]);
    assert!(!all[..120].contains(&all[120]));
    // ... and a consumer that dedupes on message_id has each item once:
    // the first copy, the changed page as a new item.
    let (kept, dropped) = dedupe(got);
    assert_eq!(dropped, 80);
    assert_eq!(kept.len(), 41);
    for (got, sent) in kept.iter().zip(&first) {
        assert_eq!(json_of(got), Value::Object(sent.0.clone()));
    }
    assert_eq!(json_of(&kept[40])["n"], 1000);
    delete_queue(AMQP, &queue, true).await.unwrap();
}

#[tokio::test]
async fn an_exchange_without_a_binding_for_the_routing_key_fails_the_batch() {
    let queue = unique("unrouted");
    let exchange = unique("unrouted_x");
    let mut sink = AmqpSink::connect(AMQP, &queue, &exchange, Some("pages"))
        .await
        .unwrap();
    let batch: Vec<Item> = (0..10)
        .map(|n| item(&format!("http://a/{n}"), n, "2026-12-05T10:00:00Z"))
        .collect();
    sink.write_batch(&batch[..5]).await.unwrap();
    // Someone removes the binding under the crawl: the messages have no
    // route, and with `mandatory` the broker returns them.
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_unbind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "pages".into(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let e = sink.write_batch(&batch[5..]).await.unwrap_err().to_string();
    assert!(
        e.contains("NO_ROUTE") && e.contains(&exchange) && e.contains("\"pages\""),
        "{e}"
    );
    // The retry connects again and declares the binding again.
    sink.write_batch(&batch[5..]).await.unwrap();
    assert_eq!(sink.reconnects(), 1);
    sink.close().await.unwrap();
    let got: Vec<Value> = read_all(AMQP, &queue)
        .await
        .unwrap()
        .iter()
        .map(json_of)
        .collect();
    let want: Vec<Value> = batch.iter().map(|i| Value::Object(i.0.clone())).collect();
    assert_eq!(got, want);
    delete_queue(AMQP, &queue, true).await.unwrap();
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    conn.close(200, "done".into()).await.unwrap();
}

#[tokio::test]
async fn a_queue_deleted_under_the_sink_fails_the_batch_then_is_declared_again() {
    let queue = unique("deleted");
    let mut sink = AmqpSink::connect(AMQP, &queue, "", None).await.unwrap();
    let a = item("http://a/1", 1, "2026-12-05T10:00:00Z");
    sink.write_batch(std::slice::from_ref(&a)).await.unwrap();
    assert_eq!(delete_queue(AMQP, &queue, false).await.unwrap(), 1);
    let e = sink
        .write_batch(std::slice::from_ref(&a))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("NO_ROUTE"), "{e}");
    sink.write_batch(std::slice::from_ref(&a)).await.unwrap();
    sink.close().await.unwrap();
    let got = read_all(AMQP, &queue).await.unwrap();
    assert_eq!(ids(&got), [message_id(&a)]);
    delete_queue(AMQP, &queue, true).await.unwrap();
}

#[tokio::test]
async fn no_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("amqp://guest:s3cret@127.0.0.1:{port}/%2f");
    let Err(e) = AmqpSink::connect(&url, "q", "", None).await else {
        panic!("connected to nothing");
    };
    let e = e.to_string();
    assert!(
        e.contains(&format!("amqp:guest@127.0.0.1:{port}/%2f/q")) && e.contains("connecting"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn wrong_credentials_and_vhosts_are_clear_errors() {
    let Err(e) = AmqpSink::connect(
        "amqp://guest:wrong-s3cret@127.0.0.1:5672/%2f",
        "q",
        "",
        None,
    )
    .await
    else {
        panic!("connected with a wrong password");
    };
    let e = e.to_string();
    assert!(
        e.contains("guest@127.0.0.1:5672/%2f") && e.contains("connecting"),
        "{e}"
    );
    assert!(!e.contains("wrong-s3cret"), "{e}");
    let Err(e) =
        AmqpSink::connect("amqp://guest:guest@127.0.0.1:5672/nonesuch", "q", "", None).await
    else {
        panic!("connected to a vhost that does not exist");
    };
    let e = e.to_string();
    assert!(e.contains("guest@127.0.0.1:5672/nonesuch"), "{e}");
}
