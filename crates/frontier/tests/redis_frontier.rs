//! Integration tests of `RedisFrontier` against real `redis-server`
//! processes: each test starts its own server on a free loopback port with a
//! temporary directory (never the machine's shared 6379 instance), and
//! several frontier instances on one crawl stand in for worker processes.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use trawl_core::{Frontier, FrontierError, Lease, Request, Url};
use trawl_frontier::{RedisFrontier, RedisFrontierConfig};

mod common;
use common::{RedisServer, eventually};

fn config(server: &RedisServer, crawl: &str, worker: &str) -> RedisFrontierConfig {
    RedisFrontierConfig {
        url: server.url(),
        crawl: crawl.to_string(),
        worker_id: worker.to_string(),
        host_limit: 2,
        host_delay: Duration::ZERO,
        lease_timeout: Duration::from_secs(30),
        seen: Default::default(),
    }
}

async fn connect(cfg: RedisFrontierConfig) -> RedisFrontier {
    RedisFrontier::connect(cfg).await.unwrap()
}

fn req(s: &str) -> Request {
    Request::seed(Url::parse(s).unwrap())
}

/// `n` URLs spread round-robin over `hosts` hosts.
fn urls(n: usize, hosts: usize) -> Vec<Request> {
    (0..n)
        .map(|i| req(&format!("http://h{}.test/page/{i}", i % hosts)))
        .collect()
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupes_across_two_workers() {
    let server = RedisServer::start();
    let a = connect(config(&server, "dedupe", "a")).await;
    let b = connect(config(&server, "dedupe", "b")).await;
    let mut batch = urls(100, 4);
    batch.extend(urls(10, 4)); // duplicates inside one batch too
    let (na, nb) = tokio::join!(a.push(batch.clone()), b.push(batch));
    assert_eq!(na.unwrap() + nb.unwrap(), 100);
    assert_eq!(b.push(urls(100, 4)).await.unwrap(), 0);
    assert_eq!(a.push(vec![req("http://h9.test/new")]).await.unwrap(), 1);
    let s = b.stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.seen, s.hosts), (101, 0, 101, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_leasing_never_duplicates_or_exceeds_host_limit() {
    const LIMIT: usize = 2;
    let server = RedisServer::start();
    let a = Arc::new(connect(config(&server, "conc", "a")).await);
    let b = Arc::new(connect(config(&server, "conc", "b")).await);
    assert_eq!(a.push(urls(200, 5)).await.unwrap(), 200);

    let seen = Arc::new(parking_lot::Mutex::new(HashSet::new()));
    let outstanding: Arc<HashMap<String, AtomicUsize>> = Arc::new(
        (0..5)
            .map(|h| (format!("h{h}.test"), AtomicUsize::new(0)))
            .collect(),
    );
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // Two consumer tasks per instance, each holding up to 3 leases.
    for f in [a.clone(), b.clone(), a.clone(), b.clone()] {
        let (seen, outstanding, peak) = (seen.clone(), outstanding.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = 0usize;
            loop {
                let leases = f.lease(3).await.unwrap();
                if leases.is_empty() {
                    if f.is_finished().await.unwrap() {
                        return mine;
                    }
                    f.wait_ready(Duration::from_millis(50)).await;
                    continue;
                }
                for l in &leases {
                    assert!(
                        seen.lock().insert(l.request.url.to_string()),
                        "leased twice: {}",
                        l.request.url
                    );
                    // Bumped after the lease was granted, dropped before the
                    // ack: never above the real outstanding count.
                    let now = outstanding[&l.host].fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= LIMIT, "{} has {now} leases", l.host);
                    peak.fetch_max(now, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                for l in &leases {
                    outstanding[&l.host].fetch_sub(1, Ordering::SeqCst);
                    f.ack(l).await.unwrap();
                }
                mine += leases.len();
            }
        }));
    }
    let mut per_task = Vec::new();
    for t in tasks {
        per_task.push(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(per_task.iter().sum::<usize>(), 200);
    assert_eq!(seen.lock().len(), 200);
    assert_eq!(peak.load(Ordering::SeqCst), LIMIT);
    let s = a.stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.seen, s.hosts), (0, 0, 200, 0));
    assert!(b.is_finished().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_lease_returns_after_timeout() {
    let server = RedisServer::start();
    let mut cfg = config(&server, "expiry", "a");
    cfg.lease_timeout = Duration::from_millis(500);
    let a = connect(cfg.clone()).await;
    cfg.worker_id = "b".into();
    let b = connect(cfg).await;
    a.push(vec![req("http://x.test/1")]).await.unwrap();
    let started = Instant::now();
    let lost = a.lease(10).await.unwrap();
    assert_eq!(lost.len(), 1);
    assert!(b.lease(10).await.unwrap().is_empty());
    // Worker a "dies": it never acks. b gets the URL once the lease expires.
    let again = eventually(Duration::from_secs(5), "the lease to expire", || async {
        let l = b.lease(10).await.unwrap();
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].request, lost[0].request);
    assert_ne!(again[0].id, lost[0].id);
    // The late ack of the reclaimed lease changes nothing.
    assert!(matches!(
        a.ack(&lost[0]).await,
        Err(FrontierError::UnknownLease(id)) if id == lost[0].id
    ));
    assert!(a.release(&lost[0]).await.is_err());
    let s = b.stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.hosts), (0, 1, 1));
    assert_eq!(b.status().await.unwrap().reclaimed, 1);
    b.ack(&again[0]).await.unwrap();
    assert!(b.is_finished().await.unwrap());
    let s = b.stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.hosts), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_keeps_a_lease_alive() {
    let server = RedisServer::start();
    let mut cfg = config(&server, "hb", "a");
    cfg.lease_timeout = Duration::from_millis(500);
    let a = Arc::new(connect(cfg.clone()).await);
    cfg.worker_id = "b".into();
    let b = connect(cfg).await;
    a.push(vec![req("http://x.test/1")]).await.unwrap();
    let held = a.lease(1).await.unwrap();
    assert_eq!(held.len(), 1);
    let beat = a.spawn_heartbeat(Duration::from_millis(100));
    // Three lease timeouts pass; the lease stays with a.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert!(b.lease(1).await.unwrap().is_empty());
        assert!(!b.is_finished().await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = b.status().await.unwrap();
    let wa = status.workers.iter().find(|w| w.id == "a").unwrap();
    assert_eq!(wa.leases, 1);
    // a stops heart-beating ("hangs"): the lease comes back.
    beat.abort();
    let got = eventually(Duration::from_secs(5), "the lease to expire", || async {
        let l = b.lease(1).await.unwrap();
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert_eq!(got[0].request, held[0].request);
    b.ack(&got[0]).await.unwrap();
    // a's heartbeat finds its lease gone and stops extending it.
    a.heartbeat().await.unwrap();
    // a's late ack changes nothing: the lease is gone.
    assert!(a.ack(&held[0]).await.is_err());
    assert!(b.is_finished().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_delay_is_global_across_workers() {
    const DELAY_US: u64 = 300_000;
    let server = RedisServer::start();
    let mut cfg = config(&server, "delay", "a");
    cfg.host_limit = 10;
    cfg.host_delay = Duration::from_micros(DELAY_US);
    let a = Arc::new(connect(cfg.clone()).await);
    cfg.worker_id = "b".into();
    let b = Arc::new(connect(cfg).await);
    let pages: Vec<Request> = (0..6)
        .map(|i| req(&format!("http://slow.test/{i}")))
        .collect();
    a.push(pages).await.unwrap();
    let lease_key = format!("{}lease", a.key_prefix());
    let starts = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for f in [a.clone(), b.clone()] {
        let (starts, lease_key, url) = (starts.clone(), lease_key.clone(), server.url());
        tasks.push(tokio::spawn(async move {
            let mut con = redis::Client::open(url)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            loop {
                let leases = f.lease(5).await.unwrap();
                if leases.is_empty() {
                    if f.is_finished().await.unwrap() {
                        return;
                    }
                    f.wait_ready(Duration::from_secs(1)).await;
                    continue;
                }
                for l in leases {
                    // The lease record holds its start by the server clock.
                    let rec: String = redis::cmd("HGET")
                        .arg(&lease_key)
                        .arg(l.id)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    // `<fetched flag><start>\t<worker>\t<host>\t<request>`
                    let t: u64 = rec[1..].split('\t').next().unwrap().parse().unwrap();
                    starts.lock().push(t);
                    f.ack(&l).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap();
    }
    let mut starts = starts.lock().clone();
    starts.sort_unstable();
    assert_eq!(starts.len(), 6);
    for w in starts.windows(2) {
        assert!(
            w[1] - w[0] >= DELAY_US,
            "lease starts {} µs apart",
            w[1] - w[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_detected_only_without_queued_or_leased_work() {
    let server = RedisServer::start();
    let mut cfg = config(&server, "finish", "a");
    cfg.lease_timeout = Duration::from_millis(300);
    let b = connect(RedisFrontierConfig {
        worker_id: "b".into(),
        ..cfg.clone()
    })
    .await;
    assert!(b.is_finished().await.unwrap());
    b.push(vec![req("http://x.test/1"), req("http://y.test/1")])
        .await
        .unwrap();
    assert!(!b.is_finished().await.unwrap());
    let two = b.lease(10).await.unwrap();
    assert_eq!(two.len(), 2);
    assert!(!b.is_finished().await.unwrap());
    b.ack(&two[0]).await.unwrap();
    assert!(!b.is_finished().await.unwrap());
    b.ack(&two[1]).await.unwrap();
    assert!(b.is_finished().await.unwrap());

    // A worker that dies holding a lease: not finished before or after the
    // lease expires (it goes back to the queue), only once redone.
    {
        let a = connect(cfg).await;
        a.push(vec![req("http://x.test/2")]).await.unwrap();
        assert_eq!(a.lease(1).await.unwrap().len(), 1);
    }
    assert!(!b.is_finished().await.unwrap());
    eventually(Duration::from_secs(5), "the reclaim", || async {
        assert!(!b.is_finished().await.unwrap());
        (b.stats().await.unwrap().queued == 1).then_some(())
    })
    .await;
    let l = b.lease(1).await.unwrap();
    assert_eq!(l[0].request.url.as_str(), "http://x.test/2");
    b.ack(&l[0]).await.unwrap();
    assert!(b.is_finished().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ready_sleeps_and_wakes_on_another_workers_push() {
    let server = RedisServer::start();
    let a = connect(config(&server, "wake", "a")).await;
    let b = Arc::new(connect(config(&server, "wake", "b")).await);
    // Nothing to do: it sleeps the whole timeout instead of returning.
    let t = Instant::now();
    b.wait_ready(Duration::from_millis(300)).await;
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );

    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            b.wait_ready(Duration::from_secs(20)).await;
            t.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.push(vec![req("http://x.test/1")]).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(b.lease(1).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_deletes_only_this_crawls_keys() {
    let server = RedisServer::start();
    let mut con = raw(&server).await;
    redis::cmd("SET")
        .arg("unrelated:key")
        .arg("1")
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    // "a*" must not match the "a" or "ab" crawls through the glob.
    let mut frontiers = Vec::new();
    for crawl in ["a*", "a", "ab"] {
        let f = connect(config(&server, crawl, &format!("w-{crawl}"))).await;
        f.push(urls(20, 3)).await.unwrap();
        let l = f.lease(2).await.unwrap();
        f.ack(&l[0]).await.unwrap();
        f.defer_host("h2.test", Duration::from_secs(60))
            .await
            .unwrap();
        f.record_done(1, 0).await.unwrap();
        frontiers.push(f);
    }
    let keys = |con: redis::aio::MultiplexedConnection| async move {
        let mut con = con;
        let all: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut con)
            .await
            .unwrap();
        all
    };
    let before = keys(con.clone()).await;
    let count = |ks: &[String], p: &str| ks.iter().filter(|k| k.starts_with(p)).count();
    assert!(count(&before, "trawl:{a*}:") > 5);
    let before_a = count(&before, "trawl:{a}:");
    let before_ab = count(&before, "trawl:{ab}:");
    let stats_ab = frontiers[2].stats().await.unwrap();

    frontiers[0].reset().await.unwrap();
    let after = keys(con.clone()).await;
    // Only the crawl's shard map and seen-set mode are written again.
    let mut left: Vec<&String> = after
        .iter()
        .filter(|k| k.starts_with("trawl:{a*}:"))
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["trawl:{a*}:seenset", "trawl:{a*}:shards"],
        "{after:?}"
    );
    assert_eq!(count(&after, "trawl:{a}:"), before_a);
    assert_eq!(count(&after, "trawl:{ab}:"), before_ab);
    assert!(after.contains(&"unrelated:key".to_string()));
    assert_eq!(frontiers[2].stats().await.unwrap(), stats_ab);
    // The reset crawl starts over.
    let s = frontiers[0].stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.seen, s.hosts), (0, 0, 0, 0));
    assert_eq!(frontiers[0].push(urls(20, 3)).await.unwrap(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_defer_and_round_robin() {
    let server = RedisServer::start();
    let f = connect(config(&server, "rr", "a")).await;
    let mut reqs: Vec<Request> = (0..10).map(|i| req(&format!("http://big/{i}"))).collect();
    reqs.push(req("http://small/1"));
    reqs.push(req("http://small/2"));
    f.push(reqs).await.unwrap();
    // Two per host at most, both hosts served.
    let leases = f.lease(10).await.unwrap();
    assert_eq!(leases.len(), 4);
    assert_eq!(leases.iter().filter(|l| l.host == "big").count(), 2);
    assert_eq!(leases.iter().filter(|l| l.host == "small").count(), 2);
    assert!(f.lease(10).await.unwrap().is_empty());
    let s = f.status().await.unwrap();
    assert_eq!((s.full_hosts, s.ready_hosts), (1, 0));

    // A released request goes back to the head of its queue.
    let big0 = leases.iter().find(|l| l.host == "big").unwrap();
    f.release(big0).await.unwrap();
    assert!(f.release(big0).await.is_err());
    let again = f.lease(10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].request, big0.request);

    // A deferred host is skipped until its delay passes.
    for l in leases.iter().chain(&again).filter(|l| l.id != big0.id) {
        f.ack(l).await.unwrap();
    }
    f.defer_host("big", Duration::from_millis(600))
        .await
        .unwrap();
    f.defer_host("big", Duration::from_millis(10))
        .await
        .unwrap(); // a shorter deferral does not shorten it
    let t = Instant::now();
    assert!(f.lease(10).await.unwrap().is_empty());
    f.wait_ready(Duration::from_secs(5)).await;
    let l = eventually(Duration::from_secs(5), "the deferral", || async {
        let l = f.lease(10).await.unwrap();
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(l.len(), 2);
    assert!(l.iter().all(|l| l.host == "big"));
    let s = f.stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.seen, s.hosts), (6, 2, 12, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_live_workers_and_counters() {
    let server = RedisServer::start();
    let mut cfg = config(&server, "st", "a");
    cfg.lease_timeout = Duration::from_millis(800);
    let a = connect(cfg.clone()).await;
    cfg.worker_id = "b".into();
    let b = connect(cfg).await;
    a.push(urls(4, 2)).await.unwrap();
    let l = a.lease(1).await.unwrap();
    a.record_done(3, 1).await.unwrap();
    b.record_done(2, 0).await.unwrap();
    // Totals, not increments: a report repeated (a retry after a timeout
    // that Redis still ran) or arriving late changes nothing.
    a.record_done(3, 1).await.unwrap();
    b.record_done(1, 0).await.unwrap();
    a.heartbeat().await.unwrap();
    let s = b.status().await.unwrap();
    assert_eq!((s.pages, s.errors), (5, 1));
    assert_eq!(s.frontier.queued, 3);
    assert_eq!(s.frontier.leased, 1);
    assert_eq!(s.dead_workers, 0);
    let mut ids: Vec<_> = s.workers.iter().map(|w| w.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a", "b"]);
    let wa = s.workers.iter().find(|w| w.id == "a").unwrap();
    assert_eq!((wa.pages, wa.errors, wa.leases), (3, 1, 1));
    assert!(wa.last_seen_ms >= wa.started_ms && wa.last_seen_ms <= s.server_time_ms);
    // b stays alive, a goes silent: a is dead after one lease timeout.
    eventually(Duration::from_secs(5), "a to be declared dead", || async {
        b.heartbeat().await.unwrap();
        let s = b.status().await.unwrap();
        (s.dead_workers == 1).then_some(s)
    })
    .await;
    let s = b.status().await.unwrap();
    assert_eq!(s.workers.len(), 1);
    assert_eq!(s.workers[0].id, "b");
    drop(l);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_redis_restart() {
    let mut server = RedisServer::start_persistent();
    let a = connect(config(&server, "restart", "a")).await;
    let b = connect(config(&server, "restart", "b")).await;
    assert_eq!(a.push(urls(50, 2)).await.unwrap(), 50);
    let held = a.lease(2).await.unwrap();
    assert_eq!(held.len(), 2);

    server.kill();
    // Calls fail (typed) while Redis is away.
    eventually(Duration::from_secs(15), "a failure while down", || async {
        matches!(a.stats().await, Err(FrontierError::Storage(_))).then_some(())
    })
    .await;
    assert!(matches!(
        a.push(vec![req("http://h0.test/new")]).await,
        Err(FrontierError::Storage(_))
    ));
    assert!(matches!(a.lease(1).await, Err(FrontierError::Storage(_))));
    assert!(matches!(
        b.is_finished().await,
        Err(FrontierError::Storage(_))
    ));
    // wait_ready does not spin while Redis is away (the first call returns
    // at once for a's earlier pushes, which b has not looked at).
    b.wait_ready(Duration::ZERO).await;
    let t = Instant::now();
    b.wait_ready(Duration::from_millis(200)).await;
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(1),
        "{waited:?}"
    );

    server.restart();
    let s = eventually(
        Duration::from_secs(15),
        "calls to succeed again",
        || async { a.stats().await.ok() },
    )
    .await;
    assert_eq!((s.queued, s.leased, s.seen, s.hosts), (48, 2, 50, 2));
    // Leases, the seen-set and the queues survived.
    a.ack(&held[0]).await.unwrap();
    a.release(&held[1]).await.unwrap();
    assert_eq!(a.push(urls(50, 2)).await.unwrap(), 0);
    let got = eventually(Duration::from_secs(15), "b to lease again", || async {
        b.lease(4).await.ok()
    })
    .await;
    assert_eq!(got.len(), 4);
    assert!(got.iter().any(|l| l.request == held[1].request));

    // The wake-up listeners resubscribe: a push by a wakes b.
    let con = raw(&server).await;
    let channel = format!("{}wakeup", a.key_prefix());
    eventually(Duration::from_secs(15), "both listeners back", || {
        let (mut con, channel) = (con.clone(), channel.clone());
        async move {
            let (_, n): (String, u64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut con)
                .await
                .unwrap();
            (n == 2).then_some(())
        }
    })
    .await;
    b.wait_ready(Duration::ZERO).await; // forget the reconnect's wake-up
    let b = Arc::new(b);
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            b.wait_ready(Duration::from_secs(20)).await;
            t.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.push(vec![req("http://new.test/1")]).await.unwrap(), 1);
    let waited = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_frees_the_host_slot_and_ack_batch_stores_a_checkpoint() {
    let server = RedisServer::start();
    let mut cfg = config(&server, "batch", "w1");
    cfg.host_limit = 1;
    let f = connect(cfg.clone()).await;
    let pages: Vec<Request> = (0..3)
        .map(|i| req(&format!("http://one.test/{i}")))
        .collect();
    f.push(pages).await.unwrap();
    let first = f.lease(10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(f.lease(10).await.unwrap().is_empty());
    // The fetch is over: the slot is free, the lease still outstanding.
    f.fetched(&first[0]).await.unwrap();
    f.fetched(&first[0]).await.unwrap(); // idempotent
    let second = f.lease(10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert!(f.lease(10).await.unwrap().is_empty());
    let s = f.stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.hosts), (1, 2, 1));
    assert!(!f.is_finished().await.unwrap());
    assert_eq!(f.checkpoint().await.unwrap(), None);

    // An unknown id in a batch is reported; the others are acked anyway.
    let bogus = Lease {
        id: 999_999,
        ..first[0].clone()
    };
    let batch = vec![first[0].clone(), bogus, second[0].clone()];
    assert!(matches!(
        f.ack_batch(&batch, Some(b"pos=10".to_vec())).await,
        Err(FrontierError::UnknownLease(999_999))
    ));
    assert_eq!(
        f.checkpoint().await.unwrap().as_deref(),
        Some(&b"pos=10"[..])
    );
    let s = f.stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.hosts), (1, 0, 1));
    let last = f.lease(10).await.unwrap();
    assert_eq!(last.len(), 1);
    f.fetched(&last[0]).await.unwrap();
    // Fetched but not acked: the host and the crawl still have work.
    let s = f.stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.hosts), (0, 1, 1));
    assert!(!f.is_finished().await.unwrap());
    f.ack_batch(&last, Some(b"pos=20".to_vec())).await.unwrap();
    assert!(f.is_finished().await.unwrap());
    assert_eq!(f.stats().await.unwrap().hosts, 0);

    // The checkpoint belongs to the worker id: a worker restarted with the
    // same id reads it back, another worker has none.
    drop(f);
    let again = connect(cfg.clone()).await;
    assert_eq!(
        again.checkpoint().await.unwrap().as_deref(),
        Some(&b"pos=20"[..])
    );
    cfg.worker_id = "w2".into();
    assert_eq!(connect(cfg).await.checkpoint().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_fetched_and_fetching_leases_requeue_with_counts_intact() {
    let server = RedisServer::start();
    let mut cfg = config(&server, "exp2", "a");
    cfg.host_limit = 1;
    cfg.lease_timeout = Duration::from_millis(300);
    let a = connect(cfg.clone()).await;
    cfg.worker_id = "b".into();
    cfg.lease_timeout = Duration::from_secs(30);
    let b = connect(cfg).await;
    a.push(vec![req("http://one.test/1"), req("http://one.test/2")])
        .await
        .unwrap();
    // a takes both (one fetched, one fetching) and dies.
    let l1 = a.lease(10).await.unwrap();
    a.fetched(&l1[0]).await.unwrap();
    let l2 = a.lease(10).await.unwrap();
    assert_eq!((l1.len(), l2.len()), (1, 1));
    eventually(Duration::from_secs(5), "both leases back", || async {
        assert!(!b.is_finished().await.unwrap());
        let s = b.stats().await.unwrap();
        (s.queued == 2 && s.leased == 0).then_some(())
    })
    .await;
    assert_eq!(b.stats().await.unwrap().hosts, 1);
    // The host's slot count came back to zero, not below: one at a time.
    let x = b.lease(10).await.unwrap();
    assert_eq!(x.len(), 1);
    assert!(b.lease(10).await.unwrap().is_empty());
    b.fetched(&x[0]).await.unwrap();
    let y = b.lease(10).await.unwrap();
    assert_eq!(y.len(), 1);
    assert!(b.lease(10).await.unwrap().is_empty());
    b.ack(&x[0]).await.unwrap();
    b.ack(&y[0]).await.unwrap();
    assert!(b.is_finished().await.unwrap());
    let s = b.stats().await.unwrap();
    assert_eq!((s.queued, s.leased, s.seen, s.hosts), (0, 0, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_fields_survive_between_workers() {
    let server = RedisServer::start();
    let a = connect(config(&server, "fields", "a")).await;
    let b = connect(config(&server, "fields", "b")).await;
    let pushed = trawl_frontier::testing::rich_request();
    assert_eq!(
        a.push(vec![pushed.clone(), req("http://b.test/plain")])
            .await
            .unwrap(),
        2
    );
    // Another worker leases what a pushed.
    let leases = b.lease(10).await.unwrap();
    assert_eq!(leases.len(), 2);
    let got = leases.iter().find(|l| l.request.url == pushed.url).unwrap();
    assert_eq!(got.request, pushed);
    assert_eq!(got.request.headers, pushed.headers);
    assert_eq!(got.request.proxy_pool.as_deref(), Some("residential"));
    assert_eq!(got.request.callback.as_deref(), Some("parse_item"));
    let plain = leases
        .iter()
        .find(|l| l.request.url.host_str() == Some("b.test"))
        .unwrap();
    assert_eq!(plain.request, req("http://b.test/plain"));
    // Released by b, leased again by a: still whole.
    b.release(got).await.unwrap();
    let again = a.lease(10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].request, pushed);
}

/// The shared duplicate index: two workers see each other's pages, exact
/// and near duplicates are told apart, a page is never its own duplicate,
/// and two workers racing with near-duplicates get one original between
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_index_is_shared_by_workers() {
    use trawl_traps::{ContentIndex, Digest, Verdict};
    let server = RedisServer::start();
    let a = connect(config(&server, "dupes", "w1")).await;
    let b = connect(config(&server, "dupes", "w2")).await;
    let (ia, ib) = (a.content_index(3), b.content_index(3));
    let hash = |c: char| c.to_string().repeat(64);
    let page = Digest::new(Some(&hash('a')), Some(0x0123_4567_89ab_cdef));
    assert_eq!(
        ia.check("http://e.com/a", page).await.unwrap(),
        Verdict::Original
    );
    // The same body on another worker.
    assert_eq!(
        ib.check("http://e.com/b", page).await.unwrap(),
        Verdict::Duplicate {
            of: "http://e.com/a".into()
        }
    );
    // The page itself again (a revisit): not a duplicate.
    assert_eq!(
        ib.check("http://e.com/a", page).await.unwrap(),
        Verdict::Original
    );
    // Another body, text 2 bits away (one in each 32-bit half).
    let near = Digest::new(
        Some(&hash('b')),
        Some(0x0123_4567_89ab_cdef ^ (1 << 40) ^ 1),
    );
    assert_eq!(
        ib.check("http://e.com/c", near).await.unwrap(),
        Verdict::NearDuplicate {
            of: "http://e.com/a".into(),
            distance: 2
        }
    );
    // Far away: an original, found by the next near one.
    let far = Digest::new(Some(&hash('c')), Some(!0x0123_4567_89ab_cdef));
    assert_eq!(
        ia.check("http://e.com/d", far).await.unwrap(),
        Verdict::Original
    );
    let close_to_far = Digest::new(Some(&hash('d')), Some(!0x0123_4567_89ab_cdef ^ (1 << 63)));
    assert_eq!(
        ib.check("http://e.com/e", close_to_far).await.unwrap(),
        Verdict::NearDuplicate {
            of: "http://e.com/d".into(),
            distance: 1
        }
    );
    // Racing workers: 20 pages of one template at once, half on each;
    // exactly one is the original.
    let ia = Arc::new(ia);
    let ib = Arc::new(ib);
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let index = if i % 2 == 0 { ia.clone() } else { ib.clone() };
        tasks.push(tokio::spawn(async move {
            let digest = Digest::new(
                Some(&format!("{i:064x}")),
                Some(0x5555_0000_ffff_aaaa ^ (1 << (i % 3))),
            );
            index
                .check(&format!("http://e.com/t/{i}"), digest)
                .await
                .unwrap()
        }));
    }
    let mut originals = 0;
    for t in tasks {
        if t.await.unwrap() == Verdict::Original {
            originals += 1;
        }
    }
    assert_eq!(originals, 1);
}
