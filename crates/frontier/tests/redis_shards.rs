//! A crawl sharded over several real `redis-server` processes, and over a
//! real Redis Cluster (3 masters, each with a replica, created by the test):
//! hosts land on their shard's server only, two workers lease every URL
//! once across shards, leasing goes on while one shard is down, and a
//! master's failover loses no discovered URL.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trawl_core::{Frontier, Lease, Request, Url};
use trawl_frontier::{RedisFrontier, RedisFrontierConfig};

mod common;
use common::{RedisCluster, RedisServer, delay_proxy, eventually, redis_cli};

fn config(url: String, crawl: &str, worker: &str) -> RedisFrontierConfig {
    RedisFrontierConfig {
        url,
        crawl: crawl.to_string(),
        worker_id: worker.to_string(),
        host_limit: 2,
        host_delay: Duration::ZERO,
        lease_timeout: Duration::from_secs(30),
        seen: Default::default(),
    }
}

/// Workers `a` and `b` of `crawl`.
async fn two_workers(url: &str, crawl: &str) -> (Arc<RedisFrontier>, Arc<RedisFrontier>) {
    let connect = |id: &str| RedisFrontier::connect(config(url.to_string(), crawl, id));
    (
        Arc::new(connect("a").await.unwrap()),
        Arc::new(connect("b").await.unwrap()),
    )
}

/// `n` URLs over `hosts` hosts (names under different registrable
/// domains, so they spread over shards).
fn urls(n: usize, hosts: usize) -> Vec<Request> {
    (0..n)
        .map(|i| {
            Request::seed(Url::parse(&format!("http://site{}.test/page/{i}", i % hosts)).unwrap())
        })
        .collect()
}

/// Lease and acknowledge (in batches, after `fetched`) until the crawl is
/// finished; returns the URLs leased, in order. Checks that no host ever
/// has more than `limit` leases still fetching across `workers`.
async fn drain(workers: &[Arc<RedisFrontier>], limit: usize) -> Vec<String> {
    let fetching: Arc<parking_lot::Mutex<HashMap<String, usize>>> = Arc::default();
    let leased = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for f in workers {
        let (f, fetching, leased) = (f.clone(), fetching.clone(), leased.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let got = match f.lease(16).await {
                    Ok(got) => got,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if got.is_empty() {
                    if f.is_finished().await.unwrap_or(false) {
                        return;
                    }
                    f.wait_ready(Duration::from_millis(200)).await;
                    continue;
                }
                {
                    let mut fetching = fetching.lock();
                    for l in &got {
                        let n = fetching.entry(l.host.clone()).or_default();
                        *n += 1;
                        assert!(*n <= limit, "{} leases fetching on {}", n, l.host);
                        leased.lock().push(l.request.url.to_string());
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                for l in &got {
                    *fetching.lock().get_mut(&l.host).unwrap() -= 1;
                    f.fetched(l).await.unwrap();
                }
                let _ = f.ack_batch(&got, None).await;
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap();
    }
    std::mem::take(&mut *leased.lock())
}

fn keys_on(port: u16, pattern: &str) -> Vec<String> {
    redis_cli(port, &["--scan", "--pattern", pattern])
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_out_hosts_and_lease_every_url_once() {
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let url = servers
        .iter()
        .map(|s| s.url())
        .collect::<Vec<_>>()
        .join(",");
    let (a, b) = two_workers(&url, "spread").await;
    let all = urls(600, 30);
    assert_eq!(a.push(all.clone()).await.unwrap(), 600);
    // The other worker's offer of the same URLs finds them seen.
    assert_eq!(b.push(all.clone()).await.unwrap(), 0);

    // Every host's queue is on its shard's server, and only there.
    let prefixes = a.shard_prefixes();
    assert_eq!(prefixes.len(), 3);
    let mut hosts_per_shard = [0usize; 3];
    for host in (0..30).map(|h| format!("site{h}.test")) {
        let k = a.shard_of_host(&host);
        hosts_per_shard[k] += 1;
        for (i, server) in servers.iter().enumerate() {
            let found = keys_on(server.port, &format!("trawl:*:queue:{host}"));
            if i == k {
                assert_eq!(found, [format!("{}queue:{host}", prefixes[k])]);
            } else {
                assert!(found.is_empty(), "{host} also on server {i}: {found:?}");
            }
        }
    }
    assert!(
        hosts_per_shard.iter().all(|&n| n > 0),
        "{hosts_per_shard:?}"
    );

    let st = a.status().await.unwrap();
    assert_eq!(st.shards.len(), 3);
    assert_eq!(st.frontier.seen, 600);
    assert_eq!(
        st.shards.iter().map(|s| s.frontier.queued).sum::<u64>(),
        600
    );

    let leased = drain(&[a.clone(), b.clone()], 2).await;
    assert_eq!(leased.len(), 600, "every URL leased exactly once");
    let distinct: HashSet<&String> = leased.iter().collect();
    assert_eq!(distinct.len(), 600);
    assert!(a.is_finished().await.unwrap() && b.is_finished().await.unwrap());
    let st = b.status().await.unwrap();
    assert_eq!((st.frontier.queued, st.frontier.leased), (0, 0));
    assert_eq!(st.workers.len(), 2);

    // A worker naming the instances in another order is refused.
    let mut reversed: Vec<String> = servers.iter().map(|s| s.url()).collect();
    reversed.reverse();
    let err = match RedisFrontier::connect(config(reversed.join(","), "spread", "c")).await {
        Ok(_) => panic!("a different shard order was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("same --redis list"), "{err}");

    // Deleting the crawl leaves nothing of it on any instance.
    a.delete().await.unwrap();
    for server in &servers {
        assert_eq!(keys_on(server.port, "trawl:*"), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leasing_goes_on_while_one_shard_is_down() {
    let mut servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_persistent()).collect();
    let url = servers
        .iter()
        .map(|s| s.url())
        .collect::<Vec<_>>()
        .join(",");
    let a = Arc::new(
        RedisFrontier::connect(config(url, "away", "a"))
            .await
            .unwrap(),
    );
    a.push(urls(300, 30)).await.unwrap();
    let on_shard = |l: &Lease| a.shard_of_host(&l.host);
    let total_on_1 = urls(300, 30)
        .iter()
        .filter(|r| a.shard_of_host(&r.host_key()) == 1)
        .count();
    assert!(total_on_1 > 0);

    servers[1].kill();
    // Leasing keeps serving the two shards that answer.
    let mut leased: Vec<Lease> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while leased.len() < 300 - total_on_1 {
        assert!(Instant::now() < deadline, "only {} leased", leased.len());
        let got = a.lease(32).await.unwrap_or_default();
        assert!(got.iter().all(|l| on_shard(l) != 1));
        // Acks of the answering shards get through.
        a.ack_batch(&got, None).await.unwrap();
        leased.extend(got);
    }
    // The shard that is away is shown as such, not hidden in the sums.
    let st = a.status().await.unwrap();
    assert!(st.shards[1].error.is_some(), "{:?}", st.shards[1]);
    assert!(st.shards[0].error.is_none() && st.shards[2].error.is_none());
    // Its work is not forgotten: the crawl is not finished.
    assert!(!a.is_finished().await.unwrap_or(false));

    servers[1].restart();
    let mut rest: Vec<Lease> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rest.len() < total_on_1 {
        assert!(
            Instant::now() < deadline,
            "{} of {total_on_1} back",
            rest.len()
        );
        let got = a.lease(300).await.unwrap_or_default();
        assert!(got.iter().all(|l| on_shard(l) == 1));
        a.ack_batch(&got, None).await.unwrap();
        rest.extend(got);
    }
    let mut seen: HashSet<String> = leased.iter().map(|l| l.request.url.to_string()).collect();
    seen.extend(rest.iter().map(|l| l.request.url.to_string()));
    assert_eq!(seen.len(), 300);
    assert_eq!(leased.len() + rest.len(), 300);
    assert!(a.is_finished().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_failover_loses_no_discovered_url() {
    let mut cluster = RedisCluster::start(3, 1);
    let url = cluster.url(Some(3)) + "&wait=1";
    let (a, b) = two_workers(&url, "fail").await;
    // Three shards, each starting on its own master.
    let prefixes = a.shard_prefixes();
    let masters: HashSet<u16> = prefixes
        .iter()
        .map(|p| cluster.master_of(&format!("{p}queued")).unwrap())
        .collect();
    assert_eq!(masters.len(), 3, "{prefixes:?}");

    let all = urls(300, 30);
    assert_eq!(a.push(all[..200].to_vec()).await.unwrap(), 200);
    let first = a.lease(40).await.unwrap();
    assert!(!first.is_empty());
    a.ack_batch(&first, None).await.unwrap();

    // Kill the master of shard 1; its replica takes over.
    let victim = cluster
        .master_of(&format!("{}queued", prefixes[1]))
        .unwrap();
    // The acks above are on the replica (they were not waited for).
    cluster.wait_replicated(victim, Duration::from_secs(10));
    cluster.kill(victim);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster
        .master_of(&format!("{}queued", prefixes[1]))
        .is_none_or(|m| m == victim)
    {
        assert!(Instant::now() < deadline, "no replica took over");
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.wait_healthy(Duration::from_secs(30));

    // The crawl goes on through the new master: more links, then all of it.
    eventually(Duration::from_secs(30), "pushes after the failover", || {
        let (b, rest) = (b.clone(), all[200..].to_vec());
        async move { b.push(rest).await.ok() }
    })
    .await;
    let leased = drain(&[a.clone(), b.clone()], 2).await;
    let mut every: HashSet<String> = leased.iter().cloned().collect();
    every.extend(first.iter().map(|l| l.request.url.to_string()));
    let expected: HashSet<String> = all.iter().map(|r| r.url.to_string()).collect();
    assert_eq!(every, expected, "a URL was dropped by the failover");
    // Pages may come twice only when their lease or ack was lost with
    // the old master (none of the acknowledged first 40 is leased again).
    for l in &first {
        assert!(!leased.contains(&l.request.url.to_string()));
    }
    assert!(a.is_finished().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bloom_seen_set_holds_its_error_rate_and_never_forgets() {
    use trawl_frontier::redis::SeenSet;
    let servers: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let url = servers
        .iter()
        .map(|s| s.url())
        .collect::<Vec<_>>()
        .join(",");
    let mut cfg = config(url.clone(), "bloom", "a");
    cfg.seen = SeenSet::Bloom {
        expected: 20_000,
        error: 0.01,
    };
    let a = RedisFrontier::connect(cfg).await.unwrap();
    let size = a.bloom_size().expect("a Bloom filter");
    assert_eq!(size.k, 7);
    // A worker that asks for nothing follows the crawl's choice.
    let b = RedisFrontier::connect(config(url, "bloom", "b"))
        .await
        .unwrap();
    assert_eq!(b.bloom_size(), Some(size));

    let first = urls(20_000, 200);
    let mut added = 0;
    for chunk in first.chunks(2_000) {
        added += a.push(chunk.to_vec()).await.unwrap();
    }
    // While filling, false positives are rarer than at the full load.
    assert!(
        (19_900..=20_000).contains(&added),
        "{added} of 20000 taken as new"
    );
    assert_eq!(a.stats().await.unwrap().seen, added as u64);
    // No false negatives: another worker offering them all adds none.
    assert_eq!(b.push(first.clone()).await.unwrap(), 0);
    // At the load it was sized for, about 1 % of new URLs look seen (a
    // thousand probes raise the load by only 5 %).
    let fresh: Vec<Request> = (0..1_000)
        .map(|i| Request::seed(Url::parse(&format!("http://fresh{}.test/{i}", i % 100)).unwrap()))
        .collect();
    let mut new = 0;
    for chunk in fresh.chunks(100) {
        new += b.push(chunk.to_vec()).await.unwrap();
    }
    let rate = (1_000 - new) as f64 / 1_000.0;
    assert!((0.004..0.025).contains(&rate), "false-positive rate {rate}");
    // No exact set was kept; each shard's filter is m bits.
    for (server, prefix) in servers.iter().zip(a.shard_prefixes()) {
        assert_eq!(
            redis_cli(server.port, &["exists", &format!("{prefix}seen")]).trim(),
            "0"
        );
        let len: u64 = redis_cli(server.port, &["strlen", &format!("{prefix}bloom")])
            .trim()
            .parse()
            .unwrap();
        assert!(
            len > 0 && len <= size.m / 8 + 1,
            "{len} bytes for {} bits",
            size.m
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_shard_delays_only_its_own_hosts() {
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    // Shard 1 answers 60 ms late (30 ms each way).
    let slow = delay_proxy(servers[1].port, Duration::from_millis(30)).await;
    let url = [
        servers[0].url(),
        format!("redis://127.0.0.1:{slow}/"),
        servers[2].url(),
    ]
    .join(",");
    let (a, b) = two_workers(&url, "slow").await;
    let all = urls(600, 60);
    let t = Instant::now();
    a.push(all.clone()).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(60),
        "the proxy did not delay"
    );

    let leased = drain(&[a.clone(), b.clone()], 2).await;
    assert_eq!(leased.len(), 600, "every URL leased exactly once");
    assert_eq!(leased.iter().collect::<HashSet<_>>().len(), 600);
    // The fast shards' URLs were not held back behind the slow one: all
    // of them were leased before the slow shard's last.
    let shard_of = |u: &String| {
        let host = Url::parse(u).unwrap().host_str().unwrap().to_string();
        a.shard_of_host(&host)
    };
    let last_slow = leased.iter().rposition(|u| shard_of(u) == 1).unwrap();
    let last_fast = leased.iter().rposition(|u| shard_of(u) != 1).unwrap();
    assert!(
        last_fast < last_slow,
        "fast shards finished at {last_fast}, the slow one at {last_slow} of 600"
    );
    assert!(a.is_finished().await.unwrap());
}
