//! Ban detection: what one HTTP exchange says about the proxy it went
//! through.
//!
//! The downloader hands [`BanRules::classify`] the response status and body
//! (or the transport failure, mapped from its client's error) and reports the
//! resulting [`Signal`] to the [`ProxyPool`](super::ProxyPool):
//!
//! - a transport failure on the way to the proxy (connect, 407, garbage) or
//!   a `407` status is the proxy's fault: [`Signal::ProxyFailed`];
//! - a rate limit (429, 503 with `Retry-After`, an exhausted `RateLimit`
//!   quota; see [`crate::pacing`]) is [`Signal::RateLimited`]: the exit is
//!   fine, it only has to slow down for that host — unless the body is a
//!   block page, which makes it a ban;
//! - a ban status (default 403, 503), a body matching a ban pattern
//!   (captcha pages and friends), or a `200` body shorter than `min_body`
//!   means the site refuses this proxy's IP: [`Signal::Banned`];
//! - a failure past the proxy (target unreachable, timeout, 5xx) is the
//!   site's: [`Signal::TargetFailed`];
//! - anything else, 404 included, is [`Signal::Ok`].

use regex::bytes::Regex;

/// The default ban statuses (429 is a rate limit, not a ban; so is a 503
/// with `Retry-After`).
pub const DEFAULT_BAN_STATUSES: [u16; 2] = [403, 503];

/// The default ban body pattern (matched case-insensitively): what block
/// and challenge pages say in their title or first heading, phrases only
/// they use, and the markers of the common anti-bot vendors' challenges.
/// A word like "captcha" elsewhere in a page (a login form's reCAPTCHA, an
/// article about CAPTCHAs) is not a ban.
pub const DEFAULT_BAN_PATTERN: &str = concat!(
    r"<(?:title|h1)[^>]*>[^<]{0,160}(?:captcha|are you a (?:ro)?bot|robot check|access denied|",
    r"attention required|unusual traffic|request blocked|pardon our interruption)",
    r"|are you a robot\?|unusual traffic from your|(?:solve|complete|enter) the captcha",
    r"|captcha-delivery\.com|px-captcha|/cdn-cgi/challenge-platform|_incapsula_resource",
);

/// How much of a body the patterns look at by default. Block pages are
/// small; this keeps a 10 MB page from costing a 10 MB scan.
pub const DEFAULT_SCAN_BYTES: usize = 64 * 1024;

/// A request that did not produce a response, as the downloader maps its
/// HTTP client's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    /// Could not connect to (or TLS-handshake with) the proxy itself.
    ProxyConnect,
    /// The proxy wants other credentials (407 to CONNECT, SOCKS auth refused).
    ProxyAuth,
    /// The proxy answered something that is not the protocol.
    ProxyProtocol,
    /// Everything past the proxy: target refused, timed out, reset, TLS.
    Target(String),
}

/// The verdict on one exchange through a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A normal response.
    Ok,
    /// The site refuses this proxy (for its host); the reason is for stats.
    Banned(String),
    /// The site asks this exit to slow down (for its host): pace, do not
    /// cool down.
    RateLimited(String),
    /// The proxy itself does not work.
    ProxyFailed(String),
    /// The site failed, not the proxy: no cooldown.
    TargetFailed,
}

impl Signal {
    /// A short stable name for stats.
    pub fn kind(&self) -> &'static str {
        match self {
            Signal::Ok => "ok",
            Signal::Banned(_) => "banned",
            Signal::RateLimited(_) => "rate_limited",
            Signal::ProxyFailed(_) => "proxy_failed",
            Signal::TargetFailed => "target_failed",
        }
    }
}

/// A ban pattern that is not a valid regex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad ban pattern `{pattern}`: {message}")]
pub struct BanRulesError {
    pub pattern: String,
    pub message: String,
}

/// What counts as a ban.
#[derive(Debug, Clone)]
pub struct BanRules {
    statuses: Vec<u16>,
    patterns: Vec<Regex>,
    min_body: Option<usize>,
    scan_bytes: usize,
}

impl Default for BanRules {
    fn default() -> Self {
        BanRules {
            statuses: DEFAULT_BAN_STATUSES.to_vec(),
            patterns: vec![
                compile(DEFAULT_BAN_PATTERN).expect("the default ban pattern is a valid regex"),
            ],
            min_body: None,
            scan_bytes: DEFAULT_SCAN_BYTES,
        }
    }
}

impl BanRules {
    /// Rules from scratch. Patterns are case-insensitive regexes (write
    /// `(?-i)` to turn that off), matched against the first
    /// [`DEFAULT_SCAN_BYTES`] of the body.
    pub fn new<S: AsRef<str>>(
        statuses: impl IntoIterator<Item = u16>,
        patterns: &[S],
        min_body: Option<usize>,
    ) -> Result<BanRules, BanRulesError> {
        let patterns = patterns
            .iter()
            .map(|p| {
                compile(p.as_ref()).map_err(|e| BanRulesError {
                    pattern: p.as_ref().to_string(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BanRules {
            statuses: statuses.into_iter().collect(),
            patterns,
            min_body,
            scan_bytes: DEFAULT_SCAN_BYTES,
        })
    }

    /// Replace the ban statuses.
    pub fn with_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// A `200` body shorter than this many bytes is a ban.
    pub fn with_min_body(mut self, min_body: Option<usize>) -> Self {
        self.min_body = min_body;
        self
    }

    /// Look at this many bytes of the body for patterns.
    pub fn with_scan_bytes(mut self, scan_bytes: usize) -> Self {
        self.scan_bytes = scan_bytes;
        self
    }

    pub fn statuses(&self) -> &[u16] {
        &self.statuses
    }

    pub fn min_body(&self) -> Option<usize> {
        self.min_body
    }

    /// Classify one exchange. `status` is `None` when there was no response
    /// (then `transport_error` says why); `body` is what was read of it. A
    /// 429 is a rate limit; [`BanRules::classify_with`] also reads the
    /// headers' verdict.
    pub fn classify(
        &self,
        status: Option<u16>,
        body: &[u8],
        transport_error: Option<TransportFailure>,
    ) -> Signal {
        let rate = status
            .map(|s| crate::pacing::RateInfo::from_response(s, |_| None))
            .unwrap_or_default();
        self.classify_with(status, body, transport_error, &rate)
    }

    /// [`BanRules::classify`] with what the response's headers say about
    /// rate limits (`Retry-After`, `RateLimit-*`).
    pub fn classify_with(
        &self,
        status: Option<u16>,
        body: &[u8],
        transport_error: Option<TransportFailure>,
        rate: &crate::pacing::RateInfo,
    ) -> Signal {
        match transport_error {
            Some(TransportFailure::ProxyConnect) => {
                return Signal::ProxyFailed("cannot connect to the proxy".to_string());
            }
            Some(TransportFailure::ProxyAuth) => {
                return Signal::ProxyFailed(
                    "proxy authentication failed (credentials refused)".to_string(),
                );
            }
            Some(TransportFailure::ProxyProtocol) => {
                return Signal::ProxyFailed("proxy protocol error".to_string());
            }
            Some(TransportFailure::Target(_)) => return Signal::TargetFailed,
            None => {}
        }
        let Some(status) = status else {
            return Signal::TargetFailed;
        };
        if status == 407 {
            return Signal::ProxyFailed("proxy authentication required (407)".to_string());
        }
        let scanned = &body[..body.len().min(self.scan_bytes)];
        let block_page = self.patterns.iter().find_map(|pattern| {
            pattern.find(scanned).map(|found| {
                let text = String::from_utf8_lossy(found.as_bytes());
                let text: String = text.chars().take(60).collect();
                format!("body matches \"{text}\"")
            })
        });
        if rate.limited && block_page.is_none() {
            return Signal::RateLimited(
                rate.reason
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {status}")),
            );
        }
        if self.statuses.contains(&status) {
            return Signal::Banned(format!("HTTP {status}"));
        }
        if let Some(reason) = block_page {
            return Signal::Banned(reason);
        }
        if status == 200
            && let Some(min) = self.min_body
            && body.len() < min
        {
            return Signal::Banned(format!("body of {} bytes (< {min})", body.len()));
        }
        if status >= 500 {
            return Signal::TargetFailed;
        }
        Signal::Ok
    }
}

fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_bans() {
        let rules = BanRules::default();
        for status in [403, 503] {
            assert_eq!(
                rules.classify(Some(status), b"<html>nope</html>", None),
                Signal::Banned(format!("HTTP {status}"))
            );
        }
        assert_eq!(rules.classify(Some(200), b"hello", None), Signal::Ok);
        assert_eq!(rules.classify(Some(404), b"not found", None), Signal::Ok);
        assert_eq!(rules.classify(Some(301), b"", None), Signal::Ok);
        assert_eq!(
            rules.classify(Some(500), b"oops", None),
            Signal::TargetFailed
        );
        assert_eq!(rules.classify(Some(502), b"", None), Signal::TargetFailed);

        let custom = BanRules::default().with_statuses([401]);
        assert!(matches!(
            custom.classify(Some(401), b"", None),
            Signal::Banned(_)
        ));
        assert_eq!(custom.classify(Some(403), b"", None), Signal::Ok);
    }

    #[test]
    fn rate_limits_are_not_bans() {
        use crate::pacing::RateInfo;
        let rules = BanRules::default();
        assert_eq!(
            rules.classify(Some(429), b"<html>slow down</html>", None),
            Signal::RateLimited("HTTP 429".into())
        );
        // A 503 with Retry-After asks for a pause; without, it is a ban
        // status (challenge pages use it).
        let paused = RateInfo::from_response(503, |n| (n == "retry-after").then_some("5"));
        assert!(matches!(
            rules.classify_with(Some(503), b"", None, &paused),
            Signal::RateLimited(_)
        ));
        assert!(matches!(
            rules.classify(Some(503), b"", None),
            Signal::Banned(_)
        ));
        // Even with a 429, a CAPTCHA is a ban.
        assert!(matches!(
            rules.classify(Some(429), b"<title>Are you a robot?</title>", None),
            Signal::Banned(_)
        ));
        // A 403 with an exhausted quota is a rate limit (GitHub does that),
        // a plain 403 a ban.
        let quota = RateInfo::from_response(403, |n| (n == "x-ratelimit-remaining").then_some("0"));
        assert!(matches!(
            rules.classify_with(Some(403), b"", None, &quota),
            Signal::RateLimited(_)
        ));
    }

    #[test]
    fn captcha_bodies_are_bans() {
        let rules = BanRules::default();
        let body = b"<html><title>Attention</title>Please solve the CAPTCHA</html>";
        assert_eq!(
            rules.classify(Some(200), body, None),
            Signal::Banned("body matches \"solve the CAPTCHA\"".to_string())
        );
        for body in [
            &b"Are You A Robot?"[..],
            b"Our systems have detected unusual traffic from your network",
            b"<h1>Access Denied</h1>",
            b"<html><head><title>Robot Check</title>",
            b"<title>Attention Required! | Cloudflare</title>",
            b"<script src=\"https://ct.captcha-delivery.com/c.js\"></script>",
            b"<div id=\"px-captcha\"></div>",
            b"<h1 class=\"big\">Please complete the captcha</h1>",
        ] {
            assert!(
                matches!(rules.classify(Some(200), body, None), Signal::Banned(_)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Pages that only mention or embed a CAPTCHA are not bans.
        for body in [
            &b"<html><head><title>Sign in</title><script src=\"https://www.google.com/recaptcha/api.js\"></script></head><body><form><div class=\"g-recaptcha\" data-sitekey=\"x\"></div></form>"[..],
            b"<title>Shop</title><p>Access to this page is not denied; we use hCaptcha on the contact form.</p>",
        ] {
            assert_eq!(
                rules.classify(Some(200), body, None),
                Signal::Ok,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Past the scan window a pattern is not seen.
        let mut long = vec![b'x'; DEFAULT_SCAN_BYTES];
        long.extend_from_slice(b"<title>captcha</title>");
        assert_eq!(rules.classify(Some(200), &long, None), Signal::Ok);

        let custom = BanRules::new([429], &["blocked by \\w+"], None).unwrap();
        assert_eq!(
            custom.classify(Some(200), b"You were BLOCKED BY Shield", None),
            Signal::Banned("body matches \"BLOCKED BY Shield\"".to_string())
        );
        assert_eq!(custom.classify(Some(200), b"captcha", None), Signal::Ok);
        let err = BanRules::new([403], &["(unclosed"], None).unwrap_err();
        assert_eq!(err.pattern, "(unclosed");
    }

    #[test]
    fn short_bodies_are_bans_when_asked() {
        let rules = BanRules::default();
        assert_eq!(rules.classify(Some(200), b"", None), Signal::Ok);
        let rules = rules.with_min_body(Some(100));
        assert_eq!(
            rules.classify(Some(200), b"tiny", None),
            Signal::Banned("body of 4 bytes (< 100)".to_string())
        );
        assert_eq!(rules.classify(Some(200), &[b'a'; 100], None), Signal::Ok);
        // Only a 200 is expected to carry a page.
        assert_eq!(rules.classify(Some(204), b"", None), Signal::Ok);
        assert_eq!(rules.classify(Some(404), b"", None), Signal::Ok);
    }

    #[test]
    fn transport_failures() {
        let rules = BanRules::default();
        assert!(matches!(
            rules.classify(None, b"", Some(TransportFailure::ProxyConnect)),
            Signal::ProxyFailed(_)
        ));
        let auth = rules.classify(None, b"", Some(TransportFailure::ProxyAuth));
        assert_eq!(
            auth,
            Signal::ProxyFailed("proxy authentication failed (credentials refused)".to_string())
        );
        assert!(matches!(
            rules.classify(None, b"", Some(TransportFailure::ProxyProtocol)),
            Signal::ProxyFailed(_)
        ));
        assert!(matches!(
            rules.classify(Some(407), b"", None),
            Signal::ProxyFailed(_)
        ));
        assert_eq!(
            rules.classify(
                None,
                b"",
                Some(TransportFailure::Target("connection refused".into()))
            ),
            Signal::TargetFailed
        );
        assert_eq!(rules.classify(None, b"", None), Signal::TargetFailed);
        assert_eq!(Signal::Banned(String::new()).kind(), "banned");
    }
}
