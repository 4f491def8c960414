//! The `Frontier` trait: the crawl's queue and seen-set.
//!
//! This is Scrapy's scheduler plus dupefilter, shaped for many workers: work
//! is handed out under a [`Lease`] that must be acknowledged once its results
//! (items and child requests) are safe, so a worker that dies loses nothing.
//! Leases are handed out per host (never more outstanding leases for a host
//! than the frontier's per-host limit), so one huge host cannot fill every
//! fetch slot while other hosts wait.

use std::time::Duration;

use crate::request::Request;

/// Errors of a frontier back-end (disk, network, …).
#[derive(Debug, thiserror::Error)]
pub enum FrontierError {
    #[error("frontier storage: {0}")]
    Storage(String),
    #[error("unknown lease {0}")]
    UnknownLease(u64),
}

/// A request handed to one worker until it acknowledges or returns it.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Identifies the lease within its frontier.
    pub id: u64,
    pub request: Request,
    /// The request's politeness key (host[:port]).
    pub host: String,
}

/// Sizes of a frontier at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FrontierStats {
    /// Requests waiting to be leased.
    pub queued: u64,
    /// Requests leased and not yet acknowledged.
    pub leased: u64,
    /// Distinct URLs ever accepted.
    pub seen: u64,
    /// Hosts with queued or leased requests.
    pub hosts: u64,
}

impl FrontierStats {
    /// No queued and no outstanding work: the crawl is complete.
    pub fn is_finished(&self) -> bool {
        self.queued == 0 && self.leased == 0
    }
}

/// What one fetch of a URL leaves for the next visit.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    pub etag: Option<&'a str>,
    pub last_modified: Option<&'a str>,
    /// Hashes, time and revisit interval of this visit.
    pub record: &'a crate::PreviousVisit,
}

#[async_trait::async_trait]
pub trait Frontier: Send + Sync {
    /// Offer requests. Those whose canonical URL was seen before are dropped;
    /// returns how many were newly queued.
    async fn push(&self, requests: Vec<Request>) -> Result<usize, FrontierError>;

    /// Offer requests as `push` does; returns how many were newly queued
    /// in all, and how many of the first `split` of them. (The trap
    /// detector counts a page's new links in its own directory this way.)
    /// The default pushes the two parts one after the other.
    async fn push_split(
        &self,
        mut requests: Vec<Request>,
        split: usize,
    ) -> Result<(usize, usize), FrontierError> {
        let rest = requests.split_off(split.min(requests.len()));
        let first = self.push(requests).await?;
        let rest = self.push(rest).await?;
        Ok((first + rest, first))
    }

    /// Lease up to `max` requests, round-robin over hosts, never exceeding the
    /// per-host limit of leases still fetching (see `fetched`) and skipping
    /// hosts that are backing off.
    async fn lease(&self, max: usize) -> Result<Vec<Lease>, FrontierError>;

    /// How many leases a `lease` call is worth asking for: a frontier
    /// whose calls cost a network round trip asks schedulers to wait a
    /// moment (a few milliseconds) for that many free fetch slots instead
    /// of leasing one at a time as slots free up. 1: lease at once.
    fn lease_batch(&self) -> usize {
        1
    }

    /// How many pages' pushes a router may have in flight at once: a
    /// frontier whose pushes cost a round trip gathers the pushes of
    /// several pages into one call, so the router goes on routing while
    /// they are out (their leases are acknowledged only after their
    /// pushes). 1: each push is finished before the next page is routed.
    fn pushes_ahead(&self) -> usize {
        1
    }

    /// The lease's fetch is over (its response is in hand): the host's
    /// fetch slot is free for the next lease, while the lease itself stays
    /// outstanding until `ack`. Keeps politeness about requests in flight,
    /// not about items waiting for a sink batch.
    async fn fetched(&self, lease: &Lease) -> Result<(), FrontierError> {
        let _ = lease;
        Ok(())
    }

    /// The lease's work is done: its items and children are safe.
    async fn ack(&self, lease: &Lease) -> Result<(), FrontierError>;

    /// Acknowledge several leases at once, together with an opaque
    /// `checkpoint` (the sinks' output positions) that persistent frontiers
    /// store in the same atomic write, so a crash can never separate "these
    /// URLs are done" from "their items end at this output position".
    async fn ack_batch(
        &self,
        leases: &[Lease],
        checkpoint: Option<Vec<u8>>,
    ) -> Result<(), FrontierError> {
        let _ = checkpoint;
        for lease in leases {
            self.ack(lease).await?;
        }
        Ok(())
    }

    /// Remember that `request`'s URL was fetched, with the response's
    /// validators and what the visit found, so a later `--recrawl` can
    /// revisit it with a conditional GET, tell what changed and when it is
    /// due. Frontiers without persistence ignore it.
    async fn remember(&self, request: &Request, visit: Visit<'_>) -> Result<(), FrontierError> {
        let _ = (request, visit);
        Ok(())
    }

    /// The checkpoint stored by the last `ack_batch`, for resuming outputs.
    async fn checkpoint(&self) -> Result<Option<Vec<u8>>, FrontierError> {
        Ok(None)
    }

    /// Give a lease back unfinished; it will be leased again.
    async fn release(&self, lease: &Lease) -> Result<(), FrontierError>;

    /// Ask the frontier not to lease this host's requests before `delay`
    /// from now (Retry-After, ban back-off).
    async fn defer_host(&self, host: &str, delay: Duration) -> Result<(), FrontierError>;

    /// Wait until leasable work may have appeared, or `timeout` passes.
    /// Lets schedulers sleep instead of polling hot.
    async fn wait_ready(&self, timeout: Duration);

    async fn stats(&self) -> Result<FrontierStats, FrontierError>;
}
