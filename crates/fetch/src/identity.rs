//! Request identities: a User-Agent with the headers its browser would send.
//!
//! A browser's User-Agent never travels alone. Chrome sends client hints
//! (`sec-ch-ua`, `sec-ch-ua-mobile`, `sec-ch-ua-platform`) that must agree
//! with the UA string; Firefox and Safari send none; each browser has its own
//! `accept` and `accept-language` defaults. A Chrome UA with Firefox's
//! `accept`, or with no client hints at all, contradicts itself, and that is
//! cheaper for a server to spot than any rate pattern. So an identity is a
//! whole profile: [`UserAgentProfile`].
//!
//! [`Identities::builtin`] holds eight current desktop and mobile profiles.
//! [`Identities::from_user_agents`] builds profiles from configured UA
//! strings, sniffing the browser family ([`BrowserFamily::sniff`]) to derive
//! matching headers; Chrome's and Edge's `sec-ch-ua` brand list is generated
//! with Chromium's own GREASE rule from the major version, so it matches what
//! that version really sends. A UA that is not a known browser (a bot's)
//! gets only generic `accept` headers.
//!
//! Headers are lower-case and listed in the browser's order, as a navigation
//! request to an HTTPS page would carry them. Browsers send the `sec-*`
//! headers only to secure origins: use [`UserAgentProfile::headers_for`].
//! There is deliberately no `accept-encoding`: the HTTP client sets it to
//! what it can decode, and setting it by hand would turn that decoding off.
//!
//! [`parse_header_line`] reads `--header "Name: value"` flags.

use rand::Rng;

/// The document `accept` of Chromium browsers.
const CHROMIUM_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
/// The document `accept` of Firefox (since 128) and Safari.
const PLAIN_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// Built-in identities: (name, User-Agent). Versions of mid-2025, reduced
/// UA strings as the browsers send them (Chrome freezes the OS and minor
/// version fields; Safari freezes macOS at 10_15_7).
const BUILTIN: &[(&str, &str)] = &[
    (
        "chrome-windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
    ),
    (
        "chrome-macos",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
    ),
    (
        "chrome-linux",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
    ),
    (
        "edge-windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.0.0",
    ),
    (
        "firefox-windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:141.0) Gecko/20100101 Firefox/141.0",
    ),
    (
        "safari-macos",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Safari/605.1.15",
    ),
    (
        "chrome-android",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36",
    ),
    (
        "safari-ios",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1",
    ),
];

/// A User-Agent and the other headers its browser sends with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgentProfile {
    pub name: String,
    pub user_agent: String,
    /// Lower-case names, in the browser's order; without `user-agent`.
    pub headers: Vec<(String, String)>,
}

impl UserAgentProfile {
    /// A profile for any UA string, with headers derived from its family.
    pub fn from_user_agent(name: impl Into<String>, user_agent: &str) -> Self {
        UserAgentProfile {
            name: name.into(),
            user_agent: user_agent.to_string(),
            headers: derive_headers(user_agent),
        }
    }

    /// The value of header `name` (case-insensitive), if the profile sets it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers for a request to a secure (`https`) origin or not:
    /// browsers send client hints and fetch metadata (`sec-*`) only to
    /// secure origins.
    pub fn headers_for(&self, secure: bool) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .filter(move |(n, _)| secure || !n.starts_with("sec-"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// The browser a UA string claims to be, as far as headers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserFamily {
    /// Google Chrome (desktop or Android): client hints, brand "Google Chrome".
    Chrome,
    /// Microsoft Edge (Chromium): client hints, brand "Microsoft Edge".
    Edge,
    /// Another Chromium browser (Opera, Samsung Internet, headless Chrome…):
    /// Chromium's `accept`, but no client hints, whose brands we cannot know.
    OtherChromium,
    /// Firefox on Gecko (not Firefox on iOS, which is WebKit).
    Firefox,
    /// Safari, and every iOS browser (all WebKit).
    Safari,
    /// Bots, libraries, anything else.
    Unknown,
}

impl BrowserFamily {
    /// Guess the family from a UA string.
    pub fn sniff(ua: &str) -> BrowserFamily {
        let lower = ua.to_ascii_lowercase();
        let is_bot = lower.contains("compatible;")
            || ["bot/", "bot;", "bot)", "crawler", "spider"]
                .iter()
                .any(|t| lower.contains(t));
        if is_bot || !ua.starts_with("Mozilla/5.0") {
            return BrowserFamily::Unknown;
        }
        let ios = ["iPhone", "iPad", "iPod"].iter().any(|t| ua.contains(t));
        if ios && ua.contains("AppleWebKit/") {
            return BrowserFamily::Safari;
        }
        if ua.contains("Firefox/") && ua.contains("Gecko/") {
            return BrowserFamily::Firefox;
        }
        if ua.contains("Chrome/") {
            if ua.contains("Edg/") || ua.contains("EdgA/") {
                return BrowserFamily::Edge;
            }
            let others = [
                "OPR/",
                "Opera",
                "SamsungBrowser/",
                "YaBrowser/",
                "UCBrowser/",
                "HeadlessChrome/",
                "Electron/",
                "; wv)",
            ];
            if others.iter().any(|t| ua.contains(t)) {
                return BrowserFamily::OtherChromium;
            }
            return BrowserFamily::Chrome;
        }
        if ua.contains("AppleWebKit/") && ua.contains("Version/") && ua.contains("Safari/") {
            return BrowserFamily::Safari;
        }
        BrowserFamily::Unknown
    }

    pub fn name(self) -> &'static str {
        match self {
            BrowserFamily::Chrome => "chrome",
            BrowserFamily::Edge => "edge",
            BrowserFamily::OtherChromium => "chromium",
            BrowserFamily::Firefox => "firefox",
            BrowserFamily::Safari => "safari",
            BrowserFamily::Unknown => "generic",
        }
    }
}

/// The `sec-ch-ua-platform` value (unquoted) for a UA's OS, if known.
fn platform(ua: &str) -> Option<&'static str> {
    if ua.contains("Windows") {
        Some("Windows")
    } else if ua.contains("Android") {
        Some("Android")
    } else if ua.contains("CrOS") {
        Some("Chrome OS")
    } else if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
        Some("iOS")
    } else if ua.contains("Macintosh") || ua.contains("Mac OS X") {
        Some("macOS")
    } else if ua.contains("Linux") || ua.contains("X11") {
        Some("Linux")
    } else {
        None
    }
}

/// The major version after `token` (`"Chrome/"` → 138).
fn major_version(ua: &str, token: &str) -> Option<u32> {
    let rest = &ua[ua.find(token)? + token.len()..];
    let digits: &str = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    digits.parse().ok()
}

/// The `sec-ch-ua` brand list a Chromium browser of major `version` sends
/// with `brand`, following Chromium's GREASE rule (`GenerateBrandVersionList`
/// in `components/embedder_support/user_agent_utils.cc`): the fake brand,
/// its version and the order of the three entries all depend on the major
/// version, e.g. 138 → `"Not)A;Brand";v="8", "Chromium";v="138",
/// "Google Chrome";v="138"`.
fn chromium_brands(brand: &str, version: u32) -> String {
    const GREASE_CHARS: [char; 11] = [' ', '(', ':', '-', '.', '/', ')', ';', '=', '?', '_'];
    const GREASE_VERSIONS: [&str; 3] = ["8", "99", "24"];
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let seed = version as usize;
    let grease = format!(
        "Not{}A{}Brand",
        GREASE_CHARS[seed % GREASE_CHARS.len()],
        GREASE_CHARS[(seed + 1) % GREASE_CHARS.len()]
    );
    let entries = [
        (
            grease.as_str(),
            GREASE_VERSIONS[seed % GREASE_VERSIONS.len()].to_string(),
        ),
        ("Chromium", version.to_string()),
        (brand, version.to_string()),
    ];
    let order = ORDERS[seed % ORDERS.len()];
    let mut slots: [Option<&(&str, String)>; 3] = [None; 3];
    for (entry, &position) in entries.iter().zip(order.iter()) {
        slots[position] = Some(entry);
    }
    slots
        .iter()
        .flatten()
        .map(|(name, v)| format!("\"{name}\";v=\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn derive_headers(ua: &str) -> Vec<(String, String)> {
    let family = BrowserFamily::sniff(ua);
    let mut h: Vec<(&str, String)> = Vec::new();
    match family {
        BrowserFamily::Chrome | BrowserFamily::Edge | BrowserFamily::OtherChromium => {
            let hints = match family {
                BrowserFamily::Chrome => Some(("Google Chrome", major_version(ua, "Chrome/"))),
                BrowserFamily::Edge => Some((
                    "Microsoft Edge",
                    major_version(ua, "Edg/").or_else(|| major_version(ua, "EdgA/")),
                )),
                _ => None,
            };
            if let Some((brand, Some(version))) = hints
                && let Some(platform) = platform(ua)
            {
                let mobile = if ua.contains("Mobile") { "?1" } else { "?0" };
                h.push(("sec-ch-ua", chromium_brands(brand, version)));
                h.push(("sec-ch-ua-mobile", mobile.into()));
                h.push(("sec-ch-ua-platform", format!("\"{platform}\"")));
            }
            h.push(("upgrade-insecure-requests", "1".into()));
            h.push(("accept", CHROMIUM_ACCEPT.into()));
            h.push(("sec-fetch-site", "none".into()));
            h.push(("sec-fetch-mode", "navigate".into()));
            h.push(("sec-fetch-user", "?1".into()));
            h.push(("sec-fetch-dest", "document".into()));
            h.push(("accept-language", "en-US,en;q=0.9".into()));
            h.push(("priority", "u=0, i".into()));
        }
        BrowserFamily::Firefox => {
            h.push(("accept", PLAIN_ACCEPT.into()));
            h.push(("accept-language", "en-US,en;q=0.5".into()));
            h.push(("upgrade-insecure-requests", "1".into()));
            h.push(("sec-fetch-dest", "document".into()));
            h.push(("sec-fetch-mode", "navigate".into()));
            h.push(("sec-fetch-site", "none".into()));
            h.push(("sec-fetch-user", "?1".into()));
            h.push(("priority", "u=0, i".into()));
        }
        BrowserFamily::Safari => {
            // WebKit sends no sec-fetch-user, and upgrade-insecure-requests
            // only to http:// URLs.
            h.push(("accept", PLAIN_ACCEPT.into()));
            h.push(("sec-fetch-site", "none".into()));
            h.push(("sec-fetch-mode", "navigate".into()));
            h.push(("accept-language", "en-US,en;q=0.9".into()));
            h.push(("sec-fetch-dest", "document".into()));
        }
        BrowserFamily::Unknown => {
            h.push(("accept", PLAIN_ACCEPT.into()));
            h.push(("accept-language", "en-US,en;q=0.9".into()));
        }
    }
    h.into_iter().map(|(n, v)| (n.to_string(), v)).collect()
}

/// A non-empty list of identities to send requests as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identities {
    profiles: Vec<UserAgentProfile>,
}

impl Identities {
    /// The built-in profiles: Chrome on Windows, macOS, Linux and Android,
    /// Edge on Windows, Firefox on Windows, Safari on macOS and iOS.
    pub fn builtin() -> Self {
        Identities {
            profiles: BUILTIN
                .iter()
                .map(|(name, ua)| UserAgentProfile::from_user_agent(*name, ua))
                .collect(),
        }
    }

    /// Profiles for configured UA strings, each with headers matching its
    /// browser family. Fails on an empty list, a blank UA or one that is not
    /// a valid header value.
    pub fn from_user_agents(user_agents: Vec<String>) -> Result<Self, String> {
        if user_agents.is_empty() {
            return Err("no user agents given".to_string());
        }
        let mut profiles = Vec::with_capacity(user_agents.len());
        for (i, ua) in user_agents.iter().enumerate() {
            let ua = ua.trim();
            if ua.is_empty() {
                return Err(format!("user agent #{} is empty", i + 1));
            }
            check_value(ua).map_err(|e| format!("user agent #{}: {e}", i + 1))?;
            let name = format!("{}-{}", BrowserFamily::sniff(ua).name(), i + 1);
            profiles.push(UserAgentProfile::from_user_agent(name, ua));
        }
        Ok(Identities { profiles })
    }

    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Always false: there is at least one profile.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&UserAgentProfile> {
        self.profiles.get(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = &UserAgentProfile> {
        self.profiles.iter()
    }

    /// A uniformly random index below [`len`](Self::len).
    pub fn random_index(&self) -> usize {
        if self.profiles.len() <= 1 {
            return 0;
        }
        rand::rng().random_range(0..self.profiles.len())
    }
}

/// Headers the HTTP client must own: message framing and connection
/// management (the latter are also forbidden in HTTP/2).
const RESERVED_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
];

/// Parse a `--header` flag, `"Name: value"`, into a lower-case name and a
/// value with surrounding blanks removed. The name must be an HTTP token;
/// the value visible ASCII, spaces and tabs (no newlines or other control
/// characters, which could smuggle extra headers). An empty value is fine.
pub fn parse_header_line(line: &str) -> Result<(String, String), String> {
    let Some((name, value)) = line.split_once(':') else {
        return Err(format!("header {line:?} is not `Name: value`"));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("header {line:?} has no name"));
    }
    if let Some(c) = name.chars().find(|&c| !is_token_char(c)) {
        return Err(format!("header name {name:?} contains {c:?}"));
    }
    let name = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&name.as_str()) {
        return Err(format!("header {name:?} is set by the HTTP client"));
    }
    let value = value.trim_matches([' ', '\t']);
    check_value(value).map_err(|e| format!("header {name:?}: {e}"))?;
    Ok((name, value.to_string()))
}

/// RFC 9110 `tchar`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn check_value(value: &str) -> Result<(), String> {
    match value
        .chars()
        .find(|&c| !(c == '\t' || (' '..='~').contains(&c)))
    {
        None => Ok(()),
        Some(c @ ('\r' | '\n')) => Err(format!("value contains a line break ({c:?})")),
        Some(c) if c.is_ascii() => Err(format!("value contains control character {c:?}")),
        Some(c) => Err(format!(
            "value contains non-ASCII {c:?} (percent-encode it)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OS a UA names, spelled as `sec-ch-ua-platform` spells it.
    fn os_of(ua: &str) -> &'static str {
        if ua.contains("(Windows NT") {
            "Windows"
        } else if ua.contains("Android") {
            "Android"
        } else if ua.contains("(iPhone") {
            "iOS"
        } else if ua.contains("(Macintosh") {
            "macOS"
        } else if ua.contains("(X11; Linux") {
            "Linux"
        } else {
            panic!("no OS in {ua}")
        }
    }

    #[test]
    fn builtin_profiles_are_consistent() {
        let ids = Identities::builtin();
        assert_eq!(ids.len(), 8);
        assert!(!ids.is_empty());
        let mut names = Vec::new();
        for p in ids.iter() {
            names.push(p.name.as_str());
            let ua = &p.user_agent;
            assert!(ua.starts_with("Mozilla/5.0 ("), "{ua}");
            assert!(p.header("user-agent").is_none());
            assert!(p.header("accept-encoding").is_none());
            assert!(p.header("accept").is_some() && p.header("accept-language").is_some());
            for (n, v) in &p.headers {
                assert_eq!(n, &n.to_ascii_lowercase());
                assert!(check_value(v).is_ok(), "{n}: {v}");
            }
            let chromium = ua.contains("Chrome/");
            if chromium {
                let platform = p.header("sec-ch-ua-platform").expect("client hints");
                assert_eq!(platform, format!("\"{}\"", os_of(ua)), "{}", p.name);
                let mobile = if ua.contains("Mobile") { "?1" } else { "?0" };
                assert_eq!(p.header("sec-ch-ua-mobile"), Some(mobile), "{}", p.name);
                let brands = p.header("sec-ch-ua").expect("brands");
                assert!(brands.contains("\"Chromium\";v=\"138\""), "{brands}");
                let brand = if ua.contains("Edg/") {
                    "\"Microsoft Edge\";v=\"138\""
                } else {
                    "\"Google Chrome\";v=\"138\""
                };
                assert!(brands.contains(brand), "{brands}");
                assert_eq!(p.header("accept"), Some(CHROMIUM_ACCEPT));
                assert_eq!(p.header("sec-fetch-user"), Some("?1"));
            } else {
                assert!(
                    p.headers.iter().all(|(n, _)| !n.starts_with("sec-ch-")),
                    "{} sends client hints",
                    p.name
                );
                assert_eq!(p.header("accept"), Some(PLAIN_ACCEPT));
            }
            // The name says the browser and OS, and both agree with the UA.
            let family = BrowserFamily::sniff(ua);
            assert!(
                p.name.starts_with(family.name()),
                "{} vs {family:?}",
                p.name
            );
            assert!(
                p.name.ends_with(&os_of(ua).to_ascii_lowercase()),
                "{} vs {ua}",
                p.name
            );
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 8, "duplicate names");
        let firefox = ids.iter().find(|p| p.name == "firefox-windows").unwrap();
        assert_eq!(firefox.header("accept-language"), Some("en-US,en;q=0.5"));
        assert_eq!(firefox.header("upgrade-insecure-requests"), Some("1"));
        let safari = ids.iter().find(|p| p.name == "safari-ios").unwrap();
        assert!(safari.header("sec-fetch-user").is_none());
    }

    #[test]
    fn grease_brands_match_real_chrome() {
        // Values captured from the browsers.
        let cases = [
            (
                120,
                "\"Not_A Brand\";v=\"8\", \"Chromium\";v=\"120\", \"Google Chrome\";v=\"120\"",
            ),
            (
                124,
                "\"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"",
            ),
            (
                131,
                "\"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"",
            ),
            (
                138,
                "\"Not)A;Brand\";v=\"8\", \"Chromium\";v=\"138\", \"Google Chrome\";v=\"138\"",
            ),
            (
                140,
                "\"Chromium\";v=\"140\", \"Not=A?Brand\";v=\"24\", \"Google Chrome\";v=\"140\"",
            ),
        ];
        for (version, want) in cases {
            assert_eq!(chromium_brands("Google Chrome", version), want);
        }
    }

    #[test]
    fn sniffing_families() {
        let cases = [
            (BUILTIN[0].1, BrowserFamily::Chrome),
            (BUILTIN[3].1, BrowserFamily::Edge),
            (BUILTIN[4].1, BrowserFamily::Firefox),
            (BUILTIN[5].1, BrowserFamily::Safari),
            (BUILTIN[7].1, BrowserFamily::Safari),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
                BrowserFamily::Safari,
            ),
            (
                "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0",
                BrowserFamily::Firefox,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
                BrowserFamily::OtherChromium,
            ),
            (
                "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                BrowserFamily::Unknown,
            ),
            (
                "Mozilla/5.0 (compatible; trawl/0.1.0; +https://github.com/trawl-rs/trawl)",
                BrowserFamily::Unknown,
            ),
            ("curl/8.5.0", BrowserFamily::Unknown),
        ];
        for (ua, want) in cases {
            assert_eq!(BrowserFamily::sniff(ua), want, "{ua}");
        }
    }

    #[test]
    fn configured_user_agents_get_matching_headers() {
        let ids = Identities::from_user_agents(vec![
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36".into(),
            "  Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:141.0) Gecko/20100101 Firefox/141.0 ".into(),
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0".into(),
            "mybot/1.0 (+https://example.com/bot)".into(),
        ])
        .unwrap();
        assert_eq!(ids.len(), 4);

        let chrome = ids.get(0).unwrap();
        assert_eq!(chrome.name, "chrome-1");
        assert_eq!(
            chrome.header("sec-ch-ua"),
            Some("\"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"")
        );
        assert_eq!(chrome.header("sec-ch-ua-platform"), Some("\"Chrome OS\""));
        assert_eq!(chrome.header("sec-ch-ua-mobile"), Some("?0"));

        let firefox = ids.get(1).unwrap();
        assert_eq!(firefox.name, "firefox-2");
        assert!(firefox.user_agent.starts_with("Mozilla") && firefox.user_agent.ends_with(".0"));
        assert!(firefox.header("sec-ch-ua").is_none());
        assert_eq!(firefox.header("accept"), Some(PLAIN_ACCEPT));

        let edge = ids.get(2).unwrap();
        assert_eq!(
            edge.header("sec-ch-ua"),
            Some("\"Microsoft Edge\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"")
        );
        assert_eq!(edge.header("sec-ch-ua-mobile"), Some("?1"));
        assert_eq!(edge.header("sec-ch-ua-platform"), Some("\"Android\""));

        let bot = ids.get(3).unwrap();
        assert_eq!(bot.name, "generic-4");
        let names: Vec<&str> = bot.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["accept", "accept-language"]);
        assert!(ids.get(4).is_none());

        // Chromium without a known brand or OS: no guessed client hints.
        let p = UserAgentProfile::from_user_agent(
            "x",
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
        );
        assert!(p.header("sec-ch-ua").is_none());
        assert_eq!(p.header("accept"), Some(CHROMIUM_ACCEPT));
        let p = UserAgentProfile::from_user_agent(
            "x",
            "Mozilla/5.0 (Fuchsia) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        );
        assert!(p.header("sec-ch-ua").is_none());
    }

    #[test]
    fn bad_configured_user_agents_are_refused() {
        assert!(Identities::from_user_agents(vec![]).is_err());
        let e = Identities::from_user_agents(vec!["ok/1".into(), "  ".into()]).unwrap_err();
        assert!(e.contains("#2"), "{e}");
        let e = Identities::from_user_agents(vec!["a\r\nX-Evil: 1".into()]).unwrap_err();
        assert!(e.contains("line break"), "{e}");
    }

    #[test]
    fn insecure_origins_get_no_sec_headers() {
        let ids = Identities::builtin();
        let chrome = ids.get(0).unwrap();
        let secure: Vec<_> = chrome.headers_for(true).collect();
        assert_eq!(secure.len(), chrome.headers.len());
        let plain: Vec<_> = chrome.headers_for(false).collect();
        assert!(plain.iter().all(|(n, _)| !n.starts_with("sec-")));
        assert!(plain.iter().any(|(n, _)| *n == "accept"));
        assert!(plain.len() < secure.len());
    }

    #[test]
    fn random_index_is_in_range_and_varies() {
        let ids = Identities::builtin();
        let mut seen = [false; 8];
        for _ in 0..1000 {
            let i = ids.random_index();
            assert!(ids.get(i).is_some());
            seen[i] = true;
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
        let one = Identities::from_user_agents(vec!["x/1".into()]).unwrap();
        assert_eq!(one.random_index(), 0);
    }

    #[test]
    fn header_lines() {
        assert_eq!(
            parse_header_line("X-Token: abc def "),
            Ok(("x-token".into(), "abc def".into()))
        );
        assert_eq!(
            parse_header_line("Accept-Language:\tde-CH, de;q=0.9"),
            Ok(("accept-language".into(), "de-CH, de;q=0.9".into()))
        );
        // Only the first colon splits.
        assert_eq!(
            parse_header_line("Referer: https://example.com:8080/a"),
            Ok(("referer".into(), "https://example.com:8080/a".into()))
        );
        assert_eq!(
            parse_header_line("X-Empty:"),
            Ok(("x-empty".into(), String::new()))
        );
        assert_eq!(
            parse_header_line("x-odd!#$%&'*+.^_`|~: 1"),
            Ok(("x-odd!#$%&'*+.^_`|~".into(), "1".into()))
        );

        let err = |line: &str| parse_header_line(line).unwrap_err();
        assert!(err("X-No-Colon").contains("Name: value"));
        assert!(err(": value").contains("no name"));
        assert!(err("Bad Name: v").contains("' '"));
        assert!(err("Bad(Name): v").contains("'('"));
        assert!(err("X-A: one\r\nX-B: two").contains("line break"));
        assert!(err("X-A: one\nX-B: two").contains("line break"));
        assert!(err("X-A: nul\0").contains("control character"));
        assert!(err("X-A: caf\u{e9}").contains("non-ASCII"));
        assert!(err("Content-Length: 5").contains("set by the HTTP client"));
        assert!(err("transfer-encoding: chunked").contains("set by the HTTP client"));
    }
}
