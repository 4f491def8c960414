//! `render = "auto"`: which plain-HTTP pages need the browser.
//!
//! A page needs rendering when a selector its rule requires is missing,
//! when its `<body>` is almost empty but has scripts (an app shell), when
//! an app's mount point (`#root`, `#app`, `#__next`, `[ng-app]`…) is empty,
//! or when a `<noscript>` says JavaScript is needed. What each URL pattern
//! needed is remembered: once a pattern's pages have needed rendering
//! again and again, its next pages are rendered without the check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use scraper::{Html, Selector};

/// Less visible body text than this, with scripts, is an app shell.
const SHELL_TEXT: usize = 200;
/// A pattern is rendered unchecked after this many pages needed it…
const LEARN_AFTER: u32 = 3;
/// …when at least this share of its checked pages did.
const LEARN_SHARE: f64 = 0.9;
/// Patterns remembered.
const MAX_PATTERNS: usize = 10_000;

/// Why a page was rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `render = "always"`.
    Always,
    /// The page has no element for a required selector.
    Missing(String),
    /// Almost no text but scripts.
    EmptyShell,
    /// An app's mount point with nothing in it.
    EmptyMount(String),
    /// A `<noscript>` asks for JavaScript.
    Noscript,
    /// Pages of this URL pattern needed rendering before.
    Learned(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Always => write!(f, "always"),
            Reason::Missing(s) => write!(f, "required selector `{s}` missing"),
            Reason::EmptyShell => write!(f, "almost empty body with scripts"),
            Reason::EmptyMount(s) => write!(f, "empty app mount `{s}`"),
            Reason::Noscript => write!(f, "noscript asks for JavaScript"),
            Reason::Learned(p) => write!(f, "pattern {p} needed rendering before"),
        }
    }
}

/// Whether `html` (a page fetched over plain HTTP) needs rendering.
pub fn needs_rendering(html: &str, require: &[String]) -> Option<Reason> {
    let doc = Html::parse_document(html);
    for sel in require {
        match Selector::parse(sel) {
            Ok(s) if doc.select(&s).next().is_none() => return Some(Reason::Missing(sel.clone())),
            _ => {}
        }
    }
    let has_scripts = sel("script").is_some_and(|s| doc.select(&s).next().is_some());
    if !has_scripts {
        return None;
    }
    for mount in [
        "#root",
        "#app",
        "#__next",
        "#__nuxt",
        "[ng-app]",
        "[data-reactroot]",
    ] {
        if let Some(s) = sel(mount)
            && let Some(el) = doc.select(&s).next()
            && el.children().all(|c| {
                c.value().as_text().is_some_and(|t| t.trim().is_empty()) || c.value().is_comment()
            })
        {
            return Some(Reason::EmptyMount(mount.to_string()));
        }
    }
    if let Some(s) = sel("noscript") {
        for ns in doc.select(&s) {
            let text = ns.text().collect::<String>().to_ascii_lowercase();
            if text.contains("javascript") {
                return Some(Reason::Noscript);
            }
        }
    }
    if visible_text_len(&doc) < SHELL_TEXT {
        return Some(Reason::EmptyShell);
    }
    None
}

fn sel(s: &str) -> Option<Selector> {
    Selector::parse(s).ok()
}

/// Characters of text in `<body>` outside scripts, styles and noscripts.
fn visible_text_len(doc: &Html) -> usize {
    let Some(body) = sel("body").and_then(|s| doc.select(&s).next()) else {
        return 0;
    };
    let mut n = 0;
    for node in body.descendants() {
        if let Some(text) = node.value().as_text() {
            let hidden = node.ancestors().any(|a| {
                a.value().as_element().is_some_and(|e| {
                    matches!(e.name(), "script" | "style" | "noscript" | "template")
                })
            });
            if !hidden {
                n += text.split_whitespace().map(|w| w.len() + 1).sum::<usize>();
            }
        }
    }
    n
}

/// The pattern a URL's page belongs to: host and path, with segments that
/// hold digits (ids, dates, page numbers) generalised and the last segment
/// dropped when it is a file of a directory.
pub fn url_pattern(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    let segments: Vec<&str> = url.path().split('/').collect();
    let mut out = String::from(host);
    for (i, seg) in segments.iter().enumerate() {
        if i == 0 {
            continue;
        }
        out.push('/');
        if seg.chars().any(|c| c.is_ascii_digit()) || (i == segments.len() - 1 && seg.contains('.'))
        {
            out.push('*');
        } else {
            out.push_str(seg);
        }
    }
    out
}

#[derive(Default, Clone, Copy)]
struct Seen {
    needed: u32,
    plain: u32,
}

/// What `auto` learned and did, per URL pattern.
#[derive(Default)]
pub struct AutoMemory {
    patterns: parking_lot::Mutex<HashMap<String, Seen>>,
    /// Pages served plain, and their fetch time (ms).
    pub plain: AtomicU64,
    pub plain_ms: AtomicU64,
    /// Pages rendered because they needed it, and their total time (ms,
    /// fetch + render).
    pub rendered: AtomicU64,
    pub rendered_ms: AtomicU64,
    /// Of those, rendered on what the pattern learned, unchecked.
    pub learned: AtomicU64,
}

impl AutoMemory {
    /// Whether the URL's pattern is known to need rendering.
    pub fn known(&self, url: &url::Url) -> Option<Reason> {
        let pattern = url_pattern(url);
        let seen = self.patterns.lock().get(&pattern).copied()?;
        let checked = seen.needed + seen.plain;
        (seen.needed >= LEARN_AFTER && f64::from(seen.needed) / f64::from(checked) >= LEARN_SHARE)
            .then_some(Reason::Learned(pattern))
    }

    /// Records what a check found.
    pub fn learn(&self, url: &url::Url, needed: bool) {
        let pattern = url_pattern(url);
        let mut p = self.patterns.lock();
        if p.len() >= MAX_PATTERNS && !p.contains_key(&pattern) {
            return;
        }
        let seen = p.entry(pattern).or_default();
        if needed {
            seen.needed += 1;
        } else {
            seen.plain += 1;
        }
    }

    /// Counts one page and what it cost.
    pub fn count(&self, rendered: bool, learned: bool, ms: u64) {
        if rendered {
            self.rendered.fetch_add(1, Ordering::Relaxed);
            self.rendered_ms.fetch_add(ms, Ordering::Relaxed);
            if learned {
                self.learned.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            self.plain.fetch_add(1, Ordering::Relaxed);
            self.plain_ms.fetch_add(ms, Ordering::Relaxed);
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let avg = |total: u64, n: u64| total.checked_div(n).unwrap_or(0);
        serde_json::json!({
            "plain": get(&self.plain),
            "plain_avg_ms": avg(get(&self.plain_ms), get(&self.plain)),
            "rendered": get(&self.rendered),
            "rendered_avg_ms": avg(get(&self.rendered_ms), get(&self.rendered)),
            "rendered_by_pattern": get(&self.learned),
            "patterns": self.patterns.lock().len(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn para(n: usize) -> String {
        "<p>Some real server-rendered words here.</p>".repeat(n)
    }

    #[test]
    fn server_rendered_pages_stay_plain() {
        let html = format!(
            "<html><body><h1>Docs</h1>{}<script src=/a.js></script></body></html>",
            para(10)
        );
        assert_eq!(needs_rendering(&html, &[]), None);
        // No scripts: nothing a browser could add.
        assert_eq!(needs_rendering("<html><body></body></html>", &[]), None);
    }

    #[test]
    fn app_shells_mounts_noscript_and_missing_selectors_need_rendering() {
        let shell = "<html><body><div id=x></div><script src=/app.js></script></body></html>";
        assert_eq!(needs_rendering(shell, &[]), Some(Reason::EmptyShell));
        let mount = format!(
            "<html><body><nav>{}</nav><div id=\"root\"> </div><script src=/m.js></script></body></html>",
            para(10)
        );
        assert_eq!(
            needs_rendering(&mount, &[]),
            Some(Reason::EmptyMount("#root".into()))
        );
        let ns = format!(
            "<html><body>{}<noscript>Please enable JavaScript to view the list.</noscript><script>1</script></body></html>",
            para(10)
        );
        assert_eq!(needs_rendering(&ns, &[]), Some(Reason::Noscript));
        let full = format!("<html><body>{}</body></html>", para(10));
        assert_eq!(
            needs_rendering(&full, &["ul.products li".to_string()]),
            Some(Reason::Missing("ul.products li".into()))
        );
    }

    #[test]
    fn patterns_generalise_ids_and_learn_after_a_few_pages() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(url_pattern(&u("http://a.test/p/123/x")), "a.test/p/*/x");
        assert_eq!(
            url_pattern(&u("http://a.test/js/page-7.html")),
            "a.test/js/*"
        );
        assert_eq!(url_pattern(&u("http://a.test/js/list.html")), "a.test/js/*");
        let m = AutoMemory::default();
        for i in 0..3 {
            assert!(
                m.known(&u(&format!("http://a.test/js/p{i}.html")))
                    .is_none()
            );
            m.learn(&u(&format!("http://a.test/js/p{i}.html")), true);
        }
        assert!(matches!(
            m.known(&u("http://a.test/js/p9.html")),
            Some(Reason::Learned(_))
        ));
        // A pattern whose pages mostly did not need it is checked each time.
        for i in 0..5 {
            m.learn(&u(&format!("http://a.test/docs/d{i}.html")), i == 0);
        }
        assert!(m.known(&u("http://a.test/docs/d7.html")).is_none());
    }
}
