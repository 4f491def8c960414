//! AMQP 0-9-1 (RabbitMQ): every item a persistent message in a durable
//! queue.
//!
//! On connect the sink declares the queue durable; when an exchange is
//! named it declares that exchange `direct` and durable and binds the queue
//! to it with the routing key (default: the queue's name; the default
//! exchange `""` routes by queue name and needs no binding). The channel
//! is put in publisher-confirm mode.
//!
//! A batch is published whole (persistent messages, `application/json`,
//! `mandatory`; every message's frames queued in item order without a wait
//! for the socket in between), then every confirmation is awaited:
//! `write_batch` returns only when the broker has confirmed every message
//! (RabbitMQ confirms a persistent message to a durable queue once it has
//! written it to disk), and the engine acknowledges the batch's
//! leases only after that. A negative confirmation, a message returned as
//! unroutable (an exchange without a binding for the routing key, a queue
//! deleted under the crawl), a closed channel or connection, or no
//! confirmation within [`CONFIRM_TIMEOUT`] fails the batch, which the sink
//! stage retries and at last dead-letters like any sink's. The connection
//! of a failed batch is dropped: the next attempt connects again and
//! declares the queue, exchange and binding again.
//!
//! At least once, not exactly once: RabbitMQ has no server-side
//! deduplication. A retried batch whose first attempt reached the queue in
//! part, and a page crawled again after a crash and resume (its lease was
//! never acknowledged), are published again. Every message carries a stable
//! `message_id`, the same XXH3-128 of the item without `timestamp` and
//! `fetch_ms` as the NATS sink's `Nats-Msg-Id` ([`crate::message_id`]), so
//! consumers deduplicate on it ([`read_all`] and `examples/amqp_consume`
//! do). A crawl without a failed batch and without a resume puts every
//! item in the queue exactly once.
//!
//! The client is [lapin](https://docs.rs/lapin) (tokio runtime, TLS
//! features off: plain `amqp://` only, no OpenSSL or native-tls). Of the
//! two maintained tokio clients it is the one whose publisher confirms are
//! futures, one per message, carrying the returned message of an
//! unroutable `mandatory` publish with its confirmation: a batch awaits
//! its own confirmations in order. amqprs (fewer dependencies) delivers
//! confirms and returns only to a channel callback, where delivery tags
//! would have to be matched by hand.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use trawl_core::{Item, Sink, SinkError};

use crate::message_id::message_id;

/// The queue a sink without `queue=` publishes to.
pub const DEFAULT_QUEUE: &str = "trawl_items";
/// How long connecting (TCP, handshake, declarations) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a batch waits for the broker's confirmations.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed `amqp://USER:PASS@HOST:PORT/VHOST` address.
#[derive(Clone)]
pub struct Address {
    uri: AMQPUri,
    /// `user@host:port/vhost` for names and messages; never the password.
    shown: String,
}

impl Address {
    /// Parse `amqp://USER:PASS@HOST:PORT/VHOST` (user and password default
    /// to `guest`, the port to 5672; the vhost `%2f`, empty or missing is
    /// `/`). Errors never echo the URL: it may hold a password.
    pub fn parse(url: &str) -> Result<Address, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid AMQP URL: {e}"))?;
        match parsed.scheme() {
            "amqp" => {}
            "amqps" => {
                return Err(
                    "amqps:// (TLS) is not supported: trawl's AMQP sink speaks plain amqp://"
                        .into(),
                );
            }
            other => return Err(format!("expected an amqp:// URL, not {other}://")),
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the URL names no host (amqp://USER:PASS@HOST:PORT/VHOST)")?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err("query parameters (?…) are not supported in an AMQP URL".into());
        }
        let decode = |s: &str, what: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| format!("the {what} is not UTF-8 once percent-decoded"))
        };
        let username = match parsed.username() {
            "" => "guest".to_string(),
            u => decode(u, "user name")?,
        };
        let password = match parsed.password() {
            None => "guest".to_string(),
            Some(p) => decode(p, "password")?,
        };
        let path = parsed.path().strip_prefix('/').unwrap_or(parsed.path());
        if path.contains('/') {
            return Err(format!(
                "the vhost {path:?} has a '/': write it as %2f (amqp://HOST:PORT/%2f is the vhost /)"
            ));
        }
        let vhost = match decode(path, "vhost")? {
            v if v.is_empty() => "/".to_string(),
            v => v,
        };
        let port = parsed.port().unwrap_or(5672);
        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let shown = format!(
            "{username}@{shown_host}:{port}/{}",
            vhost.replace('%', "%25").replace('/', "%2f")
        );
        let uri = AMQPUri {
            scheme: AMQPScheme::AMQP,
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo { username, password },
                host,
                port,
            },
            vhost,
            query: AMQPQueryString::default(),
        };
        Ok(Address { uri, shown })
    }

    /// `user@host:port/vhost` (never the password).
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// Where a sink's messages go.
#[derive(Clone)]
struct Route {
    queue: ShortString,
    /// `""`: the default exchange (routes by queue name).
    exchange: ShortString,
    routing_key: ShortString,
}

/// Check the names of an AMQP sink: a queue (not empty), an exchange and a
/// routing key of at most 255 bytes, and no routing key other than the
/// queue's name without an exchange (the default exchange routes by queue
/// name: the messages would go elsewhere, or nowhere).
pub fn check_route(queue: &str, exchange: &str, routing_key: Option<&str>) -> Result<(), String> {
    route(queue, exchange, routing_key).map(|_| ())
}

fn route(queue: &str, exchange: &str, routing_key: Option<&str>) -> Result<Route, String> {
    if queue.is_empty() {
        return Err("queue= names no queue".into());
    }
    let short = |value: &str, key: &str| {
        ShortString::try_new(value)
            .map_err(|_| format!("{key}= is {} bytes long: at most 255", value.len()))
    };
    let routing_key = routing_key.unwrap_or(queue);
    if exchange.is_empty() && routing_key != queue {
        return Err(format!(
            "routing_key={routing_key:?} without exchange=: the default exchange routes by queue name (name an exchange, or leave routing_key out)"
        ));
    }
    Ok(Route {
        queue: short(queue, "queue")?,
        exchange: short(exchange, "exchange")?,
        routing_key: short(routing_key, "routing_key")?,
    })
}

/// A publish whose frames are queued: written already, or being written.
enum Sent<F> {
    Done(lapin::Result<lapin::PublisherConfirm>),
    Writing(Pin<Box<F>>),
}

/// A connection and its channel, in confirm mode.
struct Open {
    conn: Connection,
    channel: Channel,
}

impl Open {
    fn usable(&self) -> bool {
        self.conn.status().connected() && self.channel.status().connected()
    }

    /// Close, without waiting long for a broker that may be gone.
    async fn close(self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.conn.close(200, ShortString::from("trawl: closing")),
        )
        .await;
    }
}

pub struct AmqpSink {
    address: Address,
    route: Route,
    name: String,
    /// `None` after a failed batch: the next one connects again.
    open: Option<Open>,
    bytes: u64,
    /// Times the sink connected again after a failed batch.
    reconnects: u64,
}

impl AmqpSink {
    /// Connect to `url` (`amqp://USER:PASS@HOST:PORT/VHOST`), declare the
    /// durable `queue` (and the `exchange`, bound to the queue with
    /// `routing_key`, default the queue's name, when one is named) and put
    /// the channel in confirm mode.
    pub async fn connect(
        url: &str,
        queue: &str,
        exchange: &str,
        routing_key: Option<&str>,
    ) -> Result<AmqpSink, SinkError> {
        let address = Address::parse(url).map_err(|e| SinkError::Other(format!("amqp: {e}")))?;
        let name = format!("amqp:{}/{queue}", address.shown);
        let route = route(queue, exchange, routing_key)
            .map_err(|e| SinkError::Other(format!("{name}: {e}")))?;
        let mut sink = AmqpSink {
            address,
            route,
            name,
            open: None,
            bytes: 0,
            reconnects: 0,
        };
        sink.open = Some(sink.open_channel().await?);
        Ok(sink)
    }

    /// Times the sink connected again to retry a failed batch.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    fn fail(&self, what: &str, e: &dyn std::fmt::Display) -> SinkError {
        SinkError::Other(format!("{}: {what}: {e}", self.name))
    }

    async fn open_channel(&self) -> Result<Open, SinkError> {
        let declare = async {
            let conn = Connection::connect_uri(
                self.address.uri.clone(),
                ConnectionProperties::default().with_connection_name("trawl".into()),
            )
            .await
            .map_err(|e| self.fail("connecting", &e))?;
            let channel = conn
                .create_channel()
                .await
                .map_err(|e| self.fail("opening a channel", &e))?;
            let Route {
                queue,
                exchange,
                routing_key,
            } = &self.route;
            channel
                .queue_declare(
                    queue.clone(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| self.fail(&format!("declaring the queue {queue}"), &e))?;
            if !exchange.as_str().is_empty() {
                let what = format!("declaring the exchange {exchange}");
                channel
                    .exchange_declare(
                        exchange.clone(),
                        lapin::ExchangeKind::Direct,
                        ExchangeDeclareOptions {
                            durable: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| self.fail(&what, &e))?;
                let what =
                    format!("binding the queue {queue} to {exchange} with the key {routing_key}");
                channel
                    .queue_bind(
                        queue.clone(),
                        exchange.clone(),
                        routing_key.clone(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| self.fail(&what, &e))?;
            }
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| self.fail("enabling publisher confirms", &e))?;
            Ok(Open { conn, channel })
        };
        tokio::time::timeout(CONNECT_TIMEOUT, declare)
            .await
            .map_err(|_| {
                self.fail(
                    "connecting",
                    &format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                )
            })?
    }

    /// Publish `items` on `channel` and await every confirmation, within
    /// [`CONFIRM_TIMEOUT`] (a broker under a memory or disk alarm stops
    /// reading); the JSON bytes published.
    async fn publish(&self, channel: &Channel, items: &[Item]) -> Result<u64, SinkError> {
        tokio::time::timeout(CONFIRM_TIMEOUT, self.publish_and_confirm(channel, items))
            .await
            .map_err(|_| {
                self.fail(
                    "publishing",
                    &format!(
                        "{} messages not all confirmed within {} s (is the broker blocked by a memory or disk alarm?)",
                        items.len(),
                        CONFIRM_TIMEOUT.as_secs()
                    ),
                )
            })?
    }

    async fn publish_and_confirm(
        &self,
        channel: &Channel,
        items: &[Item],
    ) -> Result<u64, SinkError> {
        let Route {
            exchange,
            routing_key,
            ..
        } = &self.route;
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let mut messages = Vec::with_capacity(items.len());
        let mut bytes = 0;
        for item in items {
            let payload =
                serde_json::to_vec(&item.0).map_err(|e| SinkError::Encode(e.to_string()))?;
            bytes += payload.len() as u64;
            messages.push((message_id(item), payload));
        }
        let mut confirms = Vec::with_capacity(items.len());
        for (id, payload) in &messages {
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(id.as_str().into());
            // Polled once at once: that queues the message's frames (in
            // item order) without waiting for the socket write; the writes
            // are awaited with the confirmations.
            let mut publish = Box::pin(channel.basic_publish(
                exchange.clone(),
                routing_key.clone(),
                options,
                payload,
                properties,
            ));
            let first = std::future::poll_fn(|cx| Poll::Ready(publish.as_mut().poll(cx))).await;
            let sent = match first {
                Poll::Ready(result) => Sent::Done(result),
                Poll::Pending => Sent::Writing(publish),
            };
            confirms.push((id, sent));
        }
        for (id, sent) in confirms {
            let confirm = match sent {
                Sent::Done(result) => result,
                Sent::Writing(publish) => publish.await,
            }
            .map_err(|e| self.fail("publishing", &e))?;
            let confirmation = confirm
                .await
                .map_err(|e| self.fail("awaiting a confirmation", &e))?;
            match confirmation {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                    let why = if exchange.as_str().is_empty() {
                        format!("there is no queue {:?}", routing_key.as_str())
                    } else {
                        format!(
                            "the exchange {:?} has no queue bound with the key {:?}",
                            exchange.as_str(),
                            routing_key.as_str()
                        )
                    };
                    return Err(self.fail(
                        &format!("message {id}"),
                        &format!(
                            "returned by the broker: {} {} ({why})",
                            returned.reply_code, returned.reply_text
                        ),
                    ));
                }
                Confirmation::Nack(None) => {
                    return Err(self.fail(
                        &format!("message {id}"),
                        &"not confirmed (negative acknowledgement)",
                    ));
                }
                Confirmation::NotRequested => {
                    return Err(
                        self.fail(&format!("message {id}"), &"the channel is not confirming")
                    );
                }
            }
        }
        Ok(bytes)
    }
}

#[async_trait::async_trait]
impl Sink for AmqpSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        let open = match self.open.take() {
            Some(open) if open.usable() => open,
            broken => {
                // After a failed batch there is none; one that is there but
                // not usable was lost between batches.
                if let Some(open) = broken {
                    tracing::warn!(sink = %self.name, "the connection was lost: connecting again");
                    open.close().await;
                }
                let open = self.open_channel().await?;
                self.reconnects += 1;
                tracing::debug!(sink = %self.name, "connected again to retry a batch");
                open
            }
        };
        match self.publish(&open.channel, items).await {
            Ok(bytes) => {
                self.bytes += bytes;
                self.open = Some(open);
                Ok(())
            }
            Err(e) => {
                // Unconfirmed messages may still be on their way: start the
                // retry on a fresh connection, with the topology declared
                // again.
                open.close().await;
                Err(e)
            }
        }
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        // Every batch is confirmed before write_batch returns.
        Ok(())
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        if let Some(open) = self.open.take() {
            open.close().await;
        }
        Ok(())
    }
}

/// A message read back from a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The `message_id` property (the sink's item hash), if it has one.
    pub message_id: Option<String>,
    pub payload: Vec<u8>,
}

/// Every message ready in `queue` when called, in queue order, through a
/// consumer with manual acknowledgements (each message acknowledged once
/// read: the queue is drained). Duplicates are kept: see [`dedupe`].
pub async fn read_all(url: &str, queue: &str) -> Result<Vec<Received>, SinkError> {
    let Opened {
        name,
        queue_name,
        conn,
        channel,
    } = open_queue(url, queue).await?;
    let fail =
        |what: &str, e: &dyn std::fmt::Display| SinkError::Other(format!("{name}: {what}: {e}"));
    let ready = channel
        .queue_declare(
            queue_name.clone(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| fail("the queue", &e))?
        .message_count() as usize;
    let mut out = Vec::with_capacity(ready);
    if ready > 0 {
        use futures_util::StreamExt as _;
        const PREFETCH: u16 = 1000;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(|e| fail("setting the prefetch", &e))?;
        let mut consumer = channel
            .basic_consume(
                queue_name,
                "trawl-read-all".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| fail("consuming", &e))?;
        while out.len() < ready {
            let next = tokio::time::timeout(Duration::from_secs(10), consumer.next())
                .await
                .map_err(|_| {
                    fail(
                        "consuming",
                        &format!("{} of {ready} messages, then nothing for 10 s", out.len()),
                    )
                })?;
            let Some(delivery) = next else {
                return Err(fail("consuming", &"the consumer was cancelled"));
            };
            let delivery = delivery.map_err(|e| fail("consuming", &e))?;
            out.push(Received {
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string()),
                payload: delivery.data,
            });
            // One acknowledgement for every PREFETCH / 2 messages (and the
            // last): `multiple` covers the ones before.
            if out.len() % (PREFETCH as usize / 2) == 0 || out.len() == ready {
                delivery
                    .acker
                    .ack(BasicAckOptions { multiple: true })
                    .await
                    .map_err(|e| fail("acknowledging", &e))?;
            }
        }
    }
    let _ = conn.close(200, "trawl: read".into()).await;
    Ok(out)
}

/// The messages without repeats of a `message_id` (the first of each kept;
/// messages without an id all kept), and how many were dropped.
pub fn dedupe(messages: Vec<Received>) -> (Vec<Received>, usize) {
    let mut seen = std::collections::HashSet::new();
    let before = messages.len();
    let kept: Vec<Received> = messages
        .into_iter()
        .filter(|m| {
            m.message_id
                .as_ref()
                .is_none_or(|id| seen.insert(id.clone()))
        })
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

/// Delete `queue` (`if_empty`: only when it holds no ready message);
/// the number of messages it held.
pub async fn delete_queue(url: &str, queue: &str, if_empty: bool) -> Result<u32, SinkError> {
    let Opened {
        name,
        queue_name,
        conn,
        channel,
    } = open_queue(url, queue).await?;
    let fail =
        |what: &str, e: &dyn std::fmt::Display| SinkError::Other(format!("{name}: {what}: {e}"));
    let held = channel
        .queue_delete(
            queue_name,
            QueueDeleteOptions {
                if_empty,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| fail("deleting the queue", &e))?;
    let _ = conn.close(200, "trawl: deleted".into()).await;
    Ok(held)
}

/// A connection and channel for reading or deleting `queue` at `url`,
/// and the name errors give them (no password).
struct Opened {
    name: String,
    queue_name: ShortString,
    conn: Connection,
    channel: Channel,
}

async fn open_queue(url: &str, queue: &str) -> Result<Opened, SinkError> {
    let address = Address::parse(url).map_err(|e| SinkError::Other(format!("amqp: {e}")))?;
    let name = format!("amqp:{}/{queue}", address.shown);
    let fail =
        |what: &str, e: &dyn std::fmt::Display| SinkError::Other(format!("{name}: {what}: {e}"));
    let queue_name =
        ShortString::try_new(queue).map_err(|e| fail("the queue name", &e.to_string()))?;
    let conn = connect_plain(&address)
        .await
        .map_err(|e| fail("connecting", &e))?;
    let channel = conn
        .create_channel()
        .await
        .map_err(|e| fail("opening a channel", &e))?;
    Ok(Opened {
        name,
        queue_name,
        conn,
        channel,
    })
}

async fn connect_plain(address: &Address) -> Result<Connection, String> {
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect_uri(
            address.uri.clone(),
            ConnectionProperties::default().with_connection_name("trawl".into()),
        ),
    )
    .await
    .map_err(|_| format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))?
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses() {
        let a = Address::parse("amqp://u:p%2Cw@10.1.2.3:5673/%2f").unwrap();
        assert_eq!(a.shown(), "u@10.1.2.3:5673/%2f");
        assert_eq!(a.uri.authority.host, "10.1.2.3");
        assert_eq!(a.uri.authority.userinfo.password, "p,w");
        assert_eq!(a.uri.vhost, "/");
        for url in ["amqp://h", "amqp://h/", "amqp://h:5672/%2F"] {
            let a = Address::parse(url).unwrap();
            assert_eq!(a.uri.vhost, "/", "{url}");
            assert_eq!(a.uri.authority.port, 5672, "{url}");
            assert_eq!(a.uri.authority.userinfo.username, "guest", "{url}");
        }
        let a = Address::parse("amqp://[::1]:5672/crawls").unwrap();
        assert_eq!(a.uri.authority.host, "::1");
        assert_eq!(a.uri.vhost, "crawls");
        assert_eq!(a.shown(), "guest@[::1]:5672/crawls");
    }

    #[test]
    fn bad_addresses_say_why_without_the_password() {
        for (url, want) in [
            ("amqps://u:s3cret@h/", "amqps://"),
            ("amqp://u:s3cret@h/a/b", "%2f"),
            ("amqp://u:s3cret@h/?heartbeat=5", "query"),
            ("amqp://u:s3cret@h:99999/", "invalid AMQP URL"),
            ("amqp:///x", "no host"),
            ("http://u:s3cret@h/", "amqp://"),
        ] {
            let e = Address::parse(url).err().unwrap();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{url}: {e}");
        }
    }

    #[test]
    fn routes() {
        let r = route("q", "", None).unwrap();
        assert_eq!((r.exchange.as_str(), r.routing_key.as_str()), ("", "q"));
        let r = route("q", "x", Some("k")).unwrap();
        assert_eq!((r.exchange.as_str(), r.routing_key.as_str()), ("x", "k"));
        assert!(route("q", "", Some("q")).is_ok());
        let e = route("q", "", Some("k")).err().unwrap();
        assert!(e.contains("without exchange="), "{e}");
        let e = route("", "", None).err().unwrap();
        assert!(e.contains("queue="), "{e}");
        let e = route(&"q".repeat(256), "", None).err().unwrap();
        assert!(e.contains("at most 255"), "{e}");
    }

    #[test]
    fn dedupe_keeps_the_first_of_each_id() {
        let m = |id: Option<&str>, p: &str| Received {
            message_id: id.map(str::to_string),
            payload: p.as_bytes().to_vec(),
        };
        let (kept, dropped) = dedupe(vec![
            m(Some("a"), "1"),
            m(Some("b"), "2"),
            m(Some("a"), "3"),
            m(None, "4"),
            m(None, "5"),
        ]);
        assert_eq!(dropped, 1);
        assert_eq!(
            kept,
            [
                m(Some("a"), "1"),
                m(Some("b"), "2"),
                m(None, "4"),
                m(None, "5")
            ]
        );
    }
}
