//! Crawl jobs: each runs on trawl's engine with the same settings type as
//! `trawl run`, in its own directory of the server's data directory:
//!
//! ```text
//! DATA/jobs/ID/job.json      the record (request, owner, state)
//! DATA/jobs/ID/items.jsonl   the items, streamed from there
//! DATA/jobs/ID/errors.jsonl  a spider's error records
//! DATA/jobs/ID/state/        the crawl state (embedded frontier) while it runs
//! ```
//!
//! A server stopped (or killed) while jobs run finds them at its next
//! start and resumes them where their last checkpoint left them: items
//! after it are cut and their pages fetched again, so each item is in the
//! stream once.

pub mod frontier;
pub mod items;
pub mod pg;
pub mod remote;
pub mod request;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use trawl_core::{CrawlStats, Frontier, Sink, Spider};
use trawl_engine::{Engine, Shutdown};
use trawl_fetch::guard::AddressGuard;
use trawl_frontier::{DiskStart, FrontierKind};
use trawl_sink::{ItemSchema, OutputContext, SinkSpec};

use crate::error::ApiError;
use crate::limits::Reservation;
use crate::webhook::Webhooks;
use items::ItemLog;
use request::{CrawlRequest, Prepared};
use store::{JobRecord, JobState};

/// The page limit of a job that sets none (Firecrawl's default too).
pub const DEFAULT_MAX_PAGES: u64 = 10_000;

/// How long a stopping server waits for its jobs to checkpoint.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The name of a job's item sink in its checkpoints.
const ITEMS_SINK: &str = "job-items";

/// What every job of a server shares.
#[derive(Clone)]
pub struct JobContext {
    /// What `/metrics` and the dashboard show: each running job's stats.
    pub board: Arc<trawl_metrics::Board>,
    /// The server's address guard.
    pub guard: Option<Arc<AddressGuard>>,
    /// robots.txt holds for every job unless the server ignores it.
    pub obey_robots: bool,
    /// The server's settings, below each job's.
    pub settings: Vec<trawl_settings::Layer>,
    /// Jobs are distributed crawls on this Redis (`trawl serve --redis`).
    pub redis: Option<String>,
}

/// One crawl job.
pub struct Job {
    pub id: String,
    /// The key that made it: no other key sees it.
    pub owner: String,
    dir: PathBuf,
    record: parking_lot::Mutex<JobRecord>,
    pub log: Arc<ItemLog>,
    /// This run of it (a resumed job starts a new one).
    started: Instant,
    stats: Arc<CrawlStats>,
    shutdown: Shutdown,
    /// Stopped by its owner (not by the server stopping).
    cancelled: AtomicBool,
    /// No more items will come in this process (ended, or the server
    /// stops).
    over: AtomicBool,
    /// Pages of the key's quota held for it.
    reservation: parking_lot::Mutex<Option<Reservation>>,
    /// Where its record is kept, when not in its directory.
    store: Option<Arc<pg::PgStore>>,
}

impl Job {
    pub fn state(&self) -> JobState {
        self.record.lock().state
    }

    /// Whether every item this process will show of it is shown.
    pub fn is_over(&self) -> bool {
        self.over.load(Ordering::SeqCst)
    }

    fn end(&self) {
        self.over.store(true, Ordering::SeqCst);
        self.log.publish_all();
    }

    /// What the API shows of it (never its settings: they may hold
    /// proxy passwords).
    pub fn describe(&self) -> JobView {
        let r = self.record.lock().clone();
        let s = self.stats.snapshot(self.started.elapsed());
        JobView {
            id: self.id.clone(),
            state: r.state,
            error: r.error,
            seeds: r.request.seeds,
            spider: r.request.spider.is_some(),
            items: self.log.visible() as u64,
            created: r.created,
            finished: r.finished,
            webhook: r.webhook,
            stats: JobStats {
                pages: s.pages,
                pages_ok: s.pages_ok,
                errors: s.errors,
                requests: s.requests,
                in_flight: s.in_flight,
                queued: s.queued,
                elapsed_ms: self.started.elapsed().as_millis() as u64,
            },
        }
    }

    async fn save(&self) {
        let record = self.record.lock().clone();
        if let Err(error) = save_record(self.store.as_deref(), &record, &self.dir).await {
            tracing::error!(%error, job = %self.id, "Could not save a job's record.");
        }
    }

    /// Stop it at its owner's request; what was written stays.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.shutdown.trigger();
    }
}

/// A crawl job as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: String,
    pub state: JobState,
    /// Why it failed.
    pub error: Option<String>,
    /// The seeds it was given (none: its spider's start URLs).
    pub seeds: Vec<String>,
    /// Whether it runs a spider file.
    pub spider: bool,
    /// Items in its stream so far.
    pub items: u64,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub finished: Option<u64>,
    /// What became of its webhook (`delivered: 200`, `failed: …`).
    pub webhook: Option<String>,
    /// This process's run of it (a resumed job counts afresh).
    pub stats: JobStats,
}

/// Live counts of a job's crawl.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct JobStats {
    pub pages: u64,
    pub pages_ok: u64,
    pub errors: u64,
    pub requests: u64,
    pub in_flight: u64,
    pub queued: u64,
    pub elapsed_ms: u64,
}

/// The jobs of a server.
pub struct Jobs {
    dir: PathBuf,
    /// A data directory of this process alone (none was given).
    _temp: Option<tempfile::TempDir>,
    ctx: JobContext,
    jobs: parking_lot::Mutex<BTreeMap<String, Arc<Job>>>,
    tasks: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stopping: AtomicBool,
    webhooks: Webhooks,
    /// Records and items in PostgreSQL (`trawl serve --store`).
    store: Option<Arc<pg::PgStore>>,
}

impl Jobs {
    /// The jobs kept in `data` (none: in a directory removed when the
    /// server ends), their records and items in `store` if given.
    pub async fn open(
        data: Option<&Path>,
        store: Option<&str>,
        ctx: JobContext,
    ) -> std::io::Result<Jobs> {
        let store = match store {
            None => None,
            Some(url) => Some(Arc::new(
                pg::PgStore::connect(url)
                    .await
                    .map_err(std::io::Error::other)?,
            )),
        };
        let (root, temp) = match data {
            Some(dir) => (dir.to_path_buf(), None),
            None => {
                let temp = tempfile::Builder::new().prefix("trawl-serve-").tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let dir = root.join("jobs");
        std::fs::create_dir_all(&dir)?;
        let webhooks = Webhooks::open(&root, ctx.guard.clone())?;
        Ok(Jobs {
            dir,
            _temp: temp,
            ctx,
            jobs: Default::default(),
            tasks: Default::default(),
            stopping: AtomicBool::new(false),
            webhooks,
            store,
        })
    }

    /// The item log of job `id`, cut back to `position`.
    async fn open_log(
        &self,
        id: &str,
        dir: &Path,
        position: Option<u64>,
    ) -> std::io::Result<Arc<ItemLog>> {
        match &self.store {
            None => ItemLog::open(dir, position),
            Some(store) => ItemLog::open_pg(store.clone(), id, position)
                .await
                .map_err(std::io::Error::other),
        }
    }

    /// Every job's record with its directory.
    async fn records(&self) -> std::io::Result<Vec<(JobRecord, PathBuf)>> {
        if let Some(store) = &self.store {
            let records = store.load().await.map_err(std::io::Error::other)?;
            return Ok(records
                .into_iter()
                .map(|r| {
                    let dir = self.dir.join(&r.id);
                    (r, dir)
                })
                .collect());
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(store::RECORD_FILE).is_file())
            .collect();
        dirs.sort();
        let mut records = Vec::new();
        for dir in dirs {
            match JobRecord::load(&dir) {
                Ok(r) => records.push((r, dir)),
                Err(error) => {
                    tracing::error!(%error, dir = %dir.display(), "Skipping an unreadable job record.");
                }
            }
        }
        Ok(records)
    }

    /// Load every job of the data directory; resume those that were
    /// running.
    pub async fn load(self: &Arc<Self>) -> std::io::Result<()> {
        for (record, dir) in self.records().await? {
            std::fs::create_dir_all(&dir)?;
            if record.state != JobState::Running {
                let log = self.open_log(&record.id, &dir, None).await?;
                let job = self.job(record, dir, log);
                self.jobs.lock().insert(job.id.clone(), job);
                continue;
            }
            let id = record.id.clone();
            match request::prepare(&self.ctx.settings, &record.request) {
                Ok(prepared) => {
                    if let Err(e) = self.launch(record, dir, prepared, None).await {
                        tracing::error!(job = %id, error = %e.message, "Could not resume a job.");
                    } else {
                        tracing::info!(job = %id, "Resumed a crawl job.");
                    }
                }
                Err(e) => {
                    let mut record = record;
                    record.state = JobState::Failed;
                    record.error = Some(format!("could not resume: {}", e.message));
                    let _ = save_record(self.store.as_deref(), &record, &dir).await;
                    let log = self.open_log(&record.id, &dir, None).await?;
                    let job = self.job(record, dir, log);
                    self.jobs.lock().insert(job.id.clone(), job);
                }
            }
        }
        Ok(())
    }

    fn job(&self, record: JobRecord, dir: PathBuf, log: Arc<ItemLog>) -> Arc<Job> {
        let record_over = record.state != JobState::Running;
        Arc::new(Job {
            id: record.id.clone(),
            owner: record.owner.clone(),
            dir,
            record: parking_lot::Mutex::new(record),
            log,
            started: Instant::now(),
            stats: Arc::new(CrawlStats::default()),
            shutdown: Shutdown::default(),
            cancelled: AtomicBool::new(false),
            over: AtomicBool::new(record_over),
            reservation: parking_lot::Mutex::new(None),
            store: self.store.clone(),
        })
    }

    /// Start a job for `owner`; `reserve` holds pages of the key's quota
    /// for it, given the job's page limit.
    pub async fn create(
        self: &Arc<Self>,
        owner: &str,
        request: CrawlRequest,
        reserve: impl FnOnce(u64) -> Result<Option<Reservation>, ApiError>,
    ) -> Result<Arc<Job>, ApiError> {
        let prepared = request::prepare(&self.ctx.settings, &request)?;
        if let Some(guard) = &self.ctx.guard {
            for (i, seed) in prepared.seeds.iter().enumerate() {
                if let Some(why) = guard.refuses_url(seed) {
                    return Err(ApiError::new(422, "target_refused", why).at(
                        if request.seeds.is_empty() {
                            "/spider".to_string()
                        } else {
                            format!("/seeds/{i}")
                        },
                    ));
                }
            }
            if let Some(hook) = &prepared.webhook
                && let Some(why) = guard.refuses_url(hook)
            {
                return Err(ApiError::new(422, "target_refused", why).at("/webhook"));
            }
        }
        let reservation = reserve(prepared.max_pages())?;
        let id = new_id();
        let dir = self.dir.join(&id);
        let internal = |e: std::io::Error| ApiError::new(500, "internal", e.to_string());
        std::fs::create_dir_all(&dir).map_err(internal)?;
        let record = JobRecord {
            id,
            owner: owner.to_string(),
            created: store::now(),
            finished: None,
            state: JobState::Running,
            error: None,
            request,
            items: 0,
            webhook: None,
        };
        save_record(self.store.as_deref(), &record, &dir)
            .await
            .map_err(internal)?;
        let kept = record.clone();
        match self
            .launch(record, dir.clone(), prepared, reservation)
            .await
        {
            Ok(job) => Ok(job),
            Err(error) => {
                // Not left `running` to be resumed at the next start: the
                // job failed, and says why.
                let mut failed = kept;
                failed.state = JobState::Failed;
                failed.error = Some(error.message.clone());
                failed.finished = Some(store::now());
                if let Err(e) = save_record(self.store.as_deref(), &failed, &dir).await {
                    tracing::error!(error = %e, job = %failed.id, "Could not save a job's record.");
                }
                if let Ok(log) = self.open_log(&failed.id, &dir, None).await {
                    let job = self.job(failed, dir, log);
                    self.jobs.lock().insert(job.id.clone(), job);
                }
                Err(error)
            }
        }
    }

    /// Open the job's crawl (fresh or resumed) and run it.
    async fn launch(
        self: &Arc<Self>,
        record: JobRecord,
        dir: PathBuf,
        prepared: Prepared,
        reservation: Option<Reservation>,
    ) -> Result<Arc<Job>, ApiError> {
        let internal = |e: String| ApiError::new(500, "internal", e);
        let mut plan = prepared.plan(self.ctx.guard.clone(), self.ctx.obey_robots)?;
        plan.crawl.max_pages = Some(prepared.max_pages());
        if let Some(r) = &reservation {
            plan.crawl.max_pages = Some(plan.crawl.max_pages.map_or(r.pages, |m| m.min(r.pages)));
        }
        let id = record.id.clone();
        let mut redis_parts = None;
        let (job, frontier, sink, checkpoint): (Arc<Job>, Arc<dyn Frontier>, Box<dyn Sink>, _) =
            match &self.ctx.redis {
                None => {
                    plan.frontier.kind = FrontierKind::Disk {
                        dir: dir.join("state"),
                    };
                    let opened = plan
                        .frontier
                        .open_local(DiskStart::Continue)
                        .await
                        .map_err(|e| internal(e.to_string()))?;
                    let done = opened
                        .done_before()
                        .await
                        .map_err(|e| internal(e.to_string()))?;
                    if let Some(max) = plan.crawl.max_pages {
                        plan.crawl.max_pages = Some(max.saturating_sub(done));
                    }
                    // Items after the last checkpoint are cut: their pages
                    // come again.
                    let position = opened
                        .checkpoint
                        .as_deref()
                        .and_then(|c| trawl_core::checkpoint::position_in(c, ITEMS_SINK))
                        .unwrap_or(0);
                    let log = self
                        .open_log(&id, &dir, Some(position))
                        .await
                        .map_err(|e| internal(e.to_string()))?;
                    let sink = log.sink().map_err(|e| internal(e.to_string()))?;
                    let job = self.job(record, dir.clone(), log.clone());
                    let frontier = Arc::new(frontier::JobFrontier {
                        inner: opened.frontier,
                        log,
                        sink: ITEMS_SINK.to_string(),
                    });
                    (job, frontier, Box::new(sink), opened.checkpoint)
                }
                Some(url) => {
                    let lease_timeout = prepared.effective.settings.lease_timeout;
                    plan.frontier.kind = FrontierKind::Redis {
                        url: url.clone(),
                        crawl: remote::crawl_name(&id),
                        worker_id: None,
                        lease_timeout,
                        seen: Default::default(),
                    };
                    let redis_error = |e: String| ApiError::new(503, "redis_unavailable", e);
                    let frontier = plan
                        .frontier
                        .connect_redis()
                        .await
                        .map_err(|e| redis_error(e.to_string()))?;
                    let guard = self.ctx.guard.as_deref().cloned().unwrap_or_default();
                    let spec = remote::JobSpec {
                        request: record.request.clone(),
                        allow: guard.allow,
                        allow_private: guard.allow_private,
                        hosts: guard.hosts,
                        obey_robots: self.ctx.obey_robots,
                    };
                    let spec = serde_json::to_vec(&spec).map_err(|e| internal(e.to_string()))?;
                    frontier
                        .set_spec(&spec)
                        .await
                        .map_err(|e| redis_error(e.to_string()))?;
                    let mut con = remote::connect(url)
                        .await
                        .map_err(|e| redis_error(e.to_string()))?;
                    redis::AsyncCommands::sadd::<_, _, ()>(&mut con, remote::JOBS_SET, &id)
                        .await
                        .map_err(|e| redis_error(e.to_string()))?;
                    let pos = remote::StreamPos::load(&dir);
                    let log = self
                        .open_log(&id, &dir, Some(pos.position))
                        .await
                        .map_err(|e| internal(e.to_string()))?;
                    let consumer_sink = log.sink().map_err(|e| internal(e.to_string()))?;
                    let job = self.job(record, dir.clone(), log);
                    let heartbeat = frontier.spawn_heartbeat(lease_timeout / 3);
                    let over = Arc::new(AtomicBool::new(false));
                    // The stream's reader blocks: a connection of its own.
                    let reader = remote::connect(url)
                        .await
                        .map_err(|e| redis_error(e.to_string()))?;
                    let consumer = tokio::spawn(remote::consume(
                        reader,
                        id.clone(),
                        dir.clone(),
                        consumer_sink,
                        pos,
                        over.clone(),
                        job.shutdown.clone(),
                    ));
                    redis_parts = Some((con.clone(), frontier.clone(), heartbeat, over, consumer));
                    let sink = remote::StreamSink::new(con, &id);
                    (job, frontier as Arc<dyn Frontier>, Box::new(sink), None)
                }
            };
        *job.reservation.lock() = reservation;
        let errors = match &prepared.spider {
            None => Vec::new(),
            Some(spider) => {
                let schemas: Vec<ItemSchema> = spider
                    .item_schemas()
                    .into_iter()
                    .map(|(item_type, fields)| ItemSchema { item_type, fields })
                    .collect();
                let ctx = OutputContext {
                    checkpoint: checkpoint.as_deref(),
                    append: redis_parts.is_some(),
                    spider_name: Some(spider.name()),
                    schemas: &schemas,
                };
                vec![
                    trawl_sink::open::open(&SinkSpec::jsonl(dir.join("errors.jsonl")), &ctx, false)
                        .await
                        .map_err(|e| internal(e.to_string()))?,
                ]
            }
        };
        let engine = engine(
            Engine::new(plan.crawl.clone(), job.stats.clone()),
            prepared.spider,
            errors,
        );
        self.jobs.lock().insert(job.id.clone(), job.clone());
        self.ctx.board.add(&job.id, job.stats.clone());
        let jobs = self.clone();
        let running = job.clone();
        let webhook = prepared.webhook;
        let task = tokio::spawn(async move {
            let sinks: Vec<Box<dyn Sink>> = vec![sink];
            let result = engine.run(frontier, sinks, running.shutdown.clone()).await;
            jobs.ctx.board.retire(&running.id);
            if let Some(r) = running.reservation.lock().take() {
                r.settle(running.stats.snapshot(Duration::ZERO).pages);
            }
            let stopping =
                jobs.stopping.load(Ordering::SeqCst) && !running.cancelled.load(Ordering::SeqCst);
            if let Some((mut con, frontier, heartbeat, over, consumer)) = redis_parts {
                heartbeat.abort();
                if !stopping {
                    // Workers leave the job; what they wrote is read to
                    // the end of the stream.
                    let _ = redis::AsyncCommands::srem::<_, _, ()>(
                        &mut con,
                        remote::JOBS_SET,
                        &running.id,
                    )
                    .await;
                }
                over.store(true, Ordering::SeqCst);
                let _ = consumer.await;
                if !stopping {
                    let _ = frontier.delete().await;
                    let _ = redis::AsyncCommands::del::<_, ()>(
                        &mut con,
                        remote::stream_key(&running.id),
                    )
                    .await;
                }
            }
            if stopping {
                // The server stops: the job stays running, to resume.
                running.end();
                return;
            }
            let (state, error) = match result {
                Ok(report) if !report.sink_errors.is_empty() => {
                    (JobState::Failed, Some(report.sink_errors.join("; ")))
                }
                Ok(_) if running.cancelled.load(Ordering::SeqCst) => (JobState::Cancelled, None),
                Ok(_) => (JobState::Done, None),
                Err(e) => (JobState::Failed, Some(e.to_string())),
            };
            {
                let mut r = running.record.lock();
                r.state = state;
                r.error = error;
                r.finished = Some(store::now());
                r.items = running.log.written() as u64;
            }
            running.save().await;
            running.end();
            // The crawl state is of no use once the job is over.
            let _ = std::fs::remove_dir_all(running.dir.join("state"));
            if let Some(url) = webhook {
                let metadata = running
                    .record
                    .lock()
                    .request
                    .webhook
                    .as_ref()
                    .map(|w| w.metadata())
                    .unwrap_or(Value::Null);
                let outcome = jobs
                    .webhooks
                    .deliver(&url, state, &running.describe(), metadata)
                    .await;
                running.record.lock().webhook = Some(outcome);
                running.save().await;
            }
        });
        self.tasks.lock().push(task);
        Ok(job)
    }

    /// The job `id` of `owner`; another key's job is as absent as an
    /// unknown one.
    pub fn find(&self, owner: &str, id: &str) -> Result<Arc<Job>, ApiError> {
        self.jobs
            .lock()
            .get(id)
            .filter(|job| job.owner == owner)
            .cloned()
            .ok_or_else(|| ApiError::new(404, "not_found", format!("no crawl job {id}")))
    }

    /// The jobs of `owner`, oldest first.
    pub fn of(&self, owner: &str) -> Vec<Arc<Job>> {
        let mut jobs: Vec<Arc<Job>> = self
            .jobs
            .lock()
            .values()
            .filter(|j| j.owner == owner)
            .cloned()
            .collect();
        jobs.sort_by_key(|j| (j.record.lock().created, j.id.clone()));
        jobs
    }

    /// Running jobs of `owner`.
    pub fn running(&self, owner: &str) -> usize {
        self.jobs
            .lock()
            .values()
            .filter(|j| j.owner == owner && j.state() == JobState::Running)
            .count()
    }

    /// Stop every job for a server stop: each checkpoints and stays
    /// `running`, to resume at the next start.
    /// Every job's state, counted (each state listed, zeros included).
    pub fn count_by_state(&self) -> Vec<(String, i64)> {
        let jobs = self.jobs.lock();
        [
            JobState::Running,
            JobState::Done,
            JobState::Failed,
            JobState::Cancelled,
        ]
        .into_iter()
        .map(|state| {
            let n = jobs.values().filter(|j| j.state() == state).count();
            (state.as_str().to_string(), n as i64)
        })
        .collect()
    }

    /// The dashboard's job table: running jobs first, then the latest
    /// ended ones (at most 50 rows).
    pub fn dashboard_rows(&self) -> Vec<Value> {
        let jobs: Vec<Arc<Job>> = self.jobs.lock().values().cloned().collect();
        let mut views: Vec<JobView> = jobs.iter().map(|j| j.describe()).collect();
        views.sort_by_key(|v| (v.state != JobState::Running, std::cmp::Reverse(v.created)));
        views.truncate(50);
        views
            .into_iter()
            .map(|v| {
                serde_json::json!({
                    "id": v.id,
                    "state": v.state.as_str(),
                    "pages": v.stats.pages,
                    "items": v.items,
                    "errors": v.stats.errors,
                })
            })
            .collect()
    }

    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for job in self.jobs.lock().values() {
            job.shutdown.trigger();
        }
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(STOP_GRACE, all).await.is_err() {
            tracing::warn!(
                "Crawl jobs did not stop in time; they resume from their last checkpoint."
            );
        }
    }
}

/// Keep `record`: in `store`, else in `dir/job.json`.
async fn save_record(
    store: Option<&pg::PgStore>,
    record: &JobRecord,
    dir: &Path,
) -> Result<(), std::io::Error> {
    match store {
        Some(store) => store.save(record).await.map_err(std::io::Error::other),
        None => record.save(dir),
    }
}

/// `engine` with the job's spider (and its pipeline), if it has one.
pub(crate) fn engine(
    engine: Engine,
    spider: Option<trawl_spider::DeclarativeSpider>,
    errors: Vec<Box<dyn Sink>>,
) -> Engine {
    let Some(spider) = spider else {
        return engine;
    };
    let pipeline = Arc::new(spider.pipeline());
    let spider: Arc<dyn Spider> = Arc::new(spider);
    engine.with_spider(spider, errors).with_pipeline(pipeline)
}

/// A job id: 16 random hex digits.
fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
