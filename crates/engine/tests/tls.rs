//! End-to-end crawls over HTTPS: the test site's TLS server (self-signed
//! certificate, ALPN h2 + http/1.1) crawled by the real engine, trusting the
//! certificate through `FetchConfig::extra_root_certs` — and not trusting it.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use trawl_engine::CrawlConfig;
use trawl_testsite::{SiteConfig, TestSite};

/// `config` for `seeds`, trusting `site`'s certificate.
fn trusting(site: &TestSite, seeds: &[String]) -> CrawlConfig {
    let mut cfg = config(seeds);
    cfg.fetch.extra_root_certs = vec![site.ca_pem().unwrap().into_bytes()];
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_crawl_finds_the_ground_truth_over_http2() {
    let site = TestSite::start_tls(SiteConfig {
        pages: 200,
        fanout: 8,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(site.base_url().starts_with("https://"));
    let c = crawl(trusting(&site, &[root(&site)])).await;
    let truth = site.site().ground_truth();
    assert!(truth.len() > 100, "site too small to mean anything");
    assert_eq!(c.ok_final_paths(), truth);
    assert_no_duplicates(&c);
    assert_eq!(c.items.len(), truth.len());
    for item in &c.items {
        assert!(item["error"].is_null(), "{item}");
        let final_url = item["final_url"].as_str().unwrap();
        assert!(final_url.starts_with("https://"), "{final_url}");
    }
    // robots.txt (fetched over TLS too) was obeyed.
    let stats = site.stats();
    for path in site.site().disallowed_paths() {
        assert!(
            !stats.by_path.contains_key(&path),
            "requested disallowed {path}"
        );
    }
    assert!(c.report.stats.robots_denied > 0);
    // Every request, robots.txt included, went over HTTP/2.
    assert!(stats.requests > truth.len() as u64);
    assert_eq!(
        stats.versions.get("HTTP/2.0"),
        Some(&stats.requests),
        "{:?}",
        stats.versions
    );
    assert_eq!(stats.versions.len(), 1, "{:?}", stats.versions);
    assert!(stats.log.iter().all(|e| e.http_version == "HTTP/2.0"));
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_an_item_error_not_a_panic() {
    let site = TestSite::start_tls(SiteConfig {
        pages: 50,
        ..Default::default()
    })
    .await
    .unwrap();
    // Robots are ignored here: with robots obeyed, an unreachable robots.txt
    // disallows the host, and the item would say "disallowed by robots.txt"
    // instead of naming the certificate (see the next test).
    let seeds = [root(&site), site.url("/p/1"), site.url("/p/2")];
    let mut cfg = config(&seeds);
    cfg.fetch.obey_robots = false;
    let c = crawl(cfg).await;
    assert_eq!(c.items.len(), seeds.len(), "{:?}", c.urls());
    for item in &c.items {
        assert_eq!(item["status"], serde_json::Value::Null, "{item}");
        let error = item["error"].as_str().unwrap_or_default();
        assert!(
            error.to_ascii_lowercase().contains("certificate"),
            "error does not name the certificate: {item}"
        );
        assert_eq!(
            item["retries"], 0,
            "a certificate error is not retried: {item}"
        );
    }
    assert_eq!(c.report.stats.pages, seeds.len() as u64);
    // No request got through the handshake.
    assert_eq!(site.stats().requests, 0);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_with_robots_obeyed_still_finishes() {
    let site = TestSite::start_tls(SiteConfig::default()).await.unwrap();
    let c = crawl(config(&[root(&site)])).await;
    // robots.txt is unreachable (the handshake fails), which disallows the
    // whole host, so the seed is robots-denied. Today that leaves no item at
    // all (robots-denied URLs are not recorded); whatever is recorded must
    // not claim success.
    assert!(c.report.stats.robots_denied >= 1);
    assert_eq!(c.report.stats.pages, c.items.len() as u64);
    assert!(
        c.items.iter().all(|i| i["error"].is_string()),
        "{:?}",
        c.items
    );
    assert_eq!(site.stats().requests, 0);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_routes_work_over_http2() {
    let site = TestSite::start_tls(SiteConfig::default()).await.unwrap();
    let mut cfg = trusting(&site, &[site.url("/gzip"), site.url("/brotli")]);
    cfg.max_depth = Some(0);
    let c = crawl(cfg).await;
    let by_path = c.by_path();
    assert_eq!(by_path.len(), 2, "{:?}", c.urls());
    for (path, title) in [("/gzip", "Gzip page"), ("/brotli", "Brotli page")] {
        let item = &by_path[path];
        assert_eq!(item["status"], 200, "{item}");
        assert_eq!(item["title"], title, "{item}");
    }
    let stats = site.stats();
    assert_eq!(stats.by_path.get("/gzip"), Some(&1));
    assert_eq!(stats.by_path.get("/brotli"), Some(&1));
    assert_eq!(
        stats.versions.get("HTTP/2.0"),
        Some(&stats.requests),
        "{:?}",
        stats.versions
    );
    site.shutdown().await;
}
