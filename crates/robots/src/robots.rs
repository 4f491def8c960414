//! robots.txt parsing and URL checking per RFC 9309.
//!
//! The crawler must honour a site's robots.txt before fetching anything else
//! from it. [`Robots::parse`] reads a file once, keeps only the rules of the
//! group(s) that apply to our product token, and compiles them (see
//! [`crate::matcher`]) so that [`Robots::is_allowed`] is cheap enough to call
//! for every discovered URL.
//!
//! Group selection (RFC 9309 §2.2.1): consecutive `User-agent` lines share a
//! group; every group naming our product token (case-insensitively, as a
//! whole token) is merged; if none does, every `*` group is merged; if there
//! is no `*` group either, everything is allowed. Rules before the first
//! `User-agent` line are ignored. `Sitemap` lines are collected from the
//! whole file regardless of groups.

use std::time::Duration;

use crate::matcher::{Pattern, normalize};

/// Only this many leading bytes of a robots.txt body are parsed
/// (RFC 9309 §2.5 requires at least 500 KiB to be parsed).
pub const MAX_ROBOTS_BYTES: usize = 500 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One compiled `Allow`/`Disallow` rule.
#[derive(Clone, Debug)]
struct Rule {
    allow: bool,
    pattern: Pattern,
}

/// The parsed robots.txt rules that apply to one product token.
///
/// Cheap to query, `Clone + Send + Sync`, and independent of the body it was
/// parsed from.
#[derive(Clone, Debug)]
pub struct Robots {
    /// Rules of the selected group(s), sorted by precedence: longest pattern
    /// first, `Allow` before `Disallow` on equal length. The first match
    /// decides.
    rules: Vec<Rule>,
    crawl_delay: Option<Duration>,
    sitemaps: Vec<String>,
}

impl Default for Robots {
    /// Same as [`Robots::allow_all`].
    fn default() -> Self {
        Robots::allow_all()
    }
}

/// The directives we understand; everything else is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Directive {
    UserAgent,
    Allow,
    Disallow,
    CrawlDelay,
    Sitemap,
}

impl Directive {
    /// Case-insensitive directive name, tolerating common spellings and typos
    /// seen in the wild.
    fn from_key(key: &[u8]) -> Option<Directive> {
        let key = key.to_ascii_lowercase();
        let directive = match key.as_slice() {
            b"user-agent" | b"useragent" | b"user agent" | b"user_agent" => Directive::UserAgent,
            b"allow" => Directive::Allow,
            b"disallow" | b"dissallow" | b"dissalow" | b"disalow" | b"diasllow" | b"disallaw" => {
                Directive::Disallow
            }
            b"crawl-delay" | b"crawldelay" | b"crawl_delay" | b"crawl delay" => {
                Directive::CrawlDelay
            }
            b"sitemap" | b"site-map" | b"site map" => Directive::Sitemap,
            _ => return None,
        };
        Some(directive)
    }
}

/// Rules and crawl delays gathered from a set of groups.
#[derive(Default)]
struct Bucket {
    /// At least one group landed here (even one without rules, which still
    /// counts as a selected group that allows everything).
    seen: bool,
    rules: Vec<Rule>,
    crawl_delay: Option<Duration>,
}

impl Bucket {
    fn add_crawl_delay(&mut self, delay: Duration) {
        // Merged groups may each give a delay; the largest is the politest.
        self.crawl_delay = Some(self.crawl_delay.map_or(delay, |d| d.max(delay)));
    }
}

/// Which bucket(s) the group being read belongs to.
#[derive(Clone, Copy, Default)]
struct GroupTarget {
    specific: bool,
    global: bool,
}

impl Robots {
    /// Parse a robots.txt body for the given product token (e.g. `"trawl"`).
    /// Only the first [`MAX_ROBOTS_BYTES`] are parsed; a line cut by that
    /// limit is dropped. Never fails: garbage lines are ignored.
    ///
    /// The product token is reduced to its leading run of `[A-Za-z_-]`, so
    /// `"trawl/0.1"` behaves like `"trawl"`.
    pub fn parse(body: &[u8], product_token: &str) -> Robots {
        let body = truncate(body);
        let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
        let token = product_token_of(product_token.trim().as_bytes());

        let mut specific = Bucket::default();
        let mut global = Bucket::default();
        let mut sitemaps: Vec<String> = Vec::new();
        // `None` until the first User-agent line: records before it are ignored.
        let mut current: Option<GroupTarget> = None;
        // The previous group line was a User-agent line, so another one joins
        // the same group.
        let mut in_agent_list = false;

        for line in body.split(|&b| b == b'\n' || b == b'\r') {
            let Some((key, value)) = split_line(line) else {
                continue;
            };
            let Some(directive) = Directive::from_key(key) else {
                tracing::trace!(key = %String::from_utf8_lossy(key), "ignoring unknown robots.txt directive");
                continue;
            };
            match directive {
                Directive::UserAgent => {
                    if !in_agent_list {
                        current = Some(GroupTarget::default());
                        in_agent_list = true;
                    }
                    if let Some(target) = current.as_mut() {
                        if is_global_agent(value) {
                            target.global = true;
                        } else if !token.is_empty()
                            && product_token_of(value).eq_ignore_ascii_case(token)
                        {
                            target.specific = true;
                        }
                        // A group naming both us and `*` applies to us
                        // specifically, not to the `*` merge.
                        if target.specific {
                            specific.seen = true;
                        } else if target.global {
                            global.seen = true;
                        }
                    }
                }
                Directive::Allow | Directive::Disallow => {
                    in_agent_list = false;
                    let Some(bucket) = select_bucket(current, &mut specific, &mut global) else {
                        continue;
                    };
                    if let Some(pattern) = Pattern::compile(value) {
                        bucket.rules.push(Rule {
                            allow: directive == Directive::Allow,
                            pattern,
                        });
                    }
                }
                Directive::CrawlDelay => {
                    in_agent_list = false;
                    let Some(bucket) = select_bucket(current, &mut specific, &mut global) else {
                        continue;
                    };
                    if let Some(delay) = parse_crawl_delay(value) {
                        bucket.add_crawl_delay(delay);
                    }
                }
                Directive::Sitemap => {
                    let url = String::from_utf8_lossy(value).into_owned();
                    if !url.is_empty() && !sitemaps.contains(&url) {
                        sitemaps.push(url);
                    }
                }
            }
        }

        let chosen = if specific.seen {
            specific
        } else if global.seen {
            global
        } else {
            Bucket::default()
        };
        let mut rules = chosen.rules;
        // Longest pattern first; on a tie, Allow first (RFC 9309 §2.2.2).
        // Stable, so file order is kept among identical keys.
        rules.sort_by(|a, b| {
            b.pattern
                .len()
                .cmp(&a.pattern.len())
                .then(b.allow.cmp(&a.allow))
        });
        Robots {
            rules,
            crawl_delay: chosen.crawl_delay,
            sitemaps,
        }
    }

    /// A robots.txt that allows everything (e.g. the file does not exist).
    pub fn allow_all() -> Robots {
        Robots {
            rules: Vec::new(),
            crawl_delay: None,
            sitemaps: Vec::new(),
        }
    }

    /// A robots.txt that disallows everything except `/robots.txt` itself
    /// (e.g. the server is failing).
    pub fn disallow_all() -> Robots {
        let rules = Pattern::compile(b"/")
            .map(|pattern| {
                vec![Rule {
                    allow: false,
                    pattern,
                }]
            })
            .unwrap_or_default();
        Robots {
            rules,
            crawl_delay: None,
            sitemaps: Vec::new(),
        }
    }

    /// What RFC 9309 §2.3.1 says to do for a fetch outcome (after redirects
    /// have been followed):
    ///
    /// * 2xx: parse `body`;
    /// * 3xx (redirects exhausted) and 4xx: "unavailable", allow all, except
    ///   429 Too Many Requests, which is treated like 5xx: the server is
    ///   asking us to back off, so fetching everything else would be rude
    ///   (Google does the same);
    /// * 5xx and anything else (1xx, nonsense codes): "unreachable",
    ///   disallow all.
    pub fn from_status(status: u16, body: &[u8], product_token: &str) -> Robots {
        match status {
            200..=299 => Robots::parse(body, product_token),
            429 => Robots::disallow_all(),
            300..=499 => Robots::allow_all(),
            _ => Robots::disallow_all(),
        }
    }

    /// Whether the crawler may fetch `path`, the path plus optional `?query`
    /// of a URL (e.g. `"/a/b?x=1"`). Anything from a `#` on is ignored; an
    /// empty path means `/`. `/robots.txt` is always allowed.
    pub fn is_allowed(&self, path: &str) -> bool {
        let path = path.split('#').next().unwrap_or(path);
        let mut normalized = normalize(path.as_bytes());
        if !normalized.starts_with('/') {
            normalized.insert(0, '/');
        }
        let path_only = normalized.split('?').next().unwrap_or(&normalized);
        if path_only == "/robots.txt" {
            return true;
        }
        self.rules
            .iter()
            .find(|rule| rule.pattern.matches(&normalized))
            .is_none_or(|rule| rule.allow)
    }

    /// The `Crawl-delay` of the selected group(s), if any valid one was given
    /// (non-negative, finite, fractional seconds allowed). When merged groups
    /// give several, the largest wins.
    pub fn crawl_delay(&self) -> Option<Duration> {
        self.crawl_delay
    }

    /// Every `Sitemap:` URL in the file, in file order, without duplicates,
    /// regardless of groups. Values are as written (not resolved or
    /// validated).
    pub fn sitemaps(&self) -> &[String] {
        &self.sitemaps
    }
}

/// The bucket receiving records of the current group, if any.
fn select_bucket<'a>(
    current: Option<GroupTarget>,
    specific: &'a mut Bucket,
    global: &'a mut Bucket,
) -> Option<&'a mut Bucket> {
    match current {
        Some(GroupTarget { specific: true, .. }) => Some(specific),
        Some(GroupTarget { global: true, .. }) => Some(global),
        _ => None,
    }
}

/// The first [`MAX_ROBOTS_BYTES`] of `body`, minus a trailing line cut
/// short by the limit (a truncated `Disallow: /private` must not become
/// `Disallow: /p`).
fn truncate(body: &[u8]) -> &[u8] {
    let Some(head) = body.get(..MAX_ROBOTS_BYTES) else {
        return body;
    };
    tracing::debug!(
        len = body.len(),
        limit = MAX_ROBOTS_BYTES,
        "robots.txt truncated"
    );
    let cut_mid_line = !matches!(body.get(MAX_ROBOTS_BYTES), Some(b'\n' | b'\r'));
    if !cut_mid_line {
        return head;
    }
    match head.iter().rposition(|&b| b == b'\n' || b == b'\r') {
        Some(end) => head.get(..end).unwrap_or(head),
        None => &[],
    }
}

/// Split a line into (directive, value), dropping comments and surrounding
/// whitespace. The separator is `:`; as a tolerance, a line without a colon
/// is split at its first whitespace (`Disallow /x`).
fn split_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let line = match line.iter().position(|&b| b == b'#') {
        Some(hash) => line.get(..hash).unwrap_or(line),
        None => line,
    };
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    let sep = line
        .iter()
        .position(|&b| b == b':')
        .or_else(|| line.iter().position(|b| b.is_ascii_whitespace()))?;
    let key = line.get(..sep)?.trim_ascii();
    let value = line.get(sep + 1..)?.trim_ascii();
    if key.is_empty() {
        return None;
    }
    Some((key, value))
}

/// `*` as a user-agent value (optionally followed by whitespace and junk).
fn is_global_agent(value: &[u8]) -> bool {
    match value.split_first() {
        Some((b'*', rest)) => rest.first().is_none_or(|b| b.is_ascii_whitespace()),
        _ => false,
    }
}

/// The product token at the start of a user-agent value: its leading run of
/// `[A-Za-z_-]` (RFC 9309 §2.2.1), so `trawl/1.0` names `trawl`.
fn product_token_of(value: &[u8]) -> &[u8] {
    let end = value
        .iter()
        .position(|&b| !(b.is_ascii_alphabetic() || b == b'_' || b == b'-'))
        .unwrap_or(value.len());
    value.get(..end).unwrap_or(value)
}

/// A crawl delay in (possibly fractional) seconds; `None` if invalid.
fn parse_crawl_delay(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?;
    let secs: f64 = text.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests;
