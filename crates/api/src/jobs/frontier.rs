//! The frontier of a job: its crawl state on disk, and each
//! acknowledgement shows the items it made durable to the stream.

use std::sync::Arc;
use std::time::Duration;

use trawl_core::{Frontier, FrontierError, FrontierStats, Lease, Request};

use super::items::ItemLog;

/// A job's frontier: acknowledgements publish the items they checkpoint.
pub struct JobFrontier {
    pub inner: Arc<dyn Frontier>,
    pub log: Arc<ItemLog>,
    /// The name the job's sink has in checkpoints.
    pub sink: String,
}

#[async_trait::async_trait]
impl Frontier for JobFrontier {
    async fn push(&self, requests: Vec<Request>) -> Result<usize, FrontierError> {
        self.inner.push(requests).await
    }

    async fn lease(&self, max: usize) -> Result<Vec<Lease>, FrontierError> {
        self.inner.lease(max).await
    }

    fn lease_batch(&self) -> usize {
        self.inner.lease_batch()
    }

    fn pushes_ahead(&self) -> usize {
        self.inner.pushes_ahead()
    }

    async fn fetched(&self, lease: &Lease) -> Result<(), FrontierError> {
        self.inner.fetched(lease).await
    }

    async fn ack(&self, lease: &Lease) -> Result<(), FrontierError> {
        self.inner.ack(lease).await
    }

    async fn ack_batch(
        &self,
        leases: &[Lease],
        checkpoint: Option<Vec<u8>>,
    ) -> Result<(), FrontierError> {
        let position = checkpoint
            .as_deref()
            .and_then(|c| trawl_core::checkpoint::position_in(c, &self.sink));
        self.inner.ack_batch(leases, checkpoint).await?;
        if let Some(position) = position {
            self.log.publish(position);
        }
        Ok(())
    }

    async fn remember(
        &self,
        request: &Request,
        visit: trawl_core::Visit<'_>,
    ) -> Result<(), FrontierError> {
        self.inner.remember(request, visit).await
    }

    async fn checkpoint(&self) -> Result<Option<Vec<u8>>, FrontierError> {
        self.inner.checkpoint().await
    }

    async fn release(&self, lease: &Lease) -> Result<(), FrontierError> {
        self.inner.release(lease).await
    }

    async fn defer_host(&self, host: &str, delay: Duration) -> Result<(), FrontierError> {
        self.inner.defer_host(host, delay).await
    }

    async fn wait_ready(&self, timeout: Duration) {
        self.inner.wait_ready(timeout).await
    }

    async fn stats(&self) -> Result<FrontierStats, FrontierError> {
        self.inner.stats().await
    }
}
