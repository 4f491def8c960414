//! NATS JetStream: every item a message on a subject, stored by a stream.
//!
//! A batch is published whole (each message's acknowledgement is awaited
//! only after the last one is sent, so a batch costs one round trip, not
//! one per item), then `write_batch` returns once JetStream has stored
//! every message: the engine acknowledges the batch's leases only after
//! that. A failed or missing acknowledgement fails the batch, which the
//! sink stage retries and at last dead-letters like any sink's.
//!
//! Exactly once: each message carries a `Nats-Msg-Id`, the XXH3-128 of
//! the item without the fields that change when the same page is fetched
//! again (`timestamp`, `fetch_ms`; see [`crate::message_id`]), and
//! JetStream drops a message whose id it stored within the stream's
//! duplicate window. A retried batch, and a page crawled again after a
//! crash and resume (its lease was never acknowledged), publish nothing
//! twice within the window (ten minutes for a stream trawl creates).

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use trawl_core::{Item, Sink, SinkError};

use crate::message_id::message_id;

/// The duplicate window of a stream the sink creates.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// The stream a sink without `stream =` publishes to.
pub const DEFAULT_STREAM: &str = "TRAWL_ITEMS";

pub struct NatsSink {
    js: jetstream::Context,
    subject: String,
    name: String,
    bytes: u64,
    /// Messages JetStream reported as duplicates (already stored).
    duplicates: u64,
}

impl NatsSink {
    /// Connect to `url` (`nats://host:port`), and make sure a stream
    /// (`stream`, created with `subject` if missing) stores `subject`.
    pub async fn connect(url: &str, subject: &str, stream: &str) -> Result<NatsSink, SinkError> {
        let name = format!("nats:{url}/{subject}");
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            SinkError::Other(format!("{name}: {what}: {e}"))
        };
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| fail("connecting", &e))?;
        let mut js = jetstream::new(client);
        js.set_timeout(Duration::from_secs(10));
        let config = jetstream::stream::Config {
            name: stream.to_string(),
            subjects: vec![subject.to_string()],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let mut found = js
            .get_or_create_stream(config)
            .await
            .map_err(|e| fail(&format!("the stream {stream}"), &e))?;
        let info = found
            .info()
            .await
            .map_err(|e| fail(&format!("the stream {stream}"), &e))?;
        if !info
            .config
            .subjects
            .iter()
            .any(|s| subject_matches(s, subject))
        {
            return Err(fail(
                &format!("the stream {stream}"),
                &format!(
                    "stores {:?}, not {subject:?} (name another stream with stream=…)",
                    info.config.subjects
                ),
            ));
        }
        Ok(NatsSink {
            js,
            subject: subject.to_string(),
            name,
            bytes: 0,
            duplicates: 0,
        })
    }

    /// Messages JetStream already had (retries, pages crawled again).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

/// Every message `stream` holds, from its first, through a pull consumer
/// that acknowledges each one: what a crawl published, read back.
pub async fn read_all(url: &str, stream: &str) -> Result<Vec<bytes::Bytes>, SinkError> {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use futures_util::StreamExt as _;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        SinkError::Other(format!("nats:{url} stream {stream}: {what}: {e}"))
    };
    let client = async_nats::connect(url)
        .await
        .map_err(|e| fail("connecting", &e))?;
    let consumer = jetstream::new(client)
        .get_stream(stream)
        .await
        .map_err(|e| fail("the stream", &e))?
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .map_err(|e| fail("a consumer", &e))?;
    let mut out = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(500)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(|e| fail("fetching", &e))?;
        let before = out.len();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| fail("fetching", &e))?;
            message.ack().await.map_err(|e| fail("acknowledging", &e))?;
            out.push(message.payload.clone());
        }
        // An empty fetch: nothing more.
        if out.len() == before {
            return Ok(out);
        }
    }
}

/// Whether a stream subject (with `*` and `>` wildcards) covers `subject`.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut want = subject.split('.');
    for token in pattern.split('.') {
        match (token, want.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    want.next().is_none()
}

#[async_trait::async_trait]
impl Sink for NatsSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        let mut acks = Vec::with_capacity(items.len());
        for item in items {
            let payload =
                serde_json::to_vec(&item.0).map_err(|e| SinkError::Encode(e.to_string()))?;
            self.bytes += payload.len() as u64;
            let message = PublishMessage::build()
                .payload(payload.into())
                .message_id(message_id(item));
            let ack = self
                .js
                .send_publish(self.subject.clone(), message)
                .await
                .map_err(|e| SinkError::Other(format!("{}: publishing: {e}", self.name)))?;
            acks.push(ack);
        }
        for ack in acks {
            let ack = ack
                .await
                .map_err(|e| SinkError::Other(format!("{}: acknowledgement: {e}", self.name)))?;
            self.duplicates += u64::from(ack.duplicate);
        }
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        // Every batch is stored (acknowledged) before write_batch returns.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_subjects_cover_subjects() {
        assert!(subject_matches("items", "items"));
        assert!(subject_matches("items.*", "items.pages"));
        assert!(subject_matches("items.>", "items.pages.x"));
        assert!(subject_matches(">", "a"));
        assert!(!subject_matches("items.*", "items.pages.x"));
        assert!(!subject_matches("items", "items.pages"));
        assert!(!subject_matches("items.pages", "items"));
        assert!(!subject_matches("other", "items"));
    }
}
