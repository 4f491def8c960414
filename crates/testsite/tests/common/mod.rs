//! Helpers shared by the integration tests: an HTTP client that never uses
//! a proxy, a naive href extractor and a URL canonicalizer.

#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use url::Url;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .user_agent("trawl-testsite-tests/1.0")
        .build()
        .unwrap()
}

/// A client for `site`: [`client`], trusting the site's certificate (and
/// only it) when the site is served over TLS.
pub fn client_for(site: &trawl_testsite::TestSite) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .user_agent("trawl-testsite-tests/1.0");
    if let Some(pem) = site.ca_pem() {
        b = b.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()]);
    }
    b.build().unwrap()
}

pub fn client_no_redirect() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Polls `cond` until it holds or `deadline` passes.
pub async fn wait_until<F, Fut>(deadline: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Finds the value of attribute `name` in the tag text `tag` (which starts
/// after the tag name), case-insensitively; handles quoted and unquoted
/// values.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(name) {
        let at = from + pos;
        from = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = tag[at + name.len()..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let rest = rest[1..].trim_start();
        let value = if let Some(r) = rest.strip_prefix('"') {
            r.split('"').next().unwrap_or("")
        } else if let Some(r) = rest.strip_prefix('\'') {
            r.split('\'').next().unwrap_or("")
        } else {
            rest.split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or("")
        };
        return Some(value.to_owned());
    }
    None
}

/// `(base href, hrefs of <a> and <area>)` of a well-formed page.
pub fn extract(html: &str) -> (Option<String>, Vec<String>) {
    let mut base = None;
    let mut hrefs = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while let Some(pos) = lower[i..].find('<') {
        let start = i + pos + 1;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &html[start..end];
        let name_end = tag
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(tag.len());
        let name = tag[..name_end].to_ascii_lowercase();
        let rest = &tag[name_end..];
        match name.as_str() {
            "a" | "area" => {
                if let Some(h) = attr(rest, "href") {
                    hrefs.push(h);
                }
            }
            "base" if base.is_none() => base = attr(rest, "href"),
            _ => {}
        }
        i = end;
    }
    (base, hrefs)
}

/// Percent-decodes escaped unreserved characters in `path`.
fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = &path[i + 1..i + 3];
            if let Ok(v) = u8::from_str_radix(hex, 16)
                && (v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~'))
            {
                out.push(v as char);
                i += 3;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Canonical `path[?query]` of `href` found on `page` (with optional base
/// href), if it is on `site_base`'s host and port.
pub fn canonical_same_site(
    site_base: &Url,
    page: &Url,
    base: Option<&str>,
    href: &str,
) -> Option<String> {
    let base_url = match base {
        Some(b) => page.join(b).ok()?,
        None => page.clone(),
    };
    let mut u = base_url.join(href.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    if u.host_str() != site_base.host_str()
        || u.port_or_known_default() != site_base.port_or_known_default()
    {
        return None;
    }
    u.set_fragment(None);
    let path = decode_unreserved(u.path());
    Some(match u.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    })
}

/// `<title>` text.
pub fn title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let s = lower.find("<title>")? + "<title>".len();
    let e = s + lower[s..].find("</title>")?;
    Some(decode_entities(&html[s..e]))
}

/// Decodes the few HTML entities the site writes (`&amp;`, `&quot;`,
/// `&lt;`, `&gt;`, `&#39;`).
pub fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Resident set size of this process in bytes (Linux), if known.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
