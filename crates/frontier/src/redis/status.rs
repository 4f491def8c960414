//! What [`RedisFrontier::status`](super::RedisFrontier::status) reports: the
//! shared crawl's queue sizes, counters and live workers, for a progress line
//! or a `trawl status` command.

use std::time::Duration;

use trawl_core::FrontierStats;

/// A snapshot of one distributed crawl, taken atomically on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CrawlStatus {
    /// The crawl name (the key prefix's hash tag).
    pub crawl: String,
    /// The Redis server's clock at the snapshot, ms since the Unix epoch.
    pub server_time_ms: u64,
    /// Queued, leased, seen, hosts (as [`Frontier::stats`](trawl_core::Frontier::stats)).
    pub frontier: FrontierStats,
    /// Hosts with queued work below the per-host limit (possibly waiting
    /// for their delay).
    pub ready_hosts: u64,
    /// Hosts with queued work and every lease slot taken.
    pub full_hosts: u64,
    /// Leases past their expiry that no call has reclaimed yet.
    pub expired_leases: u64,
    /// Leases returned to the queue after expiring, over the whole crawl.
    pub reclaimed: u64,
    /// Pages done, summed over workers ([`RedisFrontier::record_done`](super::RedisFrontier::record_done)).
    pub pages: u64,
    /// Errors, summed over workers.
    pub errors: u64,
    /// Workers whose last heartbeat is within one lease timeout.
    pub workers: Vec<WorkerStatus>,
    /// Workers seen before but silent for longer than one lease timeout.
    pub dead_workers: u64,
}

/// One live worker of a crawl.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerStatus {
    pub id: String,
    /// First heartbeat, server clock, ms since the Unix epoch.
    pub started_ms: u64,
    /// Last heartbeat, server clock, ms since the Unix epoch.
    pub last_seen_ms: u64,
    /// Pages this worker reported done.
    pub pages: u64,
    /// Errors this worker reported.
    pub errors: u64,
    /// Leases it holds right now.
    pub leases: u64,
}

impl WorkerStatus {
    /// How long ago the worker last sent a heartbeat, at `now_ms`.
    pub fn silent_for(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.last_seen_ms))
    }

    /// Average pages per second between its first and last heartbeat.
    pub fn pages_per_sec(&self) -> f64 {
        let secs = self.last_seen_ms.saturating_sub(self.started_ms) as f64 / 1000.0;
        if secs > 0.0 {
            self.pages as f64 / secs
        } else {
            0.0
        }
    }
}
