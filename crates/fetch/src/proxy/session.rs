//! Sessions: an identity (proxy, user agent, cookie jar) kept across
//! requests, in the spirit of Crawlee's `SessionPool`.
//!
//! A session is bound on creation to a proxy (picked by the
//! [`ProxyPool`]'s strategy, or none when crawling without proxies) and to a
//! user-agent index, and keeps both until it is retired: after a ban, after
//! `max_errors` net bad marks (a good mark takes one back), after
//! `max_uses` acquisitions, or when its proxy is retired, down, or cooling
//! down for the host it is acquired for. The pool first fills up to
//! `max_sessions` (each new session a fresh proxy pick), then hands out the
//! live sessions in turn.
//!
//! [`SessionId`]s are unique and never reused, so the downloader can key
//! cookie jars by them; [`SessionPool::drain_retired`] lists the ones whose
//! jars can go.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::ban::Signal;
use super::pool::{Pick, ProxyId, ProxyPool};

/// Retired ids kept for [`SessionPool::drain_retired`] before the oldest
/// are dropped (so a caller that never drains does not grow memory).
const RETIRED_BACKLOG: usize = 65_536;

/// A session's identity; unique in its pool, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(u64);

impl SessionId {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session-{}", self.0)
    }
}

/// What a request uses from its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    /// `None` when the pool works without proxies.
    pub proxy: Option<ProxyId>,
    /// Index into the downloader's user-agent list.
    pub user_agent: usize,
}

/// The answer to [`SessionPool::acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionPick {
    Session(Session),
    /// No proxy is usable for the host before `until`.
    Wait {
        until: Instant,
        reason: String,
    },
    /// Sessions are usable but every one's proxy is paced out for the host
    /// (see [`Pick::Paced`]); no session was retired for it.
    Paced(crate::pacing::Readiness),
    /// Every proxy is retired.
    NoneLeft,
}

/// Why a session was retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireReason {
    Banned,
    Errors,
    MaxUses,
    /// Its proxy was retired, down, or cooling down for the host.
    ProxyUnusable,
    /// [`SessionPool::retire`].
    Manual,
}

/// Session counters for stats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionStats {
    pub live: usize,
    pub created: u64,
    pub retired_banned: u64,
    pub retired_errors: u64,
    pub retired_max_uses: u64,
    pub retired_proxy_unusable: u64,
    pub retired_manual: u64,
}

impl SessionStats {
    /// Add another pool's counters (for one total over several pools).
    pub fn add(&mut self, other: &SessionStats) {
        self.live += other.live;
        self.created += other.created;
        self.retired_banned += other.retired_banned;
        self.retired_errors += other.retired_errors;
        self.retired_max_uses += other.retired_max_uses;
        self.retired_proxy_unusable += other.retired_proxy_unusable;
        self.retired_manual += other.retired_manual;
    }
}

#[derive(Debug)]
struct Entry {
    session: Session,
    uses: u32,
    errors: u32,
}

#[derive(Debug)]
struct SessionState {
    live: Vec<Entry>,
    cursor: usize,
    next_id: u64,
    rng: StdRng,
    retired: VecDeque<SessionId>,
    stats: SessionStats,
}

impl SessionState {
    fn retire_at(&mut self, index: usize, reason: RetireReason) {
        let entry = self.live.remove(index);
        if index < self.cursor {
            self.cursor -= 1;
        }
        if self.retired.len() >= RETIRED_BACKLOG {
            self.retired.pop_front();
        }
        self.retired.push_back(entry.session.id);
        let counter = match reason {
            RetireReason::Banned => &mut self.stats.retired_banned,
            RetireReason::Errors => &mut self.stats.retired_errors,
            RetireReason::MaxUses => &mut self.stats.retired_max_uses,
            RetireReason::ProxyUnusable => &mut self.stats.retired_proxy_unusable,
            RetireReason::Manual => &mut self.stats.retired_manual,
        };
        *counter += 1;
        tracing::debug!(session = %entry.session.id, ?reason, "session retired");
    }

    fn position(&self, id: SessionId) -> Option<usize> {
        self.live.iter().position(|e| e.session.id == id)
    }
}

/// Sessions shared by all tasks; see the module docs.
#[derive(Debug)]
pub struct SessionPool {
    max_sessions: usize,
    max_uses: u32,
    max_errors: u32,
    user_agents: usize,
    state: Mutex<SessionState>,
}

impl SessionPool {
    /// At most `max_sessions` live sessions (at least 1), each used at most
    /// `max_uses_per_session` times and retired after `max_errors` net bad
    /// marks (0: no limit for either). One user agent until
    /// [`Self::with_user_agents`].
    pub fn new(max_sessions: usize, max_uses_per_session: u32, max_errors: u32) -> SessionPool {
        SessionPool {
            max_sessions: max_sessions.max(1),
            max_uses: max_uses_per_session,
            max_errors,
            user_agents: 1,
            state: Mutex::new(SessionState {
                live: Vec::new(),
                cursor: 0,
                next_id: 1,
                rng: StdRng::from_rng(&mut rand::rng()),
                retired: VecDeque::new(),
                stats: SessionStats::default(),
            }),
        }
    }

    /// New sessions get a user-agent index drawn from `0..n`.
    pub fn with_user_agents(mut self, n: usize) -> SessionPool {
        self.user_agents = n.max(1);
        self
    }

    /// Make user-agent draws reproducible.
    pub fn with_seed(self, seed: u64) -> SessionPool {
        self.state.lock().rng = StdRng::seed_from_u64(seed);
        self
    }

    /// A session for a request to `host`. With `proxies`, a session whose
    /// proxy is not usable for `host` is retired on the way and new sessions
    /// take the pool's pick; without, sessions carry no proxy.
    pub fn acquire(&self, host: &str, proxies: Option<&ProxyPool>, now: Instant) -> SessionPick {
        let mut state = self.state.lock();
        // Fill the pool first: every new session is a fresh proxy pick.
        let mut refused = None;
        if state.live.len() < self.max_sessions {
            match self.create(&mut state, host, proxies, now) {
                Ok(session) => return SessionPick::Session(session),
                Err(pick) => refused = Some(pick),
            }
        }
        // Then the live sessions in turn, skipping (not retiring) those
        // whose proxy is only paced out for the host.
        let mut paced: Option<crate::pacing::Readiness> = None;
        let mut looked = 0;
        while !state.live.is_empty() && looked < state.live.len() {
            let index = (state.cursor + looked) % state.live.len();
            let entry = &state.live[index];
            let pick = match (entry.session.proxy, proxies) {
                (Some(proxy), Some(pool)) => pool.pick_for_session(proxy, host, now),
                _ => Pick::Proxy(ProxyId::default()),
            };
            match pick {
                Pick::Proxy(_) => {
                    state.cursor = index + 1;
                    return SessionPick::Session(self.use_at(&mut state, index));
                }
                Pick::Paced(when) => {
                    paced = Some(paced.map_or(when, |p| p.earliest(when)));
                    looked += 1;
                }
                Pick::Wait { .. } | Pick::NoneLeft => {
                    state.retire_at(index, RetireReason::ProxyUnusable);
                }
            }
        }
        if let Some(when) = paced {
            return SessionPick::Paced(when);
        }
        if let Some(Pick::Paced(when)) = refused {
            return SessionPick::Paced(when);
        }
        // Every live session was retired: replace one.
        let pick = match refused {
            Some(pick) => pick,
            None => match self.create(&mut state, host, proxies, now) {
                Ok(session) => return SessionPick::Session(session),
                Err(pick) => pick,
            },
        };
        match pick {
            Pick::Wait { until, reason } => SessionPick::Wait { until, reason },
            Pick::Paced(when) => SessionPick::Paced(when),
            Pick::Proxy(_) | Pick::NoneLeft => SessionPick::NoneLeft,
        }
    }

    /// A new live session, or the proxy pool's refusal.
    fn create(
        &self,
        state: &mut SessionState,
        host: &str,
        proxies: Option<&ProxyPool>,
        now: Instant,
    ) -> Result<Session, Pick> {
        let proxy = match proxies {
            Some(pool) => match pool.pick(host, now) {
                Pick::Proxy(id) => Some(id),
                refused => return Err(refused),
            },
            None => None,
        };
        let id = SessionId(state.next_id);
        state.next_id += 1;
        let user_agent = state.rng.random_range(0..self.user_agents);
        state.live.push(Entry {
            session: Session {
                id,
                proxy,
                user_agent,
            },
            uses: 0,
            errors: 0,
        });
        state.stats.created += 1;
        let index = state.live.len() - 1;
        Ok(self.use_at(state, index))
    }

    /// Count one use of the live session at `index`; the last allowed use
    /// retires it (the caller still gets it this once).
    fn use_at(&self, state: &mut SessionState, index: usize) -> Session {
        let entry = &mut state.live[index];
        entry.uses += 1;
        let session = entry.session;
        if self.max_uses > 0 && entry.uses >= self.max_uses {
            state.retire_at(index, RetireReason::MaxUses);
        }
        session
    }

    /// The request through `id` went well: takes back one bad mark.
    pub fn mark_good(&self, id: SessionId) {
        let mut state = self.state.lock();
        if let Some(index) = state.position(id) {
            let entry = &mut state.live[index];
            entry.errors = entry.errors.saturating_sub(1);
        }
    }

    /// The request through `id` failed; the `max_errors`th net bad mark
    /// retires the session.
    pub fn mark_bad(&self, id: SessionId) {
        let mut state = self.state.lock();
        if let Some(index) = state.position(id) {
            let entry = &mut state.live[index];
            entry.errors += 1;
            if self.max_errors > 0 && entry.errors >= self.max_errors {
                state.retire_at(index, RetireReason::Errors);
            }
        }
    }

    /// Retire `id` now (no-op if it is not live).
    pub fn retire(&self, id: SessionId, reason: RetireReason) {
        let mut state = self.state.lock();
        if let Some(index) = state.position(id) {
            state.retire_at(index, reason);
        }
    }

    /// Apply a classified outcome: `Ok` is a good mark, `Banned` retires,
    /// failures are bad marks.
    pub fn report(&self, id: SessionId, signal: &Signal) {
        match signal {
            Signal::Ok => self.mark_good(id),
            Signal::Banned(_) => self.retire(id, RetireReason::Banned),
            // The session's proxy only has to slow down for the host.
            Signal::RateLimited(_) => {}
            Signal::ProxyFailed(_) | Signal::TargetFailed => self.mark_bad(id),
        }
    }

    pub fn is_live(&self, id: SessionId) -> bool {
        self.state.lock().position(id).is_some()
    }

    /// Sessions retired since the last call (cookie jars to drop), oldest
    /// first. At most the last 65 536 are kept between calls.
    pub fn drain_retired(&self) -> Vec<SessionId> {
        self.state.lock().retired.drain(..).collect()
    }

    /// The live sessions.
    pub fn sessions(&self) -> Vec<Session> {
        self.state.lock().live.iter().map(|e| e.session).collect()
    }

    pub fn stats(&self) -> SessionStats {
        let state = self.state.lock();
        SessionStats {
            live: state.live.len(),
            ..state.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::proxy::{HealthConfig, ProxySpec, Strategy};

    fn proxies(n: usize) -> ProxyPool {
        let specs = (0..n)
            .map(|i| ProxySpec::parse(&format!("socks5://p{i}.example:1080")).unwrap())
            .collect();
        ProxyPool::new(specs, Strategy::RoundRobin, HealthConfig::default())
    }

    fn session(pick: SessionPick) -> Session {
        match pick {
            SessionPick::Session(session) => session,
            other => panic!("expected a session, got {other:?}"),
        }
    }

    #[test]
    fn fills_then_rotates_and_sticks_to_proxies() {
        let pool = proxies(3);
        let sessions = SessionPool::new(3, 0, 3).with_user_agents(5).with_seed(1);
        let now = Instant::now();
        let first: Vec<Session> = (0..3)
            .map(|_| session(sessions.acquire("h", Some(&pool), now)))
            .collect();
        let ids: HashSet<SessionId> = first.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), 3);
        let proxies: Vec<usize> = first.iter().map(|s| s.proxy.unwrap().index()).collect();
        assert_eq!(proxies, [0, 1, 2], "each new session is a fresh pick");
        assert!(first.iter().all(|s| s.user_agent < 5));
        // Full: the same sessions come round, each with its own proxy and UA.
        for round in 0..3 {
            for expected in &first {
                let again = session(sessions.acquire("other", Some(&pool), now));
                assert_eq!(&again, expected, "round {round}");
            }
        }
        assert_eq!(sessions.stats().created, 3);
    }

    #[test]
    fn a_ban_retires_and_the_replacement_is_new() {
        let pool = proxies(2);
        let sessions = SessionPool::new(1, 0, 3);
        let now = Instant::now();
        let s1 = session(sessions.acquire("h", Some(&pool), now));
        assert_eq!(session(sessions.acquire("h", Some(&pool), now)), s1);
        let ban = Signal::Banned("HTTP 403".into());
        pool.report(s1.proxy.unwrap(), "h", &ban, Duration::ZERO, now);
        sessions.report(s1.id, &ban);
        assert!(!sessions.is_live(s1.id));
        assert_eq!(sessions.drain_retired(), [s1.id]);
        assert!(sessions.drain_retired().is_empty());
        let s2 = session(sessions.acquire("h", Some(&pool), now));
        assert_ne!(s2.id, s1.id);
        assert_ne!(s2.proxy, s1.proxy, "the banned proxy is cooling for h");
        assert_eq!(sessions.stats().retired_banned, 1);
    }

    #[test]
    fn retired_after_max_errors() {
        let sessions = SessionPool::new(1, 0, 3);
        let now = Instant::now();
        let s1 = session(sessions.acquire("h", None, now));
        sessions.mark_bad(s1.id);
        sessions.mark_bad(s1.id);
        sessions.mark_good(s1.id); // takes one back
        sessions.mark_bad(s1.id);
        assert!(sessions.is_live(s1.id));
        sessions.report(s1.id, &Signal::TargetFailed);
        assert!(!sessions.is_live(s1.id));
        assert_eq!(sessions.stats().retired_errors, 1);
        let s2 = session(sessions.acquire("h", None, now));
        assert_ne!(s2.id, s1.id);
    }

    #[test]
    fn retired_after_max_uses() {
        let sessions = SessionPool::new(1, 3, 0);
        let now = Instant::now();
        let uses: Vec<SessionId> = (0..7)
            .map(|_| session(sessions.acquire("h", None, now)).id)
            .collect();
        assert_eq!(uses[0], uses[1]);
        assert_eq!(uses[1], uses[2]);
        assert_ne!(uses[2], uses[3]);
        assert_eq!(uses[3], uses[5]);
        assert_ne!(uses[5], uses[6]);
        let distinct: HashSet<SessionId> = uses.iter().copied().collect();
        assert_eq!(distinct.len(), 3);
        assert_eq!(sessions.stats().retired_max_uses, 2);
        assert_eq!(sessions.drain_retired(), [uses[0], uses[3]]);
    }

    #[test]
    fn cooling_proxy_retires_the_session_for_that_host() {
        let pool = proxies(2);
        let sessions = SessionPool::new(2, 0, 0);
        let now = Instant::now();
        let a = session(sessions.acquire("h", Some(&pool), now));
        let b = session(sessions.acquire("h", Some(&pool), now));
        // Some other request through a's proxy got banned on h.
        pool.report(
            a.proxy.unwrap(),
            "h",
            &Signal::Banned("x".into()),
            Duration::ZERO,
            now,
        );
        // a is retired on the way; a replacement takes a usable proxy.
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(session(sessions.acquire("h", Some(&pool), now)));
        }
        assert!(seen.iter().all(|s| s.id != a.id));
        assert!(seen.iter().all(|s| s.proxy == b.proxy), "{seen:?}");
        assert!(seen.iter().any(|s| s.id == b.id));
        assert_eq!(sessions.stats().retired_proxy_unusable, 1);
    }

    #[test]
    fn waits_and_none_left_come_from_the_proxy_pool() {
        let pool = proxies(1);
        let sessions = SessionPool::new(2, 0, 0);
        let now = Instant::now();
        let s = session(sessions.acquire("h", Some(&pool), now));
        let ban = Signal::Banned("x".into());
        pool.report(s.proxy.unwrap(), "h", &ban, Duration::ZERO, now);
        match sessions.acquire("h", Some(&pool), now) {
            SessionPick::Wait { until, .. } => {
                assert_eq!(until, now + HealthConfig::default().cooldown_base);
            }
            other => panic!("{other:?}"),
        }
        // Other hosts are fine.
        assert!(matches!(
            sessions.acquire("elsewhere", Some(&pool), now),
            SessionPick::Session(_)
        ));
        for _ in 0..8 {
            pool.report(
                s.proxy.unwrap(),
                "h",
                &Signal::ProxyFailed("x".into()),
                Duration::ZERO,
                now,
            );
        }
        // Retired: wait for its re-probe.
        match sessions.acquire("elsewhere", Some(&pool), now) {
            SessionPick::Wait { until, reason } => {
                assert_eq!(until, now + HealthConfig::default().reprobe_after);
                assert!(reason.contains("retired"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sessions_without_proxies() {
        let sessions = SessionPool::new(2, 0, 1).with_user_agents(3);
        let now = Instant::now();
        let a = session(sessions.acquire("h", None, now));
        let b = session(sessions.acquire("h", None, now));
        assert_eq!(a.proxy, None);
        assert_ne!(a.id, b.id);
        assert_eq!(session(sessions.acquire("h", None, now)), a);
        assert_eq!(session(sessions.acquire("h", None, now)), b);
        sessions.mark_bad(a.id);
        let c = session(sessions.acquire("h", None, now));
        assert!(c.id != a.id && c.id != b.id);
        assert_eq!(sessions.sessions().len(), 2);
        assert_eq!(sessions.stats().live, 2);
        // Unknown and retired ids are ignored.
        sessions.mark_bad(a.id);
        sessions.retire(a.id, RetireReason::Manual);
        assert_eq!(sessions.stats().retired_manual, 0);
    }

    #[test]
    fn user_agents_spread() {
        let sessions = SessionPool::new(1, 1, 0).with_user_agents(4).with_seed(3);
        let now = Instant::now();
        let agents: HashSet<usize> = (0..200)
            .map(|_| session(sessions.acquire("h", None, now)).user_agent)
            .collect();
        assert_eq!(agents.len(), 4);
    }
}
