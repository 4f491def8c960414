//! Integration tests of the HTTPS test site: the self-signed certificate,
//! ALPN (h2 for clients that offer it, HTTP/1.1 otherwise), `https://`
//! links, sitemaps and robots.txt, per-version statistics, and the fault
//! routes that depend on the transport.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use common::{client, client_for, wait_until};
use trawl_testsite::{SiteConfig, TestSite};

async fn start_tls() -> TestSite {
    TestSite::start_tls(SiteConfig::default()).await.unwrap()
}

fn trusting(site: &TestSite) -> reqwest::ClientBuilder {
    let cert = reqwest::Certificate::from_pem(site.ca_pem().unwrap().as_bytes()).unwrap();
    reqwest::Client::builder().no_proxy().tls_certs_only([cert])
}

async fn settle(site: &TestSite) {
    let host = site.addr().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            site.in_flight(&host) == 0
        })
        .await
    );
}

#[tokio::test]
async fn serves_https_with_h2_by_alpn_and_http1_otherwise() {
    let site = start_tls().await;
    assert!(site.is_tls());
    let base = site.base_url();
    assert_eq!(base, format!("https://{}", site.addr()));
    assert_eq!(site.url("/p/3"), format!("{base}/p/3"));
    let pem = site.ca_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    // A client that offers h2 (reqwest's default) gets HTTP/2.
    let h2 = client_for(&site);
    let resp = h2.get(site.url("/p/3")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let page = resp.text().await.unwrap();
    assert!(page.contains(&format!("<link rel=\"canonical\" href=\"{base}/p/3\">")));

    // One that offers only http/1.1 gets HTTP/1.1.
    let h1 = trusting(&site).http1_only().build().unwrap();
    let resp = h1.get(site.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    let root = resp.text().await.unwrap();
    assert!(root.contains(&format!("<link rel=\"canonical\" href=\"{base}/\">")));

    settle(&site).await;
    let stats = site.stats();
    assert_eq!(stats.requests, 2);
    assert_eq!(
        stats.versions,
        BTreeMap::from([("HTTP/1.1".to_owned(), 1), ("HTTP/2.0".to_owned(), 1)])
    );
    let versions: Vec<&str> = stats.log.iter().map(|e| e.http_version.as_str()).collect();
    assert_eq!(versions, ["HTTP/2.0", "HTTP/1.1"]);

    // The JSON endpoint reports the versions too.
    let json = h2
        .get(site.url(trawl_testsite::STATS_PATH))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["versions"]["HTTP/2.0"], 1);
    assert_eq!(json["versions"]["HTTP/1.1"], 1);

    site.reset_stats();
    assert!(site.stats().versions.is_empty());
    site.shutdown().await;
}

#[tokio::test]
async fn plain_http_site_counts_versions_and_has_no_certificate() {
    let site = TestSite::start(SiteConfig::default()).await.unwrap();
    assert!(!site.is_tls());
    assert!(site.ca_pem().is_none());
    assert!(site.base_url().starts_with("http://"));
    let r = client().get(site.url("/")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    r.bytes().await.unwrap();
    settle(&site).await;
    let stats = site.stats();
    assert_eq!(stats.versions, BTreeMap::from([("HTTP/1.1".to_owned(), 1)]));
    assert_eq!(stats.log[0].http_version, "HTTP/1.1");
    site.shutdown().await;
}

#[tokio::test]
async fn links_sitemaps_and_robots_say_https() {
    let site = start_tls().await;
    let http = client_for(&site);
    let base = site.base_url();
    let insecure = format!("http://{}", site.addr());
    let mut all = String::new();
    for path in ["/", "/p/0", "/p/1", "/p/2", "/p/3", "/p/4", "/p/5", "/p/6"] {
        all.push_str(
            &http
                .get(site.url(path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    for i in 7..60 {
        all.push_str(
            &http
                .get(site.url(&format!("/p/{i}")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    assert!(
        all.contains(&format!("href=\"{base}")),
        "no absolute https link"
    );
    assert!(
        all.contains("HTTPS://127.0.0.1:"),
        "no upper-case https link"
    );
    assert!(
        !all.to_ascii_lowercase().contains(&insecure),
        "a link points at http:// on the TLS port"
    );

    let robots = http.get(site.url("/robots.txt")).send().await.unwrap();
    let robots = robots.text().await.unwrap();
    assert!(robots.contains(&format!("Sitemap: {base}/sitemap_index.xml")));
    let index = http
        .get(site.url("/sitemap_index.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(index.contains(&format!("<loc>{base}/sitemap1.xml</loc>")));
    let urlset = http
        .get(site.url("/sitemap1.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(urlset.contains(&format!("<loc>{base}/")));
    assert!(!urlset.contains(&insecure));
    let gz = http
        .get(site.url("/sitemap2.xml.gz"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut xml = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut xml)
        .unwrap();
    assert!(xml.contains(&format!("<loc>{base}/")));
    let txt = http
        .get(site.url("/sitemap.txt"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        txt.lines().all(|l| l.starts_with(&format!("{base}/"))),
        "{txt}"
    );
    site.shutdown().await;
}

#[tokio::test]
async fn untrusted_clients_fail_on_the_certificate() {
    let site = start_tls().await;
    // No extra roots: the self-signed certificate is unknown.
    let err = client().get(site.url("/")).send().await.unwrap_err();
    let mut chain = err.to_string();
    let mut src = std::error::Error::source(&err);
    while let Some(e) = src {
        chain.push_str(": ");
        chain.push_str(&e.to_string());
        src = e.source();
    }
    assert!(
        chain.to_ascii_lowercase().contains("certificate"),
        "{chain}"
    );
    // Plain HTTP to the TLS port is no HTTP response either.
    let plain = format!("http://{}/", site.addr());
    assert!(client().get(plain).send().await.is_err());
    // Nothing reached the site's handler.
    assert_eq!(site.stats().requests, 0);
    site.shutdown().await;
}

#[tokio::test]
async fn certificate_names_localhost_and_other_loopback_addresses() {
    let addr: std::net::SocketAddr = "127.0.0.2:0".parse().unwrap();
    let site = TestSite::start_tls_on(SiteConfig::default(), addr)
        .await
        .unwrap();
    assert!(site.base_url().starts_with("https://127.0.0.2:"));
    let http = client_for(&site);
    assert_eq!(http.get(site.url("/")).send().await.unwrap().status(), 200);
    // `localhost` is a SAN too (pinned to the bound address).
    let by_name = trusting(&site)
        .resolve("localhost", site.addr())
        .build()
        .unwrap();
    let r = by_name
        .get(format!("https://localhost:{}/p/1", site.addr().port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    // A name that is not in the certificate is refused.
    let wrong = trusting(&site)
        .resolve("wrong.invalid", site.addr())
        .build()
        .unwrap();
    let err = wrong
        .get(format!("https://wrong.invalid:{}/", site.addr().port()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    site.shutdown().await;
}

#[tokio::test]
async fn compressed_routes_and_reset_work_over_h2() {
    let site = start_tls().await;
    let http = client_for(&site);
    for (path, encoding) in [("/gzip", "gzip"), ("/brotli", "br")] {
        let raw = trusting(&site)
            .no_gzip()
            .no_brotli()
            .build()
            .unwrap()
            .get(site.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(raw.version(), reqwest::Version::HTTP_2);
        assert_eq!(raw.headers()["content-encoding"], encoding);
        let decoded = http.get(site.url(path)).send().await.unwrap();
        assert_eq!(decoded.version(), reqwest::Version::HTTP_2);
        assert!(decoded.text().await.unwrap().contains("-compressed."));
    }
    // /reset kills the (h2) connection under the TLS layer.
    let r = http.get(site.url("/reset")).send().await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "/reset did not fail");
    // The server still works (a new client: the old connection is dead).
    assert_eq!(
        client_for(&site)
            .get(site.url("/p/1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    site.shutdown().await;
}
