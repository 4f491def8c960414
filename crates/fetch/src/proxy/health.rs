//! The health of one proxy: counters, cooldowns and retirement.
//!
//! Two kinds of cooldown, both with exponential back-off
//! `cooldown_base * 2^(n-1)` capped at `cooldown_max`:
//!
//! - per (proxy, host), after bans: `n` is the number of consecutive bans of
//!   the proxy on that host. Other hosts keep using the proxy;
//! - global, after proxy failures (`n` = consecutive failures; the proxy is
//!   retired for good after `retire_after` of them) or after
//!   `ban_retire_after` consecutive bans on any hosts (`n` counts the bans
//!   past that threshold): an IP that every site blocks is cooled for all.
//!
//! A cooldown ends by itself; the first success after it resets the
//! back-off. A retired proxy is tried again by one probe request every
//! `reprobe_after`; a success brings it back into service.
//!
//! A rate limit ([`Signal::RateLimited`]) is counted and nothing more: the
//! proxy works, and slowing it down for the host is the pacer's job
//! ([`crate::pacing`]), never a cooldown. Reports of requests that started before the last ban or failure
//! was recorded (concurrent requests failing together) still count in the
//! stats but neither lengthen a cooldown nor reset one: one outage is one
//! step of back-off however many requests were in flight.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::ban::Signal;

/// How proxies are cooled and retired.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// First cooldown; doubles with each consecutive ban or failure.
    pub cooldown_base: Duration,
    pub cooldown_max: Duration,
    /// Consecutive proxy failures after which a proxy is never used again
    /// (0: never).
    pub retire_after: u32,
    /// Consecutive bans (on any hosts) after which the proxy is cooled for
    /// every host (0: never).
    pub ban_retire_after: u32,
    /// Weight of the newest sample in the latency average (0..=1).
    pub latency_alpha: f64,
    /// Hosts remembered per proxy; past this, hosts neither cooling nor on a
    /// ban streak are forgotten (their per-host stats with them).
    pub max_hosts_per_proxy: usize,
    /// A retired proxy gets one probe request after this long (zero: never).
    pub reprobe_after: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            cooldown_base: Duration::from_secs(30),
            cooldown_max: Duration::from_secs(600),
            retire_after: 8,
            ban_retire_after: 5,
            latency_alpha: 0.3,
            max_hosts_per_proxy: 10_000,
            reprobe_after: Duration::from_secs(300),
        }
    }
}

impl HealthConfig {
    /// The `n`th (1-based) consecutive cooldown: `base * 2^(n-1)`, capped.
    pub fn cooldown(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(30);
        self.cooldown_base
            .saturating_mul(factor)
            .min(self.cooldown_max)
    }
}

/// How often requests waiting for a probe's answer look again.
pub(crate) const PROBE_POLL: Duration = Duration::from_millis(50);

/// One proxy on one host.
#[derive(Debug, Default, Clone)]
pub(crate) struct HostHealth {
    pub requests: u64,
    pub successes: u64,
    pub bans: u64,
    pub rate_limits: u64,
    /// Proxy and target failures seen on this host.
    pub failures: u64,
    pub consecutive_bans: u32,
    /// Failures to reach the site through this proxy since its last answer.
    pub consecutive_target_failures: u32,
    pub cooling_until: Option<Instant>,
    /// When the last counted ban was reported.
    pub last_ban_at: Option<Instant>,
}

impl HostHealth {
    pub fn cooling(&self, now: Instant) -> Option<Instant> {
        self.cooling_until.filter(|&until| until > now)
    }

    /// Worth keeping when the map is pruned.
    fn is_live(&self, now: Instant) -> bool {
        self.cooling(now).is_some() || self.consecutive_bans > 0
    }
}

/// What a report changed, for logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    HostCooled(Duration),
    Down(Duration),
    Retired,
}

/// One proxy's health and counters.
#[derive(Debug, Default, Clone)]
pub(crate) struct ProxyHealth {
    pub in_flight: u64,
    pub requests: u64,
    pub successes: u64,
    pub bans: u64,
    pub rate_limits: u64,
    /// Proxy failures.
    pub failures: u64,
    pub target_failures: u64,
    pub consecutive_failures: u32,
    pub consecutive_bans: u32,
    pub down_until: Option<Instant>,
    /// When the last counted ban (any host) was reported.
    pub last_ban_at: Option<Instant>,
    /// When the last counted failure or global-cooling ban was reported.
    pub last_down_at: Option<Instant>,
    pub retired: bool,
    /// When a retired proxy gets its next probe.
    pub reprobe_at: Option<Instant>,
    /// Taken out of the list by a reload: never used again.
    pub removed: bool,
    /// EWMA of successful exchanges' latency, in milliseconds.
    pub latency_ms: Option<f64>,
    pub hosts: HashMap<String, HostHealth>,
}

impl ProxyHealth {
    pub fn down(&self, now: Instant) -> Option<Instant> {
        self.down_until.filter(|&until| until > now)
    }

    /// When the proxy may next be used for `host`: `None` if now, the end of
    /// the longer of its global and per-host cooldowns otherwise. Retired
    /// proxies are never usable; check `retired` first.
    pub fn blocked_until(&self, host: &str, now: Instant) -> Option<Instant> {
        let host_until = self.hosts.get(host).and_then(|h| h.cooling(now));
        match (self.down(now), host_until) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (None, None) if self.probing(now) => Some(now + PROBE_POLL),
            (a, b) => a.or(b),
        }
    }

    /// Back from a cooldown after failing, with a request in flight: that
    /// request probes whether the proxy works again, and the others wait
    /// for its answer instead of all failing on it (a circuit breaker's
    /// half-open state). The first success ends it.
    pub fn probing(&self, now: Instant) -> bool {
        self.consecutive_failures > 0 && self.in_flight > 0 && self.down(now).is_none()
    }

    pub fn usable(&self, host: &str, now: Instant) -> bool {
        if self.removed {
            return false;
        }
        if self.retired {
            return self.reprobe_due(now);
        }
        self.blocked_until(host, now).is_none()
    }

    /// A retired proxy whose probe is due and not yet on its way.
    pub fn reprobe_due(&self, now: Instant) -> bool {
        self.retired
            && !self.removed
            && self.in_flight == 0
            && self.reprobe_at.is_some_and(|t| t <= now)
    }

    /// In service: neither retired nor removed.
    pub fn in_service(&self) -> bool {
        !self.retired && !self.removed
    }

    /// Hosts this proxy is cooling down for.
    pub fn cooling_hosts(&self, now: Instant) -> usize {
        self.hosts
            .values()
            .filter(|h| h.cooling(now).is_some())
            .count()
    }

    /// Record one exchange's outcome. `started` is when the request began.
    pub fn report(
        &mut self,
        config: &HealthConfig,
        host: &str,
        signal: &Signal,
        latency: Duration,
        now: Instant,
    ) -> Change {
        let started = now.checked_sub(latency).unwrap_or(now);
        self.requests += 1;
        let max_hosts = config.max_hosts_per_proxy.max(1);
        if !self.hosts.contains_key(host) && self.hosts.len() >= max_hosts {
            self.hosts.retain(|_, h| h.is_live(now));
        }
        let entry = self.hosts.entry(host.to_string()).or_default();
        entry.requests += 1;
        // Stale: started before the last counted ban/failure was reported.
        let stale_on_host = entry.last_ban_at.is_some_and(|at| started < at);
        let stale_on_proxy = self.last_down_at.is_some_and(|at| started < at);
        let stale_ban_streak = self.last_ban_at.is_some_and(|at| started < at);
        match signal {
            Signal::Ok => {
                self.successes += 1;
                entry.successes += 1;
                entry.consecutive_target_failures = 0;
                if self.retired {
                    // The probe of a retired proxy got through.
                    self.retired = false;
                    self.reprobe_at = None;
                    self.consecutive_failures = 0;
                }
                if !stale_on_host {
                    entry.consecutive_bans = 0;
                }
                if !stale_ban_streak {
                    self.consecutive_bans = 0;
                }
                if !stale_on_proxy {
                    self.consecutive_failures = 0;
                }
                let sample = latency.as_nanos() as f64 / 1_000_000.0;
                let alpha = config.latency_alpha.clamp(0.0, 1.0);
                self.latency_ms = Some(match self.latency_ms {
                    Some(avg) => avg + alpha * (sample - avg),
                    None => sample,
                });
                Change::None
            }
            Signal::RateLimited(_) => {
                self.rate_limits += 1;
                entry.rate_limits += 1;
                entry.consecutive_target_failures = 0;
                if !stale_on_proxy {
                    self.consecutive_failures = 0;
                }
                Change::None
            }
            Signal::Banned(_) => {
                self.bans += 1;
                entry.bans += 1;
                entry.consecutive_target_failures = 0;
                // The proxy relayed an answer: it works.
                self.consecutive_failures = 0;
                if stale_on_host {
                    return Change::None;
                }
                entry.consecutive_bans += 1;
                entry.last_ban_at = Some(now);
                let cool = config.cooldown(entry.consecutive_bans);
                entry.cooling_until = Some(entry.cooling(now).unwrap_or(now).max(now + cool));
                self.consecutive_bans += 1;
                self.last_ban_at = Some(now);
                let threshold = config.ban_retire_after;
                if threshold > 0 && self.consecutive_bans >= threshold && !stale_on_proxy {
                    let global = config.cooldown(self.consecutive_bans - threshold + 1);
                    self.cool_globally(now, global);
                    return Change::Down(global);
                }
                Change::HostCooled(cool)
            }
            Signal::ProxyFailed(_) => {
                self.failures += 1;
                entry.failures += 1;
                if stale_on_proxy {
                    return Change::None;
                }
                self.consecutive_failures += 1;
                if self.retired
                    || (config.retire_after > 0 && self.consecutive_failures >= config.retire_after)
                {
                    self.retired = true;
                    self.last_down_at = Some(now);
                    self.reprobe_at =
                        (!config.reprobe_after.is_zero()).then(|| now + config.reprobe_after);
                    return Change::Retired;
                }
                let cool = config.cooldown(self.consecutive_failures);
                self.cool_globally(now, cool);
                Change::Down(cool)
            }
            Signal::TargetFailed => {
                self.target_failures += 1;
                entry.failures += 1;
                entry.consecutive_target_failures += 1;
                Change::None
            }
        }
    }

    fn cool_globally(&mut self, now: Instant, cool: Duration) {
        self.last_down_at = Some(now);
        self.down_until = Some(self.down(now).unwrap_or(now).max(now + cool));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_doubles_and_caps() {
        let config = HealthConfig {
            cooldown_base: Duration::from_secs(10),
            cooldown_max: Duration::from_secs(60),
            ..HealthConfig::default()
        };
        let steps: Vec<u64> = (1..=6).map(|n| config.cooldown(n).as_secs()).collect();
        assert_eq!(steps, [10, 20, 40, 60, 60, 60]);
        assert_eq!(config.cooldown(0).as_secs(), 10);
        assert_eq!(config.cooldown(u32::MAX).as_secs(), 60);
    }

    #[test]
    fn stale_reports_do_not_escalate() {
        let config = HealthConfig::default();
        let mut proxy = ProxyHealth::default();
        let t0 = Instant::now();
        let ban = Signal::Banned("HTTP 429".into());
        // Four requests started together at t0, all answered 429 at t0+1s.
        let now = t0 + Duration::from_secs(1);
        for _ in 0..4 {
            proxy.report(&config, "h", &ban, Duration::from_secs(1), now);
        }
        let host = &proxy.hosts["h"];
        assert_eq!(host.bans, 4);
        assert_eq!(host.consecutive_bans, 1);
        assert_eq!(host.cooling_until, Some(now + config.cooldown_base));
        // A request that started before the ban does not reset the streak.
        proxy.report(&config, "h", &Signal::Ok, Duration::from_secs(2), now);
        assert_eq!(proxy.hosts["h"].consecutive_bans, 1);
    }

    #[test]
    fn host_map_is_bounded() {
        let config = HealthConfig {
            max_hosts_per_proxy: 3,
            ..HealthConfig::default()
        };
        let mut proxy = ProxyHealth::default();
        let now = Instant::now();
        proxy.report(
            &config,
            "banned",
            &Signal::Banned("x".into()),
            Duration::ZERO,
            now,
        );
        for i in 0..10 {
            proxy.report(&config, &format!("h{i}"), &Signal::Ok, Duration::ZERO, now);
        }
        assert!(proxy.hosts.len() <= 3, "{}", proxy.hosts.len());
        assert!(proxy.hosts.contains_key("banned"));
        assert_eq!(proxy.requests, 11);
    }
}
