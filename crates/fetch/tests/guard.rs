//! The address guard end to end, on loopback only: a real test site on
//! 127.0.0.1 stands for the machine's own services (refused, and never
//! reached: not even robots.txt is asked), and an allowed address
//! (127.0.0.2) stands for the outside world.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trawl_core::{CrawlStats, Url};
use trawl_fetch::guard::AddressGuard;
use trawl_fetch::{Downloader, FetchConfig, FetchError};
use trawl_testsite::{SiteConfig, TestSite};

fn downloader(guard: Option<AddressGuard>) -> Downloader {
    let cfg = FetchConfig {
        address_guard: guard.map(Arc::new),
        retries: 0,
        ..FetchConfig::default()
    };
    Downloader::new(cfg, Arc::new(CrawlStats::default())).unwrap()
}

fn outside() -> AddressGuard {
    AddressGuard {
        allow: vec!["127.0.0.2".parse::<IpAddr>().unwrap()],
        ..AddressGuard::default()
    }
}

/// A server on `addr` that answers every page with a redirect to `to`
/// (robots.txt too, with `robots`).
async fn redirector(addr: SocketAddr, to: String, robots: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                // No robots.txt (everything allowed); every page redirects.
                let answer = if !robots && buf[..n].starts_with(b"GET /robots.txt ") {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                } else {
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                };
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    local
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_in_every_spelling_is_refused_and_never_reached() {
    let inside = TestSite::start(SiteConfig {
        pages: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let port = inside.addr().port();
    let guarded = downloader(Some(outside()));
    let any = |_: &Url| true;
    for host in [
        "127.0.0.1".to_string(),
        "127.1".into(),
        "2130706433".into(),
        "0x7f000001".into(),
        "0x7f.0.0.1".into(),
        "0177.0.0.1".into(),
        "[::ffff:127.0.0.1]".into(),
        "localhost".into(),
        "0.0.0.0".into(),
    ] {
        let url = Url::parse(&format!("http://{host}:{port}/")).unwrap();
        let outcome = guarded.fetch(&url, &any).await;
        assert!(
            matches!(outcome.error, Some(FetchError::Refused(_))),
            "{url}: {:?} {:?}",
            outcome.status,
            outcome.error
        );
    }
    // A redirect from the outside to the inside is refused at the hop.
    let secret = format!("http://127.0.0.1:{port}/");
    let door = redirector("127.0.0.2:0".parse().unwrap(), secret.clone(), false).await;
    let outcome = guarded
        .fetch(&Url::parse(&format!("http://{door}/")).unwrap(), &any)
        .await;
    assert_eq!(outcome.redirects, 1, "{:?}", outcome.error);
    assert!(
        matches!(&outcome.error, Some(FetchError::Refused(why)) if why.contains("127.0.0.1 is loopback")),
        "{:?}",
        outcome.error
    );
    // A robots.txt redirected inside is not followed either (the host's
    // robots.txt is then unreachable: disallowed, RFC 9309).
    let door = redirector("127.0.0.2:0".parse().unwrap(), secret, true).await;
    let outcome = guarded
        .fetch(&Url::parse(&format!("http://{door}/")).unwrap(), &any)
        .await;
    assert!(
        matches!(outcome.error, Some(FetchError::RobotsDenied)),
        "{:?}",
        outcome.error
    );
    assert_eq!(inside.stats().requests, 0, "the inside was reached");

    // Without the guard (a crawl a user runs) the same site is fetched.
    let open = downloader(None);
    let outcome = open
        .fetch(
            &Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            &any,
        )
        .await;
    assert_eq!(outcome.status, Some(200), "{:?}", outcome.error);
    assert!(inside.stats().requests > 0);
    inside.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_address_is_fetched_with_the_guard_on() {
    let site = TestSite::start_on(
        SiteConfig {
            pages: 5,
            ..Default::default()
        },
        "127.0.0.2:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let outcome = downloader(Some(outside()))
        .fetch(
            &Url::parse(&format!("{}/", site.base_url())).unwrap(),
            &|_| true,
        )
        .await;
    assert_eq!(outcome.status, Some(200), "{:?}", outcome.error);
    site.shutdown().await;
}
