//! Link and metadata extraction for every page's record.
//!
//! The page is scanned once ([`crate::scan`]) for the few tags a crawler
//! needs; no DOM is built, so memory stays flat and a megabyte page costs
//! well under a millisecond. `<script>` and `<style>` contents are raw text
//! to the tokenizer, so an `<a href>` inside a JavaScript string is
//! correctly not a link.

use std::borrow::Cow;

use trawl_core::{Url, parse_canonical};

use crate::scan::{Attributes, Tag, Visitor};

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
    /// The `<a href>` / `<area href>` targets (entities decoded, trimmed,
    /// what follows a `#` dropped), each once, in document order.
    /// [`PageInfo::links`] resolves them.
    pub hrefs: Vec<String>,
    /// The page said `<meta name=robots content=nofollow>`.
    pub nofollow: bool,
    /// SimHash of the visible text ([`crate::simhash`]); none for a page
    /// without words.
    pub simhash: Option<u64>,
}

#[derive(Default)]
struct Raw<'a> {
    title: String,
    /// `<title>` elements met so far; only the first one's text is kept.
    titles_seen: u32,
    description: Option<&'a str>,
    canonical: Option<&'a str>,
    lang: Option<String>,
    base: Option<&'a str>,
    hrefs: Vec<&'a str>,
    nofollow: bool,
    /// The text's SimHash, when asked for.
    text: Option<crate::simhash::SimHasher>,
}

impl<'a> Visitor<'a> for Raw<'a> {
    fn tag(&mut self, tag: Tag, attributes: &Attributes<'a>) {
        match tag {
            Tag::A | Tag::Area => {
                if let Some(href) = attributes.get("href") {
                    self.hrefs.push(href);
                }
            }
            Tag::Base => {
                if self.base.is_none() {
                    self.base = attributes.get("href");
                }
            }
            Tag::Html => {
                if self.lang.is_none() {
                    self.lang = attributes
                        .get("lang")
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string);
                }
            }
            Tag::Meta => {
                let (Some(name), Some(content)) =
                    (attributes.get("name"), attributes.get("content"))
                else {
                    return;
                };
                let name = name.trim();
                if name.eq_ignore_ascii_case("description") {
                    if self.description.is_none() {
                        self.description = Some(content);
                    }
                } else if name.eq_ignore_ascii_case("robots")
                    && content.to_ascii_lowercase().contains("nofollow")
                {
                    self.nofollow = true;
                }
            }
            Tag::Link => {
                let (Some(rel), Some(href)) = (attributes.get("rel"), attributes.get("href"))
                else {
                    return;
                };
                if self.canonical.is_none()
                    && rel
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("canonical"))
                {
                    self.canonical = Some(href);
                }
            }
            Tag::Title => self.titles_seen += 1,
        }
    }

    fn title_text(&mut self, text: &'a str) {
        if self.titles_seen == 1 {
            self.title.push_str(text);
        }
    }

    fn text(&mut self, text: &'a str) {
        if let Some(hasher) = &mut self.text {
            hasher.feed(text);
        }
    }

    fn wants_text(&self) -> bool {
        self.text.as_ref().is_some_and(|h| h.wants_text())
    }
}

/// Extract links and metadata from a decoded HTML page fetched from `url`.
///
/// One pass of [`crate::scan`] over the page: malformed HTML is read the
/// way the HTML tokenizer reads it, and nothing but the wanted tags'
/// attributes is looked at.
pub fn extract_page(url: &Url, html: &str) -> PageInfo {
    extract_page_with(url, html, true)
}

/// [`extract_page`], with the text's SimHash only if `simhash` (a crawl
/// without a duplicate index has no use for it).
pub fn extract_page_with(url: &Url, html: &str, simhash: bool) -> PageInfo {
    let mut raw = Raw::default();
    if simhash {
        let mut hasher = crate::simhash::SimHasher::new();
        ignore_query_values(url, &mut hasher);
        raw.text = Some(hasher);
    }
    crate::scan::scan(html, &mut raw);
    let base = raw
        .base
        .and_then(|b| url.join(b.trim()).ok())
        .unwrap_or_else(|| url.clone());
    let hrefs = distinct_targets(raw.hrefs.iter().copied());
    let title = collapse_ws(&decode_entities(&raw.title));
    PageInfo {
        title: (!title.is_empty()).then_some(title),
        meta_description: raw
            .description
            .map(|d| decode_entities(&collapse_ws(d)).into_owned())
            .filter(|d| !d.is_empty()),
        canonical: raw
            .canonical
            .and_then(|c| parse_canonical(Some(&base), &decode_entities(c)))
            .map(|u| u.to_string()),
        lang: raw.lang,
        base,
        hrefs,
        nofollow: raw.nofollow,
        simhash: raw.text.and_then(crate::simhash::SimHasher::finish),
    }
}

/// The page's query values are not content (see [`crate::simhash`]).
fn ignore_query_values(url: &Url, hasher: &mut crate::simhash::SimHasher) {
    if url.query().is_some() {
        for (_, value) in url.query_pairs() {
            hasher.ignore_words(&value);
        }
    }
}

/// The SimHash of the visible text alone of a page fetched from `url`
/// (for pages a spider reads).
pub fn page_simhash(url: &Url, html: &str) -> Option<u64> {
    struct Text(crate::simhash::SimHasher);
    impl<'a> Visitor<'a> for Text {
        fn tag(&mut self, _: Tag, _: &Attributes<'a>) {}
        fn title_text(&mut self, _: &'a str) {}
        fn text(&mut self, text: &'a str) {
            self.0.feed(text);
        }
        fn wants_text(&self) -> bool {
            self.0.wants_text()
        }
    }
    let mut text = Text(crate::simhash::SimHasher::new());
    ignore_query_values(url, &mut text.0);
    crate::scan::scan(html, &mut text);
    text.0.finish()
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

/// Link targets, each once: a page links to a few documents many times
/// over (a documentation page's ~300 links point at ~40 documents, at
/// different `#` anchors), and resolving a URL is the dearest step of a
/// link, so repeats are dropped before it. What follows a `#` is dropped
/// (the fragment never reaches the server), the `#` is kept: `a  #x`
/// resolves as `a  #` does, and `#x` to the page itself.
fn distinct_targets<'a>(raw: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: std::collections::HashSet<u64, trawl_core::Prehashed> = Default::default();
    let mut out = Vec::new();
    for href in raw {
        let decoded = decode_entities(href);
        let trimmed = decoded.trim();
        let target = match trimmed.find('#') {
            Some(hash) => &trimmed[..=hash],
            None => trimmed,
        };
        if seen.insert(xxhash_rust::xxh3::xxh3_64(target.as_bytes())) {
            out.push(target.to_string());
        }
    }
    out
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
#[derive(Default)]
struct LolRaw {
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

/// The previous implementation on lol_html's rewriter: the oracle the
/// scanner is checked against.
///
/// Malformed HTML is parsed the way browsers recover from it; should the
/// tokenizer still give up (memory limit), what was gathered so far is kept.
#[cfg(test)]
pub(crate) fn extract_page_with_lol_html(url: &Url, html: &str) -> (PageInfo, Vec<String>) {
    let raw = std::cell::RefCell::new(LolRaw::default());
    {
        use lol_html::html_content::{Element, TextChunk};
        use lol_html::{HtmlRewriter, Settings, element, text};
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
    let hrefs = distinct_targets(raw.hrefs.iter().map(String::as_str));
    let every_href = raw
        .hrefs
        .iter()
        .map(|h| decode_entities(h).trim().to_string())
        .collect();
    let title = collapse_ws(&decode_entities(&raw.title));
    let info = PageInfo {
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
        // Text is the scanner's alone (see `simhash_of_real_pages`).
        simhash: None,
    };
    (info, every_href)
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

    /// The scanner and lol_html agree on every real documentation page
    /// installed (python3.11-doc is required; postgresql-doc-15 is used
    /// when present) and on generated tag soup.
    #[test]
    fn scanner_agrees_with_lol_html() {
        let files = real_pages();
        let url = Url::parse("http://docs.example/a/b/page.html").unwrap();
        let mut links = 0;
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            let html = String::from_utf8_lossy(&bytes);
            let fast = extract_page(&url, &html);
            let (reference, every_href) = extract_page_with_lol_html(&url, &html);
            assert_eq!(without_text(&fast), reference, "{}", path.display());
            // Dropping repeated targets before resolving them changes no
            // link: the same links as resolving every href.
            let mut every_link: Vec<Url> = every_href
                .iter()
                .filter_map(|h| parse_canonical(Some(&fast.base), h))
                .collect();
            dedupe_in_order(&mut every_link);
            assert_eq!(fast.links(), every_link, "{}", path.display());
            links += every_href.len();
        }
        assert!(
            links > files.len() * 5,
            "{links} links in {} pages",
            files.len()
        );

        // Tag soup: random sequences of tricky pieces.
        // No <svg> or <math>: in foreign content lol_html departs from
        // the HTML tree builder (it misses breakouts and self-closing
        // <svg/>, and reads a <title> in <svg> as the page's); the
        // scanner's tests in `scan` hold it to the specification there.
        const PIECES: [&str; 47] = [
            "<![CDATA[",
            "]]>",
            "<xmp>",
            "</xmp>",
            "<iframe>",
            "</iframe>",
            "<plaintext>",
            "<a href=x>",
            "<a href='y z'>",
            "<A HREF=\"q\">",
            "<a href>",
            "<a title='>' href=t>",
            "<area href=ar>",
            "<base href='/base/'>",
            "<html lang=fr>",
            "<html lang=' '>",
            "<meta name=description content='d &amp; e'>",
            "<meta name=ROBOTS content=NOFOLLOW>",
            "<link rel='alternate canonical' href=/c>",
            "<title>",
            "</title>",
            "T &lt; 1",
            "<script>",
            "</script>",
            "</script ",
            "<style>",
            "</style>",
            "<textarea>",
            "</textarea>",
            "<!--",
            "-->",
            "--!>",
            "<!-->",
            "<!doctype html>",
            "<?pi?>",
            "</a>",
            "</>",
            "<div ",
            ">",
            "'",
            "\"",
            "=",
            " ",
            "text",
            "<noscript>",
            "</noscript>",
            "<b/>",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..30_000 {
            let n = (next() % 24) as usize;
            let soup: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            assert_eq!(
                without_text(&extract_page(&url, &soup)),
                extract_page_with_lol_html(&url, &soup).0,
                "{soup:?}"
            );
        }
    }

    fn without_text(page: &PageInfo) -> PageInfo {
        PageInfo {
            simhash: None,
            ..page.clone()
        }
    }

    /// Every real documentation page has a SimHash, and no two pages with
    /// different text are within the near-duplicate distance (3 bits):
    /// the index would call a real page a near-duplicate of another.
    #[test]
    fn simhash_of_real_pages() {
        let files = real_pages();
        let url = Url::parse("http://docs.example/page.html").unwrap();
        let mut pages: Vec<(u64, u64, &std::path::Path)> = Vec::new();
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            let html = String::from_utf8_lossy(&bytes);
            let page = extract_page(&url, &html);
            let Some(h) = page.simhash else {
                panic!("{} has words", path.display());
            };
            // The text itself, to tell true duplicates from collisions.
            let mut text = Text(String::new());
            crate::scan::scan(&html, &mut text);
            let digits: String = text.0.chars().filter(|c| !c.is_ascii_digit()).collect();
            pages.push((h, xxhash_rust::xxh3::xxh3_64(digits.as_bytes()), path));
        }
        let mut near = Vec::new();
        for (i, a) in pages.iter().enumerate() {
            for b in &pages[i + 1..] {
                if crate::simhash::distance(a.0, b.0) <= 3 && a.1 != b.1 {
                    near.push((a.2, b.2, crate::simhash::distance(a.0, b.0)));
                }
            }
        }
        assert!(near.is_empty(), "{} near pairs: {near:?}", near.len());
    }

    struct Text(String);
    impl<'a> crate::scan::Visitor<'a> for Text {
        fn tag(&mut self, _: Tag, _: &Attributes<'a>) {}
        fn title_text(&mut self, _: &'a str) {}
        fn text(&mut self, text: &'a str) {
            self.0
                .extend(text.split_whitespace().flat_map(|w| [w, " "]));
        }
        fn wants_text(&self) -> bool {
            true
        }
    }

    /// The HTML pages of python3.11-doc (required) and postgresql-doc-15.
    fn real_pages() -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for dir in [
            "/usr/share/doc/python3.11/html",
            "/usr/share/doc/postgresql-doc-15/html",
        ] {
            collect_html(std::path::Path::new(dir), &mut files);
        }
        assert!(
            files.len() >= 500,
            "real pages needed: apt-get install python3.11-doc ({} found)",
            files.len()
        );
        files
    }

    fn collect_html(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect_html(&path, out);
            } else if path.extension().is_some_and(|e| e == "html") {
                out.push(path);
            }
        }
    }

    #[test]
    fn only_first_title() {
        let p = page("<title>One</title><svg><title>Two</title></svg>");
        assert_eq!(p.title.as_deref(), Some("One"));
    }
}
