//! How the in-memory duplicate index scales: index N pages (random
//! SimHashes and content hashes, 60-byte URLs), then look up N/10 pages a
//! few bits from indexed ones and N/10 unrelated ones; prints the memory
//! per page (peak RSS growth) and the time per check. `bench/dupes_index.sh`
//! runs it at 1 and 5 million pages.
//!
//!   cargo run --release -p trawl-traps --example index_scale -- 1000000

use std::time::Instant;

use trawl_traps::{Digest, SimIndex, Verdict};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let url = |i: u64| format!("https://www.example-shop.test/catalogue/item-{i:012}.html");
    let before = rss_kib();
    let mut index = SimIndex::new(3);
    let mut hashes = Vec::with_capacity(n as usize);
    let started = Instant::now();
    for i in 0..n {
        let h = next();
        hashes.push(h);
        let digest = Digest {
            content: Some(u128::from(next()) << 64 | u128::from(i)),
            simhash: Some(h),
        };
        index.check(&url(i), digest);
    }
    let insert = started.elapsed();
    let grown = rss_kib().saturating_sub(before);
    let probes = (n / 10).max(1);
    let started = Instant::now();
    let mut near = 0;
    for i in 0..probes {
        let base = hashes[(next() % n) as usize];
        let h = base ^ (1 << (next() % 64)) ^ (1 << (next() % 64));
        let digest = Digest {
            content: None,
            simhash: Some(h),
        };
        if matches!(
            index.lookup(&url(n + i), digest),
            Verdict::NearDuplicate { .. }
        ) {
            near += 1;
        }
    }
    let near_time = started.elapsed();
    let started = Instant::now();
    let mut false_hits = 0;
    for i in 0..probes {
        let digest = Digest {
            content: None,
            simhash: Some(next()),
        };
        if index.lookup(&url(2 * n + i), digest) != Verdict::Original {
            false_hits += 1;
        }
    }
    let far_time = started.elapsed();
    println!(
        "{n} pages: {:.0} bytes/page (RSS), insert {:.2} µs/page, near lookup {:.2} µs ({near}/{probes} found), \
         unrelated lookup {:.2} µs ({false_hits} matched)",
        grown as f64 * 1024.0 / n as f64,
        insert.as_secs_f64() * 1e6 / n as f64,
        near_time.as_secs_f64() * 1e6 / probes as f64,
        far_time.as_secs_f64() * 1e6 / probes as f64,
    );
}
