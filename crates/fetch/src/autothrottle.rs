//! AutoThrottle: a per-host delay that follows the server's latency.
//!
//! Scrapy's AutoThrottle extension, adapted. The idea: a server that answers
//! in `latency` can serve about `target_concurrency` of our requests at once
//! if we start one every `latency / target_concurrency`. So after every
//! response from a host, with `old` that host's delay:
//!
//! ```text
//! target = latency / target_concurrency
//! new    = max(target, (old + target) / 2)
//! ```
//!
//! A rise in latency lifts the delay to the new target at once; a fall lowers
//! it half-way per response, so it converges geometrically (the gap to the
//! target halves each response) without jumping on one fast answer. Then:
//!
//! - **Errors and non-2xx/3xx responses never lower the delay** (Scrapy:
//!   "non-200 responses may not decrease it"). A 404 or a reset answered in
//!   2 ms says nothing about the server's capacity; a slow timeout still
//!   raises it.
//! - **429 and 503 back off**: the delay becomes at least
//!   `max(old * backoff_factor, start_delay)`. These are the server asking us
//!   to slow down (rate limit, overload, often a ban warning), and a delay
//!   of zero times anything is still zero, hence the `start_delay` floor.
//!   Successes afterwards halve the gap back toward the latency target, so a
//!   host recovers geometrically instead of staying throttled for good.
//! - **Bounds**: the result is clamped to `[min_delay, max_delay]`.
//!   `min_delay` is the configured `--delay`: the throttle may slow a crawl
//!   down, never speed it past what the user asked.
//!
//! A host's delay starts at `start_delay` (raised to `min_delay`). Scrapy's
//! default is 5 s; ours is 1 s. The per-host slots already cap concurrency
//! per host (two requests by default) and robots.txt `Crawl-delay` is obeyed
//! separately, so the start value only has to be polite for the first few
//! responses, before there is any latency to learn from. One request a second
//! is the conventional polite rate, and since the delay halves its way down,
//! the time spent on the way is about `2 * start_delay`: 2 s per host instead
//! of 10 s, which on a crawl of many small sites is most of the run.
//!
//! Differences from Scrapy: the 429/503 back-off (Scrapy leaves bans to its
//! retry middleware), errors counted as non-success responses, and a
//! smoothed latency kept per host for display ([`AutoThrottle::snapshot`]).
//!
//! This module is pure logic: it computes delays and does not sleep. The
//! caller applies the returned delay to the host's download slot.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Weight of the newest sample in the displayed latency average.
const LATENCY_EWMA_ALPHA: f64 = 0.3;

/// AutoThrottle settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoThrottleConfig {
    /// Requests the server should be handling from us at once, on average.
    /// Not finite or not above zero: the default, 2.0.
    pub target_concurrency: f64,
    /// A host's delay before its first response (raised to `min_delay`).
    pub start_delay: Duration,
    /// Floor of every delay: the configured `--delay`.
    pub min_delay: Duration,
    /// Ceiling of every delay (raised to `min_delay` if below it).
    pub max_delay: Duration,
    /// On 429 or 503 the delay is multiplied by this. Not finite or below
    /// 1.0: 1.0 (the `start_delay` floor still applies).
    pub backoff_factor: f64,
}

impl Default for AutoThrottleConfig {
    fn default() -> Self {
        AutoThrottleConfig {
            target_concurrency: 2.0,
            start_delay: Duration::from_secs(1),
            min_delay: Duration::ZERO,
            max_delay: Duration::from_secs(60),
            backoff_factor: 2.0,
        }
    }
}

impl AutoThrottleConfig {
    /// The same settings with nonsense values replaced (see the fields).
    fn sanitized(mut self) -> Self {
        if !(self.target_concurrency.is_finite() && self.target_concurrency > 0.0) {
            self.target_concurrency = AutoThrottleConfig::default().target_concurrency;
        }
        if !(self.backoff_factor.is_finite() && self.backoff_factor >= 1.0) {
            self.backoff_factor = 1.0;
        }
        self.max_delay = self.max_delay.max(self.min_delay);
        self.start_delay = self.start_delay.clamp(self.min_delay, self.max_delay);
        self
    }
}

/// One host's throttle state, as shown to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostThrottle {
    pub host: String,
    /// The delay in force between request starts.
    pub delay: Duration,
    /// Exponentially weighted average of the latency of the host's
    /// responses (errors excluded); zero before the first response.
    pub latency: Duration,
    /// Responses (not errors) seen from the host.
    pub responses: u64,
}

struct HostState {
    delay: Duration,
    latency: Option<Duration>,
    responses: u64,
    last_seen: Instant,
}

/// Per-host delays adjusted from response latencies. Shared by all download
/// tasks; each call holds the lock only for a little arithmetic.
pub struct AutoThrottle {
    cfg: AutoThrottleConfig,
    hosts: Mutex<HashMap<String, HostState>>,
}

impl AutoThrottle {
    pub fn new(cfg: AutoThrottleConfig) -> Self {
        AutoThrottle {
            cfg: cfg.sanitized(),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The settings in force (after sanitizing).
    pub fn config(&self) -> &AutoThrottleConfig {
        &self.cfg
    }

    /// Account for one exchange with `host` that took `latency` (request
    /// sent to response headers, or to the failure) and ended with `status`
    /// (`None` for an error without a response). Returns the host's new
    /// delay.
    pub fn on_response(
        &self,
        host: &str,
        latency: Duration,
        status: Option<u16>,
        now: Instant,
    ) -> Duration {
        let cfg = &self.cfg;
        let mut hosts = self.hosts.lock();
        let state = hosts.entry(host.to_string()).or_insert_with(|| HostState {
            delay: cfg.start_delay,
            latency: None,
            responses: 0,
            last_seen: now,
        });
        state.last_seen = now;
        if status.is_some() {
            state.responses += 1;
            state.latency = Some(match state.latency {
                None => latency,
                Some(avg) => secs(
                    avg.as_secs_f64() * (1.0 - LATENCY_EWMA_ALPHA)
                        + latency.as_secs_f64() * LATENCY_EWMA_ALPHA,
                ),
            });
        }

        let old = state.delay;
        let target = secs(latency.as_secs_f64() / cfg.target_concurrency);
        let mut new = target.max(old.saturating_add(target) / 2);
        match status {
            Some(429 | 503) => {
                let backed_off = secs(old.as_secs_f64() * cfg.backoff_factor);
                new = new.max(backed_off).max(cfg.start_delay);
            }
            Some(200..=399) => {}
            // Other statuses and errors may raise the delay, never lower it.
            _ => new = new.max(old),
        }
        state.delay = new.clamp(cfg.min_delay, cfg.max_delay);
        state.delay
    }

    /// The delay in force for `host`: `start_delay` for a host not seen yet.
    pub fn delay(&self, host: &str) -> Duration {
        self.hosts
            .lock()
            .get(host)
            .map_or(self.cfg.start_delay, |s| s.delay)
    }

    /// Every known host's state, sorted by host.
    pub fn snapshot(&self) -> Vec<HostThrottle> {
        let mut all: Vec<HostThrottle> = self
            .hosts
            .lock()
            .iter()
            .map(|(host, s)| HostThrottle {
                host: host.clone(),
                delay: s.delay,
                latency: s.latency.unwrap_or(Duration::ZERO),
                responses: s.responses,
            })
            .collect();
        all.sort_by(|a, b| a.host.cmp(&b.host));
        all
    }

    /// Drop the state of hosts not heard from for `idle` or longer (they
    /// start again from `start_delay`), so a crawl over millions of hosts
    /// does not keep them all. Returns how many were dropped.
    pub fn forget_idle(&self, now: Instant, idle: Duration) -> usize {
        let mut hosts = self.hosts.lock();
        let before = hosts.len();
        hosts.retain(|_, s| now.saturating_duration_since(s.last_seen) < idle);
        before - hosts.len()
    }
}

/// Seconds to a duration, saturating (never panics on huge values).
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(if s > 0.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) <= ms(1)
    }

    /// `n` responses with the same latency and status; the last delay.
    fn feed(
        t: &AutoThrottle,
        host: &str,
        n: usize,
        latency: Duration,
        status: Option<u16>,
    ) -> Duration {
        let mut d = t.delay(host);
        for _ in 0..n {
            d = t.on_response(host, latency, status, Instant::now());
        }
        d
    }

    #[test]
    fn starts_at_start_delay_raised_to_min() {
        let t = AutoThrottle::new(AutoThrottleConfig::default());
        assert_eq!(t.delay("new.example"), Duration::from_secs(1));
        let t = AutoThrottle::new(AutoThrottleConfig {
            min_delay: Duration::from_secs(3),
            ..AutoThrottleConfig::default()
        });
        assert_eq!(t.delay("new.example"), Duration::from_secs(3));
    }

    #[test]
    fn converges_to_latency_over_target_concurrency() {
        let t = AutoThrottle::new(AutoThrottleConfig::default());
        let mut prev = t.delay("h");
        for _ in 0..20 {
            let d = t.on_response("h", ms(200), Some(200), Instant::now());
            assert!(d <= prev, "{d:?} > {prev:?}");
            prev = d;
        }
        // 200 ms / 2.0; the gap from the 1 s start halved 20 times.
        assert!(close(prev, ms(100)), "{prev:?}");
        // Steady state is a fixed point.
        assert!(close(feed(&t, "h", 5, ms(200), Some(200)), ms(100)));
        let snap = t.snapshot();
        assert_eq!(snap.len(), 1);
        assert!(close(snap[0].latency, ms(200)), "{snap:?}");
        assert_eq!(snap[0].responses, 25);
    }

    #[test]
    fn one_response_moves_the_delay_half_way_down() {
        let t = AutoThrottle::new(AutoThrottleConfig::default());
        let d = t.on_response("h", ms(200), Some(200), Instant::now());
        assert!(close(d, ms(550)), "{d:?}"); // (1000 + 100) / 2
    }

    #[test]
    fn latency_up_delay_up_at_once() {
        let t = AutoThrottle::new(AutoThrottleConfig::default());
        let low = feed(&t, "h", 20, ms(100), Some(200));
        assert!(close(low, ms(50)), "{low:?}");
        let high = t.on_response("h", Duration::from_secs(3), Some(200), Instant::now());
        assert!(close(high, ms(1500)), "{high:?}");
        // And back down when the server recovers.
        let d = t.on_response("h", ms(100), Some(200), Instant::now());
        assert!(d < high && d > low, "{d:?}");
    }

    #[test]
    fn too_many_requests_doubles_then_recovers() {
        let t = AutoThrottle::new(AutoThrottleConfig::default());
        let steady = feed(&t, "h", 30, Duration::from_secs(4), Some(200));
        assert!(close(steady, Duration::from_secs(2)), "{steady:?}");
        let d = t.on_response("h", Duration::from_secs(4), Some(429), Instant::now());
        assert!(close(d, Duration::from_secs(4)), "{d:?}");
        let d = t.on_response("h", Duration::from_secs(4), Some(503), Instant::now());
        assert!(close(d, Duration::from_secs(8)), "{d:?}");
        // Successes halve the gap to the 2 s target each time.
        let mut prev = d;
        let expected = [5000, 3500, 2750, 2375];
        for want in expected {
            let d = t.on_response("h", Duration::from_secs(4), Some(200), Instant::now());
            assert!(close(d, ms(want)), "{d:?} != {want} ms");
            assert!(d < prev);
            prev = d;
        }
        let back = feed(&t, "h", 20, Duration::from_secs(4), Some(200));
        assert!(close(back, Duration::from_secs(2)), "{back:?}");
    }

    #[test]
    fn back_off_from_zero_reaches_start_delay() {
        let t = AutoThrottle::new(AutoThrottleConfig::default());
        let fast = feed(&t, "h", 40, Duration::ZERO, Some(200));
        assert_eq!(fast, Duration::ZERO);
        let d = t.on_response("h", ms(5), Some(429), Instant::now());
        assert_eq!(d, Duration::from_secs(1));
        let d = t.on_response("h", ms(5), Some(429), Instant::now());
        assert_eq!(d, Duration::from_secs(2));
    }

    #[test]
    fn bounds_are_respected() {
        let t = AutoThrottle::new(AutoThrottleConfig {
            min_delay: ms(300),
            max_delay: Duration::from_secs(5),
            ..AutoThrottleConfig::default()
        });
        assert_eq!(feed(&t, "fast", 30, ms(10), Some(200)), ms(300));
        assert_eq!(
            t.on_response("slow", Duration::from_secs(100), Some(200), Instant::now()),
            Duration::from_secs(5)
        );
        assert_eq!(
            feed(&t, "banned", 10, ms(10), Some(429)),
            Duration::from_secs(5)
        );
        // Absurd inputs saturate instead of panicking.
        assert_eq!(
            t.on_response("huge", Duration::MAX, Some(200), Instant::now()),
            Duration::from_secs(5)
        );
        let t = AutoThrottle::new(AutoThrottleConfig {
            backoff_factor: 1e300,
            max_delay: Duration::MAX,
            ..AutoThrottleConfig::default()
        });
        let d = feed(&t, "h", 3, ms(10), Some(429));
        assert_eq!(d, Duration::MAX);
    }

    #[test]
    fn nonsense_settings_are_sanitized() {
        let t = AutoThrottle::new(AutoThrottleConfig {
            target_concurrency: 0.0,
            backoff_factor: f64::NAN,
            min_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(1),
            ..AutoThrottleConfig::default()
        });
        let cfg = t.config();
        assert_eq!(cfg.target_concurrency, 2.0);
        assert_eq!(cfg.backoff_factor, 1.0);
        assert_eq!(cfg.max_delay, Duration::from_secs(10));
        assert_eq!(cfg.start_delay, Duration::from_secs(10));
        let d = t.on_response("h", ms(100), Some(200), Instant::now());
        assert_eq!(d, Duration::from_secs(10));
    }

    #[test]
    fn errors_and_failures_never_lower_the_delay() {
        let t = AutoThrottle::new(AutoThrottleConfig::default());
        let start = t.delay("h");
        for status in [None, Some(404), Some(500), Some(403), Some(100)] {
            let d = t.on_response("h", ms(2), status, Instant::now());
            assert_eq!(d, start, "{status:?}");
        }
        // Only responses count toward the latency average.
        assert_eq!(t.snapshot()[0].responses, 4);
        // A slow failure (a timeout) raises it.
        let d = t.on_response("h", Duration::from_secs(30), None, Instant::now());
        assert_eq!(d, Duration::from_secs(15));
        // Redirects are successes and may lower it.
        let d = t.on_response("h", ms(2), Some(301), Instant::now());
        assert!(d < Duration::from_secs(15), "{d:?}");
    }

    #[test]
    fn hosts_are_independent() {
        let t = AutoThrottle::new(AutoThrottleConfig::default());
        feed(&t, "a.example", 4, ms(100), Some(429));
        let b = feed(&t, "b.example", 20, ms(100), Some(200));
        assert!(close(b, ms(50)), "{b:?}");
        assert_eq!(t.delay("a.example"), Duration::from_secs(16));
        assert_eq!(t.delay("c.example"), Duration::from_secs(1));
        let snap = t.snapshot();
        let hosts: Vec<&str> = snap.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(hosts, ["a.example", "b.example"]);
        assert_eq!(snap[0].delay, Duration::from_secs(16));
    }

    #[test]
    fn idle_hosts_are_forgotten() {
        let t = AutoThrottle::new(AutoThrottleConfig::default());
        let t0 = Instant::now();
        t.on_response("old", ms(10), Some(429), t0);
        t.on_response("new", ms(10), Some(429), t0 + Duration::from_secs(50));
        let now = t0 + Duration::from_secs(60);
        assert_eq!(t.forget_idle(now, Duration::from_secs(30)), 1);
        assert_eq!(t.delay("old"), Duration::from_secs(1));
        assert_eq!(t.delay("new"), Duration::from_secs(2));
        assert_eq!(t.snapshot().len(), 1);
    }
}
