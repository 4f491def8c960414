//! Crawl scope: which URLs a crawl may visit.
//!
//! Checked for every discovered link and every redirect hop. Besides the
//! host/domain/prefix rule and the user's include/exclude regexes, the scope
//! guards against crawler traps whose URLs grow without end (long URLs, many
//! path segments, one segment repeated over and over).

use regex::Regex;
use url::Url;

/// How far from the seeds a crawl may wander.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeMode {
    /// Same host (and port) as a seed.
    #[default]
    Host,
    /// Same registrable domain as a seed (`docs.example.com` ~ `example.com`).
    Domain,
    /// URL starts with a seed URL's directory prefix.
    Prefix,
    /// Anything http(s).
    Any,
}

impl std::fmt::Display for ScopeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScopeMode::Host => "host",
            ScopeMode::Domain => "domain",
            ScopeMode::Prefix => "prefix",
            ScopeMode::Any => "any",
        })
    }
}

impl std::str::FromStr for ScopeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(ScopeMode::Host),
            "domain" => Ok(ScopeMode::Domain),
            "prefix" => Ok(ScopeMode::Prefix),
            "any" => Ok(ScopeMode::Any),
            other => Err(format!(
                "unknown scope {other:?}: expected host, domain, prefix or any"
            )),
        }
    }
}

/// User settings for the scope.
#[derive(Debug, Clone)]
pub struct ScopeConfig {
    pub mode: ScopeMode,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_url_len: usize,
    pub max_path_segments: usize,
    pub max_repeated_segment: usize,
}

impl Default for ScopeConfig {
    fn default() -> Self {
        ScopeConfig {
            mode: ScopeMode::Host,
            include: Vec::new(),
            exclude: Vec::new(),
            max_url_len: 2048,
            max_path_segments: 64,
            max_repeated_segment: 4,
        }
    }
}

/// Why a URL is out of scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeReject {
    Offsite,
    NotIncluded,
    Excluded,
    TooLong,
    TooDeepPath,
    RepeatedSegment,
}

impl ScopeReject {
    pub fn as_str(&self) -> &'static str {
        match self {
            ScopeReject::Offsite => "offsite",
            ScopeReject::NotIncluded => "not_included",
            ScopeReject::Excluded => "excluded",
            ScopeReject::TooLong => "url_too_long",
            ScopeReject::TooDeepPath => "too_many_segments",
            ScopeReject::RepeatedSegment => "repeated_segment",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid {which} regex {pattern:?}: {source}")]
pub struct ScopeError {
    which: &'static str,
    pattern: String,
    #[source]
    source: regex::Error,
}

/// A compiled scope, built from the seeds and a [`ScopeConfig`].
#[derive(Debug, Clone)]
pub struct Scope {
    mode: ScopeMode,
    /// (host, non-default port) of each seed.
    hosts: Vec<(String, Option<u16>)>,
    domains: Vec<String>,
    prefixes: Vec<String>,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    cfg: ScopeConfig,
}

fn compile(which: &'static str, patterns: &[String]) -> Result<Vec<Regex>, ScopeError> {
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|source| ScopeError {
                which,
                pattern: p.clone(),
                source,
            })
        })
        .collect()
}

/// The registrable domain ("example.co.uk") of a host, or the host itself
/// for IPs and unknown suffixes.
pub fn registrable_domain(host: &str) -> String {
    match psl::domain_str(host) {
        Some(d) => d.to_string(),
        None => host.to_string(),
    }
}

impl Scope {
    pub fn new(seeds: &[Url], cfg: ScopeConfig) -> Result<Scope, ScopeError> {
        let include = compile("include", &cfg.include)?;
        let exclude = compile("exclude", &cfg.exclude)?;
        let mut hosts: Vec<(String, Option<u16>)> = seeds
            .iter()
            .map(|u| (u.host_str().unwrap_or("").to_string(), u.port()))
            .collect();
        hosts.sort();
        hosts.dedup();
        let mut domains: Vec<String> = seeds
            .iter()
            .filter_map(|u| u.host_str())
            .map(registrable_domain)
            .collect();
        domains.sort();
        domains.dedup();
        let prefixes = seeds
            .iter()
            .map(|u| {
                let s = u.as_str();
                let cut = s.rfind('/').map_or(s.len(), |i| i + 1);
                s[..cut].to_string()
            })
            .collect();
        Ok(Scope {
            mode: cfg.mode,
            hosts,
            domains,
            prefixes,
            include,
            exclude,
            cfg,
        })
    }

    /// Whether `url` may be visited; the reason when not.
    pub fn allows(&self, url: &Url) -> Result<(), ScopeReject> {
        let s = url.as_str();
        if s.len() > self.cfg.max_url_len {
            return Err(ScopeReject::TooLong);
        }
        let onsite = match self.mode {
            ScopeMode::Any => true,
            ScopeMode::Host => {
                let (host, port) = (url.host_str().unwrap_or(""), url.port());
                self.hosts.iter().any(|(h, p)| h == host && *p == port)
            }
            ScopeMode::Domain => url
                .host_str()
                .is_some_and(|h| self.domains.iter().any(|d| registrable_domain(h) == *d)),
            ScopeMode::Prefix => self.prefixes.iter().any(|p| s.starts_with(p.as_str())),
        };
        if !onsite {
            return Err(ScopeReject::Offsite);
        }
        if !self.include.is_empty() && !self.include.iter().any(|r| r.is_match(s)) {
            return Err(ScopeReject::NotIncluded);
        }
        if self.exclude.iter().any(|r| r.is_match(s)) {
            return Err(ScopeReject::Excluded);
        }
        let count = url.path().split('/').filter(|s| !s.is_empty()).count();
        if count > self.cfg.max_path_segments {
            return Err(ScopeReject::TooDeepPath);
        }
        // A segment can only repeat too often in a path long enough for it.
        if self.cfg.max_repeated_segment > 0 && count > self.cfg.max_repeated_segment {
            let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
            if max_repeats(&segments) > self.cfg.max_repeated_segment {
                return Err(ScopeReject::RepeatedSegment);
            }
        }
        Ok(())
    }
}

/// How often the most frequent path segment occurs (`/a/b/a/b/a` → 3).
fn max_repeats(segments: &[&str]) -> usize {
    let mut best = 0;
    for (i, s) in segments.iter().enumerate() {
        let n = segments[i..].iter().filter(|t| *t == s).count();
        best = best.max(n);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn host_scope() {
        let s = Scope::new(
            &[u("http://a.example.com:8080/docs/x")],
            ScopeConfig::default(),
        )
        .unwrap();
        assert!(s.allows(&u("http://a.example.com:8080/other")).is_ok());
        assert_eq!(
            s.allows(&u("http://a.example.com/other")),
            Err(ScopeReject::Offsite)
        );
        assert_eq!(
            s.allows(&u("http://b.example.com:8080/")),
            Err(ScopeReject::Offsite)
        );
    }

    #[test]
    fn domain_and_prefix_scope() {
        let cfg = ScopeConfig {
            mode: ScopeMode::Domain,
            ..Default::default()
        };
        let s = Scope::new(&[u("https://docs.example.co.uk/")], cfg).unwrap();
        assert!(s.allows(&u("https://www.example.co.uk/a")).is_ok());
        assert!(s.allows(&u("https://example.com/a")).is_err());
        let cfg = ScopeConfig {
            mode: ScopeMode::Prefix,
            ..Default::default()
        };
        let s = Scope::new(&[u("https://e.com/docs/index.html")], cfg).unwrap();
        assert!(s.allows(&u("https://e.com/docs/a/b")).is_ok());
        assert!(s.allows(&u("https://e.com/blog/")).is_err());
    }

    #[test]
    fn regexes_and_traps() {
        let cfg = ScopeConfig {
            include: vec!["/p/".into()],
            exclude: vec![r"\.pdf$".into()],
            max_url_len: 60,
            ..Default::default()
        };
        let s = Scope::new(&[u("http://e.com/")], cfg).unwrap();
        assert!(s.allows(&u("http://e.com/p/1")).is_ok());
        assert_eq!(
            s.allows(&u("http://e.com/q/1")),
            Err(ScopeReject::NotIncluded)
        );
        assert_eq!(
            s.allows(&u("http://e.com/p/1.pdf")),
            Err(ScopeReject::Excluded)
        );
        assert_eq!(
            s.allows(&u(&format!("http://e.com/p/{}", "x".repeat(80)))),
            Err(ScopeReject::TooLong)
        );
        let s = Scope::new(&[u("http://e.com/")], ScopeConfig::default()).unwrap();
        assert_eq!(
            s.allows(&u("http://e.com/a/b/a/b/a/b/a/b/a")),
            Err(ScopeReject::RepeatedSegment)
        );
    }

    #[test]
    fn bad_regex_is_an_error() {
        let cfg = ScopeConfig {
            include: vec!["(".into()],
            ..Default::default()
        };
        let err = Scope::new(&[u("http://e.com/")], cfg).unwrap_err();
        assert!(err.to_string().contains("include"));
    }
}
