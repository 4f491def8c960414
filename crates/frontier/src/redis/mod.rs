//! Redis frontier: one crawl shared by many worker processes on many
//! machines.
//!
//! All state lives in Redis, so any worker may die (even `SIGKILL`) without
//! losing work: its leases expire after `lease_timeout` and the next `lease`
//! or `is_finished` call of any worker puts them back at the head of their
//! host queues. Every state change is one Lua script (see `scripts.rs`), so two
//! live workers never both enqueue or both lease one URL, and every time
//! (host delays, lease expiry, worker liveness) is the Redis server's clock,
//! so workers with skewed clocks agree. Per-host limits and delays are
//! global: they hold across all workers of the crawl.
//!
//! # Shards
//!
//! A crawl's hosts are spread over one or more shards (see `topology.rs`:
//! one Redis, several instances, or a Redis Cluster). A shard's keys start
//! with `trawl:{TAG}:` (`TAG` = the crawl name for an unsharded crawl,
//! `NAME/k` for shard k); the braces are a Redis Cluster hash tag, so a
//! shard's keys share one slot and its scripts may touch several of them
//! atomically. The crawl's own keys (spec, workers, page counters,
//! checkpoints, the shard map) are under `trawl:{NAME}:` (the home prefix;
//! for one shard, the shard's own). A request lives in the shard of its
//! site; its lease id carries the shard (`id % shards`). Leasing goes
//! round the shards from a rotating start until it has enough (a busy
//! crawl's lease is one call), skipping for a moment a shard whose last
//! call failed, so one unreachable shard slows nobody; a push
//! goes to each child's shard; an ack whose shard is away is retried with
//! the next ack there (if the worker dies first, the lease expires and the
//! page is fetched again: at least once). Termination needs every shard
//! empty in two passes with no lease or push counted in between.
//!
//! # Round trips
//!
//! A page costs its shard about one script call: `fetched` notices wait in
//! the worker and ride on the next call to their shard (a 5 ms flush
//! otherwise), leases and acks go in batches, and a worker remembers which
//! URLs it already offered (they are in the seen-set for good), so a push
//! sends only links it has not offered before and is skipped when none is
//! left.
//!
//! # Key layout
//!
//! Times are µs since the Unix epoch, server clock.
//!
//! | key (after `trawl:{TAG}:`) | type | contents |
//! |---|---|---|
//! | `seen` | SET | 16-byte binary [`Request::fingerprint`]s of every URL ever queued |
//! | `queue:<host>` | LIST | request JSON, FIFO: new ones `RPUSH`ed, leased with `LPOP`, released / reclaimed ones `LPUSH`ed back to the head |
//! | `ready` | ZSET | host → next-allowed time; hosts with queued work and fewer than `host_limit` leases fetching |
//! | `full` | SET | hosts with queued work and `host_limit` leases fetching |
//! | `next` | HASH | host → next-allowed time (last lease start + `host_delay`, or a `defer_host`) |
//! | `hostleases` | HASH | host → leases still fetching, counted against `host_limit` (absent = 0) |
//! | `hostheld` | HASH | host → outstanding leases, fetching or [`fetched`](Frontier::fetched) (absent = 0) |
//! | `active` | SET | hosts with queued or leased requests |
//! | `dup:content`, `dup:sim:*` | HASH, SETs | the duplicate index (see `dupes.rs`) |
//! | `queued` | STRING | number of queued requests (sum of the queue lengths) |
//! | `leaseseq` | STRING | last lease id handed out (`INCR`) |
//! | `leases` | ZSET | lease id → expiry time |
//! | `lease` | HASH | lease id → `<f><start>\t<worker id>\t<host>\t<request JSON>`, `f` = `1` once fetched |
//! | `pushed` | STRING | requests ever queued (for termination across shards) |
//! | `counters` | HASH | `reclaimed` (expired leases returned); at home also `pages`, `errors` ([`RedisFrontier::record_done`]) |
//! | `workers` | ZSET | worker id → last heartbeat time (seen by this shard) |
//! | `wakeup` | pub/sub channel | `1` when a host becomes leasable or the shard's work ends |
//!
//! Home keys (after `trawl:{NAME}:`):
//!
//! | key | type | contents |
//! |---|---|---|
//! | `shards` | STRING | the shard tags, space-separated (written by the first process) |
//! | `spec` | STRING | the crawl's seeds and scope as JSON ([`RedisFrontier::set_spec`]) |
//! | `workers` | ZSET | worker id → last heartbeat time |
//! | `worker:<id>` | HASH | `started`, `seen` (heartbeat times), `pages`, `errors`, `checkpoint` (the last [`ack_batch`](Frontier::ack_batch) checkpoint), `live` (its figures for dashboards, JSON) |
//! | `counters` | HASH | `pages`, `errors` |
//!
//! # Semantics
//!
//! - **Leasing** takes due hosts (next-allowed time passed, below the limit)
//!   least recently leased first, one request per host per round, and sets
//!   the host's next-allowed time to now + `host_delay`. As in the other
//!   frontiers, `host_limit` counts leases still fetching: `fetched` frees
//!   the host's slot while the lease stays outstanding until acked.
//! - **Checkpoints** ([`Frontier::ack_batch`]) are stored per worker id, in
//!   the same script as the acks (sharded: at home, before the acks, so a
//!   crash between them re-fetches pages rather than losing items); a
//!   worker restarted with the same
//!   `worker_id` reads its own back with [`Frontier::checkpoint`]. A batch
//!   acks every lease still outstanding even when some are not (and then
//!   reports the first unknown one).
//! - **ack / release of a lease that is no longer outstanding** (it expired
//!   and was reclaimed, or was acked already) changes nothing and returns
//!   [`FrontierError::UnknownLease`]. The reclaimed copy stays queued (or is
//!   leased by another worker), so that URL is fetched twice: delivery is
//!   at least once. Counts stay exact because only the script that removes a
//!   lease record adjusts them. Call [`RedisFrontier::heartbeat`] (or
//!   [`RedisFrontier::spawn_heartbeat`]) well within `lease_timeout` so
//!   slow pages are not reclaimed.
//! - **Heartbeats** extend the leases this process holds (tracked locally, so
//!   a lease whose reply was lost on the wire is not kept alive forever) and
//!   mark the worker alive. A lease stops being extended once its ack or
//!   release was attempted, even if that call failed (Redis away): it then
//!   expires and is fetched again rather than being held forever.
//! - **Redis going away**: calls fail with [`FrontierError::Storage`] while it
//!   is unreachable; the `ConnectionManager` reconnects once it is back and
//!   the wake-up listener resubscribes. Durability across a Redis restart is
//!   Redis's own (AOF / RDB).
//! - All workers of one crawl must use the same `host_limit`; each lease
//!   checks the limit it was given.

mod batch;
mod dupes;
mod scripts;
pub mod seen;
mod shard;
mod status;
pub mod topology;
mod wakeup;

pub use dupes::RedisIndex;
pub use seen::SeenSet;
pub use status::{CrawlStatus, ShardStatus, WorkerStatus};
pub use topology::Topology;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::{Client, RedisError, Script, ScriptInvocation};
use futures_util::future::join_all;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use trawl_core::{Frontier, FrontierError, FrontierStats, Lease, Request};

use scripts::Scripts;
use shard::{Con, Shard};
use wakeup::Wakeup;

/// A connection attempt to Redis gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A command without an answer after this fails (scripts are short).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnect attempts per failed call before it reports the error.
const RECONNECT_RETRIES: usize = 2;
/// Pages whose pushes a router may have in flight: they gather into one
/// script call per shard.
const PUSHES_AHEAD: usize = 64;
/// How long a push or duplicate-check call waits for more pages after
/// its first (routers have many of each out at once; see `batch.rs`).
const BATCH_LINGER: Duration = Duration::from_millis(1);
/// Requests per `push` script call: bounds how long one call blocks Redis.
const PUSH_CHUNK: usize = 1000;
/// Durations are capped here (≈ 30 years) so µs stay exact in Lua doubles.
const MAX_MICROS: u128 = 1 << 50;
/// Leases worth one lease call (see [`Frontier::lease_batch`]).
const LEASE_BATCH: usize = 16;
/// A push with `wait=R` waits at most this long for the replicas.
const REPLICA_WAIT: Duration = Duration::from_millis(1000);
/// `fetched` notices wait at most this long for a call to ride on.
const FETCHED_LINGER: Duration = Duration::from_millis(5);
/// URLs a worker remembers having offered (16 bytes each; forgotten all
/// at once when full, which only costs re-sending some).
const OFFERED_CAPACITY: usize = 1 << 20;

/// How to reach the crawl and how to behave in it.
#[derive(Debug, Clone)]
pub struct RedisFrontierConfig {
    /// `redis://[user:password@]host:port[/db]`, a comma-separated list of
    /// such URLs (one shard each), or `redis-cluster://host:port[,…][?shards=N]`
    /// (see [`Topology`]).
    pub url: String,
    /// The crawl name: every key is prefixed with `trawl:{NAME}:` (or
    /// `trawl:{NAME/k}:`). Must not contain `{`, `}` or spaces.
    pub crawl: String,
    /// Unique per process (see [`default_worker_id`]).
    pub worker_id: String,
    /// Maximum outstanding leases per host, across all workers.
    pub host_limit: usize,
    /// Minimum gap between lease starts of one host, across all workers.
    pub host_delay: Duration,
    /// An unacknowledged lease returns to the queue this long after it was
    /// handed out or last extended by a heartbeat.
    pub lease_timeout: Duration,
    /// The seen-set of a crawl this process creates (a crawl that exists
    /// keeps its own).
    pub seen: SeenSet,
}

impl RedisFrontierConfig {
    /// A configuration with a generated worker id, 2 leases per host, no
    /// host delay and a 60 s lease timeout.
    pub fn new(url: impl Into<String>, crawl: impl Into<String>) -> Self {
        RedisFrontierConfig {
            url: url.into(),
            crawl: crawl.into(),
            worker_id: default_worker_id(),
            host_limit: 2,
            host_delay: Duration::ZERO,
            lease_timeout: Duration::from_secs(60),
            seen: SeenSet::Exact,
        }
    }
}

/// `hostname-pid-random`: unique per process, readable in `status`.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        hasher.finish() as u32
    )
}

/// See the module documentation.
pub struct RedisFrontier {
    cfg: RedisFrontierConfig,
    topology: Topology,
    /// `trawl:{NAME}:`, the crawl's own keys.
    home_prefix: String,
    home: Con,
    shards: Arc<Vec<Shard>>,
    scripts: Arc<Scripts>,
    /// Per shard: the pushes of many pages in one script call.
    pushers: Vec<batch::Batcher<PushBatch, (usize, usize)>>,
    /// Lease ids this process holds (extended by heartbeats).
    held: Mutex<HashSet<u64>>,
    /// The crawl's Bloom filter size per shard; `None`: exact set.
    bloom: Mutex<Option<seen::BloomSize>>,
    /// Fingerprints of URLs this process offered with a push that
    /// succeeded: in the seen-set for good, so never sent again.
    offered: Mutex<HashSet<u128>>,
    wakeup: Arc<Wakeup>,
    /// The wake-up generation when `lease` last looked at the queues.
    looked_at: AtomicU64,
    /// The shard the next lease call starts at.
    next_shard: AtomicUsize,
    /// Names this process's totals in [`RedisFrontier::record_done`].
    token: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RedisFrontier {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(MAX_MICROS) as u64
}

/// Escape Redis glob metacharacters so `s` matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn storage(msg: String) -> FrontierError {
    FrontierError::Storage(msg)
}

/// Socket options that notice a silent network: unacknowledged data for
/// 5 s, or an idle connection whose keepalive probes go unanswered for
/// ~11 s, closes the connection, so the next call reconnects instead of
/// waiting on a connection the network dropped (a blackhole, a NAT that
/// forgot it) until TCP itself gives up after many minutes.
fn tcp_settings() -> ::redis::io::tcp::TcpSettings {
    ::redis::io::tcp::TcpSettings::default()
        .set_keepalive(
            socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(5))
                .with_interval(Duration::from_secs(2))
                .with_retries(3),
        )
        .set_user_timeout(Duration::from_secs(5))
}

/// A client for `url` with [`tcp_settings`].
fn client(url: &str) -> Result<Client, RedisError> {
    use ::redis::IntoConnectionInfo;
    Client::open(url.into_connection_info()?.set_tcp_settings(tcp_settings()))
}

/// The servers of a topology, connected.
struct Connected {
    home: Con,
    /// Per instance (one per shard), or the one cluster connection.
    cons: Vec<Con>,
    /// Clients for pub/sub: per instance, or the cluster's seed nodes.
    pubsub: Vec<Client>,
}

async fn connect_topology(topology: &Topology) -> Result<Connected, String> {
    match topology {
        Topology::Instances(urls) => {
            let mut cons = Vec::with_capacity(urls.len());
            let mut pubsub = Vec::with_capacity(urls.len());
            for url in urls {
                let client = client(url).map_err(|e| format!("{url}: {e}"))?;
                let manager_cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(RECONNECT_RETRIES)
                    .set_max_delay(Duration::from_secs(1));
                let con = ConnectionManager::new_with_config(client.clone(), manager_cfg)
                    .await
                    .map_err(|e| format!("connect {url}: {e}"))?;
                cons.push(Con::Single(con));
                pubsub.push(client);
            }
            Ok(Connected {
                home: cons[0].clone(),
                cons,
                pubsub,
            })
        }
        Topology::Cluster { seeds, .. } => {
            let cluster = ClusterClient::builder(seeds.iter().map(String::as_str))
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(RECONNECT_RETRIES as u32 + 3)
                .tcp_settings(tcp_settings())
                .build()
                .map_err(|e| format!("cluster {seeds:?}: {e}"))?;
            let con = cluster
                .get_async_connection()
                .await
                .map_err(|e| format!("connect cluster {seeds:?}: {e}"))?;
            let pubsub = seeds
                .iter()
                .map(|s| client(s).map_err(|e| format!("{s}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            let con = Con::Cluster(con);
            Ok(Connected {
                home: con.clone(),
                cons: vec![con],
                pubsub,
            })
        }
    }
}

/// The masters of a cluster as (first slot, slot ranges), ordered by
/// their first slot.
async fn cluster_masters(con: &Con) -> Result<Vec<Vec<(i64, i64)>>, RedisError> {
    let slots: ::redis::Value = ::redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut con.clone())
        .await?;
    let mut by_master: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    if let ::redis::Value::Array(ranges) = slots {
        for range in ranges {
            let ::redis::Value::Array(parts) = range else {
                continue;
            };
            let int = |v: Option<&::redis::Value>| match v {
                Some(::redis::Value::Int(i)) => Some(*i),
                _ => None,
            };
            let (Some(start), Some(end)) = (int(parts.first()), int(parts.get(1))) else {
                continue;
            };
            let master = match parts.get(2) {
                Some(node) => format!("{node:?}"),
                None => continue,
            };
            by_master.entry(master).or_default().push((start, end));
        }
    }
    let mut masters: Vec<Vec<(i64, i64)>> = by_master.into_values().collect();
    for m in &mut masters {
        m.sort_unstable();
    }
    masters.sort_by_key(|m| m.first().map_or(i64::MAX, |r| r.0));
    Ok(masters)
}

/// Tags for `n` shards of `crawl` on a cluster: shard k's slot on master
/// k mod masters, so consecutive shards start on different masters.
async fn cluster_tags(con: &Con, crawl: &str, n: usize) -> Result<Vec<String>, RedisError> {
    if n == 1 {
        return Ok(vec![crawl.to_string()]);
    }
    let masters = cluster_masters(con).await?;
    let mut tags = Vec::with_capacity(n);
    for k in 0..n {
        let mut chosen = format!("{crawl}/{k}");
        if !masters.is_empty() {
            let want = &masters[k % masters.len()];
            for salt in 0..10_000u32 {
                let tag = if salt == 0 {
                    format!("{crawl}/{k}")
                } else {
                    format!("{crawl}/{k}.{salt}")
                };
                let slot: i64 = ::redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(&tag)
                    .query_async(&mut con.clone())
                    .await?;
                if want.iter().any(|&(a, b)| (a..=b).contains(&slot)) {
                    chosen = tag;
                    break;
                }
            }
        }
        tags.push(chosen);
    }
    Ok(tags)
}

/// The crawl's shard tags: read from its shard map, or decided and written
/// (first process wins a race) when the crawl is new.
async fn shard_tags(
    topology: &Topology,
    home: &Con,
    home_prefix: &str,
    crawl: &str,
) -> Result<Vec<String>, String> {
    let key = format!("{home_prefix}shards");
    let read = || async {
        ::redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<String>>(&mut home.clone())
            .await
            .map_err(|e| format!("read the shard map {key}: {e}"))
    };
    let split = |s: String| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let existing = read().await?.map(split);
    let wanted = match (topology, &existing) {
        (Topology::Instances(urls), _) => {
            if urls.len() == 1 {
                vec![crawl.to_string()]
            } else {
                (0..urls.len()).map(|k| format!("{crawl}/{k}")).collect()
            }
        }
        (Topology::Cluster { shards, .. }, Some(tags)) => {
            if let Some(n) = shards.filter(|&n| n != tags.len()) {
                return Err(format!(
                    "crawl {crawl} has {} shards, not {n}: drop ?shards= or use another crawl name",
                    tags.len()
                ));
            }
            return Ok(tags.clone());
        }
        (Topology::Cluster { shards, .. }, None) => {
            let n = match shards {
                Some(n) => *n,
                None => cluster_masters(home)
                    .await
                    .map_err(|e| format!("CLUSTER SLOTS: {e}"))?
                    .len()
                    .max(1),
            };
            cluster_tags(home, crawl, n)
                .await
                .map_err(|e| format!("choosing shard slots: {e}"))?
        }
    };
    let agree = |tags: &Vec<String>| {
        if *tags == wanted {
            Ok(wanted.clone())
        } else if matches!(topology, Topology::Cluster { .. }) {
            Ok(tags.clone())
        } else {
            Err(format!(
                "crawl {crawl} is spread over {} Redis instances ({}), this process names {}: \
                 give every worker the same --redis list, in the same order",
                tags.len(),
                tags.join(" "),
                wanted.len()
            ))
        }
    };
    if let Some(tags) = &existing {
        return agree(tags);
    }
    let set: Option<String> = ::redis::cmd("SET")
        .arg(&key)
        .arg(wanted.join(" "))
        .arg("NX")
        .query_async(&mut home.clone())
        .await
        .map_err(|e| format!("write the shard map {key}: {e}"))?;
    if set.is_some() {
        return Ok(wanted);
    }
    match read().await?.map(split) {
        Some(tags) => agree(&tags),
        None => Err(format!("the shard map {key} vanished while being written")),
    }
}

/// Every instance of a sharded crawl records its place (`k/N`, key
/// `trawl:{NAME}:instance`): a worker listing the instances in another
/// order would read and write hosts in the wrong shards.
async fn check_instance_order(cons: &[Con], home_prefix: &str, crawl: &str) -> Result<(), String> {
    let key = format!("{home_prefix}instance");
    let n = cons.len();
    for (i, con) in cons.iter().enumerate() {
        let place = format!("{i}/{n}");
        let set: Option<String> = ::redis::cmd("SET")
            .arg(&key)
            .arg(&place)
            .arg("NX")
            .arg("GET")
            .query_async(&mut con.clone())
            .await
            .map_err(|e| format!("instance {i} of crawl {crawl}: {e}"))?;
        if let Some(was) = set.filter(|was| *was != place) {
            return Err(format!(
                "instance {} of the --redis list holds shard {was} of crawl {crawl}: \
                 give every worker the same --redis list, in the same order",
                i + 1
            ));
        }
    }
    Ok(())
}

/// The crawl's seen-set: as stored, or (a new crawl) `wanted`, stored.
async fn resolve_seen(
    home: &Con,
    home_prefix: &str,
    wanted: &SeenSet,
    shards: usize,
    overwrite: bool,
) -> Result<Option<seen::BloomSize>, String> {
    let key = format!("{home_prefix}seenset");
    let size = wanted.bloom_size(shards)?;
    let stored = size.map_or_else(|| "exact".to_string(), |b| b.stored());
    let mut set = ::redis::cmd("SET");
    set.arg(&key).arg(&stored);
    if !overwrite {
        set.arg("NX").arg("GET");
    }
    let reply: ::redis::Value = set
        .query_async(&mut home.clone())
        .await
        .map_err(|e| format!("seen-set mode {key}: {e}"))?;
    if overwrite {
        return Ok(size);
    }
    let was: Option<String> =
        ::redis::from_redis_value(reply).map_err(|e| format!("seen-set mode {key}: {e}"))?;
    match was {
        None => Ok(size),
        Some(v) if v == "exact" => Ok(None),
        Some(v) => match seen::BloomSize::from_stored(&v) {
            Some(b) => Ok(Some(b)),
            None => Err(format!("unreadable seen-set mode {v:?} in {key}")),
        },
    }
}

impl RedisFrontier {
    /// Connect, subscribe to the shards' wake-up channels, and register this
    /// worker (one heartbeat). Fails if Redis is unreachable.
    pub async fn connect(cfg: RedisFrontierConfig) -> Result<RedisFrontier, FrontierError> {
        if cfg.crawl.is_empty() || cfg.crawl.contains(['{', '}', ' ', '/']) {
            return Err(storage(format!(
                "invalid crawl name {:?}: must be non-empty, without braces, spaces or slashes",
                cfg.crawl
            )));
        }
        if cfg.worker_id.is_empty() || cfg.worker_id.contains(|c: char| c.is_control()) {
            return Err(storage(format!(
                "invalid worker id {:?}: must be non-empty, without control characters",
                cfg.worker_id
            )));
        }
        let mut cfg = cfg;
        cfg.host_limit = cfg.host_limit.max(1);
        cfg.lease_timeout = cfg.lease_timeout.max(Duration::from_millis(1));
        let topology = Topology::parse(&cfg.url).map_err(|e| storage(e.to_string()))?;
        let home_prefix = format!("trawl:{{{}}}:", cfg.crawl);
        let fail = |e: String| storage(format!("redis {e}"));
        let connected = connect_topology(&topology).await.map_err(fail)?;
        let tags = shard_tags(&topology, &connected.home, &home_prefix, &cfg.crawl)
            .await
            .map_err(fail)?;
        if connected.cons.len() > 1 {
            check_instance_order(&connected.cons, &home_prefix, &cfg.crawl)
                .await
                .map_err(fail)?;
        }
        let shards: Vec<Shard> = tags
            .iter()
            .enumerate()
            .map(|(k, tag)| {
                let con = connected.cons[k % connected.cons.len()].clone();
                Shard::new(k, tag, con)
            })
            .collect();
        // Wake-up listeners: one per instance (its shards' channels), or
        // one for a cluster (pub/sub messages reach every node).
        let wakeup = Arc::new(Wakeup::default());
        let mut tasks = Vec::new();
        let groups: Vec<(Vec<Client>, Vec<String>)> = match &topology {
            Topology::Instances(_) => connected
                .pubsub
                .iter()
                .enumerate()
                .map(|(i, client)| {
                    let channels = shards
                        .iter()
                        .filter(|s| s.index % connected.pubsub.len() == i)
                        .map(Shard::channel)
                        .collect();
                    (vec![client.clone()], channels)
                })
                .collect(),
            Topology::Cluster { .. } => vec![(
                connected.pubsub.clone(),
                shards.iter().map(Shard::channel).collect(),
            )],
        };
        for (clients, channels) in groups {
            let first = wakeup::subscribe(&clients, &channels)
                .await
                .map_err(|e| storage(format!("redis subscribe {channels:?}: {e}")))?;
            tasks.push(wakeup::spawn(clients, channels, first, wakeup.clone()));
        }
        let bloom = resolve_seen(
            &connected.home,
            &home_prefix,
            &cfg.seen,
            shards.len(),
            false,
        )
        .await
        .map_err(fail)?;
        let shards = Arc::new(shards);
        let scripts = Arc::new(Scripts::new());
        let wait = match &topology {
            Topology::Cluster { wait, .. } => *wait,
            Topology::Instances(_) => 0,
        };
        let pushers = (0..shards.len())
            .map(|k| spawn_pusher(shards.clone(), k, scripts.clone(), cfg.host_limit, wait))
            .collect();
        tasks.push(spawn_fetched_flusher(
            shards.clone(),
            scripts.clone(),
            cfg.host_limit,
        ));
        let frontier = RedisFrontier {
            cfg,
            topology,
            home_prefix,
            home: connected.home,
            shards,
            scripts,
            pushers,
            held: Mutex::new(HashSet::new()),
            bloom: Mutex::new(bloom),
            offered: Mutex::new(HashSet::new()),
            wakeup,
            looked_at: AtomicU64::new(0),
            next_shard: AtomicUsize::new(0),
            token: default_worker_id(),
            tasks,
        };
        frontier.heartbeat().await?;
        Ok(frontier)
    }

    /// The configuration in force (limit and timeout clamped to ≥ 1).
    pub fn config(&self) -> &RedisFrontierConfig {
        &self.cfg
    }

    /// The deployment the frontier reaches.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The id this process works under (its leases, heartbeats, worker
    /// hash).
    pub fn worker_id(&self) -> &str {
        &self.cfg.worker_id
    }

    /// `trawl:{NAME}:`, the prefix of the crawl's own keys (and, for an
    /// unsharded crawl, of every key).
    pub fn key_prefix(&self) -> &str {
        &self.home_prefix
    }

    /// The key prefix of every shard, in shard order.
    pub fn shard_prefixes(&self) -> Vec<String> {
        self.shards.iter().map(|s| s.prefix.clone()).collect()
    }

    /// The crawl's Bloom filter size per shard (`None`: an exact set).
    pub fn bloom_size(&self) -> Option<seen::BloomSize> {
        *self.bloom.lock()
    }

    /// The shard a host key belongs to.
    pub fn shard_of_host(&self, host_key: &str) -> usize {
        topology::shard_of(host_key, self.shards.len())
    }

    /// The crawl's duplicate index, shared by its workers (see
    /// `dupes.rs`): per shard, so a page is compared with the pages of
    /// its own shard's sites.
    pub fn content_index(&self, distance: u32) -> dupes::RedisIndex {
        dupes::RedisIndex::new(
            self.shards
                .iter()
                .map(|s| (s.con.clone(), s.prefix.clone()))
                .collect(),
            distance,
        )
    }

    fn err(&self, op: &str, e: RedisError) -> FrontierError {
        storage(format!("redis {op} (crawl {}): {e}", self.cfg.crawl))
    }

    fn shard_err(&self, shard: &Shard, op: &str, e: RedisError) -> FrontierError {
        if self.shards.len() == 1 {
            return self.err(op, e);
        }
        storage(format!(
            "redis {op} (crawl {}, shard {} {}): {e}",
            self.cfg.crawl, shard.index, shard.prefix
        ))
    }

    /// A script call on `shard` with the standard `KEYS[1]`, `ARGV[1]` and
    /// (if `carry`) the shard's pending `fetched` notices as `ARGV[2]`.
    fn invocation<'a>(
        &self,
        shard: &Shard,
        script: &'a Script,
        carry: bool,
    ) -> ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.key(&shard.prefix).arg(self.cfg.host_limit);
        if carry {
            inv.arg(shard.take_fetched());
        } else {
            inv.arg("");
        }
        inv
    }

    fn global_id(&self, shard: &Shard, local: u64) -> u64 {
        local * self.shards.len() as u64 + shard.index as u64
    }

    /// The shard and shard-local id of a lease id.
    fn locate(&self, id: u64) -> (&Shard, u64) {
        let n = self.shards.len() as u64;
        (&self.shards[(id % n) as usize], id / n)
    }

    /// Delete every key of this crawl (and only this crawl), for `--fresh`,
    /// then write its shard map and seen-set mode again (this process's).
    /// Do not run it while other workers use the crawl.
    pub async fn reset(&self) -> Result<(), FrontierError> {
        self.delete().await?;
        ::redis::cmd("SET")
            .arg(format!("{}shards", self.home_prefix))
            .arg(
                self.shards
                    .iter()
                    .map(|s| tag_of(&s.prefix))
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .query_async::<()>(&mut self.home.clone())
            .await
            .map_err(|e| self.err("reset shard map", e))?;
        let bloom = resolve_seen(
            &self.home,
            &self.home_prefix,
            &self.cfg.seen,
            self.shards.len(),
            true,
        )
        .await
        .map_err(storage)?;
        *self.bloom.lock() = bloom;
        Ok(())
    }

    /// Delete every key of this crawl (and only this crawl), the shard map
    /// too: the crawl is gone. Uses `SCAN` with the escaped prefix pattern,
    /// never `KEYS` or `FLUSHDB`. Do not run it while other workers use
    /// the crawl.
    pub async fn delete(&self) -> Result<(), FrontierError> {
        let mut prefixes: Vec<(&Con, &str)> = vec![(&self.home, &self.home_prefix)];
        let instances = matches!(self.topology, Topology::Instances(_));
        for (k, s) in self.shards.iter().enumerate() {
            if s.prefix != self.home_prefix {
                prefixes.push((&s.con, &s.prefix));
            }
            // Each instance also holds its place (`instance`) at home.
            if instances && k > 0 {
                prefixes.push((&s.con, &self.home_prefix));
            }
        }
        for (con, prefix) in prefixes {
            let pattern = format!("{}*", glob_escape(prefix));
            let mut cursor: u64 = 0;
            loop {
                let mut scan = ::redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, keys): (u64, Vec<Vec<u8>>) = con
                    .on_node_of(prefix, scan)
                    .await
                    .map_err(|e| self.err("reset scan", e))?;
                if !keys.is_empty() {
                    ::redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async::<()>(&mut con.clone())
                        .await
                        .map_err(|e| self.err("reset unlink", e))?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        self.held.lock().clear();
        self.offered.lock().clear();
        Ok(())
    }

    /// Extend the leases this process holds to now + `lease_timeout` and mark
    /// the worker alive. Leases already reclaimed are forgotten. A shard
    /// that does not answer is skipped (its leases may expire); the worker
    /// mark must get through.
    pub async fn heartbeat(&self) -> Result<(), FrontierError> {
        let n = self.shards.len() as u64;
        let mut per: Vec<Vec<u64>> = vec![Vec::new(); self.shards.len()];
        for &id in self.held.lock().iter() {
            per[(id % n) as usize].push(id / n);
        }
        let ttl = micros(self.cfg.lease_timeout);
        let calls = self.shards.iter().zip(per).map(|(shard, ids)| async move {
            let mut inv = self.invocation(shard, &self.scripts.heartbeat, false);
            inv.arg(&self.cfg.worker_id).arg(ttl).arg(&ids);
            let r: Result<Vec<u64>, _> = inv.invoke_async(&mut shard.con.clone()).await;
            (shard, r)
        });
        let mut failure = None;
        for (shard, result) in join_all(calls).await {
            match result {
                Ok(gone) => {
                    shard.answered();
                    if !gone.is_empty() {
                        tracing::warn!(
                            leases = gone.len(),
                            "Leases expired before their heartbeat; other workers may fetch them again."
                        );
                        let mut held = self.held.lock();
                        for local in gone {
                            held.remove(&self.global_id(shard, local));
                        }
                    }
                }
                Err(e) => {
                    shard.failed();
                    failure.get_or_insert(self.shard_err(shard, "heartbeat", e));
                }
            }
        }
        if self.shards.len() == 1 {
            return failure.map_or(Ok(()), Err);
        }
        if let Some(e) = failure {
            tracing::warn!(error = %e, "A frontier shard missed a heartbeat.");
        }
        {
            // The crawl-wide worker list lives at home.
            let mut inv = self.scripts.heartbeat.prepare_invoke();
            inv.key(&self.home_prefix)
                .arg(self.cfg.host_limit)
                .arg("")
                .arg(&self.cfg.worker_id)
                .arg(ttl);
            inv.invoke_async::<Vec<u64>>(&mut self.home.clone())
                .await
                .map_err(|e| self.err("heartbeat", e))?;
        }
        Ok(())
    }

    /// Heartbeat every `every` (use well under `lease_timeout`, e.g. a third)
    /// until the frontier is dropped. Failures are logged and retried.
    pub fn spawn_heartbeat(self: &Arc<Self>, every: Duration) -> JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(frontier) = weak.upgrade() else {
                    break;
                };
                if let Err(error) = frontier.heartbeat().await {
                    tracing::warn!(%error, "Frontier heartbeat failed.");
                }
            }
        })
    }

    /// The crawl's spec (seeds and scope, as the seeding process stored
    /// it), so workers started anywhere crawl the same scope.
    pub async fn spec(&self) -> Result<Option<Vec<u8>>, FrontierError> {
        ::redis::cmd("GET")
            .arg(format!("{}spec", self.home_prefix))
            .query_async(&mut self.home.clone())
            .await
            .map_err(|e| self.err("spec", e))
    }

    /// Store the crawl's spec (see [`RedisFrontier::spec`]).
    pub async fn set_spec(&self, spec: &[u8]) -> Result<(), FrontierError> {
        ::redis::cmd("SET")
            .arg(format!("{}spec", self.home_prefix))
            .arg(spec)
            .query_async::<()>(&mut self.home.clone())
            .await
            .map_err(|e| self.err("set spec", e))
    }

    /// Report the pages and errors this process has done in all (not
    /// since the last report): the crawl's and this worker's counters
    /// grow by the difference to its last report that got through, so a
    /// report retried after a timeout (which Redis may still have run) is
    /// never counted twice.
    pub async fn record_done(&self, pages: u64, errors: u64) -> Result<(), FrontierError> {
        let mut inv = self.scripts.record.prepare_invoke();
        inv.key(&self.home_prefix)
            .arg(&self.cfg.worker_id)
            .arg(&self.token)
            .arg(pages)
            .arg(errors);
        inv.invoke_async::<i64>(&mut self.home.clone())
            .await
            .map(drop)
            .map_err(|e| self.err("record_done", e))
    }

    /// Publish this worker's live figures (a small JSON document, e.g.
    /// pages, requests in flight, busy parse workers) for dashboards:
    /// kept in its worker hash, field `live`.
    pub async fn publish_live(&self, json: &str) -> Result<(), FrontierError> {
        let worker = format!("{}worker:{}", self.home_prefix, self.cfg.worker_id);
        ::redis::cmd("HSET")
            .arg(&worker)
            .arg("live")
            .arg(json)
            .query_async::<()>(&mut self.home.clone())
            .await
            .map_err(|e| self.err("publish_live", e))
    }

    /// The live figures the given workers last published (`None` for a
    /// worker that published none), in the same order.
    pub async fn workers_live(&self, ids: &[String]) -> Result<Vec<Option<String>>, FrontierError> {
        let mut out = Vec::with_capacity(ids.len());
        // One by one: on a cluster the workers' hashes share the home
        // slot, but a pipeline would still be split by the client.
        for id in ids {
            let live: Option<String> = ::redis::cmd("HGET")
                .arg(format!("{}worker:{id}", self.home_prefix))
                .arg("live")
                .query_async(&mut self.home.clone())
                .await
                .map_err(|e| self.err("workers_live", e))?;
            out.push(live);
        }
        Ok(out)
    }

    /// Queue sizes, counters and live workers: each shard's figures in one
    /// atomic snapshot of that shard, summed; a shard that does not answer
    /// is listed with its error and left out of the sums.
    pub async fn status(&self) -> Result<CrawlStatus, FrontierError> {
        let ttl = micros(self.cfg.lease_timeout);
        let call = |con: Con, prefix: String| {
            let mut inv = self.scripts.status.prepare_invoke();
            inv.key(prefix).arg(self.cfg.host_limit).arg("").arg(ttl);
            async move {
                let mut con = con;
                inv.invoke_async::<status::Raw>(&mut con).await
            }
        };
        let home = call(self.home.clone(), self.home_prefix.clone())
            .await
            .map_err(|e| self.err("status", e))?;
        let mut rows = Vec::with_capacity(self.shards.len());
        if self.shards.len() == 1 {
            rows.push(Ok(home.clone()));
        } else {
            let calls = self
                .shards
                .iter()
                .map(|s| call(s.con.clone(), s.prefix.clone()));
            rows.extend(join_all(calls).await);
        }
        Ok(status::assemble(
            &self.cfg.crawl,
            home,
            self.shards
                .iter()
                .map(|s| s.prefix.clone())
                .zip(rows)
                .collect(),
        ))
    }

    /// True when nothing is queued and no lease is outstanding in any
    /// shard, after returning expired leases to the queue. With several
    /// shards, all are read twice and must not have leased or queued
    /// anything in between (work moving from a shard not yet read to one
    /// already read would otherwise be missed).
    pub async fn is_finished(&self) -> Result<bool, FrontierError> {
        let pass = || async {
            let calls = self.shards.iter().map(|shard| async move {
                self.invocation(shard, &self.scripts.is_finished, true)
                    .invoke_async::<(i64, u64, u64)>(&mut shard.con.clone())
                    .await
                    .map_err(|e| self.shard_err(shard, "is_finished", e))
            });
            let mut out = Vec::with_capacity(self.shards.len());
            for r in join_all(calls).await {
                out.push(r?);
            }
            Ok::<_, FrontierError>(out)
        };
        let first = pass().await?;
        if first.iter().any(|r| r.0 != 1) {
            return Ok(false);
        }
        if self.shards.len() == 1 {
            return Ok(true);
        }
        Ok(pass().await? == first)
    }

    /// Time until a ready host is due or a lease expires in any shard;
    /// `None` if neither.
    async fn next_due(&self) -> Result<Option<Duration>, FrontierError> {
        let calls = self
            .shards
            .iter()
            .filter(|s| !s.resting())
            .map(|shard| async move {
                self.invocation(shard, &self.scripts.next_due, false)
                    .invoke_async::<i64>(&mut shard.con.clone())
                    .await
            });
        let mut best: Option<Duration> = None;
        let mut failure = None;
        for r in join_all(calls).await {
            match r {
                Ok(us) => {
                    if let Ok(us) = u64::try_from(us) {
                        let d = Duration::from_micros(us);
                        best = Some(best.map_or(d, |b| b.min(d)));
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        match (best, failure) {
            (None, Some(e)) => Err(self.err("next_due", e)),
            (best, _) => Ok(best),
        }
    }

    /// Run a one-lease script (ack, release). `ends`: the lease is over for
    /// this process whatever the outcome; stop extending it.
    async fn lease_op(
        &self,
        script: &Script,
        op: &str,
        id: u64,
        ends: bool,
    ) -> Result<(), FrontierError> {
        if ends {
            self.held.lock().remove(&id);
        }
        let (shard, local) = self.locate(id);
        let mut inv = self.invocation(shard, script, true);
        inv.arg(local);
        let found: i64 = inv
            .invoke_async(&mut shard.con.clone())
            .await
            .map_err(|e| self.shard_err(shard, op, e))?;
        if found == 1 {
            Ok(())
        } else {
            Err(FrontierError::UnknownLease(id))
        }
    }

    /// Lease up to `max` from one shard.
    async fn lease_from(&self, shard: &Shard, max: usize) -> Result<Vec<Lease>, FrontierError> {
        let mut inv = self.invocation(shard, &self.scripts.lease, true);
        inv.arg(max)
            .arg(micros(self.cfg.host_delay))
            .arg(micros(self.cfg.lease_timeout))
            .arg(&self.cfg.worker_id);
        let rows: Vec<(u64, String, String)> = inv
            .invoke_async(&mut shard.con.clone())
            .await
            .map_err(|e| self.shard_err(shard, "lease", e))?;
        let mut out = Vec::with_capacity(rows.len());
        let mut poisoned = Vec::new();
        {
            let mut held = self.held.lock();
            for (local, host, json) in rows {
                let id = self.global_id(shard, local);
                match serde_json::from_str::<Request>(&json) {
                    Ok(request) => {
                        held.insert(id);
                        out.push(Lease { id, request, host });
                    }
                    Err(error) => {
                        tracing::error!(%error, %host, json, "Unreadable request in the Redis frontier; dropped.");
                        poisoned.push(id);
                    }
                }
            }
        }
        for id in poisoned {
            // Best effort: if this fails the lease expires and comes back.
            let _ = self.lease_op(&self.scripts.ack, "ack", id, true).await;
        }
        Ok(out)
    }

    /// Push one shard's requests (the first `split` of them counted apart)
    /// through the shard's pusher. Returns (new, new among the first
    /// `split`).
    async fn push_to(
        &self,
        shard: &Shard,
        requests: &[(u128, &Request)],
        split: usize,
    ) -> Result<(usize, usize), FrontierError> {
        let bloom = *self.bloom.lock();
        let mode = bloom
            .map(|b| format!("{} {}", b.m, b.k))
            .unwrap_or_default();
        let mut calls = Vec::new();
        let mut offset = 0;
        for chunk in requests.chunks(PUSH_CHUNK) {
            let chunk_split = split.saturating_sub(offset).min(chunk.len());
            offset += chunk.len();
            let mut args = Vec::with_capacity(chunk.len() * 3);
            for (fingerprint, req) in chunk {
                let json = serde_json::to_vec(req)
                    .map_err(|e| storage(format!("serialize request {}: {e}", req.url)))?;
                args.push(match bloom {
                    None => fingerprint.to_le_bytes().to_vec(),
                    Some(b) => {
                        let (x, y) = b.probe(*fingerprint);
                        format!("{x} {y}").into_bytes()
                    }
                });
                args.push(req.host_key().into_bytes());
                args.push(json);
            }
            calls.push(self.pushers[shard.index].call(PushBatch {
                args,
                split: chunk_split,
                mode: mode.clone(),
            }));
        }
        let (mut added, mut first) = (0, 0);
        for result in join_all(calls).await {
            let (n, f) = result.map_err(|e| {
                storage(format!(
                    "redis push (crawl {}, shard {}): {e}",
                    self.cfg.crawl, shard.index
                ))
            })?;
            added += n;
            first += f;
        }
        let mut offered = self.offered.lock();
        if offered.len() + requests.len() > OFFERED_CAPACITY {
            offered.clear();
        }
        offered.extend(requests.iter().map(|(fp, _)| *fp));
        Ok((added, first))
    }
}

/// One page's push to one shard: the script's triples (seen-set entry,
/// host, request JSON) and how many of the first count apart.
struct PushBatch {
    args: Vec<Vec<u8>>,
    split: usize,
    /// The seen-set argument (`''` or `'M K'`).
    mode: String,
}

/// The pusher of shard `index`: runs the pushes waiting for it as one
/// `PUSH` call (then `WAIT`s for `wait` replicas if anything was queued).
fn spawn_pusher(
    shards: Arc<Vec<Shard>>,
    index: usize,
    scripts: Arc<Scripts>,
    limit: usize,
    wait: usize,
) -> batch::Batcher<PushBatch, (usize, usize)> {
    batch::Batcher::new(
        PUSH_CHUNK,
        BATCH_LINGER,
        |b: &PushBatch| b.args.len() / 3,
        move |pushes: Vec<PushBatch>| {
            let (shards, scripts) = (shards.clone(), scripts.clone());
            async move {
                let shard = &shards[index];
                let mut inv = scripts.push.prepare_invoke();
                inv.key(&shard.prefix)
                    .arg(limit)
                    .arg(shard.take_fetched())
                    .arg(pushes.first().map_or("", |p| p.mode.as_str()))
                    .arg(pushes.len());
                for p in &pushes {
                    inv.arg(p.args.len() / 3).arg(p.split);
                }
                for p in &pushes {
                    for a in &p.args {
                        inv.arg(&a[..]);
                    }
                }
                let counts: Vec<usize> = inv
                    .invoke_async(&mut shard.con.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                if wait > 0 && counts.iter().step_by(2).any(|&n| n > 0) {
                    wait_for_replicas(shard, wait).await;
                }
                Ok(counts
                    .chunks(2)
                    .map(|c| (c[0], c.get(1).copied().unwrap_or(0)))
                    .collect())
            }
        },
    )
}

/// Wait until `replicas` replicas of the shard's master have every write
/// sent to it so far (`WAIT`), or as many as are connected to it: a
/// master without replicas (one that took over in a failover, until its
/// old master comes back as its replica) cannot give the guarantee, and
/// waiting for a replica that does not exist would cost every push
/// `REPLICA_WAIT`. Such a shortfall, and a replica that does not answer
/// in time, are logged: the crawl goes on without the guarantee rather
/// than stopping.
async fn wait_for_replicas(shard: &Shard, replicas: usize) {
    let target = match shard.connected_replicas().await {
        Some((connected, changed)) if connected < replicas => {
            if changed {
                tracing::warn!(
                    shard = shard.index,
                    connected,
                    wanted = replicas,
                    "The shard's master has fewer replicas than wait= asks; pushes wait for those it has."
                );
            }
            connected
        }
        _ => replicas,
    };
    if target == 0 {
        return;
    }
    let mut cmd = ::redis::cmd("WAIT");
    cmd.arg(target).arg(REPLICA_WAIT.as_millis() as u64);
    match shard.con.on_node_of::<i64>(&shard.prefix, cmd).await {
        Ok(n) if n >= target as i64 => {}
        Ok(n) => {
            shard.recount_replicas();
            tracing::warn!(
                shard = shard.index,
                replicas = n,
                wanted = target,
                "Pushed links reached fewer replicas than asked."
            )
        }
        Err(error) => {
            shard.recount_replicas();
            tracing::warn!(shard = shard.index, %error, "WAIT for replicas failed.")
        }
    }
}

/// Tell the shards, every [`FETCHED_LINGER`], of `fetched` notices that no
/// other call carried.
fn spawn_fetched_flusher(
    shards: Arc<Vec<Shard>>,
    scripts: Arc<Scripts>,
    limit: usize,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FETCHED_LINGER);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for shard in shards.iter() {
                if shard.fetched.lock().is_empty() || shard.resting() {
                    continue;
                }
                let mut inv = scripts.flush.prepare_invoke();
                inv.key(&shard.prefix).arg(limit).arg(shard.take_fetched());
                if let Err(error) = inv.invoke_async::<i64>(&mut shard.con.clone()).await {
                    // Lost notices only keep the host slots until the acks.
                    tracing::debug!(%error, shard = shard.index, "Fetched notices not delivered.");
                    shard.failed();
                }
            }
        }
    })
}

/// `NAME/k` of `trawl:{NAME/k}:`.
fn tag_of(prefix: &str) -> &str {
    prefix
        .strip_prefix("trawl:{")
        .and_then(|p| p.strip_suffix("}:"))
        .unwrap_or(prefix)
}

#[async_trait::async_trait]
impl Frontier for RedisFrontier {
    async fn push(&self, requests: Vec<Request>) -> Result<usize, FrontierError> {
        Ok(self.push_split(requests, 0).await?.0)
    }

    async fn push_split(
        &self,
        requests: Vec<Request>,
        split: usize,
    ) -> Result<(usize, usize), FrontierError> {
        // Per shard, in order (so each shard's first-part requests come
        // first), leaving out URLs this process offered before.
        let n = self.shards.len();
        let mut per: Vec<(Vec<(u128, &Request)>, usize)> = vec![(Vec::new(), 0); n];
        {
            let offered = self.offered.lock();
            let mut batch = HashSet::new();
            for (i, req) in requests.iter().enumerate() {
                let fp = u128::from_le_bytes(req.fingerprint());
                if offered.contains(&fp) || !batch.insert(fp) {
                    continue;
                }
                let k = if n == 1 {
                    0
                } else {
                    topology::shard_of(&req.host_key(), n)
                };
                per[k].0.push((fp, req));
                if i < split {
                    per[k].1 += 1;
                }
            }
        }
        let calls = self
            .shards
            .iter()
            .zip(&per)
            .filter(|(_, (reqs, _))| !reqs.is_empty())
            .map(|(shard, (reqs, first))| self.push_to(shard, reqs, *first));
        let (mut added, mut first) = (0, 0);
        for r in join_all(calls).await {
            let (a, f) = r?;
            added += a;
            first += f;
        }
        Ok((added, first))
    }

    async fn lease(&self, max: usize) -> Result<Vec<Lease>, FrontierError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.looked_at.store(
            self.wakeup.generation.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        let n = self.shards.len();
        if n == 1 {
            let shard = &self.shards[0];
            let leases = self.lease_from(shard, max).await?;
            shard.answered();
            return Ok(leases);
        }
        // From a rotating start, one shard after the other until `max` is
        // reached: a busy crawl fills a call from its first shard, so a
        // lease stays one script call; every shard gets its turn first.
        let start = self.next_shard.fetch_add(1, Ordering::Relaxed) % n;
        let mut out = Vec::with_capacity(max);
        let mut failure = None;
        let mut tried = 0;
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            let shard = &self.shards[(start + i) % n];
            if shard.resting() {
                continue;
            }
            tried += 1;
            match self.lease_from(shard, max - out.len()).await {
                Ok(leases) => {
                    shard.answered();
                    out.extend(leases);
                }
                Err(e) => {
                    shard.failed();
                    tracing::warn!(error = %e, "A frontier shard is unreachable; leasing from the others.");
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) if out.is_empty() && tried == n => Err(e),
            _ if tried == 0 => Err(storage(format!(
                "redis lease (crawl {}): no shard answers",
                self.cfg.crawl
            ))),
            _ => Ok(out),
        }
    }

    /// Every lease call is a script run on each shard.
    fn lease_batch(&self) -> usize {
        LEASE_BATCH
    }

    /// Pushes of many pages share a script call (see `batch.rs`).
    fn pushes_ahead(&self) -> usize {
        PUSHES_AHEAD
    }

    async fn fetched(&self, lease: &Lease) -> Result<(), FrontierError> {
        let (shard, local) = self.locate(lease.id);
        shard.fetched.lock().push(local);
        Ok(())
    }

    async fn ack(&self, lease: &Lease) -> Result<(), FrontierError> {
        self.lease_op(&self.scripts.ack, "ack", lease.id, true)
            .await
    }

    async fn ack_batch(
        &self,
        leases: &[Lease],
        checkpoint: Option<Vec<u8>>,
    ) -> Result<(), FrontierError> {
        if leases.is_empty() && checkpoint.is_none() {
            return Ok(());
        }
        let n = self.shards.len() as u64;
        let mut per: Vec<Vec<u64>> = vec![Vec::new(); self.shards.len()];
        {
            let mut held = self.held.lock();
            for lease in leases {
                held.remove(&lease.id);
                per[(lease.id % n) as usize].push(lease.id / n);
            }
        }
        let together = self.shards.len() == 1;
        if !together && let Some(cp) = &checkpoint {
            // Before the acks: a crash between them re-fetches pages (their
            // items may be written twice) instead of cutting acked items.
            ::redis::cmd("HSET")
                .arg(format!("{}worker:{}", self.home_prefix, self.cfg.worker_id))
                .arg("checkpoint")
                .arg(&cp[..])
                .query_async::<()>(&mut self.home.clone())
                .await
                .map_err(|e| self.err("checkpoint", e))?;
        }
        let calls = self.shards.iter().zip(per).map(|(shard, mut ids)| {
            let checkpoint = checkpoint.as_deref().filter(|_| together);
            async move {
                ids.append(&mut shard.unacked.lock());
                if ids.is_empty() && checkpoint.is_none() {
                    return Ok(Vec::new());
                }
                let mut inv = self.invocation(shard, &self.scripts.ack_batch, true);
                inv.arg(&self.cfg.worker_id)
                    .arg(if checkpoint.is_some() { "1" } else { "0" })
                    .arg(checkpoint.unwrap_or_default())
                    .arg(&ids);
                match inv.invoke_async::<Vec<u64>>(&mut shard.con.clone()).await {
                    Ok(unknown) => {
                        shard.answered();
                        Ok(unknown
                            .into_iter()
                            .map(|local| self.global_id(shard, local))
                            .collect())
                    }
                    Err(e) if !together => {
                        // Kept for the next ack on this shard; the leases
                        // are no longer extended, so if the shard stays away
                        // they expire and their pages are fetched again.
                        tracing::warn!(error = %self.shard_err(shard, "ack_batch", e), leases = ids.len(),
                            "Acks kept until the shard answers.");
                        shard.failed();
                        shard.unacked.lock().extend(ids);
                        Ok(Vec::new())
                    }
                    Err(e) => Err(self.shard_err(shard, "ack_batch", e)),
                }
            }
        });
        let mut unknown = None;
        for r in join_all(calls).await {
            if let Some(&id) = r?.first() {
                unknown.get_or_insert(id);
            }
        }
        match unknown {
            None => Ok(()),
            Some(id) => Err(FrontierError::UnknownLease(id)),
        }
    }

    /// This worker id's checkpoint from its last `ack_batch`.
    async fn checkpoint(&self) -> Result<Option<Vec<u8>>, FrontierError> {
        let key = format!("{}worker:{}", self.home_prefix, self.cfg.worker_id);
        ::redis::cmd("HGET")
            .arg(key)
            .arg("checkpoint")
            .query_async(&mut self.home.clone())
            .await
            .map_err(|e| self.err("checkpoint", e))
    }

    async fn release(&self, lease: &Lease) -> Result<(), FrontierError> {
        self.lease_op(&self.scripts.release, "release", lease.id, true)
            .await
    }

    async fn defer_host(&self, host: &str, delay: Duration) -> Result<(), FrontierError> {
        let shard = &self.shards[self.shard_of_host(host)];
        let mut inv = self.invocation(shard, &self.scripts.defer, false);
        inv.arg(host).arg(micros(delay));
        inv.invoke_async::<i64>(&mut shard.con.clone())
            .await
            .map_err(|e| self.shard_err(shard, "defer_host", e))?;
        Ok(())
    }

    async fn wait_ready(&self, timeout: Duration) {
        let notified = self.wakeup.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Something was announced since the last look at the queues.
        let generation = self.wakeup.generation.load(Ordering::SeqCst);
        if self.looked_at.swap(generation, Ordering::SeqCst) != generation {
            return;
        }
        // Sleep no longer than until a host is due or a lease expires. While
        // Redis is away the query fails (after reconnect attempts, bounded
        // by `timeout`) and this sleeps the whole timeout: no spinning.
        let mut until = tokio::time::Instant::now() + timeout;
        if let Ok(Ok(Some(due))) = tokio::time::timeout(timeout, self.next_due()).await {
            until = until.min(tokio::time::Instant::now() + due);
        }
        let _ = tokio::time::timeout_at(until, notified).await;
    }

    async fn stats(&self) -> Result<FrontierStats, FrontierError> {
        let calls = self.shards.iter().map(|shard| async move {
            self.invocation(shard, &self.scripts.stats, false)
                .invoke_async::<Vec<u64>>(&mut shard.con.clone())
                .await
                .map_err(|e| self.shard_err(shard, "stats", e))
        });
        let mut total = FrontierStats::default();
        for r in join_all(calls).await {
            let s = r?;
            let at = |i: usize| s.get(i).copied().unwrap_or(0);
            total.queued += at(0);
            total.leased += at(1);
            total.seen += at(2);
            total.hosts += at(3);
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_metacharacters_escaped() {
        assert_eq!(glob_escape("trawl:{a*b}:"), "trawl:{a\\*b}:");
        assert_eq!(glob_escape("x?[y]\\"), "x\\?\\[y\\]\\\\");
    }

    #[test]
    fn worker_ids_differ() {
        let a = default_worker_id();
        assert_ne!(a, default_worker_id());
        assert!(a.contains(&std::process::id().to_string()));
    }

    #[test]
    fn tags_come_back_from_prefixes() {
        assert_eq!(tag_of("trawl:{crawl/3}:"), "crawl/3");
        assert_eq!(tag_of("trawl:{crawl}:"), "crawl");
    }
}
