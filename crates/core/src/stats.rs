//! Crawl statistics: lock-free counters every stage bumps.
//!
//! Two gauges matter most and are kept apart on purpose: `in_flight` (network
//! requests outstanding: the crawl's concurrency) and `cpu_busy` (parse
//! workers currently working: its parallelism).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Shared counters. Cheap to bump from any thread.
#[derive(Debug, Default)]
pub struct CrawlStats {
    /// Items produced (one per fetched URL).
    pub pages: AtomicU64,
    /// Pages with a 2xx final status.
    pub pages_ok: AtomicU64,
    /// Pages with an error (network failure or status >= 400).
    pub errors: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// HTTP requests currently on the wire.
    pub in_flight: AtomicU64,
    /// Parse workers currently busy.
    pub cpu_busy: AtomicU64,
    /// Size of the parse worker pool.
    pub cpu_workers: AtomicU64,
    /// HTTP requests sent (including retries, redirects and robots.txt).
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub redirects: AtomicU64,
    pub truncated: AtomicU64,
    /// URLs not fetched because robots.txt disallows them.
    pub robots_denied: AtomicU64,
    /// Links dropped by scope, depth, budgets or trap guards.
    pub filtered: AtomicU64,
    /// Links already seen.
    pub duplicates: AtomicU64,
    /// Items written by the sinks.
    pub items_written: AtomicU64,
    /// Conditional recrawl fetches answered 304 Not Modified.
    pub unchanged: AtomicU64,
    /// Spider error records (required fields missing, pages not fetched).
    pub item_errors: AtomicU64,
    /// Items an item pipeline stage dropped (filters, duplicates).
    pub items_dropped: AtomicU64,
    /// Latest frontier sizes (refreshed by the scheduler).
    pub queued: AtomicU64,
    pub leased: AtomicU64,
    /// Responses judged bans (through proxies or sessions).
    pub bans: AtomicU64,
    /// Requests that failed because of the proxy itself.
    pub proxy_failures: AtomicU64,
    /// Requests moved to another proxy or session after a ban or failure.
    pub rotations: AtomicU64,
    /// Times a request waited because no proxy was usable.
    pub proxy_waits: AtomicU64,
    /// Responses judged rate limits (429, 503 with Retry-After, …), with
    /// or without proxies.
    pub rate_limited: AtomicU64,
    /// Times a request waited for its exit's pace to the host.
    pub pace_waits: AtomicU64,
    /// Answers slow enough that an exit's pace to the host was cut.
    pub latency_climbs: AtomicU64,
    /// An output's reader went away (broken pipe): the crawl stopped.
    pub output_closed: std::sync::atomic::AtomicBool,
    /// The proxies' and sessions' state (set by the downloader).
    pub proxies: parking_lot::Mutex<Option<serde_json::Value>>,
    /// Pages rendered in the browser.
    pub rendered: AtomicU64,
    /// Browser tabs rendering now, and how many there are.
    pub render_busy: AtomicU64,
    pub render_tabs: AtomicU64,
    /// The renderer's state: render times, restarts, `auto`'s counts (set
    /// by the downloader).
    pub render: parking_lot::Mutex<Option<serde_json::Value>>,
    /// One entry per sink, registered when the crawl starts.
    pub sinks: parking_lot::Mutex<Vec<Arc<SinkStats>>>,
}

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub name: String,
    /// Items (or records) written.
    pub items: AtomicU64,
    /// Bytes written, as the sink counts them.
    pub bytes: AtomicU64,
    /// Batches written.
    pub batches: AtomicU64,
    /// Failed write attempts that were retried.
    pub retries: AtomicU64,
    /// Batches given up on (their items went to the dead-letter file).
    pub failed_batches: AtomicU64,
    /// Items written to the dead-letter file.
    pub dead_lettered: AtomicU64,
    /// Batches waiting in the sink's input queue.
    pub queue_depth: AtomicU64,
    /// Capacity of that queue.
    pub queue_capacity: AtomicU64,
}

/// A serialisable copy of one sink's counters.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SinkStatsSnapshot {
    pub name: String,
    pub items: u64,
    pub bytes: u64,
    pub batches: u64,
    pub retries: u64,
    pub failed_batches: u64,
    pub dead_lettered: u64,
    pub queue_depth: u64,
    pub queue_capacity: u64,
}

impl SinkStats {
    pub fn new(name: String) -> SinkStats {
        SinkStats {
            name,
            ..SinkStats::default()
        }
    }

    pub fn snapshot(&self) -> SinkStatsSnapshot {
        SinkStatsSnapshot {
            name: self.name.clone(),
            items: self.items.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            batches: self.batches.load(Relaxed),
            retries: self.retries.load(Relaxed),
            failed_batches: self.failed_batches.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            queue_depth: self.queue_depth.load(Relaxed),
            queue_capacity: self.queue_capacity.load(Relaxed),
        }
    }
}

/// A serialisable copy of the counters plus derived rates.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StatsSnapshot {
    pub pages: u64,
    pub pages_ok: u64,
    pub errors: u64,
    pub bytes: u64,
    pub in_flight: u64,
    pub cpu_busy: u64,
    pub cpu_workers: u64,
    pub requests: u64,
    pub retries: u64,
    pub redirects: u64,
    pub truncated: u64,
    pub robots_denied: u64,
    pub filtered: u64,
    pub duplicates: u64,
    pub items_written: u64,
    pub unchanged: u64,
    pub item_errors: u64,
    #[serde(default)]
    pub items_dropped: u64,
    pub queued: u64,
    pub leased: u64,
    pub elapsed_secs: f64,
    pub pages_per_sec: f64,
    /// Set when the crawl ended because of a signal.
    pub interrupted: bool,
    /// The crawl stopped because an output's reader went away.
    pub output_closed: bool,
    /// Per-sink counters.
    #[serde(default)]
    pub sinks: Vec<SinkStatsSnapshot>,
    #[serde(default)]
    pub bans: u64,
    #[serde(default)]
    pub proxy_failures: u64,
    #[serde(default)]
    pub rotations: u64,
    #[serde(default)]
    pub proxy_waits: u64,
    pub rate_limited: u64,
    pub pace_waits: u64,
    pub latency_climbs: u64,
    /// Each proxy's state and counters, and the session pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxies: Option<serde_json::Value>,
    #[serde(default)]
    pub rendered: u64,
    #[serde(default)]
    pub render_busy: u64,
    #[serde(default)]
    pub render_tabs: u64,
    /// Tabs, render times (p50/p90/p99), restarts, and `auto`'s plain vs
    /// rendered pages and their cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<serde_json::Value>,
}

impl CrawlStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
    pub fn dec(counter: &AtomicU64) {
        counter.fetch_sub(1, Relaxed);
    }

    pub fn snapshot(&self, elapsed: std::time::Duration) -> StatsSnapshot {
        let pages = self.pages.load(Relaxed);
        let secs = elapsed.as_secs_f64();
        StatsSnapshot {
            pages,
            pages_ok: self.pages_ok.load(Relaxed),
            errors: self.errors.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            cpu_busy: self.cpu_busy.load(Relaxed),
            cpu_workers: self.cpu_workers.load(Relaxed),
            requests: self.requests.load(Relaxed),
            retries: self.retries.load(Relaxed),
            redirects: self.redirects.load(Relaxed),
            truncated: self.truncated.load(Relaxed),
            robots_denied: self.robots_denied.load(Relaxed),
            filtered: self.filtered.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            items_written: self.items_written.load(Relaxed),
            unchanged: self.unchanged.load(Relaxed),
            item_errors: self.item_errors.load(Relaxed),
            items_dropped: self.items_dropped.load(Relaxed),
            queued: self.queued.load(Relaxed),
            leased: self.leased.load(Relaxed),
            elapsed_secs: secs,
            pages_per_sec: if secs > 0.0 { pages as f64 / secs } else { 0.0 },
            interrupted: false,
            output_closed: false,
            sinks: self.sinks.lock().iter().map(|s| s.snapshot()).collect(),
            bans: self.bans.load(Relaxed),
            proxy_failures: self.proxy_failures.load(Relaxed),
            rotations: self.rotations.load(Relaxed),
            proxy_waits: self.proxy_waits.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            pace_waits: self.pace_waits.load(Relaxed),
            latency_climbs: self.latency_climbs.load(Relaxed),
            proxies: self.proxies.lock().clone(),
            rendered: self.rendered.load(Relaxed),
            render_busy: self.render_busy.load(Relaxed),
            render_tabs: self.render_tabs.load(Relaxed),
            render: self.render.lock().clone(),
        }
    }
}

/// Increments a gauge now and decrements it when dropped, so early returns
/// and panics cannot leave it wrong.
pub struct GaugeGuard<'a>(&'a AtomicU64);

impl<'a> GaugeGuard<'a> {
    pub fn new(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}
