//! Distributed crawls across hosts: Redis, the test site and every worker
//! each in its own network namespace on one virtual network
//! (`common/netns.rs`), so all their traffic crosses a link that the test
//! can cut. Needs root and iproute2, as CI has.
//!
//! The test site runs in its namespace as this very test binary (the
//! ignored test `test_site_in_a_namespace`, started by [`Site::start`]):
//! `cargo test -p trawl` builds no other package's binaries, so a
//! `trawl-testsite` binary could be missing or stale, while this one is
//! always the current site.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use common::netns::{Host, Network};
use common::{line_count, read_jsonl, wait_until};
use trawl_testsite::{SiteConfig, SiteStats, TestSite};

/// The crawl's name in Redis.
const CRAWL: &str = "t";
const REDIS_PORT: u16 = 6379;
const SITE_PORT: u16 = 8080;
/// Set (to `PAGES FANOUT LATENCY_MS ADDR`) in the environment of the test
/// binary when it runs as the test site.
const SITE_ENV: &str = "TRAWL_MULTIHOST_SITE";
const SITE_READY: &str = "multihost-site-ready ";
const SITE_STATS: &str = "multihost-site-stats ";

fn site_config(pages: usize, fanout: usize, latency_ms: u64) -> SiteConfig {
    SiteConfig {
        pages,
        fanout,
        latency: (latency_ms > 0).then(|| Duration::from_millis(latency_ms)),
        ..Default::default()
    }
}

/// Not a test: the test site of the tests below, run by [`Site::start`]
/// inside a namespace. Serves until its stdin closes, then prints what it
/// saw.
#[test]
#[ignore = "the multi-host tests run it as their test site"]
fn test_site_in_a_namespace() {
    let Ok(spec) = std::env::var(SITE_ENV) else {
        return;
    };
    let spec: Vec<&str> = spec.split(' ').collect();
    let cfg = site_config(
        spec[0].parse().unwrap(),
        spec[1].parse().unwrap(),
        spec[2].parse().unwrap(),
    );
    let addr = spec[3].parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let site = TestSite::start_on(cfg, addr).await.unwrap();
        println!("{SITE_READY}{}", site.base_url());
        tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()))
            .await
            .unwrap()
            .unwrap();
        println!(
            "{SITE_STATS}{}",
            serde_json::to_string(&site.stats()).unwrap()
        );
        site.shutdown().await;
    });
}

/// A child process, killed on drop; its stderr goes to a file (its stdout
/// wherever `cmd` says).
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut cmd: std::process::Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let child = cmd
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until every process exited 0, within `deadline` in all.
fn wait_success(procs: &mut [&mut Proc], deadline: Duration) {
    let end = Instant::now() + deadline;
    for p in procs.iter_mut() {
        loop {
            if let Some(status) = p.child.try_wait().unwrap() {
                assert!(status.success(), "{} {status}:\n{}", p.name, p.log());
                break;
            }
            assert!(
                Instant::now() < end,
                "{} did not finish within {deadline:?}:\n{}",
                p.name,
                p.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `redis-cli ARGS…` against the redis-server on `host`:`port`, run on
/// that host; stdout.
fn redis_cli(host: &Host, port: u16, args: &[&str]) -> String {
    let out = host
        .command("redis-cli")
        .args(["-h", &host.addr.to_string()])
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A redis-server on `host` (no persistence), bound to the host's address.
struct Redis<'h> {
    host: &'h Host,
    _proc: Proc,
}

impl<'h> Redis<'h> {
    fn start(host: &'h Host, dir: &Path) -> Redis<'h> {
        let mut cmd = host.command("redis-server");
        cmd.args(["--bind", &host.addr.to_string()])
            .args(["--port", &REDIS_PORT.to_string()])
            .args(["--protected-mode", "no", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null());
        let redis = Redis {
            host,
            _proc: Proc::spawn("redis", cmd, dir),
        };
        wait_until("redis-server to answer", Duration::from_secs(10), || {
            redis.cli(&["PING"]).trim() == "PONG"
        });
        redis
    }

    fn url(&self) -> String {
        format!("redis://{}:{REDIS_PORT}", self.host.addr)
    }

    /// `redis-cli ARGS…` against it, from its own host; stdout.
    fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.host, REDIS_PORT, args)
    }

    fn key(suffix: &str) -> String {
        format!("trawl:{{{CRAWL}}}:{suffix}")
    }

    /// The `reclaimed` counter of the crawl.
    fn reclaimed(&self) -> u64 {
        self.cli(&["HGET", &Redis::key("counters"), "reclaimed"])
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// The outstanding leases of `worker`: lease id → URL path.
    fn leases_of(&self, worker: &str) -> BTreeMap<String, String> {
        let text = self.cli(&["HGETALL", &Redis::key("lease")]);
        let lines: Vec<&str> = text.lines().collect();
        let mut out = BTreeMap::new();
        for pair in lines.chunks(2) {
            let [id, record] = pair else {
                panic!("odd HGETALL reply: {text}")
            };
            // `<fetched flag><start>\t<worker>\t<host>\t<request JSON>`
            let fields: Vec<&str> = record.splitn(4, '\t').collect();
            let [_, w, _, request] = fields[..] else {
                panic!("unreadable lease record {record:?}")
            };
            if w == worker {
                let r: serde_json::Value = serde_json::from_str(request).unwrap();
                out.insert(id.to_string(), path_of(r["url"].as_str().unwrap()));
            }
        }
        out
    }

    /// The server's clock, µs since the epoch.
    fn time_us(&self) -> u64 {
        let t: Vec<u64> = self
            .cli(&["TIME"])
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        t[0] * 1_000_000 + t[1]
    }

    /// The last heartbeat of `worker`, µs on the server's clock (0: none).
    fn heartbeat_of(&self, worker: &str) -> u64 {
        self.counter_of(worker, "seen")
    }

    /// A number field of `worker`'s hash (`pages`, `errors`, `seen`…).
    fn counter_of(&self, worker: &str, field: &str) -> u64 {
        let key = Redis::key(&format!("worker:{worker}"));
        self.cli(&["HGET", &key, field]).trim().parse().unwrap_or(0)
    }

    /// How many of `ids` are still outstanding leases.
    fn outstanding(&self, ids: &BTreeSet<String>) -> usize {
        let text = self.cli(&["HKEYS", &Redis::key("lease")]);
        text.lines().filter(|id| ids.contains(*id)).count()
    }
}

/// The test site, run on `host` (see `test_site_in_a_namespace`).
struct Site {
    proc: Proc,
    stdin: Option<ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
    base_url: String,
    truth: BTreeSet<String>,
}

impl Site {
    fn start(host: &Host, pages: usize, fanout: usize, latency_ms: u64, dir: &Path) -> Site {
        let addr = format!("{}:{SITE_PORT}", host.addr);
        let mut cmd = host.command(std::env::current_exe().unwrap());
        cmd.args(["test_site_in_a_namespace", "--exact", "--ignored"])
            .args(["--nocapture", "--test-threads=1", "-q"])
            .env(SITE_ENV, format!("{pages} {fanout} {latency_ms} {addr}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut proc = Proc::spawn("site", cmd, dir);
        let stdin = proc.child.stdin.take();
        let mut stdout = BufReader::new(proc.child.stdout.take().unwrap());
        let base_url = Site::line(&mut stdout, SITE_READY, &proc);
        let cfg = site_config(pages, fanout, latency_ms);
        Site {
            proc,
            stdin,
            stdout,
            base_url,
            truth: trawl_testsite::Site::generate(&cfg).ground_truth(),
        }
    }

    /// The rest of the first stdout line with `marker` (libtest may print
    /// in front of it).
    fn line(
        stdout: &mut BufReader<std::process::ChildStdout>,
        marker: &str,
        proc: &Proc,
    ) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the site ended:\n{}", proc.log());
            if let Some((_, rest)) = line.split_once(marker) {
                return rest.trim().to_string();
            }
        }
    }

    /// Stop it; what it saw.
    fn stop(mut self) -> SiteStats {
        drop(self.stdin.take());
        let stats = Site::line(&mut self.stdout, SITE_STATS, &self.proc);
        serde_json::from_str(&stats).unwrap()
    }
}

fn path_of(url: &str) -> String {
    trawl_core::Url::parse(url).unwrap().path().to_string()
}

/// The final URL paths in a worker's output so far, cheaply (for polls:
/// no JSON parsing; a line still being written is left out).
fn paths_so_far(out: &Path) -> BTreeSet<String> {
    const KEY: &str = "\"final_url\":\"";
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| {
            let url = &l[l.find(KEY)? + KEY.len()..];
            Some(path_of(&url[..url.find('"')?]))
        })
        .collect()
}

/// `trawl crawl SEED --fresh` (with a seed) or `trawl worker` on `host`,
/// sharing crawl [`CRAWL`] through the Redis at `redis_url`, writing to
/// `DIR/ID.jsonl`.
fn trawl_on(
    host: &Host,
    redis_url: &str,
    id: &str,
    seed: Option<&str>,
    extra: &[&str],
    dir: &Path,
) -> (Proc, PathBuf) {
    let out = dir.join(format!("{id}.jsonl"));
    let mut cmd = host.command(env!("CARGO_BIN_EXE_trawl"));
    match seed {
        Some(seed) => cmd.args(["crawl", seed, "--fresh"]),
        None => cmd.arg("worker"),
    };
    cmd.args(["--redis", redis_url, "--crawl", CRAWL, "--worker-id", id])
        .args([
            "-q",
            "--per-host",
            "4",
            "--concurrency",
            "8",
            "--timeout",
            "5s",
        ])
        .args(extra)
        .arg("-o")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    (Proc::spawn(id, cmd, dir), out)
}

/// `trawl status --json` of the crawl, run on `host`.
fn status(host: &Host, redis: &Redis) -> serde_json::Value {
    let out = host
        .command(env!("CARGO_BIN_EXE_trawl"))
        .args([
            "status",
            "--json",
            "--redis",
            &redis.url(),
            "--crawl",
            CRAWL,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Two workers on two hosts crawl one site on a third through a Redis on a
/// fourth: the crawl ends, each page is written once across both outputs,
/// both workers fetched (the site saw both addresses and no other), the
/// per-host limit held across them, and Redis counted every page once.
#[test]
fn workers_on_separate_hosts_share_one_crawl() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::new();
    let (redis_host, site_host) = (net.host("redis"), net.host("site"));
    let (a, b) = (net.host("a"), net.host("b"));
    let redis = Redis::start(&redis_host, dir.path());
    let site = Site::start(&site_host, 600, 10, 10, dir.path());
    let seed = format!("{}/", site.base_url);
    let (mut wa, out_a) = trawl_on(&a, &redis.url(), "a", Some(&seed), &[], dir.path());
    let (mut wb, out_b) = trawl_on(&b, &redis.url(), "b", None, &[], dir.path());
    wait_success(&mut [&mut wa, &mut wb], Duration::from_secs(60));

    let items: Vec<serde_json::Value> = [&out_a, &out_b]
        .iter()
        .flat_map(|o| read_jsonl(o))
        .collect();
    common::assert_every_page_once(&items, &site.truth);
    assert!(line_count(&out_a) > 0 && line_count(&out_b) > 0);
    let st = status(&redis_host, &redis);
    assert_eq!(st["frontier"]["queued"], 0, "{st}");
    assert_eq!(st["frontier"]["leased"], 0, "{st}");
    // Every item is one page (error pages included).
    assert_eq!(
        st["pages"].as_u64().unwrap(),
        items.len() as u64,
        "pages counted: {st}"
    );
    let stats = site.stop();
    let clients: BTreeSet<String> = stats.by_client.keys().map(|ip| ip.to_string()).collect();
    let workers: BTreeSet<String> = [a.addr.to_string(), b.addr.to_string()].into();
    assert_eq!(clients, workers, "the site's clients");
    for (host, h) in &stats.hosts {
        assert!(
            h.max_concurrency <= 4,
            "{host}: {} requests at once across the workers",
            h.max_concurrency
        );
    }
}

/// Worker A's host is cut off (from Redis and the site) for 30 s mid-crawl.
/// Worker B goes on; A's leases expire and B fetches their pages; after
/// the restore A comes back and the crawl ends. Every page is written, and
/// a page is written twice only if A held its lease when the cut began.
/// Worker A's host is cut off for 30 s mid-crawl: nothing is lost, only
/// pages A held are written twice, A is back at work within 10 s of the
/// restore (its dead Redis connection is closed by TCP_USER_TIMEOUT, not
/// left in retransmission back-off), and the crawl's page counter stays
/// exact (progress reports are totals, so one that timed out and still
/// ran is not counted twice).
#[test]
fn a_worker_cut_off_from_redis_for_30s_loses_nothing() {
    cut_off_for_30s();
}

fn cut_off_for_30s() {
    const CUT: Duration = Duration::from_secs(30);
    let dir = tempfile::tempdir().unwrap();
    let net = Network::new();
    let (redis_host, site_host) = (net.host("redis"), net.host("site"));
    let (a, b) = (net.host("a"), net.host("b"));
    let redis = Redis::start(&redis_host, dir.path());
    // 4 requests at once at 50 ms a page: ~80 pages/s, so B alone is
    // still busy when the 30 s are over.
    let site = Site::start(&site_host, 4000, 10, 50, dir.path());
    let seed = format!("{}/", site.base_url);
    let flags = ["--lease-timeout", "5s", "--batch-size", "8"];
    let (mut wb, out_b) = trawl_on(&b, &redis.url(), "b", Some(&seed), &flags, dir.path());
    let (mut wa, out_a) = trawl_on(&a, &redis.url(), "a", None, &flags, dir.path());
    wait_until("A to write 100 items", Duration::from_secs(60), || {
        line_count(&out_a) >= 100
    });
    wait_until("A to hold a lease", Duration::from_secs(10), || {
        !redis.leases_of("a").is_empty()
    });

    a.cut();
    let cut_at = Instant::now();
    // A cannot change its leases now: they are the pages it may write
    // although B writes them too.
    let held = redis.leases_of("a");
    let reclaimed_before = redis.reclaimed();
    let (a_at_cut, b_at_cut) = (line_count(&out_a), line_count(&out_b));
    assert!(!held.is_empty(), "A held no lease when cut");
    let held_ids: BTreeSet<String> = held.keys().cloned().collect();
    let held_paths: BTreeSet<String> = held.values().cloned().collect();

    // Within the cut: A's leases expire and return to the queue, B fetches
    // their pages and goes on crawling.
    wait_until("A's leases to be reclaimed", CUT, || {
        redis.outstanding(&held_ids) == 0
    });
    let st = status(&redis_host, &redis);
    let reclaimed = st["reclaimed"].as_u64().unwrap();
    assert!(
        reclaimed >= reclaimed_before + held.len() as u64,
        "reclaimed {reclaimed_before} → {reclaimed} for {} leases of A: {st}",
        held.len()
    );
    let left = CUT.saturating_sub(cut_at.elapsed());
    wait_until("B to write A's pages and 200 more", left, || {
        line_count(&out_b) >= b_at_cut + 200 && held_paths.is_subset(&paths_so_far(&out_b))
    });
    let left = CUT.saturating_sub(cut_at.elapsed());
    assert!(!left.is_zero(), "the checks took the whole cut");
    std::thread::sleep(left);
    a.restore();
    let restored_at = Instant::now();
    let server_time = redis.time_us();
    let a_at_restore = line_count(&out_a);

    // A's heartbeat (every lease timeout / 3) lands once it reaches Redis.
    let back_after = loop {
        if redis.heartbeat_of("a") > server_time {
            break Some(restored_at.elapsed());
        }
        if wa.child.try_wait().unwrap().is_some() {
            break None;
        }
        assert!(
            restored_at.elapsed() < Duration::from_secs(120),
            "A neither reached Redis nor exited:\n{}",
            wa.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    wait_success(&mut [&mut wa, &mut wb], Duration::from_secs(90));
    let st = status(&redis_host, &redis);
    assert_eq!(st["frontier"]["queued"], 0, "{st}");
    assert_eq!(st["frontier"]["leased"], 0, "{st}");

    let (items_a, items_b) = (read_jsonl(&out_a), read_jsonl(&out_b));
    let path = |i: &serde_json::Value| path_of(i["final_url"].as_str().unwrap());
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for i in items_a.iter().chain(&items_b) {
        *count.entry(path(i)).or_default() += 1;
    }
    let fetched: BTreeSet<String> = items_a
        .iter()
        .chain(&items_b)
        .filter(|i| i["status"] == 200)
        .map(path)
        .collect();
    let missing: Vec<&String> = site.truth.difference(&fetched).collect();
    assert!(missing.is_empty(), "pages never fetched: {missing:?}");
    let twice: BTreeSet<&String> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(p, _)| p)
        .collect();
    assert!(count.values().all(|n| *n <= 2), "a page written 3 times");
    let unexplained: Vec<&&String> = twice.iter().filter(|p| !held_paths.contains(**p)).collect();
    assert!(
        unexplained.is_empty(),
        "written twice without A holding their lease at the cut: {unexplained:?}; A held {held_paths:?}"
    );
    let fresh = items_a[a_at_restore..]
        .iter()
        .filter(|i| !held_paths.contains(&path(i)))
        .count();
    // Every item is a page (an error page too: `errors` counts a subset).
    let counted: u64 = ["a", "b"]
        .iter()
        .map(|w| redis.counter_of(w, "pages"))
        .sum();
    eprintln!(
        "cut of A: it held {} leases, {} pages written twice; A wrote {a_at_cut} items before \
         the cut, {} during it, {} after ({fresh} new), reached Redis again {back_after:?} after \
         the restore; B wrote {}; {} items, {counted} counted in Redis",
        held.len(),
        twice.len(),
        a_at_restore - a_at_cut,
        items_a.len() - a_at_restore,
        items_b.len(),
        items_a.len() + items_b.len(),
    );
    let back = back_after.expect("A reached Redis before it exited");
    assert!(
        back < Duration::from_secs(10),
        "A reached Redis {back:?} after the restore"
    );
    assert!(fresh > 0, "A wrote nothing new after the restore");
    let items = (items_a.len() + items_b.len()) as u64;
    assert_eq!(counted, items, "pages counted in Redis");
}

/// A Redis Cluster node on a host of its own.
struct ClusterNode<'h> {
    host: &'h Host,
    proc: Proc,
}

impl ClusterNode<'_> {
    /// `redis-cli ARGS…` against this node only (no redirects), from its
    /// own host; stdout.
    fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.host, CLUSTER_PORT, args)
    }

    fn addr(&self) -> String {
        format!("{}:{CLUSTER_PORT}", self.host.addr)
    }

    /// `master` or `slave`, by `ROLE`.
    fn role(&self) -> String {
        self.cli(&["ROLE"]).lines().next().unwrap_or("").to_string()
    }
}

const CLUSTER_PORT: u16 = 7000;

/// Six redis-servers in cluster mode, one per host; a cluster of three
/// masters with a replica each made of them (`redis-cli --cluster
/// create`), every master's replica connected.
fn start_cluster<'h>(hosts: &'h [Host], dir: &Path) -> Vec<ClusterNode<'h>> {
    let nodes: Vec<ClusterNode> = hosts
        .iter()
        .map(|host| {
            let mut cmd = host.command("redis-server");
            cmd.args(["--bind", &host.addr.to_string()])
                .args(["--port", &CLUSTER_PORT.to_string()])
                .args(["--protected-mode", "no", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--cluster-config-file")
                .arg(dir.join(format!("nodes-{}.conf", host.name)))
                .arg("--logfile")
                .arg(dir.join(format!("redis-{}.out", host.name)))
                .arg("--dir")
                .arg(dir)
                .stdout(Stdio::null());
            ClusterNode {
                host,
                proc: Proc::spawn(&format!("redis-{}", host.name), cmd, dir),
            }
        })
        .collect();
    for node in &nodes {
        wait_until("a cluster node to answer", Duration::from_secs(10), || {
            node.cli(&["PING"]).trim() == "PONG"
        });
    }
    let addrs: Vec<String> = nodes.iter().map(ClusterNode::addr).collect();
    let out = nodes[0]
        .host
        .command("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cluster create: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A replica that has not finished its first sync cannot take over.
    wait_until(
        "the cluster to be ok, each master with a replica in sync",
        Duration::from_secs(30),
        || {
            let in_sync = nodes
                .iter()
                .filter(|n| n.role() == "slave")
                .filter(|n| {
                    n.cli(&["INFO", "replication"])
                        .contains("master_link_status:up")
                })
                .count();
            in_sync == 3
                && nodes
                    .iter()
                    .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        },
    );
    nodes
}

/// A Redis Cluster of three masters with a replica each, every node on a
/// host of its own, holds a crawl in three shards (`wait=1`); two workers
/// on two more hosts crawl the site on another. Mid-crawl the master that
/// holds the site's shard is killed (SIGKILL): its replica takes over, the
/// workers go on through it, and every page of the site is written. What
/// the failover may lose (see docs/distributed.md) is leases and acks, so
/// some pages are written twice; with `wait=1` no discovered URL is lost.
#[test]
fn a_cluster_master_killed_on_its_host_loses_no_page() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::new();
    let redis_hosts: Vec<Host> = (1..=6).map(|i| net.host(&format!("r{i}"))).collect();
    let (site_host, a, b) = (net.host("site"), net.host("a"), net.host("b"));
    let mut nodes = start_cluster(&redis_hosts, dir.path());
    let url = format!(
        "redis-cluster://{},{},{}?shards=3&wait=1",
        nodes[0].addr(),
        nodes[1].addr(),
        nodes[2].addr()
    );
    // 4 requests at once at 20 ms a page: ~200 pages/s, ~8 s in all.
    let site = Site::start(&site_host, 1500, 10, 20, dir.path());
    let seed = format!("{}/", site.base_url);
    let flags = ["--lease-timeout", "5s", "--batch-size", "16"];
    let (mut wa, out_a) = trawl_on(&a, &url, "a", Some(&seed), &flags, dir.path());
    let (mut wb, out_b) = trawl_on(&b, &url, "b", None, &flags, dir.path());
    wait_until("300 pages written", Duration::from_secs(60), || {
        line_count(&out_a) + line_count(&out_b) >= 300
    });

    // The site is one host, so one shard; kill the master that holds it.
    let victim = nodes
        .iter()
        .position(|n| n.role() == "master" && !n.cli(&["KEYS", "*queue:*"]).trim().is_empty())
        .expect("a master holding the site's queue");
    let replica_of_victim = {
        let id = nodes[victim].cli(&["CLUSTER", "MYID"]).trim().to_string();
        nodes
            .iter()
            .position(|n| {
                n.cli(&["CLUSTER", "NODES"])
                    .lines()
                    .any(|l| l.contains("myself,slave") && l.contains(&id))
            })
            .expect("the victim's replica")
    };
    let written_at_kill = line_count(&out_a) + line_count(&out_b);
    eprintln!(
        "killing the master {} (its shard holds the site)",
        nodes[victim].addr()
    );
    nodes[victim].proc.child.kill().unwrap();
    nodes[victim].proc.child.wait().unwrap();
    let took_over = Instant::now();
    while nodes[replica_of_victim].role() != "master" {
        assert!(
            took_over.elapsed() < Duration::from_secs(30),
            "the replica did not take over: {}\n{}",
            nodes[replica_of_victim].cli(&["CLUSTER", "NODES"]),
            std::fs::read_to_string(
                dir.path()
                    .join(format!("redis-{}.out", nodes[replica_of_victim].host.name))
            )
            .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    wait_success(&mut [&mut wa, &mut wb], Duration::from_secs(120));
    let items: Vec<serde_json::Value> = [&out_a, &out_b]
        .iter()
        .flat_map(|o| read_jsonl(o))
        .collect();
    let path = |i: &serde_json::Value| path_of(i["final_url"].as_str().unwrap());
    let fetched: BTreeSet<String> = items
        .iter()
        .filter(|i| i["status"] == 200)
        .map(path)
        .collect();
    let missing: Vec<&String> = site.truth.difference(&fetched).collect();
    assert!(missing.is_empty(), "pages never written: {missing:?}");
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for i in &items {
        *count.entry(path(i)).or_default() += 1;
    }
    let twice = count.values().filter(|n| **n > 1).count();
    eprintln!(
        "cluster failover: {written_at_kill} pages written at the kill, {} items in all, \
         {twice} pages written twice, {} pages",
        items.len(),
        site.truth.len()
    );
    // Written twice only what the failover's lost leases and acks cover:
    // at most the leases out at once (2 workers × 8) and two sink batches
    // per worker whose acks went to the dead master.
    assert!(twice <= 2 * 8 + 2 * 2 * 16, "{twice} pages written twice");
    assert!(count.values().all(|n| *n <= 2), "a page written 3 times");
}
