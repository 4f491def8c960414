//! Per-host download slots: concurrency limit and delay.
//!
//! Like Scrapy's downloader slots, one per host (and port). A slot is a
//! semaphore with `per_host` permits plus the earliest instant the next
//! request may start; each acquisition moves that instant forward by the
//! host's delay, so requests to a host start at most once per delay however
//! many tasks want it. (`Retry-After` is per exit × host: see [`crate::pacing`].)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

struct Slot {
    /// Limits concurrent requests to the host.
    permits: Arc<Semaphore>,
    /// Earliest start of the next request, and the delay between starts.
    timing: Mutex<(Instant, Duration)>,
    /// The lowest delay allowed (configured delay, robots.txt Crawl-delay):
    /// AutoThrottle moves the delay above it, never below.
    floor: Mutex<Duration>,
}

/// All hosts' slots.
pub struct Slots {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    per_host: usize,
    delay: Duration,
}

impl Slots {
    pub fn new(per_host: usize, delay: Duration) -> Self {
        Slots {
            slots: Mutex::new(HashMap::new()),
            per_host: per_host.max(1),
            delay,
        }
    }

    fn slot(&self, host: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock();
        slots
            .entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    permits: Arc::new(Semaphore::new(self.per_host)),
                    timing: Mutex::new((Instant::now(), self.delay)),
                    floor: Mutex::new(self.delay),
                })
            })
            .clone()
    }

    /// Wait for a free connection to `host` and for its delay to pass.
    /// Hold the permit until the response body is read.
    pub async fn acquire(&self, host: &str) -> OwnedSemaphorePermit {
        let slot = self.slot(host);
        let permit = slot
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("download slot semaphores are never closed");
        let start = {
            let mut timing = slot.timing.lock();
            let now = Instant::now();
            let start = timing.0.max(now);
            timing.0 = start + timing.1;
            start
        };
        tokio::time::sleep_until(start).await;
        permit
    }

    /// Raise the delay between request starts on `host` (e.g. to the
    /// robots.txt Crawl-delay); never lowers it.
    pub fn set_min_delay(&self, host: &str, delay: Duration) {
        let slot = self.slot(host);
        let mut floor = slot.floor.lock();
        *floor = floor.max(delay);
        let mut timing = slot.timing.lock();
        timing.1 = timing.1.max(delay);
    }

    /// Set the delay on `host` (AutoThrottle), but not below its floor
    /// (the configured delay and robots.txt Crawl-delay).
    pub fn set_delay(&self, host: &str, delay: Duration) {
        let slot = self.slot(host);
        let floor = *slot.floor.lock();
        slot.timing.lock().1 = delay.max(floor);
    }

    /// The delay in force for `host`.
    pub fn delay(&self, host: &str) -> Duration {
        self.slot(host).timing.lock().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn delay_spaces_request_starts() {
        let slots = Arc::new(Slots::new(4, Duration::from_secs(2)));
        let t0 = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..3 {
            let _p = slots.acquire("h").await;
            starts.push(Instant::now() - t0);
        }
        assert_eq!(
            starts,
            vec![
                Duration::ZERO,
                Duration::from_secs(2),
                Duration::from_secs(4)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn per_host_limit_holds() {
        let slots = Arc::new(Slots::new(2, Duration::ZERO));
        let a = slots.acquire("h").await;
        let _b = slots.acquire("h").await;
        let s2 = slots.clone();
        let third = tokio::spawn(async move { s2.acquire("h").await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!third.is_finished());
        // Another host is not blocked.
        let _other = slots.acquire("other").await;
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn set_delay_moves_above_the_floor_only() {
        let slots = Slots::new(1, Duration::from_millis(100));
        slots.set_delay("h", Duration::from_secs(3));
        assert_eq!(slots.delay("h"), Duration::from_secs(3));
        slots.set_delay("h", Duration::from_millis(10));
        assert_eq!(slots.delay("h"), Duration::from_millis(100));
        slots.set_min_delay("h", Duration::from_secs(1));
        slots.set_delay("h", Duration::from_millis(10));
        assert_eq!(slots.delay("h"), Duration::from_secs(1));
    }
}
