//! The wake-up listener of a [`RedisFrontier`](super::RedisFrontier): a
//! dedicated pub/sub connection subscribed to the shards' `wakeup` channels
//! (one per Redis instance; one for a whole cluster, whose nodes pass every
//! message on),
//! so idle workers sleep in `wait_ready` instead of polling Redis.
//!
//! Scripts publish on the channel when a host enters the ready set (new
//! work, a lease slot freed, an expired lease reclaimed) or the crawl
//! finishes. Every message bumps a generation counter and wakes the tasks
//! waiting right now; the counter lets `wait_ready` notice messages that
//! arrived between the caller's last `lease` and its wait. When the
//! connection drops the listener resubscribes with back-off and bumps the
//! counter once (messages may have been missed while it was away).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::Client;
use ::redis::aio::PubSubStream;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Connection attempts of the listener give up after this.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Shared between the listener task and the frontier.
#[derive(Default)]
pub(super) struct Wakeup {
    /// Messages received (plus reconnects).
    pub generation: AtomicU64,
    pub notify: Notify,
}

impl Wakeup {
    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// Open a dedicated connection (to the first of `clients` that answers)
/// and subscribe it to `channels`.
pub(super) async fn subscribe(
    clients: &[Client],
    channels: &[String],
) -> Result<PubSubStream, String> {
    let mut last = String::from("no server to subscribe on");
    for client in clients {
        let attempt = async {
            let mut pubsub = client.get_async_pubsub().await?;
            for channel in channels {
                pubsub.subscribe(channel).await?;
            }
            Ok::<_, ::redis::RedisError>(pubsub.into_on_message())
        };
        match tokio::time::timeout(SUBSCRIBE_TIMEOUT, attempt).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no answer within {SUBSCRIBE_TIMEOUT:?}"),
        }
    }
    Err(last)
}

/// Run the listener on `first` (already subscribed) until aborted.
pub(super) fn spawn(
    clients: Vec<Client>,
    channels: Vec<String>,
    first: PubSubStream,
    wakeup: Arc<Wakeup>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut stream = Some(first);
        let mut backoff = MIN_BACKOFF;
        loop {
            if let Some(mut messages) = stream.take() {
                while messages.next().await.is_some() {
                    wakeup.bump();
                }
                tracing::debug!(
                    ?channels,
                    "Frontier wake-up subscription lost; resubscribing."
                );
            }
            tokio::time::sleep(backoff).await;
            match subscribe(&clients, &channels).await {
                Ok(messages) => {
                    backoff = MIN_BACKOFF;
                    stream = Some(messages);
                    wakeup.bump();
                }
                Err(error) => {
                    tracing::debug!(?channels, %error, "Frontier wake-up resubscribe failed.");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    })
}
