//! End-to-end consistency: a naive crawler over real HTTP finds exactly the
//! ground truth, every page's links canonicalize to `Site::links_of`, and
//! titles match `Site::title_of`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, VecDeque};

use common::{canonical_same_site, client, client_for, extract, title};
use trawl_testsite::{RobotsMode, SiteConfig, TestSite};
use url::Url;

async fn crawl(site: &TestSite, with_sitemaps: bool) -> BTreeSet<String> {
    let http = client_for(site);
    let base = Url::parse(&site.base_url()).unwrap();
    let disallowed = site.site().disallowed_paths();
    let mut seen = BTreeSet::new();
    let mut ok = BTreeSet::new();
    let mut queue = VecDeque::from(["/".to_owned()]);
    if with_sitemaps {
        for p in site.site().sitemap_paths() {
            queue.push_back(p);
        }
    }
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        if disallowed.contains(&path) {
            continue;
        }
        let page_url = base.join(&path).unwrap();
        let resp = http.get(page_url.clone()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let html = resp.text().await.unwrap();
        ok.insert(path.clone());
        assert_eq!(title(&html), site.site().title_of(&path), "title of {path}");
        let (base_href, hrefs) = extract(&html);
        let mut links = BTreeSet::new();
        for h in &hrefs {
            if let Some(target) = canonical_same_site(&base, &page_url, base_href.as_deref(), h) {
                links.insert(target);
            }
        }
        let expected = site.site().links_of(&path).unwrap();
        // Fragment-only links resolve to the page itself.
        links.remove(&path);
        let mut expected_wo_self = expected.clone();
        expected_wo_self.remove(&path);
        assert_eq!(
            links, expected_wo_self,
            "links of {path} (hrefs: {hrefs:?})"
        );
        queue.extend(links);
    }
    ok
}

#[tokio::test]
async fn naive_crawl_finds_exactly_the_ground_truth() {
    let site = TestSite::start(SiteConfig {
        seed: 3,
        pages: 120,
        fanout: 6,
        page_bytes: 2500,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let truth = site.site().ground_truth();
    let found = crawl(&site, false).await;
    assert_eq!(found, truth);
    // robots-forbidden paths were never requested.
    let stats = site.stats();
    for p in site.site().disallowed_paths() {
        assert!(!stats.by_path.contains_key(&p), "{p} was requested");
    }
    let with_sitemaps = crawl(&site, true).await;
    let expected: BTreeSet<String> = truth
        .union(&site.site().sitemap_only_paths())
        .cloned()
        .collect();
    assert_eq!(with_sitemaps, expected);
    site.shutdown().await;
}

#[tokio::test]
async fn naive_crawl_with_shop_finds_exactly_the_ground_truth() {
    let site = TestSite::start(SiteConfig {
        seed: 5,
        pages: 60,
        fanout: 4,
        page_bytes: 1500,
        shop: true,
        shop_products: 45,
        shop_articles: 13,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let truth = site.site().ground_truth();
    let found = crawl(&site, false).await;
    assert_eq!(found, truth);
    for p in site.site().products() {
        assert!(truth.contains(&p.path), "{}", p.path);
    }
    for a in site.site().articles() {
        assert!(truth.contains(&a.path), "{}", a.path);
    }
    site.shutdown().await;
}

#[tokio::test]
async fn naive_crawl_over_tls_finds_exactly_the_ground_truth() {
    let site = TestSite::start_tls(SiteConfig {
        seed: 3,
        pages: 120,
        fanout: 6,
        page_bytes: 2500,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    assert!(site.base_url().starts_with("https://"));
    let truth = site.site().ground_truth();
    assert_eq!(crawl(&site, false).await, truth);
    let with_sitemaps = crawl(&site, true).await;
    let expected: BTreeSet<String> = truth
        .union(&site.site().sitemap_only_paths())
        .cloned()
        .collect();
    assert_eq!(with_sitemaps, expected);
    site.shutdown().await;
}

#[tokio::test]
async fn naive_crawl_without_robots_also_matches() {
    let site = TestSite::start(SiteConfig {
        seed: 11,
        pages: 60,
        fanout: 4,
        robots: RobotsMode::None,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    assert!(site.site().disallowed_paths().is_empty());
    let truth = site.site().ground_truth();
    assert!(truth.contains("/private/secret"));
    assert_eq!(crawl(&site, false).await, truth);
    site.shutdown().await;
}

#[tokio::test]
async fn link_forms_are_varied() {
    let site = TestSite::start(SiteConfig::default()).await.unwrap();
    let http = client();
    let mut all = String::new();
    for i in 0..60 {
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
    for needle in [
        "href=\"http://127.0.0.1:",
        "HTTP://127.0.0.1:",
        "href=\"//127.0.0.1:",
        "%3",
        "#sec-",
        "../",
        "./",
        "/x/../p/",
        "<base href=",
        "<area ",
        "HREF=",
        "href='",
        "mailto:",
        "javascript:",
        "external.invalid",
    ] {
        assert!(all.contains(needle), "no link of the form {needle:?}");
    }
    // Sizes vary around page_bytes.
    let sizes: Vec<usize> = {
        let mut v = Vec::new();
        for i in 0..20 {
            v.push(
                http.get(site.url(&format!("/p/{i}")))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
                    .len(),
            );
        }
        v
    };
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(*min >= 2000 && *max <= 6500 && max - min > 500, "{sizes:?}");
    site.shutdown().await;
}
