//! `trawl status --redis URL --crawl NAME`: one snapshot of a distributed
//! crawl's queues, leases, workers and progress.

use anyhow::Context;
use trawl_frontier::{RedisFrontier, RedisFrontierConfig};

use crate::args::StatusArgs;

/// `trawl status`: one snapshot of a crawl.
pub async fn run(args: &StatusArgs) -> anyhow::Result<u8> {
    let mut cfg = RedisFrontierConfig::new(args.redis.clone(), args.crawl.clone());
    cfg.worker_id = format!("status-{}", std::process::id());
    let frontier = RedisFrontier::connect(cfg)
        .await
        .with_context(|| format!("connecting to {}", args.redis))?;
    let st = frontier.status().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(0);
    }
    println!("crawl {}", st.crawl);
    println!(
        "  queued {} | leased {} | seen {} | hosts {} (ready {}, at limit {})",
        st.frontier.queued,
        st.frontier.leased,
        st.frontier.seen,
        st.frontier.hosts,
        st.ready_hosts,
        st.full_hosts
    );
    println!(
        "  pages done {} | errors {} | expired leases {} | reclaimed {}",
        st.pages, st.errors, st.expired_leases, st.reclaimed
    );
    if st.shards.len() > 1 {
        println!("  shards: {}", st.shards.len());
        for (k, shard) in st.shards.iter().enumerate() {
            match &shard.error {
                Some(error) => println!("    {k} {}  unreachable: {error}", shard.prefix),
                None => println!(
                    "    {k} {}  queued {} | leased {} | seen {} | hosts {} | reclaimed {}",
                    shard.prefix,
                    shard.frontier.queued,
                    shard.frontier.leased,
                    shard.frontier.seen,
                    shard.frontier.hosts,
                    shard.reclaimed
                ),
            }
        }
    }
    // `trawl status` processes register like workers; leave them out.
    let workers: Vec<_> = st
        .workers
        .iter()
        .filter(|w| !w.id.starts_with("status-"))
        .collect();
    println!(
        "  workers: {} live, {} silent",
        workers.len(),
        st.dead_workers
    );
    for w in workers {
        println!(
            "    {}  pages {}  errors {}  leases {}  {:.1} pages/s  last seen {:.1}s ago",
            w.id,
            w.pages,
            w.errors,
            w.leases,
            w.pages_per_sec(),
            w.silent_for(st.server_time_ms).as_secs_f64()
        );
    }
    Ok(0)
}
