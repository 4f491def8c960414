//! The engine with another fetcher at the downloader's edge: pages come
//! from a map, not the network, and the rest of the crawl (scope, parse
//! pool, router, sinks, frontier) is the same.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use trawl_core::{CrawlStats, Sink, Url};
use trawl_engine::{CrawlConfig, Engine, Shutdown};
use trawl_fetch::{FetchError, FetchOutcome, Fetcher, RequestOptions};
use trawl_frontier::MemoryFrontier;
use trawl_robots::Robots;
use trawl_sink::MemorySink;

/// A site held in memory.
struct MapFetcher {
    pages: HashMap<String, String>,
    fetched: AtomicUsize,
    finished: AtomicUsize,
}

#[async_trait::async_trait]
impl Fetcher for MapFetcher {
    async fn fetch(
        &self,
        url: &Url,
        _options: &RequestOptions<'_>,
        _in_scope: &(dyn for<'u> Fn(&'u Url) -> bool + Sync),
    ) -> FetchOutcome {
        self.fetched.fetch_add(1, Ordering::SeqCst);
        match self.pages.get(url.path()) {
            Some(html) => FetchOutcome::answered(
                url.clone(),
                200,
                Some("text/html".into()),
                html.clone(),
                Duration::from_millis(1),
            ),
            None => FetchOutcome::failed(
                url.clone(),
                std::time::Instant::now(),
                FetchError::Other("not in the map".into()),
            ),
        }
    }

    async fn robots(&self, _url: &Url) -> Arc<Robots> {
        Arc::new(Robots::allow_all())
    }

    async fn finish(&self) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_fetcher_serves_the_whole_crawl() {
    let page = |title: &str, links: &[&str]| {
        let links: String = links
            .iter()
            .map(|l| format!("<a href=\"{l}\">x</a>"))
            .collect();
        format!("<html><head><title>{title}</title></head><body>{links}</body></html>")
    };
    let pages: HashMap<String, String> = [
        ("/", page("Home", &["/a", "/b", "https://elsewhere.test/"])),
        ("/a", page("A", &["/b", "/missing"])),
        ("/b", page("B", &["/"])),
    ]
    .into_iter()
    .map(|(p, h)| (p.to_string(), h))
    .collect();
    let fetcher = Arc::new(MapFetcher {
        pages,
        fetched: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
    });
    let cfg = CrawlConfig {
        seeds: vec![Url::parse("http://map.test/").unwrap()],
        parse_threads: 2,
        ..CrawlConfig::default()
    };
    let sink = MemorySink::new();
    let items = sink.items();
    let engine = Engine::new(cfg, Arc::new(CrawlStats::default())).with_fetcher(fetcher.clone());
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        engine.run(Arc::new(MemoryFrontier::new(2)), sinks, Shutdown::default()),
    )
    .await
    .expect("crawl finished")
    .unwrap();
    let items = items.lock().clone();
    let mut titles: Vec<(String, Option<String>)> = items
        .iter()
        .map(|i| {
            (
                Url::parse(i.0["url"].as_str().unwrap())
                    .unwrap()
                    .path()
                    .to_string(),
                i.0["title"].as_str().map(str::to_string),
            )
        })
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            ("/".to_string(), Some("Home".to_string())),
            ("/a".to_string(), Some("A".to_string())),
            ("/b".to_string(), Some("B".to_string())),
            ("/missing".to_string(), None),
        ],
        "in-scope pages once each; the other host is out of scope"
    );
    assert_eq!(fetcher.fetched.load(Ordering::SeqCst), 4);
    assert_eq!(
        fetcher.finished.load(Ordering::SeqCst),
        1,
        "finish once, at the end"
    );
    assert_eq!(report.stats.pages_ok, 3);
}
