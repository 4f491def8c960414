//! Sinks failing for real, end to end: a PostgreSQL server stopped and
//! started again mid-crawl, a CSV output on a full tmpfs (recovering, or
//! giving up into the dead-letter file), and a PostgreSQL table locked so
//! its sink blocks (backpressure). The real `trawl` binary crawls the real
//! test site's shop; every product in the ground truth must end up written
//! exactly once.
//!
//! The tests are synchronous: the test site runs on its own tokio runtime,
//! so the test thread may block on processes, files and the database.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{line_count, read_jsonl, trawl, wait_until};
use trawl_testsite::postgres::TempPostgres;
use trawl_testsite::tmpfs::Tmpfs;
use trawl_testsite::{SiteConfig, TestSite};

const KIB: u64 = 1024;

/// The test site's runtime and the site on it.
struct Shop {
    rt: tokio::runtime::Runtime,
    site: Option<TestSite>,
}

impl Shop {
    fn start(products: usize) -> Shop {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let site = rt
            .block_on(TestSite::start(SiteConfig {
                pages: 10,
                shop: true,
                shop_products: products,
                ..Default::default()
            }))
            .unwrap();
        assert_eq!(site.site().products().len(), products);
        Shop {
            rt,
            site: Some(site),
        }
    }

    fn site(&self) -> &TestSite {
        self.site.as_ref().unwrap()
    }

    /// Every product as (absolute URL, SKU).
    fn truth(&self) -> BTreeMap<String, String> {
        let site = self.site();
        site.site()
            .products()
            .into_iter()
            .map(|p| (site.url(&p.path), p.sku))
            .collect()
    }

    /// Every page the crawl fetches: products, listing pages, robots.txt.
    fn total_requests(&self) -> u64 {
        (self.site().site().products().len() + self.site().site().listing_pages().len() + 1) as u64
    }

    fn shutdown(mut self) {
        if let Some(site) = self.site.take() {
            self.rt.block_on(site.shutdown());
        }
    }
}

/// The example shop spider, pointed at `base`.
fn write_spider(dir: &Path, base: &str) -> PathBuf {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/spiders/shop.toml"
    ))
    .unwrap();
    let path = dir.join("shop.toml");
    std::fs::write(&path, example.replace("http://127.0.0.1:8080", base)).unwrap();
    path
}

/// A `trawl run` child process, killed if the test panics while it runs.
struct Running {
    child: Option<Child>,
    stderr: PathBuf,
}

impl Running {
    /// `trawl run SPIDER ARGS…` in `dir` (so nothing lands in the working
    /// directory), its stderr going to `dir/NAME.stderr`.
    fn spawn(dir: &Path, name: &str, spider: &Path, args: &[String]) -> Running {
        let stderr = dir.join(format!("{name}.stderr"));
        let child = trawl()
            .current_dir(dir)
            // Warnings are what these tests watch; -q alone would hide
            // them (it keeps errors only).
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .arg("run")
            .arg(spider)
            .arg("--errors")
            .arg(dir.join(format!("{name}-errors.jsonl")))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Running {
            child: Some(child),
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    /// Wait for `cond` while the crawl runs; a crawl that ends first fails
    /// the test (with its stderr).
    fn wait_while_running(
        &mut self,
        what: &str,
        deadline: Duration,
        mut cond: impl FnMut() -> bool,
    ) {
        let end = Instant::now() + deadline;
        loop {
            if cond() {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "trawl exited ({status}) before {what}; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; stderr so far:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let mut status = None;
        let child = self.child.as_mut().unwrap();
        let end = Instant::now() + deadline;
        while status.is_none() {
            status = child.try_wait().unwrap();
            if status.is_none() {
                assert!(
                    Instant::now() < end,
                    "trawl did not exit within {deadline:?}; stderr:\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.child = None;
        status.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Lines of the file at `path` containing every one of `needles`.
fn lines_with(path: &Path, needles: &[&str]) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// (url, sku) of every item, asserting no URL appears twice.
fn url_sku(items: &[serde_json::Value], what: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for i in items {
        let url = i["url"].as_str().unwrap().to_string();
        let sku = i["sku"].as_str().unwrap().to_string();
        assert!(
            out.insert(url.clone(), sku).is_none(),
            "{what}: {url} twice"
        );
    }
    out
}

/// A strict RFC 4180 reader (CRLF record ends, `""` escapes): panics on a
/// half-written record, so a file cut mid-row fails the test.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(field.is_empty(), "quote inside an unquoted field");
                quoted = true;
            }
            ',' => record.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            '\n' => panic!("record ends with a bare LF"),
            c => field.push(c),
        }
    }
    assert!(!quoted, "the CSV ends inside a quoted field");
    assert!(
        field.is_empty() && record.is_empty(),
        "the CSV ends with half a record"
    );
    records
}

/// The CSV's header (checked to be the spider's columns) and its rows as
/// url → sku, asserting the header appears once and no URL twice.
fn read_csv(path: &Path) -> (Vec<String>, BTreeMap<String, String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let records = parse_csv(&text);
    let Some((header, rows)) = records.split_first() else {
        return (Vec::new(), BTreeMap::new());
    };
    assert_eq!(header[0], "url", "first record is not the header");
    let sku = header.iter().position(|c| c == "sku").unwrap();
    let mut out = BTreeMap::new();
    for row in rows {
        assert_ne!(row, header, "a second header row");
        assert_eq!(row.len(), header.len(), "row {row:?}");
        assert!(
            out.insert(row[0].clone(), row[sku].clone()).is_none(),
            "{} twice in the CSV",
            row[0]
        );
    }
    (header.clone(), out)
}

/// The `--stats-json` file.
fn read_stats(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The stats of the sink whose name starts with `prefix`.
fn sink_stats<'a>(stats: &'a serde_json::Value, prefix: &str) -> &'a serde_json::Value {
    stats["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no sink {prefix}* in {stats:#}"))
}

/// Run one SQL command with psql against the `test` database.
fn psql(pg: &TempPostgres, sql: &str) -> String {
    let out = psql_cmd(pg)
        .args(["-At", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn psql_cmd(pg: &TempPostgres) -> Command {
    let mut c = Command::new("psql");
    c.args(["-h", "127.0.0.1", "-p", &pg.port().to_string()])
        .args(["-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1"])
        .env_remove("PGDATABASE")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS");
    c
}

/// The rows of `table` as url → sku, asserting no URL appears twice.
fn table_rows(pg: &TempPostgres, table: &str) -> BTreeMap<String, String> {
    let text = psql(pg, &format!("SELECT url || ' ' || sku FROM {table}"));
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let (url, sku) = line.split_once(' ').unwrap();
        assert!(
            out.insert(url.to_string(), sku.to_string()).is_none(),
            "{url} twice in {table}"
        );
    }
    out
}

/// The dead-letter file of sink `name` in `dir`, by the documented rule:
/// every character but ASCII letters, digits, `-`, `_` and `.` becomes `_`,
/// leading and trailing `_` are dropped, `.jsonl` is appended.
fn dead_letter_path(dir: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{}.jsonl", safe.trim_matches('_')))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn path_arg(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn postgres_restart_mid_crawl_loses_nothing() {
    let started = Instant::now();
    let shop = Shop::start(300);
    let pg = TempPostgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = write_spider(dir.path(), &shop.site().base_url());
    let (items, stats, dead) = (
        dir.path().join("items.jsonl"),
        dir.path().join("stats.json"),
        dir.path().join("dead"),
    );
    let mut run = Running::spawn(
        dir.path(),
        "crawl",
        &spider,
        &[
            args(&["-o", &path_arg(&items), "--stats-json", &path_arg(&stats)]),
            args(&["--dead-letter", &path_arg(&dead), "-q"]),
            args(&["--sink", &format!("{},table_prefix=t_", pg.url())]),
            // ~100 pages/s: the crawl lasts about 3 s.
            args(&["--delay", "10ms", "--sink-backoff", "100ms"]),
        ]
        .concat(),
    );
    run.wait_while_running("50 items", Duration::from_secs(20), || {
        line_count(&items) >= 50
    });
    pg.stop().unwrap();
    let stopped_at = line_count(&items);
    assert!(
        stopped_at < 300,
        "the crawl was over before the database stopped"
    );
    // The outage is hit: the PostgreSQL sink fails and retries (three
    // failed attempts: 0.1 + 0.2 s of back-off at least).
    let stderr = run.stderr.clone();
    let pg_failures = || lines_with(&stderr, &["Sink write failed", "postgres"]);
    run.wait_while_running(
        "three failed PostgreSQL writes",
        Duration::from_secs(15),
        || pg_failures() >= 3,
    );
    pg.start_again().unwrap();
    let status = run.wait_exit(Duration::from_secs(30));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("gave up"), "{stderr}");

    let truth = shop.truth();
    assert_eq!(
        table_rows(&pg, "t_product"),
        truth,
        "the table differs from the products"
    );
    assert_eq!(url_sku(&read_jsonl(&items), "JSONL"), truth);
    assert!(!dead.exists(), "a dead-letter directory was written");

    let stats = read_stats(&stats);
    let pg_sink = sink_stats(&stats, "postgres:");
    assert!(
        pg_sink["retries"].as_u64().unwrap() >= 2,
        "the outage left no retries: {pg_sink:#}"
    );
    assert_eq!(pg_sink["items"], 300, "{pg_sink:#}");
    assert_eq!(pg_sink["failed_batches"], 0, "{pg_sink:#}");
    assert_eq!(pg_sink["dead_lettered"], 0, "{pg_sink:#}");
    assert_eq!(stats["sink_errors"], serde_json::json!([]));
    assert_eq!(stats["items_written"], 300);
    eprintln!(
        "postgres outage from item {stopped_at}, {} retries, {:?} in all",
        pg_sink["retries"],
        started.elapsed()
    );
    drop(pg);
    shop.shutdown();
}

#[test]
fn disk_full_sink_retries_then_catches_up() {
    let started = Instant::now();
    let shop = Shop::start(200);
    // The CSV of 200 products is about 190 KiB.
    let fs = Tmpfs::mount(512 * KIB).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = write_spider(dir.path(), &shop.site().base_url());
    let csv = fs.path().join("items.csv");
    let (items, stats, dead) = (
        dir.path().join("items.jsonl"),
        dir.path().join("stats.json"),
        dir.path().join("dead"),
    );
    fs.fill(0).unwrap();
    assert_eq!(fs.available().unwrap(), 0);
    let mut run = Running::spawn(
        dir.path(),
        "crawl",
        &spider,
        &[
            args(&["-o", &path_arg(&items), "--stats-json", &path_arg(&stats)]),
            args(&["--dead-letter", &path_arg(&dead), "-q"]),
            args(&["--sink", &format!("csv:{}", csv.display())]),
            args(&["--delay", "10ms", "--sink-attempts", "50"]),
            args(&["--sink-backoff", "50ms"]),
        ]
        .concat(),
    );
    let stderr = run.stderr.clone();
    let csv_failures = || lines_with(&stderr, &["Sink write failed", "csv:"]);
    run.wait_while_running("three failed CSV writes", Duration::from_secs(15), || {
        csv_failures() >= 3
    });
    // The other output, on a disk with room, is written meanwhile.
    run.wait_while_running("items in the JSONL", Duration::from_secs(10), || {
        line_count(&items) > 0
    });
    // Every failed attempt was undone: nothing is in the file.
    assert_eq!(std::fs::metadata(&csv).unwrap().len(), 0);
    assert!(!run.stderr().contains("gave up"), "{}", run.stderr());
    fs.free_filler().unwrap();
    let status = run.wait_exit(Duration::from_secs(30));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");

    let truth = shop.truth();
    let (header, rows) = read_csv(&csv);
    assert!(header.contains(&"price".to_string()), "{header:?}");
    assert_eq!(rows, truth, "the CSV differs from the products");
    assert_eq!(url_sku(&read_jsonl(&items), "JSONL"), truth);
    assert!(!dead.exists(), "a dead-letter directory was written");

    let stats = read_stats(&stats);
    let csv_sink = sink_stats(&stats, "csv:");
    assert!(
        csv_sink["retries"].as_u64().unwrap() >= 2,
        "no retries counted: {csv_sink:#}"
    );
    assert_eq!(csv_sink["items"], 200, "{csv_sink:#}");
    assert_eq!(csv_sink["failed_batches"], 0, "{csv_sink:#}");
    assert_eq!(csv_sink["dead_lettered"], 0, "{csv_sink:#}");
    // Bytes of undone attempts are not counted.
    assert_eq!(
        csv_sink["bytes"],
        std::fs::metadata(&csv).unwrap().len(),
        "{csv_sink:#}"
    );
    assert_eq!(stats["sink_errors"], serde_json::json!([]));
    eprintln!(
        "disk full: {} CSV retries, {:?} in all",
        csv_sink["retries"],
        started.elapsed()
    );
    drop(fs);
    shop.shutdown();
}

#[test]
fn a_sink_that_gives_up_writes_a_dead_letter_file() {
    let started = Instant::now();
    let shop = Shop::start(200);
    let fs = Tmpfs::mount(512 * KIB).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = write_spider(dir.path(), &shop.site().base_url());
    let csv = fs.path().join("items.csv");
    let (items, stats, dead) = (
        dir.path().join("items.jsonl"),
        dir.path().join("stats.json"),
        dir.path().join("dead"),
    );
    // Room for a few batches of at most four products (about 1 KiB each),
    // then the disk is full for good: one batch fails part-way, and every
    // later one fails.
    fs.fill(12 * KIB).unwrap();
    let mut run = Running::spawn(
        dir.path(),
        "crawl",
        &spider,
        &[
            args(&["-o", &path_arg(&items), "--stats-json", &path_arg(&stats)]),
            args(&["--dead-letter", &path_arg(&dead)]),
            args(&["--sink", &format!("csv:{}", csv.display())]),
            args(&["--batch-size", "4", "--sink-attempts", "2"]),
            args(&["--sink-backoff", "20ms"]),
        ]
        .concat(),
    );
    let status = run.wait_exit(Duration::from_secs(30));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    let dead_file = dead_letter_path(
        &dead,
        &format!("csv:{}", std::path::absolute(&csv).unwrap().display()),
    );
    assert!(stderr.contains("gave up"), "{stderr}");
    assert!(
        stderr.contains(&dead_file.display().to_string()),
        "stderr does not name {}:\n{stderr}",
        dead_file.display()
    );
    let entries: Vec<_> = std::fs::read_dir(&dead)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries, vec![dead_file.clone()], "dead-letter files");

    let truth = shop.truth();
    let dead_items = read_jsonl(&dead_file);
    let dead_rows = url_sku(&dead_items, "dead-letter file");
    let (_, csv_rows) = read_csv(&csv);
    assert!(!csv_rows.is_empty(), "no batch fitted on the disk");
    assert!(!dead_rows.is_empty(), "nothing was dead-lettered");
    for url in csv_rows.keys() {
        assert!(
            !dead_rows.contains_key(url),
            "{url} both in the CSV and the dead-letter file"
        );
    }
    let mut together = csv_rows.clone();
    together.extend(dead_rows.clone());
    assert_eq!(
        together, truth,
        "CSV + dead letters differ from the products"
    );
    // Dead letters are whole items, as the sink would have got them.
    assert!(
        dead_items
            .iter()
            .all(|i| i["_rule"] == "product" && i["price"].is_number())
    );
    assert_eq!(url_sku(&read_jsonl(&items), "JSONL"), truth);

    let stats = read_stats(&stats);
    let csv_sink = sink_stats(&stats, "csv:");
    assert_eq!(
        csv_sink["dead_lettered"],
        dead_items.len() as u64,
        "{csv_sink:#}"
    );
    assert_eq!(csv_sink["items"], csv_rows.len() as u64, "{csv_sink:#}");
    let failed = csv_sink["failed_batches"].as_u64().unwrap();
    assert!(failed > 0, "{csv_sink:#}");
    // Two attempts a batch: one retry for each batch given up on.
    assert!(
        csv_sink["retries"].as_u64().unwrap() >= failed,
        "{csv_sink:#}"
    );
    assert_eq!(
        csv_sink["bytes"],
        std::fs::metadata(&csv).unwrap().len(),
        "{csv_sink:#}"
    );
    // One message for the CSV sink, counting the batches it gave up on.
    let errors = stats["sink_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    if failed > 1 {
        let more = format!("(and likewise for {} more batches)", failed - 1);
        assert!(errors[0].as_str().unwrap().ends_with(&more), "{errors:#?}");
    }
    assert!(
        errors
            .iter()
            .all(|e| e.as_str().unwrap().contains("gave up")),
        "{errors:#?}"
    );
    let jsonl_sink = sink_stats(&stats, "jsonl:");
    assert_eq!(jsonl_sink["items"], 200, "{jsonl_sink:#}");
    eprintln!(
        "gave up: {} rows in the CSV, {} dead-lettered in {failed} batches, {:?} in all",
        csv_rows.len(),
        dead_items.len(),
        started.elapsed()
    );
    drop(fs);
    shop.shutdown();
}

#[test]
fn a_slow_sink_slows_the_crawl_but_loses_nothing() {
    let started = Instant::now();
    let shop = Shop::start(300);
    let pg = TempPostgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = write_spider(dir.path(), &shop.site().base_url());
    let sink = format!("{},table_prefix=t_", pg.url());

    // A first, one-page run creates the table.
    let mut first = Running::spawn(
        dir.path(),
        "first",
        &spider,
        &args(&[
            "-o",
            "first.jsonl",
            "--sink",
            &sink,
            "--max-pages",
            "1",
            "-q",
        ]),
    );
    let status = first.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", first.stderr());
    assert_eq!(psql(&pg, "SELECT count(*) FROM t_product"), "0");

    // Another session locks the table: every write of the sink blocks.
    let mut lock = psql_cmd(&pg)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lock_in = lock.stdin.take().unwrap();
    writeln!(
        lock_in,
        "BEGIN; LOCK TABLE t_product IN ACCESS EXCLUSIVE MODE;"
    )
    .unwrap();
    lock_in.flush().unwrap();
    let locks = |granted: bool| {
        psql(
            &pg,
            &format!(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                 WHERE c.relname = 't_product' AND l.granted = {granted}"
            ),
        )
        .parse::<u64>()
        .unwrap()
    };
    wait_until("the table lock", Duration::from_secs(10), || {
        locks(true) >= 1
    });

    shop.site().reset_stats();
    let items = dir.path().join("items.jsonl");
    let stats = dir.path().join("stats.json");
    let mut run = Running::spawn(
        dir.path(),
        "crawl",
        &spider,
        &[
            args(&["-o", &path_arg(&items), "--stats-json", &path_arg(&stats)]),
            args(&["--sink", &sink, "--batch-size", "4", "-q"]),
        ]
        .concat(),
    );
    run.wait_while_running(
        "the sink to wait for the lock",
        Duration::from_secs(15),
        || locks(false) >= 1,
    );
    // Backpressure: with the sink stuck, the queues fill and fetching
    // stops. Wait until the site has seen no request for a second.
    let mut last = (shop.site().stats().requests, Instant::now());
    run.wait_while_running("fetching to stop", Duration::from_secs(20), || {
        let now = shop.site().stats().requests;
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() >= Duration::from_secs(1)
    });
    let total = shop.total_requests();
    let stalled_at = last.0;
    assert!(
        stalled_at < total / 2,
        "the crawl went on with its sink stuck: {stalled_at} of {total} requests"
    );
    assert!(stalled_at > 0, "the crawl never started");
    let written = line_count(&items);
    assert!(
        written > 0 && written < 300,
        "{written} items in the JSONL while the table was locked"
    );
    assert!(locks(false) >= 1, "the sink no longer waits for the lock");

    writeln!(lock_in, "ROLLBACK;").unwrap();
    drop(lock_in);
    assert!(lock.wait().unwrap().success(), "the lock session failed");
    let status = run.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", run.stderr());

    let truth = shop.truth();
    assert_eq!(
        table_rows(&pg, "t_product"),
        truth,
        "the table differs from the products"
    );
    assert_eq!(url_sku(&read_jsonl(&items), "JSONL"), truth);
    assert_eq!(shop.site().stats().requests, total, "pages fetched twice");
    let stats = read_stats(&stats);
    let pg_sink = sink_stats(&stats, "postgres:");
    // Slow is not failing: no retries, nothing given up.
    assert_eq!(pg_sink["retries"], 0, "{pg_sink:#}");
    assert_eq!(pg_sink["items"], 300, "{pg_sink:#}");
    assert_eq!(stats["sink_errors"], serde_json::json!([]));
    eprintln!(
        "slow sink: fetching stopped at {stalled_at} of {total} requests ({written} items), {:?} in all",
        started.elapsed()
    );
    drop(pg);
    shop.shutdown();
}
