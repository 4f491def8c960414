//! Every sink end to end: one spider run writes JSONL, CSV, WARC and
//! PostgreSQL at once, and each output is read back by an independent
//! reader (Python's csv module, warcio, psql) and compared item for item;
//! a crawl killed with `kill -9` and resumed stores every item once in each.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{line_count, read_jsonl, trawl};
use serde_json::Value;
use trawl_testsite::{SiteConfig, TestSite};

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn spider_file(base: &str, extra: &str) -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/spiders/shop.toml"
    ))
    .unwrap();
    // The example's [settings] table comes last; outputs are set by the test.
    let example = example
        .replace("http://127.0.0.1:8080", base)
        .replace("output = \"shop-items.jsonl\"\n", "")
        .replace("errors = \"shop-errors.jsonl\"\n", "");
    format!("{example}\n{extra}")
}

fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-At",
            "-c",
            sql,
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A table prefix no other test run uses.
fn unique_prefix(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t_{what}_{}_{nanos}_", std::process::id())
}

/// Python's csv module compares the CSV file with the JSONL items: same
/// header (url, then the spider's fields in file order), one row per item,
/// every cell as the CSV sink documents (strings as is, numbers and
/// booleans as JSON, arrays/objects as compact JSON, missing as empty).
const CSV_CHECK: &str = r#"
import csv, json, sys
items = {}
for line in open(sys.argv[1], encoding='utf-8'):
    it = json.loads(line)
    items[it['url']] = it
with open(sys.argv[2], newline='', encoding='utf-8') as f:
    reader = csv.reader(f)
    header = next(reader)
    rows = list(reader)
def cell(v):
    if v is None: return ''
    if isinstance(v, str): return v
    if isinstance(v, bool): return 'true' if v else 'false'
    return json.dumps(v, separators=(',', ':'), ensure_ascii=False)
seen = set()
for row in rows:
    assert len(row) == len(header), ('ragged row', row)
    rec = dict(zip(header, row))
    url = rec['url']
    assert url not in seen, ('twice', url)
    seen.add(url)
    it = items[url]
    for col in header:
        assert rec[col] == cell(it.get(col)), (url, col, rec[col], cell(it.get(col)))
assert seen == set(items), ('rows vs items', len(seen), len(items))
print(json.dumps({'header': header, 'rows': len(rows)}))
"#;

fn check_csv(jsonl: &Path, csv: &Path) -> Value {
    let out = Command::new("python3")
        .args(["-c", CSV_CHECK])
        .arg(jsonl)
        .arg(csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "CSV check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// warcio reads every record with `check_digests='raise'` and reports the
/// responses (URI, status, payload length) and the metadata records' JSON.
const WARC_READ: &str = r#"
import sys, json
from warcio.archiveiterator import ArchiveIterator
out = {'responses': [], 'requests': 0, 'metadata': [], 'warcinfo': 0}
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        for r in ArchiveIterator(f, check_digests='raise'):
            body = r.content_stream().read()
            if r.rec_type == 'response':
                out['responses'].append({
                    'uri': r.rec_headers.get_header('WARC-Target-URI'),
                    'status': int(r.http_headers.get_statuscode()),
                    'len': len(body),
                    'digest_ok': r.digest_checker.passed,
                })
            elif r.rec_type == 'request':
                out['requests'] += 1
            elif r.rec_type == 'metadata':
                out['metadata'].append(json.loads(body))
            elif r.rec_type == 'warcinfo':
                out['warcinfo'] += 1
print(json.dumps(out))
"#;

fn read_warc(dir: &Path) -> Value {
    common::warcio(dir, WARC_READ)
}

fn by_url(items: &[Value]) -> BTreeMap<String, Value> {
    items
        .iter()
        .map(|i| (i["url"].as_str().unwrap().to_string(), i.clone()))
        .collect()
}

/// The typed PostgreSQL columns of every row, as JSON.
fn pg_rows(table: &str) -> BTreeMap<String, Value> {
    let json = psql(&format!(
        "select coalesce(json_agg(json_build_object('url', url, 'sku', sku, 'price', price, \
         'reviews', reviews, 'in_stock', in_stock, 'released', released, 'tags', tags, \
         'name', name, 'item', item)), '[]') from {table}"
    ));
    let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
    let map = by_url(&rows);
    assert_eq!(map.len(), rows.len(), "a url twice in {table}");
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sink_round_trips_the_shop() {
    let site = TestSite::start(SiteConfig {
        pages: 10,
        shop: true,
        shop_products: 60,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prefix = unique_prefix("rt");
    // CSV and WARC come from the spider file, PostgreSQL from the command line.
    let extra = format!(
        "[[sinks]]\ntype = \"csv\"\npath = \"{}\"\n\n[[sinks]]\ntype = \"warc\"\ndir = \"{}\"\n",
        d.join("items.csv").display(),
        d.join("warc").display()
    );
    std::fs::write(d.join("shop.toml"), spider_file(&site.base_url(), &extra)).unwrap();
    let out = {
        let (d, prefix) = (d.to_path_buf(), prefix.clone());
        tokio::task::spawn_blocking(move || {
            trawl()
                .arg("run")
                .arg(d.join("shop.toml"))
                .arg("-o")
                .arg(d.join("items.jsonl"))
                .arg("--errors")
                .arg(d.join("errors.jsonl"))
                .arg("--sink")
                .arg(format!("{PG},table_prefix={prefix}"))
                .arg("--stats-json")
                .arg(d.join("stats.json"))
                .arg("--batch-size")
                .arg("16")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");

    // JSONL: one item per product (the shop spider's own test checks fields).
    let items = read_jsonl(&d.join("items.jsonl"));
    let products = site.site().products();
    assert_eq!(items.len(), products.len());
    let items_by_url = by_url(&items);
    assert_eq!(items_by_url.len(), items.len());

    // CSV: read by Python's csv module, equal to the JSONL cell for cell,
    // columns in the spider's field order.
    let csv = check_csv(&d.join("items.jsonl"), &d.join("items.csv"));
    assert_eq!(csv["rows"], products.len());
    let header: Vec<&str> = csv["header"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(
        &header[..5],
        &["url", "name", "price", "currency", "sku"],
        "{header:?}"
    );
    assert_eq!(header.last(), Some(&"json_ld"));

    // PostgreSQL: table <prefix>product with typed columns, one row per item.
    let table = format!("{prefix}product");
    let rows = pg_rows(&table);
    assert_eq!(rows.len(), products.len());
    for (url, item) in &items_by_url {
        let row = &rows[url];
        assert_eq!(row["sku"], item["sku"], "{url}");
        assert!(
            (row["price"].as_f64().unwrap() - item["price"].as_f64().unwrap()).abs() < 1e-9,
            "{url}"
        );
        assert_eq!(row["reviews"], item["reviews"], "{url}");
        assert_eq!(row["in_stock"], item["in_stock"], "{url}");
        assert_eq!(row["released"], item["released"], "{url}");
        assert_eq!(row["tags"], item["tags"], "{url}");
        assert_eq!(row["name"], item["name"], "{url}");
        assert_eq!(&row["item"], item, "{url}: the jsonb column holds the item");
    }
    let types = psql(&format!(
        "select string_agg(column_name || ':' || data_type, ',' order by ordinal_position) \
         from information_schema.columns where table_name = '{table}'"
    ));
    for col in [
        "url:text",
        "price:double precision",
        "reviews:bigint",
        "in_stock:boolean",
        "released:date",
        "tags:jsonb",
        "item:jsonb",
    ] {
        assert!(types.contains(col), "{col} not in {types}");
    }

    // WARC: warcio reads every record with digests checked; one response per
    // page fetched (listings and products), each item as a metadata record.
    let warc = read_warc(&d.join("warc"));
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("stats.json")).unwrap()).unwrap();
    let responses = warc["responses"].as_array().unwrap();
    assert_eq!(responses.len() as u64, stats["pages"].as_u64().unwrap());
    assert_eq!(warc["requests"].as_u64(), Some(responses.len() as u64));
    assert!(responses.iter().all(|r| r["digest_ok"] == true));
    let uris: BTreeSet<&str> = responses
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris.len(), responses.len(), "a response archived twice");
    for p in &products {
        let url = format!("{}{}", site.base_url(), p.path);
        assert!(uris.contains(url.as_str()), "{url} not archived");
    }
    let metadata = warc["metadata"].as_array().unwrap();
    assert_eq!(by_url(metadata), items_by_url, "metadata records = items");

    // Per-sink stats in the stats file and the summary.
    let sinks = stats["sinks"].as_array().unwrap();
    let kinds: Vec<&str> = sinks
        .iter()
        .map(|s| s["name"].as_str().unwrap().split(':').next().unwrap())
        .collect();
    // `-o`, then `--sink`s, then the spider file's, then the error output.
    assert_eq!(kinds, ["jsonl", "postgres", "csv", "warc", "jsonl"]);
    for s in &sinks[..4] {
        assert!(s["batches"].as_u64().unwrap() >= 1, "{s}");
        assert_eq!(s["retries"], 0, "{s}");
        assert_eq!(s["dead_lettered"], 0, "{s}");
    }
    assert_eq!(sinks[0]["items"].as_u64(), Some(products.len() as u64));
    assert_eq!(sinks[1]["items"].as_u64(), Some(products.len() as u64));
    assert_eq!(sinks[2]["items"].as_u64(), Some(products.len() as u64));
    assert!(sinks[0]["bytes"].as_u64().unwrap() > 0);
    assert!(stderr.contains("sink          csv:"), "{stderr}");

    psql(&format!("drop table {table}"));
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_resume_store_each_item_once_in_every_sink() {
    let site = TestSite::start(SiteConfig {
        pages: 10,
        shop: true,
        shop_products: 400,
        latency: Some(Duration::from_millis(10)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let prefix = unique_prefix("k9");
    std::fs::write(d.join("shop.toml"), spider_file(&site.base_url(), "")).unwrap();
    let run = {
        let (d, prefix) = (d.clone(), prefix.clone());
        move |extra: &[&str]| {
            let mut cmd = trawl();
            cmd.arg("run")
                .arg(d.join("shop.toml"))
                .args(["-q", "--concurrency", "8", "--per-host", "8"])
                .args(["--batch-size", "8"])
                .arg("-o")
                .arg(d.join("items.jsonl"))
                .arg("--errors")
                .arg(d.join("errors.jsonl"))
                .arg("--state")
                .arg(d.join("state"))
                .arg("--sink")
                .arg(format!("csv:{}", d.join("items.csv").display()))
                .arg("--sink")
                .arg(format!(
                    "warc:{},rotate_bytes=200000",
                    d.join("warc").display()
                ))
                .arg("--sink")
                .arg(format!("{PG},table_prefix={prefix}"))
                .args(extra)
                .stdout(Stdio::null());
            cmd
        }
    };
    let probe = d.join("items.jsonl");
    for kill_at in [0usize, 60, 200] {
        let stderr_log = d.join(format!("stderr-{kill_at}.log"));
        let mut child = run(&[])
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .unwrap();
        let probe = probe.clone();
        let finished = tokio::task::spawn_blocking(move || {
            let end = Instant::now() + Duration::from_secs(60);
            loop {
                if line_count(&probe) >= kill_at {
                    let _ = Command::new("kill")
                        .args(["-KILL", &child.id().to_string()])
                        .status();
                    child.wait().unwrap();
                    return None;
                }
                if let Some(status) = child.try_wait().unwrap() {
                    return Some((status, line_count(&probe)));
                }
                assert!(Instant::now() < end, "no progress to {kill_at} items");
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .await
        .unwrap();
        if let Some((status, lines)) = finished {
            panic!(
                "the crawl ended ({status}, {lines} items) before the kill at {kill_at}: {}",
                std::fs::read_to_string(&stderr_log).unwrap_or_default()
            );
        }
    }
    let out = tokio::task::spawn_blocking(move || {
        run(&["--resume"]).stderr(Stdio::piped()).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let products = site.site().products();
    let expected: BTreeSet<String> = products
        .iter()
        .map(|p| format!("{}{}", site.base_url(), p.path))
        .collect();
    // JSONL: each product once.
    let items = read_jsonl(&d.join("items.jsonl"));
    let urls: BTreeSet<String> = items
        .iter()
        .map(|i| i["url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls.len(), items.len(), "an item twice in the JSONL");
    assert_eq!(urls, expected);
    // CSV: every row once and equal to the JSONL (Python's csv module).
    let csv = check_csv(&d.join("items.jsonl"), &d.join("items.csv"));
    assert_eq!(csv["rows"], products.len());
    // WARC across rotated files: every page's response once, every item's
    // metadata record once.
    let warc = read_warc(&d.join("warc"));
    let responses = warc["responses"].as_array().unwrap();
    let uris: BTreeSet<&str> = responses
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris.len(), responses.len(), "a response archived twice");
    assert!(expected.iter().all(|u| uris.contains(u.as_str())));
    let metadata = warc["metadata"].as_array().unwrap();
    assert_eq!(metadata.len(), products.len(), "metadata records");
    assert_eq!(by_url(metadata).len(), products.len());
    assert!(warc["warcinfo"].as_u64().unwrap() >= 2, "rotation happened");
    // PostgreSQL: one row per product (upsert on url).
    let table = format!("{prefix}product");
    let rows = pg_rows(&table);
    let pg_urls: BTreeSet<String> = rows.keys().cloned().collect();
    assert_eq!(pg_urls, expected);
    psql(&format!("drop table {table}"));
    site.shutdown().await;
}

#[test]
fn unusable_outputs_are_clear_errors_before_the_crawl() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (
            "parquet:x".to_string(),
            "unknown sink type \"parquet\"".to_string(),
        ),
        (
            "csv:x.csv,gzipp".to_string(),
            "unknown field `gzipp`".to_string(),
        ),
        (
            format!("csv:{}", dir.path().join("no/such/dir/x.csv").display()),
            "No such file or directory".to_string(),
        ),
        (
            format!("postgres://postgres@127.0.0.1:{free_port}/test"),
            "Connection refused".to_string(),
        ),
        (
            "postgres://no_such_role@127.0.0.1:5432/test".to_string(),
            "role \"no_such_role\" does not exist".to_string(),
        ),
    ];
    for (spec, expected) in cases {
        // The seed is never contacted: outputs are opened first.
        let out = trawl()
            .args(["crawl", "http://127.0.0.1:9/", "-q", "--sink", &spec])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert!(stderr.contains(&expected), "{spec}: {stderr}");
        assert_eq!(stderr.matches(&expected).count(), 1, "said twice: {stderr}");
    }
}
