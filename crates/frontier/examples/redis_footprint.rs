//! What one URL costs a Redis frontier: bytes of Redis memory while it is
//! queued and after it is done (the seen-set), and Redis CPU per URL to
//! push it and to lease, mark fetched and acknowledge it, for a seen-set
//! kind (`exact` or `bloom:EXPECTED[:ERROR]`).
//!
//! `cargo run --release -p trawl-frontier --example redis_footprint -- URLS REDIS_URL SEEN_SET`
//!
//! URLs look like documentation pages (`http://docs.hN.example.org/…/page-I.html`,
//! ~60 bytes) over 1,000 hosts, each with its parent as referrer, as a
//! crawl queues them. Memory is `used_memory` of the server (give it a
//! server of its own); on disk, the growth of its RDB snapshot (`SAVE`; the
//! server must run on this machine); CPU is `used_cpu_user +
//! used_cpu_sys` (the SAVE's own CPU is in its child process). The crawl
//! `footprint-<pid>` is deleted afterwards.

use std::sync::Arc;

use trawl_core::{Frontier, Request, Url};
use trawl_frontier::redis::SeenSet;
use trawl_frontier::{RedisFrontier, RedisFrontierConfig};

const HOSTS: u64 = 1000;

fn request(i: u64) -> Request {
    let host = i % HOSTS;
    let url = format!(
        "http://docs.h{host}.example.org/manual/{}/page-{i}.html",
        i / HOSTS % 97
    );
    let parent: Arc<str> = format!(
        "http://docs.h{host}.example.org/manual/index-{}.html",
        i / 7
    )
    .into();
    Request::child_of(Url::parse(&url).expect("generated URLs parse"), 2, parent)
}

/// Size in bytes of the server's RDB snapshot after a `SAVE` (the server
/// must be on this machine: its `dir` is read from `CONFIG GET`).
async fn rdb_bytes(url: &str) -> f64 {
    let client = redis::Client::open(url).expect("a redis:// URL");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("SAVE")
        .query_async(&mut con)
        .await
        .expect("SAVE");
    let dir: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query_async(&mut con)
        .await
        .expect("CONFIG GET dir");
    let file: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dbfilename")
        .query_async(&mut con)
        .await
        .expect("CONFIG GET dbfilename");
    let path = std::path::Path::new(&dir[1]).join(&file[1]);
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64)
}

/// (used_memory bytes, CPU seconds) of the server.
async fn server_figures(url: &str) -> (f64, f64) {
    let client = redis::Client::open(url).expect("a redis:// URL");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let info: String = redis::cmd("INFO")
        .arg("all")
        .query_async(&mut con)
        .await
        .expect("INFO");
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        field("used_memory"),
        field("used_cpu_user") + field("used_cpu_sys"),
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let urls: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let url = args.get(2).map_or("redis://127.0.0.1:6379", String::as_str);
    let seen: SeenSet = args
        .get(3)
        .map_or("exact", String::as_str)
        .parse()
        .expect("a seen set: exact or bloom:EXPECTED[:ERROR]");
    let mut cfg = RedisFrontierConfig::new(url, format!("footprint-{}", std::process::id()));
    cfg.seen = seen;
    cfg.host_limit = 1_000_000;
    let frontier = RedisFrontier::connect(cfg).await.expect("connect to Redis");
    frontier.reset().await.expect("a fresh crawl");
    let rdb0 = rdb_bytes(url).await;
    let (mem0, cpu0) = server_figures(url).await;

    let batch = 1000u64;
    let mut start = 0;
    let mut added = 0;
    while start < urls {
        let reqs = (start..(start + batch).min(urls)).map(request).collect();
        added += frontier.push(reqs).await.expect("push");
        start += batch;
    }
    let (mem1, pushed_cpu) = server_figures(url).await;
    // SAVE runs in the server's own process: leave its CPU out.
    let rdb1 = rdb_bytes(url).await;
    let cpu1 = server_figures(url).await.1;
    loop {
        let leases = frontier.lease(batch as usize).await.expect("lease");
        if leases.is_empty() {
            break;
        }
        for lease in &leases {
            frontier.fetched(lease).await.expect("fetched");
        }
        frontier.ack_batch(&leases, None).await.expect("ack");
    }
    let (mem2, cpu2) = server_figures(url).await;
    let rdb2 = rdb_bytes(url).await;
    let n = urls as f64;
    println!(
        "| {seen} | {urls} | {added} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        (mem1 - mem0) / n,
        (mem2 - mem0) / n,
        (rdb1 - rdb0) / n,
        (rdb2 - rdb0) / n,
        (pushed_cpu - cpu0) / n * 1e6,
        (cpu2 - cpu1) / n * 1e6,
    );
    frontier.reset().await.expect("delete the crawl");
}
