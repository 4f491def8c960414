//! Per-key limits: a request rate (token bucket) and running crawl jobs,
//! answered with `429` and `Retry-After`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The limits of every key (none: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// `/v1` requests per second per key, with a burst of as many.
    pub rate: Option<f64>,
    /// Crawl jobs running at once per key.
    pub max_jobs: Option<usize>,
}

/// Each key's bucket: tokens left and when they were counted.
#[derive(Debug, Default)]
pub struct Buckets {
    buckets: parking_lot::Mutex<HashMap<String, (f64, Instant)>>,
}

impl Buckets {
    /// Take a token of `key`'s bucket (`rate` per second, burst `rate`),
    /// or say how long until one is there.
    pub fn take(&self, key: &str, rate: f64, now: Instant) -> Result<(), Duration> {
        let burst = rate.max(1.0);
        let mut buckets = self.buckets.lock();
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((burst, now));
        let refilled =
            (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / rate))
        }
    }
}

/// A `429` with `Retry-After` (whole seconds, at least 1).
pub fn too_many(code: &'static str, message: String, retry_after: Duration) -> Response {
    let mut response = ApiError::new(429, code, message).into_response();
    let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    if let Ok(value) = header::HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let buckets = Buckets::default();
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(buckets.take("a", 2.0, t0).is_ok());
        }
        let wait = buckets.take("a", 2.0, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(
            buckets.take("b", 2.0, t0).is_ok(),
            "keys have their own buckets"
        );
        assert!(
            buckets
                .take("a", 2.0, t0 + Duration::from_millis(500))
                .is_ok()
        );
    }
}
