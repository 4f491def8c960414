//! The sink stage: batches items and writes them to every sink.
//!
//! A batch goes out when it is full or when it has waited `linger`. A
//! failing write is retried with back-off; while it is retried the item
//! queue fills and the crawl slows instead of dropping items.
//!
//! Leases are acknowledged here, after their items are written, together
//! with the sinks' positions (the checkpoint): a persistent frontier stores
//! both in one atomic write, which is what makes the output exactly-once
//! across `kill -9` and resume.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use trawl_core::{CrawlStats, Frontier, Item, Lease, Sink};

/// How long a partial batch may wait before it is written.
const LINGER: Duration = Duration::from_millis(200);
/// Write attempts per batch and sink before the error is reported.
const ATTEMPTS: u32 = 5;

/// Run until the item queue closes, then flush and close every sink.
/// Returns the errors of sinks that gave up (their batches are lost and
/// counted in the log; the dead-letter queue of a later issue keeps them).
/// One page's results on their way out, with the lease to acknowledge
/// once they are written.
pub struct Done {
    pub items: Vec<Item>,
    pub errors: Vec<Item>,
    pub lease: Lease,
}

pub async fn run(
    mut items: mpsc::Receiver<Done>,
    mut sinks: Vec<Box<dyn Sink>>,
    mut error_sinks: Vec<Box<dyn Sink>>,
    batch_size: usize,
    stats: Arc<CrawlStats>,
    frontier: Arc<dyn Frontier>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut batch: Vec<Item> = Vec::with_capacity(batch_size);
    let mut error_batch: Vec<Item> = Vec::new();
    let mut leases: Vec<Lease> = Vec::with_capacity(batch_size);
    let mut ticker = tokio::time::interval(LINGER);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flush_now = tokio::select! {
            item = items.recv() => match item {
                Some(done) => {
                    batch.extend(done.items);
                    error_batch.extend(done.errors);
                    leases.push(done.lease);
                    batch.len() + leases.len() >= 2 * batch_size
                }
                None => break,
            },
            _ = ticker.tick() => !leases.is_empty(),
        };
        if flush_now {
            write_all(&mut sinks, &batch, &stats, &mut errors).await;
            if !error_batch.is_empty() {
                write_all(
                    &mut error_sinks,
                    &error_batch,
                    &CrawlStats::default(),
                    &mut errors,
                )
                .await;
            }
            acknowledge(frontier.as_ref(), checkpoint(&sinks, &error_sinks), &leases).await;
            batch.clear();
            error_batch.clear();
            leases.clear();
        }
    }
    if !leases.is_empty() {
        write_all(&mut sinks, &batch, &stats, &mut errors).await;
        if !error_batch.is_empty() {
            write_all(
                &mut error_sinks,
                &error_batch,
                &CrawlStats::default(),
                &mut errors,
            )
            .await;
        }
        acknowledge(frontier.as_ref(), checkpoint(&sinks, &error_sinks), &leases).await;
    }
    for sink in sinks.iter_mut().chain(error_sinks.iter_mut()) {
        if let Err(error) = sink.close().await {
            tracing::error!(sink = %sink.name(), %error, "Closing sink failed.");
            errors.push(format!("{}: {error}", sink.name()));
        }
    }
    errors
}

/// The sinks' positions, as stored with each acknowledgement.
pub fn checkpoint(sinks: &[Box<dyn Sink>], error_sinks: &[Box<dyn Sink>]) -> Vec<u8> {
    let positions: serde_json::Map<String, serde_json::Value> = sinks
        .iter()
        .chain(error_sinks)
        .filter_map(|s| s.position().map(|p| (s.name(), p.into())))
        .collect();
    serde_json::to_vec(&serde_json::json!({ "sinks": positions })).unwrap_or_default()
}

/// Where sink `name` stood at the last acknowledgement, from a checkpoint.
pub fn position_in(checkpoint: &[u8], name: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(checkpoint).ok()?;
    value.get("sinks")?.get(name)?.as_u64()
}

/// The only sink position in a checkpoint, if it holds exactly one (a
/// crawl resumed with its output path spelled differently).
pub fn single_position(checkpoint: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(checkpoint).ok()?;
    let sinks = value.get("sinks")?.as_object()?;
    match sinks.values().collect::<Vec<_>>().as_slice() {
        [only] => only.as_u64(),
        _ => None,
    }
}

async fn acknowledge(frontier: &dyn Frontier, checkpoint: Vec<u8>, leases: &[Lease]) {
    let ack = || frontier.ack_batch(leases, Some(checkpoint.clone()));
    if let Err(error) = crate::retry::persist("ack", ack).await {
        tracing::error!(%error, "Frontier ack failed.");
    }
}

async fn write_all(
    sinks: &mut [Box<dyn Sink>],
    batch: &[Item],
    stats: &CrawlStats,
    errors: &mut Vec<String>,
) {
    for sink in sinks.iter_mut() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match sink.write_batch(batch).await {
                Ok(()) => break,
                Err(error) if attempt < ATTEMPTS => {
                    tracing::warn!(sink = %sink.name(), %error, attempt, "Sink write failed; retrying.");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(error) => {
                    tracing::error!(sink = %sink.name(), %error, items = batch.len(), "Sink write failed; giving up on this batch.");
                    errors.push(format!("{}: {error}", sink.name()));
                    break;
                }
            }
        }
    }
    CrawlStats::add(&stats.items_written, batch.len() as u64);
}
