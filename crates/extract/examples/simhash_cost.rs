//! What the SimHash adds to the page scanner, in time, on real pages:
//! every HTML page of Debian's python3.11-doc and postgresql-doc-15
//! through `extract_page_with` with and without the SimHash, passes
//! interleaved, the best pass of each kept (a busy machine only slows a
//! pass down).
//!
//!   cargo run --release -p trawl-extract --example simhash_cost [PASSES]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trawl_core::Url;
use trawl_extract::html::extract_page_with;

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

fn pass(pages: &[(Url, String)], simhash: bool) -> (Duration, usize) {
    let start = Instant::now();
    let mut links = 0;
    for (url, html) in pages {
        let info = extract_page_with(url, html, simhash);
        links += info.links().len() + info.simhash.map_or(0, |h| (h & 1) as usize);
    }
    (start.elapsed(), links)
}

fn main() {
    let passes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let mut files = Vec::new();
    collect(Path::new("/usr/share/doc/python3.11/html"), &mut files);
    collect(
        Path::new("/usr/share/doc/postgresql-doc-15/html"),
        &mut files,
    );
    files.sort();
    let pages: Vec<(Url, String)> = files
        .iter()
        .filter_map(|f| {
            let html = std::fs::read_to_string(f).ok()?;
            let url = Url::parse(&format!("http://docs.example{}", f.display())).ok()?;
            Some((url, html))
        })
        .collect();
    if pages.is_empty() {
        eprintln!("no pages: apt-get install python3.11-doc postgresql-doc-15");
        std::process::exit(1);
    }
    let (mut with, mut without) = (Duration::MAX, Duration::MAX);
    let mut check = 0;
    for _ in 0..passes {
        let (t, n) = pass(&pages, false);
        without = without.min(t);
        let (t, m) = pass(&pages, true);
        with = with.min(t);
        check += n + m;
    }
    let per_page = |d: Duration| d.as_nanos() as f64 / pages.len() as f64 / 1000.0;
    println!(
        "{} pages, best of {passes} passes: scanner {:.1} µs/page, with SimHash {:.1} µs/page: +{:.1} µs (+{:.1} %)  [{check}]",
        pages.len(),
        per_page(without),
        per_page(with),
        per_page(with) - per_page(without),
        100.0 * (with.as_secs_f64() / without.as_secs_f64() - 1.0),
    );
}
