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

/// The pattern of one URL at three widths, in one string: the key, of
/// which the family and the directory are prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UrlPattern {
    text: String,
    family_len: usize,
    directory_len: usize,
}

impl UrlPattern {
    /// Host, generalised path and sorted query keys.
    pub fn key(&self) -> &str {
        &self.text
    }

    /// Host and generalised path.
    pub fn family(&self) -> &str {
        &self.text[..self.family_len]
    }

    /// The family up to (and with) its last `/`.
    pub fn directory(&self) -> &str {
        &self.text[..self.directory_len]
    }

    /// Whether the key has query keys (so the family differs from it).
    pub fn has_query(&self) -> bool {
        self.family_len != self.text.len()
    }

    /// Make this the pattern of `url` (its string is reused).
    pub fn set(&mut self, url: &Url) {
        self.build(
            url.host_str().unwrap_or(""),
            url.port(),
            url.path(),
            url.query(),
        );
    }

    /// Make this the pattern of `url` written out in full (as a crawl's
    /// URLs are: scheme, `//`, host, path), without parsing it into a
    /// [`Url`]; false when it is not written so.
    pub fn set_str(&mut self, url: &str) -> bool {
        let Some(scheme_end) = url.find("://") else {
            return false;
        };
        let rest = &url[scheme_end + 3..];
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        // The host as written (with its port, if not the default one).
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (path, query) = match rest[end..].split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (&rest[end..], None),
        };
        self.build(host, None, path, query);
        true
    }

    fn build(&mut self, host: &str, port: Option<u16>, path: &str, query: Option<&str>) {
        let text = &mut self.text;
        text.clear();
        text.push_str(host);
        if let Some(port) = port {
            use std::fmt::Write as _;
            let _ = write!(text, ":{port}");
        }
        // Repeats are spotted among the segments written so far (this
        // runs for every page: no allocation but the string's).
        let path_start = text.len();
        let trailing = path.ends_with('/') && path.len() > 1;
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            let start = text.len();
            text.push('/');
            generalise_into(segment, text);
            let (before, general) = (&text[path_start..start], &text[start + 1..]);
            if before
                .split('/')
                .any(|kept| kept == general && kept != FOLDED)
            {
                text.truncate(start);
                if !text.ends_with(FOLDED) {
                    text.push('/');
                    text.push_str(FOLDED);
                }
            }
        }
        if trailing || path == "/" || path.is_empty() {
            text.push('/');
        }
        self.family_len = text.len();
        self.directory_len = text.rfind('/').map_or(text.len(), |i| i + 1);
        if let Some(query) = query {
            let mut keys: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            text.push('?');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    text.push('&');
                }
                text.push_str(k);
                text.push_str("=*");
            }
        }
    }
}

/// What repeated segments fold into.
const FOLDED: &str = "…";

/// The pattern of `url`.
pub fn pattern_of(url: &Url) -> UrlPattern {
    let mut p = UrlPattern::default();
    p.set(url);
    p
}

/// The pattern of a URL written out in full, without parsing it.
pub fn pattern_of_str(url: &str) -> Option<UrlPattern> {
    let mut p = UrlPattern::default();
    p.set_str(url).then_some(p)
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
        let parsed = pattern_of(&Url::parse(u).unwrap());
        // The written-out URL gives the same pattern unparsed.
        let url = Url::parse(u).unwrap();
        assert_eq!(pattern_of_str(url.as_str()).as_ref(), Some(&parsed), "{u}");
        parsed.key().to_string()
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
        assert_eq!(p.family(), "e.com/s/{hex}/home");
        assert_eq!(p.directory(), "e.com/s/{hex}/");
        assert!(p.has_query());
        let p = pattern_of(&Url::parse("http://e.com/calendar?d=3").unwrap());
        assert_eq!(p.directory(), "e.com/");
        let p = pattern_of(&Url::parse("http://u:p@[::1]:81/a/b#f").unwrap());
        assert_eq!((p.key(), p.directory()), ("[::1]:81/a/b", "[::1]:81/a/"));
        assert!(!p.has_query());
        assert_eq!(pattern_of_str("http://u:p@[::1]:81/a/b#f"), Some(p));
        assert_eq!(pattern_of_str("mailto:x@e.com"), None);
        // A reused pattern holds nothing of the last URL.
        let mut p = pattern_of(&Url::parse("http://e.com/a/b/c?x=1&y=2").unwrap());
        p.set(&Url::parse("http://f.com/").unwrap());
        assert_eq!(
            (p.key(), p.family(), p.directory()),
            ("f.com/", "f.com/", "f.com/")
        );
    }
}
