//! Per-key limits: a request rate (token bucket), scrapes in flight,
//! running crawl jobs and a page quota per period, answered with `429`
//! and `Retry-After`.
//!
//! The quota counts pages: a scrape takes one; a job holds its page limit
//! (cut to what is left) when it starts and gives back what it did not
//! fetch when it ends. Quota counts live in the server's memory: a
//! restart starts the period's count afresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The limits of every key (none: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// `/v1` requests per second per key, with a burst of as many.
    pub rate: Option<f64>,
    /// Crawl jobs running at once per key.
    pub max_jobs: Option<usize>,
    /// Scrapes in flight at once per key.
    pub max_scrapes: Option<usize>,
    /// Pages per key per period.
    pub quota: Option<Quota>,
}

/// A page quota: `pages` per `period` (periods start at multiples of it
/// since the Unix epoch: a day is a UTC day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub pages: u64,
    pub period: Duration,
}

impl std::str::FromStr for Quota {
    type Err = String;

    /// `10000/day`, `500/hour`, `100/10m`.
    fn from_str(s: &str) -> Result<Quota, String> {
        let (pages, period) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: a quota is PAGES/PERIOD (10000/day)"))?;
        let pages: u64 = pages
            .trim()
            .parse()
            .map_err(|_| format!("{pages:?} is not a page count"))?;
        let period = match period.trim() {
            "day" => Duration::from_secs(86_400),
            "hour" => Duration::from_secs(3_600),
            "minute" => Duration::from_secs(60),
            other => humantime::parse_duration(other)
                .map_err(|e| format!("{other:?} is not a period: {e}"))?,
        };
        if period < Duration::from_secs(1) {
            return Err("a quota's period is at least 1s".into());
        }
        Ok(Quota { pages, period })
    }
}

/// Pages each key used in the current period.
#[derive(Debug, Default, Clone)]
pub struct Quotas {
    used: Arc<parking_lot::Mutex<HashMap<String, (u64, u64)>>>,
}

/// Pages of a key's quota held by a job (or a scrape).
#[derive(Debug)]
pub struct Reservation {
    quotas: Quotas,
    key: String,
    window: u64,
    /// Pages held.
    pub pages: u64,
}

impl Reservation {
    /// The job fetched `used` pages: give back the rest.
    pub fn settle(self, used: u64) {
        let mut all = self.quotas.used.lock();
        if let Some((window, n)) = all.get_mut(&self.key)
            && *window == self.window
        {
            *n = n.saturating_sub(self.pages.saturating_sub(used));
        }
    }
}

impl Quotas {
    /// Hold up to `want` pages of `key`'s quota (at least one), or say how
    /// long until the next period.
    pub fn reserve(
        &self,
        key: &str,
        want: u64,
        quota: Quota,
        now: std::time::SystemTime,
    ) -> Result<Reservation, Duration> {
        let since = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let period = quota.period.as_secs().max(1);
        let window = since.as_secs() / period;
        let mut all = self.used.lock();
        let (at, used) = all.entry(key.to_string()).or_insert((window, 0));
        if *at != window {
            *at = window;
            *used = 0;
        }
        let left = quota.pages.saturating_sub(*used);
        if left == 0 {
            let next = Duration::from_secs((window + 1) * period);
            return Err(next.saturating_sub(since));
        }
        let pages = want.clamp(1, left);
        *used += pages;
        Ok(Reservation {
            quotas: self.clone(),
            key: key.to_string(),
            window,
            pages,
        })
    }
}

/// Scrapes in flight per key.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: Arc<parking_lot::Mutex<HashMap<String, usize>>>,
}

/// One scrape in flight; leaving drops the count.
pub struct Entered {
    counts: Arc<parking_lot::Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(n) = self.counts.lock().get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

impl InFlight {
    /// Count one more scrape of `key`, unless `max` are in flight.
    pub fn enter(&self, key: &str, max: usize) -> Option<Entered> {
        let mut counts = self.counts.lock();
        let n = counts.entry(key.to_string()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Entered {
            counts: self.counts.clone(),
            key: key.to_string(),
        })
    }
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

/// The `429` of a used-up quota (the caller adds when it renews).
pub fn quota_exceeded(quota: Quota) -> ApiError {
    ApiError::new(
        429,
        "quota_exceeded",
        format!(
            "this key's quota of {} pages is used up for this period",
            quota.pages
        ),
    )
}

/// A `429` with `Retry-After` (whole seconds, at least 1).
pub fn too_many(code: &'static str, message: String, retry_after: Duration) -> Response {
    ApiError::new(429, code, message)
        .retry_after(retry_after)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_holds_pages_gives_back_the_unused_and_resets_each_period() {
        let quota: Quota = "100/hour".parse().unwrap();
        assert_eq!(quota.period, Duration::from_secs(3600));
        assert!("100".parse::<Quota>().is_err());
        assert!("x/day".parse::<Quota>().is_err());
        let quotas = Quotas::default();
        let t = std::time::UNIX_EPOCH + Duration::from_secs(3600 * 10 + 600);
        let job = quotas.reserve("a", 80, quota, t).unwrap();
        assert_eq!(job.pages, 80);
        let second = quotas.reserve("a", 80, quota, t).unwrap();
        assert_eq!(second.pages, 20, "cut to what is left");
        let wait = quotas.reserve("a", 1, quota, t).unwrap_err();
        assert_eq!(wait, Duration::from_secs(3000), "until the next hour");
        assert!(quotas.reserve("b", 1, quota, t).is_ok(), "keys apart");
        job.settle(30);
        assert_eq!(quotas.reserve("a", 100, quota, t).unwrap().pages, 50);
        let next_hour = t + Duration::from_secs(3000);
        assert_eq!(
            quotas.reserve("a", 100, quota, next_hour).unwrap().pages,
            100
        );
    }

    #[test]
    fn scrapes_in_flight_are_counted_per_key_and_released_on_drop() {
        let in_flight = InFlight::default();
        let one = in_flight.enter("a", 2).unwrap();
        let _two = in_flight.enter("a", 2).unwrap();
        assert!(in_flight.enter("a", 2).is_none());
        assert!(in_flight.enter("b", 2).is_some());
        drop(one);
        assert!(in_flight.enter("a", 2).is_some());
    }

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
