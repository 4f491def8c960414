//! Who is calling: the key named by `Authorization: Bearer KEY`, checked
//! against the stored hashes. Without any key the API is open and every
//! caller is `anonymous`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// The name of the key a request was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// The key named by `Authorization: Bearer KEY`, if any.
fn bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn unauthorized(why: &str) -> Response {
    let mut response = ApiError::new(401, "unauthorized", why).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// The server-wide figures (`/metrics`, the dashboard's data) show every
/// key's jobs and hosts: open when the server has no keys, else for
/// admin keys only (`trawl serve keys add NAME --admin`).
pub async fn operator(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if !state.cfg.keys.is_empty() {
        match bearer(&request).map(|k| state.cfg.keys.find(k)) {
            None => return unauthorized("an admin API key is required: Authorization: Bearer KEY"),
            Some(None) => return unauthorized("unknown API key"),
            Some(Some(key)) if !key.admin => {
                return ApiError::new(
                    403,
                    "forbidden",
                    "server-wide figures need an admin key (trawl serve keys add NAME --admin)",
                )
                .into_response();
            }
            Some(Some(_)) => {}
        }
    }
    next.run(request).await
}

/// Refuse `/v1` calls without a valid key (when keys exist); hand the
/// caller to the handlers.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = if state.cfg.keys.is_empty() {
        "anonymous".to_string()
    } else {
        let given = bearer(&request);
        match given.and_then(|k| state.cfg.keys.check(k)) {
            Some(name) => name.to_string(),
            None => {
                return unauthorized(if given.is_some() {
                    "unknown API key"
                } else {
                    "an API key is required: Authorization: Bearer KEY"
                });
            }
        }
    };
    if let Some(rate) = state.cfg.limits.rate
        && let Err(wait) = state.buckets.take(&caller, rate, std::time::Instant::now())
    {
        return crate::limits::too_many(
            "rate_limited",
            format!("more than {rate} requests per second for this key"),
            wait,
        );
    }
    request.extensions_mut().insert(Caller(caller));
    next.run(request).await
}
