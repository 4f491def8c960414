//! The defended mode's bookkeeping ([`crate::Defense`]): session ids, the
//! per-IP and per-session sliding windows and the bans.
//!
//! One mutex guards everything; it is only taken when the site is
//! defended, so an undefended site (the benchmark) never touches it.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::{BanKey, Defense};

/// Name of the session cookie.
pub(crate) const SID_COOKIE: &str = "sid";

/// Rate limits and bans of a defended site.
#[derive(Debug)]
pub(crate) struct Defender {
    cfg: Defense,
    /// Keys of the session id generator (random per server).
    sid_keys: RandomState,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Session ids issued so far.
    issued: u64,
    ips: HashMap<IpAddr, Window>,
    /// Every issued session id (known ids), with its window.
    sids: HashMap<String, Window>,
}

/// The recent requests of one key and its ban.
#[derive(Debug, Default)]
struct Window {
    /// Arrival times of the requests served within the window, oldest
    /// first (at most `max_requests`).
    hits: VecDeque<Instant>,
    banned_until: Option<Instant>,
}

impl Window {
    /// Time left of the ban at `now` (forgetting an expired ban).
    fn ban_left(&mut self, now: Instant) -> Option<Duration> {
        match self.banned_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                self.banned_until = None;
                None
            }
            None => None,
        }
    }

    /// Whether a request at `now` would exceed the limit (forgetting the
    /// requests that left the window).
    fn full(&mut self, now: Instant, cfg: &Defense) -> bool {
        while let Some(&t) = self.hits.front() {
            if now.saturating_duration_since(t) >= cfg.window {
                self.hits.pop_front();
            } else {
                break;
            }
        }
        self.hits.len() >= cfg.max_requests as usize
    }

    /// Bans the key from `now` on and empties its window.
    fn ban(&mut self, now: Instant, cfg: &Defense) {
        self.hits.clear();
        self.banned_until = Some(now + cfg.ban_for);
    }
}

/// What the defence decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The session the request is attributed to.
    pub sid: String,
    /// Whether `sid` was issued now (the response must set the cookie).
    pub new_sid: bool,
    /// `Some(time left of the ban)` when the request gets the ban answer
    /// (zero is never returned: at least one millisecond).
    pub banned: Option<Duration>,
}

impl Defender {
    pub(crate) fn new(cfg: Defense) -> Defender {
        Defender {
            cfg,
            sid_keys: RandomState::new(),
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn config(&self) -> &Defense {
        &self.cfg
    }

    /// Attributes a request from `ip` carrying the `sid` cookie values
    /// `sids` (in order; the first known one counts) and decides whether it
    /// is banned.
    pub(crate) fn check<'a>(
        &self,
        ip: IpAddr,
        sids: impl IntoIterator<Item = &'a str>,
        now: Instant,
    ) -> Verdict {
        let cfg = &self.cfg;
        let mut st = self.state.lock();
        let known = sids.into_iter().find(|s| st.sids.contains_key(*s));
        let (sid, new_sid) = match known {
            Some(s) => (s.to_owned(), false),
            None => (self.issue(&mut st), true),
        };
        let by_ip = matches!(cfg.by, BanKey::ClientIp | BanKey::Both);
        let by_sid = matches!(cfg.by, BanKey::SessionCookie | BanKey::Both);
        let State { ips, sids, .. } = &mut *st;
        let ip_window = by_ip.then(|| ips.entry(ip).or_default());
        let sid_window = if by_sid { sids.get_mut(&sid) } else { None };
        let mut windows: Vec<&mut Window> = [ip_window, sid_window].into_iter().flatten().collect();
        // Already banned: answer so, count nothing.
        let mut banned = windows.iter_mut().filter_map(|w| w.ban_left(now)).max();
        if banned.is_none() {
            // Over a limit: ban that key, count nothing; else count in all.
            let full: Vec<bool> = windows.iter_mut().map(|w| w.full(now, cfg)).collect();
            if full.contains(&true) {
                for (w, _) in windows.iter_mut().zip(&full).filter(|(_, f)| **f) {
                    w.ban(now, cfg);
                }
                banned = Some(cfg.ban_for);
            } else {
                for w in &mut windows {
                    w.hits.push_back(now);
                }
            }
        }
        Verdict {
            sid,
            new_sid,
            banned: banned.map(|d| d.max(Duration::from_millis(1))),
        }
    }

    /// Issues a new session id.
    fn issue(&self, st: &mut State) -> String {
        loop {
            st.issued += 1;
            let sid = format!("{:016x}", self.sid_keys.hash_one(st.issued));
            if !st.sids.contains_key(&sid) {
                st.sids.insert(sid.clone(), Window::default());
                return sid;
            }
        }
    }

    /// Forgets every session, window and ban.
    pub(crate) fn reset(&self) {
        let mut st = self.state.lock();
        st.ips.clear();
        st.sids.clear();
    }
}

/// The `sid` values in `Cookie` header values, in order.
pub(crate) fn cookie_sids<'a>(headers: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k.trim() == SID_COOKIE).then(|| v.trim().trim_matches('"'))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::BanAnswer;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn defense(by: BanKey) -> Defense {
        Defense {
            max_requests: 3,
            window: Duration::from_secs(10),
            answer: BanAnswer::Forbidden,
            by,
            ban_for: Duration::from_secs(5),
        }
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn sliding_window_per_ip_and_ban_expiry() {
        let d = Defender::new(defense(BanKey::ClientIp));
        let t0 = Instant::now();
        for i in 0..3 {
            let v = d.check(A, [], ms(t0, i));
            assert!(v.new_sid && v.banned.is_none(), "{i}: {v:?}");
        }
        let v = d.check(A, [], ms(t0, 100));
        assert_eq!(v.banned, Some(Duration::from_secs(5)));
        // Other IPs are not affected; banned requests do not extend the ban.
        assert!(d.check(B, [], ms(t0, 200)).banned.is_none());
        assert_eq!(
            d.check(A, [], ms(t0, 1100)).banned,
            Some(Duration::from_millis(4000))
        );
        // Expired: a fresh window of 3.
        for i in 0..3 {
            assert!(d.check(A, [], ms(t0, 5100 + i)).banned.is_none());
        }
        assert!(d.check(A, [], ms(t0, 5200)).banned.is_some());
    }

    #[test]
    fn old_requests_leave_the_window() {
        let d = Defender::new(defense(BanKey::ClientIp));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(d.check(A, [], ms(t0, i * 4000)).banned.is_none());
        }
        // t=10000: the request at 0 has left the 10 s window.
        assert!(d.check(A, [], ms(t0, 10_000)).banned.is_none());
        assert!(d.check(A, [], ms(t0, 10_001)).banned.is_some());
    }

    #[test]
    fn sessions_are_counted_by_sid() {
        let d = Defender::new(defense(BanKey::SessionCookie));
        let t0 = Instant::now();
        let first = d.check(A, ["forged"], t0);
        assert!(first.new_sid);
        assert_eq!(first.sid.len(), 16);
        let sid = first.sid.clone();
        for i in 1..3 {
            let v = d.check(A, ["forged", sid.as_str()], ms(t0, i));
            assert_eq!((v.sid.as_str(), v.new_sid), (sid.as_str(), false));
            assert!(v.banned.is_none());
        }
        assert!(d.check(B, [sid.as_str()], ms(t0, 3)).banned.is_some());
        // Same IP, new session: served; without cookies: never banned.
        for i in 0..10 {
            let v = d.check(A, [], ms(t0, 4 + i));
            assert!(v.new_sid && v.banned.is_none());
            assert_ne!(v.sid, sid);
        }
        d.reset();
        let v = d.check(A, [sid.as_str()], ms(t0, 20));
        assert!(v.new_sid && v.banned.is_none());
    }

    #[test]
    fn both_keys_ban_independently() {
        const C: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));
        let d = Defender::new(defense(BanKey::Both));
        let t0 = Instant::now();
        let sid = d.check(A, [], t0).sid;
        let s = || [sid.as_str()];
        // Three fresh sessions from B ban B, not A's session: the banned
        // request does not count for the session.
        for i in 0..3 {
            assert!(d.check(B, [], ms(t0, i)).banned.is_none());
        }
        assert!(d.check(B, s(), ms(t0, 5)).banned.is_some());
        assert!(d.check(A, s(), ms(t0, 6)).banned.is_none());
        assert!(d.check(A, s(), ms(t0, 7)).banned.is_none());
        // The session's fourth request is banned, from any IP, and does
        // not count for that IP.
        assert!(d.check(C, s(), ms(t0, 8)).banned.is_some());
        assert!(d.check(C, [], ms(t0, 9)).banned.is_none());
        // A's IP made three requests: banned, whatever the session.
        assert!(d.check(A, [], ms(t0, 10)).banned.is_some());
    }

    #[test]
    fn parses_cookie_headers() {
        assert_eq!(
            cookie_sids(["a=1; sid=abc", "x=y;sid=\"def\" ; sidx=no", "bare"]),
            ["abc", "def"]
        );
        assert!(cookie_sids([]).is_empty());
    }
}
