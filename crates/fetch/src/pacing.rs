//! Pacing: how fast each exit may send to each host.
//!
//! A rate limit is not a ban. A site that answers `429` (or `503` with
//! `Retry-After`, or says `RateLimit: remaining=0`, or starts answering
//! ever more slowly) is telling this client IP to slow down, not to go
//! away. So each (exit, host) pair — an exit is one proxy of a pool, or the
//! machine's own address for direct requests — keeps its own pace, like a
//! TCP congestion window measured in requests per second:
//!
//! - **Slow start.** A new pair starts at `initial_rate` and grows its rate
//!   by `slow_start_gain` for every clean answer (doubling about every
//!   `ln 2 / gain` seconds while the rate is what limits it), so a site with
//!   no limit is soon crawled as fast as the per-host limit allows, and a
//!   site with a limit is overshot by little before the first rate-limit
//!   answer.
//! - **Additive increase, multiplicative decrease.** After the first
//!   rate-limit answer the pair probes upwards (`increase` per clean
//!   answer, times the seconds since the last decrease, up to ten: a few
//!   per cent a second near the last limit, faster the longer no limit is
//!   met, like CUBIC) and on the next rate-limit answer
//!   cuts its rate to `decrease` times what it was actually sending
//!   (halved while still searching: from leaving slow start until a second
//!   passes without a cut). One decrease per round: answers to
//!   requests sent before the last decrease say nothing new.
//! - **`Retry-After`** (or a `RateLimit` reset with nothing remaining) holds
//!   back this pair only, never the whole exit or the whole crawl.
//! - **`RateLimit-Policy`** (IETF draft, both the `q=100;w=60` and the older
//!   `100;w=60` forms) and `X-RateLimit-Limit` with a window put a ceiling
//!   on the rate: just under what the site says it allows.
//! - Requests start on a GCRA schedule (a virtual clock advanced by
//!   `1 / rate` per request, with `burst` of tolerance), so a pair at
//!   150 r/s sends one request every 6.7 ms instead of 150 at once.
//!
//! [`Pacer::readiness`] tells whether a pair may start a request now;
//! [`Pacer::try_start`] reserves the start (and an in-flight place, up to
//! `max_in_flight`) and returns a guard; [`Pacer::report`] feeds the answer
//! back. Pure bookkeeping behind one mutex: no sleeping, every method takes
//! the current instant, so it is tested without clocks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;

/// How pairs are paced.
#[derive(Debug, Clone, PartialEq)]
pub struct PacingConfig {
    /// Off: no rate cap (in-flight limits and `Retry-After` still hold).
    pub enabled: bool,
    /// A new pair's rate, requests per second.
    pub initial_rate: f64,
    /// The rate never drops below this (requests per second).
    pub min_rate: f64,
    /// Nor grows above this.
    pub max_rate: f64,
    /// Requests in flight per pair.
    pub max_in_flight: usize,
    /// Slow start: requests per second added per clean answer.
    pub slow_start_gain: f64,
    /// After the first rate limit: requests per second added per clean
    /// answer (`0.05` grows a fully used rate by ~5 % a second).
    pub increase: f64,
    /// On a rate limit the rate becomes this share of the rate sent at.
    pub decrease: f64,
    /// How far ahead of its schedule a pair may start requests.
    pub burst: Duration,
    /// A latency climb is a rate limit: the smoothed latency above
    /// `latency_factor` times the pair's fastest and at least
    /// `latency_margin` above it.
    pub latency_factor: f64,
    pub latency_margin: Duration,
    /// A `Retry-After` (or reset) longer than this is cut to it.
    pub max_retry_after: Duration,
    /// Pairs remembered; past this, idle ones are forgotten.
    pub max_pairs: usize,
}

impl Default for PacingConfig {
    fn default() -> Self {
        PacingConfig {
            enabled: true,
            initial_rate: 100.0,
            min_rate: 0.1,
            max_rate: 1_000_000.0,
            max_in_flight: 2,
            slow_start_gain: 10.0,
            increase: 0.05,
            decrease: 0.75,
            burst: Duration::from_millis(20),
            latency_factor: 4.0,
            latency_margin: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(60),
            max_pairs: 100_000,
        }
    }
}

/// Whether a pair may start a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Paced out, or held back by `Retry-After`, until then.
    At(Instant),
    /// `max_in_flight` requests are in flight; ready when one ends.
    Full,
}

impl Readiness {
    pub fn is_ready(self) -> bool {
        self == Readiness::Ready
    }

    /// The earlier of two waits (`Full` is later than any instant: it
    /// ends when a request does, which [`Pacer::changed`] announces).
    pub fn earliest(self, other: Readiness) -> Readiness {
        match (self, other) {
            (Readiness::Ready, _) | (_, Readiness::Ready) => Readiness::Ready,
            (Readiness::At(a), Readiness::At(b)) => Readiness::At(a.min(b)),
            (Readiness::At(a), Readiness::Full) | (Readiness::Full, Readiness::At(a)) => {
                Readiness::At(a)
            }
            (Readiness::Full, Readiness::Full) => Readiness::Full,
        }
    }
}

/// What an answer says about the pace, from its status and headers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RateInfo {
    /// The answer is a rate limit (429, 503 with `Retry-After`, or a 4xx
    /// with nothing remaining in the `RateLimit` headers).
    pub limited: bool,
    /// Wait this long before the next request (`Retry-After`, or the
    /// reset of an exhausted quota).
    pub retry_after: Option<Duration>,
    /// The quota the site states, as requests per second.
    pub policy_rate: Option<f64>,
    /// Why, for stats and logs.
    pub reason: Option<String>,
}

impl RateInfo {
    /// Read a response: `status` and a header lookup (lower-case names).
    pub fn from_response<'a>(status: u16, header: impl Fn(&str) -> Option<&'a str>) -> RateInfo {
        let retry_after = header("retry-after")
            .and_then(|v| crate::retry::parse_retry_after(v, SystemTime::now()));
        let quota = RateHeaders::parse(&header);
        let exhausted = quota.remaining == Some(0);
        let mut info = RateInfo {
            policy_rate: quota.rate(),
            ..RateInfo::default()
        };
        if status == 429 {
            info.limited = true;
            info.reason = Some("HTTP 429".into());
        } else if status == 503 && retry_after.is_some() {
            info.limited = true;
            info.reason = Some("HTTP 503 with Retry-After".into());
        } else if exhausted && (400..500).contains(&status) && status != 404 {
            info.limited = true;
            info.reason = Some(format!("HTTP {status} with the quota exhausted"));
        }
        info.retry_after = match (retry_after, exhausted) {
            (Some(ra), _) if info.limited || exhausted => Some(ra),
            (_, true) => quota.reset,
            _ => None,
        };
        info
    }
}

/// The `RateLimit-*` / `X-RateLimit-*` headers of one response.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct RateHeaders {
    limit: Option<f64>,
    window: Option<f64>,
    remaining: Option<u64>,
    reset: Option<Duration>,
}

impl RateHeaders {
    fn parse<'a>(header: &impl Fn(&str) -> Option<&'a str>) -> RateHeaders {
        let mut h = RateHeaders::default();
        // Draft 7+: `RateLimit-Policy: "default";q=100;w=60` and
        // `RateLimit: "default";r=50;t=30`. Earlier drafts:
        // `RateLimit-Policy: 100;w=60` and `RateLimit: limit=100,
        // remaining=50, reset=30`.
        if let Some(policy) = header("ratelimit-policy") {
            let first = policy.split(',').next().unwrap_or("");
            for (i, part) in first.split(';').map(str::trim).enumerate() {
                match part.split_once('=') {
                    Some(("q", v)) => h.limit = v.trim().parse().ok(),
                    Some(("w", v)) => h.window = v.trim().parse().ok(),
                    None if i == 0 => h.limit = part.parse().ok().or(h.limit),
                    _ => {}
                }
            }
        }
        if let Some(state) = header("ratelimit") {
            for part in state.split([',', ';']).map(str::trim) {
                match part.split_once('=') {
                    Some(("r" | "remaining", v)) => h.remaining = v.trim().parse().ok(),
                    Some(("t" | "reset", v)) => {
                        h.reset = v.trim().parse::<u64>().ok().map(Duration::from_secs)
                    }
                    Some(("limit", v)) => h.limit = h.limit.or(v.trim().parse().ok()),
                    _ => {}
                }
            }
        }
        for prefix in ["ratelimit-", "x-ratelimit-"] {
            let get = |name: &str| header(&format!("{prefix}{name}")).map(str::trim);
            if h.limit.is_none() {
                // `X-RateLimit-Limit: 100` or GitHub-style `100, 100;w=60`.
                if let Some(v) = get("limit") {
                    let first = v.split([',', ';']).next().unwrap_or("");
                    h.limit = first.trim().parse().ok();
                    let window = v
                        .split([',', ';'])
                        .find_map(|p| match p.trim().split_once('=') {
                            Some(("w", w)) => w.trim().parse().ok(),
                            _ => None,
                        });
                    h.window = h.window.or(window);
                }
            }
            if h.remaining.is_none() {
                h.remaining = get("remaining").and_then(|v| v.parse().ok());
            }
            if h.reset.is_none() {
                h.reset = get("reset")
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(reset_duration);
            }
        }
        h
    }

    /// The stated quota in requests per second (a limit without a window
    /// says nothing about time).
    fn rate(&self) -> Option<f64> {
        let (limit, window) = (self.limit?, self.window?);
        (limit > 0.0 && window > 0.0).then(|| limit / window)
    }
}

/// A reset value: seconds from now, or (GitHub and friends) a Unix time.
fn reset_duration(value: u64) -> Duration {
    const UNIX_TIME_FROM: u64 = 1_000_000_000;
    if value >= UNIX_TIME_FROM {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Duration::from_secs(value.saturating_sub(now))
    } else {
        Duration::from_secs(value)
    }
}

/// How one exchange of a pair ended, for [`Pacer::report`].
#[derive(Debug, Clone, PartialEq)]
pub enum PaceSignal {
    /// An answer that is not a rate limit (any status, 404 included).
    Answer(RateInfo),
    /// No answer (timeout, reset): neither clean nor a rate limit.
    Failed,
}

/// After a cut, the share of the gap to the rate before it closed per
/// second.
const RECOVERY: f64 = 1.5;

/// Clean answers are counted over this window to tell what a site accepts.
const ACCEPTED_WINDOW: Duration = Duration::from_secs(1);
/// At most this many answer times are kept per pair.
const ANSWERS_KEPT: usize = 4096;

/// What [`Pacer::report`] made of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceVerdict {
    /// Nothing to slow down for (or no answer at all).
    Clean,
    /// A rate-limit answer: the pace was cut (once per round), and the
    /// request should go again.
    RateLimited,
    /// The answer is fine but came slowly enough to cut the pace.
    LatencyClimbed,
}

/// Sends remembered per pair to measure its rate.
const STARTS_KEPT: usize = 32;
/// Latency samples before a climb is judged.
const LATENCY_SAMPLES: u32 = 20;

/// One (exit, host) pair.
#[derive(Debug, Clone)]
struct Pace {
    rate: f64,
    /// Seen a rate limit: additive increase, not slow start.
    limited: bool,
    /// Cutting by half until a second passes without a rate limit.
    searching: bool,
    /// The rate before the last cut: clean answers bring the rate back
    /// towards it quickly, and past it probing goes slowly (CUBIC's idea).
    rate_before_cut: Option<f64>,
    /// GCRA theoretical arrival time.
    tat: Instant,
    in_flight: usize,
    blocked_until: Option<Instant>,
    last_decrease: Option<Instant>,
    policy_rate: Option<f64>,
    starts: VecDeque<Instant>,
    /// When the last clean answers came (to measure what the site accepts).
    answers: VecDeque<Instant>,
    first_used: Instant,
    latency_ms: Option<f64>,
    fastest_ms: Option<f64>,
    latency_samples: u32,
    last_used: Instant,
    requests: u64,
    clean: u64,
    rate_limits: u64,
    retry_afters: u64,
    latency_climbs: u64,
    decreases: u64,
    last_reason: Option<String>,
}

impl Pace {
    fn new(cfg: &PacingConfig, now: Instant) -> Pace {
        Pace {
            rate: cfg.initial_rate.clamp(cfg.min_rate, cfg.max_rate),
            limited: false,
            searching: false,
            rate_before_cut: None,
            tat: now,
            in_flight: 0,
            blocked_until: None,
            last_decrease: None,
            policy_rate: None,
            starts: VecDeque::with_capacity(STARTS_KEPT),
            answers: VecDeque::new(),
            first_used: now,
            latency_ms: None,
            fastest_ms: None,
            latency_samples: 0,
            last_used: now,
            requests: 0,
            clean: 0,
            rate_limits: 0,
            retry_afters: 0,
            latency_climbs: 0,
            decreases: 0,
            last_reason: None,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate.max(1e-6))
    }

    fn readiness(&self, cfg: &PacingConfig, now: Instant) -> Readiness {
        if let Some(until) = self.blocked_until.filter(|&u| u > now) {
            return Readiness::At(until);
        }
        if self.in_flight >= cfg.max_in_flight.max(1) {
            return Readiness::Full;
        }
        if cfg.enabled {
            let earliest = self.tat.checked_sub(cfg.burst).unwrap_or(self.tat);
            if earliest > now {
                return Readiness::At(earliest);
            }
        }
        Readiness::Ready
    }

    fn start(&mut self, now: Instant) {
        self.in_flight += 1;
        self.requests += 1;
        self.last_used = now;
        self.tat = self.tat.max(now) + self.interval();
        if self.starts.len() == STARTS_KEPT {
            self.starts.pop_front();
        }
        self.starts.push_back(now);
    }

    /// Requests per second actually started lately, once there are enough
    /// starts to tell.
    fn send_rate(&self, now: Instant) -> Option<f64> {
        let first = *self.starts.front()?;
        let n = self.starts.len();
        if n < 8 {
            return None;
        }
        let span = now.saturating_duration_since(first).as_secs_f64();
        (span > 0.0).then(|| (n - 1) as f64 / span)
    }

    /// Clean answers per second over the last second (or since the pair
    /// began, if that is shorter).
    fn accepted_rate(&self, now: Instant) -> Option<f64> {
        let window = now
            .saturating_duration_since(self.first_used)
            .min(ACCEPTED_WINDOW)
            .as_secs_f64();
        let from = now.checked_sub(ACCEPTED_WINDOW).unwrap_or(self.first_used);
        let n = self.answers.iter().filter(|&&t| t >= from).count();
        (window > 0.0 && n > 0).then(|| n as f64 / window)
    }

    fn ceiling(&self, cfg: &PacingConfig) -> f64 {
        let stated = self.policy_rate.map_or(f64::INFINITY, |r| r * 0.95);
        cfg.max_rate.min(stated).max(cfg.min_rate)
    }

    fn clean(&mut self, cfg: &PacingConfig, now: Instant) {
        self.clean += 1;
        while self.answers.len() >= ANSWERS_KEPT
            || self
                .answers
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) > ACCEPTED_WINDOW)
        {
            self.answers.pop_front();
        }
        self.answers.push_back(now);
        let gain = if !self.limited {
            cfg.slow_start_gain
        } else if let Some(before) = self.rate_before_cut.filter(|&b| self.rate < 0.95 * b) {
            // Back towards the rate before the cut: the gap shrinks by
            // RECOVERY per second.
            (before - self.rate) * RECOVERY / self.rate.max(cfg.min_rate)
        } else {
            let calm = self
                .last_decrease
                .map_or(1.0, |at| now.saturating_duration_since(at).as_secs_f64());
            cfg.increase * calm.clamp(1.0, 10.0)
        };
        // Grow only a rate that is being used: a pair sending at 20 r/s
        // because of its in-flight limit learns nothing about 10,000 r/s.
        let used = self
            .send_rate(now)
            .is_none_or(|sent| self.rate <= 2.0 * sent.max(cfg.min_rate));
        if used {
            self.rate = (self.rate + gain).min(self.ceiling(cfg));
        }
    }

    /// A rate limit answered a request that started at `started`.
    fn decrease(&mut self, cfg: &PacingConfig, started: Instant, now: Instant, reason: &str) {
        self.last_reason = Some(reason.to_string());
        if self.last_decrease.is_some_and(|at| started < at) {
            return; // sent before the last decrease: nothing new
        }
        let sent = self.send_rate(now).unwrap_or(self.rate).min(self.rate);
        // Halve while still finding the limit: from leaving slow start
        // until a second passes without a cut. Afterwards cut gently.
        let calm = self
            .last_decrease
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
        if !self.limited {
            self.searching = true;
        } else if calm {
            self.searching = false;
        }
        let factor = if self.searching { 0.5 } else { cfg.decrease };
        // What the site accepted lately is where the rate goes back to
        // quickly after the cut.
        self.rate_before_cut = self
            .accepted_rate(now)
            .map(|accepted| accepted.min(sent.max(self.rate)));
        self.rate = (sent * factor).clamp(cfg.min_rate, self.ceiling(cfg));
        self.limited = true;
        self.last_decrease = Some(now);
        self.decreases += 1;
        self.tat = self.tat.max(now);
    }

    fn latency(&mut self, cfg: &PacingConfig, latency: Duration, started: Instant, now: Instant) {
        let ms = latency.as_secs_f64() * 1000.0;
        self.fastest_ms = Some(self.fastest_ms.map_or(ms, |f| f.min(ms)));
        let avg = match self.latency_ms {
            Some(avg) => avg + 0.2 * (ms - avg),
            None => ms,
        };
        self.latency_ms = Some(avg);
        self.latency_samples = self.latency_samples.saturating_add(1);
        let fastest = self.fastest_ms.unwrap_or(ms);
        let margin = cfg.latency_margin.as_secs_f64() * 1000.0;
        if self.latency_samples >= LATENCY_SAMPLES
            && avg > fastest * cfg.latency_factor
            && avg > fastest + margin
            && self.last_decrease.is_none_or(|at| started >= at)
        {
            self.latency_climbs += 1;
            self.decrease(
                cfg,
                started,
                now,
                &format!("latency climbed to {avg:.0} ms (fastest {fastest:.0} ms)"),
            );
            // Judge the next climb on answers sent after this decrease.
            self.latency_ms = Some(fastest + (avg - fastest) / 2.0);
        }
    }

    fn report(
        &mut self,
        cfg: &PacingConfig,
        signal: &PaceSignal,
        latency: Duration,
        now: Instant,
    ) -> bool {
        let started = now.checked_sub(latency).unwrap_or(now);
        let PaceSignal::Answer(info) = signal else {
            return false;
        };
        if let Some(rate) = info.policy_rate {
            self.policy_rate = Some(rate);
            self.limited = true;
            self.rate = self.rate.min(self.ceiling(cfg));
        }
        if let Some(wait) = info.retry_after {
            let wait = wait.min(cfg.max_retry_after);
            self.retry_afters += 1;
            let until = now + wait;
            self.blocked_until = Some(self.blocked_until.map_or(until, |u| u.max(until)));
            self.tat = self.tat.max(until);
        }
        if info.limited {
            self.rate_limits += 1;
            let reason = info.reason.as_deref().unwrap_or("rate limited");
            self.decrease(cfg, started, now, reason);
            return true;
        }
        self.clean(cfg, now);
        self.latency(cfg, latency, started, now);
        false
    }

    fn is_idle(&self, now: Instant) -> bool {
        self.in_flight == 0
            && self.blocked_until.is_none_or(|u| u <= now)
            && now.saturating_duration_since(self.last_used) > Duration::from_secs(60)
    }
}

/// One pair's row in [`Pacer::snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaceStatus {
    /// The exit: a proxy's index in its pool (0 for direct requests).
    pub exit: usize,
    pub host: String,
    /// `ramping` (slow start), `paced` (after a rate limit), `waiting`
    /// (held back by `Retry-After`).
    pub state: &'static str,
    /// The rate it may send at now, requests per second.
    pub rate: f64,
    /// The rate it sent at lately.
    pub sent_rate: Option<f64>,
    /// The quota the site states, requests per second.
    pub policy_rate: Option<f64>,
    pub in_flight: usize,
    pub requests: u64,
    pub clean: u64,
    pub rate_limits: u64,
    pub retry_afters: u64,
    pub latency_climbs: u64,
    pub decreases: u64,
    pub waiting_ms: Option<u64>,
    pub last_rate_limit: Option<String>,
}

/// Pacing state of every (exit, host) pair of one route group.
#[derive(Debug)]
pub struct Pacer {
    cfg: PacingConfig,
    pairs: Mutex<Pairs>,
    /// The last rate a paced pair of each host settled on: a new pair of
    /// that host (a new proxy, a new session) starts there instead of in
    /// slow start, since the site limits each client alike. Locked after
    /// `pairs` when both are.
    learned: Mutex<HashMap<String, f64>>,
    changed: Notify,
}

/// Every host's paces by exit. Keyed by host first, so a lookup by `&str`
/// allocates nothing and a host's exits are found together.
#[derive(Debug, Default)]
struct Pairs {
    hosts: HashMap<Arc<str>, HashMap<usize, Pace>>,
    /// Pairs over all hosts.
    count: usize,
}

impl Pairs {
    fn get(&self, exit: usize, host: &str) -> Option<&Pace> {
        self.hosts.get(host)?.get(&exit)
    }

    fn get_mut(&mut self, exit: usize, host: &str) -> Option<&mut Pace> {
        self.hosts.get_mut(host)?.get_mut(&exit)
    }

    /// The pair, made by `make` if new; when `max` pairs exist already,
    /// idle ones are forgotten first. Returns the host key with it.
    fn entry(
        &mut self,
        exit: usize,
        host: &str,
        max: usize,
        now: Instant,
        make: impl FnOnce() -> Pace,
    ) -> (Arc<str>, &mut Pace) {
        if self.get(exit, host).is_none() {
            if self.count >= max.max(1) {
                for exits in self.hosts.values_mut() {
                    exits.retain(|_, p| !p.is_idle(now));
                }
                self.hosts.retain(|_, exits| !exits.is_empty());
                self.count = self.hosts.values().map(HashMap::len).sum();
            }
            self.count += 1;
        }
        let key = match self.hosts.get_key_value(host) {
            Some((key, _)) => key.clone(),
            None => {
                let key: Arc<str> = Arc::from(host);
                self.hosts.insert(key.clone(), HashMap::new());
                key
            }
        };
        let exits = self.hosts.entry(key.clone()).or_default();
        (key, exits.entry(exit).or_insert_with(make))
    }
}

/// Holds one request's in-flight place in its pair until dropped.
#[must_use = "the request counts as in flight until the guard is dropped"]
pub struct PaceGuard {
    pacer: Arc<Pacer>,
    exit: usize,
    host: Arc<str>,
}

impl Drop for PaceGuard {
    fn drop(&mut self) {
        {
            let mut pairs = self.pacer.pairs.lock();
            if let Some(pace) = pairs.get_mut(self.exit, &self.host) {
                pace.in_flight = pace.in_flight.saturating_sub(1);
            }
        }
        self.pacer.changed.notify_waiters();
    }
}

impl Pacer {
    pub fn new(cfg: PacingConfig) -> Pacer {
        Pacer {
            cfg,
            pairs: Mutex::new(Pairs::default()),
            learned: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        }
    }

    pub fn config(&self) -> &PacingConfig {
        &self.cfg
    }

    /// Whether `exit` may start a request to `host` now.
    pub fn readiness(&self, exit: usize, host: &str, now: Instant) -> Readiness {
        let pairs = self.pairs.lock();
        match pairs.get(exit, host) {
            Some(pace) => pace.readiness(&self.cfg, now),
            None => Readiness::Ready,
        }
    }

    /// Reserve a start for `exit` → `host` if it is ready now.
    pub fn try_start(
        self: &Arc<Self>,
        exit: usize,
        host: &str,
        now: Instant,
    ) -> Result<PaceGuard, Readiness> {
        let mut pairs = self.pairs.lock();
        let (key, pace) = pairs.entry(exit, host, self.cfg.max_pairs, now, || {
            let mut pace = Pace::new(&self.cfg, now);
            if let Some(&rate) = self.learned.lock().get(host) {
                pace.rate = rate;
                pace.limited = true;
            }
            pace
        });
        match pace.readiness(&self.cfg, now) {
            Readiness::Ready => {
                pace.start(now);
                Ok(PaceGuard {
                    pacer: self.clone(),
                    exit,
                    host: key,
                })
            }
            other => Err(other),
        }
    }

    /// Feed back how a request of `exit` → `host` that took `latency` was
    /// answered.
    pub fn report(
        &self,
        exit: usize,
        host: &str,
        signal: &PaceSignal,
        latency: Duration,
        now: Instant,
    ) -> PaceVerdict {
        let verdict = {
            let mut pairs = self.pairs.lock();
            let (_, pace) = pairs.entry(exit, host, self.cfg.max_pairs, now, || {
                Pace::new(&self.cfg, now)
            });
            let climbs = pace.latency_climbs;
            let was_ramping = !pace.limited;
            let limited = pace.report(&self.cfg, signal, latency, now);
            let verdict = if limited {
                PaceVerdict::RateLimited
            } else if pace.latency_climbs > climbs {
                PaceVerdict::LatencyClimbed
            } else {
                PaceVerdict::Clean
            };
            if pace.limited {
                let mut learned = self.learned.lock();
                if !learned.contains_key(host) && learned.len() >= self.cfg.max_pairs.max(1) {
                    learned.clear();
                }
                learned.insert(host.to_string(), pace.rate);
            }
            // The first limit one exit meets on a host is news for the
            // host's other exits still in slow start: they start from this
            // rate instead of each overshooting on its own.
            if was_ramping && pace.limited {
                let rate = pace.rate;
                let others = pairs
                    .hosts
                    .get_mut(host)
                    .into_iter()
                    .flat_map(|e| e.values_mut());
                for p in others.filter(|p| !p.limited) {
                    p.rate = rate;
                    p.limited = true;
                    p.tat = p.tat.max(now);
                }
            }
            verdict
        };
        if verdict != PaceVerdict::Clean {
            tracing::debug!(exit, host, ?verdict, "pacing down");
        }
        verdict
    }

    /// Resolves when a request of any pair ends (an in-flight place frees
    /// up). Create it before checking readiness, then await it.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Every pair's state, sorted by host then exit.
    pub fn snapshot(&self, now: Instant) -> Vec<PaceStatus> {
        let pairs = self.pairs.lock();
        let mut rows: Vec<PaceStatus> = pairs
            .hosts
            .iter()
            .flat_map(|(host, exits)| exits.iter().map(move |(exit, p)| (exit, host, p)))
            .map(|(exit, host, p)| {
                let waiting = p.blocked_until.filter(|&u| u > now);
                PaceStatus {
                    exit: *exit,
                    host: host.to_string(),
                    state: if waiting.is_some() {
                        "waiting"
                    } else if p.limited {
                        "paced"
                    } else {
                        "ramping"
                    },
                    rate: round2(p.rate),
                    sent_rate: p.send_rate(now).map(round2),
                    policy_rate: p.policy_rate.map(round2),
                    in_flight: p.in_flight,
                    requests: p.requests,
                    clean: p.clean,
                    rate_limits: p.rate_limits,
                    retry_afters: p.retry_afters,
                    latency_climbs: p.latency_climbs,
                    decreases: p.decreases,
                    waiting_ms: waiting.map(|u| {
                        u64::try_from(u.saturating_duration_since(now).as_millis())
                            .unwrap_or(u64::MAX)
                    }),
                    last_rate_limit: p.last_reason.clone(),
                }
            })
            .collect();
        rows.sort_by(|a, b| a.host.cmp(&b.host).then(a.exit.cmp(&b.exit)));
        rows
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn cfg() -> PacingConfig {
        PacingConfig {
            max_in_flight: 64,
            ..PacingConfig::default()
        }
    }

    fn ok() -> PaceSignal {
        PaceSignal::Answer(RateInfo::default())
    }

    fn limited() -> PaceSignal {
        PaceSignal::Answer(RateInfo {
            limited: true,
            reason: Some("HTTP 429".into()),
            ..RateInfo::default()
        })
    }

    /// Simulate a site that accepts `limit` requests/s (a token bucket of
    /// `burst`) answering in `rtt`, with the pacer sending as fast as it
    /// lets; returns (accepted, rejected) over `secs`.
    fn simulate(pacer: &Arc<Pacer>, limit: f64, burst: f64, secs: f64) -> (u64, u64) {
        let t0 = Instant::now();
        let rtt = 2 * MS;
        let mut now = t0;
        let mut tokens = burst;
        let mut last = t0;
        let mut in_flight: VecDeque<(Instant, bool, PaceGuard)> = VecDeque::new();
        let (mut accepted, mut rejected) = (0, 0);
        let end = t0 + Duration::from_secs_f64(secs);
        while now < end {
            while let Some((at, _, _)) = in_flight.front() {
                if *at > now {
                    break;
                }
                let (_, ok_answer, guard) = in_flight.pop_front().unwrap();
                drop(guard);
                let signal = if ok_answer { ok() } else { limited() };
                pacer.report(0, "h", &signal, rtt, now);
            }
            while let Ok(guard) = pacer.try_start(0, "h", now) {
                tokens = (tokens + (now - last).as_secs_f64() * limit).min(burst);
                last = now;
                let ok_answer = tokens >= 1.0;
                if ok_answer {
                    tokens -= 1.0;
                    accepted += 1;
                } else {
                    rejected += 1;
                }
                in_flight.push_back((now + rtt, ok_answer, guard));
            }
            now += Duration::from_micros(250);
        }
        (accepted, rejected)
    }

    #[test]
    fn converges_under_a_token_bucket() {
        let pacer = Arc::new(Pacer::new(cfg()));
        let (accepted, rejected) = simulate(&pacer, 150.0, 30.0, 30.0);
        let rate = accepted as f64 / 30.0;
        let share = rejected as f64 / (accepted + rejected) as f64;
        assert!(rate > 0.85 * 150.0, "accepted {rate:.1}/s");
        assert!(
            share < 0.02,
            "{rejected} rejected of {}",
            accepted + rejected
        );
        let snap = pacer.snapshot(Instant::now());
        assert_eq!(snap[0].state, "paced");
        assert!(snap[0].rate < 200.0, "{:?}", snap[0]);
    }

    #[test]
    fn an_unlimited_site_is_soon_fast() {
        let pacer = Arc::new(Pacer::new(cfg()));
        let (accepted, rejected) = simulate(&pacer, 1e9, 1e9, 2.0);
        assert_eq!(rejected, 0);
        // 64 in flight at a 2 ms round trip: 32,000/s is the ceiling.
        assert!(accepted > 30_000, "{accepted}");
        assert_eq!(pacer.snapshot(Instant::now())[0].state, "ramping");
    }

    #[test]
    fn one_decrease_per_round() {
        let pacer = Arc::new(Pacer::new(PacingConfig {
            initial_rate: 1000.0,
            ..cfg()
        }));
        let t0 = Instant::now();
        let guards: Vec<_> = (0..4)
            .map(|_| pacer.try_start(0, "h", t0).unwrap())
            .collect();
        let rate0 = pacer.snapshot(t0)[0].rate;
        for _ in 0..4 {
            pacer.report(0, "h", &limited(), 5 * MS, t0 + 5 * MS);
        }
        drop(guards);
        let snap = &pacer.snapshot(t0 + 5 * MS)[0];
        assert_eq!(snap.rate_limits, 4);
        assert_eq!(snap.decreases, 1);
        assert!((snap.rate - rate0 * 0.5).abs() < 0.01, "{snap:?}");
    }

    #[test]
    fn retry_after_holds_back_one_pair_only() {
        let pacer = Arc::new(Pacer::new(cfg()));
        let t0 = Instant::now();
        drop(pacer.try_start(0, "h", t0).unwrap());
        let info = RateInfo {
            limited: true,
            retry_after: Some(Duration::from_secs(3)),
            ..RateInfo::default()
        };
        pacer.report(0, "h", &PaceSignal::Answer(info), MS, t0);
        assert_eq!(
            pacer.readiness(0, "h", t0 + Duration::from_secs(1)),
            Readiness::At(t0 + Duration::from_secs(3))
        );
        assert!(pacer.readiness(1, "h", t0).is_ready());
        assert!(pacer.readiness(0, "other", t0).is_ready());
        assert!(pacer.try_start(1, "h", t0).is_ok());
        assert!(pacer.try_start(0, "h", t0 + Duration::from_secs(3)).is_ok());
        assert_eq!(pacer.snapshot(t0)[0].state, "waiting");
    }

    #[test]
    fn in_flight_limit_per_pair() {
        let pacer = Arc::new(Pacer::new(PacingConfig {
            max_in_flight: 2,
            ..cfg()
        }));
        let t0 = Instant::now();
        let a = pacer.try_start(0, "h", t0).unwrap();
        let _b = pacer.try_start(0, "h", t0).unwrap();
        assert_eq!(pacer.try_start(0, "h", t0).err(), Some(Readiness::Full));
        assert!(pacer.try_start(1, "h", t0).is_ok());
        drop(a);
        assert!(pacer.try_start(0, "h", t0).is_ok());
    }

    #[test]
    fn starts_follow_the_rate() {
        let pacer = Arc::new(Pacer::new(PacingConfig {
            initial_rate: 10.0,
            burst: Duration::ZERO,
            ..cfg()
        }));
        let t0 = Instant::now();
        drop(pacer.try_start(0, "h", t0).unwrap());
        assert_eq!(
            pacer.try_start(0, "h", t0).err(),
            Some(Readiness::At(t0 + 100 * MS))
        );
        assert!(pacer.try_start(0, "h", t0 + 100 * MS).is_ok());
        // Off: no schedule.
        let free = Arc::new(Pacer::new(PacingConfig {
            enabled: false,
            ..cfg()
        }));
        for _ in 0..10 {
            drop(free.try_start(0, "h", t0).unwrap());
        }
    }

    #[test]
    fn a_latency_climb_paces_down() {
        let pacer = Arc::new(Pacer::new(cfg()));
        let mut now = Instant::now();
        for _ in 0..30 {
            now += 10 * MS;
            drop(pacer.try_start(0, "h", now).unwrap());
            pacer.report(0, "h", &ok(), 2 * MS, now);
        }
        let before = pacer.snapshot(now)[0].rate;
        for _ in 0..10 {
            now += 100 * MS;
            drop(pacer.try_start(0, "h", now).unwrap());
            pacer.report(0, "h", &ok(), Duration::from_millis(900), now);
        }
        let snap = &pacer.snapshot(now)[0];
        assert!(snap.latency_climbs >= 1, "{snap:?}");
        assert!(snap.rate < before, "{snap:?} vs {before}");
        assert_eq!(snap.state, "paced");
    }

    /// A header lookup over `pairs` (leaked: tests only).
    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<&'static str> + use<> {
        let owned: &'static [(String, String)] = Box::leak(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    #[test]
    fn rate_limit_answers() {
        let info = RateInfo::from_response(429, |_| None);
        assert!(info.limited && info.retry_after.is_none());
        let h = headers(&[("retry-after", "7")]);
        let info = RateInfo::from_response(503, &h);
        assert!(info.limited);
        assert_eq!(info.retry_after, Some(Duration::from_secs(7)));
        // A 503 without Retry-After is an outage, not a rate limit.
        assert!(!RateInfo::from_response(503, |_| None).limited);
        assert!(!RateInfo::from_response(200, |_| None).limited);
    }

    #[test]
    fn ratelimit_headers_of_every_draft() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<f64>);
        let cases: [Case; 5] = [
            (
                &[("ratelimit-policy", "\"default\";q=100;w=60")],
                Some(100.0 / 60.0),
            ),
            (&[("ratelimit-policy", "10;w=1, 1000;w=3600")], Some(10.0)),
            (
                &[("x-ratelimit-limit", "50"), ("ratelimit-policy", "50;w=10")],
                Some(5.0),
            ),
            (&[("x-ratelimit-limit", "5000")], None),
            (
                &[("x-ratelimit-limit", "100, 100;w=60")],
                Some(100.0 / 60.0),
            ),
        ];
        for (pairs, rate) in cases {
            let info = RateInfo::from_response(200, headers(pairs));
            assert_eq!(info.policy_rate, rate, "{pairs:?}");
            assert!(!info.limited);
        }
        // Exhausted quota: wait for the reset, a 4xx is a rate limit.
        let h = headers(&[("ratelimit", "\"default\";r=0;t=12")]);
        let info = RateInfo::from_response(403, &h);
        assert!(info.limited);
        assert_eq!(info.retry_after, Some(Duration::from_secs(12)));
        let info = RateInfo::from_response(200, &h);
        assert!(!info.limited);
        assert_eq!(info.retry_after, Some(Duration::from_secs(12)));
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "30")]);
        assert_eq!(
            RateInfo::from_response(429, &h).retry_after,
            Some(Duration::from_secs(30))
        );
        let h = headers(&[("ratelimit", "limit=100, remaining=0, reset=4")]);
        assert_eq!(
            RateInfo::from_response(200, &h).retry_after,
            Some(Duration::from_secs(4))
        );
    }

    #[test]
    fn a_stated_policy_caps_the_rate_and_new_exits_start_there() {
        let pacer = Arc::new(Pacer::new(cfg()));
        let now = Instant::now();
        let info = RateInfo {
            policy_rate: Some(20.0),
            ..RateInfo::default()
        };
        drop(pacer.try_start(0, "h", now).unwrap());
        pacer.report(0, "h", &PaceSignal::Answer(info), MS, now);
        let snap = &pacer.snapshot(now)[0];
        assert_eq!(snap.rate, 19.0);
        assert_eq!(snap.policy_rate, Some(20.0));
        // Another exit to the same host starts at the learned rate, not in
        // slow start; another host is new ground.
        drop(pacer.try_start(7, "h", now).unwrap());
        drop(pacer.try_start(7, "other", now).unwrap());
        let snap = pacer.snapshot(now);
        let new = snap.iter().find(|p| p.exit == 7 && p.host == "h").unwrap();
        assert_eq!((new.rate, new.state), (19.0, "paced"));
        let other = snap.iter().find(|p| p.host == "other").unwrap();
        assert_eq!(other.state, "ramping");
    }

    #[test]
    fn a_hosts_first_limit_is_shared_with_its_ramping_exits() {
        let pacer = Arc::new(Pacer::new(PacingConfig {
            initial_rate: 1000.0,
            ..cfg()
        }));
        let t0 = Instant::now();
        for exit in 0..3 {
            drop(pacer.try_start(exit, "h", t0).unwrap());
        }
        drop(pacer.try_start(1, "other", t0).unwrap());
        pacer.report(0, "h", &limited(), MS, t0 + MS);
        let snap = pacer.snapshot(t0 + MS);
        let on = |exit: usize, host: &str| {
            snap.iter()
                .find(|p| p.exit == exit && p.host == host)
                .unwrap()
                .clone()
        };
        assert_eq!(on(0, "h").state, "paced");
        for exit in [1, 2] {
            assert_eq!(on(exit, "h").state, "paced", "exit {exit}");
            assert_eq!(on(exit, "h").rate, on(0, "h").rate);
        }
        assert_eq!(on(1, "other").state, "ramping");
    }

    #[test]
    fn idle_pairs_are_forgotten() {
        let pacer = Arc::new(Pacer::new(PacingConfig {
            max_pairs: 3,
            ..cfg()
        }));
        let t0 = Instant::now();
        for i in 0..3 {
            drop(pacer.try_start(0, &format!("h{i}"), t0).unwrap());
        }
        let later = t0 + Duration::from_secs(120);
        drop(pacer.try_start(0, "new", later).unwrap());
        assert_eq!(pacer.snapshot(later).len(), 1);
    }
}
