//! HTML / XML / text rendering of the generated site.
//!
//! This is the benchmark's hot path: pages are rendered on the fly into one
//! pre-sized buffer, without locks and with only a handful of allocations.
//! Links are written in many equivalent forms (relative, absolute,
//! scheme-relative, upper-case scheme, percent-encoded unreserved
//! characters, dot segments, fragments, `<base href>`, `<area>`) that all
//! canonicalize to the target's path.

use crate::rng::hash3;
use crate::site::{Extra, LATIN1_TITLE, Node, ROOT_TITLE, SJIS_TITLE, Site, push_u64};

const HEAD_START: &[u8] =
    b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";

/// Sentinel "source id" for links on `/`.
const ROOT_SRC: u64 = u64::MAX;

/// Off-site and non-HTTP links sprinkled over pages (must be ignored).
const DECORATIONS: [&str; 7] = [
    "<a href=\"http://external.invalid/p/1\">Elsewhere</a>",
    "<a href=\"HTTPS://EXTERNAL.invalid/about\">About them</a>",
    "<a href=\"mailto:webmaster@external.invalid\">Mail us</a>",
    "<a href=\"javascript:void(0)\">Do nothing</a>",
    "<a href=\"tel:+10000000000\">Call</a>",
    "<a href=\"//external.invalid/scheme-relative\">Other host</a>",
    "<a href=\"ftp://external.invalid/file.txt\">FTP</a>",
];

impl Site {
    /// Renders `/p/{i}` for a client that used `scheme` (`http` or `https`)
    /// and `host` (an authority such as `127.0.0.1:8080`).
    pub(crate) fn render_page(&self, i: u32, scheme: &str, host: &str) -> Vec<u8> {
        let seed = self.seed();
        let h = hash3(seed, u64::from(i), 0x5A2E);
        let page_bytes = self.config().page_bytes;
        let target = page_bytes.saturating_mul(60 + (h % 81) as usize) / 100;
        let links = self.page_targets(i);
        let mut out = Vec::with_capacity(target.max(links.len() * 64 + 1024) + 256);
        let base = self.has_base(i);
        let base_dir = if base { "/p/x/" } else { "/p/" };

        out.extend_from_slice(HEAD_START);
        if base {
            if h & (1 << 20) == 0 {
                out.extend_from_slice(b"<base href=\"");
                write_origin(&mut out, scheme, host);
                out.extend_from_slice(b"/p/x/\">\n");
            } else {
                out.extend_from_slice(b"<base href=\"/p/x/\">\n");
            }
        }
        out.extend_from_slice(b"<title>");
        self.write_page_title(i, &mut out);
        out.extend_from_slice(b"</title>\n<meta name=\"description\" content=\"");
        self.write_page_description(i, &mut out);
        out.extend_from_slice(b"\">\n<link rel=\"canonical\" href=\"");
        write_origin(&mut out, scheme, host);
        out.extend_from_slice(b"/p/");
        push_u64(&mut out, u64::from(i));
        out.extend_from_slice(b"\">\n</head>\n<body>\n<a name=\"top\"></a>\n<h1>");
        self.write_page_title(i, &mut out);
        out.extend_from_slice(b"</h1>\n<ul class=\"links\">\n");

        let src = u64::from(i);
        let mut scratch = String::with_capacity(32);
        for (k, &t) in links.iter().enumerate() {
            scratch.clear();
            scratch.push_str("/p/");
            push_u32_str(&mut scratch, t);
            let lh = hash3(seed, src, k as u64);
            out.extend_from_slice(b"<li>");
            write_anchor(
                &mut out,
                scheme,
                host,
                base_dir,
                &scratch,
                lh,
                b"Page ",
                Some(t),
            );
            out.extend_from_slice(b"</li>\n");
            if k == links.len() / 2 {
                // Some prose in the middle of the link list.
                out.extend_from_slice(b"</ul>\n<p>");
                self.write_corpus(&mut out, h >> 3, 200);
                out.extend_from_slice(b"</p>\n<ul class=\"links\">\n");
            }
        }
        if let Some(extra) = self.page_extra_link(i) {
            let path = match extra {
                Node::Root => "/",
                Node::Extra(e) => e.path(),
                _ => "/",
            };
            let lh = hash3(seed, src, 0xE7);
            out.extend_from_slice(b"<li>");
            write_anchor(&mut out, scheme, host, base_dir, path, lh, b"More", None);
            out.extend_from_slice(b"</li>\n");
        }
        out.extend_from_slice(b"</ul>\n");

        // Pad with prose to the target size (leaving room for the footer).
        let footer_room = 160;
        let mut salt = h;
        while out.len() + footer_room < target {
            let want = (target - out.len() - footer_room).min(700);
            out.extend_from_slice(b"<p>");
            salt = salt.wrapping_add(0x9E37_79B9_7F4A_7C15);
            self.write_corpus(&mut out, salt, want);
            out.extend_from_slice(b"</p>\n");
        }

        out.extend_from_slice(b"<footer>");
        out.extend_from_slice(DECORATIONS[(h % 7) as usize].as_bytes());
        out.push(b' ');
        out.extend_from_slice(DECORATIONS[((h >> 5) % 7) as usize].as_bytes());
        if !base {
            out.extend_from_slice(b" <a href=\"#top\">Top</a>");
        }
        out.extend_from_slice(b"</footer>\n</body>\n</html>\n");
        out
    }

    /// Renders `/` (see [`Site::render_page`] for `scheme` and `host`).
    pub(crate) fn render_root(&self, scheme: &str, host: &str) -> Vec<u8> {
        let seed = self.seed();
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(HEAD_START);
        out.extend_from_slice(b"<title>");
        out.extend_from_slice(ROOT_TITLE.as_bytes());
        out.extend_from_slice(
            b"</title>\n<meta name=\"description\" content=\"Deterministic test site of the trawl crawler.\">\n<link rel=\"canonical\" href=\"",
        );
        write_origin(&mut out, scheme, host);
        out.extend_from_slice(b"/\">\n</head>\n<body>\n<h1>");
        out.extend_from_slice(ROOT_TITLE.as_bytes());
        out.extend_from_slice(b"</h1>\n<ul class=\"links\">\n");
        let mut scratch = String::with_capacity(32);
        for (k, &t) in self.root_links().iter().enumerate() {
            scratch.clear();
            scratch.push_str("/p/");
            push_u32_str(&mut scratch, t);
            let lh = hash3(seed, ROOT_SRC, k as u64);
            out.extend_from_slice(b"<li>");
            write_anchor(&mut out, scheme, host, "/", &scratch, lh, b"Page ", Some(t));
            out.extend_from_slice(b"</li>\n");
        }
        for (k, e) in self.root_extras().into_iter().enumerate() {
            let lh = hash3(seed, ROOT_SRC, 1000 + k as u64);
            out.extend_from_slice(b"<li>");
            write_anchor(
                &mut out,
                scheme,
                host,
                "/",
                e.path(),
                lh,
                e.title().as_bytes(),
                None,
            );
            out.extend_from_slice(b"</li>\n");
        }
        out.extend_from_slice(b"</ul>\n");
        if self.shop().enabled {
            out.extend_from_slice(
                b"<h2>Store</h2>\n<ul class=\"store\">\n<li><a href=\"/shop/\">Shop</a></li>\n<li><a href=\"/blog/\">Blog</a></li>\n</ul>\n",
            );
        }
        if self.traps().enabled() {
            out.extend_from_slice(b"<h2>Sections</h2>\n<ul class=\"sections\">\n");
            for (href, label) in crate::traps::ROOT_LINKS {
                for part in ["<li><a href=\"", href, "\">", label, "</a></li>\n"] {
                    out.extend_from_slice(part.as_bytes());
                }
            }
            out.extend_from_slice(b"</ul>\n");
        }
        if self.config().nasty {
            out.extend_from_slice(b"<h2>Fault routes</h2>\n<ul class=\"nasty\">\n");
            for (path, _) in crate::site::NASTY_LINKS {
                out.extend_from_slice(b"<li><a href=\"");
                out.extend_from_slice(path.as_bytes());
                out.extend_from_slice(b"\">");
                out.extend_from_slice(path.as_bytes());
                out.extend_from_slice(b"</a></li>\n");
            }
            out.extend_from_slice(b"</ul>\n");
        }
        out.extend_from_slice(b"<footer>");
        for d in DECORATIONS {
            out.extend_from_slice(d.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(b"<a href=\"#top\">Top</a></footer>\n</body>\n</html>\n");
        out
    }

    /// Renders one of the fixed robots-test pages.
    pub(crate) fn render_extra(&self, e: Extra) -> Vec<u8> {
        self.render_simple(
            e.title(),
            "A page robots.txt has an opinion about.",
            &[Node::Root],
        )
    }

    /// A small UTF-8 page with root-relative links.
    pub(crate) fn render_simple(&self, title: &str, text: &str, links: &[Node]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(HEAD_START);
        out.extend_from_slice(b"<title>");
        out.extend_from_slice(title.as_bytes());
        out.extend_from_slice(b"</title>\n</head>\n<body>\n<h1>");
        out.extend_from_slice(title.as_bytes());
        out.extend_from_slice(b"</h1>\n<p>");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"</p>\n<ul>\n");
        for n in links {
            out.extend_from_slice(b"<li><a href=\"");
            out.extend_from_slice(n.path().as_bytes());
            out.extend_from_slice(b"\">link</a></li>\n");
        }
        out.extend_from_slice(b"</ul>\n</body>\n</html>\n");
        out
    }

    /// A small page linking to `hrefs` verbatim.
    pub(crate) fn render_hrefs(&self, title: &str, hrefs: &[String]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(HEAD_START);
        out.extend_from_slice(b"<title>");
        out.extend_from_slice(title.as_bytes());
        out.extend_from_slice(b"</title>\n</head>\n<body>\n<h1>");
        out.extend_from_slice(title.as_bytes());
        out.extend_from_slice(b"</h1>\n<ul>\n");
        for href in hrefs {
            out.extend_from_slice(b"<li><a href=\"");
            out.extend_from_slice(href.as_bytes());
            out.extend_from_slice(b"\">next</a></li>\n");
        }
        out.extend_from_slice(b"</ul>\n</body>\n</html>\n");
        out
    }

    /// Broken HTML that still has the real links of
    /// [`Site::nasty_page_links`] (and decoys inside script/comments).
    pub(crate) fn render_malformed(&self) -> Vec<u8> {
        let links = self.nasty_page_links();
        let mut out = Vec::with_capacity(2048);
        out.extend_from_slice(b"<html><head><title>Malformed page</title>\n<body>\n");
        out.extend_from_slice(b"<p>Unclosed paragraph <b>bold <i>italic\n<div class=unquoted id=x>stray < less-than and 3 < 4 > 2\n");
        for (k, n) in links.iter().enumerate() {
            let p = n.path();
            match k % 3 {
                0 => {
                    out.extend_from_slice(b"<a href=");
                    out.extend_from_slice(p.as_bytes());
                    out.extend_from_slice(b">unquoted</a>\n");
                }
                1 => {
                    out.extend_from_slice(b"<A HREF = '");
                    out.extend_from_slice(p.as_bytes());
                    out.extend_from_slice(b"' CLASS=x >spaced and single-quoted</A>\n");
                }
                _ => {
                    out.extend_from_slice(b"<table><tr><td><a class=z href=\"");
                    out.extend_from_slice(p.as_bytes());
                    out.extend_from_slice(b"\">in an unclosed cell\n");
                }
            }
        }
        out.extend_from_slice(
            b"\0 a NUL byte, invalid UTF-8: \xff\xfe \xc3\x28 and a lone \x80 continuation\n",
        );
        out.extend_from_slice(b"<script>var s = \"<a href='/p/0'>\"; document.write(s); if (a < b && c > d) {}</script>\n");
        out.extend_from_slice(b"<!-- <a href=\"/p/0\">commented out</a> -->\n");
        out.extend_from_slice(b"<textarea><a href=\"/p/0\">not a link</a></textarea>\n");
        out.extend_from_slice(b"<p>unterminated attribute <span title=\"oops>text</span>\n");
        out.extend_from_slice(b"</i></b></div></body>\n</html>\n<p>after the end");
        out
    }

    /// `/latin1` encoded as windows-1252 (labelled ISO-8859-1 in the header).
    pub(crate) fn render_latin1(&self) -> Vec<u8> {
        let html = String::from_utf8_lossy(&self.render_simple(
            LATIN1_TITLE,
            "Größe, naïve façade, déjà vu, señor, Ærø.",
            &self.nasty_page_links(),
        ))
        .replace("<meta charset=\"utf-8\">\n", "");
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&html);
        bytes.into_owned()
    }

    /// `/sjis` encoded as Shift_JIS, declared only by `<meta charset>`.
    pub(crate) fn render_sjis(&self) -> Vec<u8> {
        let html = String::from_utf8_lossy(&self.render_simple(
            SJIS_TITLE,
            "これは文字コードのテストです。東京タワー。",
            &self.nasty_page_links(),
        ))
        .replace("<meta charset=\"utf-8\">", "<meta charset=\"Shift_JIS\">");
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(&html);
        bytes.into_owned()
    }

    /// A `<sitemapindex>` pointing at `/sitemap1.xml` and `/sitemap2.xml.gz`.
    pub(crate) fn render_sitemap_index(&self, scheme: &str, host: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n");
        for (name, lastmod) in [("sitemap1.xml", true), ("sitemap2.xml.gz", false)] {
            out.extend_from_slice(b"  <sitemap>\n    <loc>");
            write_origin(&mut out, scheme, host);
            out.push(b'/');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"</loc>\n");
            if lastmod {
                out.extend_from_slice(b"    <lastmod>2024-01-01T00:00:00+00:00</lastmod>\n");
            }
            out.extend_from_slice(b"  </sitemap>\n");
        }
        out.extend_from_slice(b"</sitemapindex>\n");
        out
    }

    /// A `<urlset>` of `nodes`.
    pub(crate) fn render_urlset(&self, scheme: &str, host: &str, nodes: &[Node]) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + nodes.len() * 128);
        out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n");
        for (k, n) in nodes.iter().enumerate() {
            out.extend_from_slice(b"  <url>\n    <loc>");
            write_origin(&mut out, scheme, host);
            out.extend_from_slice(n.path().as_bytes());
            out.extend_from_slice(b"</loc>\n");
            if k % 2 == 0 {
                out.extend_from_slice(b"    <lastmod>2024-01-01</lastmod>\n    <changefreq>weekly</changefreq>\n    <priority>0.5</priority>\n");
            }
            out.extend_from_slice(b"  </url>\n");
        }
        out.extend_from_slice(b"</urlset>\n");
        out
    }

    /// `/sitemap.txt`: every sitemap URL, one per line.
    pub(crate) fn render_sitemap_txt(&self, scheme: &str, host: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for n in self.sitemap1().iter().chain(self.sitemap2()) {
            write_origin(&mut out, scheme, host);
            out.extend_from_slice(n.path().as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Appends about `want` bytes of corpus prose (cut at word boundaries).
    fn write_corpus(&self, out: &mut Vec<u8>, salt: u64, want: usize) {
        let corpus = self.corpus().as_bytes();
        let want = want.min(corpus.len() / 2);
        if want == 0 {
            return;
        }
        let span = corpus.len() - want;
        let mut start = (salt % span as u64) as usize;
        while start < span && corpus[start] != b' ' {
            start += 1;
        }
        let start = (start + 1).min(span);
        let mut end = start + want;
        while end > start && corpus[end - 1] != b' ' {
            end -= 1;
        }
        if end == start {
            end = start + want;
        }
        out.extend_from_slice(&corpus[start..end]);
    }
}

/// `scheme://host`.
fn write_origin(out: &mut Vec<u8>, scheme: &str, host: &str) {
    out.extend_from_slice(scheme.as_bytes());
    out.extend_from_slice(b"://");
    out.extend_from_slice(host.as_bytes());
}

/// Writes `<a href=…>text</a>` (or an `<area>`) for the canonical `path`
/// in a form chosen by `h`, resolving relative forms against `base_dir`.
#[allow(clippy::too_many_arguments)]
fn write_anchor(
    out: &mut Vec<u8>,
    scheme: &str,
    host: &str,
    base_dir: &str,
    path: &str,
    h: u64,
    text: &[u8],
    num: Option<u32>,
) {
    let style = (h >> 32) % 8;
    let area = (h >> 40).is_multiple_of(25);
    let (open, close): (&[u8], &[u8]) = if area {
        (
            b"<map name=\"m\"><area shape=\"rect\" coords=\"0,0,8,8\" alt=\"area\" href=",
            b"></map>",
        )
    } else {
        match style {
            7 => (b"<A class=\"l\" HREF=", b">"),
            _ => (b"<a href=", b">"),
        }
    };
    let quote: &[u8] = match style {
        5 => b"'",
        6 => b"",
        _ => b"\"",
    };
    out.extend_from_slice(open);
    out.extend_from_slice(quote);
    write_href(out, scheme, host, base_dir, path, h);
    out.extend_from_slice(quote);
    out.extend_from_slice(close);
    if !area {
        out.extend_from_slice(text);
        if let Some(n) = num {
            push_u64(out, u64::from(n));
        }
        out.extend_from_slice(if style == 7 { b"</A>" } else { b"</a>" });
    }
}

/// Writes an href for canonical `path` in the form selected by `h % 10`
/// (absolute forms use `scheme`, `http` or `https`).
pub(crate) fn write_href(
    out: &mut Vec<u8>,
    scheme: &str,
    host: &str,
    base_dir: &str,
    path: &str,
    h: u64,
) {
    match h % 10 {
        0 => out.extend_from_slice(path.as_bytes()),
        1 => {
            write_origin(out, scheme, host);
            if path != "/" {
                out.extend_from_slice(path.as_bytes());
            }
        }
        2 => {
            out.extend(scheme.bytes().map(|b| b.to_ascii_uppercase()));
            out.extend_from_slice(b"://");
            out.extend(host.bytes().map(|b| b.to_ascii_uppercase()));
            out.extend_from_slice(path.as_bytes());
        }
        3 => {
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(b"#sec-");
            push_u64(out, (h >> 8) % 100);
        }
        4 => write_pct(out, path, h),
        5 => write_relative(out, base_dir, path, false),
        6 => write_dots(out, path, h),
        7 => {
            out.extend_from_slice(b"//");
            out.extend_from_slice(host.as_bytes());
            out.extend_from_slice(path.as_bytes());
        }
        8 => write_relative(out, base_dir, path, true),
        _ => {
            write_origin(out, scheme, host);
            write_pct(out, path, h);
            out.extend_from_slice(b"#frag");
        }
    }
}

/// Percent-encodes the digits (and, for some links, a few letters with
/// lower-case hex) of `path`: all unreserved, so the canonical form decodes
/// them back.
fn write_pct(out: &mut Vec<u8>, path: &str, h: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let letters = (h >> 20) & 1 == 1;
    for b in path.bytes() {
        if b.is_ascii_digit() || (letters && matches!(b, b'p' | b'e' | b'o' | b'n')) {
            out.push(b'%');
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.push(b);
        }
    }
}

/// Relative reference from directory `base_dir` (ends with `/`) to `path`.
fn write_relative(out: &mut Vec<u8>, base_dir: &str, path: &str, dot: bool) {
    if path == base_dir {
        out.extend_from_slice(b"./");
    } else if let Some(rest) = path.strip_prefix(base_dir) {
        if dot {
            out.extend_from_slice(b"./");
        }
        out.extend_from_slice(rest.as_bytes());
    } else {
        let depth = base_dir.matches('/').count().saturating_sub(1);
        if dot && depth == 0 {
            out.extend_from_slice(b"./");
        }
        for _ in 0..depth {
            out.extend_from_slice(b"../");
        }
        out.extend_from_slice(path.trim_start_matches('/').as_bytes());
    }
}

/// Root-relative reference to `path` with dot segments.
fn write_dots(out: &mut Vec<u8>, path: &str, h: u64) {
    if (h >> 12) & 1 == 0 {
        out.extend_from_slice(b"/x/..");
        out.extend_from_slice(path.as_bytes());
    } else {
        let cut = path.rfind('/').map_or(0, |i| i + 1);
        out.extend_from_slice(&path.as_bytes()[..cut]);
        out.extend_from_slice(b"./");
        out.extend_from_slice(&path.as_bytes()[cut..]);
    }
}

fn push_u32_str(s: &mut String, mut n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        s.push(char::from(b));
    }
}
