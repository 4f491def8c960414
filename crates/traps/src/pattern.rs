//! A URL generalised to its pattern, so that the pages of one template
//! (a calendar's days, a listing's pages, one page under many session ids)
//! are counted together.
//!
//! - the host (with its port) stays;
//! - in each path segment a hex id (8+ hex digits with a digit) becomes
//!   `{hex}`, a long token of letters and digits (12+) `{id}`, and every
//!   other run of digits `{n}` (so `2026-12-04` is `{n}-{n}-{n}` and
//!   `page-7.html` is `page-{n}.html`);
//! - a segment met before in the same path becomes `…`, and repeats of
//!   `…` fold into one (`/a/b/a/b/a/` is `/a/b/…`): a path that grows by
//!   relative links stays one pattern;
//! - query keys are sorted and every value is `*` (`?b=2&a=1` is
//!   `?a=*&b=*`).
//!
//! The *family* is the pattern without its query, for templates whose
//! query keys come in many combinations (faceted search); the
//! *directory* is the family up to its last `/`, for templates that link
//! to their siblings (`/s/{hex}/home` → `/s/{hex}/about`).

use trawl_core::Url;

/// The pattern of one URL at three widths.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlPattern {
    /// Host, generalised path and sorted query keys.
    pub key: String,
    /// Host and generalised path.
    pub family: String,
    /// The family up to (and with) its last `/`.
    pub directory: String,
}

/// The pattern of `url`.
pub fn pattern_of(url: &Url) -> UrlPattern {
    let mut family = String::with_capacity(url.as_str().len());
    family.push_str(url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        use std::fmt::Write as _;
        let _ = write!(family, ":{port}");
    }
    // Where each segment kept stands in `family`, to spot repeats without
    // a string per segment (this runs for every page).
    let mut kept: Vec<(usize, usize)> = Vec::new();
    let path = url.path();
    let trailing = path.ends_with('/') && path.len() > 1;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let start = family.len();
        family.push('/');
        generalise_into(segment, &mut family);
        let general = &family[start + 1..];
        if kept.iter().any(|&(s, e)| &family[s..e] == general) {
            family.truncate(start);
            if !family.ends_with("/…") {
                family.push_str("/…");
            }
        } else {
            kept.push((start + 1, family.len()));
        }
    }
    if trailing || path == "/" || path.is_empty() {
        family.push('/');
    }
    let directory = match family.rfind('/') {
        Some(i) => family[..=i].to_string(),
        None => family.clone(),
    };
    let mut key = family.clone();
    if let Some(query) = url.query() {
        let mut keys: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        key.push('?');
        for (i, k) in keys.iter().enumerate() {
            if i > 0 {
                key.push('&');
            }
            key.push_str(k);
            key.push_str("=*");
        }
    }
    UrlPattern {
        key,
        family,
        directory,
    }
}

/// One path segment with its ids and numbers replaced, run by run of
/// letters and digits (`(S(x1y2z3w4v5u6))` is `(S({id}))`).
fn generalise_into(segment: &str, out: &mut String) {
    let mut rest = segment;
    while !rest.is_empty() {
        let run = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        if run == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        generalise_run(&rest[..run], out);
        rest = &rest[run..];
    }
}

/// One run of ASCII letters and digits.
fn generalise_run(run: &str, out: &mut String) {
    let digits = run.bytes().filter(u8::is_ascii_digit).count();
    if digits > 0 && run.len() >= 8 && run.bytes().all(|b| b.is_ascii_hexdigit()) {
        out.push_str("{hex}");
    } else if digits >= 2 && run.len() >= 12 && digits < run.len() {
        out.push_str("{id}");
    } else {
        let mut in_digits = false;
        for c in run.chars() {
            if c.is_ascii_digit() {
                if !in_digits {
                    out.push_str("{n}");
                }
                in_digits = true;
            } else {
                out.push(c);
                in_digits = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(u: &str) -> String {
        pattern_of(&Url::parse(u).unwrap()).key
    }

    #[test]
    fn templates_share_a_pattern() {
        // Query calendars, values and key order.
        assert_eq!(key("http://e.com/calendar?d=5"), "e.com/calendar?d=*");
        assert_eq!(
            key("http://e.com/calendar?d=1005"),
            key("http://e.com/calendar?d=5")
        );
        assert_eq!(
            key("http://e.com/search?size=m&color=red&q=shoes"),
            key("http://e.com/search?q=shoes&color=blue&size=l")
        );
        // Path calendars.
        assert_eq!(
            key("http://e.com/events/2026/12/04/"),
            "e.com/events/{n}/…/"
        );
        assert_eq!(
            key("http://e.com/events/2026/12/04/"),
            key("http://e.com/events/2027/01/31/")
        );
        assert_eq!(key("http://e.com/day/2026-12-04"), "e.com/day/{n}-{n}-{n}");
        // Session ids in paths.
        assert_eq!(
            key("http://e.com/s/0a1b2c3d4e5f6a7b/home"),
            "e.com/s/{hex}/home"
        );
        assert_eq!(
            key("http://e.com/s/(S(x1y2z3w4v5u6))/home"),
            key("http://e.com/s/(S(q9r8s7t6u5v4))/home")
        );
        assert_eq!(
            key("http://e.com/sess/Ab12Cd34Ef56Gh/a"),
            "e.com/sess/{id}/a"
        );
        // Growth by relative links.
        assert_eq!(
            key("http://e.com/docs/guide/guide/guide/"),
            "e.com/docs/guide/…/"
        );
        assert_eq!(
            key("http://e.com/a/b/a/b/a/b/"),
            key("http://e.com/a/b/a/b/a/b/a/b/a/b/")
        );
        // Pages with numbers in their names.
        assert_eq!(key("http://e.com/p/page-7.html"), "e.com/p/page-{n}.html");
        assert_eq!(key("http://e.com/"), "e.com/");
        assert_eq!(key("http://e.com:8080/x"), "e.com:8080/x");
    }

    #[test]
    fn different_pages_differ() {
        assert_ne!(
            key("http://e.com/library/os.html"),
            key("http://e.com/library/re.html")
        );
        assert_ne!(
            key("http://e.com/p?id=1"),
            key("http://e.com/p?id=1&page=2")
        );
        assert_ne!(key("http://a.com/p?id=1"), key("http://b.com/p?id=1"));
    }

    #[test]
    fn family_and_directory() {
        let p = pattern_of(&Url::parse("http://e.com/s/0a1b2c3d4e5f6a7b/home?x=1").unwrap());
        assert_eq!(p.family, "e.com/s/{hex}/home");
        assert_eq!(p.directory, "e.com/s/{hex}/");
        let p = pattern_of(&Url::parse("http://e.com/calendar?d=3").unwrap());
        assert_eq!(p.directory, "e.com/");
    }
}
