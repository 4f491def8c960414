//! trawl's Markdown next to trafilatura's (Python, from PyPI; installed by
//! scripts/test.sh) on real documentation pages: trawl keeps at least the
//! text trafilatura keeps, and does better where trafilatura falls short
//! (absolute links, headings without their `¶` anchors, fenced code).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use trawl_extract::readable::main_markdown_at;

const PAGES: [(&str, &str); 2] = [
    (
        "bisect.html",
        "https://docs.python.org/3.11/library/bisect.html",
    ),
    (
        "introduction.html",
        "https://docs.python.org/3.11/tutorial/introduction.html",
    ),
];

fn trafilatura(path: &Path, url: &str) -> String {
    let script = "import sys, trafilatura\n\
        html = open(sys.argv[1], encoding='utf-8').read()\n\
        md = trafilatura.extract(html, output_format='markdown', url=sys.argv[2], include_links=True, include_formatting=True)\n\
        sys.stdout.write(md or '')\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trafilatura failed (run scripts/test.sh, which installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn words(md: &str) -> BTreeSet<String> {
    md.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .collect()
}

fn link_targets(md: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\]\(([^)\s]+)").unwrap();
    re.captures_iter(md).map(|c| c[1].to_string()).collect()
}

#[test]
fn markdown_keeps_what_trafilatura_keeps_and_reads_better() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python-docs");
    for (file, url) in PAGES {
        let path = dir.join(file);
        let html = std::fs::read_to_string(&path).unwrap();
        let ours = main_markdown_at(&html, &url.parse().unwrap());
        let theirs = trafilatura(&path, url);
        assert!(!theirs.is_empty(), "{file}: trafilatura found nothing");

        // The text: nearly every word trafilatura keeps, trawl keeps.
        let (ours_w, theirs_w) = (words(&ours), words(&theirs));
        let kept = theirs_w.intersection(&ours_w).count();
        let recall = kept as f64 / theirs_w.len() as f64;
        let missing: Vec<&String> = theirs_w.difference(&ours_w).take(20).collect();
        assert!(
            recall >= 0.95,
            "{file}: {recall:.3} of trafilatura's words; missing {missing:?}"
        );

        // Links: absolute, none empty.
        for target in link_targets(&ours) {
            assert!(
                target.starts_with("https://") || target.starts_with("http://"),
                "{file}: {target}"
            );
        }
        assert!(!ours.contains("[]("), "{file}");

        // Headings: no self-anchor marks (trafilatura keeps `[¶](…)`).
        for line in ours.lines().filter(|l| l.starts_with('#')) {
            assert!(
                !line.contains('¶') && !line.contains("](#"),
                "{file}: {line}"
            );
        }

        // Code: every example a fenced block, at least as many as theirs.
        let fences = |md: &str| md.matches("```").count() / 2;
        assert!(
            fences(&ours) >= fences(&theirs),
            "{file}: {} vs {}",
            fences(&ours),
            fences(&theirs)
        );
        let pres = html.matches("<pre").count();
        assert!(
            fences(&ours) >= pres.min(1) && fences(&ours) >= pres / 2,
            "{file}: {} fences for {pres} <pre>",
            fences(&ours)
        );
    }
}
