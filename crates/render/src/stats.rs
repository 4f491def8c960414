//! What the renderer did: tabs busy, pages rendered and failed, render
//! times (percentiles over the last pages), browser restarts and memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{RenderError, Rendered};

/// How many recent render times the percentiles look at.
const WINDOW: usize = 4096;

pub struct RenderStats {
    pub tabs: u64,
    pub busy: AtomicU64,
    pub rendered: AtomicU64,
    pub failed: AtomicU64,
    pub timeouts: AtomicU64,
    pub crashes: AtomicU64,
    pub restarts: AtomicU64,
    pub subrequests: AtomicU64,
    pub blocked: AtomicU64,
    pub browser_rss: AtomicU64,
    pub browser_peak_rss: AtomicU64,
    /// Total render time of the pages rendered, ms.
    pub render_ms: AtomicU64,
    times: parking_lot::Mutex<Times>,
    started: Instant,
}

struct Times {
    ring: Vec<u32>,
    next: usize,
}

/// A copy of [`RenderStats`] for reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenderStatsSnapshot {
    pub tabs: u64,
    pub busy: u64,
    pub rendered: u64,
    pub failed: u64,
    pub timeouts: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub requests: u64,
    pub blocked: u64,
    pub rendered_per_sec: f64,
    pub p50_ms: u32,
    pub p90_ms: u32,
    pub p99_ms: u32,
    pub browser_rss_mb: u64,
    pub browser_peak_rss_mb: u64,
}

impl RenderStats {
    pub fn new(tabs: usize) -> RenderStats {
        RenderStats {
            tabs: tabs as u64,
            busy: AtomicU64::new(0),
            rendered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            crashes: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            subrequests: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            browser_rss: AtomicU64::new(0),
            browser_peak_rss: AtomicU64::new(0),
            render_ms: AtomicU64::new(0),
            times: parking_lot::Mutex::new(Times {
                ring: Vec::new(),
                next: 0,
            }),
            started: Instant::now(),
        }
    }

    pub(crate) fn record(&self, result: &Result<Rendered, RenderError>, took: Duration) {
        match result {
            Ok(r) => {
                self.rendered.fetch_add(1, Ordering::Relaxed);
                self.subrequests
                    .fetch_add(u64::from(r.requests), Ordering::Relaxed);
                self.blocked
                    .fetch_add(u64::from(r.blocked), Ordering::Relaxed);
                let ms = took.as_millis().min(u128::from(u32::MAX)) as u32;
                self.render_ms.fetch_add(u64::from(ms), Ordering::Relaxed);
                let mut t = self.times.lock();
                if t.ring.len() < WINDOW {
                    t.ring.push(ms);
                } else {
                    let at = t.next;
                    t.ring[at] = ms;
                }
                t.next = (t.next + 1) % WINDOW;
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if matches!(e, RenderError::Timeout(_)) {
                    self.timeouts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    pub fn snapshot(&self) -> RenderStatsSnapshot {
        let mut times = self.times.lock().ring.clone();
        times.sort_unstable();
        let pct = |p: f64| -> u32 {
            if times.is_empty() {
                return 0;
            }
            let i = ((times.len() as f64 - 1.0) * p).round() as usize;
            times[i.min(times.len() - 1)]
        };
        let rendered = self.rendered.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        RenderStatsSnapshot {
            tabs: self.tabs,
            busy: self.busy.load(Ordering::Relaxed),
            rendered,
            failed: self.failed.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            crashes: self.crashes.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            requests: self.subrequests.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
            rendered_per_sec: rendered as f64 / secs,
            p50_ms: pct(0.5),
            p90_ms: pct(0.9),
            p99_ms: pct(0.99),
            browser_rss_mb: self.browser_rss.load(Ordering::Relaxed) >> 20,
            browser_peak_rss_mb: self.browser_peak_rss.load(Ordering::Relaxed) >> 20,
        }
    }

    /// The snapshot as JSON, for the crawl's stats.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.snapshot()).unwrap_or_else(|_| json!({}))
    }
}
