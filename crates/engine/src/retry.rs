//! Riding out a frontier outage.
//!
//! A distributed frontier lives in Redis, which may restart. Links to push
//! and leases to acknowledge must not be dropped meanwhile: the stage waits
//! and retries (the bounded queues behind it fill, so the crawl pauses), and
//! carries on when the storage is back.

use std::future::Future;
use std::time::Duration;

use trawl_core::FrontierError;

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Run `op` until it succeeds or fails with something other than an
/// unreachable storage.
pub(crate) async fn persist<T, F, Fut>(what: &str, mut op: F) -> Result<T, FrontierError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, FrontierError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut failures = 0u32;
    loop {
        match op().await {
            Err(FrontierError::Storage(error)) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!(%error, failures, "Frontier {what} failed; retrying until the storage is back.");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
            other => return other,
        }
    }
}
