//! Configuration of the generated test site ([`SiteConfig`], [`RobotsMode`])
//! and of its anti-crawler defence ([`Defense`], [`BanAnswer`], [`BanKey`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What `/robots.txt` answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RobotsMode {
    /// The built-in robots.txt (several groups, wildcards, sitemaps); see
    /// [`crate::robots::default_robots_txt`].
    #[default]
    Default,
    /// `/robots.txt` answers 404: everything is allowed (RFC 9309 §2.3.1.3).
    None,
    /// `/robots.txt` answers 500: a correct crawler assumes complete
    /// disallow (RFC 9309 §2.3.1.4), so the ground truth is empty.
    ServerError,
    /// Serve this text verbatim (status 200), except that the placeholder
    /// `{base}` is replaced by the site's base URL as seen by the client
    /// (e.g. `http://127.0.0.1:41234`), so custom files can carry `Sitemap:`
    /// lines. The ground truth applies these rules for the `trawl` token.
    Custom(String),
}

/// Parameters of the generated site. Everything is deterministic for a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// Seed of the generator: same seed (and other fields) → same site.
    pub seed: u64,
    /// Number of `/p/{i}` pages (`i` in `0..pages`).
    pub pages: usize,
    /// Number of links from each `/p/` page to other `/p/` pages.
    pub fanout: usize,
    /// Median size of a `/p/` page in bytes (actual sizes vary ±40 %, but a
    /// page is never smaller than its markup and links).
    pub page_bytes: usize,
    /// Link the fault/trap routes from `/` (they are always *served*).
    pub nasty: bool,
    /// What `/robots.txt` answers.
    pub robots: RobotsMode,
    /// Extra delay added to every `/p/` page response.
    pub latency: Option<Duration>,
    /// Keep a per-request log in [`crate::SiteStats::log`] (bounded to
    /// [`crate::LOG_CAPACITY`] entries). The benchmark turns it off.
    pub log_requests: bool,
    /// Also serve a product catalogue (`/shop/…`) and a blog (`/blog/…`)
    /// with structured data, linked from `/` (see [`crate::Product`],
    /// [`crate::Article`]). Off: the site is exactly as without it.
    pub shop: bool,
    /// Number of products when `shop` is on.
    pub shop_products: usize,
    /// Number of blog articles when `shop` is on.
    pub shop_articles: usize,
    /// Defend the site against fast clients: rate-limit per client IP
    /// and/or session cookie and ban offenders (see [`Defense`]). `None`:
    /// no limits, no cookies.
    pub defended: Option<Defense>,
    /// Also serve the trap site (see [`crate::TrapSite`]): crawler traps
    /// (`/calendar?d=…`, `/events/…/`, `/s/{sid}/…`, `/archive?page=…`,
    /// `/search?…`, `/docs/guide/guide/…/`) next to large real sections
    /// (`/products?page=…`, `/p?id=…`, `/news?page=…`, `/docs/…`), linked
    /// from `/`. Off: none of it is served (404).
    pub traps: bool,
    /// Number of `/p?id=…` products when `traps` is on.
    pub trap_products: usize,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            seed: 1,
            pages: 200,
            fanout: 8,
            page_bytes: 4000,
            nasty: false,
            robots: RobotsMode::Default,
            latency: None,
            log_requests: true,
            shop: false,
            shop_products: 100,
            shop_articles: 20,
            defended: None,
            traps: false,
            trap_products: 20_000,
        }
    }
}

/// The site's anti-crawler defence ([`SiteConfig::defended`]).
///
/// Every request except `/robots.txt` (and the stats endpoint) is
/// attributed to its client IP (the TCP peer address: behind a proxy, the
/// proxy's outgoing address) and to a session: the `sid` cookie it carries
/// if the site issued it, else a new `sid=<16 hex digits>` that the
/// response sets (`Set-Cookie`, also on banned answers). Unknown `sid`
/// values are ignored (a new one is issued).
///
/// The keys selected by [`Defense::by`] are rate-limited with a sliding
/// window: a request finding `max_requests` requests of the same key
/// already served within the last `window` bans that key for `ban_for`.
/// A banned key gets [`Defense::answer`] for every request (not counted in
/// the window, not extending the ban) until the ban ends; the key then
/// starts afresh with an empty window. With [`BanKey::Both`] the two keys
/// have separate windows and bans: a request is banned if its IP or its
/// session is banned or over its limit (only the key over its limit is
/// banned); a served request counts in both windows, a banned one in
/// neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defense {
    /// Requests per key allowed within `window`; the next one is banned.
    pub max_requests: u32,
    /// Length of the sliding window.
    pub window: Duration,
    /// What a banned client gets.
    pub answer: BanAnswer,
    /// What requests are counted by.
    pub by: BanKey,
    /// How long a ban lasts.
    pub ban_for: Duration,
}

impl Defense {
    /// `max_requests` per `window` by client IP, answering 429, banning for
    /// one `window`.
    pub fn new(max_requests: u32, window: Duration) -> Defense {
        Defense {
            max_requests,
            window,
            answer: BanAnswer::TooManyRequests,
            by: BanKey::ClientIp,
            ban_for: window,
        }
    }
}

/// Parses `N/WINDOW` (e.g. `30/10s`, `5/500ms`, `100/1m`) into
/// [`Defense::new`]`(N, WINDOW)`.
impl FromStr for Defense {
    type Err = String;

    fn from_str(s: &str) -> Result<Defense, String> {
        let (n, w) = s
            .split_once('/')
            .ok_or_else(|| format!("expected N/WINDOW (e.g. 30/10s), got {s:?}"))?;
        let n = n
            .trim()
            .parse()
            .map_err(|e| format!("bad request count {n:?} in {s:?}: {e}"))?;
        Ok(Defense::new(n, parse_duration(w)?))
    }
}

/// Parses a duration: a non-negative integer followed by `ms`, `s`, `m` or
/// `h` (no unit: seconds), e.g. `500ms`, `10s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("bad duration {s:?} (expected e.g. 500ms, 10s, 2m, 1h)"))?;
    let secs = |k: u64| {
        n.checked_mul(k)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration {s:?} too large"))
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" | "min" => secs(60),
        "h" => secs(3600),
        u => Err(format!(
            "bad duration unit {u:?} in {s:?} (expected ms, s, m or h)"
        )),
    }
}

/// What a banned client gets ([`Defense::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BanAnswer {
    /// `429 Too Many Requests` with `Retry-After` (whole seconds left of
    /// the ban, at least 1).
    #[default]
    TooManyRequests,
    /// `200 OK` with a short HTML CAPTCHA page (no links; contains
    /// `captcha` and [`CAPTCHA_TEXT`]) — a soft ban only the body betrays.
    Captcha,
    /// `403 Forbidden`.
    Forbidden,
}

/// Text every CAPTCHA page contains (see [`BanAnswer::Captcha`]).
pub const CAPTCHA_TEXT: &str = "Are you a robot?";

/// What requests are counted and banned by ([`Defense::by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BanKey {
    /// The TCP peer IP.
    #[default]
    ClientIp,
    /// The `sid` session cookie (a client that never sends it back starts a
    /// new session with every request, so it is never banned).
    SessionCookie,
    /// Both, separately: a request is banned if either is.
    Both,
}

impl fmt::Display for BanAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BanAnswer::TooManyRequests => "429",
            BanAnswer::Captcha => "captcha",
            BanAnswer::Forbidden => "403",
        })
    }
}

impl fmt::Display for BanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BanKey::ClientIp => "ip",
            BanKey::SessionCookie => "cookie",
            BanKey::Both => "both",
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_and_durations() {
        let d: Defense = "30/10s".parse().unwrap();
        assert_eq!(d, Defense::new(30, Duration::from_secs(10)));
        assert_eq!(d.ban_for, Duration::from_secs(10));
        let d: Defense = " 5 / 500ms".parse().unwrap();
        assert_eq!((d.max_requests, d.window), (5, Duration::from_millis(500)));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        for bad in ["", "s", "1.5s", "-1s", "3d", "10 parsecs"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for bad in ["30", "x/1s", "30/", "-1/1s", "30/1w"] {
            assert!(bad.parse::<Defense>().is_err(), "{bad}");
        }
    }
}
