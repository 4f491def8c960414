//! Crawl jobs: `POST /v1/crawls` starts one on trawl's engine with the
//! same settings as `trawl crawl` (the job's `settings` object is a
//! settings layer, checked with JSON pointers), `GET /v1/crawls/{id}`
//! reports its state and live stats, `GET /v1/crawls/{id}/items` streams
//! its items as NDJSON as they are written (`?after=N` skips the first
//! N; the stream ends with the job), `DELETE /v1/crawls/{id}` stops it,
//! `GET /v1/crawls` lists the jobs.
//!
//! ```json
//! {"seeds": ["https://docs.example/"],
//!  "settings": {"max_pages": 500, "per_host": 4, "download_delay": "250ms"}}
//! ```
//!
//! Jobs live in this process (a restart loses them) and crawl on a memory
//! frontier; their items are kept in memory for the stream, so a job
//! without `max_pages` stops at [`DEFAULT_MAX_PAGES`]. The server's
//! address guard holds for every job, and so does robots.txt unless the
//! server was started with `--ignore-robots`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use trawl_core::{CrawlStats, Item, Sink, SinkError, Url};
use trawl_engine::{Engine, Shutdown};
use trawl_settings::{Effective, Layer, SpiderParts};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// The page limit of a job that sets none (its items are held in memory
/// for the stream).
pub const DEFAULT_MAX_PAGES: u64 = 10_000;

/// Lines sent in one chunk of the item stream.
const CHUNK_LINES: usize = 1000;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Done,
    Cancelled,
    Failed,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Cancelled => "cancelled",
            JobState::Failed => "failed",
        }
    }
}

/// One crawl job.
pub struct Job {
    pub id: String,
    /// The key that made it: no other key sees it.
    owner: String,
    seeds: Vec<String>,
    started: Instant,
    state: parking_lot::Mutex<(JobState, Option<String>)>,
    /// Items as NDJSON lines, in the order they were written.
    items: parking_lot::Mutex<Vec<Arc<str>>>,
    /// Woken when items arrive or the job ends.
    changed: Notify,
    stats: Arc<CrawlStats>,
    shutdown: Shutdown,
}

impl Job {
    fn state(&self) -> JobState {
        self.state.lock().0
    }

    fn finish(&self, state: JobState, error: Option<String>) {
        *self.state.lock() = (state, error);
        self.changed.notify_waiters();
    }

    fn describe(&self) -> Value {
        let (state, error) = self.state.lock().clone();
        let s = self.stats.snapshot(self.started.elapsed());
        json!({
            "id": self.id,
            "state": state.as_str(),
            "error": error,
            "seeds": self.seeds,
            "items": self.items.lock().len(),
            "stats": {
                "pages": s.pages,
                "pages_ok": s.pages_ok,
                "errors": s.errors,
                "requests": s.requests,
                "in_flight": s.in_flight,
                "queued": s.queued,
                "elapsed_ms": self.started.elapsed().as_millis() as u64,
            },
        })
    }
}

/// The jobs of this server.
#[derive(Default)]
pub struct Jobs {
    jobs: parking_lot::Mutex<BTreeMap<String, Arc<Job>>>,
    next: AtomicU64,
}

/// The sink of a job: items become NDJSON lines the stream reads.
struct JobSink(Arc<Job>);

#[async_trait::async_trait]
impl Sink for JobSink {
    fn name(&self) -> String {
        format!("job:{}", self.0.id)
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        let lines: Vec<Arc<str>> = items
            .iter()
            .map(|i| serde_json::to_string(&i.0).map(|l| Arc::from(l + "\n")))
            .collect::<Result<_, _>>()
            .map_err(|e| SinkError::Encode(e.to_string()))?;
        self.0.items.lock().extend(lines);
        self.0.changed.notify_waiters();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrawlRequest {
    seeds: Vec<String>,
    #[serde(default)]
    settings: Value,
}

fn parse(body: Result<Bytes, BytesRejection>) -> Result<(Vec<Url>, Effective), ApiError> {
    let value = crate::scrape::read_json(body)?;
    let req: CrawlRequest = serde_path_to_error::deserialize(&value).map_err(|e| {
        ApiError::new(400, "invalid_request", e.inner().to_string())
            .at(crate::scrape::pointer_of(e.path(), &e.inner().to_string()))
    })?;
    if req.seeds.is_empty() {
        return Err(ApiError::new(400, "invalid_request", "no seed URL").at("/seeds"));
    }
    let mut seeds = Vec::new();
    for (i, s) in req.seeds.iter().enumerate() {
        match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => seeds.push(u),
            _ => {
                return Err(ApiError::new(
                    400,
                    "invalid_url",
                    format!("{s:?} is not an http(s) URL"),
                )
                .at(format!("/seeds/{i}")));
            }
        }
    }
    let settings = match req.settings {
        Value::Null => serde_json::Value::Object(Default::default()),
        other => other,
    };
    let layer = Layer::from_json(&settings, "/settings").map_err(settings_error)?;
    for key in layer.keys() {
        if ["state", "redis", "output", "sinks", "errors", "dead_letter"].contains(&key) {
            return Err(ApiError::new(
                400,
                "invalid_request",
                format!(
                    "`{key}` is not available through the API: jobs keep their items for the stream"
                ),
            )
            .at(format!("/settings/{key}")));
        }
    }
    let effective = Effective::stack(&[layer]).map_err(settings_error)?;
    Ok((seeds, effective))
}

fn settings_error(e: trawl_settings::SettingsError) -> ApiError {
    match e {
        trawl_settings::SettingsError::Json { pointer, message } => {
            ApiError::new(400, "invalid_request", message).at(pointer)
        }
        other => ApiError::new(400, "invalid_request", other.to_string()),
    }
}

/// `POST /v1/crawls`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(max) = state.cfg.limits.max_jobs {
        let running = state
            .jobs
            .jobs
            .lock()
            .values()
            .filter(|j| j.owner == caller.0 && j.state() == JobState::Running)
            .count();
        if running >= max {
            return crate::limits::too_many(
                "too_many_jobs",
                format!("{running} crawl jobs of this key are running (at most {max})"),
                std::time::Duration::from_secs(5),
            );
        }
    }
    match start(&state, &caller, body) {
        Ok(job) => (axum::http::StatusCode::ACCEPTED, axum::Json(job.describe())).into_response(),
        Err(e) => e.into_response(),
    }
}

fn start(
    state: &Arc<AppState>,
    caller: &Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Arc<Job>, ApiError> {
    let (seeds, effective) = parse(body)?;
    let mut plan = effective
        .build(seeds.clone(), &SpiderParts::default())
        .map_err(settings_error)?;
    // The server's address guard and robots policy hold for every job: a
    // job turns robots.txt off only on a server started without it.
    plan.crawl.fetch.address_guard = state.downloader.config().address_guard.clone();
    if state.cfg.obey_robots {
        plan.crawl.fetch.obey_robots = true;
    }
    // Items are held for the stream: a job without a page limit gets one.
    if !effective.is_set("max_pages") {
        plan.crawl.max_pages = Some(DEFAULT_MAX_PAGES);
    }
    for seed in &seeds {
        if let Some(guard) = &plan.crawl.fetch.address_guard
            && let Some(why) = guard.refuses_url(seed)
        {
            return Err(ApiError::new(422, "target_refused", why).at("/seeds"));
        }
    }
    let id = format!(
        "c{}-{}",
        state.jobs.next.fetch_add(1, Ordering::Relaxed) + 1,
        std::process::id()
    );
    let job = Arc::new(Job {
        id: id.clone(),
        owner: caller.0.clone(),
        seeds: seeds.iter().map(|s| s.to_string()).collect(),
        started: Instant::now(),
        state: parking_lot::Mutex::new((JobState::Running, None)),
        items: parking_lot::Mutex::new(Vec::new()),
        changed: Notify::new(),
        stats: Arc::new(CrawlStats::default()),
        shutdown: Shutdown::default(),
    });
    state.jobs.jobs.lock().insert(id, job.clone());
    let running = job.clone();
    let frontier = Arc::new(trawl_frontier::MemoryFrontier::new(
        plan.frontier.host_limit,
    ));
    tokio::spawn(async move {
        let engine = Engine::new(plan.crawl, running.stats.clone());
        let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JobSink(running.clone()))];
        let result = engine.run(frontier, sinks, running.shutdown.clone()).await;
        match result {
            Ok(report) if !report.sink_errors.is_empty() => {
                running.finish(JobState::Failed, Some(report.sink_errors.join("; ")))
            }
            Ok(_) if running.shutdown.is_triggered() => running.finish(JobState::Cancelled, None),
            Ok(_) => running.finish(JobState::Done, None),
            Err(e) => running.finish(JobState::Failed, Some(e.to_string())),
        }
    });
    Ok(job)
}

/// The job `id` of `caller`; another key's job is as absent as an
/// unknown one.
fn find(state: &AppState, caller: &Caller, id: &str) -> Result<Arc<Job>, ApiError> {
    state
        .jobs
        .jobs
        .lock()
        .get(id)
        .filter(|job| job.owner == caller.0)
        .cloned()
        .ok_or_else(|| ApiError::new(404, "not_found", format!("no crawl job {id}")))
}

/// `GET /v1/crawls/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match find(&state, &caller, &id) {
        Ok(job) => axum::Json(job.describe()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/crawls`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let jobs: Vec<Value> = state
        .jobs
        .jobs
        .lock()
        .values()
        .filter(|j| j.owner == caller.0)
        .map(|j| j.describe())
        .collect();
    axum::Json(json!({ "crawls": jobs })).into_response()
}

/// `DELETE /v1/crawls/{id}`: stop fetching, keep what was written.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match find(&state, &caller, &id) {
        Ok(job) => {
            job.shutdown.trigger();
            axum::Json(job.describe()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ItemsQuery {
    #[serde(default)]
    after: usize,
}

/// `GET /v1/crawls/{id}/items?after=N`: NDJSON, item N+1 on, until the
/// job ends.
pub async fn items(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<ItemsQuery>,
) -> Response {
    let job = match find(&state, &caller, &id) {
        Ok(job) => job,
        Err(e) => return e.into_response(),
    };
    let stream = futures_util::stream::unfold((job, query.after), |(job, next)| async move {
        loop {
            // Registered before looking, so nothing written in between is
            // missed.
            let changed = job.changed.notified();
            let lines: Vec<Arc<str>> = job
                .items
                .lock()
                .get(next..)
                .map(|rest| rest[..rest.len().min(CHUNK_LINES)].to_vec())
                .unwrap_or_default();
            if !lines.is_empty() {
                drop(changed);
                let n = lines.len();
                let chunk: String = lines.iter().map(|l| &**l).collect();
                return Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (job, next + n)));
            }
            if job.state() != JobState::Running {
                return None;
            }
            changed.await;
        }
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
