//! Path-pattern matching for robots.txt rules (RFC 9309 §2.2.2 and §2.2.3).
//!
//! Rules are compiled once when a robots.txt file is parsed, so that checking
//! a URL is a handful of substring searches per rule and never needs a regex
//! engine. Patterns and request paths are both brought to one canonical
//! percent-encoded form first ([`normalize`]), so that `/%7Ejoe` and `/~joe`
//! are the same path, as the RFC requires.
//!
//! The wildcard matcher is the classic greedy algorithm: a pattern
//! `s0*s1*…*sn` matches when `s0` is a prefix of the path and each later
//! segment is found, leftmost, after the previous one (with `$` pinning `sn`
//! to the end). Leftmost matching of each segment is optimal for `*`-only
//! patterns, so there is no backtracking and the cost is linear in the path
//! length per segment: pathological patterns such as `/*a*a*a*…*b` cannot
//! cause exponential blow-up.

/// Bytes that RFC 3986 calls "unreserved": percent-encoded forms of these are
/// equivalent to the plain character, so they are decoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Bytes that never appear raw in a well-formed URL (controls, space,
/// non-ASCII and the "unsafe" printable characters). URL libraries always
/// percent-encode them, so a pattern that spells them raw is encoded too.
fn must_encode(b: u8) -> bool {
    b <= b' '
        || b >= 0x7f
        || matches!(
            b,
            b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'\\' | b'^'
        )
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_percent(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Bring a pattern or a path to canonical form: `%XX` of unreserved bytes is
/// decoded, every other `%XX` gets upper-case hex, a `%` that does not start
/// a valid escape becomes `%25`, and bytes that must not appear raw in a URL
/// (including all non-ASCII bytes, i.e. the UTF-8 encoding of non-ASCII
/// characters) are percent-encoded.
///
/// The output is always pure ASCII. `*` and `$` are left untouched so that a
/// pattern's wildcards survive; their encoded forms `%2A`/`%24` stay encoded
/// and therefore only match literally.
pub(crate) fn normalize(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            let hi = input.get(i + 1).copied().and_then(hex_value);
            let lo = input.get(i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                let value = (hi << 4) | lo;
                if is_unreserved(value) {
                    out.push(char::from(value));
                } else {
                    push_percent(&mut out, value);
                }
                i += 3;
                continue;
            }
            out.push_str("%25");
        } else if must_encode(b) {
            push_percent(&mut out, b);
        } else {
            out.push(char::from(b));
        }
        i += 1;
    }
    out
}

/// A compiled robots.txt path pattern.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    /// The pattern split on `*`; always at least one element.
    segments: Vec<Box<str>>,
    /// The pattern ended in `$`: the last segment must end the path.
    anchored: bool,
    /// Length in octets of the normalised pattern, including `*` and `$`;
    /// the precedence key of RFC 9309 §2.2.2 ("most octets").
    len: usize,
}

impl Pattern {
    /// Compile a raw pattern from a robots.txt line. Returns `None` for an
    /// empty pattern, which matches nothing (an empty `Disallow:` disallows
    /// nothing).
    ///
    /// A pattern that starts with neither `/` nor `*` gets a leading `/`, as
    /// its author plainly meant a path (`Disallow: private/`).
    pub(crate) fn compile(raw: &[u8]) -> Option<Pattern> {
        if raw.is_empty() {
            return None;
        }
        let mut normalized = normalize(raw);
        if !normalized.starts_with('/') && !normalized.starts_with('*') {
            normalized.insert(0, '/');
        }
        let len = normalized.len();
        let (body, anchored) = match normalized.strip_suffix('$') {
            Some(body) => (body, true),
            None => (normalized.as_str(), false),
        };
        let segments = body.split('*').map(Box::from).collect();
        Some(Pattern {
            segments,
            anchored,
            len,
        })
    }

    /// Length of the normalised pattern in octets.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether this pattern matches `path`, which must already be
    /// [`normalize`]d.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let Some((first, rest)) = self.segments.split_first() else {
            return false;
        };
        if !path.starts_with(&**first) {
            return false;
        }
        let mut pos = first.len();
        let Some((last, middle)) = rest.split_last() else {
            // No wildcard at all: a prefix match, or an exact one with `$`.
            return !self.anchored || pos == path.len();
        };
        for segment in middle {
            if segment.is_empty() {
                continue;
            }
            let Some(tail) = path.get(pos..) else {
                return false;
            };
            match tail.find(&**segment) {
                Some(found) => pos += found + segment.len(),
                None => return false,
            }
        }
        let Some(tail) = path.get(pos..) else {
            return false;
        };
        if self.anchored {
            tail.ends_with(&**last)
        } else {
            tail.contains(&**last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(p: &str) -> Pattern {
        Pattern::compile(p.as_bytes()).unwrap()
    }

    fn m(p: &str, path: &str) -> bool {
        pat(p).matches(&normalize(path.as_bytes()))
    }

    #[test]
    fn normalize_decodes_unreserved_and_uppercases_rest() {
        assert_eq!(normalize(b"/%7ejoe"), "/~joe");
        assert_eq!(normalize(b"/%7Ejoe"), "/~joe");
        assert_eq!(normalize(b"/a%2fb"), "/a%2Fb");
        assert_eq!(normalize(b"/a%41"), "/aA");
        assert_eq!(normalize(b"/100%"), "/100%25");
        assert_eq!(normalize(b"/%zz"), "/%25zz");
        assert_eq!(normalize(b"/a b"), "/a%20b");
    }

    #[test]
    fn normalize_encodes_non_ascii_as_utf8() {
        assert_eq!(normalize("/foo/bär".as_bytes()), "/foo/b%C3%A4r");
        assert_eq!(normalize(b"/foo/b%c3%a4r"), "/foo/b%C3%A4r");
        assert_eq!(normalize(&[b'/', 0xff]), "/%FF");
    }

    #[test]
    fn plain_prefix() {
        assert!(m("/fish", "/fish"));
        assert!(m("/fish", "/fish.html"));
        assert!(m("/fish", "/fish/salmon.html"));
        assert!(m("/fish", "/fishheads"));
        assert!(m("/fish", "/fish.php?id=anything"));
        assert!(!m("/fish", "/Fish.asp"));
        assert!(!m("/fish", "/catfish"));
        assert!(!m("/fish", "/?id=fish"));
        assert!(!m("/fish", "/desert/fish"));
    }

    #[test]
    fn trailing_star_is_the_same_as_prefix() {
        for path in ["/fish", "/fish.html", "/fish/salmon.html", "/fishheads"] {
            assert!(m("/fish*", path), "{path}");
        }
        assert!(!m("/fish*", "/Fish.asp"));
        assert!(!m("/fish*", "/catfish"));
    }

    #[test]
    fn directory_pattern() {
        assert!(m("/fish/", "/fish/"));
        assert!(m("/fish/", "/fish/?id=anything"));
        assert!(m("/fish/", "/fish/salmon.htm"));
        assert!(!m("/fish/", "/fish"));
        assert!(!m("/fish/", "/fish.html"));
        assert!(!m("/fish/", "/animals/fish/"));
        assert!(!m("/fish/", "/Fish/Salmon.asp"));
    }

    #[test]
    fn middle_wildcard_and_anchor() {
        assert!(m("/*.php", "/index.php"));
        assert!(m("/*.php", "/filename.php"));
        assert!(m("/*.php", "/folder/filename.php"));
        assert!(m("/*.php", "/folder/filename.php?parameters"));
        assert!(m("/*.php", "/folder/any.php.file.html"));
        assert!(m("/*.php", "/filename.php/"));
        assert!(!m("/*.php", "/"));
        assert!(!m("/*.php", "/windows.PHP"));

        assert!(m("/*.php$", "/filename.php"));
        assert!(m("/*.php$", "/folder/filename.php"));
        assert!(!m("/*.php$", "/filename.php?parameters"));
        assert!(!m("/*.php$", "/filename.php/"));
        assert!(!m("/*.php$", "/filename.php5"));
        assert!(!m("/*.php$", "/windows.PHP"));

        assert!(m("/fish*.php", "/fish.php"));
        assert!(m("/fish*.php", "/fishheads/catfish.php?parameters"));
        assert!(!m("/fish*.php", "/Fish.PHP"));
    }

    #[test]
    fn dollar_only_at_end_is_special() {
        assert!(m("/$", "/"));
        assert!(!m("/$", "/a"));
        assert!(m("/a$b", "/a$b"));
        assert!(!m("/a$b", "/a"));
        assert!(m("/a$$", "/a$"));
        assert!(!m("/a$$", "/a"));
    }

    #[test]
    fn anchor_segment_must_not_overlap_previous() {
        // "/ab*b$" must not match "/ab" by reusing the b.
        assert!(!m("/ab*b$", "/ab"));
        assert!(m("/ab*b$", "/abb"));
        assert!(m("/a*aa$", "/aaa"));
        assert!(!m("/a*aa$", "/aa"));
    }

    #[test]
    fn star_patterns() {
        assert!(m("*", "/anything"));
        assert!(m("/*", "/"));
        assert!(m("*.gif$", "/img/x.gif"));
        assert!(m("/**a", "/xxa"));
        assert!(m("/a*b*c", "/a_b_c_d"));
        assert!(!m("/a*b*c", "/a_c_b"));
    }

    #[test]
    fn percent_encoding_equivalence() {
        assert!(m("/%7Ejoe", "/~joe/index.html"));
        assert!(m("/~joe", "/%7ejoe/index.html"));
        assert!(m("/foo/bär", "/foo/b%C3%A4r"));
        assert!(m("/foo/b%c3%a4r", "/foo/bär"));
        assert!(m("/a%3cb", "/a%3Cb"));
        // Encoded `*` is literal, not a wildcard.
        assert!(!m("/a%2Ab", "/axb"));
        assert!(m("/a%2Ab", "/a%2ab"));
        // Encoded slash is not a slash.
        assert!(!m("/a/b", "/a%2Fb"));
    }

    #[test]
    fn relative_pattern_gets_slash_and_empty_is_none() {
        assert!(Pattern::compile(b"").is_none());
        assert!(m("private/", "/private/x"));
        assert_eq!(pat("private/").len(), "/private/".len());
    }

    #[test]
    fn length_counts_wildcards_and_anchor() {
        assert_eq!(pat("/*.php$").len(), 7);
        assert_eq!(pat("/%7ejoe").len(), "/~joe".len());
    }

    #[test]
    fn pathological_pattern_is_linear() {
        let mut pattern = String::from("/");
        for _ in 0..1000 {
            pattern.push_str("*a");
        }
        pattern.push_str("*b$");
        let path = format!("/{}", "a".repeat(100_000));
        assert!(!m(&pattern, &path));
        let path_b = format!("{path}b");
        assert!(m(&pattern, &path_b));
    }
}
