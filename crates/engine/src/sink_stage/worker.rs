//! One sink's task: takes batches from its own bounded queue, writes them
//! with retries, and reports each batch's outcome and the sink's position.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use trawl_core::{CrawlStats, Exchange, Item, Sink, SinkError, SinkStats};

use crate::config::SinkOptions;

/// A batch on its way to every sink; shared, never copied.
pub(crate) struct Batch {
    pub seq: u64,
    pub items: Vec<Item>,
    /// Spider error records (for the error sinks).
    pub errors: Vec<Item>,
    /// Raw exchanges (for sinks that want them).
    pub exchanges: Vec<Exchange>,
}

/// Which part of a batch a sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    Items,
    Errors,
}

/// What happened to one batch in one sink.
#[derive(Debug)]
pub(crate) enum Outcome {
    Written,
    /// The sink gave up; the batch is in the dead-letter file.
    DeadLettered(String),
    /// The sink gave up and the dead-letter file could not be written.
    Lost(String),
    /// The output's reader went away: nothing more can be written, and the
    /// crawl is stopping.
    ReaderGone,
}

pub(crate) struct Completion {
    pub seq: u64,
    pub sink: String,
    /// The sink's position after this batch.
    pub position: Option<u64>,
    pub outcome: Outcome,
}

pub(crate) struct Worker {
    pub sink: Box<dyn Sink>,
    pub feed: Feed,
    pub stats: Arc<SinkStats>,
    pub opts: SinkOptions,
    /// Crawl-wide stats (to say the output closed).
    pub crawl_stats: Arc<CrawlStats>,
    /// Stopped when the output's reader goes away.
    pub shutdown: crate::Shutdown,
    /// The reader went away: later batches are not written.
    pub gone: bool,
}

impl Worker {
    /// Run until the queue closes; then close the sink. Returns the close
    /// error, if any.
    pub async fn run(
        mut self,
        mut batches: mpsc::Receiver<Arc<Batch>>,
        done: mpsc::UnboundedSender<Completion>,
    ) -> Option<String> {
        let name = self.sink.name();
        let wants_exchanges = self.sink.wants_exchanges() && self.feed == Feed::Items;
        while let Some(batch) = batches.recv().await {
            self.stats.queue_depth.fetch_sub(1, Relaxed);
            let items = match self.feed {
                Feed::Items => &batch.items[..],
                Feed::Errors => &batch.errors[..],
            };
            let exchanges = if wants_exchanges {
                &batch.exchanges[..]
            } else {
                &[]
            };
            let outcome = if self.gone {
                Outcome::ReaderGone
            } else if items.is_empty() && exchanges.is_empty() {
                Outcome::Written
            } else {
                self.write(&name, items, exchanges).await
            };
            let completion = Completion {
                seq: batch.seq,
                sink: name.clone(),
                position: self.sink.position(),
                outcome,
            };
            if done.send(completion).is_err() {
                break;
            }
        }
        match self.sink.close().await {
            Ok(()) => None,
            Err(SinkError::ReaderGone { .. }) => None,
            Err(error) => {
                tracing::error!(sink = %name, %error, "Closing sink failed.");
                Some(format!("{name}: closing: {error}"))
            }
        }
    }

    /// Write one batch, retrying with exponential back-off and jitter; on
    /// giving up, write it to the dead-letter file.
    async fn write(&mut self, name: &str, items: &[Item], exchanges: &[Exchange]) -> Outcome {
        let opts = &self.opts;
        let mut exchanges_done = exchanges.is_empty();
        let mut last_error: Option<SinkError> = None;
        let started = std::time::Instant::now();
        for attempt in 1..=opts.attempts.max(1) {
            if attempt > 1 {
                CrawlStats::inc(&self.stats.retries);
                tokio::time::sleep(backoff(opts, attempt - 1)).await;
            }
            let before = self.sink.bytes_written();
            if !exchanges_done {
                match self.sink.write_exchanges(exchanges).await {
                    Ok(()) => exchanges_done = true,
                    Err(SinkError::ReaderGone { .. }) => return self.reader_gone(name),
                    Err(error) => {
                        tracing::warn!(sink = %name, %error, attempt, "Sink write failed; retrying.");
                        last_error = Some(error);
                        continue;
                    }
                }
            }
            match self.sink.write_batch(items).await {
                Ok(()) => {
                    let stats = &self.stats;
                    CrawlStats::add(&stats.items, (items.len() + exchanges.len()) as u64);
                    CrawlStats::inc(&stats.batches);
                    let after = self.sink.bytes_written();
                    CrawlStats::add(&stats.bytes, after.saturating_sub(before));
                    stats.write_seconds.observe(started.elapsed());
                    return Outcome::Written;
                }
                Err(SinkError::ReaderGone { .. }) => return self.reader_gone(name),
                Err(error) => {
                    tracing::warn!(sink = %name, %error, attempt, "Sink write failed; retrying.");
                    last_error = Some(error);
                }
            }
        }
        let error = last_error.map_or_else(|| "unknown error".to_string(), |e| e.to_string());
        CrawlStats::inc(&self.stats.failed_batches);
        let path = crate::sink_stage::dead_letter::path_for(&opts.dead_letter_dir, name);
        let pending_exchanges = if exchanges_done { &[][..] } else { exchanges };
        let (items2, path2) = (items.to_vec(), path.clone());
        let ex2 = pending_exchanges.to_vec();
        let written =
            tokio::task::spawn_blocking(move || super::dead_letter::write(&path2, &items2, &ex2))
                .await;
        match written {
            Ok(Ok(())) => {
                CrawlStats::add(&self.stats.dead_lettered, items.len() as u64);
                let message = format!(
                    "{name}: gave up after {} attempts ({error}); {} items written to the dead-letter file {}",
                    opts.attempts.max(1),
                    items.len(),
                    path.display()
                );
                tracing::error!("{message}");
                Outcome::DeadLettered(message)
            }
            Ok(Err(dl_error)) => {
                let message = format!(
                    "{name}: gave up after {} attempts ({error}), and the dead-letter file {} failed too ({dl_error}); the batch's URLs are returned to the frontier",
                    opts.attempts.max(1),
                    path.display()
                );
                tracing::error!("{message}");
                Outcome::Lost(message)
            }
            Err(join) => Outcome::Lost(format!("{name}: dead-letter task: {join}")),
        }
    }
}

impl Worker {
    /// The output's reader went away (`trawl crawl … | head -1`): like any
    /// Unix tool, stop at once and quietly. No retries, no dead letters:
    /// the crawl stops, and what was written so far stays as it is.
    fn reader_gone(&mut self, name: &str) -> Outcome {
        tracing::debug!(sink = %name, "The output's reader went away; stopping the crawl.");
        self.gone = true;
        self.crawl_stats
            .output_closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shutdown.trigger();
        Outcome::ReaderGone
    }
}

/// The wait before retry `n` (1-based): `base * 2^(n-1)`, capped, with
/// ±25% jitter so sinks of many workers do not retry in step.
fn backoff(opts: &SinkOptions, n: u32) -> Duration {
    let exp = opts
        .backoff
        .saturating_mul(1u32 << (n - 1).min(20))
        .min(opts.max_backoff);
    let jitter = rand::rng().random_range(0.75..1.25);
    exp.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let opts = SinkOptions {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..SinkOptions::default()
        };
        let b1 = backoff(&opts, 1);
        assert!(b1 >= Duration::from_millis(75) && b1 <= Duration::from_millis(125));
        let b3 = backoff(&opts, 3);
        assert!(b3 >= Duration::from_millis(300) && b3 <= Duration::from_millis(500));
        let b10 = backoff(&opts, 10);
        assert!(b10 <= Duration::from_millis(1250) && b10 >= Duration::from_millis(750));
    }
}
