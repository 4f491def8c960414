//! Where a crawl's shards live, and which shard a host belongs to.
//!
//! `--redis` names one of:
//!
//! - one Redis: `redis://host:port[/db]` — one shard, keys `trawl:{NAME}:…`
//!   (the layout of an unsharded crawl);
//! - several independent Redis instances: `redis://a:6379,redis://b:6379`
//!   (or `redis://a:6379,b:6379`) — shard k on the k-th instance, keys
//!   `trawl:{NAME/k}:…`; every worker must list the instances in the same
//!   order (checked against the crawl's shard map);
//! - a Redis Cluster: `redis-cluster://host:port[,host:port…][?shards=N][&wait=R]`
//!   — N shards (default: one per master), each its own hash tag, chosen
//!   when the crawl is created so that consecutive shards start on
//!   different masters. With `wait=R` every push waits (`WAIT`) until R
//!   replicas have it before the page's lease can be acknowledged, so a
//!   master's failover loses no discovered URL (only leases and acks,
//!   whose pages are then fetched again).
//!
//! A request's shard is the jump consistent hash (Lamping & Veach) of its
//! site: the registrable domain of a host name (so `www.example.com` and
//! `example.com`, which share content and often a server, share a shard and
//! its duplicate index), or the whole `host:port` for an IP address. The
//! host's queue, seen-set entries, politeness and leases all live in that
//! shard, so every frontier script stays single-slot and atomic. Growing a
//! crawl from N to N+1 shards would move about 1/(N+1) of the sites (see
//! `docs/distributed.md`, "Resharding").
//!
//! The shard map (`trawl:{NAME}:shards`, on the first instance or wherever
//! the cluster keeps that slot) holds the shard count and tags; the first
//! process of a crawl writes it, every later one reads it.

use std::fmt;

/// The Redis deployment a `--redis` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// Independent servers, one shard each (one server: one shard).
    Instances(Vec<String>),
    /// A Redis Cluster, reached through these seed nodes.
    Cluster {
        seeds: Vec<String>,
        /// Shards of a new crawl (default: one per master).
        shards: Option<usize>,
        /// Replicas each push waits for (0: none).
        wait: usize,
    },
}

/// At most this many shards (lease ids keep their shard in `id % N`).
pub const MAX_SHARDS: usize = 1024;

/// A `--redis` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyError(pub String);

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const CLUSTER_SCHEME: &str = "redis-cluster://";

impl Topology {
    /// Parse a `--redis` value (see the module documentation).
    pub fn parse(spec: &str) -> Result<Topology, TopologyError> {
        let spec = spec.trim();
        let bad = |why: String| TopologyError(format!("--redis {spec:?}: {why}"));
        if let Some(rest) = spec.strip_prefix(CLUSTER_SCHEME) {
            let (nodes, query) = match rest.split_once('?') {
                Some((n, q)) => (n, Some(q)),
                None => (rest, None),
            };
            let mut shards = None;
            let mut wait = 0;
            for pair in query.into_iter().flat_map(|q| q.split('&')) {
                match pair.split_once('=') {
                    Some(("shards", n)) => match n.parse::<usize>() {
                        Ok(n) if (1..=MAX_SHARDS).contains(&n) => shards = Some(n),
                        _ => return Err(bad(format!("shards must be 1 to {MAX_SHARDS}"))),
                    },
                    Some(("wait", n)) => match n.parse::<usize>() {
                        Ok(n) if n <= 16 => wait = n,
                        _ => return Err(bad("wait must be 0 to 16 replicas".to_string())),
                    },
                    _ => {
                        return Err(bad(format!(
                            "unknown option {pair:?} (known: shards=N, wait=R)"
                        )));
                    }
                }
            }
            let seeds = nodes
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    if n.contains("://") {
                        Err(bad(format!(
                            "cluster nodes are host:port, not URLs ({n:?})"
                        )))
                    } else {
                        Ok(format!("redis://{n}"))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            if seeds.is_empty() {
                return Err(bad("no cluster node given".to_string()));
            }
            return Ok(Topology::Cluster {
                seeds,
                shards,
                wait,
            });
        }
        let urls = spec
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                if u.contains("://") {
                    u.to_string()
                } else {
                    format!("redis://{u}")
                }
            })
            .collect::<Vec<_>>();
        if urls.is_empty() {
            return Err(bad("no Redis URL given".to_string()));
        }
        if urls.len() > MAX_SHARDS {
            return Err(bad(format!("more than {MAX_SHARDS} instances")));
        }
        for u in &urls {
            if !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
            {
                return Err(bad(format!(
                    "{u:?} is not a redis:// URL (use redis-cluster://host:port for a cluster)"
                )));
            }
        }
        Ok(Topology::Instances(urls))
    }
}

/// The site a host key (`host[:port]`, as [`trawl_core::Request::host_key`])
/// belongs to, for sharding: the registrable domain of a name, the whole
/// key for an IP address or a name without a known suffix.
pub fn site_of(host_key: &str) -> &str {
    let host = if host_key.starts_with('[') {
        return host_key;
    } else {
        host_key.rsplit_once(':').map_or(host_key, |(h, _)| h)
    };
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return host_key;
    }
    match psl::domain_str(host) {
        Some(domain) => domain,
        None => host_key,
    }
}

/// The shard (0..n) of a host key.
pub fn shard_of(host_key: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    jump_hash(xxhash_rust::xxh3::xxh3_64(site_of(host_key).as_bytes()), n)
}

/// Jump consistent hash (Lamping & Veach, 2014): a bucket in 0..n for
/// `key`; going from n to n+1 buckets moves only keys into the new one.
fn jump_hash(mut key: u64, n: usize) -> usize {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < n as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_one_instance_and_lists_are_instances() {
        assert_eq!(
            Topology::parse("redis://127.0.0.1:6379").unwrap(),
            Topology::Instances(vec!["redis://127.0.0.1:6379".into()])
        );
        assert_eq!(
            Topology::parse("redis://a:1, b:2,redis://c:3/2").unwrap(),
            Topology::Instances(vec![
                "redis://a:1".into(),
                "redis://b:2".into(),
                "redis://c:3/2".into()
            ])
        );
        for bad in ["", " , ", "http://a:1", "redis://a:1,nats://b:2"] {
            assert!(Topology::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cluster_seeds_and_shards() {
        assert_eq!(
            Topology::parse("redis-cluster://a:7000,b:7001?shards=6&wait=1").unwrap(),
            Topology::Cluster {
                seeds: vec!["redis://a:7000".into(), "redis://b:7001".into()],
                shards: Some(6),
                wait: 1
            }
        );
        assert_eq!(
            Topology::parse("redis-cluster://a:7000").unwrap(),
            Topology::Cluster {
                seeds: vec!["redis://a:7000".into()],
                shards: None,
                wait: 0
            }
        );
        for bad in [
            "redis-cluster://",
            "redis-cluster://a:1?shards=0",
            "redis-cluster://a:1?shards=x",
            "redis-cluster://a:1?replicas=2",
            "redis-cluster://a:1?wait=x",
            "redis-cluster://redis://a:1",
        ] {
            let e = Topology::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--redis"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn sites_group_a_domains_hosts_and_keep_ip_ports_apart() {
        assert_eq!(site_of("www.example.com"), "example.com");
        assert_eq!(site_of("docs.example.co.uk:8080"), "example.co.uk");
        assert_eq!(site_of("127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(site_of("[::1]:8080"), "[::1]:8080");
        assert_eq!(site_of("localhost:3000"), "localhost:3000");
        assert_eq!(shard_of("a.example.com", 7), shard_of("b.example.com", 7));
    }

    #[test]
    fn jump_hash_spreads_evenly_and_moves_little_when_growing() {
        let keys: Vec<String> = (0..30_000)
            .map(|i| format!("10.0.{}.{}:80", i / 250, i % 250))
            .collect();
        for n in [2, 3, 5] {
            let mut counts = vec![0usize; n];
            for k in &keys {
                counts[shard_of(k, n)] += 1;
            }
            let even = keys.len() / n;
            for c in &counts {
                assert!(c.abs_diff(even) < even / 10, "{n} shards: {counts:?}");
            }
        }
        // 3 → 4 shards: only keys that go to the new shard move (~1/4).
        let moved = keys
            .iter()
            .filter(|k| shard_of(k, 3) != shard_of(k, 4))
            .inspect(|k| assert_eq!(shard_of(k, 4), 3))
            .count();
        assert!(moved.abs_diff(keys.len() / 4) < keys.len() / 40, "{moved}");
        assert_eq!(shard_of("anything", 1), 0);
    }
}
