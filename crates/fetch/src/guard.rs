//! The address guard (SSRF): which addresses a request may reach when a
//! crawl is run for someone else (the Scraper API) and must not be turned
//! against the machine it runs on or its network.
//!
//! Refused by default: loopback, private, link-local (the cloud metadata
//! services at 169.254.169.254 and `fd00:ec2::254` among them), CGNAT
//! (100.64.0.0/10, Alibaba's metadata at 100.100.100.200 among them),
//! multicast, broadcast, reserved and "this network" ranges, the
//! unspecified addresses (`0.0.0.0`, `[::]`), and IPv6 addresses that
//! carry such an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64).
//! Every spelling of an IPv4 host (decimal `2130706433`, hex `0x7f.1`,
//! octal `0177.0.0.1`, short `127.1`) is one address by the time the
//! guard sees it: the URL parser (WHATWG) normalises them.
//!
//! The downloader checks a URL's literal address before each hop (the
//! first request and every redirect), and its resolver checks the
//! addresses a host name resolves to at connect time, so a name that
//! resolves to loopback (or is re-bound to it after a first check) is
//! refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused: the name of its range.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        _ if ip.is_unspecified() => "the unspecified address",
        (0, _) => "\"this network\" (0.0.0.0/8)",
        (127, _) => "loopback",
        (10, _) => "a private network (10.0.0.0/8)",
        (172, 16..=31) => "a private network (172.16.0.0/12)",
        (192, 168) => "a private network (192.168.0.0/16)",
        (169, 254) if (c, d) == (169, 254) => "the cloud metadata service",
        (169, 254) => "link-local",
        (100, 100) if (c, d) == (100, 200) => "the cloud metadata service",
        (100, 64..=127) => "carrier-grade NAT (100.64.0.0/10)",
        (192, 0) if c == 0 => "IETF protocol assignments (192.0.0.0/24)",
        (198, 18..=19) => "benchmarking (198.18.0.0/15)",
        (224..=239, _) => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (240..=255, _) => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // An IPv4 address inside: IPv4-mapped (::ffff:a.b.c.d),
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d).
    let embedded = ip.to_ipv4_mapped().or_else(|| {
        let compatible = segments[..6].iter().all(|s| *s == 0);
        let nat64 = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
        (compatible || nat64).then(|| {
            let [.., a, b] = segments;
            Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)
        })
    });
    if let Some(v4) = embedded {
        return refused_v4(v4);
    }
    Some(match segments[0] {
        0xfd00 if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => {
            "the cloud metadata service"
        }
        s if s & 0xfe00 == 0xfc00 => "a private network (fc00::/7)",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        s if s & 0xff00 == 0xff00 => "multicast",
        0x2001 if segments[1] == 0xdb8 => "documentation (2001:db8::/32)",
        _ => return None,
    })
}

/// The guard of one crawl: the refused ranges, less the addresses it was
/// told to allow (an intranet host the service may reach).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressGuard {
    /// Reachable although in a refused range.
    pub allow: Vec<IpAddr>,
    /// Every range reachable (`--allow-private`: tests, intranets); the
    /// host list below still holds.
    pub allow_private: bool,
    /// When not empty, the only hosts that may be reached (each also
    /// with its subdomains), checked before any name is resolved.
    pub hosts: Vec<String>,
}

impl AddressGuard {
    /// Why `ip` is refused, unless it is allowed.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            // One address, however it is written.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.allow_private || self.allow.contains(&ip) {
            return None;
        }
        refused(ip)
    }

    /// Whether `host` is outside the host list (none: every host is in).
    pub fn outside_hosts(&self, host: &str) -> bool {
        if self.hosts.is_empty() {
            return false;
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        !self.hosts.iter().any(|allowed| {
            host == *allowed
                || host
                    .strip_suffix(allowed.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }

    /// Why `url`'s host is refused: an address in a refused range, or a
    /// `localhost` name. Other names are checked where they resolve
    /// ([`GuardedResolver`]).
    pub fn refuses_url(&self, url: &url::Url) -> Option<String> {
        let host = url.host_str()?;
        if self.outside_hosts(host) {
            return Some(format!(
                "{host} is not among the hosts this service may reach"
            ));
        }
        let ip = match url.host()? {
            url::Host::Ipv4(v4) => IpAddr::V4(v4),
            url::Host::Ipv6(v6) => IpAddr::V6(v6),
            url::Host::Domain(name) => {
                // `localhost` and its subdomains never leave the machine.
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                return (!self.allow_private
                    && (name == "localhost" || name.ends_with(".localhost")))
                .then(|| format!("{name} is loopback"));
            }
        };
        self.refuses(ip).map(|why| format!("{ip} is {why}"))
    }
}

/// Why `url`'s host is refused with nothing allowed (see
/// [`AddressGuard::refuses_url`]).
pub fn refused_url(url: &url::Url) -> Option<String> {
    AddressGuard::default().refuses_url(url)
}

/// A DNS resolver that drops refused addresses, and fails when none is
/// left: the check at connect time, after resolution, so a host name
/// pointing (or re-pointed) at loopback or a private network is refused.
#[derive(Debug, Default, Clone)]
pub struct GuardedResolver(pub std::sync::Arc<AddressGuard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusals = Vec::new();
            let allowed: Vec<std::net::SocketAddr> = found
                .into_iter()
                .filter(|a| match guard.refuses(a.ip()) {
                    Some(why) => {
                        refusals.push(format!("{} is {why}", a.ip()));
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let why = if refusals.is_empty() {
                    "no address".to_string()
                } else {
                    refusals.join(", ")
                };
                return Err(Box::new(Refused(format!("{host} resolves to {why}")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Refuse `url` when its host name resolves only to refused addresses
/// (for requests through a proxy, which resolves the name itself; a name
/// re-bound between this check and the proxy's lookup is the proxy's to
/// guard). Literal addresses were checked by [`AddressGuard::refuses_url`].
pub async fn check_resolved(guard: &AddressGuard, url: &url::Url) -> Result<(), Refused> {
    let Some(url::Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    if guard.allow_private {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let found: Vec<IpAddr> = match tokio::net::lookup_host((name, port)).await {
        Ok(addrs) => addrs.map(|a| a.ip()).collect(),
        // The proxy may resolve what this machine cannot (a split DNS).
        Err(_) => return Ok(()),
    };
    let refusals: Vec<String> = found
        .iter()
        .filter_map(|ip| guard.refuses(*ip).map(|why| format!("{ip} is {why}")))
        .collect();
    if !refusals.is_empty() {
        return Err(Refused(format!(
            "{name} resolves to {}",
            refusals.join(", ")
        )));
    }
    Ok(())
}

/// The guard of the pages a browser renders: every request they make.
impl trawl_render::RequestGuard for AddressGuard {
    fn refuses<'a>(
        &'a self,
        url: &'a url::Url,
    ) -> futures_util::future::BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            if let Some(why) = self.refuses_url(url) {
                return Some(why);
            }
            check_resolved(self, url).await.err().map(|r| r.0)
        })
    }
}

/// A target the guard refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by the address guard: {0}")]
pub struct Refused(pub String);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn url_refused(u: &str) -> bool {
        refused_url(&url::Url::parse(u).unwrap()).is_some()
    }

    #[test]
    fn every_spelling_of_loopback_is_refused() {
        for u in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.255.255.254:8080/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://0.0.0.0/",
            "http://0/",
            "http://[::]/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://app.localhost/",
        ] {
            assert!(url_refused(u), "{u} was allowed");
        }
    }

    #[test]
    fn the_other_ranges_are_refused_on_the_address() {
        for (ip, range) in [
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade"),
            ("100.127.255.255", "carrier-grade"),
            ("100.100.100.200", "metadata"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("0.1.2.3", "this network"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("fd00:ec2::254", "metadata"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "metadata"),
            ("64:ff9b::a9fe:a9fe", "metadata"),
        ] {
            let why = refused(ip.parse().unwrap()).unwrap_or_else(|| panic!("{ip} allowed"));
            assert!(why.contains(range), "{ip}: {why}");
        }
    }

    #[test]
    fn allowed_addresses_pass_in_every_spelling() {
        let guard = AddressGuard {
            allow: vec!["127.0.0.2".parse().unwrap()],
            ..AddressGuard::default()
        };
        let url = |u: &str| guard.refuses_url(&url::Url::parse(u).unwrap());
        assert_eq!(url("http://127.0.0.2:8080/"), None);
        assert_eq!(url("http://[::ffff:127.0.0.2]/"), None);
        assert!(url("http://127.0.0.1/").is_some());
        assert!(url("http://localhost/").is_some());
    }

    #[test]
    fn a_host_list_admits_its_hosts_and_their_subdomains_only() {
        let guard = AddressGuard {
            allow_private: true,
            hosts: vec!["127.0.0.1".into(), "docs.example".into()],
            ..AddressGuard::default()
        };
        let url = |u: &str| guard.refuses_url(&url::Url::parse(u).unwrap());
        assert_eq!(url("http://127.0.0.1:8080/a"), None);
        assert_eq!(url("https://docs.example/"), None);
        assert_eq!(url("https://api.docs.example/"), None);
        assert!(url("https://otherdocs.example/").is_some());
        assert!(url("https://docs.example.evil/").is_some());
        assert!(url("http://127.0.0.2/").is_some());
        // Private ranges pass with allow_private; the list still holds.
        assert!(url("http://localhost/").is_some());
        assert_eq!(guard.refuses("10.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn public_addresses_and_names_pass() {
        for ip in [
            "93.184.215.14",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "8.8.8.8",
            "2606:4700::6810:84e5",
            "::ffff:93.184.215.14",
        ] {
            assert_eq!(refused(ip.parse().unwrap()), None, "{ip}");
        }
        assert!(!url_refused("https://example.com/"));
        assert!(!url_refused("https://localhost.example.com/"));
    }

    #[tokio::test]
    async fn a_name_a_proxy_would_resolve_to_loopback_is_refused_beforehand() {
        // `localhost` resolves from /etc/hosts: no packet leaves.
        let url = url::Url::parse("http://localhost:9/").unwrap();
        let refused = check_resolved(&AddressGuard::default(), &url).await;
        assert!(refused.unwrap_err().0.contains("loopback"));
        let open = AddressGuard {
            allow_private: true,
            ..AddressGuard::default()
        };
        assert!(check_resolved(&open, &url).await.is_ok());
        let literal = url::Url::parse("http://10.0.0.1/").unwrap();
        assert!(
            check_resolved(&AddressGuard::default(), &literal)
                .await
                .is_ok(),
            "literal addresses are refuses_url's"
        );
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_resolution() {
        use reqwest::dns::Resolve;
        use std::str::FromStr;
        // `localhost` resolves to loopback from /etc/hosts: no packet
        // leaves the machine.
        let name = reqwest::dns::Name::from_str("localhost").unwrap();
        let err = match GuardedResolver::default().resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("localhost resolves to") && err.contains("loopback"),
            "{err}"
        );
    }
}
