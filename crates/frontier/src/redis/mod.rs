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
//! # Key layout
//!
//! Every key starts with `trawl:{NAME}:` where NAME is the crawl name. The
//! braces are a Redis Cluster hash tag: all keys of one crawl hash to one
//! slot, which multi-key scripts need. (The scripts build key names from that
//! prefix, passed as `KEYS[1]`; connect to the node owning the slot.)
//! Times are µs since the Unix epoch, server clock.
//!
//! | key (after `trawl:{NAME}:`) | type | contents |
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
//! | `lease` | HASH | lease id → JSON `{"h": host, "w": worker id, "r": request JSON, "t": start time, "f": 1 once fetched}` |
//! | `counters` | HASH | `pages`, `errors` ([`RedisFrontier::record_done`]), `reclaimed` (expired leases returned) |
//! | `spec` | STRING | the crawl's seeds and scope as JSON ([`RedisFrontier::set_spec`]) |
//! | `workers` | ZSET | worker id → last heartbeat time |
//! | `worker:<id>` | HASH | `started`, `seen` (heartbeat times), `pages`, `errors`, `checkpoint` (the last [`ack_batch`](Frontier::ack_batch) checkpoint), `live` (its figures for dashboards, JSON) |
//! | `wakeup` | pub/sub channel | `1` when a host becomes leasable or the crawl finishes |
//!
//! # Semantics
//!
//! - **Leasing** takes due hosts (next-allowed time passed, below the limit)
//!   least recently leased first, one request per host per round, and sets
//!   the host's next-allowed time to now + `host_delay`. As in the other
//!   frontiers, `host_limit` counts leases still fetching: `fetched` frees
//!   the host's slot while the lease stays outstanding until acked.
//! - **Checkpoints** ([`Frontier::ack_batch`]) are stored per worker id, in
//!   the same script as the acks; a worker restarted with the same
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

mod dupes;
mod scripts;

pub use dupes::RedisIndex;
mod status;
mod wakeup;

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError};
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use trawl_core::{Frontier, FrontierError, FrontierStats, Lease, Request};

pub use status::{CrawlStatus, WorkerStatus};

use scripts::Scripts;
use wakeup::Wakeup;

/// A connection attempt to Redis gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A command without an answer after this fails (scripts are short).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnect attempts per failed call before it reports the error.
const RECONNECT_RETRIES: usize = 2;
/// Requests per `push` script call: bounds how long one call blocks Redis.
const PUSH_CHUNK: usize = 1000;
/// Durations are capped here (≈ 30 years) so µs stay exact in Lua doubles.
const MAX_MICROS: u128 = 1 << 50;

/// How to reach the crawl and how to behave in it.
#[derive(Debug, Clone)]
pub struct RedisFrontierConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// The crawl name: every key is prefixed with `trawl:{NAME}:`. Must not
    /// contain `{` or `}`.
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
    /// `trawl:{NAME}:`
    prefix: String,
    con: ConnectionManager,
    scripts: Scripts,
    /// Lease ids this process holds (extended by heartbeats).
    held: Mutex<HashSet<u64>>,
    wakeup: Arc<Wakeup>,
    /// The wake-up generation when `lease` last looked at the queues.
    looked_at: AtomicU64,
    listener: JoinHandle<()>,
}

impl Drop for RedisFrontier {
    fn drop(&mut self) {
        self.listener.abort();
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

impl RedisFrontier {
    /// Connect, subscribe to the crawl's wake-up channel, and register this
    /// worker (one heartbeat). Fails if Redis is unreachable.
    pub async fn connect(cfg: RedisFrontierConfig) -> Result<RedisFrontier, FrontierError> {
        if cfg.crawl.is_empty() || cfg.crawl.contains(['{', '}']) {
            return Err(FrontierError::Storage(format!(
                "invalid crawl name {:?}: must be non-empty and without braces",
                cfg.crawl
            )));
        }
        if cfg.worker_id.is_empty() {
            return Err(FrontierError::Storage("empty worker id".to_string()));
        }
        let mut cfg = cfg;
        cfg.host_limit = cfg.host_limit.max(1);
        cfg.lease_timeout = cfg.lease_timeout.max(Duration::from_millis(1));
        let prefix = format!("trawl:{{{}}}:", cfg.crawl);
        let err = |op: &str, e: RedisError| {
            FrontierError::Storage(format!("redis {op} ({}): {e}", cfg.url))
        };
        let client = Client::open(cfg.url.as_str()).map_err(|e| err("url", e))?;
        let manager_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(Duration::from_secs(1));
        let con = ConnectionManager::new_with_config(client.clone(), manager_cfg)
            .await
            .map_err(|e| err("connect", e))?;
        let channel = format!("{prefix}wakeup");
        let first = wakeup::subscribe(&client, &channel)
            .await
            .map_err(|e| FrontierError::Storage(format!("redis subscribe {channel}: {e}")))?;
        let wakeup = Arc::new(Wakeup::default());
        let listener = wakeup::spawn(client, channel, first, wakeup.clone());
        let frontier = RedisFrontier {
            cfg,
            prefix,
            con,
            scripts: Scripts::new(),
            held: Mutex::new(HashSet::new()),
            wakeup,
            looked_at: AtomicU64::new(0),
            listener,
        };
        frontier.heartbeat().await?;
        Ok(frontier)
    }

    /// The configuration in force (limit and timeout clamped to ≥ 1).
    pub fn config(&self) -> &RedisFrontierConfig {
        &self.cfg
    }

    /// `trawl:{NAME}:`, the prefix of every key of this crawl.
    /// The id this process works under (its leases, heartbeats, worker
    /// hash).
    pub fn worker_id(&self) -> &str {
        &self.cfg.worker_id
    }

    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The crawl's duplicate index, shared by its workers (see
    /// `dupes.rs`).
    pub fn content_index(&self, distance: u32) -> dupes::RedisIndex {
        dupes::RedisIndex::new(self.con.clone(), self.prefix.clone(), distance)
    }

    fn err(&self, op: &str, e: RedisError) -> FrontierError {
        FrontierError::Storage(format!("redis {op} (crawl {}): {e}", self.cfg.crawl))
    }

    /// A script call with the standard `KEYS[1]` and `ARGV[1]`.
    fn invocation<'a>(&self, script: &'a ::redis::Script) -> ::redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.key(&self.prefix).arg(self.cfg.host_limit);
        inv
    }

    /// Delete every key of this crawl (and only this crawl), for `--fresh`.
    /// Uses `SCAN` with the escaped prefix pattern, never `KEYS` or
    /// `FLUSHDB`. Do not run it while other workers use the crawl.
    pub async fn reset(&self) -> Result<(), FrontierError> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut con = self.con.clone();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .map_err(|e| self.err("reset scan", e))?;
            if !keys.is_empty() {
                ::redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async::<()>(&mut con)
                    .await
                    .map_err(|e| self.err("reset unlink", e))?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.held.lock().clear();
        Ok(())
    }

    /// Extend the leases this process holds to now + `lease_timeout` and mark
    /// the worker alive. Leases already reclaimed are forgotten.
    pub async fn heartbeat(&self) -> Result<(), FrontierError> {
        let ids: Vec<u64> = self.held.lock().iter().copied().collect();
        let mut inv = self.invocation(&self.scripts.heartbeat);
        inv.arg(&self.cfg.worker_id)
            .arg(micros(self.cfg.lease_timeout))
            .arg(&ids);
        let gone: Vec<u64> = inv
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("heartbeat", e))?;
        if !gone.is_empty() {
            tracing::warn!(
                leases = gone.len(),
                "Leases expired before their heartbeat; other workers may fetch them again."
            );
            let mut held = self.held.lock();
            for id in gone {
                held.remove(&id);
            }
        }
        Ok(())
    }

    /// Heartbeat every `every` (use well under `lease_timeout`, e.g. a third)
    /// until the frontier is dropped. Failures are logged and retried.
    pub fn spawn_heartbeat(self: &Arc<Self>, every: Duration) -> JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
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
            .arg(format!("{}spec", self.prefix))
            .query_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("spec", e))
    }

    /// Store the crawl's spec (see [`RedisFrontier::spec`]).
    pub async fn set_spec(&self, spec: &[u8]) -> Result<(), FrontierError> {
        ::redis::cmd("SET")
            .arg(format!("{}spec", self.prefix))
            .arg(spec)
            .query_async::<()>(&mut self.con.clone())
            .await
            .map_err(|e| self.err("set spec", e))
    }

    /// Add to the crawl's and this worker's page and error counters.
    pub async fn record_done(&self, pages: u64, errors: u64) -> Result<(), FrontierError> {
        let counters = format!("{}counters", self.prefix);
        let worker = format!("{}worker:{}", self.prefix, self.cfg.worker_id);
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for key in [&counters, &worker] {
            pipe.cmd("HINCRBY")
                .arg(key)
                .arg("pages")
                .arg(pages)
                .ignore();
            pipe.cmd("HINCRBY")
                .arg(key)
                .arg("errors")
                .arg(errors)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.con.clone())
            .await
            .map_err(|e| self.err("record_done", e))
    }

    /// Publish this worker's live figures (a small JSON document, e.g.
    /// pages, requests in flight, busy parse workers) for dashboards:
    /// kept in its worker hash, field `live`.
    pub async fn publish_live(&self, json: &str) -> Result<(), FrontierError> {
        let worker = format!("{}worker:{}", self.prefix, self.cfg.worker_id);
        ::redis::cmd("HSET")
            .arg(&worker)
            .arg("live")
            .arg(json)
            .query_async::<()>(&mut self.con.clone())
            .await
            .map_err(|e| self.err("publish_live", e))
    }

    /// The live figures the given workers last published (`None` for a
    /// worker that published none), in the same order.
    pub async fn workers_live(&self, ids: &[String]) -> Result<Vec<Option<String>>, FrontierError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.cmd("HGET")
                .arg(format!("{}worker:{id}", self.prefix))
                .arg("live");
        }
        pipe.query_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("workers_live", e))
    }

    /// Queue sizes, counters and live workers, in one atomic snapshot.
    pub async fn status(&self) -> Result<CrawlStatus, FrontierError> {
        type Row = (String, u64, u64, u64, u64, u64);
        let mut inv = self.invocation(&self.scripts.status);
        inv.arg(micros(self.cfg.lease_timeout));
        let (s, workers): (Vec<u64>, Vec<Row>) = inv
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("status", e))?;
        let at = |i: usize| s.get(i).copied().unwrap_or(0);
        Ok(CrawlStatus {
            crawl: self.cfg.crawl.clone(),
            server_time_ms: at(0) / 1000,
            frontier: FrontierStats {
                queued: at(1),
                leased: at(2),
                seen: at(3),
                hosts: at(4),
            },
            ready_hosts: at(5),
            full_hosts: at(6),
            expired_leases: at(7),
            reclaimed: at(8),
            pages: at(9),
            errors: at(10),
            dead_workers: at(11),
            workers: workers
                .into_iter()
                .map(|(id, started, seen, pages, errors, leases)| WorkerStatus {
                    id,
                    started_ms: started / 1000,
                    last_seen_ms: seen / 1000,
                    pages,
                    errors,
                    leases,
                })
                .collect(),
        })
    }

    /// True when nothing is queued and no lease is outstanding, after
    /// returning expired leases to the queue.
    pub async fn is_finished(&self) -> Result<bool, FrontierError> {
        let done: i64 = self
            .invocation(&self.scripts.is_finished)
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("is_finished", e))?;
        Ok(done == 1)
    }

    /// Time until a ready host is due or a lease expires; `None` if neither.
    async fn next_due(&self) -> Result<Option<Duration>, FrontierError> {
        let us: i64 = self
            .invocation(&self.scripts.next_due)
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("next_due", e))?;
        Ok(u64::try_from(us).ok().map(Duration::from_micros))
    }

    /// Run a one-lease script (ack, release, fetched). `ends`: the lease is
    /// over for this process whatever the outcome; stop extending it.
    async fn lease_op(
        &self,
        script: &::redis::Script,
        op: &str,
        id: u64,
        ends: bool,
    ) -> Result<(), FrontierError> {
        if ends {
            self.held.lock().remove(&id);
        }
        let mut inv = self.invocation(script);
        inv.arg(id);
        let found: i64 = inv
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err(op, e))?;
        if found == 1 {
            Ok(())
        } else {
            Err(FrontierError::UnknownLease(id))
        }
    }
}

#[async_trait::async_trait]
impl Frontier for RedisFrontier {
    async fn push(&self, requests: Vec<Request>) -> Result<usize, FrontierError> {
        let mut added = 0;
        for chunk in requests.chunks(PUSH_CHUNK) {
            let mut inv = self.invocation(&self.scripts.push);
            for req in chunk {
                let json = serde_json::to_string(req).map_err(|e| {
                    FrontierError::Storage(format!("serialize request {}: {e}", req.url))
                })?;
                inv.arg(&req.fingerprint()[..])
                    .arg(req.host_key())
                    .arg(json);
            }
            let n: usize = inv
                .invoke_async(&mut self.con.clone())
                .await
                .map_err(|e| self.err("push", e))?;
            added += n;
        }
        Ok(added)
    }

    async fn lease(&self, max: usize) -> Result<Vec<Lease>, FrontierError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.looked_at.store(
            self.wakeup.generation.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        let mut inv = self.invocation(&self.scripts.lease);
        inv.arg(max)
            .arg(micros(self.cfg.host_delay))
            .arg(micros(self.cfg.lease_timeout))
            .arg(&self.cfg.worker_id);
        let rows: Vec<(u64, String, String)> = inv
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("lease", e))?;
        let mut out = Vec::with_capacity(rows.len());
        let mut poisoned = Vec::new();
        {
            let mut held = self.held.lock();
            for (id, host, json) in rows {
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

    async fn fetched(&self, lease: &Lease) -> Result<(), FrontierError> {
        self.lease_op(&self.scripts.fetched, "fetched", lease.id, false)
            .await
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
        {
            let mut held = self.held.lock();
            for lease in leases {
                held.remove(&lease.id);
            }
        }
        let mut inv = self.invocation(&self.scripts.ack_batch);
        inv.arg(&self.cfg.worker_id)
            .arg(if checkpoint.is_some() { "1" } else { "0" })
            .arg(checkpoint.as_deref().unwrap_or_default());
        for lease in leases {
            inv.arg(lease.id);
        }
        let unknown: Vec<u64> = inv
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("ack_batch", e))?;
        match unknown.first() {
            None => Ok(()),
            Some(&id) => Err(FrontierError::UnknownLease(id)),
        }
    }

    /// This worker id's checkpoint from its last `ack_batch`.
    async fn checkpoint(&self) -> Result<Option<Vec<u8>>, FrontierError> {
        let key = format!("{}worker:{}", self.prefix, self.cfg.worker_id);
        ::redis::cmd("HGET")
            .arg(key)
            .arg("checkpoint")
            .query_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("checkpoint", e))
    }

    async fn release(&self, lease: &Lease) -> Result<(), FrontierError> {
        self.lease_op(&self.scripts.release, "release", lease.id, true)
            .await
    }

    async fn defer_host(&self, host: &str, delay: Duration) -> Result<(), FrontierError> {
        let mut inv = self.invocation(&self.scripts.defer);
        inv.arg(host).arg(micros(delay));
        inv.invoke_async::<i64>(&mut self.con.clone())
            .await
            .map_err(|e| self.err("defer_host", e))?;
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
        let s: Vec<u64> = self
            .invocation(&self.scripts.stats)
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| self.err("stats", e))?;
        let at = |i: usize| s.get(i).copied().unwrap_or(0);
        Ok(FrontierStats {
            queued: at(0),
            leased: at(1),
            seen: at(2),
            hosts: at(3),
        })
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
}
