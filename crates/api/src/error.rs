//! Errors as JSON: `{"error": {"code", "message", "pointer"}}` with a
//! stable `code` a client can branch on.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The body of every failed call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// A failed API call.
#[derive(Debug, Clone, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("{code}: {message}")]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    /// Stable: `invalid_json`, `invalid_request`, `invalid_url`,
    /// `invalid_spider`, `payload_too_large`, `unauthorized`,
    /// `not_found`, `target_refused`, `robots_denied`, `fetch_failed`,
    /// `timeout`, `rate_limited`, `too_many_jobs`, `too_many_scrapes`,
    /// `quota_exceeded`, `redis_unavailable`, `internal`.
    #[schema(value_type = String)]
    pub code: &'static str,
    pub message: String,
    /// The JSON pointer of the offending value in the request, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Sent as `Retry-After` (whole seconds, at least 1).
    #[serde(skip)]
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            pointer: None,
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, wait: std::time::Duration) -> ApiError {
        self.retry_after = Some(wait);
        self
    }

    pub fn at(mut self, pointer: impl Into<String>) -> ApiError {
        self.pointer = Some(pointer.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({ "error": self });
        let mut response = (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}
