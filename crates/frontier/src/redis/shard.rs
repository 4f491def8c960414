//! One shard of a [`RedisFrontier`](super::RedisFrontier): the connection
//! that reaches it, its key prefix, and the `fetched` notices waiting to
//! ride on its next script call.

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use ::redis::{Cmd, RedisError, RedisFuture, Value};
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// A connection to a plain Redis (reconnecting) or to a Redis Cluster
/// (routing each command by its first key, following failovers).
#[derive(Clone)]
pub(super) enum Con {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Con::Single(c) => c.req_packed_command(cmd),
            Con::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a ::redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Con::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Con::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::Single(c) => c.get_db(),
            Con::Cluster(c) => c.get_db(),
        }
    }
}

impl Con {
    /// Run a key-less command on the server holding `key` (a cluster's
    /// master for its slot; the one server otherwise), e.g. `SCAN`.
    pub async fn on_node_of<T: ::redis::FromRedisValue>(
        &self,
        key: &str,
        cmd: Cmd,
    ) -> Result<T, RedisError> {
        match self.clone() {
            Con::Single(mut c) => cmd.query_async(&mut c).await,
            Con::Cluster(mut c) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::with_key(key, SlotAddr::Master),
                ));
                let value = c.route_command(cmd, route).await?;
                ::redis::from_redis_value(value).map_err(RedisError::from)
            }
        }
    }
}

/// One shard: everything of the hosts that hash to it.
pub(super) struct Shard {
    pub index: usize,
    /// `trawl:{TAG}:`.
    pub prefix: String,
    pub con: Con,
    /// Local ids of leases whose fetch ended, not yet told to the shard.
    pub fetched: Mutex<Vec<u64>>,
    /// Local ids of leases whose ack failed while the shard was away,
    /// retried with the next call that acks on this shard.
    pub unacked: Mutex<Vec<u64>>,
    /// After a failed call, leasing skips the shard until then (so one
    /// unreachable shard does not stall every lease call).
    down_until: Mutex<Option<Instant>>,
    /// The back-off of the last failure (doubles, up to `MAX_DOWN`).
    down_for: Mutex<Duration>,
    /// Replicas connected to the shard's master, and when that was asked
    /// (`wait=`: a push waits only for replicas that exist).
    replicas: Mutex<Option<(Instant, usize)>>,
}

/// How long a count of the master's replicas is trusted.
const REPLICAS_FRESH: Duration = Duration::from_secs(1);
const MIN_DOWN: Duration = Duration::from_millis(250);
const MAX_DOWN: Duration = Duration::from_secs(4);

impl Shard {
    /// Replicas connected to the shard's master now (`ROLE`, asked at most
    /// every [`REPLICAS_FRESH`]), and whether that is a change from the
    /// count asked before; `None` when the master cannot be asked.
    pub async fn connected_replicas(&self) -> Option<(usize, bool)> {
        let before = *self.replicas.lock();
        if let Some((at, n)) = before
            && at.elapsed() < REPLICAS_FRESH
        {
            return Some((n, false));
        }
        let role: Value = self
            .con
            .on_node_of(&self.prefix, ::redis::cmd("ROLE"))
            .await
            .ok()?;
        // ["master", offset, [[ip, port, offset], ...]]
        let n = match role {
            Value::Array(parts) => match parts.get(2) {
                Some(Value::Array(replicas)) => replicas.len(),
                _ => 0,
            },
            _ => 0,
        };
        *self.replicas.lock() = Some((Instant::now(), n));
        Some((n, before.is_none_or(|(_, was)| was != n)))
    }

    /// Ask for the count of replicas again at the next push (a `WAIT`
    /// fell short).
    pub fn recount_replicas(&self) {
        if let Some((at, _)) = self.replicas.lock().as_mut() {
            *at -= REPLICAS_FRESH;
        }
    }

    pub fn new(index: usize, tag: &str, con: Con) -> Shard {
        Shard {
            index,
            prefix: format!("trawl:{{{tag}}}:"),
            con,
            fetched: Mutex::new(Vec::new()),
            unacked: Mutex::new(Vec::new()),
            down_until: Mutex::new(None),
            down_for: Mutex::new(Duration::ZERO),
            replicas: Mutex::new(None),
        }
    }

    /// Whether a recent failure says to leave the shard alone for now.
    pub fn resting(&self) -> bool {
        self.down_until.lock().is_some_and(|t| Instant::now() < t)
    }

    /// A call failed: rest the shard for a while (longer each time).
    pub fn failed(&self) {
        let mut down_for = self.down_for.lock();
        *down_for = (*down_for * 2).clamp(MIN_DOWN, MAX_DOWN);
        *self.down_until.lock() = Some(Instant::now() + *down_for);
    }

    /// A call succeeded.
    pub fn answered(&self) {
        if self.down_until.lock().take().is_some() {
            *self.down_for.lock() = Duration::ZERO;
        }
    }

    /// The pending `fetched` notices, as the scripts' `ARGV[2]`; they are
    /// taken: a call that fails loses them, which costs only politeness
    /// slack (the host slot is freed at the ack instead).
    pub fn take_fetched(&self) -> String {
        let ids = std::mem::take(&mut *self.fetched.lock());
        let mut out = String::with_capacity(ids.len() * 8);
        for id in ids {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&id.to_string());
        }
        out
    }

    /// The shard's wake-up channel.
    pub fn channel(&self) -> String {
        format!("{}wakeup", self.prefix)
    }
}
