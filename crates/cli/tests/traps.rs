//! Crawler traps, duplicates and revisits, end to end: the real `trawl`
//! binary against the trap site (20,000 products, a 300-page listing and
//! six traps: query and path calendars, session ids in paths, endless
//! pagination, faceted search, relative-link path growth), and recrawls of
//! a `--state` crawl whose pages change, read back with warcio.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{crawl_with_stats, trawl};
use trawl_testsite::{SiteConfig, TRAP_NAMES, TestSite};

/// Requests a trap may take before trawl stops following it.
const TRAP_BUDGET: u64 = 1000;

async fn trap_site(products: usize) -> TestSite {
    TestSite::start(SiteConfig {
        pages: 0,
        traps: true,
        trap_products: products,
        log_requests: false,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn path_of(url: &str) -> String {
    let u = trawl_core::Url::parse(url).unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// With default settings every trap ends within its budget, every real
/// page is found, and no real page is called a duplicate of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_end_early_and_every_real_page_is_found() {
    let site = trap_site(20_000).await;
    let seed = format!("{}/", site.base_url());
    let (code, stderr, stats, items) = tokio::task::spawn_blocking(move || {
        crawl_with_stats(&seed, &["--concurrency".into(), "16".into()])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");

    let traps = site.site().traps();
    let by_path: HashMap<String, &serde_json::Value> = items
        .iter()
        .map(|i| (path_of(i["url"].as_str().unwrap()), i))
        .collect();
    let real = traps.real_paths();
    assert_eq!(real.len(), 1 + 400 + 20_000 + 300 + 20 + 3);
    let missing: Vec<&String> = real.iter().filter(|p| !by_path.contains_key(*p)).collect();
    assert!(
        missing.is_empty(),
        "{} real pages missed: {missing:?}",
        missing.len()
    );
    for path in &real {
        let item = by_path[path];
        assert!(
            item["duplicate_of"].is_null() && item["near_duplicate_of"].is_null(),
            "real page {path} called a duplicate: {item}"
        );
        assert!(
            item["simhash"].as_str().is_some_and(|h| h.len() == 16),
            "{item}"
        );
    }
    // The session pages' content is real too: each title is found.
    let titles: HashSet<&str> = items.iter().filter_map(|i| i["title"].as_str()).collect();
    for title in traps.session_titles() {
        assert!(titles.iter().any(|t| t.contains(title)), "{title}");
    }

    // Every trap was entered and ended within its budget.
    let by_trap = site.stats().by_trap;
    for name in TRAP_NAMES {
        let spent = by_trap.get(name).copied().unwrap_or(0);
        assert!(spent > 0, "{name} never entered: {by_trap:?}");
        assert!(
            spent <= TRAP_BUDGET,
            "{name}: {spent} requests: {by_trap:?}"
        );
    }
    // The trapped patterns are reported with their counts.
    let reported: Vec<&str> = stats["traps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["pattern"].as_str().unwrap())
        .collect();
    for pattern in [
        "/calendar?d=*",
        "/events/{n}/",
        "/s/{hex}/home",
        "/archive?page=*",
        "/search?",
    ] {
        assert!(
            reported.iter().any(|r| r.contains(pattern)),
            "{pattern} not in {reported:?}"
        );
    }
    for t in stats["traps"].as_array().unwrap() {
        assert!(t["pages"].as_u64().unwrap() >= t["duplicates"].as_u64().unwrap());
    }
    assert!(stats["trap_blocked"].as_u64().unwrap() > 0);
    // Trap pages are near-duplicates of an earlier page of their trap.
    let calendar_dups = items
        .iter()
        .filter(|i| i["url"].as_str().unwrap().contains("/calendar?d="))
        .filter(|i| {
            i["near_duplicate_of"]
                .as_str()
                .or(i["duplicate_of"].as_str())
                .is_some_and(|of| of.contains("/calendar?d="))
        })
        .count();
    assert!(calendar_dups > 20, "{calendar_dups}");
    assert_eq!(
        stats["near_duplicate_pages"].as_u64().unwrap()
            + stats["duplicate_pages"].as_u64().unwrap(),
        items
            .iter()
            .filter(|i| !i["near_duplicate_of"].is_null() || !i["duplicate_of"].is_null())
            .count() as u64
    );
    site.shutdown().await;
}

/// Without trap detection the calendar goes on (here until the page
/// limit), which is what the detector saves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trap_detection_traps_run_on() {
    let site = trap_site(200).await;
    let seed = format!("{}/", site.base_url());
    let (code, stderr, stats, _) = tokio::task::spawn_blocking(move || {
        crawl_with_stats(
            &seed,
            &["--no-traps".into(), "--max-pages".into(), "4000".into()],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stats["traps"].as_array().unwrap().len(), 0);
    assert_eq!(stats["pages"], 4000);
    let by_trap = site.stats().by_trap;
    let spent: u64 = by_trap.values().sum();
    assert!(spent > 3000, "{by_trap:?}");
    site.shutdown().await;
}

/// `--duplicates skip`: duplicates are neither written nor followed, and
/// still every real page is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipping_duplicates_keeps_every_real_page() {
    let site = trap_site(300).await;
    let seed = format!("{}/", site.base_url());
    let (code, stderr, stats, items) = tokio::task::spawn_blocking(move || {
        crawl_with_stats(&seed, &["--duplicates".into(), "skip".into()])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        items
            .iter()
            .all(|i| i["duplicate_of"].is_null() && i["near_duplicate_of"].is_null())
    );
    let dropped = stats["items_dropped"].as_u64().unwrap();
    assert!(dropped > 0);
    assert_eq!(
        dropped,
        stats["duplicate_pages"].as_u64().unwrap()
            + stats["near_duplicate_pages"].as_u64().unwrap()
    );
    let found: HashSet<String> = items
        .iter()
        .map(|i| path_of(i["url"].as_str().unwrap()))
        .collect();
    let real = site.site().traps().real_paths();
    let missing: Vec<&String> = real.iter().filter(|p| !found.contains(*p)).collect();
    assert!(missing.is_empty(), "{missing:?}");
    site.shutdown().await;
}

const WARC_REVISITS: &str = r#"
import sys, json
from warcio.archiveiterator import ArchiveIterator
out = {'responses': [], 'revisits': []}
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        for r in ArchiveIterator(f, check_digests='raise'):
            r.content_stream().read()
            h = r.rec_headers
            if r.rec_type == 'response':
                out['responses'].append(h.get_header('WARC-Target-URI'))
            elif r.rec_type == 'revisit':
                out['revisits'].append({
                    'uri': h.get_header('WARC-Target-URI'),
                    'profile': h.get_header('WARC-Profile'),
                    'refers_to': h.get_header('WARC-Refers-To-Target-URI'),
                    'refers_date': h.get_header('WARC-Refers-To-Date'),
                    'payload_digest': h.get_header('WARC-Payload-Digest'),
                    'status': int(r.http_headers.get_statuscode()),
                })
print(json.dumps(out))
"#;

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Wait until `deadline` (a point in time the revisit intervals depend on).
fn sleep_until(deadline: Instant) {
    if let Some(left) = deadline.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

/// Recrawls classify every revisited page (unchanged: 304 or the same
/// body; near-duplicate change; changed), archive unchanged pages as WARC
/// revisit records, and `--due` revisits only the pages whose adaptive
/// interval has run out: after a recrawl, the pages that changed are due
/// again sooner than those that did not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recrawls_classify_changes_and_revisit_what_is_due() {
    let site = TestSite::start(SiteConfig {
        pages: 60,
        ..Default::default()
    })
    .await
    .unwrap();
    let (near, changed) = (3u32, 7u32);
    // Page `near` has a revision line from the start, so its next touch
    // changes a number only.
    site.touch(near);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let seed = format!("{}/", site.base_url());
    // Intervals of 4 s (adapting between 4 s and 1 h): wide enough that a
    // debug crawl of 60 pages never spans one.
    let run = move |n: u32, extra: &[&str]| {
        let out = dir_path(&state, &format!("items{n}.jsonl"));
        let stats = dir_path(&state, &format!("stats{n}.json"));
        let warc = dir_path(&state, &format!("warc{n}"));
        let status = trawl()
            .args(["crawl", &seed, "-q", "--state"])
            .arg(&state)
            .args([
                "--revisit-interval",
                "4s",
                "--revisit-min",
                "4s",
                "--revisit-max",
                "1h",
            ])
            .arg("-o")
            .arg(&out)
            .arg("--stats-json")
            .arg(&stats)
            .arg("--sink")
            .arg(format!("warc:{}", warc.display()))
            .args(extra)
            .status()
            .unwrap();
        assert!(status.success());
        let stats: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        (jsonl(&out), stats, warc)
    };
    let page = |items: &[serde_json::Value], i: u32| -> serde_json::Value {
        let path = format!("/p/{i}");
        items
            .iter()
            .find(|it| it["url"].as_str().unwrap().ends_with(&path))
            .cloned()
            .unwrap_or_else(|| panic!("{path} not crawled"))
    };

    let truth = site.site().ground_truth().len();
    let (first, _, _) = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run(1, &[]))
            .await
            .unwrap()
    };
    let first_done = Instant::now();
    assert_eq!(first.len(), truth);
    assert!(
        first.iter().all(|i| i["change"].is_null()),
        "a first visit is no revisit"
    );

    // Nothing is due right after the crawl.
    let (none, _, _) = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run(2, &["--recrawl", "--due"]))
            .await
            .unwrap()
    };
    assert!(none.is_empty(), "{} items", none.len());

    // Change two pages; once the first interval ran out, all are due.
    site.touch(near);
    site.rewrite(changed);
    let (second, stats, warc) = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || {
            sleep_until(first_done + Duration::from_secs(5));
            run(3, &["--recrawl", "--due"])
        })
        .await
        .unwrap()
    };
    let second_done = Instant::now();
    assert_eq!(second.len(), truth, "every page was due");
    assert_eq!(page(&second, near)["change"], "near_duplicate_change");
    assert_eq!(page(&second, changed)["change"], "changed");
    let unchanged: Vec<&serde_json::Value> = second
        .iter()
        .filter(|i| i["change"] == "unchanged")
        .collect();
    assert_eq!(unchanged.len(), truth - 2);
    assert_eq!(stats["unchanged"], unchanged.len());
    assert_eq!(stats["near_duplicate_changes"], 1);
    assert_eq!(stats["changed"], 1);
    // Unchanged pages are WARC revisits: 304s by the server, the rest by
    // their identical payload.
    let archived = common::warcio(&warc, WARC_REVISITS);
    let revisits = archived["revisits"].as_array().unwrap();
    assert_eq!(revisits.len(), unchanged.len());
    for r in revisits {
        let uri = r["uri"].as_str().unwrap();
        assert_eq!(r["refers_to"], uri);
        assert!(r["refers_date"].as_str().is_some(), "{r}");
        if r["status"] == 304 {
            assert!(
                r["profile"]
                    .as_str()
                    .unwrap()
                    .ends_with("/revisit/server-not-modified")
            );
        } else {
            assert!(
                r["profile"]
                    .as_str()
                    .unwrap()
                    .ends_with("/revisit/identical-payload-digest")
            );
            assert!(r["payload_digest"].as_str().unwrap().starts_with("sha1:"));
        }
    }
    let responses: HashSet<String> = archived["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| path_of(u.as_str().unwrap()))
        .collect();
    assert_eq!(
        responses,
        HashSet::from([format!("/p/{near}"), format!("/p/{changed}")])
    );

    // Unchanged pages now wait 8 s, changed ones 4 s: only those two are
    // due 5 s later.
    let (third, _, _) = tokio::task::spawn_blocking(move || {
        sleep_until(second_done + Duration::from_secs(5));
        run(4, &["--recrawl", "--due"])
    })
    .await
    .unwrap();
    let revisited: HashSet<String> = third
        .iter()
        .map(|i| path_of(i["url"].as_str().unwrap()))
        .collect();
    assert_eq!(
        revisited,
        HashSet::from([format!("/p/{near}"), format!("/p/{changed}")]),
        "only the pages that changed are due"
    );
    site.shutdown().await;
}

fn dir_path(state: &Path, name: &str) -> PathBuf {
    state.parent().unwrap().join(name)
}
