//! The crawl job endpoints: `POST /v1/crawls` starts one (see
//! [`crate::jobs::request`] for the body), `GET /v1/crawls/{id}` reports
//! its state and live stats, `GET /v1/crawls/{id}/items` streams its
//! items as NDJSON as they are made durable (`?after=N` skips the first
//! N; the stream ends with the job), `DELETE /v1/crawls/{id}` stops it
//! (its items stay), `GET /v1/crawls` lists the caller's jobs.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs::request::CrawlRequest;
use crate::jobs::store::JobState;

/// `POST /v1/crawls`.
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
    let request: CrawlRequest = match crate::scrape::read_json(body).and_then(|value| {
        serde_path_to_error::deserialize(&value).map_err(|e| {
            let message = e.inner().to_string();
            ApiError::new(400, "invalid_request", message.clone())
                .at(crate::scrape::pointer_of(e.path(), &message))
        })
    }) {
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
            .map_err(|wait| {
                ApiError::new(
                    429,
                    "quota_exceeded",
                    format!(
                        "this key's quota of {} pages is used up for this period",
                        quota.pages
                    ),
                )
                .retry_after(wait)
            }),
    };
    match state.jobs.create(&caller.0, request, reserve).await {
        Ok(job) => (axum::http::StatusCode::ACCEPTED, axum::Json(job.describe())).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/crawls/{id}`.
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

/// `GET /v1/crawls`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let jobs: Vec<_> = state
        .jobs
        .of(&caller.0)
        .iter()
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
    let job = match state.jobs.find(&caller.0, &id) {
        Ok(job) => job,
        Err(e) => return e.into_response(),
    };
    let stream = futures_util::stream::unfold((job, query.after), |(job, next)| async move {
        loop {
            // Registered before looking, so nothing published in between
            // is missed.
            let changed = job.log.changed.notified();
            let over = job.is_over();
            let read = job.log.read_from(next);
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
