//! The board: what the metrics endpoint and the dashboard show.
//!
//! One process may run one crawl (`trawl crawl`, `run`, `worker`) or many
//! jobs (`trawl serve`): each running crawl is a *source* whose counters
//! are read live; a finished one is *retired* into running totals, so the
//! exported counters never go backwards when a job ends. A distributed
//! crawl's workers (read from Redis by the caller) and a server's jobs are
//! rows the caller refreshes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use trawl_core::{CrawlStats, StatsSnapshot};

/// Lists rows (jobs) on demand, as JSON objects.
pub type RowsFn = Box<dyn Fn() -> Vec<serde_json::Value> + Send + Sync>;

/// Who is reporting: on every metric's info line and every sample.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    /// The crawl's name (a distributed crawl's Redis name; `local`
    /// otherwise; `serve` for the API server).
    pub crawl: String,
    /// This process (a worker id: host and pid unless set).
    pub worker: String,
}

/// One worker of a distributed crawl, as the dashboard lists it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerRow {
    pub id: String,
    /// Pages it reported done to the crawl's counters.
    pub pages: u64,
    pub errors: u64,
    /// Leases it holds.
    pub leases: u64,
    /// Since its last heartbeat.
    pub silent_ms: u64,
    /// Its own live figures, as it last published them.
    #[serde(default)]
    pub live: Option<WorkerLive>,
}

/// What each worker publishes about itself (small: it is written to Redis
/// every second).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerLive {
    pub pages: u64,
    pub errors: u64,
    pub in_flight: u64,
    pub cpu_busy: u64,
    pub cpu_workers: u64,
    pub pages_per_sec: f64,
    pub elapsed_secs: f64,
}

impl WorkerLive {
    pub fn of(stats: &StatsSnapshot) -> WorkerLive {
        WorkerLive {
            pages: stats.pages,
            errors: stats.errors,
            in_flight: stats.in_flight,
            cpu_busy: stats.cpu_busy,
            cpu_workers: stats.cpu_workers,
            pages_per_sec: stats.pages_per_sec,
            elapsed_secs: stats.elapsed_secs,
        }
    }
}

/// One update of the dashboard: everything it draws, at one instant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Wall clock, ms since the Unix epoch.
    pub at_ms: u64,
    pub identity: Identity,
    /// This process's crawls (summed when there are several).
    pub stats: StatsSnapshot,
    /// A distributed crawl's workers, this one included.
    pub workers: Vec<WorkerRow>,
    /// A server's jobs.
    pub jobs: Vec<serde_json::Value>,
    /// Crawls running in this process.
    pub running: usize,
}

struct Source {
    name: String,
    stats: Arc<CrawlStats>,
    started: Instant,
}

/// The shared state behind `/metrics` and the dashboard.
pub struct Board {
    identity: Identity,
    started: Instant,
    sources: Mutex<Vec<Source>>,
    retired: Mutex<StatsSnapshot>,
    workers: Mutex<Vec<WorkerRow>>,
    jobs: Mutex<Option<RowsFn>>,
    /// The latest samples (oldest first), for a dashboard opened late.
    history: Mutex<VecDeque<Arc<Sample>>>,
    /// Each new sample, to every open dashboard.
    samples: tokio::sync::broadcast::Sender<Arc<Sample>>,
    /// Hosts given their own series (the slowest first); 0 for none.
    pub host_series: usize,
    /// Exits (proxies) given their own series, the busiest first.
    pub exit_series: usize,
}

/// Host series by default: the ten slowest.
pub const DEFAULT_HOST_SERIES: usize = 10;
/// Exit series by default.
pub const DEFAULT_EXIT_SERIES: usize = 100;

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Board {
    pub fn new(identity: Identity) -> Board {
        Board {
            identity,
            started: Instant::now(),
            sources: Mutex::new(Vec::new()),
            retired: Mutex::new(StatsSnapshot::default()),
            workers: Mutex::new(Vec::new()),
            jobs: Mutex::new(None),
            history: Mutex::new(VecDeque::new()),
            samples: tokio::sync::broadcast::channel(16).0,
            host_series: DEFAULT_HOST_SERIES,
            exit_series: DEFAULT_EXIT_SERIES,
        }
    }

    /// A board showing one crawl's stats.
    pub fn single(identity: Identity, stats: Arc<CrawlStats>) -> Board {
        let board = Board::new(identity);
        board.add(&board.identity.crawl.clone(), stats);
        board
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Show a running crawl (a job) from now on.
    pub fn add(&self, name: &str, stats: Arc<CrawlStats>) {
        self.sources.lock().push(Source {
            name: name.to_string(),
            stats,
            started: Instant::now(),
        });
    }

    /// A crawl ended: its counters join the totals; its gauges go.
    pub fn retire(&self, name: &str) {
        let gone: Vec<Source> = {
            let mut sources = self.sources.lock();
            let (gone, kept) = std::mem::take(&mut *sources)
                .into_iter()
                .partition(|s| s.name == name);
            *sources = kept;
            gone
        };
        let mut retired = self.retired.lock();
        for source in gone {
            let mut last = source.stats.snapshot(source.started.elapsed());
            zero_gauges(&mut last);
            retired.absorb(&last);
        }
    }

    /// The distributed crawl's workers, as last read from Redis.
    pub fn set_workers(&self, rows: Vec<WorkerRow>) {
        *self.workers.lock() = rows;
    }

    /// Where the job rows come from (a server's job table).
    pub fn set_jobs(&self, rows: RowsFn) {
        *self.jobs.lock() = Some(rows);
    }

    /// This process's crawls' counters, summed (finished ones included).
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut total = self.retired.lock().clone();
        total.elapsed_secs = 0.0;
        for source in self.sources.lock().iter() {
            total.absorb(&source.stats.snapshot(source.started.elapsed()));
        }
        total.elapsed_secs = total.elapsed_secs.max(self.started.elapsed().as_secs_f64());
        total
    }

    pub fn running(&self) -> usize {
        self.sources.lock().len()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn sample(&self) -> Sample {
        Sample {
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            identity: self.identity.clone(),
            stats: self.snapshot(),
            workers: self.workers.lock().clone(),
            jobs: self
                .jobs
                .lock()
                .as_ref()
                .map(|rows| rows())
                .unwrap_or_default(),
            running: self.running(),
        }
    }
}

impl Sample {
    /// This sample without its tables: what the charts draw.
    fn chart_only(&self) -> Sample {
        let mut stats = self.stats.clone();
        stats.proxies = None;
        stats.render = None;
        stats.slowest_hosts.clear();
        stats.errors_by_kind.clear();
        Sample {
            at_ms: self.at_ms,
            identity: self.identity.clone(),
            stats,
            workers: Vec::new(),
            jobs: Vec::new(),
            running: self.running,
        }
    }
}

/// Samples kept for a dashboard opened late: two minutes at one a second.
pub const HISTORY: usize = 120;

impl Board {
    /// Take a sample every `every` while the board lives: kept in the
    /// history and sent to every open dashboard. One sampler serves any
    /// number of viewers.
    pub fn spawn_sampler(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(board) = weak.upgrade() else { break };
                // Snapshots walk tables and take locks: off the I/O threads.
                let taken = board.clone();
                let Ok(sample) = tokio::task::spawn_blocking(move || taken.sample()).await else {
                    break;
                };
                board.record(Arc::new(sample));
            }
        })
    }

    fn record(&self, sample: Arc<Sample>) {
        let mut history = self.history.lock();
        if history.len() == HISTORY {
            history.pop_front();
        }
        // Only the newest sample keeps the tables (exits, hosts, jobs,
        // workers): the older ones feed the charts, and a pool of
        // thousands of proxies must not be kept 120 times over.
        if let Some(last) = history.back_mut() {
            *last = Arc::new(last.chart_only());
        }
        history.push_back(sample.clone());
        // Sent under the history's lock, so a subscriber taken with the
        // history neither misses nor repeats a sample.
        let _ = self.samples.send(sample);
    }

    /// The samples so far and a receiver of the ones to come.
    pub fn subscribe(
        &self,
    ) -> (
        Vec<Arc<Sample>>,
        tokio::sync::broadcast::Receiver<Arc<Sample>>,
    ) {
        let history = self.history.lock();
        (history.iter().cloned().collect(), self.samples.subscribe())
    }
}

/// Clear what only means something while a crawl runs.
fn zero_gauges(s: &mut StatsSnapshot) {
    s.in_flight = 0;
    s.cpu_busy = 0;
    s.cpu_workers = 0;
    s.queued = 0;
    s.leased = 0;
    s.render_busy = 0;
    s.render_tabs = 0;
    s.queues.clear();
    s.proxies = None;
    s.render = None;
    for sink in &mut s.sinks {
        sink.queue_depth = 0;
        sink.queue_capacity = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[tokio::test]
    async fn history_keeps_tables_only_in_the_newest_sample() {
        let stats = Arc::new(CrawlStats::default());
        *stats.proxies.lock() = Some(serde_json::json!({"proxies": [{"proxy": "p"}]}));
        stats.exchange_done("h", Some(200), Duration::from_millis(5));
        let board = Arc::new(Board::single(Identity::default(), stats));
        board.record(Arc::new(board.sample()));
        board.record(Arc::new(board.sample()));
        let (history, _) = board.subscribe();
        assert_eq!(history.len(), 2);
        assert!(history[0].stats.proxies.is_none() && history[0].stats.slowest_hosts.is_empty());
        assert!(history[1].stats.proxies.is_some() && !history[1].stats.slowest_hosts.is_empty());
        assert_eq!(
            history[0].stats.fetch_seconds.count(),
            1,
            "chart figures stay"
        );
    }

    #[test]
    fn retired_counters_stay_and_gauges_go() {
        let board = Board::new(Identity {
            crawl: "serve".into(),
            worker: "w".into(),
        });
        let a = Arc::new(CrawlStats::default());
        let b = Arc::new(CrawlStats::default());
        a.pages.store(5, Relaxed);
        a.in_flight.store(3, Relaxed);
        a.page_done(Some(200), 100);
        b.pages.store(7, Relaxed);
        b.in_flight.store(1, Relaxed);
        board.add("a", a.clone());
        board.add("b", b);
        let both = board.snapshot();
        assert_eq!((both.pages, both.in_flight), (12, 4));
        assert_eq!(both.pages_by_class.get("2xx"), Some(&1));
        board.retire("a");
        let after = board.snapshot();
        assert_eq!(
            (after.pages, after.in_flight),
            (12, 1),
            "a's pages kept, its gauge gone"
        );
        assert_eq!(after.bytes_by_class.get("2xx"), Some(&100));
        assert_eq!(board.running(), 1);
    }
}
