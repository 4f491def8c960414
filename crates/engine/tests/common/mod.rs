//! Shared helpers: run a real crawl against a real test site.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use trawl_core::{CrawlStats, Sink, Url};
use trawl_engine::engine::CrawlReport;
use trawl_engine::{CrawlConfig, Engine, Shutdown};
use trawl_frontier::MemoryFrontier;
use trawl_sink::MemorySink;
use trawl_testsite::TestSite;

/// A crawl config for tests: fast timeouts and back-off so faults resolve quickly.
pub fn config(seeds: &[String]) -> CrawlConfig {
    let mut cfg = CrawlConfig {
        seeds: seeds.iter().map(|s| Url::parse(s).unwrap()).collect(),
        concurrency: 32,
        parse_threads: 2,
        ..CrawlConfig::default()
    };
    cfg.fetch.timeout = Duration::from_secs(3);
    cfg.fetch.connect_timeout = Duration::from_secs(2);
    cfg.fetch.backoff_base = Duration::from_millis(50);
    cfg.fetch.max_body = 1024 * 1024;
    cfg
}

pub struct Crawl {
    pub items: Vec<Value>,
    pub report: CrawlReport,
}

impl Crawl {
    /// Items keyed by the requested URL's path (and query).
    pub fn by_path(&self) -> BTreeMap<String, Value> {
        self.items
            .iter()
            .map(|i| (path_of(i["url"].as_str().unwrap()), i.clone()))
            .collect()
    }

    /// Paths of pages with a 200 final status, by final URL.
    pub fn ok_final_paths(&self) -> BTreeSet<String> {
        self.items
            .iter()
            .filter(|i| i["status"] == 200)
            .map(|i| path_of(i["final_url"].as_str().unwrap()))
            .collect()
    }

    pub fn urls(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|i| i["url"].as_str().unwrap().to_string())
            .collect()
    }
}

pub fn path_of(url: &str) -> String {
    let u = Url::parse(url).unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// Crawl with a memory frontier and a memory sink; must finish within 60 s.
pub async fn crawl(cfg: CrawlConfig) -> Crawl {
    crawl_with(cfg, Shutdown::default()).await
}

pub async fn crawl_with(cfg: CrawlConfig, shutdown: Shutdown) -> Crawl {
    let sink = MemorySink::new();
    let items = sink.items();
    let frontier = Arc::new(MemoryFrontier::new(cfg.fetch.per_host));
    let engine = Engine::new(cfg, Arc::new(CrawlStats::default()));
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        engine.run(frontier, sinks, shutdown),
    )
    .await
    .expect("crawl did not finish within 60 s")
    .expect("crawl failed");
    let items = items
        .lock()
        .iter()
        .map(|i| serde_json::to_value(i).unwrap())
        .collect();
    Crawl { items, report }
}

pub fn root(site: &TestSite) -> String {
    format!("{}/", site.base_url())
}

/// No URL appears twice among the items.
pub fn assert_no_duplicates(c: &Crawl) {
    let urls = c.urls();
    let unique: BTreeSet<_> = urls.iter().collect();
    assert_eq!(urls.len(), unique.len(), "duplicate items");
}
