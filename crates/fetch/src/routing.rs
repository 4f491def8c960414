//! How each request goes out: the route table (which pool serves a host
//! or a rule), the proxy pools with their clients, the session pool, and
//! the pacer of every exit × host. The downloader asks for a route
//! ([`Routing::pick`]) and reports how the exchange went
//! ([`Routing::report`], [`Routing::report_pace`],
//! [`Routing::report_failed`]); everything else about proxies stays here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::header;
use tokio::sync::Notify;
use trawl_core::CrawlStats;

use crate::autothrottle::AutoThrottle;
use crate::config::FetchConfig;
use crate::downloader::{build_client, due};
use crate::error::FetchError;
use crate::pacing::{PaceGuard, PaceSignal, PaceVerdict, Pacer, RateInfo, Readiness};
use crate::proxy::{
    GroupIndex, Pick, ProxyId, ProxyPool, ProxySpec, RouteTable, Session, SessionId, SessionPick,
    SessionPool, SessionStats, Signal, Strategy, TransportFailure, pool::ExitGuard,
};

/// The crawl is stopping: no more retries, waits cut short. Shared by the
/// downloader and its routing.
#[derive(Default)]
pub(crate) struct Stop {
    stopping: AtomicBool,
    notify: Notify,
}

impl Stop {
    pub(crate) fn trigger(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Sleep `wait`, cut short when the crawl stops; false when it stopped.
    pub(crate) async fn sleep(&self, wait: Duration) -> bool {
        let stopped = self.notify.notified();
        if self.is_stopping() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = stopped => false,
        }
    }
}

/// The proxy pools, sessions and pacers of a crawl.
pub(crate) struct Routing {
    cfg: FetchConfig,
    /// For building proxy and session clients later.
    roots: Vec<reqwest::Certificate>,
    /// The client of direct requests.
    direct: reqwest::Client,
    stats: Arc<CrawlStats>,
    stop: Arc<Stop>,
    autothrottle: Option<Arc<AutoThrottle>>,
    /// Which group a request goes through (see [`crate::proxy::routes`]).
    routes: RouteTable,
    /// By [`GroupIndex`]: the default pool, direct, then named pools.
    groups: Vec<RouteGroup>,
    /// One client (proxy + cookie jar) per live session, per group.
    session_clients: parking_lot::Mutex<HashMap<(GroupIndex, SessionId), SessionClient>>,
    /// A pause for want of proxies is going on (announced once).
    pause_noted: AtomicBool,
    /// What the pauses announced so far were about, so each kind is said
    /// once a crawl, not at every cooldown.
    pauses_said: parking_lot::Mutex<HashSet<&'static str>>,
    last_publish: parking_lot::Mutex<Instant>,
}

/// A session's client and its cookie jar.
type SessionClient = (reqwest::Client, Arc<reqwest::cookie::Jar>);

/// A proxy pool (none: direct) with its clients and its sessions.
struct RouteGroup {
    pool: Option<ProxyPool>,
    /// One client per proxy, by `ProxyId` index (grows on reloads).
    proxy_clients: parking_lot::RwLock<Vec<reqwest::Client>>,
    sessions: Option<SessionPool>,
    /// The pace of each exit × host: the pool's, or (direct) exit 0's.
    pacer: Arc<Pacer>,
}

/// How one request goes out.
pub(crate) struct Route {
    client: reqwest::Client,
    group: GroupIndex,
    proxy: Option<ProxyId>,
    session: Option<Session>,
    /// The session's cookie jar (shared with the browser when rendering).
    jar: Option<Arc<reqwest::cookie::Jar>>,
    /// Its in-flight place and pace reservation, held for the exchange.
    _guard: RouteGuard,
}

/// Held, never read: dropping it ends the request's in-flight place.
struct RouteGuard {
    _exit: Option<ExitGuard>,
    _pace: Option<PaceGuard>,
}

impl RouteGuard {
    fn exit(guard: ExitGuard) -> RouteGuard {
        RouteGuard {
            _exit: Some(guard),
            _pace: None,
        }
    }

    fn pace(guard: PaceGuard) -> RouteGuard {
        RouteGuard {
            _exit: None,
            _pace: Some(guard),
        }
    }
}

impl Route {
    /// The exit's index in its group's pacer.
    fn exit(&self) -> usize {
        exit_key(self.proxy, self.session.as_ref())
    }
}

/// The pacer key of a route: its proxy; without one, its session (a site
/// may limit each session cookie on its own), or 0 for plain direct
/// requests.
fn exit_key(proxy: Option<ProxyId>, session: Option<&Session>) -> usize {
    match (proxy, session) {
        (Some(id), _) => id.index(),
        (None, Some(s)) => {
            usize::try_from(s.id.get()).map_or(usize::MAX, |id| id.saturating_add(1))
        }
        (None, None) => 0,
    }
}

/// Why no route could be had just now.
enum Refusal {
    /// Exits are usable but none is ready by its pace.
    Paced(Readiness),
    /// Every proxy is cooling down or down until then.
    Wait(Instant, String),
    /// Every proxy is retired for good.
    NoneLeft,
}

/// Rows of direct pacing kept in the stats.
const PACING_ROWS: usize = 100;

/// The longest a request waiting for a paced-out exit sleeps before it
/// looks again (a request ending wakes it sooner).
const PACE_POLL: Duration = Duration::from_millis(50);

impl Route {
    /// Whether the pools judge this route's answers (a proxy or a session).
    pub(crate) fn is_judged(&self) -> bool {
        self.proxy.is_some() || self.session.is_some()
    }

    pub(crate) fn is_proxied(&self) -> bool {
        self.proxy.is_some()
    }

    /// The session's identity (User-Agent profile).
    pub(crate) fn identity(&self) -> Option<usize> {
        self.session.map(|s| s.user_agent)
    }

    pub(crate) fn session_id(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.id.get())
    }

    /// The session's cookie jar (shared with the browser when rendering).
    pub(crate) fn jar(&self) -> Option<&Arc<reqwest::cookie::Jar>> {
        self.jar.as_ref()
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Routing {
    pub(crate) fn new(
        cfg: &FetchConfig,
        roots: Vec<reqwest::Certificate>,
        direct: reqwest::Client,
        stats: Arc<CrawlStats>,
        stop: Arc<Stop>,
        autothrottle: Option<Arc<AutoThrottle>>,
    ) -> Result<Routing, FetchError> {
        let routes = RouteTable::new(&cfg.proxy_pools, &cfg.host_pools)
            .map_err(|e| FetchError::Other(e.to_string()))?;
        let mut groups = vec![
            route_group(cfg, &roots, &cfg.proxies, cfg.proxy_strategy)?,
            route_group(cfg, &roots, &[], cfg.proxy_strategy)?,
        ];
        for named in &cfg.proxy_pools {
            let strategy = named.strategy.unwrap_or(cfg.proxy_strategy);
            groups.push(route_group(cfg, &roots, &named.proxies, strategy)?);
        }
        Ok(Routing {
            cfg: cfg.clone(),
            roots,
            direct,
            stats,
            stop,
            autothrottle,
            routes,
            groups,
            session_clients: parking_lot::Mutex::new(HashMap::new()),
            pause_noted: AtomicBool::new(false),
            pauses_said: parking_lot::Mutex::new(HashSet::new()),
            last_publish: parking_lot::Mutex::new(Instant::now()),
        })
    }

    /// The proxy a route goes through, if any.
    pub(crate) fn proxy_spec(&self, route: &Route) -> Option<ProxySpec> {
        let id = route.proxy?;
        self.groups[route.group].pool.as_ref()?.spec(id)
    }

    /// The exchange failed before an answer: the exit's pace hears of it.
    pub(crate) fn report_failed(&self, route: &Route, host: &str, latency: Duration) {
        self.groups[route.group].pacer.report(
            route.exit(),
            host,
            &PaceSignal::Failed,
            latency,
            Instant::now(),
        );
    }

    /// How the next request to `host` goes out: directly, through a proxy
    /// of the pool, or as a session (its proxy, cookie jar and identity),
    /// always through an exit that is ready for the host by its pace. While
    /// every exit is paced out this waits for the first to be ready
    /// (quietly: that is the pace working). While every proxy is cooling
    /// down (or all are retired) it waits too, saying why and for how long
    /// once: the crawl pauses instead of failing requests.
    pub(crate) async fn pick(&self, host: &str, pool: Option<&str>) -> Result<Route, FetchError> {
        let group = self
            .routes
            .route(host, pool)
            .map_err(|e| FetchError::Other(e.to_string()))?;
        let Some(g) = self.groups.get(group) else {
            return Err(FetchError::Other(format!("no route group {group}")));
        };
        // A request that got this far goes out even while the crawl stops
        // (like any request in flight); only waiting for a route ends
        // early, below.
        loop {
            // Registered before looking, so a request that ends in between
            // still wakes this one.
            let changed = g.pacer.changed();
            let now = Instant::now();
            let refused = if let Some(sessions) = &g.sessions {
                match sessions.acquire(host, g.pool.as_ref(), now) {
                    SessionPick::Session(session) => {
                        let reserved = match (session.proxy, &g.pool) {
                            (Some(id), Some(p)) => p.try_start(id, host, now).map(RouteGuard::exit),
                            _ => g
                                .pacer
                                .try_start(exit_key(None, Some(&session)), host, now)
                                .map(RouteGuard::pace),
                        };
                        match reserved {
                            Ok(guard) => {
                                let (client, jar) = self.session_client(group, &session)?;
                                return Ok(self.resumed(Route {
                                    client,
                                    group,
                                    proxy: session.proxy,
                                    session: Some(session),
                                    jar: Some(jar),
                                    _guard: guard,
                                }));
                            }
                            Err(paced) => Refusal::Paced(paced),
                        }
                    }
                    SessionPick::Paced(paced) => Refusal::Paced(paced),
                    SessionPick::Wait { until, reason } => Refusal::Wait(until, reason),
                    SessionPick::NoneLeft => Refusal::NoneLeft,
                }
            } else if let Some(p) = &g.pool {
                match p.pick(host, now) {
                    Pick::Proxy(id) => match p.try_start(id, host, now) {
                        Ok(guard) => {
                            let client = g.proxy_clients.read().get(id.index()).cloned();
                            let Some(client) = client else {
                                return Err(FetchError::Other(format!(
                                    "no client for proxy {}",
                                    id.index()
                                )));
                            };
                            return Ok(self.resumed(Route {
                                client,
                                group,
                                proxy: Some(id),
                                session: None,
                                jar: None,
                                _guard: RouteGuard::exit(guard),
                            }));
                        }
                        Err(paced) => Refusal::Paced(paced),
                    },
                    Pick::Paced(paced) => Refusal::Paced(paced),
                    Pick::Wait { until, reason } => Refusal::Wait(until, reason),
                    Pick::NoneLeft => Refusal::NoneLeft,
                }
            } else {
                match g.pacer.try_start(0, host, now) {
                    Ok(guard) => {
                        return Ok(Route {
                            client: self.direct.clone(),
                            group,
                            proxy: None,
                            session: None,
                            jar: None,
                            _guard: RouteGuard::pace(guard),
                        });
                    }
                    Err(paced) => Refusal::Paced(paced),
                }
            };
            let wait = match refused {
                Refusal::Paced(paced) => {
                    CrawlStats::inc(&self.stats.pace_waits);
                    let wait = match paced {
                        Readiness::At(until) => until.saturating_duration_since(now),
                        Readiness::Full | Readiness::Ready => PACE_POLL,
                    };
                    let wait = wait.clamp(Duration::from_millis(1), PACE_POLL);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = changed => {}
                    }
                    if self.stop.is_stopping() {
                        return Err(FetchError::Stopped);
                    }
                    continue;
                }
                Refusal::Wait(until, reason) => {
                    self.note_pause("cooling", group, || {
                        format!(
                            "No proxy can be used for {host} ({reason}): the crawl pauses for {:.0?}, until the first is usable again (said once).",
                            until.saturating_duration_since(now)
                        )
                    });
                    until
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(20))
                }
                Refusal::NoneLeft => {
                    self.note_pause("retired", group, || {
                        "Every proxy is retired after repeated failures and none will be probed again; the crawl is paused (reload the proxy list with SIGHUP, or Ctrl-C to stop).".to_string()
                    });
                    Duration::from_secs(1)
                }
            };
            CrawlStats::inc(&self.stats.proxy_waits);
            self.publish_stats(true);
            if !self.stop.sleep(wait).await {
                return Err(FetchError::Stopped);
            }
        }
    }
    /// Say a pause of this kind once a crawl (at WARN); later ones, and the
    /// same pause seen by other requests, at debug level.
    fn note_pause(&self, kind: &'static str, group: GroupIndex, message: impl FnOnce() -> String) {
        let first_of_pause = !self.pause_noted.swap(true, Ordering::SeqCst);
        let first_of_kind = self.pauses_said.lock().insert(kind);
        let pool = self.routes.name(group);
        if first_of_pause && first_of_kind {
            tracing::warn!(pool, "{}", message());
        } else if first_of_pause {
            tracing::debug!(pool, "{}", message());
        }
    }
    /// A route was found: end a pause, if one was going on.
    fn resumed(&self, route: Route) -> Route {
        if self.pause_noted.swap(false, Ordering::SeqCst) {
            tracing::debug!("A proxy is usable again; the crawl resumes.");
        }
        route
    }
    /// The client of a session: its proxy and its own cookie jar.
    fn session_client(
        &self,
        group: GroupIndex,
        session: &Session,
    ) -> Result<(reqwest::Client, Arc<reqwest::cookie::Jar>), FetchError> {
        let g = &self.groups[group];
        let mut clients = self.session_clients.lock();
        if let Some(sessions) = &g.sessions {
            for gone in sessions.drain_retired() {
                clients.remove(&(group, gone));
            }
        }
        if let Some(c) = clients.get(&(group, session.id)) {
            return Ok(c.clone());
        }
        let spec = session
            .proxy
            .and_then(|id| g.pool.as_ref().and_then(|p| p.spec(id)));
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = build_client(&self.cfg, &self.roots, spec.as_ref(), Some(jar.clone()))
            .map_err(|e| FetchError::Other(format!("building a session client: {e}")))?;
        clients.insert((group, session.id), (client.clone(), jar.clone()));
        Ok((client, jar))
    }
    /// Tell the route's pace how the host answered; true for a rate limit.
    pub(crate) fn report_pace(
        &self,
        route: &Route,
        host: &str,
        rate: &RateInfo,
        latency: Duration,
    ) -> bool {
        let verdict = self.groups[route.group].pacer.report(
            route.exit(),
            host,
            &PaceSignal::Answer(rate.clone()),
            latency,
            Instant::now(),
        );
        match verdict {
            PaceVerdict::Clean => {}
            PaceVerdict::RateLimited => CrawlStats::inc(&self.stats.rate_limited),
            PaceVerdict::LatencyClimbed => CrawlStats::inc(&self.stats.latency_climbs),
        }
        if verdict != PaceVerdict::Clean {
            self.publish_stats(false);
        }
        verdict == PaceVerdict::RateLimited
    }
    /// Tell the proxy pool and the session pool how an exchange went, and
    /// turn bans and proxy failures into errors that move the request to
    /// another route.
    pub(crate) fn report(
        &self,
        route: &Route,
        host: &str,
        signal: Signal,
        latency: Duration,
    ) -> Result<(), FetchError> {
        let now = Instant::now();
        let g = &self.groups[route.group];
        if let (Some(id), Some(pool)) = (route.proxy, &g.pool) {
            pool.report(id, host, &signal, latency, now);
        }
        if let (Some(session), Some(sessions)) = (&route.session, &g.sessions) {
            sessions.report(session.id, &signal);
        }
        self.publish_stats(false);
        let via = || match (route.proxy, &g.pool, &route.session) {
            (Some(id), Some(pool), _) => pool.spec(id).map_or_else(String::new, |s| s.masked()),
            (_, _, Some(session)) => session.id.to_string(),
            _ => "direct".to_string(),
        };
        match signal {
            Signal::Banned(reason) => {
                CrawlStats::inc(&self.stats.bans);
                Err(FetchError::Banned {
                    proxy: via(),
                    reason,
                })
            }
            Signal::ProxyFailed(reason) => {
                CrawlStats::inc(&self.stats.proxy_failures);
                tracing::warn!(proxy = %via(), %reason, "Proxy failed; trying another.");
                Err(FetchError::Proxy {
                    proxy: via(),
                    reason,
                })
            }
            Signal::Ok | Signal::TargetFailed | Signal::RateLimited(_) => Ok(()),
        }
    }
    /// Replace the proxy list of pool `name` (`default` for `--proxy`)
    /// while the crawl runs: proxies still listed keep their health and
    /// pace, new ones get a client, dropped ones are never picked again
    /// (requests in flight finish). Returns how many were added and
    /// removed.
    pub(crate) fn reload(
        &self,
        name: &str,
        specs: &[ProxySpec],
    ) -> Result<(usize, usize), FetchError> {
        let group = self
            .routes
            .group(name)
            .map_err(|e| FetchError::Other(e.to_string()))?;
        let Some(g) = self.groups.get(group) else {
            return Err(FetchError::Other(format!("no route group {group}")));
        };
        let Some(pool) = &g.pool else {
            return Err(FetchError::Other(format!(
                "pool {name} has no proxies to reload (start the crawl with some)"
            )));
        };
        // Clients first, so a new id always has one when it is picked.
        let mut clients = Vec::new();
        let mut known = pool.specs();
        for spec in specs {
            if known.contains(spec) {
                continue;
            }
            known.push(spec.clone());
            clients.push(
                build_client(&self.cfg, &self.roots, Some(spec), None).map_err(|reason| {
                    FetchError::Proxy {
                        proxy: spec.masked(),
                        reason,
                    }
                })?,
            );
        }
        let mut all_clients = g.proxy_clients.write();
        all_clients.extend(clients);
        let (added, removed) = pool.reload(specs);
        drop(all_clients);
        self.pause_noted.store(false, Ordering::SeqCst);
        self.publish_stats(true);
        Ok((added.len(), removed.len()))
    }
    /// Put the proxies' and sessions' state into the crawl stats (at most
    /// every 250 ms unless `now`).
    pub(crate) fn publish_stats(&self, force: bool) {
        let judged = self
            .groups
            .iter()
            .any(|g| g.pool.is_some() || g.sessions.is_some());
        let limited = self.stats.rate_limited.load(Ordering::Relaxed) > 0
            || self.stats.latency_climbs.load(Ordering::Relaxed) > 0;
        if !judged && self.autothrottle.is_none() && !limited {
            return;
        }
        if !due(&self.last_publish, Duration::from_millis(250), force) {
            return;
        }
        let mut value = serde_json::json!({});
        let now = Instant::now();
        let mut proxies = Vec::new();
        let mut sessions: Option<SessionStats> = None;
        for (i, g) in self.groups.iter().enumerate() {
            let name = self.routes.name(i);
            for status in g.pool.iter().flat_map(|p| p.snapshot(now)) {
                let mut row = serde_json::to_value(status).unwrap_or_default();
                row["pool"] = name.into();
                proxies.push(row);
            }
            if let Some(s) = &g.sessions {
                sessions.get_or_insert_default().add(&s.stats());
            }
        }
        if self.groups.iter().any(|g| g.pool.is_some()) {
            value["proxies"] = serde_json::Value::Array(proxies);
        }
        // Direct requests' pace, for the hosts where it matters: those
        // that rate limited (the busiest first, at most PACING_ROWS).
        let mut paced: Vec<_> = self
            .groups
            .iter()
            .filter(|g| g.pool.is_none())
            .flat_map(|g| g.pacer.snapshot(now))
            .filter(|p| p.rate_limits > 0 || p.retry_afters > 0 || p.state != "ramping")
            .collect();
        if !paced.is_empty() {
            paced.sort_by_key(|p| std::cmp::Reverse(p.requests));
            paced.truncate(PACING_ROWS);
            value["pacing"] = serde_json::to_value(paced).unwrap_or_default();
        }
        if let Some(s) = sessions {
            value["sessions"] = serde_json::to_value(s).unwrap_or_default();
        }
        if let Some(at) = &self.autothrottle {
            value["throttle"] = at
                .snapshot()
                .iter()
                .map(|h| {
                    serde_json::json!({
                        "host": h.host,
                        "delay_ms": h.delay.as_millis() as u64,
                        "latency_ms": h.latency.as_millis() as u64,
                        "responses": h.responses,
                    })
                })
                .collect();
        }
        *self.stats.proxies.lock() = Some(value);
    }
}

fn route_group(
    cfg: &FetchConfig,
    roots: &[reqwest::Certificate],
    proxies: &[ProxySpec],
    strategy: Strategy,
) -> Result<RouteGroup, FetchError> {
    let proxy_clients = proxies
        .iter()
        .map(|spec| {
            build_client(cfg, roots, Some(spec), None).map_err(|e| FetchError::Proxy {
                proxy: spec.masked(),
                reason: e,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut pacing = cfg.pacing.clone();
    pacing.max_in_flight = cfg.per_host.max(1);
    pacing.max_retry_after = cfg.max_retry_after;
    let pool = (!proxies.is_empty()).then(|| {
        ProxyPool::with_pacing(
            proxies.to_vec(),
            strategy,
            cfg.proxy_health.clone(),
            pacing.clone(),
        )
    });
    let sessions = cfg.sessions.map(|sc| {
        let uas = cfg.identities.as_ref().map_or(1, |i| i.len().max(1));
        SessionPool::new(sc.max_sessions.max(1), sc.max_uses, sc.max_errors).with_user_agents(uas)
    });
    let pacer = match &pool {
        Some(p) => p.pacer().clone(),
        None => Arc::new(Pacer::new(pacing)),
    };
    Ok(RouteGroup {
        pool,
        proxy_clients: parking_lot::RwLock::new(proxy_clients),
        sessions,
        pacer,
    })
}

/// Whether a response that came back through an HTTP proxy is the proxy
/// refusing our credentials rather than the site's answer: a 407, or a 401
/// carrying `Proxy-Authenticate` or written by the proxy itself (tinyproxy
/// answers wrong credentials with a 401 of its own; proxies' own pages
/// name them in `Server` or `X-Squid-Error`).
pub(crate) fn proxy_refused_credentials(status: u16, headers: &header::HeaderMap) -> bool {
    if status == 407 {
        return true;
    }
    if status != 401 {
        return false;
    }
    if headers.contains_key(header::PROXY_AUTHENTICATE) || headers.contains_key("x-squid-error") {
        return true;
    }
    let server = headers
        .get(header::SERVER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    ["tinyproxy", "squid", "privoxy", "3proxy"]
        .iter()
        .any(|p| server.starts_with(p))
}

/// What a failed request through a proxy says about the proxy. Only the
/// error's causes are read, not its own message, which quotes the URL (a
/// "407" in a path must not look like a proxy's answer).
pub(crate) fn transport_failure(error: &reqwest::Error, fetch: &FetchError) -> TransportFailure {
    let mut causes = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        causes.push_str(&e.to_string().to_ascii_lowercase());
        causes.push_str(": ");
        source = e.source();
    }
    let has = |w: &str| causes.contains(w);
    if has("407")
        || has("proxy authentication")
        || (has("socks") && (has("auth") || has("credentials")))
    {
        TransportFailure::ProxyAuth
    } else if matches!(fetch, FetchError::Connect(_)) || has("tunnel") || has("socks") {
        TransportFailure::ProxyConnect
    } else if has("invalid http") || has("invalid status") || has("parse") {
        TransportFailure::ProxyProtocol
    } else {
        TransportFailure::Target(fetch.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_proxys_own_401_is_a_credentials_failure_a_sites_is_not() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = header::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, header::HeaderValue::from_static(v));
            }
            h
        };
        assert!(proxy_refused_credentials(407, &with(&[])));
        assert!(proxy_refused_credentials(
            401,
            &with(&[
                ("server", "tinyproxy/1.11.1"),
                ("www-authenticate", "Basic realm=\"Tinyproxy\"")
            ])
        ));
        assert!(proxy_refused_credentials(
            401,
            &with(&[("proxy-authenticate", "Basic")])
        ));
        assert!(proxy_refused_credentials(
            401,
            &with(&[("x-squid-error", "ERR_CACHE_ACCESS_DENIED 0")])
        ));
        // The site's own 401, and the proxy's other errors, are the site's.
        assert!(!proxy_refused_credentials(
            401,
            &with(&[("server", "nginx"), ("www-authenticate", "Basic")])
        ));
        assert!(!proxy_refused_credentials(
            502,
            &with(&[("server", "tinyproxy/1.11.1")])
        ));
    }

    /// A "proxy" that accepts and hangs up: the request fails, and a "407"
    /// in the URL must not make that look like an authentication failure.
    #[tokio::test]
    async fn a_407_in_the_url_is_not_a_proxy_auth_failure() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                drop(conn);
            }
        });
        let spec = ProxySpec::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let client = build_client(&FetchConfig::default(), &[], Some(&spec), None).unwrap();
        for path in ["/p/407", "/p/408"] {
            let err = client
                .get(format!("http://127.0.0.1:9{path}"))
                .send()
                .await
                .unwrap_err();
            let fetch = FetchError::from_reqwest(&err);
            let failure = transport_failure(&err, &fetch);
            assert_ne!(failure, TransportFailure::ProxyAuth, "{path}: {err:?}");
        }
    }
}
