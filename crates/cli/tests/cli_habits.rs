//! The binary run the way people run Unix tools: piped into `head` and
//! `wc -l`, under `timeout`, with nothing to fetch, with nonsense limits.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{trawl, wait_until};
use trawl_testsite::{SiteConfig, TestSite};

/// Run a command to its end off the async runtime.
async fn run(cmd: &mut Command) -> Output {
    let mut cmd = std::mem::replace(cmd, Command::new("true"));
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Wait (with a deadline) for a spawned command to end; its output.
async fn finish(mut child: Child, what: &'static str, deadline: Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        wait_until(what, deadline, || child.try_wait().unwrap().is_some());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

async fn site(pages: usize) -> TestSite {
    TestSite::start(SiteConfig {
        pages,
        fanout: 10,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// `trawl crawl URL -q | head -1`: the first line arrives, and trawl ends
/// as soon as `head` has closed the pipe: exit 0, nothing on stderr, no
/// dead-letter file, no retries of a write nobody can read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_into_head_ends_the_crawl_at_once_and_quietly() {
    let site = site(3000).await;
    let dir = tempfile::tempdir().unwrap();
    let trawl_bin = env!("CARGO_BIN_EXE_trawl");
    let script = format!(
        "'{trawl_bin}' crawl {}/ --max-pages 2000 -q | head -1; echo \"status=${{PIPESTATUS[0]}}\"",
        site.base_url()
    );
    let child = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(child, "the pipeline to end", Duration::from_secs(20)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stdout.lines();
    let first: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert!(first["url"].as_str().unwrap().starts_with(&site.base_url()));
    assert_eq!(lines.next(), Some("status=0"), "{stdout}");
    assert_eq!(stderr, "", "-q is quiet");
    assert!(
        !dir.path().join("dead-letter").exists(),
        "a closed pipe is no sink failure"
    );
    // Far fewer requests than the 2,000 allowed reached the site.
    let requests = site.stats().log.len();
    assert!(requests < 1500, "{requests} requests after head left");
}

/// `trawl crawl URL | wc -l` still counts every line (the pipe stays open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_into_wc_gets_every_line() {
    let site = site(200).await;
    let trawl_bin = env!("CARGO_BIN_EXE_trawl");
    let script = format!("'{trawl_bin}' crawl {}/ -q | wc -l", site.base_url());
    let out = run(Command::new("bash").args(["-c", &script])).await;
    assert!(out.status.success());
    let count: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(count, site.site().ground_truth().len());
}

/// Nothing fetched is a failure, said in one line: an unreachable host
/// (robots.txt cannot be read), a seed that answers 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_that_fetched_nothing_fails_and_says_why() {
    let unreachable = run(trawl().args([
        "crawl",
        "http://127.0.0.1:1/",
        "-o",
        "/dev/null",
        "--retries",
        "0",
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(1), "{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("trawl: nothing was fetched"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("robots.txt"), "{stderr}");

    let site = site(20).await;
    let missing = format!("{}/no/such/page", site.base_url());
    let not_found = run(trawl().args(["crawl", &missing, "-o", "/dev/null", "-q"])).await;
    let stderr = String::from_utf8_lossy(&not_found.stderr);
    assert_eq!(not_found.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("all 1 pages failed"), "{stderr}");

    // A crawl that got pages is a success.
    let good = format!("{}/", site.base_url());
    let ok = run(trawl().args(["crawl", &good, "-o", "/dev/null", "-q"])).await;
    assert_eq!(ok.status.code(), Some(0));
}

/// Limits that would make a crawl hang or fail every request are refused
/// before it starts, naming the option.
#[test]
fn nonsense_limits_are_refused() {
    for (flag, value) in [
        ("--timeout", "0s"),
        ("--connect-timeout", "0s"),
        ("-c", "0"),
        ("--per-host", "0"),
        ("--render-tabs", "0"),
        ("--render-timeout", "0s"),
    ] {
        let out = trawl()
            .args(["crawl", "http://127.0.0.1:1/", flag, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(value) && stderr.contains("must be"),
            "{stderr}"
        );
    }
}

/// A page served by a real nginx.
fn served(html: &str) -> (trawl_testsite::nginx::Nginx, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), html).unwrap();
    let opts = trawl_testsite::nginx::NginxOptions::new(root.path());
    (trawl_testsite::nginx::Nginx::start(opts).unwrap(), root)
}

/// `-s 'v:number=span.since'` on "1.0.0" is null with a reason (never
/// 100), and `--explain` says why; a `<pre>` declaration keeps its lines.
#[test]
fn scrape_never_invents_numbers_and_keeps_pre_blocks() {
    let (nginx, _root) = served(
        "<html><body><span class=\"since\">1.0.0</span><span class=\"price\">1.234,56 €</span>\
         <pre class=\"decl\">pub struct Vec&lt;T&gt; {\n    len: usize,\n}</pre></body></html>",
    );
    let out = trawl()
        .args(["scrape", &nginx.url(), "--ignore-robots", "--explain"])
        .args([
            "-s",
            "v:number=span.since",
            "-s",
            "price:number=.price",
            "-s",
            "decl=pre.decl",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["fields"]["v"], serde_json::Value::Null, "{page}");
    assert_eq!(page["fields"]["price"], 1234.56);
    assert_eq!(
        page["fields"]["decl"],
        "pub struct Vec<T> {\n    len: usize,\n}"
    );
    assert_eq!(page["warnings"][0]["reason"], "\"1.0.0\" is not a number");
    assert!(
        stderr.contains("v: \"1.0.0\" is not a number → null"),
        "{stderr}"
    );
}

/// Outputs that cannot be written fail before the crawl, not after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_stats_file_fails_before_crawling() {
    let site = site(50).await;
    let seed = format!("{}/", site.base_url());
    let out = run(trawl().args([
        "crawl",
        &seed,
        "-o",
        "/dev/null",
        "--stats-json",
        "/nonexistent/dir/stats.json",
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--stats-json") && stderr.contains("/nonexistent/dir/stats.json"),
        "{stderr}"
    );
    assert!(site.stats().log.is_empty(), "the crawl started anyway");
}

/// `--max-body` takes units, and `-vv` shows Scrapy's per-request line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_body_takes_units_and_vv_shows_each_request() {
    let site = site(20).await;
    let seed = format!("{}/", site.base_url());
    let out = run(trawl().env_remove("RUST_LOG").args([
        "crawl",
        &seed,
        "-o",
        "-",
        "--max-body",
        "1KiB",
        "--max-pages",
        "3",
        "-vv",
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let items: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        items.iter().all(|i| i["bytes"].as_u64().unwrap() <= 1024),
        "{items:?}"
    );
    assert!(
        stderr.contains(&format!(
            "Crawled (200) <GET {}/> (referer: None)",
            site.base_url()
        )),
        "{stderr}"
    );
    let bad = trawl()
        .args(["crawl", "http://127.0.0.1:1/", "--max-body", "10 parsecs"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown size unit"));
}

/// The README's sample record has exactly the fields a real record has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_sample_record_matches_a_real_one() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("Each fetched URL becomes one JSON line:")
        .unwrap();
    let block = &readme[start..];
    let json_start = block.find("```json\n").unwrap() + "```json\n".len();
    let json_end = json_start + block[json_start..].find("```").unwrap();
    let sample: serde_json::Value = serde_json::from_str(&block[json_start..json_end]).unwrap();
    let site = site(5).await;
    let seed = format!("{}/", site.base_url());
    let out = run(trawl().args(["crawl", &seed, "-q", "--max-pages", "1"])).await;
    let real: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(keys(&sample), keys(&real));
}

/// `trawl run` with no error record leaves no empty error file behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_leaves_no_empty_error_file() {
    let site = site(10).await;
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("pages.toml");
    std::fs::write(
        &spider,
        format!(
            "name = \"pages\"\nstart_urls = [\"{}/\"]\n\n[items.page]\nmatch = \".\"\nfields = {{ title = {{ selector = \"title\" }} }}\n",
            site.base_url()
        ),
    )
    .unwrap();
    let d = dir.path().to_path_buf();
    let out = run(trawl().current_dir(&d).args([
        "run",
        "pages.toml",
        "-q",
        "--max-pages",
        "3",
        "-o",
        "items.jsonl",
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(common::line_count(&dir.path().join("items.jsonl")) > 0);
    assert!(!dir.path().join("pages-errors.jsonl").exists());
}

/// Scrapy habits: parsel's `::text` and `::attr(name)` work; an XPath or a
/// broken selector is an error naming it and the column, never "please
/// report this to the developer".
#[test]
fn parsel_selectors_work_and_bad_ones_say_where() {
    let (nginx, _root) = served(
        "<html><body><h1>Hello <b>world</b></h1><a class=\"next\" href=\"/p/2\">next</a></body></html>",
    );
    let out = trawl()
        .args(["scrape", &nginx.url(), "--ignore-robots"])
        .args(["-s", "name=h1::text", "-s", "next=a.next::attr(href)"])
        .args(["-s", "x_name=//h1", "-s", "x_next=//a[@class='next']/@href"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["fields"]["name"], "Hello world");
    assert_eq!(page["fields"]["next"], "/p/2");
    // XPath, as in parsel.
    assert_eq!(page["fields"]["x_name"], "Hello world");
    assert_eq!(page["fields"]["x_next"], "/p/2");

    for (selector, column) in [("//a[@href", 4), ("div > > p", 7)] {
        let out = trawl()
            .args(["scrape", &nginx.url(), "--ignore-robots", "-s"])
            .arg(format!("x={selector}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(selector), "{stderr}");
        assert!(stderr.contains(&format!("column {column}")), "{stderr}");
        assert!(!stderr.contains("report this"), "{stderr}");
    }
}

/// Running twice with a state directory and `--errors /dev/null`: the
/// second run resumes instead of failing to cut `/dev/null` back, and
/// `--max-pages` counts for the whole crawl, not for each run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_with_dev_null_outputs_works() {
    let site = site(30).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pages.toml"),
        format!(
            "name = \"pages\"\nstart_urls = [\"{}/\"]\n\n[[follow]]\nselector = \"a\"\n\n[items.page]\nmatch = \".\"\nfields = {{ title = {{ selector = \"title\" }} }}\n",
            site.base_url()
        ),
    )
    .unwrap();
    for round in 0..2 {
        let d = dir.path().to_path_buf();
        let out = run(trawl()
            .current_dir(&d)
            .args([
                "run",
                "pages.toml",
                "-q",
                "--state",
                "st",
                "--errors",
                "/dev/null",
            ])
            .args(["-o", "items.jsonl", "--max-pages", "10"]))
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "round {round}: {stderr}");
    }
    // --max-pages counts per crawl: the second run had nothing left to do.
    assert_eq!(common::line_count(&dir.path().join("items.jsonl")), 10);
}

/// `scrape --spider`: each link to follow is listed once however many
/// rules found it, and `--explain` says what each pass produced.
#[test]
fn scrape_spider_lists_each_follow_once_and_explains() {
    let (nginx, root) = served(
        "<html><head><title>T</title></head><body><nav><a href=\"/a\">A</a><a href=\"/b\">B</a></nav>\
         <main><a href=\"/a\">A again</a><a href=\"/b\">B again</a></main></body></html>",
    );
    let spider = root.path().join("s.toml");
    std::fs::write(
        &spider,
        format!(
            "name = \"s\"\nstart_urls = [\"{}\"]\n\n[[follow]]\nselector = \"nav a\"\n\n[[follow]]\nselector = \"a\"\n\n[items.page]\nmatch = \".\"\nfields = {{ title = {{ selector = \"title\" }} }}\n",
            nginx.url()
        ),
    )
    .unwrap();
    let out = trawl()
        .args([
            "scrape",
            &nginx.url(),
            "--ignore-robots",
            "--explain",
            "--spider",
        ])
        .arg(&spider)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &page["results"][0];
    assert_eq!(first["follows"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(first["follows_found"], 6);
    assert!(
        stderr.contains(
            "by URL: 1 item(s) from page, 0 error record(s), 2 link(s) to follow (6 found)"
        ),
        "{stderr}"
    );
}

/// `trawl crawl URL | jq -c .url` sees one JSON object per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_into_jq_reads_every_record() {
    let site = site(60).await;
    let trawl_bin = env!("CARGO_BIN_EXE_trawl");
    let script = format!(
        "set -o pipefail; '{trawl_bin}' crawl {}/ -q | jq -r .url | sort -u | wc -l",
        site.base_url()
    );
    let out = run(Command::new("bash").args(["-c", &script])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let count: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(count, site.site().ground_truth().len());
}

/// `timeout 1 trawl crawl SLOW-SITE` ends soon after the SIGTERM (it
/// drains what is in flight, it does not wait out the crawl), with its
/// output complete to the last line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stops_a_crawl_promptly() {
    let site = TestSite::start(SiteConfig {
        pages: 2000,
        fanout: 10,
        latency: Some(Duration::from_millis(50)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("items.jsonl");
    let trawl_bin = env!("CARGO_BIN_EXE_trawl");
    let script = format!(
        "timeout -s TERM 1 '{trawl_bin}' crawl {}/ -q -o '{}'; echo \"status=$?\"",
        site.base_url(),
        out.display()
    );
    let child = Command::new("bash")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let output = finish(
        child,
        "trawl to stop after SIGTERM",
        Duration::from_secs(15),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // timeout reports 124 when it had to stop the command.
    assert!(stdout.contains("status=124"), "{stdout}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "half a line at the end"
    );
    let lines = text.lines().count();
    assert!(lines > 0 && lines < 2000, "{lines} items");
}
