//! The sink stage with several sinks: item pipelines written in Rust, sinks
//! in parallel, retries and the dead-letter file.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use trawl_core::{CrawlStats, Item, Sink, SinkError};
use trawl_engine::{Engine, Shutdown};
use trawl_frontier::MemoryFrontier;
use trawl_pipeline::{ItemPipeline, Pipeline, Verdict};
use trawl_sink::MemorySink;
use trawl_testsite::{SiteConfig, TestSite};

/// A Rust pipeline stage: keep pages up to depth 1, tag the rest dropped.
struct ShallowOnly;

impl ItemPipeline for ShallowOnly {
    fn name(&self) -> &str {
        "shallow-only"
    }
    fn process(&self, mut item: Item) -> Verdict {
        if item.0["depth"].as_u64().unwrap_or(0) > 1 {
            return Verdict::Drop {
                reason: "too deep".into(),
            };
        }
        item.0.insert("checked".into(), true.into());
        Verdict::Keep(item)
    }
}

/// A sink whose first `fail_first` writes fail (a fault injected on
/// purpose: the real ones — a full disk, a restarted database — are in the
/// CLI's tests), then writes to memory.
struct Flaky {
    name: &'static str,
    fail_first: u32,
    calls: Arc<AtomicU32>,
    inner: MemorySink,
}

#[async_trait::async_trait]
impl Sink for Flaky {
    fn name(&self) -> String {
        self.name.into()
    }
    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first {
            return Err(SinkError::Other(format!("injected failure {n}")));
        }
        self.inner.write_batch(items).await
    }
    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_in_parallel_retry_and_dead_letter_with_a_rust_pipeline() {
    let site = TestSite::start(SiteConfig {
        pages: 300,
        fanout: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&[root(&site)]);
    cfg.batch_size = 8;
    cfg.sinks.backoff = Duration::from_millis(5);
    cfg.sinks.max_backoff = Duration::from_millis(20);
    cfg.sinks.attempts = 3;
    cfg.sinks.dead_letter_dir = dir.path().join("dead");

    let mut pipeline = Pipeline::new();
    pipeline.push(Arc::new(ShallowOnly));
    let stats = Arc::new(CrawlStats::default());
    let engine = Engine::new(cfg, stats.clone()).with_pipeline(Arc::new(pipeline));

    // A healthy sink; one that fails twice then recovers (retried, nothing
    // lost); one that always fails (every batch to the dead-letter file).
    let healthy = MemorySink::new();
    let healthy_items = healthy.items();
    let recovering = Flaky {
        name: "recovering",
        fail_first: 2,
        calls: Arc::new(AtomicU32::new(0)),
        inner: MemorySink::new(),
    };
    let recovering_items = recovering.inner.items();
    let broken_calls = Arc::new(AtomicU32::new(0));
    let broken = Flaky {
        name: "broken",
        fail_first: u32::MAX,
        calls: broken_calls.clone(),
        inner: MemorySink::new(),
    };
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(healthy), Box::new(recovering), Box::new(broken)];
    let frontier = Arc::new(MemoryFrontier::new(4));
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        engine.run(frontier.clone(), sinks, Shutdown::default()),
    )
    .await
    .unwrap()
    .unwrap();

    // The pipeline ran on every item.
    let healthy_items: Vec<Item> = healthy_items.lock().clone();
    assert!(!healthy_items.is_empty());
    assert!(healthy_items.iter().all(|i| i.0["checked"] == true));
    assert!(
        healthy_items
            .iter()
            .all(|i| i.0["depth"].as_u64().unwrap() <= 1)
    );
    let dropped = report.stats.items_dropped;
    assert!(dropped > 0);
    assert_eq!(healthy_items.len() as u64 + dropped, report.stats.pages);

    // The recovering sink got exactly what the healthy one got.
    let urls = |items: &[Item]| {
        let mut v: Vec<String> = items
            .iter()
            .map(|i| i.0["url"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(urls(&recovering_items.lock()), urls(&healthy_items));
    let by_name = |n: &str| {
        report
            .stats
            .sinks
            .iter()
            .find(|s| s.name == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("recovering").retries, 2);
    assert_eq!(by_name("recovering").dead_lettered, 0);

    // The broken sink's items are all in its dead-letter file, once.
    let dead = std::fs::read_to_string(dir.path().join("dead/broken.jsonl")).unwrap();
    let dead: Vec<Item> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(urls(&dead), urls(&healthy_items));
    let broken_stats = by_name("broken");
    assert_eq!(broken_stats.dead_lettered, healthy_items.len() as u64);
    assert_eq!(broken_stats.items, 0);
    assert_eq!(
        u64::from(broken_calls.load(Ordering::SeqCst)),
        broken_stats.failed_batches * 3,
        "three attempts per batch"
    );
    // One message for the sink, however many batches it gave up on.
    assert!(broken_stats.failed_batches > 1);
    assert_eq!(report.sink_errors.len(), 1, "{:?}", report.sink_errors);
    let e = &report.sink_errors[0];
    assert!(e.starts_with("broken: gave up after 3 attempts"), "{e}");
    assert!(e.contains("dead-letter file"), "{e}");
    assert!(
        e.ends_with(&format!(
            "(and likewise for {} more batches)",
            broken_stats.failed_batches - 1
        )),
        "{e}"
    );
    // Every lease was acknowledged: the frontier is finished.
    let f = trawl_core::Frontier::stats(frontier.as_ref())
        .await
        .unwrap();
    assert!(f.is_finished(), "{f:?}");
    site.shutdown().await;
}
