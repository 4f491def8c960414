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
    /// Every shard's own figures (one row for an unsharded crawl).
    pub shards: Vec<ShardStatus>,
}

/// One shard of a crawl.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShardStatus {
    /// `trawl:{TAG}:`.
    pub prefix: String,
    /// Queued, leased, seen, hosts of this shard.
    pub frontier: FrontierStats,
    pub ready_hosts: u64,
    pub full_hosts: u64,
    pub expired_leases: u64,
    pub reclaimed: u64,
    /// Why the shard did not answer (its figures are then zero).
    pub error: Option<String>,
}

/// What the `STATUS` script returns: the scalars, the live workers
/// registered under the prefix, and `(worker, leases)` outstanding there.
pub(super) type Raw = (
    Vec<u64>,
    Vec<(String, u64, u64, u64, u64)>,
    Vec<(String, u64)>,
);

/// One crawl status from the home row (workers, page counters) and every
/// shard's row.
pub(super) fn assemble(
    crawl: &str,
    home: Raw,
    shards: Vec<(String, Result<Raw, ::redis::RedisError>)>,
) -> CrawlStatus {
    let (home_scalars, home_workers, _) = home;
    let at = |s: &[u64], i: usize| s.get(i).copied().unwrap_or(0);
    let mut st = CrawlStatus {
        crawl: crawl.to_string(),
        server_time_ms: at(&home_scalars, 0) / 1000,
        pages: at(&home_scalars, 9),
        errors: at(&home_scalars, 10),
        dead_workers: at(&home_scalars, 11),
        ..CrawlStatus::default()
    };
    let mut leases: std::collections::HashMap<String, u64> = Default::default();
    for (prefix, row) in shards {
        let (s, _, per) = match row {
            Ok(raw) => raw,
            Err(e) => {
                st.shards.push(ShardStatus {
                    prefix,
                    error: Some(e.to_string()),
                    ..ShardStatus::default()
                });
                continue;
            }
        };
        for (worker, n) in per {
            *leases.entry(worker).or_default() += n;
        }
        let row = ShardStatus {
            prefix,
            frontier: FrontierStats {
                queued: at(&s, 1),
                leased: at(&s, 2),
                seen: at(&s, 3),
                hosts: at(&s, 4),
            },
            ready_hosts: at(&s, 5),
            full_hosts: at(&s, 6),
            expired_leases: at(&s, 7),
            reclaimed: at(&s, 8),
            error: None,
        };
        st.frontier.queued += row.frontier.queued;
        st.frontier.leased += row.frontier.leased;
        st.frontier.seen += row.frontier.seen;
        st.frontier.hosts += row.frontier.hosts;
        st.ready_hosts += row.ready_hosts;
        st.full_hosts += row.full_hosts;
        st.expired_leases += row.expired_leases;
        st.reclaimed += row.reclaimed;
        st.shards.push(row);
    }
    st.workers = home_workers
        .into_iter()
        .map(|(id, started, seen, pages, errors)| WorkerStatus {
            leases: leases.get(&id).copied().unwrap_or(0),
            id,
            started_ms: started / 1000,
            last_seen_ms: seen / 1000,
            pages,
            errors,
        })
        .collect();
    st
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
