//! The sink stage: batches items and fans them out to every sink.
//!
//! ```text
//!                      ┌─ bounded queue ─ sink task (jsonl) ─┐
//! router ─ Done ─ dispatcher ─ bounded queue ─ sink task (csv) ─┼─ completions ─ dispatcher: ack
//!                      └─ bounded queue ─ sink task (postgres) ┘
//! ```
//!
//! The dispatcher gathers pages' results into a batch (full, or after
//! `LINGER`) and hands the same shared batch to every sink's own task
//! through that sink's bounded queue. Sinks write in parallel; a slow or
//! failing sink fills its queue, the dispatcher waits on it, the router
//! waits on the dispatcher, and so on back to the scheduler: the crawl slows
//! instead of dropping items or growing memory.
//!
//! A sink task retries a failing write with exponential back-off and jitter
//! ([`SinkOptions`](crate::config::SinkOptions)); when it gives up, the batch
//! goes to that sink's dead-letter file ([`dead_letter`]) and the crawl
//! reports it. If even that fails, the batch's URLs go back to the frontier.
//!
//! A batch's leases are acknowledged once every sink has finished it, in
//! batch order, together with each sink's position after that batch (the
//! [`checkpoint`]): a persistent frontier stores both in one atomic write,
//! which is what makes the output exactly-once across `kill -9` and resume.

pub use trawl_core::checkpoint;
pub mod dead_letter;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::mpsc;
use trawl_core::{CrawlStats, Exchange, Frontier, Item, Lease, Sink, SinkStats};

use worker::{Batch, Completion, Feed, Outcome, Worker};

use crate::config::SinkOptions;

/// How long a partial batch may wait before it is written.
const LINGER: Duration = Duration::from_millis(200);

/// One page's results on their way out, with the lease to acknowledge
/// once they are written.
pub struct Done {
    pub items: Vec<Item>,
    pub errors: Vec<Item>,
    /// The page's raw exchange, when a sink archives them.
    pub exchange: Option<Exchange>,
    pub lease: Lease,
}

/// A batch handed out and not yet finished by every sink.
struct Pending {
    leases: Vec<Lease>,
    items: u64,
    waiting: usize,
    positions: Map<String, Value>,
    lost: bool,
}

/// Fan-out state.
struct Dispatcher {
    queues: Vec<(mpsc::Sender<Arc<Batch>>, Arc<SinkStats>)>,
    pending: BTreeMap<u64, Pending>,
    /// Positions as of the last acknowledged batch.
    acked: Map<String, Value>,
    next_seq: u64,
    errors: Vec<String>,
    /// Per sink: batches given up and the first such message.
    gave_up: Vec<(String, u64, String)>,
    frontier: Arc<dyn Frontier>,
    stats: Arc<CrawlStats>,
}

/// What the sink stage shares with the rest of the crawl.
pub struct Crawl {
    pub stats: Arc<CrawlStats>,
    /// Acknowledges (or releases) the leases of written batches.
    pub frontier: Arc<dyn Frontier>,
    /// Triggered when an output's reader goes away.
    pub shutdown: crate::Shutdown,
}

/// Run until the item queue closes and every sink has written everything;
/// then close the sinks. Returns one message per sink that gave up on
/// batches (the first batch's message and how many more) or failed to close.
pub async fn run(
    mut items: mpsc::Receiver<Done>,
    sinks: Vec<Box<dyn Sink>>,
    error_sinks: Vec<Box<dyn Sink>>,
    batch_size: usize,
    opts: SinkOptions,
    crawl: Crawl,
) -> Vec<String> {
    let Crawl {
        stats,
        frontier,
        shutdown,
    } = crawl;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Completion>();
    let mut dispatcher = Dispatcher {
        queues: Vec::new(),
        pending: BTreeMap::new(),
        acked: Map::new(),
        next_seq: 0,
        errors: Vec::new(),
        gave_up: Vec::new(),
        frontier,
        stats: stats.clone(),
    };
    let mut workers = Vec::new();
    let feeds = sinks
        .into_iter()
        .map(|s| (s, Feed::Items))
        .chain(error_sinks.into_iter().map(|s| (s, Feed::Errors)));
    for (sink, feed) in feeds {
        let sink_stats = Arc::new(SinkStats::new(sink.name()));
        let capacity = opts.queue_batches.max(1);
        sink_stats.queue_capacity.store(capacity as u64, Relaxed);
        stats.sinks.lock().push(sink_stats.clone());
        let (tx, rx) = mpsc::channel(capacity);
        let worker = Worker {
            sink,
            feed,
            stats: sink_stats.clone(),
            opts: opts.clone(),
            crawl_stats: stats.clone(),
            shutdown: shutdown.clone(),
            gone: false,
        };
        workers.push(tokio::spawn(worker.run(rx, done_tx.clone())));
        dispatcher.queues.push((tx, sink_stats));
    }
    drop(done_tx);

    let mut batch = Batch {
        seq: 0,
        items: Vec::with_capacity(batch_size),
        errors: Vec::new(),
        exchanges: Vec::new(),
    };
    let mut leases: Vec<Lease> = Vec::with_capacity(batch_size);
    let mut ticker = tokio::time::interval(LINGER);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flush_now = tokio::select! {
            done = items.recv() => match done {
                Some(done) => {
                    batch.items.extend(done.items);
                    batch.errors.extend(done.errors);
                    batch.exchanges.extend(done.exchange);
                    leases.push(done.lease);
                    batch.items.len() + leases.len() >= 2 * batch_size
                }
                None => break,
            },
            Some(c) = done_rx.recv() => {
                dispatcher.complete(c).await;
                false
            }
            _ = ticker.tick() => !leases.is_empty(),
        };
        if flush_now {
            let full = std::mem::replace(
                &mut batch,
                Batch {
                    seq: 0,
                    items: Vec::with_capacity(batch_size),
                    errors: Vec::new(),
                    exchanges: Vec::new(),
                },
            );
            dispatcher.dispatch(full, std::mem::take(&mut leases)).await;
        }
    }
    if !leases.is_empty() {
        dispatcher.dispatch(batch, leases).await;
    }
    // Closing the queues lets each sink task finish its backlog and close.
    dispatcher.queues.clear();
    while let Some(c) = done_rx.recv().await {
        dispatcher.complete(c).await;
    }
    for worker in workers {
        match worker.await {
            Ok(Some(error)) => dispatcher.errors.push(error),
            Ok(None) => {}
            Err(join) => dispatcher.errors.push(format!("sink task: {join}")),
        }
    }
    // One line per sink that gave up, not one per batch.
    for (_, batches, first) in std::mem::take(&mut dispatcher.gave_up) {
        dispatcher.errors.push(if batches == 1 {
            first
        } else {
            format!("{first} (and likewise for {} more batches)", batches - 1)
        });
    }
    if !dispatcher.pending.is_empty() {
        tracing::error!(
            batches = dispatcher.pending.len(),
            "Sink stage ended with unfinished batches; their URLs stay unacknowledged."
        );
    }
    dispatcher.errors
}

impl Dispatcher {
    /// Hand a batch to every sink's queue (waiting while a queue is full).
    async fn dispatch(&mut self, mut batch: Batch, leases: Vec<Lease>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.seq = seq;
        self.pending.insert(
            seq,
            Pending {
                leases,
                items: batch.items.len() as u64,
                waiting: self.queues.len(),
                positions: Map::new(),
                lost: false,
            },
        );
        let batch = Arc::new(batch);
        for (tx, stats) in &self.queues {
            stats.queue_depth.fetch_add(1, Relaxed);
            if tx.send(batch.clone()).await.is_err() {
                stats.queue_depth.fetch_sub(1, Relaxed);
                if let Some(p) = self.pending.get_mut(&seq) {
                    p.waiting -= 1;
                    p.lost = true;
                }
                self.errors
                    .push(format!("{}: sink task stopped", stats.name));
            }
        }
        self.acknowledge_finished().await;
    }

    /// Record one sink's completion of one batch.
    async fn complete(&mut self, c: Completion) {
        if let Some(p) = self.pending.get_mut(&c.seq) {
            p.waiting = p.waiting.saturating_sub(1);
            if let Some(pos) = c.position {
                p.positions.insert(c.sink.clone(), pos.into());
            }
            let message = match c.outcome {
                Outcome::Written => None,
                Outcome::DeadLettered(message) => Some(message),
                Outcome::Lost(message) => {
                    p.lost = true;
                    Some(message)
                }
                // Not written, and nothing to say: the crawl is stopping.
                Outcome::ReaderGone => {
                    p.lost = true;
                    None
                }
            };
            if let Some(message) = message {
                match self.gave_up.iter_mut().find(|(s, _, _)| *s == c.sink) {
                    Some((_, n, _)) => *n += 1,
                    None => self.gave_up.push((c.sink.clone(), 1, message)),
                }
            }
        }
        self.acknowledge_finished().await;
    }

    /// Acknowledge, in batch order, every batch all sinks have finished.
    async fn acknowledge_finished(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().waiting > 0 {
                break;
            }
            let done = entry.remove();
            if done.lost {
                // Nothing kept this batch: crawl its URLs again later.
                for lease in &done.leases {
                    if let Err(error) = self.frontier.release(lease).await {
                        tracing::error!(%error, "Frontier release failed.");
                    }
                }
                continue;
            }
            CrawlStats::add(&self.stats.items_written, done.items);
            self.acked.extend(done.positions);
            let checkpoint = trawl_core::checkpoint::encode(&self.acked);
            let frontier = &self.frontier;
            let leases = &done.leases;
            let ack = || frontier.ack_batch(leases, Some(checkpoint.clone()));
            if let Err(error) = crate::retry::persist("ack", ack).await {
                tracing::error!(%error, "Frontier ack failed.");
            }
        }
    }
}
