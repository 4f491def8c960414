//! Per-host request counts and latency, for the "slowest hosts" view.
//!
//! Bounded: past [`MAX_HOSTS`] distinct hosts, new hosts are counted under
//! one `(other)` row, so a broad crawl cannot grow it without limit.

use std::collections::HashMap;
use std::time::Duration;

/// Distinct hosts tracked before the rest share the `(other)` row.
pub const MAX_HOSTS: usize = 10_000;
/// The row that counts hosts past [`MAX_HOSTS`].
pub const OTHER_HOSTS: &str = "(other)";

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    requests: u64,
    failures: u64,
    seconds: f64,
}

/// Requests, failures and time spent per host.
#[derive(Debug, Default)]
pub struct HostLatencies {
    hosts: parking_lot::Mutex<HashMap<String, Totals>>,
}

/// One host's row in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostLatency {
    pub host: String,
    pub requests: u64,
    /// Requests that got no answer (connect, reset, timeout).
    pub failures: u64,
    /// Time spent on its requests, summed.
    pub seconds: f64,
}

impl HostLatency {
    pub fn mean_seconds(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.seconds / self.requests as f64
        }
    }
}

impl HostLatencies {
    pub fn record(&self, host: &str, took: Duration, failed: bool) {
        let mut hosts = self.hosts.lock();
        let key = if hosts.contains_key(host) || hosts.len() < MAX_HOSTS {
            host
        } else {
            OTHER_HOSTS
        };
        let row = match hosts.get_mut(key) {
            Some(row) => row,
            None => hosts.entry(key.to_string()).or_default(),
        };
        row.requests += 1;
        row.failures += u64::from(failed);
        row.seconds += took.as_secs_f64();
    }

    /// The `n` hosts with the highest mean latency, slowest first.
    pub fn slowest(&self, n: usize) -> Vec<HostLatency> {
        let rows: Vec<HostLatency> = self
            .hosts
            .lock()
            .iter()
            .map(|(host, t)| HostLatency {
                host: host.clone(),
                requests: t.requests,
                failures: t.failures,
                seconds: t.seconds,
            })
            .collect();
        slowest(rows, n)
    }
}

/// Sort rows slowest (highest mean) first, ties by host, and keep `n`.
pub fn slowest(mut rows: Vec<HostLatency>, n: usize) -> Vec<HostLatency> {
    rows.sort_by(|a, b| {
        b.mean_seconds()
            .total_cmp(&a.mean_seconds())
            .then_with(|| a.host.cmp(&b.host))
    });
    rows.truncate(n);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowest_first_and_bounded() {
        let table = HostLatencies::default();
        table.record("fast", Duration::from_millis(10), false);
        table.record("slow", Duration::from_millis(500), false);
        table.record("slow", Duration::from_millis(300), true);
        let rows = table.slowest(5);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].host, "slow");
        assert_eq!((rows[0].requests, rows[0].failures), (2, 1));
        assert!((rows[0].mean_seconds() - 0.4).abs() < 1e-9);
        assert_eq!(table.slowest(1).len(), 1);

        let many = HostLatencies::default();
        for i in 0..MAX_HOSTS + 5 {
            many.record(&format!("h{i}"), Duration::from_millis(1), false);
        }
        let rows = many.slowest(usize::MAX);
        assert_eq!(rows.len(), MAX_HOSTS + 1);
        let other = rows.iter().find(|r| r.host == OTHER_HOSTS);
        assert_eq!(other.map(|r| r.requests), Some(5));
    }
}
