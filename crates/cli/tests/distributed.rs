//! Distributed crawls: real `trawl` processes sharing one crawl through a
//! real `redis-server` started by the test on a free port.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{line_count, trawl, wait_until};
use trawl_testsite::{SiteConfig, TestSite};

/// A redis-server of the test's own, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start(dir: &Path, port: Option<u16>) -> Redis {
        let port = port.unwrap_or_else(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let redis = Redis {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        wait_until(
            "redis-server to answer PING",
            Duration::from_secs(10),
            || redis.ping(),
        );
        redis
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(mut self) -> Redis {
        let _ = self.child.kill();
        let _ = self.child.wait();
        Redis::start(&self.dir.clone(), Some(self.port))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urls(paths: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends with half a line",
            p.display()
        );
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            out.push(
                trawl_core::Url::parse(v["url"].as_str().unwrap())
                    .unwrap()
                    .path()
                    .to_string(),
            );
        }
    }
    out
}

fn worker(redis: &Redis, id: &str, out: &Path, seed: Option<&str>) -> Child {
    worker_with(redis, id, out, seed, &[])
}

/// [`worker`] with more flags.
fn worker_with(redis: &Redis, id: &str, out: &Path, seed: Option<&str>, extra: &[&str]) -> Child {
    let mut cmd = trawl();
    match seed {
        Some(seed) => cmd.args(["crawl", seed, "--fresh"]),
        None => cmd.arg("worker"),
    };
    cmd.args([
        "--redis",
        &redis.url(),
        "--crawl",
        "t",
        "--worker-id",
        id,
        "-q",
    ])
    .args([
        "--per-host",
        "4",
        "--concurrency",
        "8",
        "--lease-timeout",
        "2s",
        "--timeout",
        "5s",
    ])
    .args(extra)
    .arg("-o")
    .arg(out)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

fn wait_all(children: &mut [Child], deadline: Duration) {
    let end = Instant::now() + deadline;
    for c in children.iter_mut() {
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0), "a worker failed");
                break;
            }
            assert!(Instant::now() < end, "workers did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn assert_exact(paths: &[PathBuf], site: &TestSite) {
    let mut got = urls(paths);
    let n = got.len();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), n, "an item was written twice across workers");
    let got: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(got, site.site().ground_truth());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_one_killed_union_is_exact_and_politeness_global() {
    let site = TestSite::start(SiteConfig {
        pages: 1500,
        fanout: 10,
        latency: Some(Duration::from_millis(10)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), None);
    let outs: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("w{i}.jsonl")))
        .collect();
    let seed = format!("{}/", site.base_url());
    let outs2 = outs.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut w0 = worker(&redis, "w0", &outs2[0], Some(&seed));
        let w1 = worker(&redis, "w1", &outs2[1], None);
        let w2 = worker(&redis, "w2", &outs2[2], None);
        // Kill w1 midway, holding leases.
        wait_until("w1 to write 150 items", Duration::from_secs(60), || {
            line_count(&outs2[1]) >= 150
        });
        let mut w1 = w1;
        w1.kill().unwrap();
        w1.wait().unwrap();
        // Its leases return after the 2 s timeout; the others carry on. It
        // comes back with the same id and output, which cuts the output back
        // to its last acknowledged batch.
        let w1 = worker(&redis, "w1", &outs2[1], None);
        let mut all = [w1, w2];
        wait_all(&mut all, Duration::from_secs(90));
        wait_all(std::slice::from_mut(&mut w0), Duration::from_secs(10));
        let status = trawl()
            .args(["status", "--redis", &redis.url(), "--crawl", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&status.stdout).to_string()
    })
    .await
    .unwrap();
    assert!(result.contains("queued 0 | leased 0"), "{result}");
    assert_exact(&outs, &site);
    let stats = site.stats();
    for (host, h) in &stats.hosts {
        assert!(
            h.max_concurrency <= 4,
            "{host}: {} concurrent requests across workers",
            h.max_concurrency
        );
    }
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_crawl_loses_nothing() {
    let site = TestSite::start(SiteConfig {
        pages: 1200,
        fanout: 10,
        latency: Some(Duration::from_millis(10)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), None);
    let outs: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("r{i}.jsonl")))
        .collect();
    let seed = format!("{}/", site.base_url());
    let outs2 = outs.clone();
    tokio::task::spawn_blocking(move || {
        let w0 = worker(&redis, "r0", &outs2[0], Some(&seed));
        let w1 = worker(&redis, "r1", &outs2[1], None);
        wait_until("200 items", Duration::from_secs(60), || {
            line_count(&outs2[0]) + line_count(&outs2[1]) >= 200
        });
        // Redis goes away for a moment (its AOF keeps the data).
        let redis = redis.restart();
        let mut all = [w0, w1];
        wait_all(&mut all, Duration::from_secs(90));
        drop(redis);
    })
    .await
    .unwrap();
    assert_exact(&outs, &site);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_spider_file_runs_across_workers() {
    let site = TestSite::start(SiteConfig {
        pages: 10,
        shop: true,
        shop_products: 120,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), None);
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/spiders/shop.toml"
    ))
    .unwrap();
    let spider = dir.path().join("shop.toml");
    std::fs::write(
        &spider,
        example.replace("http://127.0.0.1:8080", &site.base_url()),
    )
    .unwrap();
    let outs: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("s{i}.jsonl")))
        .collect();
    let outs2 = outs.clone();
    let dir_path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut children: Vec<Child> = (0..2)
            .map(|i| {
                trawl()
                    .arg("run")
                    .arg(&spider)
                    .args([
                        "--redis",
                        &redis.url(),
                        "--crawl",
                        "spider",
                        "--worker-id",
                        &format!("s{i}"),
                        "-q",
                    ])
                    .arg("-o")
                    .arg(&outs2[i])
                    .arg("--errors")
                    .arg(dir_path.join(format!("e{i}.jsonl")))
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        wait_all(&mut children, Duration::from_secs(60));
        drop(redis);
    })
    .await
    .unwrap();
    let mut got = urls(&outs);
    let n = got.len();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), n, "an item was written by two workers");
    let want: Vec<String> = {
        let mut w: Vec<String> = site.site().products().into_iter().map(|p| p.path).collect();
        w.sort();
        w
    };
    assert_eq!(got, want);
    site.shutdown().await;
}

/// `trawl serve --redis`: a crawl job is a distributed crawl that a
/// `trawl worker --api` (a real process) works on beside the server; the
/// items of both come through the job's one stream, each page once, and
/// the job's keys leave Redis when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_jobs_run_on_trawl_workers_through_redis() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), None);
    let site = TestSite::start(SiteConfig {
        pages: 300,
        fanout: 4,
        latency: Some(Duration::from_millis(50)),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth = site.site().ground_truth();
    let data = dir.path().join("data");
    let (mut server, addr) = common::spawn_serve(
        &[
            "--data",
            data.to_str().unwrap(),
            "--allow-private",
            "--redis",
            &redis.url(),
        ],
        true,
    );
    let mut worker = trawl()
        .args(["worker", "--api", "--redis", &redis.url()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The worker's lines, as they come; the first says it is at work.
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = worker.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready = lines.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        ready.contains("working on the Scraper API's jobs"),
        "{ready}"
    );
    let job: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/v1/crawls"))
        .json(&serde_json::json!({"seeds": [format!("{}/", site.base_url())], "settings": {"per_host": 4}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().expect("a job").to_string();
    let n = every_page_once(&addr, &id, &truth).await;
    let end: serde_json::Value = reqwest::get(format!("http://{addr}/v1/crawls/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(end["state"], "done", "{end}");
    // The worker did part of it.
    let ok = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let _ = worker.wait();
    // Every line read once the pipe closed.
    reader.join().unwrap();
    let stderr: String = lines.try_iter().collect::<Vec<_>>().join("\n");
    let fetched: u64 = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("trawl: ")?
                .strip_suffix(" pages fetched for API jobs")
        })
        .unwrap_or_else(|| panic!("{stderr}"))
        .parse()
        .unwrap();
    let server_pages = end["stats"]["pages"].as_u64().unwrap();
    assert!(
        fetched > 0 && server_pages > 0 && server_pages < n as u64,
        "worker {fetched}, server {server_pages} of {n}"
    );
    // Nothing of the job is left in Redis.
    let keys = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "--scan",
            "--pattern",
            &format!("*{id}*"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&keys.stdout).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&keys.stdout)
    );
    server.kill().unwrap();
    let _ = server.wait();
    site.shutdown().await;
}

/// `trawl serve --redis` stopped (SIGTERM) mid-job: the next server on
/// the same data and Redis goes on reading the job's stream where the
/// first stopped, and the crawl, kept in Redis, goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_api_job_goes_on_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), None);
    let site = TestSite::start(SiteConfig {
        pages: 200,
        fanout: 4,
        latency: Some(Duration::from_millis(20)),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth = site.site().ground_truth();
    let data = dir.path().join("data");
    let args = [
        "--data",
        data.to_str().unwrap(),
        "--allow-private",
        "--redis",
        &redis.url(),
    ];
    let (mut first, addr) = common::spawn_serve(&args, true);
    let job: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/v1/crawls"))
        .json(&serde_json::json!({"seeds": [format!("{}/", site.base_url())], "settings": {"per_host": 2}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().expect("a job").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now: serde_json::Value = reqwest::get(format!("http://{addr}/v1/crawls/{id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if now["items"].as_u64() >= Some(20) {
            break;
        }
        assert!(Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ok = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let _ = first.wait();
    let (mut second, addr) = common::spawn_serve(&args, true);
    every_page_once(&addr, &id, &truth).await;
    second.kill().unwrap();
    let _ = second.wait();
    site.shutdown().await;
}

/// Read job `id`'s item stream at `addr` to its end; assert each page of
/// `truth` is in it exactly once. Returns how many items it held.
async fn every_page_once(addr: &str, id: &str, truth: &BTreeSet<String>) -> usize {
    let items = common::read_job_items(addr, id, 0).await;
    common::assert_every_page_once(&items, truth);
    items.len()
}

/// A port free now (for a flag that needs one up front).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The dashboard of any worker of a distributed crawl lists every worker
/// (read from Redis), each with the live figures it publishes; each
/// worker's `/metrics` names the crawl and itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_shows_in_any_workers_dashboard() {
    let site = TestSite::start(SiteConfig {
        pages: 800,
        fanout: 10,
        latency: Some(Duration::from_millis(20)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), None);
    let outs: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("w{i}.jsonl")))
        .collect();
    let seed = format!("{}/", site.base_url());
    let ports = [free_port(), free_port()];
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut children = vec![
        worker_with(
            &redis,
            "w0",
            &outs[0],
            Some(&seed),
            &["--metrics-addr", &addrs[0]],
        ),
        worker_with(&redis, "w1", &outs[1], None, &["--metrics-addr", &addrs[1]]),
    ];

    let deadline = Instant::now() + Duration::from_secs(60);
    let sample = loop {
        assert!(
            Instant::now() < deadline,
            "the dashboard never listed both workers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(res) = reqwest::get(format!("http://{}/dashboard/sample", addrs[1])).await else {
            continue;
        };
        let sample: serde_json::Value = res.json().await.unwrap();
        let rows = sample["workers"].as_array().cloned().unwrap_or_default();
        let live = |id: &str| {
            rows.iter()
                .any(|w| w["id"] == id && w["live"]["pages"].as_u64().is_some_and(|p| p > 0))
        };
        if live("w0") && live("w1") {
            break sample;
        }
    };
    assert_eq!(sample["identity"]["crawl"], "t");
    assert_eq!(sample["identity"]["worker"], "w1");
    for w in sample["workers"].as_array().unwrap() {
        assert!(w["silent_ms"].as_u64().unwrap() < 5_000, "{w}");
        assert!(w["live"]["cpu_workers"].as_u64().unwrap() >= 1, "{w}");
    }
    let text = reqwest::get(format!("http://{}/metrics", addrs[0]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"trawl_process_info{crawl="t",worker="w0",version="#),
        "{text}"
    );

    let outs2 = outs.clone();
    tokio::task::spawn_blocking(move || {
        wait_all(&mut children, Duration::from_secs(120));
        drop(redis);
    })
    .await
    .unwrap();
    assert_exact(&outs2, &site);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_sharded_over_three_redis_instances_is_exact() {
    let mut sites = Vec::new();
    for _ in 0..3 {
        let site = TestSite::start(SiteConfig {
            pages: 300,
            fanout: 8,
            ..Default::default()
        })
        .await
        .unwrap();
        sites.push(site);
    }
    let dir = tempfile::tempdir().unwrap();
    let servers: Vec<Redis> = (0..3)
        .map(|i| {
            let d = dir.path().join(format!("redis{i}"));
            std::fs::create_dir_all(&d).unwrap();
            Redis::start(&d, None)
        })
        .collect();
    let url = servers.iter().map(Redis::url).collect::<Vec<_>>().join(",");
    let seeds: Vec<String> = sites.iter().map(|s| format!("{}/", s.base_url())).collect();
    let outs: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("w{i}.jsonl")))
        .collect();
    let (url2, outs2) = (url.clone(), outs.clone());
    let status = tokio::task::spawn_blocking(move || {
        let common = |cmd: &mut Command, id: &str, out: &Path| {
            cmd.args(["--redis", &url2, "--crawl", "sharded", "--worker-id", id])
                .args(["-q", "--per-host", "4", "--concurrency", "8"])
                .args(["--lease-timeout", "2s", "-o"])
                .arg(out)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        };
        let mut w0 = trawl();
        w0.arg("crawl").args(&seeds).arg("--fresh");
        common(&mut w0, "w0", &outs2[0]);
        let mut w1 = trawl();
        w1.arg("worker");
        common(&mut w1, "w1", &outs2[1]);
        let mut all = [w0.spawn().unwrap(), w1.spawn().unwrap()];
        wait_all(&mut all, Duration::from_secs(90));
        let status = trawl()
            .args(["status", "--redis", &url2, "--crawl", "sharded"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&status.stdout).to_string()
    })
    .await
    .unwrap();
    assert!(status.contains("queued 0 | leased 0"), "{status}");
    assert!(status.contains("shards: 3"), "{status}");
    // Every page of every site once, across both workers.
    let mut got = Vec::new();
    for p in &outs {
        for v in common::read_jsonl(p) {
            let u = trawl_core::Url::parse(v["url"].as_str().unwrap()).unwrap();
            got.push(format!("{}{}", u.port().unwrap_or(80), u.path()));
        }
    }
    let n = got.len();
    let got: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(got.len(), n, "a page was written twice");
    let mut truth = BTreeSet::new();
    for site in &sites {
        let port = trawl_core::Url::parse(&site.base_url())
            .unwrap()
            .port()
            .unwrap();
        truth.extend(
            site.site()
                .ground_truth()
                .into_iter()
                .map(|p| format!("{port}{p}")),
        );
    }
    assert_eq!(got, truth);
    // Each site's URLs are in its shard's instance, and only shards that
    // have a site hold any.
    let expected: BTreeSet<usize> = sites
        .iter()
        .map(|s| {
            let u = trawl_core::Url::parse(&s.base_url()).unwrap();
            let host_key = trawl_core::canon::host_key(&u);
            trawl_frontier::redis::topology::shard_of(&host_key, 3)
        })
        .collect();
    let holding: BTreeSet<usize> = servers
        .iter()
        .enumerate()
        .filter(|(k, s)| {
            let out = Command::new("redis-cli")
                .args(["-p", &s.port.to_string(), "--scan", "--pattern"])
                .arg(format!("trawl:{{sharded/{k}}}:seen"))
                .output()
                .unwrap();
            !out.stdout.is_empty()
        })
        .map(|(k, _)| k)
        .collect();
    assert_eq!(holding, expected);
    for site in sites {
        site.shutdown().await;
    }
}
