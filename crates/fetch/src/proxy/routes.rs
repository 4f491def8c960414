//! Per-host and per-rule proxy pools: which pool a request goes through.
//!
//! Besides the crawl's default pool (`--proxy`, a spider's `proxies`),
//! named pools ([`NamedPool`]) can be declared. A request picks its pool
//! in this order:
//!
//! 1. its own `proxy_pool` (set by the spider rule that found it);
//! 2. the first [`HostRule`] whose [`HostPattern`] matches its host;
//! 3. the default pool (direct when it has no proxies).
//!
//! The name [`DIRECT`] means "no proxy" and [`DEFAULT`] the default pool,
//! wherever a pool is named. [`RouteTable`] resolves names to indices once,
//! so a crawl with a misspelt pool fails before it starts.

use std::fmt;
use std::str::FromStr;

use super::pool::Strategy;
use super::spec::ProxySpec;

/// The pool name meaning "no proxy".
pub const DIRECT: &str = "direct";
/// The pool name of the crawl-wide proxies.
pub const DEFAULT: &str = "default";

/// A pool of proxies that rules and hosts can name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPool {
    pub name: String,
    pub proxies: Vec<ProxySpec>,
    /// `None`: the crawl's `proxy_strategy`.
    pub strategy: Option<Strategy>,
}

/// Hosts a [`HostRule`] applies to.
///
/// - `shop.example.com`: that host, on any port;
/// - `shop.example.com:8080`: that host on that port only;
/// - `*.example.com`: `example.com` and every subdomain (any port);
/// - `*`: every host.
///
/// Matching ignores ASCII case. IPv6 hosts are written in brackets
/// (`[::1]:8080`), as in URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lowercase host, without `*.`; empty for `*`.
    host: String,
    subdomains: bool,
    port: Option<u16>,
}

/// A host pattern that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern {pattern:?}: {reason}")]
pub struct HostPatternError {
    pub pattern: String,
    pub reason: &'static str,
}

impl FromStr for HostPattern {
    type Err = HostPatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| HostPatternError {
            pattern: s.to_string(),
            reason,
        };
        let text = s.trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err(err("empty"));
        }
        if text == "*" {
            return Ok(HostPattern {
                host: String::new(),
                subdomains: true,
                port: None,
            });
        }
        let (host, port) = split_port(&text).ok_or_else(|| err("the port is not a number"))?;
        let (host, subdomains) = match host.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (host, false),
        };
        if host.is_empty()
            || host.contains(['*', '/', '?', '#', '@', ' '])
            || host.starts_with('.')
            || host.ends_with('.')
        {
            return Err(err(
                "expected a host, host:port, *.domain or * (no scheme or path)",
            ));
        }
        Ok(HostPattern {
            host: host.to_string(),
            subdomains,
            port,
        })
    }
}

/// `host[:port]` → (host, port); `None` when the port does not parse.
fn split_port(text: &str) -> Option<(&str, Option<u16>)> {
    let colon = if text.starts_with('[') {
        // [v6]:port
        text.find("]:").map(|i| i + 1)
    } else if text.matches(':').count() == 1 {
        text.find(':')
    } else {
        None
    };
    match colon {
        Some(i) => Some((&text[..i], Some(text[i + 1..].parse().ok()?))),
        None => Some((text, None)),
    }
}

impl HostPattern {
    /// Whether the pattern covers `host_key` (`host` or `host:port`, as
    /// [`trawl_core::canon::host_key`] writes it).
    pub fn matches(&self, host_key: &str) -> bool {
        let (host, port) = match split_port(host_key) {
            Some(parts) => parts,
            None => (host_key, None),
        };
        if self.port.is_some() && self.port != port {
            return false;
        }
        if self.host.is_empty() {
            return true;
        }
        let host = host.trim_end_matches('.');
        if host.eq_ignore_ascii_case(&self.host) {
            return true;
        }
        self.subdomains
            && host.len() > self.host.len()
            && host[host.len() - self.host.len()..].eq_ignore_ascii_case(&self.host)
            && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.is_empty() {
            return f.write_str("*");
        }
        if self.subdomains {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Requests to hosts matching `pattern` go through pool `pool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    pub pattern: HostPattern,
    /// A [`NamedPool`]'s name, [`DIRECT`] or [`DEFAULT`].
    pub pool: String,
}

impl FromStr for HostRule {
    type Err = RouteError;

    /// `PATTERN=POOL`, as `--host-pool` takes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (pattern, pool) = s.split_once('=').ok_or_else(|| RouteError::Syntax {
            text: s.to_string(),
        })?;
        let pool = pool.trim();
        if pool.is_empty() {
            return Err(RouteError::Syntax {
                text: s.to_string(),
            });
        }
        Ok(HostRule {
            pattern: pattern.parse()?,
            pool: pool.to_string(),
        })
    }
}

/// Pools and host rules that do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Pattern(#[from] HostPatternError),
    #[error("expected PATTERN=POOL (e.g. `*.example.com=residential`), got {text:?}")]
    Syntax { text: String },
    #[error("proxy pool {name:?} is declared twice")]
    Duplicate { name: String },
    #[error(
        "`{name}` is a reserved pool name (\"direct\" means no proxy, \"default\" the crawl's proxies)"
    )]
    Reserved { name: String },
    #[error("proxy pool {name:?} has no proxies")]
    Empty { name: String },
    #[error("unknown proxy pool {name:?}{}", known_list(.known))]
    Unknown { name: String, known: Vec<String> },
}

fn known_list(known: &[String]) -> String {
    format!(" (known: {})", known.join(", "))
}

/// Where a request goes, as an index into the downloader's route groups:
/// 0 is the default pool, 1 direct, then the named pools in order.
pub type GroupIndex = usize;

/// The resolved routing: pool names to group indices, host rules in order.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    names: Vec<String>,
    host_rules: Vec<(HostPattern, GroupIndex)>,
}

impl RouteTable {
    /// Group 0 is [`DEFAULT`], 1 is [`DIRECT`], `2 + i` is `pools[i]`.
    /// Every name a host rule uses must exist.
    pub fn new(pools: &[NamedPool], host_rules: &[HostRule]) -> Result<RouteTable, RouteError> {
        let mut names = vec![DEFAULT.to_string(), DIRECT.to_string()];
        for p in pools {
            if p.name == DEFAULT || p.name == DIRECT {
                return Err(RouteError::Reserved {
                    name: p.name.clone(),
                });
            }
            if names.contains(&p.name) {
                return Err(RouteError::Duplicate {
                    name: p.name.clone(),
                });
            }
            if p.proxies.is_empty() {
                return Err(RouteError::Empty {
                    name: p.name.clone(),
                });
            }
            names.push(p.name.clone());
        }
        let mut table = RouteTable {
            names,
            host_rules: Vec::new(),
        };
        for rule in host_rules {
            let group = table.group(&rule.pool)?;
            table.host_rules.push((rule.pattern.clone(), group));
        }
        Ok(table)
    }

    /// The group of a pool name.
    pub fn group(&self, name: &str) -> Result<GroupIndex, RouteError> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| RouteError::Unknown {
                name: name.to_string(),
                known: self.names.clone(),
            })
    }

    /// The group of a request to `host_key` that names `pool` (or none).
    pub fn route(&self, host_key: &str, pool: Option<&str>) -> Result<GroupIndex, RouteError> {
        if let Some(name) = pool {
            return self.group(name);
        }
        Ok(self
            .host_rules
            .iter()
            .find(|(pattern, _)| pattern.matches(host_key))
            .map_or(0, |(_, group)| *group))
    }

    /// The name of a group.
    pub fn name(&self, group: GroupIndex) -> &str {
        self.names.get(group).map_or(DEFAULT, String::as_str)
    }

    /// Every pool name, groups in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pat(s: &str) -> HostPattern {
        s.parse().unwrap()
    }

    fn pool(name: &str) -> NamedPool {
        NamedPool {
            name: name.into(),
            proxies: vec![ProxySpec::parse("http://127.0.0.1:3128").unwrap()],
            strategy: None,
        }
    }

    #[test]
    fn host_patterns_match_hosts_ports_and_subdomains() {
        assert!(pat("shop.example.com").matches("shop.example.com"));
        assert!(pat("shop.example.com").matches("SHOP.example.com:8080"));
        assert!(!pat("shop.example.com").matches("example.com"));
        assert!(!pat("shop.example.com").matches("www.shop.example.com"));
        assert!(pat("*.example.com").matches("example.com"));
        assert!(pat("*.example.com").matches("a.b.example.com:81"));
        assert!(!pat("*.example.com").matches("badexample.com"));
        assert!(!pat("*.example.com").matches("example.com.evil.net"));
        assert!(pat("127.0.0.1:8080").matches("127.0.0.1:8080"));
        assert!(!pat("127.0.0.1:8080").matches("127.0.0.1:8081"));
        assert!(!pat("127.0.0.1:8080").matches("127.0.0.1"));
        assert!(pat("127.0.0.1").matches("127.0.0.1:9"));
        assert!(pat("[::1]:80").matches("[::1]:80"));
        assert!(pat("[::1]").matches("[::1]:443"));
        assert!(pat("*").matches("anything:1"));
        assert_eq!(pat("*.Example.com:81").to_string(), "*.example.com:81");
    }

    #[test]
    fn bad_host_patterns_are_named() {
        for bad in [
            "",
            "http://a.com",
            "a.com/path",
            "a.com:port",
            "*.",
            "a.*.com",
        ] {
            let e = bad.parse::<HostPattern>().unwrap_err();
            assert_eq!(e.pattern, bad);
        }
    }

    #[test]
    fn host_rules_parse_pattern_equals_pool() {
        let r: HostRule = "*.shop.test=residential".parse().unwrap();
        assert_eq!(r.pool, "residential");
        assert!(r.pattern.matches("a.shop.test"));
        assert!(matches!(
            "shop.test".parse::<HostRule>(),
            Err(RouteError::Syntax { .. })
        ));
        assert!(matches!(
            "shop.test=".parse::<HostRule>(),
            Err(RouteError::Syntax { .. })
        ));
    }

    #[test]
    fn a_request_pool_wins_over_host_rules_which_win_over_the_default() {
        let rules: Vec<HostRule> = ["api.test=fast", "*.shop.test=slow", "*.test=direct"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        let t = RouteTable::new(&[pool("fast"), pool("slow")], &rules).unwrap();
        assert_eq!(t.route("api.test", None).unwrap(), 2);
        assert_eq!(t.name(2), "fast");
        assert_eq!(t.route("www.shop.test:81", None).unwrap(), 3);
        assert_eq!(t.route("other.test", None).unwrap(), 1);
        assert_eq!(t.route("elsewhere.org", None).unwrap(), 0);
        assert_eq!(t.route("api.test", Some("slow")).unwrap(), 3);
        assert_eq!(t.route("api.test", Some("direct")).unwrap(), 1);
        assert_eq!(t.route("api.test", Some("default")).unwrap(), 0);
        let e = t.route("api.test", Some("fsat")).unwrap_err();
        assert!(e.to_string().contains("\"fsat\""), "{e}");
        assert!(e.to_string().contains("fast, slow"), "{e}");
    }

    #[test]
    fn bad_tables_are_refused() {
        let r = |s: &str| -> HostRule { s.parse().unwrap() };
        assert!(matches!(
            RouteTable::new(&[pool("a"), pool("a")], &[]),
            Err(RouteError::Duplicate { .. })
        ));
        assert!(matches!(
            RouteTable::new(&[pool("direct")], &[]),
            Err(RouteError::Reserved { .. })
        ));
        let mut empty = pool("e");
        empty.proxies.clear();
        assert!(matches!(
            RouteTable::new(&[empty], &[]),
            Err(RouteError::Empty { .. })
        ));
        assert!(matches!(
            RouteTable::new(&[pool("a")], &[r("x.test=b")]),
            Err(RouteError::Unknown { .. })
        ));
    }
}
