//! The crawl job endpoints: `POST /v1/crawls` starts one (see
//! [`crate::jobs::request`] for the body), `GET /v1/crawls/{id}` reports
//! its state and live stats, `GET /v1/crawls/{id}/items` streams its
//! items as NDJSON as they are made durable (`?after=N` skips the first
//! N; the stream ends with the job), `DELETE /v1/crawls/{id}` stops it
//! (its items stay), `GET /v1/crawls` lists the caller's jobs.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::jobs::JobView;
use crate::jobs::request::CrawlRequest;
use crate::jobs::store::JobState;

/// Start a crawl job.
#[utoipa::path(
    post,
    path = "/v1/crawls",
    tag = "crawls",
    operation_id = "create_crawl",
    request_body = CrawlRequest,
    responses(
        (status = 202, description = "The job, running", body = JobView),
        (status = 400, description = "A bad request (`pointer` names the value)", body = ErrorBody),
        (status = 401, description = "No or an unknown API key", body = ErrorBody),
        (status = 413, description = "The request body is too large", body = ErrorBody),
        (status = 422, description = "A seed or the webhook is refused by the address guard", body = ErrorBody),
        (status = 429, description = "A limit of the key (Retry-After says when)", body = ErrorBody),
        (status = 500, description = "The job could not be stored or opened (it is kept, failed, with the reason)", body = ErrorBody),
        (status = 503, description = "The server's Redis (`--redis`) cannot be reached (the job is kept, failed)", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(max) = state.cfg.limits.max_jobs {
        let running = state.jobs.running(&caller.0);
        if running >= max {
            return crate::limits::too_many(
                "too_many_jobs",
                format!("{running} crawl jobs of this key are running (at most {max})"),
                std::time::Duration::from_secs(5),
            );
        }
    }
    let request: CrawlRequest = match crate::scrape::parse(body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let quota = state.cfg.limits.quota;
    let reserve = |pages: u64| match quota {
        None => Ok(None),
        Some(quota) => state
            .quotas
            .reserve(&caller.0, pages, quota, std::time::SystemTime::now())
            .map(Some)
            .map_err(|wait| crate::limits::quota_exceeded(quota).retry_after(wait)),
    };
    match state.jobs.create(&caller.0, request, reserve).await {
        Ok(job) => (axum::http::StatusCode::ACCEPTED, axum::Json(job.describe())).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A job's state and live stats.
#[utoipa::path(
    get,
    path = "/v1/crawls/{id}",
    tag = "crawls",
    operation_id = "get_crawl",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "No or an unknown API key", body = ErrorBody),
        (status = 404, description = "No such job of this key", body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match state.jobs.find(&caller.0, &id) {
        Ok(job) => axum::Json(job.describe()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The caller's jobs.
#[utoipa::path(
    get,
    path = "/v1/crawls",
    tag = "crawls",
    operation_id = "list_crawls",
    responses(
        (status = 200, description = "The jobs of this key", body = JobList),
        (status = 401, description = "No or an unknown API key", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let crawls = state
        .jobs
        .of(&caller.0)
        .iter()
        .map(|j| j.describe())
        .collect();
    axum::Json(JobList { crawls }).into_response()
}

/// Stop a job: it fetches no more; its items stay.
#[utoipa::path(
    delete,
    path = "/v1/crawls/{id}",
    tag = "crawls",
    operation_id = "cancel_crawl",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, stopping", body = JobView),
        (status = 401, description = "No or an unknown API key", body = ErrorBody),
        (status = 404, description = "No such job of this key", body = ErrorBody),
    ),
)]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match state.jobs.find(&caller.0, &id) {
        Ok(job) => {
            if job.state() == JobState::Running {
                job.cancel();
            }
            axum::Json(job.describe()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The caller's jobs, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub crawls: Vec<JobView>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemsQuery {
    /// Skip the first N items (those a reader has).
    #[serde(default)]
    #[param(required = false, minimum = 0, maximum = 9007199254740991_u64)]
    after: u64,
}

/// A job's items as NDJSON, item N+1 on (`after=N`), as they are made
/// durable; the stream ends with the job.
#[utoipa::path(
    get,
    path = "/v1/crawls/{id}/items",
    tag = "crawls",
    operation_id = "crawl_items",
    params(("id" = String, Path, description = "The job's id"), ItemsQuery),
    responses(
        (status = 200, description = "One JSON item per line", body = String, content_type = "application/x-ndjson"),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 401, description = "No or an unknown API key", body = ErrorBody),
        (status = 404, description = "No such job of this key", body = ErrorBody),
    ),
)]
pub async fn items(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<ItemsQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return ApiError::new(400, "invalid_request", e.body_text())
                .at("/after")
                .into_response();
        }
    };
    let job = match state.jobs.find(&caller.0, &id) {
        Ok(job) => job,
        Err(e) => return e.into_response(),
    };
    let after = usize::try_from(query.after).unwrap_or(usize::MAX);
    let stream = futures_util::stream::unfold((job, after), |(job, next)| async move {
        loop {
            // Registered before looking, so nothing published in between
            // is missed.
            let changed = job.log.changed.notified();
            let over = job.is_over();
            let read = job.log.read_from(next).await;
            match read {
                Ok(None) if !over => changed.await,
                Ok(None) => return None,
                Ok(Some((bytes, lines))) => {
                    drop(changed);
                    return Some((Ok(Bytes::from(bytes)), (job, next + lines)));
                }
                Err(e) => {
                    drop(changed);
                    return Some((Err(e), (job, usize::MAX)));
                }
            }
        }
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
