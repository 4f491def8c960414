//! Integration tests of the real proxies ([`trawl_testsite::proxies`]):
//! tinyproxy and microsocks, with and without authentication, fetching
//! test-site pages through hand-written proxy handshakes, and the site
//! seeing each proxy's outgoing address as the client IP.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::DerefMut;
use std::time::Duration;

use common::wait_until;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trawl_testsite::proxies::{MicroSocks, ProxyKind, ProxyOptions, ProxyServer, TinyProxy};
use trawl_testsite::{BanAnswer, BanKey, Defense, SiteConfig, SiteStats, TestSite};

const IP2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const IP3: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn tinyproxy(opts: ProxyOptions) -> TinyProxy {
    blocking(move || TinyProxy::start(opts)).await.unwrap()
}

async fn microsocks(opts: ProxyOptions) -> MicroSocks {
    blocking(move || MicroSocks::start(opts)).await.unwrap()
}

/// A parsed HTTP/1.1 response (read until the server closes).
#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: String,
}

fn parse(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Resp {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn basic(user: &str, pass: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{pass}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// Sends `head` (without the final blank line) and reads the whole answer.
async fn exchange(stream: &mut TcpStream, head: &str) -> Resp {
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    parse(&raw)
}

/// `GET http://SITE{path}` through an HTTP proxy (absolute-form request).
async fn get_via_http_proxy(
    proxy: SocketAddr,
    site: &TestSite,
    path: &str,
    auth: Option<(&str, &str)>,
) -> Resp {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let mut head = format!("GET {} HTTP/1.1\r\nHost: {}", site.url(path), site.addr());
    if let Some((u, p)) = auth {
        head.push_str(&format!("\r\nProxy-Authorization: {}", basic(u, p)));
    }
    exchange(&mut s, &head).await
}

/// `CONNECT SITE` through an HTTP proxy, then `GET {path}` in the tunnel.
async fn get_via_connect(
    proxy: SocketAddr,
    site: &TestSite,
    path: &str,
    auth: Option<(&str, &str)>,
) -> Resp {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let mut req = format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n", site.addr());
    if let Some((u, p)) = auth {
        req.push_str(&format!("Proxy-Authorization: {}\r\n", basic(u, p)));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    // Read the proxy's answer head byte by byte (the tunnel follows it).
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(
            s.read(&mut b).await.unwrap(),
            1,
            "proxy closed: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let answer = parse(&head);
    assert_eq!(answer.status, 200, "CONNECT refused: {}", answer.head);
    exchange(
        &mut s,
        &format!("GET {path} HTTP/1.1\r\nHost: {}", site.addr()),
    )
    .await
}

/// How a SOCKS5 handshake ended.
#[derive(Debug, PartialEq, Eq)]
enum Socks {
    /// Connected: the tunnel is open.
    Ok,
    /// The server accepted none of the offered methods (0xFF).
    NoAcceptableMethod,
    /// RFC 1929 sub-negotiation failed with this status.
    AuthFailed(u8),
}

/// RFC 1928 (+ RFC 1929) handshake to `target` through `proxy`, offering
/// username/password if `auth` is given, else only "no authentication".
async fn socks5_connect(
    proxy: SocketAddr,
    target: SocketAddr,
    auth: Option<(&str, &str)>,
) -> (TcpStream, Socks) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let method = if auth.is_some() { 0x02 } else { 0x00 };
    s.write_all(&[0x05, 0x01, method]).await.unwrap();
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[0], 0x05);
    if reply[1] == 0xFF {
        return (s, Socks::NoAcceptableMethod);
    }
    assert_eq!(reply[1], method);
    if let Some((u, p)) = auth {
        let mut msg = vec![0x01, u.len() as u8];
        msg.extend_from_slice(u.as_bytes());
        msg.push(p.len() as u8);
        msg.extend_from_slice(p.as_bytes());
        s.write_all(&msg).await.unwrap();
        let mut status = [0u8; 2];
        s.read_exact(&mut status).await.unwrap();
        assert_eq!(status[0], 0x01);
        if status[1] != 0 {
            return (s, Socks::AuthFailed(status[1]));
        }
    }
    let SocketAddr::V4(t) = target else {
        panic!("IPv4 targets only")
    };
    let mut req = vec![0x05, 0x01, 0x00, 0x01];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    s.write_all(&req).await.unwrap();
    // VER REP RSV ATYP(1 = IPv4) BND.ADDR(4) BND.PORT(2)
    let mut rep = [0u8; 10];
    s.read_exact(&mut rep).await.unwrap();
    assert_eq!(
        (rep[0], rep[1], rep[3]),
        (0x05, 0x00, 0x01),
        "CONNECT failed: {rep:?}"
    );
    (s, Socks::Ok)
}

async fn get_via_socks(
    proxy: SocketAddr,
    site: &TestSite,
    path: &str,
    auth: Option<(&str, &str)>,
) -> Resp {
    let (mut s, result) = socks5_connect(proxy, site.addr(), auth).await;
    assert_eq!(result, Socks::Ok);
    exchange(
        &mut s,
        &format!("GET {path} HTTP/1.1\r\nHost: {}", site.addr()),
    )
    .await
}

async fn settled_stats(site: &TestSite) -> SiteStats {
    let host = site.addr().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            site.in_flight(&host) == 0
        })
        .await
    );
    site.stats()
}

/// The client IP the site logged for `path_and_query`.
fn client_of(stats: &SiteStats, path_and_query: &str) -> Vec<IpAddr> {
    stats
        .log
        .iter()
        .filter(|e| e.path_and_query == path_and_query)
        .map(|e| e.client_ip)
        .collect()
}

fn assert_page(r: &Resp, site: &TestSite, path: &str) {
    assert_eq!(r.status, 200, "{}", r.head);
    let title = site.site().title_of(path).unwrap();
    assert!(
        r.body.contains(&format!("<title>{title}</title>")),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyproxy_without_auth_forwards_from_its_outgoing_ip() {
    let site = TestSite::start(SiteConfig::default()).await.unwrap();
    let proxy = tinyproxy(ProxyOptions::new(IP2)).await;
    assert_eq!(proxy.url(), format!("http://127.0.0.1:{}", proxy.port()));
    assert_eq!(proxy.outgoing_ip(), IpAddr::V4(IP2));
    let r = get_via_http_proxy(proxy.addr(), &site, "/p/1?via=tiny", None).await;
    assert_page(&r, &site, "/p/1");
    assert!(
        !r.head.to_ascii_lowercase().contains("\nvia:"),
        "{}",
        r.head
    );
    let r = get_via_connect(proxy.addr(), &site, "/p/2?via=connect", None).await;
    assert_page(&r, &site, "/p/2");
    let stats = settled_stats(&site).await;
    assert_eq!(client_of(&stats, "/p/1?via=tiny"), [IpAddr::V4(IP2)]);
    assert_eq!(client_of(&stats, "/p/2?via=connect"), [IpAddr::V4(IP2)]);
    assert_eq!(stats.by_client[&IpAddr::V4(IP2)].ok, 2);
    assert!(
        !stats
            .by_client
            .contains_key(&IpAddr::V4(Ipv4Addr::LOCALHOST))
    );
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyproxy_with_auth() {
    let site = TestSite::start(SiteConfig::default()).await.unwrap();
    let proxy = tinyproxy(ProxyOptions::new(IP3).with_auth("crawler-1", "s3cr.et_X")).await;
    assert_eq!(
        proxy.url(),
        format!("http://crawler-1:s3cr.et_X@127.0.0.1:{}", proxy.port())
    );
    let good = Some(("crawler-1", "s3cr.et_X"));
    let r = get_via_http_proxy(proxy.addr(), &site, "/p/3?auth=ok", good).await;
    assert_page(&r, &site, "/p/3");
    let r = get_via_connect(proxy.addr(), &site, "/p/4?auth=connect", good).await;
    assert_page(&r, &site, "/p/4");
    // No credentials: 407 with a challenge; wrong ones: tinyproxy 1.11
    // answers 401. Either way the site sees nothing.
    let r = get_via_http_proxy(proxy.addr(), &site, "/p/5?auth=none", None).await;
    assert_eq!(r.status, 407, "{}", r.head);
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains("proxy-authenticate: basic"),
        "{}",
        r.head
    );
    let r = get_via_http_proxy(
        proxy.addr(),
        &site,
        "/p/5?auth=bad",
        Some(("crawler-1", "wrong")),
    )
    .await;
    assert!(matches!(r.status, 401 | 407), "{}", r.head);
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let r = exchange(
        &mut s,
        &format!("CONNECT {0} HTTP/1.1\r\nHost: {0}", site.addr()),
    )
    .await;
    assert_eq!(r.status, 407, "{}", r.head);
    // reqwest's HTTP proxy support with the credentials in the URL.
    let http = reqwest::Client::builder()
        .no_proxy()
        .proxy(reqwest::Proxy::http(proxy.url()).unwrap())
        .build()
        .unwrap();
    let resp = http.get(site.url("/p/6?via=reqwest")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();

    let stats = settled_stats(&site).await;
    assert_eq!(client_of(&stats, "/p/3?auth=ok"), [IpAddr::V4(IP3)]);
    assert_eq!(client_of(&stats, "/p/4?auth=connect"), [IpAddr::V4(IP3)]);
    assert_eq!(client_of(&stats, "/p/6?via=reqwest"), [IpAddr::V4(IP3)]);
    assert_eq!(stats.by_path.get("/p/5"), None);
    assert_eq!(stats.requests, 3);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsocks_without_and_with_auth() {
    let site = TestSite::start(SiteConfig::default()).await.unwrap();
    let open = microsocks(ProxyOptions::new(IP2)).await;
    assert_eq!(open.url(), format!("socks5://127.0.0.1:{}", open.port()));
    let r = get_via_socks(open.addr(), &site, "/p/7?socks=open", None).await;
    assert_page(&r, &site, "/p/7");

    let locked = microsocks(ProxyOptions::new(IP3).with_auth("user@x", "p:ss w")).await;
    assert_eq!(
        locked.url(),
        format!("socks5://user%40x:p%3Ass%20w@127.0.0.1:{}", locked.port())
    );
    let r = get_via_socks(
        locked.addr(),
        &site,
        "/p/8?socks=auth",
        Some(("user@x", "p:ss w")),
    )
    .await;
    assert_page(&r, &site, "/p/8");
    // Wrong password: RFC 1929 failure; no credentials offered: no
    // acceptable method.
    let (_, result) = socks5_connect(locked.addr(), site.addr(), Some(("user@x", "nope"))).await;
    assert!(
        matches!(result, Socks::AuthFailed(s) if s != 0),
        "{result:?}"
    );
    let (_, result) = socks5_connect(locked.addr(), site.addr(), None).await;
    assert_eq!(result, Socks::NoAcceptableMethod);

    let stats = settled_stats(&site).await;
    assert_eq!(client_of(&stats, "/p/7?socks=open"), [IpAddr::V4(IP2)]);
    assert_eq!(client_of(&stats, "/p/8?socks=auth"), [IpAddr::V4(IP3)]);
    assert_eq!(stats.requests, 2);
    site.shutdown().await;
}

async fn fetch_with_u_p(proxy: &ProxyServer, site: &TestSite, path: &str) -> Resp {
    match proxy.kind() {
        ProxyKind::Tinyproxy => {
            get_via_http_proxy(proxy.addr(), site, path, Some(("u", "p"))).await
        }
        ProxyKind::MicroSocks => get_via_socks(proxy.addr(), site, path, Some(("u", "p"))).await,
    }
}

async fn check_stop_restart_drop<P>(mut proxy: P, site: &TestSite)
where
    P: DerefMut<Target = ProxyServer> + Send + 'static,
{
    let kind = proxy.kind();
    let addr = proxy.addr();
    let port = proxy.port();
    let dir = proxy.dir().to_path_buf();
    assert!(proxy.is_running() && proxy.pid().is_some());
    assert_eq!(fetch_with_u_p(&proxy, site, "/p/1").await.status, 200);
    proxy = blocking(move || {
        proxy.stop().unwrap();
        proxy
    })
    .await;
    assert!(!proxy.is_running() && !proxy.accepts_connections());
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{kind:?}"
    );
    proxy = blocking(move || {
        proxy.stop().unwrap(); // a no-op
        proxy.start_again().unwrap();
        let err = proxy.start_again().unwrap_err();
        assert!(err.contains("still running"), "{err}");
        proxy.restart().unwrap();
        proxy
    })
    .await;
    assert_eq!(proxy.port(), port);
    assert_eq!(
        fetch_with_u_p(&proxy, site, "/p/2").await.status,
        200,
        "{kind:?} after restart"
    );
    drop(proxy);
    assert!(!dir.exists(), "{kind:?}: {} left behind", dir.display());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "{kind:?} still listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_restart_and_drop() {
    let site = TestSite::start(SiteConfig::default()).await.unwrap();
    let opts = ProxyOptions::new(IP2).with_auth("u", "p");
    check_stop_restart_drop(tinyproxy(opts.clone()).await, &site).await;
    check_stop_restart_drop(microsocks(opts).await, &site).await;
    let stats = settled_stats(&site).await;
    assert_eq!(stats.by_client[&IpAddr::V4(IP2)].ok, 4);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_errors_quote_the_output() {
    // Both on a port that is taken.
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = blocking(move || TinyProxy::start(ProxyOptions::new(IP2).on_port(port)))
        .await
        .unwrap_err();
    assert!(err.contains("exited while starting"), "{err}");
    assert!(err.contains("Could not create listening sockets"), "{err}");
    let err = blocking(move || MicroSocks::start(ProxyOptions::new(IP2).on_port(port)))
        .await
        .unwrap_err();
    assert!(err.contains("Address already in use"), "{err}");
    drop(taken);
}

/// The point of it all: a site that bans 127.0.0.1 still serves the same
/// crawler through proxies, one client IP per proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defended_site_serves_each_proxy_separately() {
    let site = TestSite::start(SiteConfig {
        defended: Some(Defense {
            max_requests: 2,
            window: Duration::from_secs(60),
            answer: BanAnswer::TooManyRequests,
            by: BanKey::ClientIp,
            ban_for: Duration::from_secs(60),
        }),
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let tiny = tinyproxy(ProxyOptions::new(IP2)).await;
    let socks = microsocks(ProxyOptions::new(IP3)).await;
    let direct = common::client();
    let mut statuses = Vec::new();
    for i in 0..3 {
        statuses.push(
            direct
                .get(site.url(&format!("/p/{i}")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    for i in 0..2 {
        assert_eq!(
            get_via_http_proxy(tiny.addr(), &site, &format!("/p/{i}"), None)
                .await
                .status,
            200
        );
        assert_eq!(
            get_via_socks(socks.addr(), &site, &format!("/p/{i}"), None)
                .await
                .status,
            200
        );
    }
    assert_eq!(
        get_via_http_proxy(tiny.addr(), &site, "/p/9", None)
            .await
            .status,
        429
    );
    assert_eq!(
        get_via_socks(socks.addr(), &site, "/p/9", None)
            .await
            .status,
        429
    );
    let stats = settled_stats(&site).await;
    for ip in [Ipv4Addr::LOCALHOST, IP2, IP3] {
        let c = stats.by_client[&IpAddr::V4(ip)];
        assert_eq!((c.ok, c.banned), (2, 1), "{ip}");
    }
    site.shutdown().await;
}
