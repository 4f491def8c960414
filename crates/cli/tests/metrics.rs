//! Prometheus metrics and JSON logs of a real crawl: `/metrics` scraped
//! while the crawl runs and after it ends (`--metrics-linger`), parsed
//! with the official Python client's OpenMetrics parser, and checked
//! against the crawl's own counts (its stats file and its items).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{line_count, trawl, wait_until};
use serde_json::Value;
use trawl_testsite::{SiteConfig, TestSite};

/// Parse OpenMetrics text with `prometheus_client` (pip); returns every
/// sample as (name, labels, value). Panics if the parser refuses it.
fn parse_openmetrics(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    rows
}

struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

impl Scrape {
    async fn take(base: &str) -> Scrape {
        let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        Scrape(
            tokio::task::spawn_blocking(move || parse_openmetrics(&text))
                .await
                .unwrap(),
        )
    }

    /// Sum of the samples named `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _, _)| n == name)
    }
}

/// `trawl crawl … --metrics-addr 127.0.0.1:0` started; returns the child
/// and the metrics base URL it printed. The caller waits for the child.
#[allow(clippy::zombie_processes)]
fn spawn_with_metrics(args: &[&str]) -> (std::process::Child, String) {
    let mut child = trawl()
        .arg("crawl")
        .args(args)
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("the crawl said where its metrics are")
            .unwrap();
        if let Some(rest) = line.split("metrics on http://").nth(1) {
            let addr = rest.split('/').next().unwrap().to_string();
            // Keep reading stderr so the crawl never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (child, format!("http://{addr}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_openmetrics_and_match_the_crawls_counts() {
    let site = TestSite::start(SiteConfig {
        pages: 150,
        fanout: 8,
        nasty: true,
        latency: Some(Duration::from_millis(15)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let items = dir.path().join("items.jsonl");
    let stats = dir.path().join("stats.json");
    let seed = format!("{}/", site.base_url());
    let (mut child, base) = spawn_with_metrics(&[
        &seed,
        "-o",
        items.to_str().unwrap(),
        "--stats-json",
        stats.to_str().unwrap(),
        "--concurrency",
        "8",
        "--per-host",
        "8",
        "--timeout",
        "2s",
        "--retries",
        "0",
        // The nasty site's traps are endless (other tests cover them).
        "--exclude",
        "/calendar/|/session/",
        "--metrics-linger",
        "60s",
    ]);

    // While the crawl runs.
    let mut during = Scrape::take(&base).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while during.sum("trawl_pages_total", &[]) < 30.0 {
        assert!(std::time::Instant::now() < deadline, "no pages in /metrics");
        tokio::time::sleep(Duration::from_millis(50)).await;
        during = Scrape::take(&base).await;
    }
    assert!(
        !stats.exists(),
        "the crawl was still running at that scrape"
    );
    assert!(during.sum("trawl_requests_in_flight", &[]) <= 8.0);
    assert!(during.sum("trawl_parse_workers_busy", &[]) <= during.sum("trawl_parse_workers", &[]));
    assert!(during.sum("trawl_parse_workers", &[]) >= 1.0);
    assert_eq!(
        during.sum("trawl_process_info", &[("crawl", "local")]),
        1.0,
        "the info line names the crawl"
    );
    for queue in ["parse", "route", "items"] {
        assert!(
            during.sum("trawl_stage_queue_capacity", &[("queue", queue)]) > 0.0,
            "queue {queue} is exported"
        );
    }

    // After it: the server lingers with the final figures.
    let probe = stats.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("the crawl to end", Duration::from_secs(120), || {
            probe.exists()
        })
    })
    .await
    .unwrap();
    let after = Scrape::take(&base).await;
    let s: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let n = |v: &Value| v.as_u64().unwrap() as f64;
    let written = line_count(&items) as f64;

    assert_eq!(after.sum("trawl_pages_total", &[]), n(&s["pages"]));
    assert_eq!(
        after.sum("trawl_pages_total", &[]),
        written,
        "one page, one item"
    );
    assert_eq!(
        after.sum("trawl_pages_total", &[("status_class", "2xx")]),
        n(&s["pages_ok"])
    );
    assert!(
        after.sum("trawl_pages_total", &[("status_class", "4xx")]) >= 2.0,
        "404 and 410"
    );
    assert!(after.sum("trawl_pages_total", &[("status_class", "5xx")]) >= 1.0);
    assert_eq!(after.sum("trawl_page_errors_total", &[]), n(&s["errors"]));
    assert!(
        after.sum("trawl_page_errors_total", &[("kind", "timeout")]) >= 1.0,
        "/hang"
    );
    assert_eq!(after.sum("trawl_requests_total", &[]), n(&s["requests"]));
    assert_eq!(after.sum("trawl_received_bytes_total", &[]), n(&s["bytes"]));
    assert_eq!(after.sum("trawl_items_written_total", &[]), written);
    assert_eq!(after.sum("trawl_sink_items_total", &[]), written);
    assert_eq!(
        after.sum("trawl_links_duplicate_total", &[]),
        n(&s["duplicates"])
    );
    assert_eq!(
        after.sum("trawl_robots_denied_total", &[]),
        n(&s["robots_denied"])
    );
    // Every exchange is in the latency histogram, and counted by class.
    assert_eq!(
        after.sum("trawl_fetch_duration_seconds_count", &[]),
        after.sum("trawl_responses_total", &[])
    );
    assert_eq!(
        after.sum("trawl_fetch_duration_seconds_bucket", &[("le", "+Inf")]),
        after.sum("trawl_fetch_duration_seconds_count", &[])
    );
    assert!(after.sum("trawl_fetch_duration_seconds_sum", &[]) > 0.0);
    assert!(after.sum("trawl_sink_write_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(after.sum("trawl_requests_in_flight", &[]), 0.0);
    assert_eq!(after.sum("trawl_frontier_queued", &[]), 0.0);
    // One host: its own series, with every request to it.
    assert!(after.has("trawl_host_requests_total"));
    // Counters never went backwards.
    for name in [
        "trawl_pages_total",
        "trawl_requests_total",
        "trawl_items_written_total",
    ] {
        assert!(during.sum(name, &[]) <= after.sum(name, &[]), "{name}");
    }

    // SIGINT ends the lingering.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "a finished crawl exits 0");
    site.shutdown().await;
}

/// `--log-format json`: every log line is a JSON object naming the crawl
/// and the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_crawl_and_worker_ids() {
    let site = TestSite::start(SiteConfig {
        pages: 30,
        fanout: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = trawl()
        .args(["crawl", &format!("{}/", site.base_url()), "-vv", "-q"])
        .args([
            "--log-format",
            "json",
            "--worker-id",
            "w-test-1",
            "--stats-json",
        ])
        .arg(dir.path().join("stats.json"))
        .arg("-o")
        .arg(dir.path().join("items.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 30, "-vv logs a line per page: {stderr}");
    let mut crawled = 0;
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert_eq!(v["crawl"], "local", "{line}");
        assert_eq!(v["worker"], "w-test-1", "{line}");
        assert!(
            v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        assert!(v["level"].is_string() && v["target"].is_string(), "{line}");
        if v["target"] == "trawl::crawled"
            && v["message"].as_str().unwrap().starts_with("Crawled (200)")
        {
            crawled += 1;
        }
    }
    assert!(crawled >= 20, "one 'Crawled' line per page, got {crawled}");
    site.shutdown().await;
}

/// The dashboard in Debian's Chromium (through `trawl scrape --render`)
/// during a crawl: once it has drawn two live samples, every number it
/// shows equals what `/metrics` says. The crawl is held still for the
/// comparison by the nasty site's `/hang` and `/stall` (a 60 s timeout):
/// it runs, with requests in flight, while its counts stay put. The
/// screenshot is kept in the test output directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_chromium_shows_what_metrics_say() {
    let site = TestSite::start(SiteConfig {
        pages: 60,
        fanout: 6,
        nasty: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let items = dir.path().join("items.jsonl");
    let seed = format!("{}/", site.base_url());
    let (mut child, base) = spawn_with_metrics(&[
        &seed,
        "-o",
        items.to_str().unwrap(),
        "--concurrency",
        "8",
        "--per-host",
        "8",
        "--timeout",
        "60s",
        "--retries",
        "0",
        "--exclude",
        "/calendar/|/session/",
    ]);

    // Still: nothing queued, requests hanging, the page count unchanged
    // for two seconds.
    let mut last = (-1.0, std::time::Instant::now());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the crawl never held still"
        );
        let m = Scrape::take(&base).await;
        let pages = m.sum("trawl_pages_total", &[]);
        let still = m.sum("trawl_frontier_queued", &[]) == 0.0
            && m.sum("trawl_requests_in_flight", &[]) >= 1.0
            && pages > 0.0;
        if !still || pages != last.0 {
            last = (pages, std::time::Instant::now());
        } else if last.1.elapsed() >= Duration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("dashboard.png");
    let tiles = [
        ("pages", "trawl_pages_total"),
        ("in-flight", "trawl_requests_in_flight"),
        ("busy", "trawl_parse_workers_busy"),
        ("workers", "trawl_parse_workers"),
        ("requests", "trawl_requests_total"),
        ("errors", "trawl_page_errors_total"),
        ("items", "trawl_items_written_total"),
        ("queued", "trawl_frontier_queued"),
    ];
    let mut scrape = trawl();
    scrape
        .args([
            "scrape",
            &format!("{base}/dashboard"),
            "--render",
            "--ignore-robots",
        ])
        .args(["--wait-for", "body[data-live='2']", "--timeout", "60s"])
        .arg("--screenshot")
        .arg(&shot)
        .args(["-s", "points=#chart-cc@data-points"])
        .args(["-s", "crawl=#crawl"]);
    for (id, _) in tiles {
        scrape.args(["-s", &format!("{id}=#{id}@data-value")]);
    }
    let out = tokio::task::spawn_blocking(move || scrape.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let metrics = Scrape::take(&base).await;
    let fields = &shown["fields"];
    assert_eq!(fields["crawl"], "local");
    let points: usize = fields["points"].as_str().unwrap().parse().unwrap();
    assert!(
        points >= 4,
        "the charts have history and live points: {points}"
    );
    for (id, metric) in tiles {
        let value: f64 = fields[id]
            .as_str()
            .unwrap_or_else(|| panic!("tile {id} missing: {shown}"))
            .parse()
            .unwrap();
        assert_eq!(value, metrics.sum(metric, &[]), "tile {id} vs {metric}");
    }
    assert!(
        fields["in-flight"].as_str().unwrap() != "0",
        "a crawl in progress was shown"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    eprintln!("dashboard screenshot: {}", shot.display());

    // Its hanging requests would hold a graceful stop for a minute.
    child.kill().unwrap();
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    site.shutdown().await;
}
