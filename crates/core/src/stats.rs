//! Crawl statistics: lock-free counters every stage bumps.
//!
//! Two gauges matter most and are kept apart on purpose: `in_flight` (network
//! requests outstanding: the crawl's concurrency) and `cpu_busy` (parse
//! workers currently working: its parallelism).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::histogram::{Histogram, HistogramSnapshot};
use crate::host_latency::{HostLatencies, HostLatency};

/// Status classes of [`CrawlStats::pages_by_class`] and its kin: `none` is
/// no answer at all (a network failure).
pub const STATUS_CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// Index into [`STATUS_CLASSES`].
pub fn status_class(status: Option<u16>) -> usize {
    match status {
        Some(s @ 100..=599) => usize::from(s / 100),
        _ => 0,
    }
}

/// Hosts in a snapshot's `slowest_hosts`.
pub const SLOWEST_HOSTS: usize = 20;

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
    /// Revisits (`--recrawl`) that found the page unchanged: 304 Not
    /// Modified, or the same body.
    pub unchanged: AtomicU64,
    /// Revisits whose text moved within the near-duplicate distance, and
    /// revisits that found the page changed.
    pub near_duplicate_changes: AtomicU64,
    pub changed: AtomicU64,
    /// Pages with the same body as an earlier page (another URL).
    pub duplicate_pages: AtomicU64,
    /// Pages whose text is within the near-duplicate distance of an
    /// earlier page's.
    pub near_duplicate_pages: AtomicU64,
    /// Links not followed because their URL pattern is a crawler trap.
    pub trap_blocked: AtomicU64,
    /// The trapped URL patterns (refreshed by the router).
    pub traps: parking_lot::Mutex<Vec<TrapReport>>,
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
    /// Pages (items) per final status class, in [`STATUS_CLASSES`] order,
    /// and their body bytes.
    pub pages_by_class: [AtomicU64; 6],
    pub bytes_by_class: [AtomicU64; 6],
    /// HTTP exchanges (every request: robots.txt, redirects and retries
    /// included) per status class; `none` is no answer.
    pub responses_by_class: [AtomicU64; 6],
    /// Time from sending a request to the end of its body.
    pub fetch_seconds: Histogram,
    /// Failed pages per kind of failure (`timeout`, `connect`, `status`, …).
    pub errors_by_kind: parking_lot::Mutex<BTreeMap<&'static str, u64>>,
    /// Requests and their latency per host.
    pub hosts: HostLatencies,
    /// The queues between the stages, registered when the crawl starts.
    pub queues: parking_lot::Mutex<Vec<QueueProbe>>,
}

/// Reads one stage queue's depth: `(waiting, capacity)`, or `None` once
/// the queue is gone.
pub type DepthFn = Box<dyn Fn() -> Option<(u64, u64)> + Send + Sync>;

/// A named queue between two stages, read when stats are taken.
pub struct QueueProbe {
    pub name: &'static str,
    pub depth: DepthFn,
}

impl std::fmt::Debug for QueueProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueProbe")
            .field("name", &self.name)
            .finish()
    }
}

/// One stage queue's depth in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueueDepth {
    /// `parse` (fetched pages waiting for a parse worker), `route` (parsed
    /// pages waiting for the router), `items` (items waiting for the sink
    /// stage).
    pub name: String,
    pub depth: u64,
    pub capacity: u64,
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
    /// Time each batch write took (retries included).
    pub write_seconds: Histogram,
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
    #[serde(default)]
    pub write_seconds: HistogramSnapshot,
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
            write_seconds: self.write_seconds.snapshot(),
        }
    }
}

/// One URL pattern found to be a crawler trap, with its counts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrapReport {
    /// The generalised URL (`host/calendar?d=*`, `host/search?…` for a
    /// family of query keys).
    pub pattern: String,
    /// Pages of the pattern fetched.
    pub pages: u64,
    /// Of them, duplicates or near-duplicates of earlier pages.
    pub duplicates: u64,
    /// New links its pages added to the frontier.
    pub new_links: u64,
    /// Links of the pattern not followed once it was trapped.
    pub blocked_links: u64,
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
    #[serde(default)]
    pub near_duplicate_changes: u64,
    #[serde(default)]
    pub changed: u64,
    #[serde(default)]
    pub duplicate_pages: u64,
    #[serde(default)]
    pub near_duplicate_pages: u64,
    #[serde(default)]
    pub trap_blocked: u64,
    /// Crawler traps found: one entry per trapped URL pattern.
    #[serde(default)]
    pub traps: Vec<TrapReport>,
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
    /// Pages per final status class (`2xx`, …, `none`), non-zero ones.
    #[serde(default)]
    pub pages_by_class: BTreeMap<String, u64>,
    #[serde(default)]
    pub bytes_by_class: BTreeMap<String, u64>,
    /// HTTP exchanges per status class.
    #[serde(default)]
    pub responses_by_class: BTreeMap<String, u64>,
    #[serde(default)]
    pub fetch_seconds: HistogramSnapshot,
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The stage queues' depths.
    #[serde(default)]
    pub queues: Vec<QueueDepth>,
    /// The hosts with the highest mean latency, slowest first.
    #[serde(default)]
    pub slowest_hosts: Vec<HostLatency>,
}

fn by_class(counters: &[AtomicU64; 6]) -> BTreeMap<String, u64> {
    STATUS_CLASSES
        .iter()
        .zip(counters)
        .map(|(class, n)| (class.to_string(), n.load(Relaxed)))
        .filter(|&(_, n)| n > 0)
        .collect()
}

fn add_maps(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (key, n) in from {
        *into.entry(key.clone()).or_default() += n;
    }
}

impl StatsSnapshot {
    /// Add another process's or job's snapshot to this one: counters and
    /// gauges summed, sinks and queues matched by name, hosts merged.
    /// Rates are recomputed from the summed pages over the longer elapsed
    /// time; the proxies' and renderer's tables are kept from `self`, or
    /// taken from `other` when `self` has none.
    pub fn absorb(&mut self, other: &StatsSnapshot) {
        macro_rules! sum {
            ($($field:ident),*) => { $( self.$field += other.$field; )* };
        }
        sum!(
            pages,
            pages_ok,
            errors,
            bytes,
            in_flight,
            cpu_busy,
            cpu_workers,
            requests,
            retries,
            redirects,
            truncated,
            robots_denied,
            filtered,
            duplicates,
            items_written,
            unchanged,
            near_duplicate_changes,
            changed,
            duplicate_pages,
            near_duplicate_pages,
            trap_blocked,
            item_errors,
            items_dropped,
            queued,
            leased,
            bans,
            proxy_failures,
            rotations,
            proxy_waits,
            rate_limited,
            pace_waits,
            latency_climbs,
            rendered,
            render_busy,
            render_tabs
        );
        self.elapsed_secs = self.elapsed_secs.max(other.elapsed_secs);
        self.pages_per_sec = if self.elapsed_secs > 0.0 {
            self.pages as f64 / self.elapsed_secs
        } else {
            0.0
        };
        self.interrupted |= other.interrupted;
        self.output_closed |= other.output_closed;
        for trap in &other.traps {
            match self.traps.iter_mut().find(|t| t.pattern == trap.pattern) {
                Some(mine) => {
                    mine.pages += trap.pages;
                    mine.duplicates += trap.duplicates;
                    mine.new_links += trap.new_links;
                    mine.blocked_links += trap.blocked_links;
                }
                None => self.traps.push(trap.clone()),
            }
        }
        for sink in &other.sinks {
            match self.sinks.iter_mut().find(|s| s.name == sink.name) {
                Some(mine) => {
                    mine.items += sink.items;
                    mine.bytes += sink.bytes;
                    mine.batches += sink.batches;
                    mine.retries += sink.retries;
                    mine.failed_batches += sink.failed_batches;
                    mine.dead_lettered += sink.dead_lettered;
                    mine.queue_depth += sink.queue_depth;
                    mine.queue_capacity += sink.queue_capacity;
                    mine.write_seconds.absorb(&sink.write_seconds);
                }
                None => self.sinks.push(sink.clone()),
            }
        }
        if self.proxies.is_none() {
            self.proxies = other.proxies.clone();
        }
        if self.render.is_none() {
            self.render = other.render.clone();
        }
        add_maps(&mut self.pages_by_class, &other.pages_by_class);
        add_maps(&mut self.bytes_by_class, &other.bytes_by_class);
        add_maps(&mut self.responses_by_class, &other.responses_by_class);
        add_maps(&mut self.errors_by_kind, &other.errors_by_kind);
        self.fetch_seconds.absorb(&other.fetch_seconds);
        for queue in &other.queues {
            match self.queues.iter_mut().find(|q| q.name == queue.name) {
                Some(mine) => {
                    mine.depth += queue.depth;
                    mine.capacity += queue.capacity;
                }
                None => self.queues.push(queue.clone()),
            }
        }
        let mut hosts = std::mem::take(&mut self.slowest_hosts);
        for host in &other.slowest_hosts {
            match hosts.iter_mut().find(|h| h.host == host.host) {
                Some(mine) => {
                    mine.requests += host.requests;
                    mine.failures += host.failures;
                    mine.seconds += host.seconds;
                }
                None => hosts.push(host.clone()),
            }
        }
        self.slowest_hosts = crate::host_latency::slowest(hosts, SLOWEST_HOSTS);
    }
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
            near_duplicate_changes: self.near_duplicate_changes.load(Relaxed),
            changed: self.changed.load(Relaxed),
            duplicate_pages: self.duplicate_pages.load(Relaxed),
            near_duplicate_pages: self.near_duplicate_pages.load(Relaxed),
            trap_blocked: self.trap_blocked.load(Relaxed),
            traps: self.traps.lock().clone(),
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
            pages_by_class: by_class(&self.pages_by_class),
            bytes_by_class: by_class(&self.bytes_by_class),
            responses_by_class: by_class(&self.responses_by_class),
            fetch_seconds: self.fetch_seconds.snapshot(),
            errors_by_kind: self
                .errors_by_kind
                .lock()
                .iter()
                .map(|(kind, n)| (kind.to_string(), *n))
                .collect(),
            queues: self
                .queues
                .lock()
                .iter()
                .filter_map(|q| {
                    let (depth, capacity) = (q.depth)()?;
                    Some(QueueDepth {
                        name: q.name.to_string(),
                        depth,
                        capacity,
                    })
                })
                .collect(),
            slowest_hosts: self.hosts.slowest(SLOWEST_HOSTS),
        }
    }

    /// Count one page (item) with its final status and body size.
    pub fn page_done(&self, status: Option<u16>, bytes: u64) {
        let class = status_class(status);
        self.pages_by_class[class].fetch_add(1, Relaxed);
        self.bytes_by_class[class].fetch_add(bytes, Relaxed);
    }

    /// Count one HTTP exchange with `host`: its answer's status (`None`:
    /// none came) and how long it took.
    pub fn exchange_done(&self, host: &str, status: Option<u16>, took: std::time::Duration) {
        self.responses_by_class[status_class(status)].fetch_add(1, Relaxed);
        self.fetch_seconds.observe(took);
        self.hosts.record(host, took, status.is_none());
    }

    /// Count one failed page of `kind`.
    pub fn error_kind(&self, kind: &'static str) {
        *self.errors_by_kind.lock().entry(kind).or_default() += 1;
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
