//! The sink stage: batches items and writes them to every sink.
//!
//! A batch goes out when it is full or when it has waited `linger`. A
//! failing write is retried with back-off; while it is retried the item
//! queue fills and the crawl slows instead of dropping items.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use trawl_core::{CrawlStats, Item, Sink};

/// How long a partial batch may wait before it is written.
const LINGER: Duration = Duration::from_millis(200);
/// Write attempts per batch and sink before the error is reported.
const ATTEMPTS: u32 = 5;

/// Run until the item queue closes, then flush and close every sink.
/// Returns the errors of sinks that gave up (their batches are lost and
/// counted in the log; the dead-letter queue of a later issue keeps them).
pub async fn run(
    mut items: mpsc::Receiver<Item>,
    mut sinks: Vec<Box<dyn Sink>>,
    batch_size: usize,
    stats: Arc<CrawlStats>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut batch: Vec<Item> = Vec::with_capacity(batch_size);
    let mut ticker = tokio::time::interval(LINGER);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flush_now = tokio::select! {
            item = items.recv() => match item {
                Some(item) => {
                    batch.push(item);
                    batch.len() >= batch_size
                }
                None => break,
            },
            _ = ticker.tick() => !batch.is_empty(),
        };
        if flush_now {
            write_all(&mut sinks, &batch, &stats, &mut errors).await;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        write_all(&mut sinks, &batch, &stats, &mut errors).await;
    }
    for sink in &mut sinks {
        if let Err(error) = sink.close().await {
            tracing::error!(sink = %sink.name(), %error, "Closing sink failed.");
            errors.push(format!("{}: {error}", sink.name()));
        }
    }
    errors
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
