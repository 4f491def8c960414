//! URL canonicalization: one string per resource.
//!
//! The WHATWG parser (the `url` crate) already lower-cases the scheme and host,
//! drops default ports and resolves dot segments. On top of that we drop the
//! fragment, normalise percent-encoding (decode escaped unreserved characters,
//! upper-case the hex digits of the others), drop an empty query and strip
//! well-known session-ID parameters, which otherwise turn one page into
//! endlessly many URLs (a classic crawler trap), and sort the query's
//! parameters by name (as Scrapy's `canonicalize_url` does; repeated names
//! keep their order), so `?b=2&a=1` and `?a=1&b=2` are one URL — faceted
//! navigation writes its filters in every order.

use url::Url;

/// Query parameters that carry session IDs rather than content (compared
/// case-insensitively). Heritrix strips the same family.
const SESSION_PARAMS: &[&str] = &[
    "jsessionid",
    "phpsessid",
    "sid",
    "sessionid",
    "session_id",
    "aspsessionid",
    "cfid",
    "cftoken",
];

/// Parse `href` relative to `base` and return its canonical form, or `None`
/// when it is not an http(s) URL (mailto:, javascript:, data:, …) or does
/// not parse.
pub fn parse_canonical(base: Option<&Url>, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let url = match base {
        Some(base) => base.join(href).ok()?,
        None => Url::parse(href).ok()?,
    };
    canonicalize(url)
}

/// Canonicalize an already parsed URL; `None` for non-http(s) schemes or
/// URLs without a host.
pub fn canonicalize(mut url: Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    // Every step is skipped when it has nothing to do: this runs for every
    // link of every page, and most links are already canonical.
    if url.fragment().is_some() {
        url.set_fragment(None);
    }
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    let path = url.path();
    if path.contains('%') || path.contains(';') {
        let path = strip_path_session(&normalize_percent(path));
        if path != url.path() {
            url.set_path(&path);
        }
    }
    if let Some(query) = url.query() {
        let kept: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or("");
                let name = name.to_ascii_lowercase();
                !(SESSION_PARAMS.contains(&name.as_str()) || name.starts_with("aspsessionid"))
            })
            .map(normalize_percent)
            .collect();
        let mut kept = kept;
        kept.sort_by(|a, b| param_name(a).cmp(param_name(b)));
        if kept.is_empty() {
            url.set_query(None);
        } else {
            let joined = kept.join("&");
            if Some(joined.as_str()) != url.query() {
                url.set_query(Some(&joined));
            }
        }
    }
    Some(url)
}

fn param_name(pair: &str) -> &str {
    pair.split('=').next().unwrap_or("")
}

/// The politeness key of a URL: host plus port when it is not the default.
/// Two servers on different ports of one machine are different sites.
pub fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Remove `;jsessionid=...`-style path parameters.
fn strip_path_session(path: &str) -> String {
    if !path.contains(';') {
        return path.to_string();
    }
    let lower = path.to_ascii_lowercase();
    match lower.find(";jsessionid=") {
        Some(start) => {
            let rest = &path[start + 1..];
            let end = rest.find(['/', ';']).map_or(path.len(), |e| start + 1 + e);
            format!("{}{}", &path[..start], &path[end..])
        }
        None => path.to_string(),
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decode `%XX` escapes of unreserved characters and upper-case the rest.
fn normalize_percent(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            let v = h * 16 + l;
            if is_unreserved(v) {
                out.push(v as char);
            } else {
                out.push('%');
                out.push(bytes[i + 1].to_ascii_uppercase() as char);
                out.push(bytes[i + 2].to_ascii_uppercase() as char);
            }
            i += 3;
            continue;
        }
        // Copy one whole UTF-8 character.
        let ch_len = utf8_len(bytes[i]);
        out.push_str(&s[i..(i + ch_len).min(s.len())]);
        i += ch_len;
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        parse_canonical(None, s)
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn lowercases_and_drops_defaults() {
        assert_eq!(c("HTTP://Example.COM:80/a#frag"), "http://example.com/a");
        assert_eq!(c("https://example.com:443"), "https://example.com/");
        assert_eq!(c("http://example.com:8080/x"), "http://example.com:8080/x");
    }

    #[test]
    fn percent_encoding_normalized() {
        assert_eq!(
            c("http://e.com/%7Ejoe/%41b%2f%2F"),
            "http://e.com/~joe/Ab%2F%2F"
        );
        assert_eq!(c("http://e.com/p/%37"), "http://e.com/p/7");
        assert_eq!(c("http://e.com/a?q=%7e%3d"), "http://e.com/a?q=~%3D");
    }

    #[test]
    fn dot_segments_and_relative() {
        let base = Url::parse("http://e.com/a/b/c").unwrap();
        assert_eq!(
            parse_canonical(Some(&base), "../d").unwrap().as_str(),
            "http://e.com/a/d"
        );
        assert_eq!(
            parse_canonical(Some(&base), "./e#x").unwrap().as_str(),
            "http://e.com/a/b/e"
        );
        assert_eq!(
            parse_canonical(Some(&base), "//o.com/z").unwrap().as_str(),
            "http://o.com/z"
        );
        assert!(parse_canonical(Some(&base), "mailto:a@b.c").is_none());
        assert!(parse_canonical(Some(&base), "javascript:void(0)").is_none());
        assert!(parse_canonical(Some(&base), "   ").is_none());
    }

    #[test]
    fn query_parameters_sorted_by_name() {
        assert_eq!(
            c("http://e.com/s?size=m&color=red&q=shoes"),
            "http://e.com/s?color=red&q=shoes&size=m"
        );
        // Repeated names keep their order.
        assert_eq!(
            c("http://e.com/s?b=2&a=9&a=1"),
            "http://e.com/s?a=9&a=1&b=2"
        );
        assert_eq!(c("http://e.com/s?a=1&b=2"), "http://e.com/s?a=1&b=2");
    }

    #[test]
    fn session_ids_stripped() {
        assert_eq!(c("http://e.com/s?sid=abc&page=2"), "http://e.com/s?page=2");
        assert_eq!(c("http://e.com/s?PHPSESSID=1"), "http://e.com/s");
        assert_eq!(c("http://e.com/s;jsessionid=ABC123/x"), "http://e.com/s/x");
        assert_eq!(c("http://e.com/s?"), "http://e.com/s");
    }

    #[test]
    fn host_key_keeps_non_default_port() {
        assert_eq!(
            host_key(&Url::parse("http://a.com:81/").unwrap()),
            "a.com:81"
        );
        assert_eq!(host_key(&Url::parse("http://a.com:80/").unwrap()), "a.com");
    }

    #[test]
    fn malformed_percent_kept() {
        assert_eq!(c("http://e.com/%zz%4"), "http://e.com/%zz%4");
        assert_eq!(c("http://e.com/caf%C3%A9"), "http://e.com/caf%C3%A9");
    }
}
