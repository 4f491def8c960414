//! The running test site: a real HTTP/1.1 + HTTP/2 (h2c) server on a
//! loopback address built on hyper 1 / hyper-util, or the same over TLS
//! (HTTP/1.1 and h2 by ALPN, see [`crate::tls`]), serving the generated
//! [`Site`] and the fault routes (redirect chains and loops, error statuses,
//! flaky and rate-limited pages, slow/stalled/hung responses, TCP resets,
//! compressed, endless, malformed, binary and non-UTF-8 bodies, traps),
//! optionally defended by rate limits and bans ([`crate::Defense`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::body::{ShutdownFuture, SiteBody};
use crate::config::{BanAnswer, CAPTCHA_TEXT, RobotsMode, SiteConfig};
use crate::defense::{Defender, SID_COOKIE, Verdict, cookie_sids};
use crate::rng::hash3;
use crate::robots::default_robots_txt;
use crate::site::{
    Extra, Node, Site, is_segment, nasty_title, parse_calendar, parse_canonical_u64,
};
use crate::stats::{RequestInfo, SiteStats, Stats};

/// Path of the JSON statistics endpoint (never counted, never linked).
pub const STATS_PATH: &str = "/__testsite/stats";

/// Total size of the `/huge` body (10 GiB, generated lazily).
pub const HUGE_BYTES: u64 = 10 << 30;

const HTML: &str = "text/html; charset=utf-8";
const MAX_SLOW_MS: u64 = 600_000;
/// A TLS client that has not finished its handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Resp = Response<SiteBody>;

/// A running test site. Dropping it stops the server too (without waiting);
/// [`TestSite::shutdown`] stops it and waits.
pub struct TestSite {
    addr: SocketAddr,
    /// The certificate in PEM, for a TLS site.
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    site: Arc<Site>,
    stats: Arc<Stats>,
    /// Per-id attempt counters of `/flaky/{id}` and `/flaky429/{id}`.
    faults: Mutex<HashMap<String, u32>>,
    session_counter: AtomicU64,
    /// Counter the trap site's session ids are derived from.
    trap_sids: AtomicU64,
    /// Per-page content versions bumped by [`TestSite::touch`]; part of the
    /// `/p/` pages' ETag, so a touched page is "changed" for conditional GETs.
    versions: Mutex<HashMap<u32, u32>>,
    /// Pages [`TestSite::rewrite`] gave another text.
    rewritten: Mutex<std::collections::HashSet<u32>>,
    /// 304 Not Modified answers sent.
    not_modified: AtomicU64,
    /// `http` or `https`, for absolute links.
    scheme: &'static str,
    /// `ip:port` of the listener, used when the request has no usable Host.
    local_host: String,
    /// Rate limits and bans of a defended site.
    defender: Option<Defender>,
    shutdown: watch::Receiver<bool>,
    huge_chunk: Bytes,
    binary: Bytes,
    gzip_page: Bytes,
    brotli_page: Bytes,
    malformed: Bytes,
    latin1: Bytes,
    sjis: Bytes,
}

#[derive(Debug)]
struct ConnInfo {
    peer: SocketAddr,
    reset: Arc<AtomicBool>,
}

impl TestSite {
    /// Starts the site on `127.0.0.1` with an ephemeral port.
    pub async fn start(cfg: SiteConfig) -> io::Result<TestSite> {
        TestSite::start_on(cfg, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts the site on `addr` (e.g. `127.0.0.2:0` or a fixed port).
    pub async fn start_on(cfg: SiteConfig, addr: SocketAddr) -> io::Result<TestSite> {
        let site = tokio::task::spawn_blocking(move || Site::generate(&cfg))
            .await
            .map_err(io::Error::other)?;
        TestSite::serve_site(Arc::new(site), addr).await
    }

    /// Starts the site over HTTPS on `127.0.0.1` with an ephemeral port
    /// (see [`TestSite::start_tls_on`]).
    pub async fn start_tls(cfg: SiteConfig) -> io::Result<TestSite> {
        TestSite::start_tls_on(cfg, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts the site over HTTPS on `addr`, with a self-signed certificate
    /// made now (SANs `localhost`, `127.0.0.1` and the bound IP; trust
    /// [`TestSite::ca_pem`]). ALPN offers `h2` and `http/1.1`, so a client
    /// that offers h2 gets HTTP/2.
    pub async fn start_tls_on(cfg: SiteConfig, addr: SocketAddr) -> io::Result<TestSite> {
        let site = tokio::task::spawn_blocking(move || Site::generate(&cfg))
            .await
            .map_err(io::Error::other)?;
        TestSite::serve_site_tls(Arc::new(site), addr).await
    }

    /// Serves an already generated site on `addr`.
    pub async fn serve_site(site: Arc<Site>, addr: SocketAddr) -> io::Result<TestSite> {
        TestSite::serve(site, addr, false).await
    }

    /// Serves an already generated site over HTTPS on `addr` (see
    /// [`TestSite::start_tls_on`]).
    pub async fn serve_site_tls(site: Arc<Site>, addr: SocketAddr) -> io::Result<TestSite> {
        TestSite::serve(site, addr, true).await
    }

    async fn serve(site: Arc<Site>, addr: SocketAddr, tls: bool) -> io::Result<TestSite> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let tls = if tls {
            let ip = local.ip();
            Some(
                tokio::task::spawn_blocking(move || crate::tls::setup(ip))
                    .await
                    .map_err(io::Error::other)??,
            )
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(site, local, scheme, rx.clone())?);
        let (acceptor, ca_pem) = match tls {
            Some(t) => (Some(t.acceptor), Some(t.cert_pem)),
            None => (None, None),
        };
        let task = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&shared), rx));
        info!(addr = %local, scheme, "trawl test site listening");
        Ok(TestSite {
            addr: local,
            ca_pem,
            shared,
            shutdown: tx,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, or `https://IP:PORT` for a TLS site (no trailing
    /// slash).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.shared.scheme, self.addr)
    }

    /// `base_url() + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.shared.scheme, self.addr, path)
    }

    /// Whether the site is served over TLS.
    pub fn is_tls(&self) -> bool {
        self.ca_pem.is_some()
    }

    /// The self-signed certificate of a TLS site in PEM (a client trusts it
    /// as a root CA); `None` for a plain HTTP site.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// The generated site graph and its ground truth.
    pub fn site(&self) -> &Site {
        &self.shared.site
    }

    /// Snapshot of the request statistics (with the log).
    pub fn stats(&self) -> SiteStats {
        self.shared.stats.snapshot(true)
    }

    /// Zeroes the statistics and clears the request log.
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// Change page `/p/{i}`'s content version: its ETag changes, so a
    /// conditional recrawl gets it again with a 200, and its body ends with
    /// "Revision N." (from the first touch on, so between two touched
    /// versions only that number differs: a near-duplicate change).
    pub fn touch(&self, i: u32) {
        *self.shared.versions.lock().entry(i).or_insert(0) += 1;
    }

    /// Give page `/p/{i}` a wholly different text (another page's, under
    /// its own title and links), and a new version.
    pub fn rewrite(&self, i: u32) {
        self.shared.rewritten.lock().insert(i);
        self.touch(i);
    }

    /// How many 304 Not Modified answers the site has sent.
    pub fn not_modified(&self) -> u64 {
        self.shared.not_modified.load(Ordering::Relaxed)
    }

    /// Forgets the attempt counters of `/flaky/{id}` and `/flaky429/{id}`,
    /// so they fail again (not touched by [`TestSite::reset_stats`]).
    pub fn reset_faults(&self) {
        self.shared.faults.lock().clear();
    }

    /// Forgets the sessions, request windows and bans of a defended site
    /// (not touched by [`TestSite::reset_stats`]); issued `sid` cookies
    /// become unknown. No effect on an undefended site.
    pub fn reset_defense(&self) {
        if let Some(d) = &self.shared.defender {
            d.reset();
        }
    }

    /// Requests with this Host currently being served.
    pub fn in_flight(&self, host: &str) -> usize {
        self.shared.stats.in_flight(host)
    }

    /// Stops accepting, drops every connection (stalled and hung ones
    /// included) and waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            warn!(error = %e, "test site task failed");
        }
    }
}

impl std::fmt::Debug for TestSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSite")
            .field("addr", &self.addr)
            .field("tls", &self.is_tls())
            .field("site", &*self.shared.site)
            .finish_non_exhaustive()
    }
}

impl Drop for TestSite {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl Shared {
    fn new(
        site: Arc<Site>,
        local: SocketAddr,
        scheme: &'static str,
        shutdown: watch::Receiver<bool>,
    ) -> io::Result<Shared> {
        let links = site.nasty_page_links();
        let gzip_html = site.render_simple("Gzip page", "This body is gzip-compressed.", &links);
        let brotli_html =
            site.render_simple("Brotli page", "This body is brotli-compressed.", &links);
        let mut huge = Vec::with_capacity(64 * 1024);
        huge.extend_from_slice(b"<!DOCTYPE html>\n<html><head><title>Huge</title></head><body>\n");
        let corpus = site.corpus().as_bytes();
        while huge.len() < 64 * 1024 {
            huge.extend_from_slice(b"<p>");
            huge.extend_from_slice(&corpus[..corpus.len().min(500)]);
            huge.extend_from_slice(b"</p>\n");
        }
        let mut binary = Vec::with_capacity(64 * 1024);
        let mut s = site.seed() ^ 0xB1_4A7;
        while binary.len() < 64 * 1024 {
            binary.extend_from_slice(&crate::rng::splitmix64(&mut s).to_le_bytes());
        }
        Ok(Shared {
            stats: Arc::new(Stats::new(site.page_count(), site.config().log_requests)),
            faults: Mutex::new(HashMap::new()),
            session_counter: AtomicU64::new(0),
            trap_sids: AtomicU64::new(0),
            versions: Mutex::new(HashMap::new()),
            rewritten: Mutex::new(std::collections::HashSet::new()),
            not_modified: AtomicU64::new(0),
            scheme,
            local_host: local.to_string(),
            defender: site.config().defended.clone().map(Defender::new),
            shutdown,
            huge_chunk: Bytes::from(huge),
            binary: Bytes::from(binary),
            gzip_page: Bytes::from(crate::compress::gzip(&gzip_html)?),
            brotli_page: Bytes::from(crate::compress::brotli(&brotli_html)?),
            malformed: Bytes::from(site.render_malformed()),
            latin1: Bytes::from(site.render_latin1()),
            sjis: Bytes::from(site.render_sjis()),
            site,
        })
    }

    /// A future resolving at shutdown (or when the server is dropped).
    fn shutdown_future(&self) -> ShutdownFuture {
        let mut rx = self.shutdown.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|v| *v).await;
        })
    }

    /// Sleeps `d`, or less if the server shuts down.
    async fn sleep(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.shutdown_future() => {}
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|v| *v) => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    debug!(error = %e, "set_nodelay failed");
                }
                let builder = Arc::clone(&builder);
                let shared = Arc::clone(&shared);
                let tls = tls.clone();
                conns.spawn(async move {
                    let reset = Arc::new(AtomicBool::new(false));
                    let conn = Arc::new(ConnInfo {
                        peer,
                        reset: Arc::clone(&reset),
                    });
                    // Under TLS, the reset check sits below the TLS layer, so
                    // /reset still ends in a TCP RST.
                    let io = ResetIo {
                        inner: stream,
                        reset,
                    };
                    let svc =
                        service_fn(move |req| handle(Arc::clone(&shared), Arc::clone(&conn), req));
                    let served = match tls {
                        None => builder.serve_connection(TokioIo::new(io), svc).await,
                        Some(acceptor) => {
                            let tls_stream = match tokio::time::timeout(
                                TLS_HANDSHAKE_TIMEOUT,
                                acceptor.accept(io),
                            )
                            .await
                            {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            };
                            builder
                                .serve_connection(TokioIo::new(tls_stream), svc)
                                .await
                        }
                    };
                    if let Err(e) = served {
                        debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        while conns.try_join_next().is_some() {}
    }
    debug!("test site shutting down");
    conns.shutdown().await;
}

/// The connection's IO. Once `/reset` was requested on it, the next write
/// sets `SO_LINGER` to zero and fails, so hyper drops the connection and the
/// kernel answers with a TCP RST instead of a FIN.
struct ResetIo {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl ResetIo {
    fn check_reset(&self) -> io::Result<()> {
        if self.reset.load(Ordering::Acquire) {
            if let Err(e) = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO)) {
                warn!(error = %e, "set_linger(0) failed");
            }
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "test site: /reset requested",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for ResetIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_reset()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_reset()?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_reset()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_reset()?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Host to put into absolute links: the request's Host if it looks like a
/// plain authority, else the listener address.
fn link_host<'a>(host: &'a str, shared: &'a Shared) -> &'a str {
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if ok { host } else { &shared.local_host }
}

async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let path = req.uri().path();
    if path == STATS_PATH {
        return Ok(stats_response(&shared));
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let page = shared.site.page_index(path);
    let path_and_query = req.uri().path_and_query().map_or(path, |pq| pq.as_str());
    let verdict = match &shared.defender {
        Some(d) if path != "/robots.txt" => Some(
            d.check(
                conn.peer.ip(),
                cookie_sids(
                    req.headers()
                        .get_all(header::COOKIE)
                        .iter()
                        .filter_map(|v| v.to_str().ok()),
                ),
                Instant::now(),
            ),
        ),
        _ => None,
    };
    let guard = shared.stats.begin(&RequestInfo {
        host,
        path,
        page,
        path_and_query,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        headers: req
            .headers()
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("x-") || *k == header::REFERER)
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        client_ip: conn.peer.ip(),
        version: req.version(),
        sid: verdict.as_ref().map(|v| v.sid.as_str()),
        banned: verdict.as_ref().is_some_and(|v| v.banned.is_some()),
        trap: shared.site.traps().trap_index(path, req.uri().query()),
    });
    let ban = shared
        .defender
        .as_ref()
        .zip(verdict.as_ref().and_then(|v| v.banned));
    let mut resp = if let Some((d, left)) = ban {
        ban_answer(d.config().answer, left)
    } else if req.method() == Method::GET || req.method() == Method::HEAD {
        route(&shared, &conn, &req, link_host(host, &shared), page).await
    } else {
        let mut r = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    };
    if let Some(Verdict {
        sid, new_sid: true, ..
    }) = &verdict
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{SID_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"
        ))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp.body_mut().set_guard(guard);
    Ok(resp)
}

/// What a banned client gets; `left` is the time left of the ban.
fn ban_answer(answer: BanAnswer, left: Duration) -> Resp {
    let mut r = match answer {
        BanAnswer::TooManyRequests => {
            let mut r = respond(
                StatusCode::TOO_MANY_REQUESTS,
                HTML,
                "<!DOCTYPE html>\n<html><head><title>Too many requests</title></head>\
                 <body><p>Slow down.</p></body></html>\n",
            );
            // Whole seconds, rounded up.
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            r
        }
        BanAnswer::Forbidden => respond(
            StatusCode::FORBIDDEN,
            HTML,
            "<!DOCTYPE html>\n<html><head><title>Forbidden</title></head>\
             <body><p>Access denied.</p></body></html>\n",
        ),
        BanAnswer::Captcha => html(format!(
            "<!DOCTYPE html>\n<html><head><title>{CAPTCHA_TEXT}</title></head>\
             <body><form class=\"captcha\" method=\"post\" action=\"/captcha\">\
             <h1>{CAPTCHA_TEXT}</h1><div id=\"captcha\"></div>\
             <button>I am human</button></form></body></html>\n"
        )),
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn stats_response(shared: &Shared) -> Resp {
    match serde_json::to_vec(&shared.stats.snapshot(false)) {
        Ok(json) => respond(StatusCode::OK, "application/json", json),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            e.to_string(),
        ),
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(SiteBody::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn html(body: impl Into<Bytes>) -> Resp {
    respond(StatusCode::OK, HTML, body)
}

fn not_found(shared: &Shared) -> Resp {
    let body = shared
        .site
        .render_simple("Not found", "Nothing lives here.", &[Node::Root]);
    respond(StatusCode::NOT_FOUND, HTML, body)
}

fn with_retry_after(mut r: Resp) -> Resp {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn redirect(status: StatusCode, location: &str) -> Resp {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = respond(status, HTML, format!("<a href=\"{location}\">moved</a>\n"));
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "bad location\n",
        ),
    }
}

fn status_page(shared: &Shared, status: StatusCode) -> Resp {
    let title = format!("Status {}", status.as_u16());
    let body = shared
        .site
        .render_simple(&title, "A deliberate error.", &[Node::Root]);
    let r = respond(status, HTML, body);
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        with_retry_after(r)
    } else {
        r
    }
}

fn titled_page(shared: &Shared, path: &str, text: &str) -> Resp {
    let title = nasty_title(path).unwrap_or_else(|| path.to_owned());
    html(
        shared
            .site
            .render_simple(&title, text, &shared.site.nasty_page_links()),
    )
}

/// A touched page: its text (or, once rewritten, the text of the page
/// half the site away), then "Revision N." before `</body>`.
fn revised_page(shared: &Shared, i: u32, version: u32, scheme: &str, host: &str) -> Vec<u8> {
    let site = &shared.site;
    let pages = site.config().pages.max(1) as u32;
    let source = if shared.rewritten.lock().contains(&i) {
        (i + pages / 2) % pages
    } else {
        i
    };
    let page = site.render_page(source, scheme, host);
    let revision = format!("<p>Revision {version}.</p>\n");
    match page.windows(7).rposition(|w| w == b"</body>") {
        Some(at) => [&page[..at], revision.as_bytes(), &page[at..]].concat(),
        None => [page.as_slice(), revision.as_bytes()].concat(),
    }
}

/// Increments and returns the attempt counter of a flaky id.
fn attempt(shared: &Shared, key: String) -> u32 {
    let mut faults = shared.faults.lock();
    let n = faults.entry(key).or_insert(0);
    *n = n.saturating_add(1);
    *n
}

async fn route(
    shared: &Shared,
    conn: &ConnInfo,
    req: &Request<Incoming>,
    host: &str,
    page: Option<u32>,
) -> Resp {
    let site = &shared.site;
    let scheme = shared.scheme;
    let path = req.uri().path();
    if let Some(i) = page {
        if let Some(d) = site.config().latency {
            shared.sleep(d).await;
        }
        // Validators for conditional recrawls: an ETag with the page's
        // version, and a fixed Last-Modified.
        let version = shared.versions.lock().get(&i).copied().unwrap_or(0);
        let etag = format!("\"p{i}-v{version}\"");
        let matches = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        let mut resp = if matches {
            shared.not_modified.fetch_add(1, Ordering::Relaxed);
            respond(StatusCode::NOT_MODIFIED, HTML, Bytes::new())
        } else if version == 0 {
            html(site.render_page(i, scheme, host))
        } else {
            html(revised_page(shared, i, version, scheme, host))
        };
        if let Ok(v) = HeaderValue::from_str(&etag) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        resp.headers_mut().insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static("Tue, 01 Sep 2026 00:00:00 GMT"),
        );
        return resp;
    }
    match path {
        "/" => return html(site.render_root(scheme, host)),
        "/robots.txt" => return robots(shared, host),
        "/sitemap_index.xml" => {
            return respond(
                StatusCode::OK,
                "application/xml",
                site.render_sitemap_index(scheme, host),
            );
        }
        "/sitemap1.xml" => {
            return respond(
                StatusCode::OK,
                "application/xml",
                site.render_urlset(scheme, host, site.sitemap1()),
            );
        }
        "/sitemap2.xml.gz" => {
            let xml = site.render_urlset(scheme, host, site.sitemap2());
            return match crate::compress::gzip(&xml) {
                Ok(gz) => respond(StatusCode::OK, "application/gzip", gz),
                Err(e) => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    e.to_string(),
                ),
            };
        }
        "/sitemap.txt" => {
            return respond(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                site.render_sitemap_txt(scheme, host),
            );
        }
        "/gzip" => {
            let mut r = html(shared.gzip_page.clone());
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return r;
        }
        "/brotli" => {
            let mut r = html(shared.brotli_page.clone());
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            return r;
        }
        "/huge" => {
            let mut r = Response::new(SiteBody::stream(HUGE_BYTES, shared.huge_chunk.clone()));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
            return r;
        }
        "/malformed" => return html(shared.malformed.clone()),
        "/binary" => {
            return respond(
                StatusCode::OK,
                "application/octet-stream",
                shared.binary.clone(),
            );
        }
        "/latin1" => {
            return respond(
                StatusCode::OK,
                "text/html; charset=iso-8859-1",
                shared.latin1.clone(),
            );
        }
        "/sjis" => return respond(StatusCode::OK, "text/html", shared.sjis.clone()),
        "/stall" => {
            let mut r = Response::new(SiteBody::stall(
                Bytes::from_static(b"<!DOCTYPE html>\n<html><head><title>Stall"),
                shared.shutdown_future(),
            ));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
            return r;
        }
        "/hang" => {
            shared.shutdown_future().await;
            return respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "shutting down\n",
            );
        }
        "/reset" => {
            conn.reset.store(true, Ordering::Release);
            return html("reset");
        }
        "/redirect/loop/a" => return redirect(StatusCode::FOUND, "/redirect/loop/b"),
        "/redirect/loop/b" => return redirect(StatusCode::FOUND, "/redirect/loop/a"),
        "/redirect/offsite" => return redirect(StatusCode::FOUND, "http://external.invalid/x"),
        _ => {}
    }
    if let Some(e) = Extra::from_path(path) {
        return html(site.render_extra(e));
    }
    if let Some(body) = site
        .traps()
        .render(path, req.uri().query(), &shared.trap_sids)
    {
        return html(body);
    }
    if let Some(node) = site.shop().node_of(path)
        && let Some(body) = site.shop().render(node, scheme, host)
    {
        return html(body);
    }
    if site.shop().enabled
        && let Some(id) = path
            .strip_prefix("/shop/images/")
            .and_then(|s| s.strip_suffix(".png"))
            .and_then(parse_canonical_u64)
        && site
            .shop()
            .product(id.min(u64::from(u32::MAX)) as u32)
            .is_some()
    {
        return respond(StatusCode::OK, "image/png", crate::shop::PNG_1X1);
    }
    if site.shop().enabled && path == "/shop/page/1" {
        return redirect(StatusCode::MOVED_PERMANENTLY, "/shop/");
    }
    if site.shop().enabled && path == "/blog/page/1" {
        return redirect(StatusCode::MOVED_PERMANENTLY, "/blog/");
    }
    if let Some(n) = path
        .strip_prefix("/redirect/chain/")
        .and_then(parse_canonical_u64)
    {
        return if n == 0 {
            titled_page(shared, path, "You made it to the end of the chain.")
        } else {
            redirect(
                StatusCode::MOVED_PERMANENTLY,
                &format!("/redirect/chain/{}", n - 1),
            )
        };
    }
    if let Some(code) = path.strip_prefix("/status/").and_then(parse_canonical_u64) {
        return match u16::try_from(code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(s) if (200..=599).contains(&s.as_u16()) && !s.is_redirection() => {
                status_page(shared, s)
            }
            _ => not_found(shared),
        };
    }
    if let Some(id) = path.strip_prefix("/flaky/").filter(|s| is_segment(s)) {
        return if attempt(shared, format!("flaky/{id}")) <= 2 {
            status_page(shared, StatusCode::SERVICE_UNAVAILABLE)
        } else {
            titled_page(shared, path, "Third time lucky.")
        };
    }
    if let Some(id) = path.strip_prefix("/flaky429/").filter(|s| is_segment(s)) {
        return if attempt(shared, format!("flaky429/{id}")) <= 1 {
            status_page(shared, StatusCode::TOO_MANY_REQUESTS)
        } else {
            titled_page(shared, path, "Second time lucky.")
        };
    }
    if let Some(ms) = path.strip_prefix("/slow/").and_then(parse_canonical_u64) {
        shared
            .sleep(Duration::from_millis(ms.min(MAX_SLOW_MS)))
            .await;
        return titled_page(shared, path, "Worth the wait.");
    }
    if let Some((y, m)) = parse_calendar(path) {
        let mut hrefs = Vec::with_capacity(3);
        let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        if py >= 1 {
            hrefs.push(format!("/calendar/{py}/{pm}"));
        }
        if ny <= 9999 {
            hrefs.push(format!("/calendar/{ny}/{nm}"));
        }
        hrefs.push("/".to_owned());
        let title = format!("Calendar {y}-{m:02}");
        return html(site.render_hrefs(&title, &hrefs));
    }
    if let Some(n) = path.strip_prefix("/session/").and_then(parse_canonical_u64) {
        let sid = || {
            let c = shared.session_counter.fetch_add(1, Ordering::Relaxed);
            format!("{:016x}", hash3(site.seed(), c, 0x5E55))
        };
        let hrefs = vec![
            format!("/session/{}?sid={}", n.saturating_add(1), sid()),
            format!("/session/{n}?sid={}", sid()),
            "/".to_owned(),
        ];
        return html(site.render_hrefs(&format!("Session page {n}"), &hrefs));
    }
    not_found(shared)
}

fn robots(shared: &Shared, host: &str) -> Resp {
    let base = format!("{}://{host}", shared.scheme);
    match &shared.site.config().robots {
        RobotsMode::Default => respond(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            default_robots_txt(&base),
        ),
        RobotsMode::None => respond(StatusCode::NOT_FOUND, "text/plain", "no robots.txt here\n"),
        RobotsMode::ServerError => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "robots.txt broke\n",
        ),
        RobotsMode::Custom(text) => respond(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            text.replace("{base}", &base),
        ),
    }
}
