//! Push and pop millions of URLs through the embedded (or memory) frontier
//! and print ops/s and peak RSS: `cargo run --release -p trawl-frontier
//! --example frontier_bench -- [URLS] [HOSTS] [disk|memory|redis] [REDIS_URL]`.
//! The redis kind uses a crawl named `bench-<pid>` and deletes it after.
//!
//! URLs are spread over HOSTS hosts; every URL is pushed twice (the second
//! push must be dropped as a duplicate), then everything is leased,
//! marked fetched and acknowledged in batches, as the engine does.

use std::time::Instant;

use trawl_core::{Frontier, Request, Url};
use trawl_frontier::{DiskFrontier, MemoryFrontier, RedisFrontier, RedisFrontierConfig};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn request(i: u64, hosts: u64) -> Request {
    let host = i % hosts;
    let url = format!(
        "http://h{host}.example.test/section/{}/page-{i}.html",
        i / hosts % 97
    );
    Request::seed(Url::parse(&url).expect("generated URLs parse"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let urls: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let hosts: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let kind = args.get(3).map_or("disk", String::as_str);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut redis = None;
    let frontier: std::sync::Arc<dyn Frontier> = match kind {
        "memory" => std::sync::Arc::new(MemoryFrontier::new(2)),
        "redis" => {
            let url = args.get(4).map_or("redis://127.0.0.1:6379", String::as_str);
            let cfg = RedisFrontierConfig::new(url, format!("bench-{}", std::process::id()));
            let f =
                std::sync::Arc::new(RedisFrontier::connect(cfg).await.expect("connect to Redis"));
            redis = Some(f.clone());
            f
        }
        _ => std::sync::Arc::new(DiskFrontier::open(dir.path(), 2).expect("open the state")),
    };
    let batch = 1000u64;

    let t = Instant::now();
    let mut added = 0;
    for round in 0..2 {
        let mut start = 0;
        while start < urls {
            let reqs = (start..(start + batch).min(urls))
                .map(|i| request(i, hosts))
                .collect();
            let n = frontier.push(reqs).await.expect("push");
            if round == 0 {
                added += n;
            } else {
                assert_eq!(n, 0, "duplicates accepted");
            }
            start += batch;
        }
    }
    let push_secs = t.elapsed().as_secs_f64();
    assert_eq!(added as u64, urls);
    println!(
        "{kind}: pushed {urls} URLs over {hosts} hosts twice (second time all duplicates) in {push_secs:.1}s: {:.0} pushes/s, peak RSS {:.0} MiB",
        2.0 * urls as f64 / push_secs,
        peak_rss_mib()
    );

    let t = Instant::now();
    let mut popped = 0u64;
    loop {
        let leases = frontier.lease(batch as usize).await.expect("lease");
        if leases.is_empty() {
            break;
        }
        for lease in &leases {
            frontier.fetched(lease).await.expect("fetched");
        }
        frontier.ack_batch(&leases, None).await.expect("ack");
        popped += leases.len() as u64;
    }
    let pop_secs = t.elapsed().as_secs_f64();
    assert_eq!(popped, urls);
    println!(
        "{kind}: leased+acked {popped} URLs in {pop_secs:.1}s: {:.0} pops/s, peak RSS {:.0} MiB",
        popped as f64 / pop_secs,
        peak_rss_mib()
    );
    let stats = frontier.stats().await.expect("stats");
    assert!(stats.is_finished());
    if let Some(f) = redis {
        f.reset().await.expect("delete the bench crawl");
    }
}
