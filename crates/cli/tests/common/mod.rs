//! Helpers shared by the CLI integration tests: run the real binary, wait
//! on conditions with deadlines, count output lines.

#![allow(dead_code, clippy::unwrap_used)]

pub mod netns;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

/// `trawl` with warnings on even under `-q` (which keeps errors only), for
/// tests that watch what a quiet crawl warns about.
pub fn trawl_with_warnings() -> Command {
    let mut cmd = trawl();
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// Poll `cond` every 20 ms until it holds or `deadline` passes.
pub fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

/// Run `trawl crawl SEED -q -o FILE --stats-json FILE ARGS…` to the end;
/// returns (exit code, stderr, stats, items).
pub fn crawl_with_stats(
    seed: &str,
    args: &[String],
) -> (i32, String, serde_json::Value, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let items = dir.path().join("items.jsonl");
    let out = trawl_with_warnings()
        .args(["crawl", seed, "-q"])
        .arg("-o")
        .arg(&items)
        .arg("--stats-json")
        .arg(&stats)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stats = std::fs::read_to_string(&stats)
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap_or(serde_json::Value::Null);
    let items = std::fs::read_to_string(&items)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code().unwrap_or(-1), stderr, stats, items)
}

/// `trawl serve` on a free port with `args`; returns the process and the
/// address it says it serves on (asserting the API is not left open).
/// The caller waits for the process.
#[allow(clippy::zombie_processes)]
pub fn spawn_serve(args: &[&str], open: bool) -> (std::process::Child, String) {
    let mut child = trawl()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("serve said where it listens").unwrap();
        assert!(open || !line.contains("is open"), "{line}");
        if let Some(rest) = line.split("serving the Scraper API on http://").nth(1) {
            // Keep reading: a closed pipe would fail the server's next line.
            std::thread::spawn(move || for _ in lines {});
            return (child, rest.trim().to_string());
        }
    }
}

/// Every line of the item stream of Scraper API job `id` at `addr`, from
/// item `after` to the stream's end (the job's).
pub async fn read_job_items(addr: &str, id: &str, after: usize) -> Vec<serde_json::Value> {
    let text = tokio::time::timeout(
        Duration::from_secs(120),
        reqwest::get(format!("http://{addr}/v1/crawls/{id}/items?after={after}"))
            .await
            .unwrap()
            .text(),
    )
    .await
    .expect("the stream ends with the job")
    .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The items of a JSON Lines file (none if it is missing), checking that
/// it ends at a line boundary.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends with half a line",
        path.display()
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l:?}: {e}")))
        .collect()
}

/// Every page of `truth` (paths) is among `items` (by `final_url`), and no
/// page is there twice.
pub fn assert_every_page_once(
    items: &[serde_json::Value],
    truth: &std::collections::BTreeSet<String>,
) {
    let mut paths: Vec<String> = items
        .iter()
        .map(|i| {
            trawl_core::Url::parse(i["final_url"].as_str().unwrap())
                .unwrap()
                .path()
                .to_string()
        })
        .collect();
    let n = paths.len();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), n, "no page twice");
    assert_eq!(
        paths.iter().filter(|p| truth.contains(*p)).count(),
        truth.len(),
        "every page"
    );
}

/// Run a warcio `script` (Python, printing JSON) over the `.warc.gz` files
/// of `dir`, in name order, and parse what it prints.
pub fn warcio(dir: &Path, script: &str) -> serde_json::Value {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".warc.gz"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no WARC files in {}", dir.display());
    let out = Command::new("python3")
        .args(["-c", script])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "warcio failed (run scripts/test.sh, which installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
