//! The per-page CPU budget of the parse stage, on real pages: every HTML
//! page of Debian's python3.11-doc and postgresql-doc-15 (a fixed set,
//! sorted) through the engine's `parse` (charset, the page scanner, link
//! resolution and scope, the page record) and the JSONL serializer, as a
//! crawl does it. Run under callgrind (`bash bench/parse_budget.sh`) it
//! counts the instructions of `measure` only: a figure that does not
//! move with the machine's load, so a regression shows.
//!
//!   cargo run --release -p trawl-engine --example parse_budget

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trawl_core::{CrawlStats, Lease, Request, Scope, ScopeConfig, Url};
use trawl_engine::parse::{Fetched, ParseContext, parse};
use trawl_fetch::FetchOutcome;

const DOCS: [(&str, &str); 2] = [
    (
        "/usr/share/doc/python3.11/html",
        "http://docs.example/python/",
    ),
    (
        "/usr/share/doc/postgresql-doc-15/html",
        "http://docs.example/postgresql/",
    ),
];

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
}

/// Parse every page and serialize its items; returns the bytes written
/// and the links offered (so nothing is optimized away).
#[inline(never)]
fn measure(ctx: &ParseContext, pages: Vec<Fetched>) -> (usize, usize) {
    let mut line = Vec::with_capacity(1 << 16);
    let (mut bytes, mut links) = (0, 0);
    for fetched in pages {
        let parsed = parse(ctx, fetched);
        links += parsed.children.len();
        for item in &parsed.items {
            line.clear();
            if serde_json::to_writer(&mut line, &item.0).is_ok() {
                bytes += line.len() + 1;
            }
        }
    }
    (bytes, links)
}

fn main() {
    let mut pages = Vec::new();
    for (dir, prefix) in DOCS {
        let mut files = Vec::new();
        collect(Path::new(dir), &mut files);
        files.sort();
        let Ok(prefix) = Url::parse(prefix) else {
            continue;
        };
        for file in files {
            let Ok(body) = std::fs::read(&file) else {
                continue;
            };
            let relative = file
                .strip_prefix(dir)
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            let Ok(url) = prefix.join(&relative) else {
                continue;
            };
            pages.push((url, body));
        }
    }
    if pages.len() < 500 {
        eprintln!(
            "parse_budget: {} pages found; install python3.11-doc and postgresql-doc-15",
            pages.len()
        );
        std::process::exit(2);
    }
    let Ok(root) = Url::parse("http://docs.example/") else {
        return;
    };
    let Ok(scope) = Scope::new(&[root], ScopeConfig::default()) else {
        return;
    };
    let ctx = ParseContext {
        scope,
        spider: None,
        max_depth: None,
        stats: Arc::new(CrawlStats::default()),
        pipeline: None,
        render_dir: PathBuf::from("."),
        near_distance: 3,
        simhash: true,
    };
    let count = pages.len();
    let input_bytes: usize = pages.iter().map(|(_, b)| b.len()).sum();
    let fetched: Vec<Fetched> = pages
        .into_iter()
        .enumerate()
        .map(|(i, (url, body))| Fetched {
            lease: Lease {
                id: i as u64,
                host: "docs.example".into(),
                request: Request::seed(url.clone()),
            },
            outcome: FetchOutcome {
                final_url: url,
                status: Some(200),
                content_type: Some("text/html; charset=utf-8".into()),
                etag: None,
                last_modified: None,
                body: body.into(),
                truncated: false,
                redirects: 0,
                retries: 0,
                elapsed: Duration::from_millis(1),
                error: None,
                exchange: None,
                rendered: None,
            },
        })
        .collect();
    let started = Instant::now();
    let (out_bytes, links) = measure(&ctx, fetched);
    let took = started.elapsed();
    println!(
        "{count} pages, {:.1} MB in, {:.1} MB of JSONL out, {links} links offered; {:.1} µs per page",
        input_bytes as f64 / 1e6,
        out_bytes as f64 / 1e6,
        took.as_secs_f64() * 1e6 / count as f64
    );
}
