//! A lock-free latency histogram with fixed buckets, cheap enough to bump
//! on every request, and its serialisable snapshot (which can be summed over
//! workers or jobs and rendered as a Prometheus histogram).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets: from a loopback answer to
/// a minute-long stall.
pub const LATENCY_BOUNDS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Counts of durations per bucket, plus their sum and number.
#[derive(Debug)]
pub struct Histogram {
    /// One counter per bound, and one past the last (`+Inf`).
    counts: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = LATENCY_BOUNDS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(took.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
        }
    }
}

/// Per-bucket counts (not cumulative; the last is past every bound) and
/// the sum of the observed durations.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistogramSnapshot {
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last, as
    /// Prometheus wants them.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        LATENCY_BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .enumerate()
            .map(|(i, bound)| {
                total += self.counts.get(i).copied().unwrap_or(0);
                (bound, total)
            })
            .collect()
    }

    /// `(upper bound, count)` per bucket, not cumulative, `+Inf` last.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        LATENCY_BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .enumerate()
            .map(|(i, bound)| (bound, self.counts.get(i).copied().unwrap_or(0)))
            .collect()
    }

    /// The bound below which `q` (0..=1) of the observations fall: an
    /// upper estimate, as Prometheus's `histogram_quantile` gives.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = (q * count as f64).ceil().max(1.0) as u64;
        self.cumulative()
            .into_iter()
            .find(|&(_, below)| below >= rank)
            .map(|(bound, _)| bound)
    }

    pub fn absorb(&mut self, other: &HistogramSnapshot) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum_seconds += other.sum_seconds;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sum_and_quantiles() {
        let h = Histogram::default();
        for ms in [0, 3, 3, 40, 200, 90_000] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 6);
        assert!((s.sum_seconds - 90.246).abs() < 1e-9, "{}", s.sum_seconds);
        let cumulative = s.cumulative();
        assert_eq!(cumulative[0], (0.001, 1));
        assert_eq!(cumulative[1], (0.005, 3));
        assert_eq!(cumulative[4], (0.05, 4));
        assert_eq!(cumulative.last(), Some(&(f64::INFINITY, 6)));
        assert_eq!(cumulative[cumulative.len() - 2], (60.0, 5));
        assert_eq!(s.quantile(0.5), Some(0.005));
        assert_eq!(s.quantile(1.0), Some(f64::INFINITY));
        let mut sum = s.clone();
        sum.absorb(&s);
        assert_eq!(sum.count(), 12);
        assert_eq!(HistogramSnapshot::default().quantile(0.5), None);
    }
}
