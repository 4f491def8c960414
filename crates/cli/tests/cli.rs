//! The `trawl` binary as users run it: real processes, real signals.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{line_count, trawl, wait_until};
use trawl_testsite::{SiteConfig, TestSite};

fn wait_exit(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
    let mut status = None;
    wait_until("trawl to exit", deadline, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "output ends with half a line"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_and_leaves_complete_jsonl_and_summary() {
    let site = TestSite::start(SiteConfig {
        pages: 3000,
        fanout: 10,
        latency: Some(Duration::from_millis(40)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("items.jsonl");
    let stats = dir.path().join("stats.json");
    let mut child = trawl()
        .args([
            "crawl",
            &format!("{}/", site.base_url()),
            "--concurrency",
            "16",
            "--per-host",
            "16",
        ])
        .arg("-o")
        .arg(&out)
        .arg("--stats-json")
        .arg(&stats)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let probe = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("40 items", Duration::from_secs(30), || {
            line_count(&probe) >= 40
        })
    })
    .await
    .unwrap();
    signal(&child, "-INT");
    let status = tokio::task::spawn_blocking(move || {
        let s = wait_exit(&mut child, Duration::from_secs(30));
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        (s, err)
    })
    .await
    .unwrap();
    let (status, stderr) = status;
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("Crawl interrupted"), "no summary: {stderr}");
    assert!(stderr.contains("pages "), "{stderr}");

    let items = lines(&out);
    let urls: BTreeSet<_> = items
        .iter()
        .map(|i| i["url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls.len(), items.len(), "duplicate items");
    assert!(
        items.len() < site.site().ground_truth().len(),
        "the crawl was not interrupted"
    );
    // Drained: every page the site served has its item.
    let served: u64 = site
        .stats()
        .by_path
        .iter()
        .filter(|(p, _)| p.as_str() != "/robots.txt")
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(served, items.len() as u64);

    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(stats["interrupted"], true);
    assert_eq!(stats["items_written"], items.len() as u64);
    assert_eq!(stats["pages"], items.len() as u64);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sigint_quits_at_once_with_whole_lines() {
    let site = TestSite::start(SiteConfig {
        pages: 3000,
        fanout: 10,
        latency: Some(Duration::from_millis(400)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("items.jsonl");
    let mut child = trawl()
        .args([
            "crawl",
            &format!("{}/", site.base_url()),
            "-q",
            "--concurrency",
            "64",
            "--per-host",
            "64",
            "--timeout",
            "60s",
        ])
        .arg("-o")
        .arg(&out)
        .spawn()
        .unwrap();
    let probe = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("some items", Duration::from_secs(30), || {
            line_count(&probe) >= 5
        })
    })
    .await
    .unwrap();
    signal(&child, "-INT");
    // Wait until the first signal has been handled (the crawl is draining 400 ms responses).
    tokio::time::sleep(Duration::from_millis(100)).await;
    signal(&child, "-INT");
    let started = Instant::now();
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(10)))
            .await
            .unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "second Ctrl-C did not quit at once"
    );
    let items = lines(&out);
    assert!(!items.is_empty());
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_crawls_the_built_in_site() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo.jsonl");
    let output = tokio::task::spawn_blocking({
        let out = out.clone();
        move || {
            trawl()
                .args(["demo", "--pages", "300", "-o"])
                .arg(&out)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Crawl finished"), "{stderr}");
    let expected = trawl_testsite::Site::generate(&SiteConfig {
        pages: 300,
        fanout: 20,
        ..Default::default()
    })
    .ground_truth();
    let items = lines(&out);
    assert_eq!(items.len(), expected.len());
    assert!(
        items
            .iter()
            .all(|i| i["status"] == 200 && i["title"].is_string())
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let out = trawl().args(["crawl", "not a url"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid seed URL \"not a url\""));

    let out = trawl()
        .args(["crawl", "ftp://example.invalid/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an http(s) URL"));

    let out = trawl()
        .args(["crawl", "http://127.0.0.1:9/", "--scope", "galaxy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scope"));

    let out = trawl()
        .args(["crawl", "http://127.0.0.1:9/", "--include", "(", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        // The flag is named, with what is wrong with its value.
        String::from_utf8_lossy(&out.stderr).contains("'--include <INCLUDE>': regex parse error"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ignore_robots_says_so() {
    // Port 9 (discard) on loopback is closed: the crawl fails fast, the warning is what we check.
    let out = trawl()
        .args([
            "crawl",
            "http://127.0.0.1:9/",
            "--ignore-robots",
            "--retries",
            "0",
            "-o",
            "-",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("robots.txt is IGNORED"));
    let items: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), 1);
    assert!(
        items[0]["error"]
            .as_str()
            .unwrap()
            .contains("connection failed"),
        "{:?}",
        items[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_resume_gives_exactly_the_ground_truth_once() {
    let site = TestSite::start(SiteConfig {
        pages: 1500,
        fanout: 10,
        latency: Some(Duration::from_millis(15)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("items.jsonl");
    let out_read = out.clone();
    let state = dir.path().join("state");
    let seed = format!("{}/", site.base_url());
    let run = move |extra: &[&str]| {
        let mut cmd = trawl();
        cmd.args([
            "crawl",
            &seed,
            "-q",
            "--concurrency",
            "16",
            "--per-host",
            "16",
        ])
        .arg("-o")
        .arg(&out)
        .arg("--state")
        .arg(&state)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        cmd
    };
    // Kill at several points of the crawl, including right after start.
    for kill_at in [0usize, 150, 500, 900] {
        let mut child = run(&[]).spawn().unwrap();
        let probe = out_read.clone();
        let finished = tokio::task::spawn_blocking(move || {
            let end = Instant::now() + Duration::from_secs(60);
            loop {
                if line_count(&probe) >= kill_at {
                    signal(&child, "-KILL");
                    return (child.wait().unwrap(), false);
                }
                if let Some(status) = child.try_wait().unwrap() {
                    return (status, true);
                }
                assert!(Instant::now() < end, "no progress to {kill_at} items");
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .await
        .unwrap();
        assert!(
            !finished.1,
            "the crawl finished before the kill at {kill_at}"
        );
    }
    // The last run, with --resume, completes.
    let status = tokio::task::spawn_blocking(move || run(&["--resume"]).status().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));

    let items = lines(&out_read);
    let mut paths: Vec<String> = items
        .iter()
        .map(|i| {
            trawl_core::Url::parse(i["url"].as_str().unwrap())
                .unwrap()
                .path()
                .to_string()
        })
        .collect();
    let total = paths.len();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), total, "an item was written twice");
    let got: BTreeSet<String> = paths.into_iter().collect();
    assert_eq!(got, site.site().ground_truth());
    site.shutdown().await;
}

#[test]
fn resume_without_state_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = trawl()
        .args(["crawl", "http://127.0.0.1:9/", "--resume", "--state"])
        .arg(dir.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no crawl to resume"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recrawl_uses_conditional_get_and_counts_unchanged_pages() {
    let site = TestSite::start(SiteConfig {
        pages: 300,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let seed = format!("{}/", site.base_url());
    let run = {
        let (seed, state) = (seed.clone(), state.clone());
        move |out: &Path, extra: &[&str]| {
            trawl()
                .args([
                    "crawl",
                    &seed,
                    "-q",
                    "--concurrency",
                    "8",
                    "--per-host",
                    "8",
                ])
                .arg("-o")
                .arg(out)
                .arg("--state")
                .arg(&state)
                .args(extra)
                .status()
                .unwrap()
        }
    };
    let first = dir.path().join("first.jsonl");
    let (r1, f1) = (run.clone(), first.clone());
    assert!(
        tokio::task::spawn_blocking(move || r1(&f1, &[]))
            .await
            .unwrap()
            .success()
    );
    let truth = site.site().ground_truth();
    assert_eq!(lines(&first).len(), truth.len());
    assert_eq!(site.not_modified(), 0);

    // Change three pages, then recrawl.
    let touched: Vec<u32> = truth
        .iter()
        .filter_map(|p| p.strip_prefix("/p/")?.parse().ok())
        .take(3)
        .collect();
    for i in &touched {
        site.touch(*i);
    }
    let second = dir.path().join("second.jsonl");
    let stats = dir.path().join("stats.json");
    let (r2, f2, st) = (run.clone(), second.clone(), stats.clone());
    let ok = tokio::task::spawn_blocking(move || {
        r2(&f2, &["--recrawl", "--stats-json", st.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert!(ok.success());
    let items = lines(&second);
    assert_eq!(
        items.len(),
        truth.len(),
        "every known URL is revisited once"
    );
    let pages = truth.iter().filter(|p| p.starts_with("/p/")).count();
    let unchanged = items.iter().filter(|i| i["status"] == 304).count();
    assert_eq!(unchanged, pages - touched.len());
    assert_eq!(site.not_modified(), unchanged as u64);
    for i in &touched {
        let path = format!("/p/{i}");
        let item = items
            .iter()
            .find(|it| it["url"].as_str().unwrap().ends_with(&path))
            .unwrap();
        assert_eq!(item["status"], 200, "{path} changed");
        assert_eq!(item["etag"], format!("\"p{i}-v1\""));
        assert_ne!(
            item["change"], "unchanged",
            "{path} has a revision line now"
        );
    }
    // Unchanged: every 304, and the pages without validators whose body is
    // the same as before.
    assert!(
        items
            .iter()
            .filter(|i| i["status"] == 304)
            .all(|i| i["change"] == "unchanged")
    );
    let same = items.iter().filter(|i| i["change"] == "unchanged").count();
    assert!(
        same > unchanged,
        "the root page has no ETag and did not change"
    );
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(stats["unchanged"], same as u64);
    site.shutdown().await;
}
