//! Crawl jobs on `trawl worker`s: a server started with `--redis URL`
//! makes each job a distributed crawl on that Redis.
//!
//! - The job's frontier is the Redis crawl `api-ID`; its spec (the job's
//!   request and the server's address guard and robots policy) is stored
//!   with it, and the job's id goes into the set `trawl:api:jobs`.
//! - The server works on it like any worker; `trawl worker --redis URL
//!   --api` joins every job in the set (each with its own engine) and
//!   leaves a job when it leaves the set (done or cancelled).
//! - Every worker, the server included, writes items to the Redis stream
//!   `trawl:api:ID:items` before acknowledging their pages; the server
//!   appends the stream to the job's item log and keeps its place
//!   (`stream.pos`: the last entry and the log's position, written after
//!   the items), so a restarted server continues where it was. A worker
//!   killed between writing a page's items and acknowledging the page
//!   makes that page be fetched again: its items can then be in the
//!   stream twice (at least once, as for any sink of a distributed
//!   crawl).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use trawl_core::{CrawlStats, Frontier, Item, Sink, SinkError};
use trawl_engine::{Engine, Shutdown};
use trawl_fetch::guard::AddressGuard;
use trawl_frontier::FrontierKind;
use trawl_settings::Layer;

use super::items::JobSink;
use super::request::{self, CrawlRequest};

/// The set of the ids of running distributed jobs.
pub const JOBS_SET: &str = "trawl:api:jobs";

/// The Redis crawl of job `id`.
pub fn crawl_name(id: &str) -> String {
    format!("api-{id}")
}

/// The item stream of job `id`.
pub fn stream_key(id: &str) -> String {
    format!("trawl:api:{id}:items")
}

/// What every worker of a job must apply: the request, and the server's
/// guard and robots policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub request: CrawlRequest,
    pub allow: Vec<std::net::IpAddr>,
    pub allow_private: bool,
    pub hosts: Vec<String>,
    pub obey_robots: bool,
}

impl JobSpec {
    pub fn guard(&self) -> AddressGuard {
        AddressGuard {
            allow: self.allow.clone(),
            allow_private: self.allow_private,
            hosts: self.hosts.clone(),
        }
    }
}

/// A connection to `url`. Answers may take up to 10 s (a loaded Redis,
/// a loaded machine) before a call fails; a blocking read gets a
/// connection of its own (see [`consume`]), since every call on one
/// connection waits behind it.
pub async fn connect(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(10)));
    ConnectionManager::new_with_config(client, config).await
}

/// Items to the job's stream, one entry per item (field `item`).
pub struct StreamSink {
    con: ConnectionManager,
    key: String,
}

impl StreamSink {
    pub fn new(con: ConnectionManager, id: &str) -> StreamSink {
        StreamSink {
            con,
            key: stream_key(id),
        }
    }
}

#[async_trait::async_trait]
impl Sink for StreamSink {
    fn name(&self) -> String {
        format!("redis-stream:{}", self.key)
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for item in items {
            let line =
                serde_json::to_string(&item.0).map_err(|e| SinkError::Encode(e.to_string()))?;
            pipe.xadd(&self.key, "*", &[("item", line)]).ignore();
        }
        pipe.query_async::<()>(&mut self.con)
            .await
            .map_err(|e| SinkError::Other(format!("writing {}: {e}", self.key)))
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Where the server is in a job's stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamPos {
    /// The last entry appended (`0`: none yet).
    pub id: String,
    /// The item log's position after it (bytes of the file, or items in
    /// PostgreSQL).
    pub position: u64,
}

const POS_FILE: &str = "stream.pos";

impl StreamPos {
    pub fn load(dir: &Path) -> StreamPos {
        std::fs::read(dir.join(POS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| StreamPos {
                id: "0".into(),
                position: 0,
            })
    }

    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{POS_FILE}.tmp"));
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, dir.join(POS_FILE))
    }
}

/// Append the job's stream to its item log until `over` says the crawl
/// is over and the stream has nothing more (or `stop` fires). `con` is
/// this reader's own connection: its reads block.
pub async fn consume(
    mut con: ConnectionManager,
    id: String,
    dir: PathBuf,
    mut sink: JobSink,
    mut pos: StreamPos,
    over: Arc<std::sync::atomic::AtomicBool>,
    stop: Shutdown,
) {
    let key = stream_key(&id);
    loop {
        let over_now = over.load(std::sync::atomic::Ordering::SeqCst);
        let opts = redis::streams::StreamReadOptions::default()
            .count(1000)
            .block(if over_now { 1 } else { 250 });
        let read: Result<redis::streams::StreamReadReply, _> =
            con.xread_options(&[&key], &[&pos.id], &opts).await;
        let entries = match read {
            Ok(reply) => reply
                .keys
                .into_iter()
                .flat_map(|k| k.ids)
                .collect::<Vec<_>>(),
            Err(error) => {
                tracing::warn!(%error, job = %id, "Reading a job's item stream failed; retrying.");
                tokio::time::sleep(Duration::from_millis(500)).await;
                Vec::new()
            }
        };
        if entries.is_empty() {
            if over_now || stop.is_triggered() {
                return;
            }
            continue;
        }
        let mut lines = Vec::new();
        let mut last = pos.id.clone();
        for entry in &entries {
            if let Some(redis::Value::BulkString(item)) = entry.map.get("item") {
                lines.extend_from_slice(item);
                lines.push(b'\n');
            }
            last = entry.id.clone();
        }
        match sink.append(lines).await {
            Ok(position) => {
                sink.publish_all();
                pos = StreamPos { id: last, position };
                if let Err(error) = pos.save(&dir) {
                    tracing::error!(%error, job = %id, "Could not save a job's stream position.");
                }
            }
            Err(error) => {
                tracing::error!(%error, job = %id, "Could not append a job's items; retrying.");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// `trawl worker --redis URL --api`: work on every distributed job of
/// the servers using this Redis, each with its own engine, until
/// `shutdown`. `base` are the worker's own settings (its flags), below
/// each job's. Returns the pages this worker fetched.
pub async fn work(
    url: &str,
    base: Vec<Layer>,
    stats: Arc<CrawlStats>,
    shutdown: Shutdown,
) -> Result<(), String> {
    let mut con = connect(url).await.map_err(|e| format!("{url}: {e}"))?;
    let mut running: HashMap<String, (Shutdown, tokio::task::JoinHandle<()>)> = HashMap::new();
    loop {
        let ids: Vec<String> = con.smembers(JOBS_SET).await.unwrap_or_default();
        for id in &ids {
            if running.contains_key(id) {
                continue;
            }
            let stop = Shutdown::default();
            let task = tokio::spawn(work_on(
                url.to_string(),
                con.clone(),
                id.clone(),
                base.clone(),
                stats.clone(),
                stop.clone(),
            ));
            running.insert(id.clone(), (stop, task));
        }
        running.retain(|id, (stop, task)| {
            if !ids.contains(id) {
                stop.trigger();
            }
            !task.is_finished()
        });
        if shutdown.is_triggered() {
            for (stop, _) in running.values() {
                stop.trigger();
            }
            for (_, (_, task)) in running.drain() {
                let _ = task.await;
            }
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.wait() => {}
        }
    }
}

/// One job on this worker, until its crawl is over or `stop`.
async fn work_on(
    url: String,
    con: ConnectionManager,
    id: String,
    base: Vec<Layer>,
    stats: Arc<CrawlStats>,
    stop: Shutdown,
) {
    let result = async {
        let probe = trawl_frontier::FrontierSpec {
            kind: FrontierKind::Redis {
                url: url.clone(),
                crawl: crawl_name(&id),
                worker_id: None,
                lease_timeout: Duration::from_secs(30),
                seen: Default::default(),
            },
            host_limit: 1,
            host_delay: Duration::ZERO,
            near_distance: 3,
        };
        let spec = probe
            .connect_redis()
            .await
            .map_err(|e| e.to_string())?
            .spec()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the job has no spec")?;
        let spec: JobSpec = serde_json::from_slice(&spec).map_err(|e| e.to_string())?;
        let prepared = request::prepare(&base, &spec.request).map_err(|e| e.message)?;
        let mut plan = prepared
            .plan(Some(Arc::new(spec.guard())), spec.obey_robots)
            .map_err(|e| e.message)?;
        plan.crawl.push_seeds = false;
        plan.crawl.max_pages = None;
        let lease_timeout = prepared.effective.settings.lease_timeout;
        plan.frontier.kind = FrontierKind::Redis {
            url,
            crawl: crawl_name(&id),
            worker_id: None,
            lease_timeout,
            seen: Default::default(),
        };
        let frontier = plan
            .frontier
            .connect_redis()
            .await
            .map_err(|e| e.to_string())?;
        let heartbeat = frontier.spawn_heartbeat(lease_timeout / 3);
        let engine = super::engine(Engine::new(plan.crawl, stats), prepared.spider, Vec::new());
        let sinks: Vec<Box<dyn Sink>> = vec![Box::new(StreamSink::new(con, &id))];
        let frontier: Arc<dyn Frontier> = frontier;
        let result = engine.run(frontier, sinks, stop).await;
        heartbeat.abort();
        result.map(|_| ()).map_err(|e| e.to_string())
    }
    .await;
    if let Err(error) = result {
        tracing::warn!(job = %id, %error, "A distributed job could not be worked on.");
    }
}
