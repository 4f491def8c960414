//! Streaming link and metadata extraction.
//!
//! The page is streamed once through lol_html's rewriter with handlers for
//! the few elements a crawler needs; no DOM is built, so memory stays flat
//! and a megabyte page costs milliseconds. `<script>` and `<style>` contents
//! are raw text to the tokenizer, so an `<a href>` inside a JavaScript string
//! is correctly not a link.

use std::borrow::Cow;
use std::cell::RefCell;

use lol_html::html_content::{Element, TextChunk};
use lol_html::{HtmlRewriter, Settings, element, text};
use trawl_core::{Url, parse_canonical};

/// What the crawler keeps from an HTML page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageInfo {
    pub title: Option<String>,
    pub meta_description: Option<String>,
    /// `<link rel=canonical>`, resolved against the page's base URL.
    pub canonical: Option<String>,
    pub lang: Option<String>,
    /// The URL relative links resolve against (`<base href>` or the page's).
    pub base: Url,
    /// Every `<a href>` / `<area href>` as written (entities decoded,
    /// trimmed), in document order. [`PageInfo::links`] resolves them.
    pub hrefs: Vec<String>,
    /// The page said `<meta name=robots content=nofollow>`.
    pub nofollow: bool,
}

#[derive(Default)]
struct Raw {
    title: String,
    /// `<title>` elements met so far; only the first one's text is kept.
    titles_seen: u32,
    description: Option<String>,
    canonical: Option<String>,
    lang: Option<String>,
    base: Option<String>,
    hrefs: Vec<String>,
    nofollow: bool,
}

/// Extract links and metadata from a decoded HTML page fetched from `url`.
///
/// Malformed HTML is parsed the way browsers recover from it; should the
/// tokenizer still give up (memory limit), what was gathered so far is kept.
pub fn extract_page(url: &Url, html: &str) -> PageInfo {
    let raw = RefCell::new(Raw::default());
    {
        let settings = Settings::new()
            .append_element_content_handler(element!("a[href], area[href]", |el: &mut Element| {
                if let Some(href) = el.get_attribute("href") {
                    raw.borrow_mut().hrefs.push(href);
                }
                Ok(())
            }))
            .append_element_content_handler(element!("base[href]", |el: &mut Element| {
                let mut r = raw.borrow_mut();
                if r.base.is_none() {
                    r.base = el.get_attribute("href");
                }
                Ok(())
            }))
            .append_element_content_handler(element!("html[lang]", |el: &mut Element| {
                let mut r = raw.borrow_mut();
                if r.lang.is_none() {
                    r.lang = el
                        .get_attribute("lang")
                        .map(|l| l.trim().to_string())
                        .filter(|l| !l.is_empty());
                }
                Ok(())
            }))
            .append_element_content_handler(element!("meta[name][content]", |el: &mut Element| {
                let name = el
                    .get_attribute("name")
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let content = el.get_attribute("content").unwrap_or_default();
                let mut r = raw.borrow_mut();
                match name.trim() {
                    "description" if r.description.is_none() => {
                        r.description = Some(collapse_ws(&content))
                    }
                    "robots" if content.to_ascii_lowercase().contains("nofollow") => {
                        r.nofollow = true
                    }
                    _ => {}
                }
                Ok(())
            }))
            .append_element_content_handler(element!("link[rel][href]", |el: &mut Element| {
                let rel = el
                    .get_attribute("rel")
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if rel.split_ascii_whitespace().any(|r| r == "canonical") {
                    let mut r = raw.borrow_mut();
                    if r.canonical.is_none() {
                        r.canonical = el.get_attribute("href");
                    }
                }
                Ok(())
            }))
            .append_element_content_handler(element!("title", |_el: &mut Element| {
                raw.borrow_mut().titles_seen += 1;
                Ok(())
            }))
            .append_element_content_handler(text!("title", |t: &mut TextChunk| {
                let mut r = raw.borrow_mut();
                if r.titles_seen == 1 {
                    r.title.push_str(t.as_str());
                }
                Ok(())
            }));
        let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
        // Errors only come from resource limits; keep what we have.
        let _ = rewriter.write(html.as_bytes()).and_then(|_| rewriter.end());
    }
    let raw = raw.into_inner();
    let base = raw
        .base
        .as_deref()
        .and_then(|b| url.join(b.trim()).ok())
        .unwrap_or_else(|| url.clone());
    let hrefs = raw
        .hrefs
        .iter()
        .map(|h| match decode_entities(h) {
            Cow::Borrowed(b) => b.trim().to_string(),
            Cow::Owned(o) => o.trim().to_string(),
        })
        .collect();
    let title = collapse_ws(&decode_entities(&raw.title));
    PageInfo {
        title: (!title.is_empty()).then_some(title),
        meta_description: raw
            .description
            .map(|d| decode_entities(&d).into_owned())
            .filter(|d| !d.is_empty()),
        canonical: raw
            .canonical
            .and_then(|c| parse_canonical(Some(&base), &decode_entities(&c)))
            .map(|u| u.to_string()),
        lang: raw.lang,
        base,
        hrefs,
        nofollow: raw.nofollow,
    }
}

impl PageInfo {
    /// Out-links in canonical form, in document order, without duplicates.
    pub fn links(&self) -> Vec<Url> {
        let mut links: Vec<Url> = self
            .hrefs
            .iter()
            .filter_map(|href| parse_canonical(Some(&self.base), href))
            .collect();
        dedupe_in_order(&mut links);
        links
    }
}

/// Drop repeated URLs, keeping the first of each.
fn dedupe_in_order(links: &mut Vec<Url>) {
    let mut keep = Vec::with_capacity(links.len());
    {
        let mut seen: std::collections::HashSet<u64, trawl_core::Prehashed> =
            std::collections::HashSet::with_capacity_and_hasher(links.len(), Default::default());
        for link in links.iter() {
            keep.push(seen.insert(xxhash_rust::xxh3::xxh3_64(link.as_str().as_bytes())));
        }
    }
    let mut flags = keep.into_iter();
    links.retain(|_| flags.next().unwrap_or(false));
}

/// Collapse runs of whitespace to one space and trim.
fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decode the HTML character references that commonly appear in attribute
/// values and titles (lol_html hands them over raw).
fn decode_entities(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|e| *e <= 12);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                }
                _ if name.starts_with('#') => {
                    name[1..].parse::<u32>().ok().and_then(char::from_u32)
                }
                _ => None,
            };
            ch.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(html: &str) -> PageInfo {
        extract_page(&Url::parse("http://e.com/dir/page.html").unwrap(), html)
    }

    #[test]
    fn links_and_metadata() {
        let p = page(
            r#"<!doctype html><html lang="en-GB"><head><title> Hello
            &amp; world </title><meta name="Description" content="A  page">
            <link rel="canonical" href="/canon#x"></head><body>
            <a href="a.html">a</a><a href="/b?x=1#frag">b</a><a href="a.html#again">dup</a>
            <a href="mailto:x@y.z">m</a><a href="javascript:void(0)">j</a>
            <map><area href="../up"></map>
            <script>var s = "<a href='/not-a-link'>";</script>
            <a href="https://other.org/?q=a&amp;r=b">o</a></body></html>"#,
        );
        assert_eq!(p.title.as_deref(), Some("Hello & world"));
        assert_eq!(p.meta_description.as_deref(), Some("A page"));
        assert_eq!(p.canonical.as_deref(), Some("http://e.com/canon"));
        assert_eq!(p.lang.as_deref(), Some("en-GB"));
        let links: Vec<String> = p.links().iter().map(|u| u.to_string()).collect();
        assert_eq!(
            links,
            vec![
                "http://e.com/dir/a.html",
                "http://e.com/b?x=1",
                "http://e.com/up",
                "https://other.org/?q=a&r=b"
            ]
        );
    }

    #[test]
    fn base_href_applies() {
        let p = page(r#"<head><base href="http://e.com/other/"></head><a href="x">x</a>"#);
        assert_eq!(p.links()[0].as_str(), "http://e.com/other/x");
    }

    #[test]
    fn malformed_html_survives() {
        let p = page(
            "<html><title>T</title><body><div <a href=\"/ok\">x</a><p><a href=/unquoted>y<a href='/q'>< < >\0\u{fffd}",
        );
        let links: Vec<String> = p.links().iter().map(|u| u.to_string()).collect();
        assert!(
            links.contains(&"http://e.com/unquoted".to_string()),
            "{links:?}"
        );
        assert!(links.contains(&"http://e.com/q".to_string()), "{links:?}");
        assert_eq!(p.title.as_deref(), Some("T"));
    }

    #[test]
    fn only_first_title() {
        let p = page("<title>One</title><svg><title>Two</title></svg>");
        assert_eq!(p.title.as_deref(), Some("One"));
    }
}
