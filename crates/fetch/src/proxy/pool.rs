//! The proxy pool: which proxy the next request to a host goes through.
//!
//! [`ProxyPool::pick`] applies the [`Strategy`] among the proxies that are
//! neither retired, nor down, nor cooling down for the host, and are ready
//! for the host now by their pace (the pool's [`Pacer`], one pace per
//! proxy × host): a paced-out proxy never blocks a ready one, and when none
//! is ready [`Pick::Paced`] says when one will be. The downloader reserves
//! the start with [`ProxyPool::try_start`] (in-flight count and pace), and
//! tells the outcome with [`ProxyPool::report`] (see
//! [`health`](super::health) for what each [`Signal`] does) and the pace
//! with [`Pacer::report`]. All state sits behind one mutex held only for
//! the bookkeeping, so the pool is shared by reference across tasks.
//!
//! The list can be replaced while the crawl runs ([`ProxyPool::reload`]):
//! proxies keep their ids, new ones are added, dropped ones are marked
//! removed and never picked again.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::ban::Signal;
use super::health::{Change, HealthConfig, ProxyHealth};
use super::spec::ProxySpec;
use crate::pacing::{PaceGuard, PaceStatus, Pacer, PacingConfig, Readiness};

/// How a proxy is chosen among the usable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Each in turn.
    #[default]
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// Fewest requests in flight, then fewest requests overall.
    LeastUsed,
    /// Lowest average latency of successful requests; proxies not measured
    /// yet go first, so each gets measured.
    LeastLatency,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::Random => "random",
            Strategy::LeastUsed => "least-used",
            Strategy::LeastLatency => "least-latency",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strategy name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown proxy strategy `{0}` (expected round-robin, random, least-used or least-latency)")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "round-robin" | "roundrobin" => Ok(Strategy::RoundRobin),
            "random" => Ok(Strategy::Random),
            "least-used" => Ok(Strategy::LeastUsed),
            "least-latency" => Ok(Strategy::LeastLatency),
            _ => Err(UnknownStrategy(s.to_string())),
        }
    }
}

/// A proxy of one pool: its index in the list the pool was made from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProxyId(usize);

impl ProxyId {
    /// The index in the list given to [`ProxyPool::new`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// The answer to "which proxy for this host?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    Proxy(ProxyId),
    /// Every proxy still in service is down or cooling down for the host;
    /// the first is usable again at `until`.
    Wait {
        until: Instant,
        reason: String,
    },
    /// Proxies are usable for the host but every one is paced out (rate,
    /// in-flight limit, `Retry-After`): wait `until` it is ready, or
    /// ([`Readiness::Full`]) until a request ends.
    Paced(Readiness),
    /// Every proxy is retired (or the pool is empty).
    NoneLeft,
}

/// A proxy's state in a [`ProxyStatus`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProxyState {
    Active,
    /// Usable, except for `hosts` hosts that banned it.
    CoolingDown {
        #[serde(rename = "cooling_hosts")]
        hosts: usize,
    },
    /// Cooling down for every host.
    Down {
        #[serde(skip)]
        until: Instant,
        remaining_ms: u64,
    },
    Retired,
    /// Dropped from the list by a reload.
    Removed,
}

/// One proxy's row in [`ProxyPool::snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProxyStatus {
    pub id: ProxyId,
    /// The address with the password masked.
    pub proxy: String,
    #[serde(flatten)]
    pub state: ProxyState,
    pub in_flight: u64,
    /// Exchanges reported.
    pub requests: u64,
    pub successes: u64,
    pub bans: u64,
    /// Rate-limit answers (429, 503 with Retry-After, …): paced, not cooled.
    pub rate_limits: u64,
    /// Proxy failures (connect, auth, protocol).
    pub failures: u64,
    /// Failures past the proxy (the site's).
    pub target_failures: u64,
    pub consecutive_failures: u32,
    pub consecutive_bans: u32,
    /// Moving average of successful exchanges, if any.
    pub latency_ms: Option<f64>,
    /// `successes / requests`, if any.
    pub success_rate: Option<f64>,
    /// Per host, sorted by host.
    pub hosts: Vec<HostStatus>,
}

/// One proxy on one host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostStatus {
    pub host: String,
    pub requests: u64,
    pub successes: u64,
    pub bans: u64,
    pub rate_limits: u64,
    pub failures: u64,
    pub consecutive_bans: u32,
    #[serde(skip)]
    pub cooling_until: Option<Instant>,
    /// Time left cooling down for this host.
    pub cooling_ms: Option<u64>,
    /// What was seen last of this host through this proxy: `ok`,
    /// `rate_limited`, `banned`, or `unreachable`.
    pub seen: &'static str,
    /// This proxy's pace for this host, once it has sent there.
    pub pace: Option<PaceStatus>,
}

struct PoolState {
    specs: Vec<ProxySpec>,
    proxies: Vec<ProxyHealth>,
    /// Where round-robin (and tie-breaking) resumes.
    cursor: usize,
    rng: StdRng,
}

/// Proxies with their health; see the module docs.
pub struct ProxyPool {
    strategy: Strategy,
    config: HealthConfig,
    state: Arc<Mutex<PoolState>>,
    pacer: Arc<Pacer>,
}

impl fmt::Debug for ProxyPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyPool")
            .field("specs", &self.state.lock().specs)
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

/// A request's place through one proxy: its in-flight count and its pace.
#[must_use = "the request counts as in flight until the guard is dropped"]
pub struct ExitGuard {
    _flight: InFlightGuard,
    _pace: PaceGuard,
}

/// Reports of failing to reach a host through one proxy, while other
/// proxies reach it, after which the proxy counts as banned by the host.
pub const UNREACHABLE_AFTER: u32 = 3;

/// Counts a request in flight through a proxy until dropped.
#[must_use = "the request counts as in flight until the guard is dropped"]
pub struct InFlightGuard {
    state: Arc<Mutex<PoolState>>,
    index: Option<usize>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some(index) = self.index
            && let Some(proxy) = self.state.lock().proxies.get_mut(index)
        {
            proxy.in_flight = proxy.in_flight.saturating_sub(1);
        }
    }
}

impl ProxyPool {
    pub fn new(specs: Vec<ProxySpec>, strategy: Strategy, config: HealthConfig) -> ProxyPool {
        ProxyPool::with_pacing(specs, strategy, config, PacingConfig::default())
    }

    /// A pool whose proxies are paced per host by `pacing`.
    pub fn with_pacing(
        specs: Vec<ProxySpec>,
        strategy: Strategy,
        config: HealthConfig,
        pacing: PacingConfig,
    ) -> ProxyPool {
        let proxies = specs.iter().map(|_| ProxyHealth::default()).collect();
        ProxyPool {
            strategy,
            config,
            state: Arc::new(Mutex::new(PoolState {
                specs,
                proxies,
                cursor: 0,
                rng: StdRng::from_rng(&mut rand::rng()),
            })),
            pacer: Arc::new(Pacer::new(pacing)),
        }
    }

    /// The pace of every proxy × host.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    /// Make [`Strategy::Random`] reproducible.
    pub fn with_seed(self, seed: u64) -> ProxyPool {
        self.state.lock().rng = StdRng::seed_from_u64(seed);
        self
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Proxies ever in the list (removed ones included: ids stay).
    pub fn len(&self) -> usize {
        self.state.lock().specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Proxies in the list now (not removed by a reload).
    pub fn listed(&self) -> usize {
        self.state
            .lock()
            .proxies
            .iter()
            .filter(|p| !p.removed)
            .count()
    }

    pub fn specs(&self) -> Vec<ProxySpec> {
        self.state.lock().specs.clone()
    }

    pub fn spec(&self, id: ProxyId) -> Option<ProxySpec> {
        self.state.lock().specs.get(id.0).cloned()
    }

    /// Every proxy's id, in list order.
    pub fn ids(&self) -> impl Iterator<Item = ProxyId> + use<> {
        (0..self.len()).map(ProxyId)
    }

    /// Replace the list: proxies still listed keep their id and health,
    /// new ones are added, and those no longer listed are removed (never
    /// picked again; requests in flight finish). Returns the ids added and
    /// removed.
    pub fn reload(&self, specs: &[ProxySpec]) -> (Vec<ProxyId>, Vec<ProxyId>) {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for (i, (spec, health)) in state.specs.iter().zip(state.proxies.iter_mut()).enumerate() {
            let listed = specs.contains(spec);
            if !listed && !health.removed {
                health.removed = true;
                removed.push(ProxyId(i));
            } else if listed && health.removed {
                health.removed = false;
                added.push(ProxyId(i));
            }
        }
        for spec in specs {
            if !state.specs.contains(spec) {
                added.push(ProxyId(state.specs.len()));
                state.specs.push(spec.clone());
                state.proxies.push(ProxyHealth::default());
            }
        }
        (added, removed)
    }

    /// The proxy for the next request to `host` (the downloader's host key).
    pub fn pick(&self, host: &str, now: Instant) -> Pick {
        let mut state = self.state.lock();
        let state = &mut *state;
        let n = state.proxies.len();
        if n == 0 {
            return Pick::NoneLeft;
        }
        let start = state.cursor % n;
        let usable: Vec<usize> = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| state.proxies[i].usable(host, now))
            .collect();
        if usable.is_empty() {
            return blocked(&state.proxies, host, now);
        }
        let mut paced = Readiness::Full;
        let candidates: Vec<usize> = usable
            .into_iter()
            .filter(|&i| match self.pacer.readiness(i, host, now) {
                Readiness::Ready => true,
                other => {
                    paced = paced.earliest(other);
                    false
                }
            })
            .collect();
        if candidates.is_empty() {
            return Pick::Paced(paced);
        }
        let proxies = &state.proxies;
        // Ties go to the first candidate from the cursor on, so equal
        // proxies still take turns.
        let chosen = match self.strategy {
            Strategy::RoundRobin => Some(candidates[0]),
            Strategy::Random => {
                let k = state.rng.random_range(0..candidates.len());
                Some(candidates[k])
            }
            Strategy::LeastUsed => candidates
                .iter()
                .copied()
                .min_by_key(|&i| (proxies[i].in_flight, proxies[i].requests)),
            Strategy::LeastLatency => candidates.iter().copied().min_by(|&a, &b| {
                let (pa, pb) = (&proxies[a], &proxies[b]);
                let measured = pa.latency_ms.is_some().cmp(&pb.latency_ms.is_some());
                let latency = pa
                    .latency_ms
                    .unwrap_or(0.0)
                    .total_cmp(&pb.latency_ms.unwrap_or(0.0));
                let used = (pa.in_flight, pa.requests).cmp(&(pb.in_flight, pb.requests));
                measured.then(latency).then(used)
            }),
        };
        match chosen {
            Some(i) => {
                state.cursor = i + 1;
                Pick::Proxy(ProxyId(i))
            }
            None => blocked(&state.proxies, host, now),
        }
    }

    /// Sticky choice for a session bound to `proxy`: `Pick::Proxy(proxy)`
    /// if it is usable for `host`; otherwise `Wait` (down or cooling down
    /// for the host) or `NoneLeft` (this proxy is retired or not in the
    /// pool), and the session should move to another proxy.
    pub fn pick_for_session(&self, proxy: ProxyId, host: &str, now: Instant) -> Pick {
        let state = self.state.lock();
        let Some(health) = state.proxies.get(proxy.0) else {
            return Pick::NoneLeft;
        };
        if !health.in_service() {
            return Pick::NoneLeft;
        }
        match health.blocked_until(host, now) {
            None => match self.pacer.readiness(proxy.0, host, now) {
                Readiness::Ready => Pick::Proxy(proxy),
                paced => Pick::Paced(paced),
            },
            Some(until) => {
                let what = if health.down(now).is_some() {
                    "is down".to_string()
                } else {
                    format!("is cooling down for {host}")
                };
                Pick::Wait {
                    until,
                    reason: format!("proxy {} {what}", state.specs[proxy.0]),
                }
            }
        }
    }

    /// Count a request in flight through `id` until the guard drops.
    pub fn start(&self, id: ProxyId) -> InFlightGuard {
        let mut state = self.state.lock();
        let index = state.proxies.get_mut(id.0).map(|proxy| {
            proxy.in_flight += 1;
            id.0
        });
        InFlightGuard {
            state: self.state.clone(),
            index,
        }
    }

    /// Reserve a start through `id` to `host`: its pace allows one now.
    /// The guard counts the request in flight (for the pool and the pace)
    /// until dropped.
    pub fn try_start(&self, id: ProxyId, host: &str, now: Instant) -> Result<ExitGuard, Readiness> {
        let pace = self.pacer.try_start(id.0, host, now)?;
        Ok(ExitGuard {
            _flight: self.start(id),
            _pace: pace,
        })
    }

    /// Record how an exchange through `id` to `host` went. `latency` is the
    /// exchange's duration (request start to response or failure), used for
    /// the latency average and to recognise reports of requests that were
    /// already in flight when an earlier ban or failure was recorded.
    pub fn report(
        &self,
        id: ProxyId,
        host: &str,
        signal: &Signal,
        latency: Duration,
        now: Instant,
    ) {
        let (change, spec, signal) = {
            let mut state = self.state.lock();
            let signal = unreachable_ban(&state.proxies, id.0, host, signal, now)
                .unwrap_or_else(|| signal.clone());
            let Some(proxy) = state.proxies.get_mut(id.0) else {
                return;
            };
            let change = proxy.report(&self.config, host, &signal, latency, now);
            let Some(spec) = state.specs.get(id.0).cloned() else {
                return;
            };
            (change, spec, signal)
        };
        match change {
            Change::None => {}
            Change::HostCooled(cooldown) => tracing::debug!(
                proxy = %spec, host, ?cooldown, signal = ?signal,
                "proxy banned by host; cooling down for it"
            ),
            Change::Down(cooldown) => tracing::info!(
                proxy = %spec, host, ?cooldown, signal = ?signal,
                "proxy cooling down for every host"
            ),
            Change::Retired => tracing::warn!(
                proxy = %spec, host, signal = ?signal,
                "proxy retired after {} consecutive failures", self.config.retire_after
            ),
        }
    }

    /// When the first proxy becomes usable for `host` again, if none is now
    /// but some are still in service; `None` when one is usable now or all
    /// are retired.
    pub fn all_down_until(&self, host: &str, now: Instant) -> Option<Instant> {
        let state = self.state.lock();
        if state.proxies.iter().any(|p| p.usable(host, now)) {
            return None;
        }
        match blocked(&state.proxies, host, now) {
            Pick::Wait { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Every proxy's state and counters, for stats.
    pub fn snapshot(&self, now: Instant) -> Vec<ProxyStatus> {
        let state = self.state.lock();
        let mut paces = self.pacer.snapshot(now);
        state
            .proxies
            .iter()
            .zip(&state.specs)
            .enumerate()
            .map(|(i, (health, spec))| {
                let mine: Vec<PaceStatus> = paces.extract_if(.., |p| p.exit == i).collect();
                status(ProxyId(i), spec, health, mine, now)
            })
            .collect()
    }
}

/// A target failure through proxy `index` that makes it banned by `host`:
/// the [`UNREACHABLE_AFTER`]th in a row while another proxy got an answer
/// from the host since the first of them.
fn unreachable_ban(
    proxies: &[ProxyHealth],
    index: usize,
    host: &str,
    signal: &Signal,
    _now: Instant,
) -> Option<Signal> {
    if *signal != Signal::TargetFailed {
        return None;
    }
    let mine = proxies.get(index)?.hosts.get(host)?;
    if mine.consecutive_target_failures + 1 < UNREACHABLE_AFTER {
        return None;
    }
    let others_answered = proxies.iter().enumerate().any(|(i, p)| {
        i != index
            && p.hosts
                .get(host)
                .is_some_and(|h| h.consecutive_target_failures == 0 && h.requests > 0)
    });
    others_answered.then(|| {
        Signal::Banned(format!(
            "{UNREACHABLE_AFTER} failures to reach {host} while other exits reach it"
        ))
    })
}

/// The pick when no proxy is usable for `host`.
fn blocked(proxies: &[ProxyHealth], host: &str, now: Instant) -> Pick {
    let in_service: Vec<&ProxyHealth> = proxies.iter().filter(|p| p.in_service()).collect();
    let until = in_service
        .iter()
        .filter_map(|p| p.blocked_until(host, now))
        .min();
    let reprobe = proxies
        .iter()
        .filter(|p| p.retired && !p.removed)
        .filter_map(|p| p.reprobe_at)
        .min()
        .map(|t| t.max(now + super::health::PROBE_POLL));
    let Some(until) = until.into_iter().chain(reprobe).min() else {
        return Pick::NoneLeft;
    };
    if in_service.is_empty() {
        let retired = proxies.iter().filter(|p| p.retired && !p.removed).count();
        return Pick::Wait {
            until,
            reason: format!(
                "all {retired} proxies retired after repeated failures; the next is probed again then"
            ),
        };
    }
    let down = in_service.iter().filter(|p| p.down(now).is_some()).count();
    let probing = in_service.iter().filter(|p| p.probing(now)).count();
    let cooling = in_service.len() - down - probing;
    let retired = proxies.iter().filter(|p| p.retired && !p.removed).count();
    let probed = if probing > 0 {
        format!(", {probing} being probed")
    } else {
        String::new()
    };
    Pick::Wait {
        until,
        reason: format!(
            "no proxy usable for {host}: {cooling} cooling down for it, {down} down{probed}, {retired} retired"
        ),
    }
}

fn millis_until(until: Instant, now: Instant) -> u64 {
    u64::try_from(until.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
}

fn status(
    id: ProxyId,
    spec: &ProxySpec,
    health: &ProxyHealth,
    mut paces: Vec<PaceStatus>,
    now: Instant,
) -> ProxyStatus {
    let state = if health.removed {
        ProxyState::Removed
    } else if health.retired {
        ProxyState::Retired
    } else if let Some(until) = health.down(now) {
        ProxyState::Down {
            until,
            remaining_ms: millis_until(until, now),
        }
    } else {
        match health.cooling_hosts(now) {
            0 => ProxyState::Active,
            hosts => ProxyState::CoolingDown { hosts },
        }
    };
    let mut hosts: Vec<HostStatus> = health
        .hosts
        .iter()
        .map(|(host, h)| {
            let cooling_until = h.cooling(now);
            let pace = paces
                .iter()
                .position(|p| &p.host == host)
                .map(|k| paces.swap_remove(k));
            let seen = if h.consecutive_bans > 0 || cooling_until.is_some() {
                "banned"
            } else if h.consecutive_target_failures > 0 {
                "unreachable"
            } else if pace.as_ref().is_some_and(|p| p.rate_limits > 0) {
                "rate_limited"
            } else {
                "ok"
            };
            HostStatus {
                host: host.clone(),
                requests: h.requests,
                successes: h.successes,
                bans: h.bans,
                rate_limits: h.rate_limits,
                failures: h.failures,
                consecutive_bans: h.consecutive_bans,
                cooling_until,
                cooling_ms: cooling_until.map(|until| millis_until(until, now)),
                seen,
                pace,
            }
        })
        .collect();
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    ProxyStatus {
        id,
        proxy: spec.masked(),
        state,
        in_flight: health.in_flight,
        requests: health.requests,
        successes: health.successes,
        bans: health.bans,
        rate_limits: health.rate_limits,
        failures: health.failures,
        target_failures: health.target_failures,
        consecutive_failures: health.consecutive_failures,
        consecutive_bans: health.consecutive_bans,
        latency_ms: health.latency_ms,
        success_rate: (health.requests > 0)
            .then(|| health.successes as f64 / health.requests as f64),
        hosts,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn specs(n: usize) -> Vec<ProxySpec> {
        (0..n)
            .map(|i| ProxySpec::parse(&format!("http://u:pw{i}@p{i}.example:8000")).unwrap())
            .collect()
    }

    fn config() -> HealthConfig {
        HealthConfig {
            cooldown_base: Duration::from_secs(10),
            cooldown_max: Duration::from_secs(60),
            retire_after: 3,
            ban_retire_after: 3,
            ..HealthConfig::default()
        }
    }

    fn pool(n: usize, strategy: Strategy) -> ProxyPool {
        ProxyPool::new(specs(n), strategy, config()).with_seed(7)
    }

    fn id(pick: Pick) -> usize {
        match pick {
            Pick::Proxy(id) => id.index(),
            other => panic!("expected a proxy, got {other:?}"),
        }
    }

    fn banned() -> Signal {
        Signal::Banned("HTTP 429".into())
    }

    fn failed() -> Signal {
        Signal::ProxyFailed("cannot connect to the proxy".into())
    }

    #[test]
    fn shared_across_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<ProxyPool>();
        send_sync::<InFlightGuard>();
        send_sync::<crate::proxy::SessionPool>();
    }

    #[test]
    fn strategy_names() {
        for strategy in [
            Strategy::RoundRobin,
            Strategy::Random,
            Strategy::LeastUsed,
            Strategy::LeastLatency,
        ] {
            assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
        }
        assert_eq!("Least_Used".parse::<Strategy>(), Ok(Strategy::LeastUsed));
        let err = "fastest".parse::<Strategy>().unwrap_err();
        assert!(err.to_string().contains("least-latency"));
    }

    #[test]
    fn round_robin_cycles() {
        let pool = pool(3, Strategy::RoundRobin);
        let now = Instant::now();
        let order: Vec<usize> = (0..7).map(|_| id(pool.pick("h", now))).collect();
        assert_eq!(order, [0, 1, 2, 0, 1, 2, 0]);
        // A proxy cooling for the host is skipped without breaking the cycle.
        pool.report(ProxyId(1), "h", &banned(), Duration::ZERO, now);
        let order: Vec<usize> = (0..4).map(|_| id(pool.pick("h", now))).collect();
        assert_eq!(order, [2, 0, 2, 0]);
    }

    #[test]
    fn random_covers_all_roughly_evenly() {
        let pool = pool(4, Strategy::Random);
        let now = Instant::now();
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for _ in 0..4000 {
            *counts.entry(id(pool.pick("h", now))).or_default() += 1;
        }
        assert_eq!(counts.len(), 4);
        for (&proxy, &count) in &counts {
            assert!((700..1300).contains(&count), "proxy {proxy}: {count}");
        }
    }

    #[test]
    fn least_used_prefers_idle() {
        let pool = pool(3, Strategy::LeastUsed);
        let now = Instant::now();
        let a = pool.pick("h", now);
        let _ga = pool.start(ProxyId(id(a.clone())));
        let b = pool.pick("h", now);
        let _gb = pool.start(ProxyId(id(b.clone())));
        let c = pool.pick("h", now);
        let gc = pool.start(ProxyId(id(c.clone())));
        let mut three = vec![id(a), id(b), id(c)];
        three.sort();
        assert_eq!(three, [0, 1, 2], "each idle proxy is used before any twice");
        // Proxy 2 finishes; it is now the only idle one.
        pool.report(ProxyId(2), "h", &Signal::Ok, SEC, now);
        drop(gc);
        assert_eq!(id(pool.pick("h", now)), 2);
        assert_eq!(pool.snapshot(now)[0].in_flight, 1);
        // With nothing in flight, fewest requests overall wins.
        drop(_ga);
        drop(_gb);
        pool.report(ProxyId(0), "h", &Signal::Ok, SEC, now);
        // Requests: 0 → 1, 1 → 0, 2 → 1.
        assert_eq!(id(pool.pick("h", now)), 1);
    }

    #[test]
    fn least_latency_measures_all_then_prefers_fastest() {
        let pool = pool(3, Strategy::LeastLatency);
        let now = Instant::now();
        let latencies = [300, 50, 120];
        let mut first_round = Vec::new();
        for _ in 0..3 {
            let p = id(pool.pick("h", now));
            first_round.push(p);
            let guard = pool.start(ProxyId(p));
            pool.report(
                ProxyId(p),
                "h",
                &Signal::Ok,
                Duration::from_millis(latencies[p]),
                now,
            );
            drop(guard);
        }
        first_round.sort();
        assert_eq!(first_round, [0, 1, 2], "untried proxies go first");
        for _ in 0..5 {
            assert_eq!(id(pool.pick("h", now)), 1);
        }
        // Proxy 1 slows down: the average follows and 2 takes over.
        for _ in 0..10 {
            pool.report(
                ProxyId(1),
                "h",
                &Signal::Ok,
                Duration::from_millis(500),
                now,
            );
        }
        assert_eq!(id(pool.pick("h", now)), 2);
        let snap = pool.snapshot(now);
        assert_eq!(snap[2].latency_ms, Some(120.0));
    }

    #[test]
    fn bans_cool_one_host_only() {
        let pool = pool(2, Strategy::RoundRobin);
        let t0 = Instant::now();
        pool.report(ProxyId(0), "a.example", &banned(), Duration::ZERO, t0);
        for _ in 0..4 {
            assert_eq!(id(pool.pick("a.example", t0)), 1);
        }
        let other: Vec<usize> = (0..4).map(|_| id(pool.pick("b.example", t0))).collect();
        assert!(other.contains(&0), "{other:?}");
        assert_eq!(
            pool.pick_for_session(ProxyId(0), "b.example", t0),
            Pick::Proxy(ProxyId(0))
        );
        assert!(matches!(
            pool.pick_for_session(ProxyId(0), "a.example", t0),
            Pick::Wait { until, .. } if until == t0 + 10 * SEC
        ));

        let snap = pool.snapshot(t0);
        assert_eq!(snap[0].state, ProxyState::CoolingDown { hosts: 1 });
        assert_eq!(snap[0].bans, 1);
        assert_eq!(snap[1].state, ProxyState::Active);
        let host = &snap[0].hosts[0];
        assert_eq!(host.host, "a.example");
        assert_eq!(host.bans, 1);
        assert_eq!(host.cooling_ms, Some(10_000));
    }

    /// Ban proxy 0 on `host` at `now` and return how long it cools.
    fn ban_and_measure(pool: &ProxyPool, host: &str, now: Instant) -> Duration {
        pool.report(ProxyId(0), host, &banned(), Duration::ZERO, now);
        match pool.pick_for_session(ProxyId(0), host, now) {
            Pick::Wait { until, .. } => until - now,
            other => panic!("not cooling: {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_caps_and_resets_after_a_success() {
        let pool = ProxyPool::new(
            specs(1),
            Strategy::RoundRobin,
            HealthConfig {
                ban_retire_after: 0,
                ..config()
            },
        );
        let mut now = Instant::now();
        let mut cooldowns = Vec::new();
        for _ in 0..5 {
            let cool = ban_and_measure(&pool, "h", now);
            cooldowns.push(cool.as_secs());
            // Still cooling just before the end, back right at it.
            assert!(matches!(
                pool.pick("h", now + cool - SEC),
                Pick::Wait { .. }
            ));
            now += cool;
            assert_eq!(pool.pick("h", now), Pick::Proxy(ProxyId(0)), "comes back");
        }
        assert_eq!(cooldowns, [10, 20, 40, 60, 60]);

        // A success after coming back resets the back-off.
        pool.report(ProxyId(0), "h", &Signal::Ok, SEC, now + SEC);
        now += 2 * SEC;
        assert_eq!(ban_and_measure(&pool, "h", now), 10 * SEC);
        assert_eq!(pool.snapshot(now)[0].hosts[0].consecutive_bans, 1);
    }

    #[test]
    fn ban_streak_across_hosts_cools_globally() {
        let pool = pool(2, Strategy::RoundRobin);
        let t0 = Instant::now();
        pool.report(ProxyId(0), "a", &banned(), Duration::ZERO, t0);
        pool.report(ProxyId(0), "b", &banned(), Duration::ZERO, t0);
        assert_eq!(
            pool.pick_for_session(ProxyId(0), "z", t0),
            Pick::Proxy(ProxyId(0))
        );
        pool.report(ProxyId(0), "c", &banned(), Duration::ZERO, t0);
        // Third consecutive ban: cooled for every host.
        let snap = pool.snapshot(t0);
        assert!(matches!(
            snap[0].state,
            ProxyState::Down {
                remaining_ms: 10_000,
                ..
            }
        ));
        assert!(matches!(
            pool.pick_for_session(ProxyId(0), "z", t0),
            Pick::Wait { .. }
        ));
        assert_eq!(id(pool.pick("z", t0)), 1);
        // After the cooldown and a success the streak starts over.
        let later = t0 + 60 * SEC;
        pool.report(ProxyId(0), "z", &Signal::Ok, SEC, later);
        assert_eq!(pool.snapshot(later)[0].consecutive_bans, 0);
        assert_eq!(pool.snapshot(later)[0].state, ProxyState::Active);
    }

    #[test]
    fn proxy_failures_cool_globally_and_retire() {
        let pool = pool(2, Strategy::RoundRobin);
        let mut now = Instant::now();
        pool.report(ProxyId(0), "a", &failed(), Duration::ZERO, now);
        for host in ["a", "b", "c"] {
            assert_eq!(id(pool.pick(host, now)), 1, "{host}");
        }
        assert!(matches!(
            pool.snapshot(now)[0].state,
            ProxyState::Down {
                remaining_ms: 10_000,
                ..
            }
        ));
        now += 10 * SEC;
        pool.report(ProxyId(0), "a", &failed(), Duration::ZERO, now);
        assert!(matches!(
            pool.snapshot(now)[0].state,
            ProxyState::Down {
                remaining_ms: 20_000,
                ..
            }
        ));
        now += 20 * SEC;
        pool.report(ProxyId(0), "b", &failed(), Duration::ZERO, now);
        let snap = pool.snapshot(now);
        assert_eq!(snap[0].state, ProxyState::Retired);
        assert_eq!(snap[0].failures, 3);
        assert_eq!(snap[0].consecutive_failures, 3);
        // Retired: not used, nor offered to sessions...
        for _ in 0..4 {
            assert_eq!(id(pool.pick("a", now + 60 * SEC)), 1);
        }
        assert_eq!(pool.pick_for_session(ProxyId(0), "a", now), Pick::NoneLeft);
        // ...until its re-probe is due: one request goes through it.
        now += config().reprobe_after;
        let picks: Vec<usize> = (0..2).map(|_| id(pool.pick("a", now))).collect();
        assert!(picks.contains(&0), "{picks:?}");
        let probe = pool.start(ProxyId(0));
        for _ in 0..4 {
            assert_eq!(id(pool.pick("a", now)), 1, "one probe at a time");
        }
        drop(probe);
        // The probe fails: retired again, next probe later.
        pool.report(ProxyId(0), "a", &failed(), Duration::ZERO, now);
        assert_eq!(pool.snapshot(now)[0].state, ProxyState::Retired);
        for _ in 0..4 {
            assert_eq!(id(pool.pick("a", now + SEC)), 1);
        }
        // The next probe gets through: back in service.
        now += config().reprobe_after;
        pool.report(ProxyId(0), "a", &Signal::Ok, SEC, now);
        assert_eq!(pool.snapshot(now)[0].state, ProxyState::Active);
        assert_eq!(
            pool.pick_for_session(ProxyId(0), "a", now),
            Pick::Proxy(ProxyId(0))
        );
    }

    #[test]
    fn rate_limits_pace_and_never_cool() {
        let pool = pool(2, Strategy::RoundRobin);
        let now = Instant::now();
        let limited = Signal::RateLimited("HTTP 429".into());
        for _ in 0..20 {
            pool.report(ProxyId(0), "h", &limited, SEC, now);
        }
        let snap = pool.snapshot(now);
        assert_eq!(snap[0].state, ProxyState::Active);
        assert_eq!(snap[0].rate_limits, 20);
        assert_eq!(snap[0].bans, 0);
        assert_eq!(snap[0].hosts[0].rate_limits, 20);
        assert_eq!(
            pool.pick_for_session(ProxyId(0), "h", now),
            Pick::Proxy(ProxyId(0))
        );
    }

    #[test]
    fn a_paced_out_proxy_never_blocks_a_ready_one() {
        let pool = ProxyPool::with_pacing(
            specs(2),
            Strategy::RoundRobin,
            config(),
            crate::pacing::PacingConfig {
                max_in_flight: 1,
                ..Default::default()
            },
        );
        let now = Instant::now();
        let a = pool.try_start(ProxyId(0), "h", now).unwrap();
        // Proxy 0 is full for h: every pick for h goes to 1.
        for _ in 0..3 {
            assert_eq!(id(pool.pick("h", now)), 1);
        }
        assert!(matches!(
            pool.pick_for_session(ProxyId(0), "h", now),
            Pick::Paced(Readiness::Full)
        ));
        let b = pool.try_start(ProxyId(1), "h", now).unwrap();
        assert_eq!(pool.pick("h", now), Pick::Paced(Readiness::Full));
        // Another host is not affected.
        assert!(matches!(pool.pick("other", now), Pick::Proxy(_)));
        drop(a);
        assert_eq!(id(pool.pick("h", now)), 0);
        drop(b);
        // A Retry-After for (0, h) holds back that pair only.
        let info = crate::pacing::RateInfo {
            limited: true,
            retry_after: Some(10 * SEC),
            ..Default::default()
        };
        pool.pacer()
            .report(0, "h", &crate::pacing::PaceSignal::Answer(info), SEC, now);
        for _ in 0..3 {
            assert_eq!(id(pool.pick("h", now + SEC)), 1);
        }
        assert!(matches!(pool.pick("other", now + SEC), Pick::Proxy(_)));
    }

    #[test]
    fn a_proxy_that_stops_reaching_one_site_is_banned_there() {
        let pool = pool(2, Strategy::RoundRobin);
        let now = Instant::now();
        pool.report(ProxyId(1), "h", &Signal::Ok, SEC, now);
        for _ in 0..UNREACHABLE_AFTER {
            pool.report(ProxyId(0), "h", &Signal::TargetFailed, SEC, now);
        }
        let snap = pool.snapshot(now);
        assert_eq!(snap[0].bans, 1);
        assert_eq!(snap[0].hosts[0].seen, "banned");
        assert!(matches!(
            pool.pick_for_session(ProxyId(0), "h", now),
            Pick::Wait { .. }
        ));
        // A site nobody reaches is down, not banning.
        for _ in 0..10 {
            pool.report(ProxyId(0), "down", &Signal::TargetFailed, SEC, now);
            pool.report(ProxyId(1), "down", &Signal::TargetFailed, SEC, now);
        }
        assert_eq!(pool.snapshot(now)[1].bans, 0);
    }

    #[test]
    fn reload_adds_and_removes_keeping_ids() {
        let pool = pool(3, Strategy::RoundRobin);
        let now = Instant::now();
        pool.report(ProxyId(1), "h", &Signal::Ok, SEC, now);
        let mut list = specs(3);
        list.remove(0);
        list.push(ProxySpec::parse("socks5://127.0.0.9:1080").unwrap());
        let (added, removed) = pool.reload(&list);
        assert_eq!(added, [ProxyId(3)]);
        assert_eq!(removed, [ProxyId(0)]);
        assert_eq!(pool.len(), 4);
        assert_eq!(pool.listed(), 3);
        let picks: Vec<usize> = (0..6).map(|_| id(pool.pick("h", now))).collect();
        assert!(!picks.contains(&0), "{picks:?}");
        assert!(picks.contains(&3), "{picks:?}");
        let snap = pool.snapshot(now);
        assert_eq!(snap[0].state, ProxyState::Removed);
        assert_eq!(snap[1].successes, 1, "kept its health");
        // Listed again: back, same id.
        let (added, _) = pool.reload(&specs(3));
        assert_eq!(added, [ProxyId(0)]);
        assert_eq!(pool.snapshot(now)[3].state, ProxyState::Removed);
    }

    #[test]
    fn after_a_failure_one_request_probes_and_the_others_wait() {
        let pool = pool(1, Strategy::RoundRobin);
        let mut now = Instant::now();
        pool.report(ProxyId(0), "a", &failed(), Duration::ZERO, now);
        now += 10 * SEC;
        // Back from its cooldown: the first request goes (the probe)...
        assert_eq!(id(pool.pick("a", now)), 0);
        let probe = pool.start(ProxyId(0));
        // ...the others wait a moment for its answer, on any host.
        for host in ["a", "b"] {
            match pool.pick(host, now) {
                Pick::Wait { until, reason } => {
                    assert_eq!(until, now + crate::proxy::health::PROBE_POLL);
                    assert!(reason.contains("1 being probed"), "{reason}");
                }
                other => panic!("expected a wait, got {other:?}"),
            }
        }
        // The probe fails: down again, longer; nobody else went through.
        drop(probe);
        pool.report(ProxyId(0), "a", &failed(), Duration::ZERO, now);
        assert!(matches!(pool.pick("a", now), Pick::Wait { .. }));
        now += 20 * SEC;
        assert_eq!(id(pool.pick("a", now)), 0);
        let probe = pool.start(ProxyId(0));
        assert!(matches!(pool.pick("a", now), Pick::Wait { .. }));
        // It works again: everyone goes, several at once.
        pool.report(ProxyId(0), "a", &Signal::Ok, SEC, now + SEC);
        let _second = pool.start(ProxyId(0));
        assert_eq!(id(pool.pick("a", now + SEC)), 0);
        assert_eq!(id(pool.pick("b", now + SEC)), 0);
        drop(probe);
        // A healthy proxy is never limited to one request.
        let healthy = self::pool(1, Strategy::RoundRobin);
        let _guards: Vec<_> = (0..5).map(|_| healthy.start(ProxyId(0))).collect();
        assert_eq!(id(healthy.pick("a", now)), 0);
    }

    #[test]
    fn a_success_breaks_the_failure_streak() {
        let pool = pool(1, Strategy::RoundRobin);
        let mut now = Instant::now();
        for _ in 0..5 {
            pool.report(ProxyId(0), "a", &failed(), Duration::ZERO, now);
            now += 60 * SEC;
            pool.report(ProxyId(0), "a", &Signal::Ok, SEC, now);
            now += SEC;
        }
        let snap = pool.snapshot(now);
        assert_eq!(snap[0].state, ProxyState::Active);
        assert_eq!(snap[0].failures, 5);
        assert_eq!(snap[0].consecutive_failures, 0);
    }

    #[test]
    fn target_failures_do_not_cool() {
        let pool = pool(1, Strategy::RoundRobin);
        let now = Instant::now();
        for _ in 0..20 {
            pool.report(ProxyId(0), "down.example", &Signal::TargetFailed, SEC, now);
        }
        assert_eq!(pool.pick("down.example", now), Pick::Proxy(ProxyId(0)));
        let snap = pool.snapshot(now);
        assert_eq!(snap[0].state, ProxyState::Active);
        assert_eq!(snap[0].target_failures, 20);
        assert_eq!(snap[0].failures, 0);
        assert_eq!(snap[0].hosts[0].failures, 20);
        assert_eq!(snap[0].success_rate, Some(0.0));
    }

    #[test]
    fn wait_gives_the_earliest_until() {
        let pool = pool(3, Strategy::RoundRobin);
        let t0 = Instant::now();
        // 0: banned twice on h (10 s then 20 s); 1: down 10 s from t0+5;
        // 2: banned once on h at t0+2 (until t0+12).
        pool.report(ProxyId(0), "h", &banned(), Duration::ZERO, t0);
        pool.report(ProxyId(0), "h", &banned(), Duration::ZERO, t0);
        pool.report(ProxyId(1), "x", &failed(), Duration::ZERO, t0 + 5 * SEC);
        pool.report(ProxyId(2), "h", &banned(), Duration::ZERO, t0 + 2 * SEC);
        let now = t0 + 6 * SEC;
        match pool.pick("h", now) {
            Pick::Wait { until, reason } => {
                assert_eq!(until, t0 + 12 * SEC);
                assert!(reason.contains("2 cooling down for it, 1 down"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(pool.all_down_until("h", now), Some(t0 + 12 * SEC));
        // Another host only lacks proxy 1.
        assert_eq!(pool.all_down_until("other", now), None);
        assert!(matches!(pool.pick("other", now), Pick::Proxy(_)));
        // Once the earliest cooldown ends, that proxy is picked.
        assert_eq!(pool.pick("h", t0 + 12 * SEC), Pick::Proxy(ProxyId(2)));
    }

    #[test]
    fn none_left_when_all_retired() {
        let pool = ProxyPool::new(
            specs(2),
            Strategy::LeastUsed,
            HealthConfig {
                reprobe_after: Duration::ZERO,
                ..config()
            },
        );
        let now = Instant::now();
        for p in 0..2 {
            for _ in 0..3 {
                pool.report(ProxyId(p), "h", &failed(), Duration::ZERO, now);
            }
        }
        assert_eq!(pool.pick("h", now), Pick::NoneLeft);
        assert_eq!(pool.all_down_until("h", now), None);
        let empty = ProxyPool::new(Vec::new(), Strategy::Random, HealthConfig::default());
        assert_eq!(empty.pick("h", now), Pick::NoneLeft);
        assert!(empty.is_empty());
    }

    #[test]
    fn concurrent_failures_are_one_step() {
        let pool = pool(1, Strategy::RoundRobin);
        let t0 = Instant::now();
        // Three requests in flight since t0 all fail at t0+2 s.
        for _ in 0..3 {
            pool.report(ProxyId(0), "h", &failed(), 2 * SEC, t0 + 2 * SEC);
        }
        let snap = pool.snapshot(t0 + 2 * SEC);
        assert_eq!(snap[0].failures, 3);
        assert_eq!(snap[0].consecutive_failures, 1);
        assert!(matches!(
            snap[0].state,
            ProxyState::Down {
                remaining_ms: 10_000,
                ..
            }
        ));
    }

    #[test]
    fn snapshot_serializes_masked() {
        let pool = pool(2, Strategy::RoundRobin);
        let now = Instant::now();
        pool.report(ProxyId(0), "h", &Signal::Ok, Duration::from_millis(80), now);
        pool.report(ProxyId(0), "h", &banned(), Duration::ZERO, now);
        pool.report(ProxyId(1), "h", &failed(), Duration::ZERO, now);
        let json = serde_json::to_value(pool.snapshot(now)).unwrap();
        let text = json.to_string();
        assert!(!text.contains("pw0") && !text.contains("pw1"), "{text}");
        assert_eq!(json[0]["proxy"], "http://u:***@p0.example:8000");
        assert_eq!(json[0]["state"], "cooling_down");
        assert_eq!(json[0]["cooling_hosts"], 1);
        assert_eq!(json[0]["success_rate"], 0.5);
        assert_eq!(json[0]["latency_ms"], 80.0);
        assert_eq!(json[0]["hosts"][0]["host"], "h");
        assert_eq!(json[0]["hosts"][0]["cooling_ms"], 10_000);
        assert_eq!(json[1]["state"], "down");
        assert_eq!(json[1]["remaining_ms"], 10_000);
        assert!(!format!("{pool:?}").contains("pw0"));
    }

    #[test]
    fn in_flight_guard_counts() {
        let pool = pool(1, Strategy::LeastUsed);
        let now = Instant::now();
        let g1 = pool.start(ProxyId(0));
        let g2 = pool.start(ProxyId(0));
        assert_eq!(pool.snapshot(now)[0].in_flight, 2);
        drop(g1);
        drop(g2);
        assert_eq!(pool.snapshot(now)[0].in_flight, 0);
        // An id from elsewhere is ignored.
        drop(pool.start(ProxyId(9)));
        pool.report(ProxyId(9), "h", &Signal::Ok, SEC, now);
    }
}
