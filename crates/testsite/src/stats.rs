//! Request statistics of the running test site: total, per-path and
//! per-HTTP-version counts, per-Host request counts and maximum concurrency,
//! per-client-IP and per-session served/banned counts, per-trap counts of
//! the trap site, and an optional bounded request log. Counting is
//! lock-free for `/p/` pages, traps and per-host counters (atomics behind a
//! read-mostly lock), so it stays off the benchmark's way.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

/// Maximum number of entries kept in [`SiteStats::log`]; later requests
/// are counted in [`SiteStats::log_dropped`] instead.
pub const LOG_CAPACITY: usize = 200_000;

/// Snapshot of what the server saw (see [`crate::TestSite::stats`]).
/// `GET /__testsite/stats` returns it as JSON, without `log`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStats {
    /// Requests served (the stats endpoint itself is not counted).
    pub requests: u64,
    /// Requests per path (query string excluded).
    pub by_path: BTreeMap<String, u64>,
    /// Per `Host` header value (`:authority` for HTTP/2).
    pub hosts: BTreeMap<String, HostStats>,
    /// Requests per HTTP version as hyper names it (`"HTTP/1.1"`,
    /// `"HTTP/2.0"`); versions never seen are absent.
    #[serde(default)]
    pub versions: BTreeMap<String, u64>,
    /// Requests that got the ban answer of a defended site
    /// ([`crate::Defense`]).
    #[serde(default)]
    pub banned: u64,
    /// Per client IP (the TCP peer address; behind a proxy, the proxy's
    /// outgoing address), whatever the site's mode.
    #[serde(default)]
    pub by_client: BTreeMap<IpAddr, ClientCounts>,
    /// Per session id (`sid` cookie) of a defended site: the requests
    /// attributed to it (see [`RequestLogEntry::sid`]). Empty when the site
    /// is not defended.
    #[serde(default)]
    pub by_session: BTreeMap<String, ClientCounts>,
    /// Requests per trap of the trap site ([`crate::TRAP_NAMES`], as
    /// [`crate::TrapSite::trap_of`] classifies the request target); traps
    /// never requested are absent.
    #[serde(default)]
    pub by_trap: BTreeMap<String, u64>,
    /// One entry per request, in arrival order (empty when
    /// `SiteConfig::log_requests` is false; at most [`LOG_CAPACITY`]).
    #[serde(skip)]
    pub log: Vec<RequestLogEntry>,
    /// Requests not logged because the log was full.
    pub log_dropped: u64,
}

/// Per-host counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStats {
    /// Requests with this Host.
    pub requests: u64,
    /// Most requests with this Host being served at the same time (from
    /// request arrival until the response body was fully sent or dropped).
    pub max_concurrency: usize,
}

/// Requests of one client IP or session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCounts {
    /// Answered normally (whatever the status; `/robots.txt` included).
    pub ok: u64,
    /// Answered with the ban answer of a defended site.
    pub banned: u64,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLogEntry {
    /// `Host` header (or `:authority`), empty if absent.
    pub host: String,
    /// Request target, e.g. `/session/3?sid=ab`.
    pub path_and_query: String,
    /// When the request arrived.
    pub started: Instant,
    /// When the response body was fully sent or dropped (None while in
    /// flight).
    pub finished: Option<Instant>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `Referer` and the `X-…` headers, lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Peer address of the connection.
    pub client_ip: IpAddr,
    /// HTTP version of the request, e.g. `"HTTP/1.1"` or `"HTTP/2.0"`.
    pub http_version: String,
    /// Session of a defended site the request was attributed to: the `sid`
    /// cookie it carried if known, else the one its response issued.
    /// `None` when the site is not defended, and for `/robots.txt`.
    pub sid: Option<String>,
    /// Whether it got the ban answer of a defended site.
    pub banned: bool,
}

#[derive(Debug, Default)]
pub(crate) struct HostCounters {
    requests: AtomicU64,
    current: AtomicUsize,
    max: AtomicUsize,
}

#[derive(Debug, Default)]
struct ClientCounters {
    ok: AtomicU64,
    banned: AtomicU64,
}

impl ClientCounters {
    fn count(&self, banned: bool) {
        let c = if banned { &self.banned } else { &self.ok };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn load(&self) -> ClientCounts {
        ClientCounts {
            ok: self.ok.load(Ordering::Relaxed),
            banned: self.banned.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Default)]
struct Log {
    generation: u64,
    entries: Vec<RequestLogEntry>,
    dropped: u64,
}

/// Live counters shared by all connections.
#[derive(Debug)]
pub(crate) struct Stats {
    log_enabled: bool,
    requests: AtomicU64,
    /// Indexed by [`version_index`].
    versions: [AtomicU64; VERSIONS.len()],
    pages: Box<[AtomicU64]>,
    root: AtomicU64,
    other: Mutex<HashMap<String, u64>>,
    hosts: RwLock<HashMap<String, Arc<HostCounters>>>,
    banned: AtomicU64,
    clients: RwLock<HashMap<IpAddr, ClientCounters>>,
    sessions: Mutex<HashMap<String, ClientCounts>>,
    /// Indexed like [`crate::TRAP_NAMES`].
    traps: [AtomicU64; crate::TRAP_NAMES.len()],
    log: Mutex<Log>,
}

/// What the server knows about a request when it arrives.
pub(crate) struct RequestInfo<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub page: Option<u32>,
    pub path_and_query: &'a str,
    pub user_agent: Option<&'a str>,
    /// Headers worth logging (see [`RequestLogEntry::headers`]).
    pub headers: Vec<(String, String)>,
    pub client_ip: IpAddr,
    pub version: http::Version,
    /// Session of a defended site.
    pub sid: Option<&'a str>,
    /// Got the ban answer.
    pub banned: bool,
    /// Index into [`crate::TRAP_NAMES`] of a trap-site trap page.
    pub trap: Option<usize>,
}

/// The HTTP versions hyper knows, in [`version_index`] order.
const VERSIONS: [http::Version; 5] = [
    http::Version::HTTP_09,
    http::Version::HTTP_10,
    http::Version::HTTP_11,
    http::Version::HTTP_2,
    http::Version::HTTP_3,
];

/// Position of `v` in [`VERSIONS`] (`http::Version` is non-exhaustive;
/// anything unknown counts as HTTP/1.1, which hyper never produces).
fn version_index(v: http::Version) -> usize {
    VERSIONS.iter().position(|&k| k == v).unwrap_or(2)
}

/// `"HTTP/1.1"`, `"HTTP/2.0"`, … (`http::Version`'s `Debug` form).
fn version_name(v: http::Version) -> String {
    format!("{v:?}")
}

/// Marks one request as in flight until dropped (moved into the response
/// body, so it lives until the body is finished or dropped).
#[derive(Debug)]
pub(crate) struct InFlight {
    host: Arc<HostCounters>,
    log: Option<(Arc<Stats>, u64, usize)>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.host.current.fetch_sub(1, Ordering::AcqRel);
        if let Some((stats, generation, idx)) = self.log.take() {
            let mut log = stats.log.lock();
            if log.generation == generation
                && let Some(e) = log.entries.get_mut(idx)
            {
                e.finished = Some(Instant::now());
            }
        }
    }
}

impl Stats {
    pub(crate) fn new(pages: usize, log_enabled: bool) -> Stats {
        Stats {
            log_enabled,
            requests: AtomicU64::new(0),
            versions: Default::default(),
            pages: (0..pages).map(|_| AtomicU64::new(0)).collect(),
            root: AtomicU64::new(0),
            other: Mutex::new(HashMap::new()),
            hosts: RwLock::new(HashMap::new()),
            banned: AtomicU64::new(0),
            clients: RwLock::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            traps: Default::default(),
            log: Mutex::new(Log::default()),
        }
    }

    /// Counts a request and returns its in-flight guard.
    pub(crate) fn begin(self: &Arc<Self>, info: &RequestInfo<'_>) -> InFlight {
        let started = Instant::now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.versions[version_index(info.version)].fetch_add(1, Ordering::Relaxed);
        match info.page.and_then(|i| self.pages.get(i as usize)) {
            Some(c) => {
                c.fetch_add(1, Ordering::Relaxed);
            }
            None if info.path == "/" => {
                self.root.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let mut other = self.other.lock();
                match other.get_mut(info.path) {
                    Some(n) => *n += 1,
                    None => {
                        other.insert(info.path.to_owned(), 1);
                    }
                }
            }
        }
        let host = self.host_counters(info.host);
        host.requests.fetch_add(1, Ordering::Relaxed);
        let now = host.current.fetch_add(1, Ordering::AcqRel) + 1;
        host.max.fetch_max(now, Ordering::AcqRel);
        if info.banned {
            self.banned.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = info.trap.and_then(|t| self.traps.get(t)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.count_client(info.client_ip, info.banned);
        if let Some(sid) = info.sid {
            let mut sessions = self.sessions.lock();
            let c = sessions.entry(sid.to_owned()).or_default();
            if info.banned {
                c.banned += 1;
            } else {
                c.ok += 1;
            }
        }

        let log = if self.log_enabled {
            let mut log = self.log.lock();
            if log.entries.len() < LOG_CAPACITY {
                let idx = log.entries.len();
                log.entries.push(RequestLogEntry {
                    host: info.host.to_owned(),
                    path_and_query: info.path_and_query.to_owned(),
                    started,
                    finished: None,
                    user_agent: info.user_agent.map(str::to_owned),
                    headers: info.headers.clone(),
                    client_ip: info.client_ip,
                    http_version: version_name(info.version),
                    sid: info.sid.map(str::to_owned),
                    banned: info.banned,
                });
                Some((Arc::clone(self), log.generation, idx))
            } else {
                log.dropped += 1;
                None
            }
        } else {
            None
        };
        InFlight { host, log }
    }

    fn host_counters(&self, host: &str) -> Arc<HostCounters> {
        if let Some(c) = self.hosts.read().get(host) {
            return Arc::clone(c);
        }
        let mut hosts = self.hosts.write();
        Arc::clone(hosts.entry(host.to_owned()).or_default())
    }

    fn count_client(&self, ip: IpAddr, banned: bool) {
        if let Some(c) = self.clients.read().get(&ip) {
            c.count(banned);
            return;
        }
        self.clients.write().entry(ip).or_default().count(banned);
    }

    /// Zeroes the counters and clears the log. Requests in flight keep
    /// counting towards the current concurrency (and so the new maximum).
    pub(crate) fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        for c in &self.versions {
            c.store(0, Ordering::Relaxed);
        }
        for c in self.pages.iter() {
            c.store(0, Ordering::Relaxed);
        }
        self.root.store(0, Ordering::Relaxed);
        self.other.lock().clear();
        for c in self.hosts.read().values() {
            c.requests.store(0, Ordering::Relaxed);
            c.max
                .store(c.current.load(Ordering::Acquire), Ordering::Release);
        }
        self.banned.store(0, Ordering::Relaxed);
        for c in self.clients.read().values() {
            c.ok.store(0, Ordering::Relaxed);
            c.banned.store(0, Ordering::Relaxed);
        }
        self.sessions.lock().clear();
        for c in &self.traps {
            c.store(0, Ordering::Relaxed);
        }
        let mut log = self.log.lock();
        log.generation += 1;
        log.entries.clear();
        log.dropped = 0;
    }

    /// A consistent-enough snapshot (counters are read one by one).
    pub(crate) fn snapshot(&self, with_log: bool) -> SiteStats {
        let mut by_path = BTreeMap::new();
        let root = self.root.load(Ordering::Relaxed);
        if root > 0 {
            by_path.insert("/".to_owned(), root);
        }
        for (i, c) in self.pages.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                by_path.insert(format!("/p/{i}"), n);
            }
        }
        for (k, v) in self.other.lock().iter() {
            by_path.insert(k.clone(), *v);
        }
        let hosts = self
            .hosts
            .read()
            .iter()
            .filter_map(|(k, c)| {
                let s = HostStats {
                    requests: c.requests.load(Ordering::Relaxed),
                    max_concurrency: c.max.load(Ordering::Acquire),
                };
                (s.requests > 0 || s.max_concurrency > 0).then(|| (k.clone(), s))
            })
            .collect();
        let versions = VERSIONS
            .iter()
            .zip(&self.versions)
            .filter_map(|(&v, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then(|| (version_name(v), n))
            })
            .collect();
        let by_client = self
            .clients
            .read()
            .iter()
            .map(|(ip, c)| (*ip, c.load()))
            .filter(|(_, c)| *c != ClientCounts::default())
            .collect();
        let by_session = self
            .sessions
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let by_trap = crate::TRAP_NAMES
            .iter()
            .zip(&self.traps)
            .filter_map(|(name, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then(|| ((*name).to_owned(), n))
            })
            .collect();
        let (log, log_dropped) = {
            let log = self.log.lock();
            (
                if with_log {
                    log.entries.clone()
                } else {
                    Vec::new()
                },
                log.dropped,
            )
        };
        SiteStats {
            requests: self.requests.load(Ordering::Relaxed),
            by_path,
            hosts,
            versions,
            banned: self.banned.load(Ordering::Relaxed),
            by_client,
            by_session,
            by_trap,
            log,
            log_dropped,
        }
    }

    /// Requests currently in flight for `host` (for tests and diagnostics).
    pub(crate) fn in_flight(&self, host: &str) -> usize {
        self.hosts
            .read()
            .get(host)
            .map_or(0, |c| c.current.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn info<'a>(host: &'a str, path: &'a str, page: Option<u32>) -> RequestInfo<'a> {
        RequestInfo {
            host,
            path,
            page,
            path_and_query: path,
            user_agent: Some("trawl/test"),
            headers: Vec::new(),
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            version: if path == "/x" {
                http::Version::HTTP_2
            } else {
                http::Version::HTTP_11
            },
            sid: None,
            banned: false,
            trap: None,
        }
    }

    #[test]
    fn counts_and_concurrency() {
        let stats = Arc::new(Stats::new(10, true));
        let a = stats.begin(&info("h:1", "/p/3", Some(3)));
        let b = stats.begin(&info("h:1", "/x", None));
        let c = stats.begin(&info("h:2", "/", None));
        assert_eq!(stats.in_flight("h:1"), 2);
        drop(a);
        drop(b);
        let d = stats.begin(&info("h:1", "/p/3", Some(3)));
        drop(d);
        drop(c);
        let s = stats.snapshot(true);
        assert_eq!(s.requests, 4);
        assert_eq!(s.by_path.get("/p/3"), Some(&2));
        assert_eq!(s.by_path.get("/x"), Some(&1));
        assert_eq!(s.by_path.get("/"), Some(&1));
        assert_eq!(
            s.hosts["h:1"],
            HostStats {
                requests: 3,
                max_concurrency: 2
            }
        );
        assert_eq!(
            s.hosts["h:2"],
            HostStats {
                requests: 1,
                max_concurrency: 1
            }
        );
        assert_eq!(s.log.len(), 4);
        assert!(s.log.iter().all(|e| e.finished.is_some()));
        assert_eq!(s.log[0].user_agent.as_deref(), Some("trawl/test"));
        assert_eq!(s.log[0].http_version, "HTTP/1.1");
        assert_eq!(s.log[1].http_version, "HTTP/2.0");
        assert_eq!(
            s.versions,
            BTreeMap::from([("HTTP/1.1".to_owned(), 3), ("HTTP/2.0".to_owned(), 1)])
        );

        let e = stats.begin(&info("h:1", "/p/1", Some(1)));
        stats.reset();
        let s = stats.snapshot(true);
        assert_eq!(s.requests, 0);
        assert!(s.by_path.is_empty());
        assert!(s.versions.is_empty());
        assert!(s.log.is_empty());
        assert_eq!(s.hosts["h:1"].max_concurrency, 1);
        drop(e);
        assert_eq!(stats.in_flight("h:1"), 0);
    }

    #[test]
    fn per_client_and_session_counts() {
        let stats = Arc::new(Stats::new(1, true));
        let b = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        drop(stats.begin(&info("h", "/p/0", Some(0))));
        for banned in [false, true, true] {
            drop(stats.begin(&RequestInfo {
                client_ip: b,
                sid: Some("s1"),
                banned,
                ..info("h", "/", None)
            }));
        }
        let s = stats.snapshot(true);
        assert_eq!(s.requests, 4);
        assert_eq!(s.banned, 2);
        let a = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(
            s.by_client,
            BTreeMap::from([
                (a, ClientCounts { ok: 1, banned: 0 }),
                (b, ClientCounts { ok: 1, banned: 2 })
            ])
        );
        assert_eq!(
            s.by_session,
            BTreeMap::from([("s1".to_owned(), ClientCounts { ok: 1, banned: 2 })])
        );
        assert_eq!(s.log[0].sid, None);
        assert_eq!(
            (s.log[3].client_ip, s.log[3].sid.as_deref(), s.log[3].banned),
            (b, Some("s1"), true)
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.contains("\"127.0.0.2\":{\"ok\":1,\"banned\":2}"),
            "{json}"
        );
        let back: SiteStats = serde_json::from_str(&json).unwrap();
        assert_eq!(back.by_client, s.by_client);
        assert_eq!(back.by_session, s.by_session);
        stats.reset();
        let s = stats.snapshot(true);
        assert_eq!(s.banned, 0);
        assert!(s.by_client.is_empty() && s.by_session.is_empty());
    }

    #[test]
    fn log_can_be_off() {
        let stats = Arc::new(Stats::new(1, false));
        drop(stats.begin(&info("h", "/p/0", Some(0))));
        let s = stats.snapshot(true);
        assert_eq!(s.requests, 1);
        assert!(s.log.is_empty());
    }
}
