//! End-to-end crawls of the real test site over real sockets.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use trawl_engine::Shutdown;
use trawl_testsite::{RobotsMode, SiteConfig, TestSite, error_kind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_exactly_the_ground_truth() {
    let site = TestSite::start(SiteConfig {
        pages: 400,
        fanout: 10,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = crawl(config(&[root(&site)])).await;
    let truth = site.site().ground_truth();
    assert!(truth.len() > 100, "site too small to mean anything");
    assert_eq!(c.ok_final_paths(), truth);
    assert_no_duplicates(&c);
    assert_eq!(
        c.items.len(),
        truth.len(),
        "only ground-truth pages are recorded"
    );
    // Every title matches the generator's.
    for (path, item) in c.by_path() {
        assert_eq!(
            item["title"].as_str().map(str::to_string),
            site.site().title_of(&path),
            "{path}"
        );
        assert!(item["content_hash"].as_str().is_some_and(|h| h.len() == 64));
        assert!(item["depth"].as_u64().is_some());
    }
    // Robots: nothing disallowed was requested.
    let stats = site.stats();
    for path in site.site().disallowed_paths() {
        assert!(
            !stats.by_path.contains_key(&path),
            "requested disallowed {path}"
        );
    }
    assert_eq!(c.report.stats.pages, truth.len() as u64);
    assert_eq!(c.report.stats.items_written, truth.len() as u64);
    assert!(c.report.stats.robots_denied > 0);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_limit_matches_ground_truth_within_depth() {
    let site = TestSite::start(SiteConfig {
        pages: 400,
        fanout: 6,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = config(&[root(&site)]);
    cfg.max_depth = Some(2);
    let c = crawl(cfg).await;
    assert_eq!(c.ok_final_paths(), site.site().ground_truth_within_depth(2));
    assert!(c.items.iter().all(|i| i["depth"].as_u64().unwrap() <= 2));
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_robots_groups_and_wildcards_are_obeyed() {
    let robots = "User-agent: *\nDisallow: /\n\nUser-agent: trawl\nDisallow: /p/1\nAllow: /p/1$\nDisallow: /*3$\n".to_string();
    let site = TestSite::start(SiteConfig {
        pages: 300,
        robots: RobotsMode::Custom(robots),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = crawl(config(&[root(&site)])).await;
    let got = c.ok_final_paths();
    assert_eq!(got, site.site().ground_truth());
    // /p/1 itself is allowed (longest match: Allow /p/1$), /p/1x and /…3 are not.
    for path in &got {
        assert!(
            !(path.starts_with("/p/1") && path != "/p/1"),
            "{path} should be disallowed"
        );
        assert!(!path.ends_with('3'), "{path} should be disallowed");
    }
    let requested: BTreeSet<String> = site.stats().by_path.keys().cloned().collect();
    assert!(
        requested.iter().all(|p| !p.ends_with('3')),
        "disallowed URL requested"
    );
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_5xx_disallows_and_4xx_allows_everything() {
    let site = TestSite::start(SiteConfig {
        pages: 100,
        robots: RobotsMode::ServerError,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = config(&[root(&site)]);
    cfg.fetch.retries = 0;
    let c = crawl(cfg).await;
    assert!(c.items.is_empty(), "5xx robots.txt must disallow all");
    let requested: Vec<String> = site.stats().by_path.keys().cloned().collect();
    assert_eq!(requested, vec!["/robots.txt".to_string()]);
    site.shutdown().await;

    let site = TestSite::start(SiteConfig {
        pages: 100,
        robots: RobotsMode::None,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = crawl(config(&[root(&site)])).await;
    assert_eq!(c.ok_final_paths(), site.site().ground_truth());
    // With robots.txt a 404, the /private/ links are fair game.
    assert!(
        c.ok_final_paths()
            .iter()
            .any(|p| p.starts_with("/private/"))
            || site.site().disallowed_paths().is_empty()
    );
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_robots_fetches_disallowed_pages() {
    let site = TestSite::start(SiteConfig {
        pages: 200,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = config(&[root(&site)]);
    cfg.fetch.obey_robots = false;
    let c = crawl(cfg).await;
    let stats = site.stats();
    assert!(!stats.by_path.contains_key("/robots.txt"));
    let disallowed = site.site().disallowed_paths();
    assert!(!disallowed.is_empty());
    assert!(disallowed.iter().any(|p| stats.by_path.contains_key(p)));
    assert!(c.report.stats.robots_denied == 0);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_concurrency_never_exceeds_the_limit() {
    let cfg_site = SiteConfig {
        pages: 300,
        fanout: 12,
        latency: Some(Duration::from_millis(30)),
        ..Default::default()
    };
    let a = TestSite::start(cfg_site.clone()).await.unwrap();
    let b = TestSite::start_on(cfg_site, "127.0.0.2:0".parse().unwrap())
        .await
        .unwrap();
    let mut cfg = config(&[root(&a), root(&b)]);
    cfg.concurrency = 64;
    cfg.fetch.per_host = 3;
    let c = crawl(cfg).await;
    let truth = a.site().ground_truth().len() * 2;
    assert_eq!(c.items.len(), truth);
    for site in [&a, &b] {
        let stats = site.stats();
        assert_eq!(stats.hosts.len(), 1, "{:?}", stats.hosts.keys());
        for (host, h) in &stats.hosts {
            assert!(
                h.max_concurrency <= 3,
                "{host}: {} concurrent requests",
                h.max_concurrency
            );
            assert!(
                h.max_concurrency >= 2,
                "{host}: the limit was never used ({})",
                h.max_concurrency
            );
        }
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_spaces_requests_to_a_host() {
    let site = TestSite::start(SiteConfig {
        pages: 30,
        fanout: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = config(&[root(&site)]);
    cfg.fetch.per_host = 4;
    cfg.fetch.delay = Duration::from_millis(100);
    cfg.max_pages = Some(8);
    crawl(cfg).await;
    let mut starts: Vec<_> = site
        .stats()
        .log
        .iter()
        .filter(|e| e.path_and_query != "/robots.txt")
        .map(|e| e.started)
        .collect();
    starts.sort();
    assert!(starts.len() >= 5);
    // The site logs when it sees a request, which on a loaded machine can
    // lag the crawler's send by a few ms either way: each gap may come out a
    // little short, but never far, and the whole run is spaced by the delay.
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(60), "requests {gap:?} apart");
    }
    let span = starts[starts.len() - 1] - starts[0];
    let min_span = Duration::from_millis(100) * (starts.len() as u32 - 1);
    assert!(
        span + Duration::from_millis(20) >= min_span,
        "{} requests within {span:?}",
        starts.len()
    );
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_never_crash_the_crawl() {
    let site = TestSite::start(SiteConfig {
        pages: 100,
        nasty: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = config(&[root(&site)]);
    cfg.fetch.timeout = Duration::from_secs(1);
    cfg.fetch.retries = 2;
    cfg.max_depth = Some(12);
    cfg.max_pages_per_host = Some(2000);
    let c = crawl(cfg).await;
    let expected = site.site().expected();
    let items = c.by_path();

    // Every 200 page the site promises, including retried ones and redirect targets.
    let ok = c.ok_final_paths();
    for path in &expected.ok_pages {
        assert!(ok.contains(path), "missing ok page {path}");
    }
    for (from, to) in &expected.redirects {
        let item = &items[from];
        assert_eq!(path_of(item["final_url"].as_str().unwrap()), *to);
        assert_eq!(item["status"], 200);
        assert!(item["redirects"].as_u64().unwrap() >= 1);
    }
    for path in &expected.retried {
        assert_eq!(items[path]["status"], 200, "{path}");
        assert!(
            items[path]["retries"].as_u64().unwrap() >= 1,
            "{path} was not retried"
        );
        // Retry-After: 1 was honoured (the back-off alone is ~50 ms here).
        let mut starts: Vec<_> = site
            .stats()
            .log
            .iter()
            .filter(|e| e.path_and_query == *path)
            .map(|e| e.started)
            .collect();
        starts.sort();
        assert!(starts.len() >= 2, "{path}");
        for pair in starts.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(950),
                "{path} retried after {:?}, before its Retry-After",
                pair[1] - pair[0]
            );
        }
    }
    for (path, kind) in &expected.error_paths {
        let item = items
            .get(path)
            .unwrap_or_else(|| panic!("no item for {path}"));
        let error = item["error"].as_str().unwrap_or("");
        let status = item["status"].as_u64();
        match kind.as_str() {
            error_kind::HTTP_404 => assert_eq!(status, Some(404)),
            error_kind::HTTP_410 => assert_eq!(status, Some(410)),
            error_kind::HTTP_500 => assert_eq!(status, Some(500)),
            error_kind::HTTP_503 => {
                assert_eq!(status, Some(503));
                assert_eq!(item["retries"], 2, "503 is retried");
            }
            error_kind::REDIRECT_LOOP => assert!(error.contains("loop"), "{path}: {error}"),
            error_kind::TOO_MANY_REDIRECTS => {
                assert!(error.contains("more than 10 redirects"), "{path}: {error}")
            }
            error_kind::REDIRECT_OUT_OF_SCOPE => {
                assert!(error.contains("out of scope"), "{path}: {error}")
            }
            error_kind::CONNECTION_RESET => assert!(error.contains("reset"), "{path}: {error}"),
            error_kind::TIMEOUT => assert!(
                error.contains("timed out") || error.contains("body"),
                "{path}: {error}"
            ),
            error_kind::BODY_TOO_LARGE => {
                assert_eq!(item["truncated"], true, "{path}");
                assert_eq!(item["bytes"], 1024 * 1024, "{path}");
            }
            other => panic!("unhandled kind {other}"),
        }
        if kind != error_kind::BODY_TOO_LARGE {
            assert!(!error.is_empty(), "{path} has no error");
        }
    }
    for path in &expected.non_html {
        assert_eq!(items[path]["status"], 200);
        assert!(items[path]["title"].is_null());
    }
    // Charsets decoded.
    for (path, title) in [
        ("/latin1", trawl_testsite::LATIN1_TITLE),
        ("/sjis", trawl_testsite::SJIS_TITLE),
    ] {
        assert_eq!(items[path]["title"], title, "{path}");
    }
    // Traps ended: bounded by the depth limit.
    for prefix in &expected.traps {
        let n = c
            .items
            .iter()
            .filter(|i| path_of(i["url"].as_str().unwrap()).starts_with(prefix.as_str()))
            .count();
        // Each trap page links one step further (both ways for the calendar).
        assert!(n > 0 && n <= 2 * 12 + 1, "{prefix}: {n} pages");
    }
    assert_no_duplicates(&c);
    let stats = site.stats();
    assert!(
        !stats
            .by_path
            .keys()
            .any(|p| expected.disallowed.contains(p))
    );
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_budget_ends_a_trap() {
    let site = TestSite::start(SiteConfig {
        pages: 50,
        nasty: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = config(&[format!("{}/calendar/2024/1", site.base_url())]);
    cfg.max_pages_per_host = Some(40);
    let c = crawl(cfg).await;
    assert_eq!(c.items.len(), 40);
    assert!(c.report.stats.filtered > 0);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pages_stops_the_crawl() {
    let site = TestSite::start(SiteConfig {
        pages: 300,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = config(&[root(&site)]);
    cfg.max_pages = Some(25);
    let c = crawl(cfg).await;
    assert_eq!(c.items.len(), 25);
    assert!(c.report.left_queued > 0);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sitemaps_add_pages_links_do_not_reach() {
    let site = TestSite::start(SiteConfig {
        pages: 300,
        ..Default::default()
    })
    .await
    .unwrap();
    let only = site.site().sitemap_only_paths();
    assert!(!only.is_empty());
    let c = crawl(config(&[root(&site)])).await;
    assert!(c.ok_final_paths().is_disjoint(&only));
    let mut cfg = config(&[root(&site)]);
    cfg.sitemaps = true;
    let c = crawl(cfg).await;
    let got = c.ok_final_paths();
    assert!(
        only.is_subset(&got),
        "missing {:?}",
        only.difference(&got).collect::<Vec<_>>()
    );
    assert!(site.site().ground_truth().is_subset(&got));
    assert_no_duplicates(&c);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_work() {
    let site = TestSite::start(SiteConfig {
        pages: 500,
        latency: Some(Duration::from_millis(50)),
        ..Default::default()
    })
    .await
    .unwrap();
    let shutdown = Shutdown::default();
    let trigger = shutdown.clone();
    let stats_probe = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        trigger.trigger();
    });
    let c = crawl_with(config(&[root(&site)]), shutdown).await;
    stats_probe.await.unwrap();
    assert!(c.report.stats.interrupted);
    assert!(!c.items.is_empty());
    assert!(c.items.len() < site.site().ground_truth().len());
    // Every fetch the site answered produced an item.
    let served = site
        .stats()
        .by_path
        .iter()
        .filter(|(p, _)| p.as_str() != "/robots.txt")
        .map(|(_, n)| *n)
        .sum::<u64>();
    assert_eq!(served, c.items.len() as u64);
    site.shutdown().await;
}

/// A sink that writes nothing until its gate opens.
struct GatedSink {
    gate: std::sync::Arc<tokio::sync::Semaphore>,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl trawl_core::Sink for GatedSink {
    fn name(&self) -> String {
        "gated".into()
    }
    async fn write_batch(
        &mut self,
        items: &[trawl_core::Item],
    ) -> Result<(), trawl_core::SinkError> {
        let _open = self.gate.acquire().await.unwrap();
        self.written
            .fetch_add(items.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    async fn flush(&mut self) -> Result<(), trawl_core::SinkError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_stops_fetching_instead_of_buffering() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let site = TestSite::start(SiteConfig {
        pages: 3000,
        fanout: 10,
        ..Default::default()
    })
    .await
    .unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let written = Arc::new(AtomicUsize::new(0));
    let sink = GatedSink {
        gate: gate.clone(),
        written: written.clone(),
    };
    let mut cfg = config(&[root(&site)]);
    cfg.concurrency = 16;
    cfg.fetch.per_host = 16;
    cfg.batch_size = 8;
    cfg.sinks.queue_batches = 1;
    let engine = trawl_engine::Engine::new(cfg, Arc::new(trawl_core::CrawlStats::default()));
    let frontier = Arc::new(trawl_frontier::MemoryFrontier::new(16));
    let run = tokio::spawn(async move {
        let sinks: Vec<Box<dyn trawl_core::Sink>> = vec![Box::new(sink)];
        engine.run(frontier, sinks, Shutdown::default()).await
    });
    // With the sink stalled, fetching must stop at what the bounded queues
    // hold: wait until the request count stops moving.
    let mut last = u64::MAX;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = site.stats().requests;
        if now == last {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fetching never stopped ({now} requests)"
        );
        last = now;
    }
    let total = site.site().ground_truth().len() as u64;
    // What the bounded stages can hold: the batch in the stalled sink (8
    // pages), its queue (one batch), the batch the dispatcher waits to hand
    // over, the item queue (2 × 8), the page in the router's hand and the
    // 16 whose duplicate verdicts it asks ahead, the route and parse
    // queues (4 × 2 workers each), one response per parse worker, 16 fetch
    // tasks holding a response, and robots.txt.
    assert!(
        last <= 8 + 8 + 8 + 2 * 8 + 1 + 16 + 8 + 8 + 2 + 16 + 1,
        "{last} requests with the sink stalled"
    );
    assert!(last < total);
    assert_eq!(written.load(Ordering::SeqCst), 0);
    gate.add_permits(1_000_000);
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.stats.pages, total);
    assert_eq!(written.load(Ordering::SeqCst) as u64, total);
    site.shutdown().await;
}
