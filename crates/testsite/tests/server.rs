//! Integration tests of the running server: robots modes, sitemaps,
//! compression, fault routes, statistics and the binary.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{client, client_no_redirect, rss_bytes, wait_until};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trawl_testsite::{
    LATIN1_TITLE, RobotsMode, SJIS_TITLE, STATS_PATH, SiteConfig, SiteStats, TestSite,
};

async fn start() -> TestSite {
    TestSite::start(SiteConfig::default()).await.unwrap()
}

#[tokio::test]
async fn base_url_and_root() {
    let site = start().await;
    let base = site.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    assert!(!base.ends_with('/'));
    assert_eq!(base, format!("http://{}", site.addr()));
    let resp = client().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let html = resp.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(
        !html.contains("/redirect/chain"),
        "fault routes linked while nasty=false"
    );
    let page = client()
        .get(format!("{base}/p/3"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("<link rel=\"canonical\" href=\"{base}/p/3\">")));
    assert!(page.contains("<meta name=\"description\""));
    assert!(page.contains(&format!(
        "<title>{}</title>",
        site.site().title_of("/p/3").unwrap()
    )));
    // Non-canonical spellings are not served.
    for p in ["/p/03", "/p/%33", "/p/3/", "/p/200", "/nope"] {
        let s = client()
            .get(format!("{base}{p}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 404, "{p}");
    }
    site.shutdown().await;
}

#[tokio::test]
async fn robots_txt_served_as_configured() {
    let http = client();
    let site = start().await;
    let resp = http.get(site.url("/robots.txt")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("User-agent: trawl\nDisallow: /private/\nDisallow: /nottrawl/"));
    assert!(text.contains("Allow: /private/public-ok"));
    assert!(text.contains(&format!("Sitemap: {}/sitemap_index.xml", site.base_url())));
    site.shutdown().await;

    let site = TestSite::start(SiteConfig {
        robots: RobotsMode::None,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(
        http.get(site.url("/robots.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    site.shutdown().await;

    let site = TestSite::start(SiteConfig {
        robots: RobotsMode::ServerError,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(
        http.get(site.url("/robots.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
    assert!(site.site().ground_truth().is_empty());
    site.shutdown().await;

    let custom = "User-agent: *\nDisallow: /p/1\nSitemap: {base}/sitemap.txt\n";
    let site = TestSite::start(SiteConfig {
        robots: RobotsMode::Custom(custom.into()),
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let text = http
        .get(site.url("/robots.txt"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        text,
        format!(
            "User-agent: *\nDisallow: /p/1\nSitemap: {}/sitemap.txt\n",
            site.base_url()
        )
    );
    assert!(!site.site().ground_truth().contains("/p/1"));
    site.shutdown().await;
}

#[tokio::test]
async fn sitemaps() {
    let site = start().await;
    let http = client();
    let base = site.base_url();
    let index = http
        .get(site.url("/sitemap_index.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(index.contains("<sitemapindex"));
    assert!(index.contains(&format!("<loc>{base}/sitemap1.xml</loc>")));
    assert!(index.contains(&format!("<loc>{base}/sitemap2.xml.gz</loc>")));
    let one = http
        .get(site.url("/sitemap1.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(one.contains("<urlset"));
    let gz = http.get(site.url("/sitemap2.xml.gz")).send().await.unwrap();
    assert_eq!(gz.headers()["content-type"], "application/gzip");
    assert!(gz.headers().get("content-encoding").is_none());
    let gz = gz.bytes().await.unwrap();
    let mut two = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut two)
        .unwrap();
    assert!(two.contains("<urlset"));
    let txt = http
        .get(site.url("/sitemap.txt"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let listed: std::collections::BTreeSet<String> = txt
        .lines()
        .map(|l| l.strip_prefix(&base).unwrap().to_owned())
        .collect();
    assert_eq!(listed, site.site().sitemap_paths());
    for p in site.site().sitemap_only_paths() {
        let loc = format!("<loc>{base}{p}</loc>");
        assert!(
            one.contains(&loc) || two.contains(&loc),
            "{p} not in the sitemaps"
        );
    }
    site.shutdown().await;
}

#[tokio::test]
async fn compressed_routes_decode() {
    let site = start().await;
    let http = client();
    for (path, enc, title) in [
        ("/gzip", "gzip", "Gzip page"),
        ("/brotli", "br", "Brotli page"),
    ] {
        // reqwest decodes transparently (and strips Content-Encoding).
        let html = http
            .get(site.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains(&format!("<title>{title}</title>")),
            "{path}: {html}"
        );
        assert!(html.contains("<a href=\"/p/0\">"));
        // Raw: the header is there even without Accept-Encoding.
        let raw_client = reqwest::Client::builder()
            .no_proxy()
            .no_gzip()
            .no_brotli()
            .build()
            .unwrap();
        let raw = raw_client.get(site.url(path)).send().await.unwrap();
        assert_eq!(raw.headers()["content-encoding"], enc);
        let bytes = raw.bytes().await.unwrap();
        let mut decoded = String::new();
        if enc == "gzip" {
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut decoded)
                .unwrap();
        } else {
            brotli::Decompressor::new(&bytes[..], 4096)
                .read_to_string(&mut decoded)
                .unwrap();
        }
        assert_eq!(decoded, html);
    }
    site.shutdown().await;
}

#[tokio::test]
async fn huge_streams_without_buffering() {
    let site = start().await;
    let resp = client().get(site.url("/huge")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("content-length").is_none());
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let before = rss_bytes();
    let mut stream = resp.bytes_stream();
    let mut total = 0usize;
    while total < 20 << 20 {
        total += stream.next().await.unwrap().unwrap().len();
    }
    drop(stream);
    if let (Some(before), Some(after)) = (before, rss_bytes()) {
        let growth = after.saturating_sub(before);
        assert!(
            growth < 12 << 20,
            "RSS grew by {growth} bytes while streaming 20 MiB"
        );
    }
    // The aborted response is no longer in flight.
    let host = site.addr().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            site.in_flight(&host) == 0
        })
        .await
    );
    site.shutdown().await;
}

#[tokio::test]
async fn reset_sends_a_real_rst_on_a_keep_alive_connection() {
    let site = start().await;
    let mut s = tokio::net::TcpStream::connect(site.addr()).await.unwrap();
    // A normal request first: the connection stays open (keep-alive).
    s.write_all(b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    while !(got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"Disallow: /\n")) {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"GET /reset HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
        {
            Ok(0) => panic!("got a FIN, not a RST"),
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);

    // And a client sees an error.
    let http = client();
    assert!(
        http.get(site.url("/p/1"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let r = http.get(site.url("/reset")).send().await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "/reset did not fail");
    // The server still works.
    assert_eq!(
        http.get(site.url("/p/1")).send().await.unwrap().status(),
        200
    );
    site.shutdown().await;
}

#[tokio::test]
async fn per_host_max_concurrency() {
    let site = start().await;
    let http = client();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let http = http.clone();
        let url = site.url("/slow/200");
        tasks.push(tokio::spawn(async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }));
    }
    for t in tasks {
        let body = t.await.unwrap();
        assert!(body.contains("Slow page (200 ms)"));
    }
    assert!(started.elapsed() >= Duration::from_millis(200));
    let host = site.addr().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            site.in_flight(&host) == 0
        })
        .await
    );
    let stats = site.stats();
    assert_eq!(stats.hosts[&host].max_concurrency, 5);
    assert_eq!(stats.hosts[&host].requests, 5);
    assert_eq!(stats.by_path["/slow/200"], 5);
    assert_eq!(stats.log.len(), 5);
    for e in &stats.log {
        assert_eq!(e.path_and_query, "/slow/200");
        assert_eq!(e.host, host);
        assert_eq!(e.user_agent.as_deref(), Some("trawl-testsite-tests/1.0"));
        assert!(e.client_ip.is_loopback());
        let finished = e.finished.expect("finished");
        assert!(finished.duration_since(e.started) >= Duration::from_millis(200));
    }
    // Sequential requests: concurrency 1.
    site.reset_stats();
    for _ in 0..3 {
        http.get(site.url("/p/0"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(5), || async {
            site.in_flight(&host) == 0
        })
        .await
    );
    let stats = site.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(
        stats.hosts[&host],
        trawl_testsite::HostStats {
            requests: 3,
            max_concurrency: 1
        }
    );
    site.shutdown().await;
}

#[tokio::test]
async fn flaky_routes_recover() {
    let site = start().await;
    let http = client();
    for expected in [503, 503, 200] {
        let r = http.get(site.url("/flaky/7")).send().await.unwrap();
        assert_eq!(r.status(), expected);
        if expected == 503 {
            assert_eq!(r.headers()["retry-after"], "1");
        }
    }
    // Independent per id.
    assert_eq!(
        http.get(site.url("/flaky/8"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    let r = http.get(site.url("/flaky429/7")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        http.get(site.url("/flaky429/7"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    site.reset_faults();
    assert_eq!(
        http.get(site.url("/flaky429/7"))
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    site.shutdown().await;
}

#[tokio::test]
async fn redirects_and_statuses() {
    let site = start().await;
    let raw = client_no_redirect();
    let r = raw.get(site.url("/redirect/chain/3")).send().await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/redirect/chain/2");
    assert_eq!(
        raw.get(site.url("/redirect/chain/0"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = raw.get(site.url("/redirect/loop/a")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/redirect/loop/b");
    let r = raw.get(site.url("/redirect/loop/b")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/redirect/loop/a");
    let r = raw.get(site.url("/redirect/offsite")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "http://external.invalid/x");
    // A following client ends on chain/0 (3 hops) and gives up on 15.
    let follow = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .unwrap();
    let r = follow
        .get(site.url("/redirect/chain/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/redirect/chain/0");
    assert!(
        follow
            .get(site.url("/redirect/chain/15"))
            .send()
            .await
            .is_err()
    );
    for code in [404u16, 410, 500, 503] {
        let r = raw
            .get(site.url(&format!("/status/{code}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), code);
        assert_eq!(r.headers().get("retry-after").is_some(), code == 503);
    }
    site.shutdown().await;
}

#[tokio::test]
async fn stall_and_hang_until_shutdown() {
    let site = start().await;
    let http = client();
    let resp = http.get(site.url("/stall")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err()
    );

    let hang = tokio::spawn({
        let http = http.clone();
        let url = site.url("/hang");
        async move { http.get(url).send().await }
    });
    let host = site.addr().to_string();
    // Wait until both requests are in flight, then shut down: both end.
    assert!(
        wait_until(Duration::from_secs(5), || async {
            site.in_flight(&host) == 2
        })
        .await
    );
    let mut hang = hang;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut hang)
            .await
            .is_err()
    );
    tokio::time::timeout(Duration::from_secs(10), site.shutdown())
        .await
        .unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap();
    assert!(
        !matches!(rest, Some(Ok(_))),
        "stalled body went on: {rest:?}"
    );
    let hang = tokio::time::timeout(Duration::from_secs(10), hang)
        .await
        .unwrap()
        .unwrap();
    assert!(hang.is_err() || hang.unwrap().status() != 200);
}

#[tokio::test]
async fn charsets() {
    let site = start().await;
    let http = client();
    let r = http.get(site.url("/latin1")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/html; charset=iso-8859-1");
    let bytes = r.bytes().await.unwrap();
    assert!(std::str::from_utf8(&bytes).is_err());
    let (text, _, errors) = encoding_rs::WINDOWS_1252.decode(&bytes);
    assert!(!errors);
    assert!(text.contains(&format!("<title>{LATIN1_TITLE}</title>")));
    assert_eq!(
        site.site().title_of("/latin1").as_deref(),
        Some(LATIN1_TITLE)
    );

    let r = http.get(site.url("/sjis")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/html");
    let bytes = r.bytes().await.unwrap();
    let (text, _, errors) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!errors);
    assert!(text.contains("<meta charset=\"Shift_JIS\">"));
    assert!(text.contains(&format!("<title>{SJIS_TITLE}</title>")));
    assert!(!text.contains("&#"), "unencodable characters");
    assert_eq!(site.site().title_of("/sjis").as_deref(), Some(SJIS_TITLE));

    let r = http.get(site.url("/malformed")).send().await.unwrap();
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.contains(&0u8));
    assert!(std::str::from_utf8(&bytes).is_err());
    let r = http.get(site.url("/binary")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().len(), 64 * 1024);
    site.shutdown().await;
}

#[tokio::test]
async fn traps_make_fresh_urls() {
    let site = start().await;
    let http = client();
    let cal = http
        .get(site.url("/calendar/2024/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        cal.contains("href=\"/calendar/2023/12\"") && cal.contains("href=\"/calendar/2024/2\"")
    );
    let a = http
        .get(site.url("/session/0?sid=x"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let b = http
        .get(site.url("/session/0?sid=x"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(a.contains("/session/1?sid="));
    assert_ne!(a, b);
    site.shutdown().await;
}

#[tokio::test]
async fn nasty_root_links_every_fault_route() {
    let site = TestSite::start(SiteConfig {
        nasty: true,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let root = client()
        .get(site.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exp = site.site().expected();
    for p in exp
        .error_paths
        .keys()
        .chain(exp.redirects.keys())
        .chain(exp.non_html.iter())
    {
        assert!(root.contains(&format!("href=\"{p}\"")), "{p} not linked");
    }
    assert!(root.contains("href=\"/calendar/") && root.contains("href=\"/session/"));
    site.shutdown().await;
}

#[tokio::test]
async fn stats_endpoint_is_json_and_not_counted() {
    let site = start().await;
    let http = client();
    http.get(site.url("/p/1"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    http.get(site.url("/nope?q=1"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let host = site.addr().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            site.in_flight(&host) == 0
        })
        .await
    );
    let body = http
        .get(site.url(STATS_PATH))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let json: SiteStats = serde_json::from_slice(&body).unwrap();
    assert_eq!(json.requests, 2);
    assert_eq!(json.by_path.get("/p/1"), Some(&1));
    assert_eq!(json.by_path.get("/nope"), Some(&1));
    assert_eq!(json.hosts[&host].requests, 2);
    assert!(json.log.is_empty());
    let stats = site.stats();
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.log[1].path_and_query, "/nope?q=1");
    assert!(!stats.by_path.contains_key(STATS_PATH));
    site.shutdown().await;
}

#[tokio::test]
async fn log_can_be_disabled_and_latency_applies() {
    let site = TestSite::start(SiteConfig {
        log_requests: false,
        latency: Some(Duration::from_millis(120)),
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let t = Instant::now();
    assert_eq!(
        client()
            .get(site.url("/p/0"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(120));
    let stats = site.stats();
    assert_eq!(stats.requests, 1);
    assert!(stats.log.is_empty());
    site.shutdown().await;
}

#[tokio::test]
async fn other_loopback_address_and_http2() {
    let addr: std::net::SocketAddr = "127.0.0.2:0".parse().unwrap();
    let site = TestSite::start_on(SiteConfig::default(), addr)
        .await
        .unwrap();
    assert!(site.base_url().starts_with("http://127.0.0.2:"));
    let r = client().get(site.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2.get(site.url("/p/2")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!("{}/p/2", site.base_url())));
    let host = site.addr().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            site.in_flight(&host) == 0
        })
        .await
    );
    let stats = site.stats();
    assert_eq!(stats.hosts[&host].requests, 2);
    assert!(
        stats
            .log
            .iter()
            .all(|e| e.client_ip.to_string() == "127.0.0.1" || e.client_ip.is_loopback())
    );
    site.shutdown().await;
}

#[tokio::test]
async fn same_seed_same_pages() {
    let a = start().await;
    let b = start().await;
    let c = TestSite::start(SiteConfig {
        seed: 2,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let http = client();
    let get = |site: &TestSite, p: &str| {
        let url = site.url(p);
        let host = site.addr().to_string();
        let http = http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .replace(&host, "HOST")
        }
    };
    for p in ["/", "/p/0", "/p/5", "/p/199"] {
        assert_eq!(get(&a, p).await, get(&b, p).await, "{p}");
    }
    assert_ne!(get(&a, "/p/5").await, get(&c, "/p/5").await);
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[test]
fn binary_prints_ground_truth_and_serves() {
    let exe = env!("CARGO_BIN_EXE_trawl-testsite");
    let out = std::process::Command::new(exe)
        .args([
            "--pages",
            "50",
            "--fanout",
            "4",
            "--seed",
            "9",
            "--print-ground-truth",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let site = trawl_testsite::Site::generate(&SiteConfig {
        pages: 50,
        fanout: 4,
        seed: 9,
        ..SiteConfig::default()
    });
    assert_eq!(printed, site.ground_truth().into_iter().collect::<Vec<_>>());

    let mut child = std::process::Command::new(exe)
        .args(["--addr", "127.0.0.1:0", "--pages", "20", "--no-log"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line.trim().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        client()
            .get(format!("{base}/p/0"))
            .send()
            .await
            .map(|r| r.status())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status.unwrap(), 200);
}
