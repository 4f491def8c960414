//! In-memory frontier: per-host FIFO queues served round-robin.
//!
//! Each host has its own queue; hosts that have queued work, fewer
//! outstanding leases than the per-host limit, and no back-off in force sit in
//! a ready ring. `lease` walks the ring taking one request per host per turn,
//! so a host with a million URLs gets the same share of fetch slots as a host
//! with ten, and politeness on one host never blocks the others. Within a
//! host, requests come out by `priority` (the spider's score, higher first)
//! and then first-in first-out, which keeps the crawl breadth-first by depth.
//!
//! The seen-set keeps a 128-bit fingerprint of every canonical URL ever
//! accepted (16 bytes a URL instead of the string).

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use trawl_core::{Frontier, FrontierError, FrontierStats, Lease, Prehashed, Request};

use crate::ring::{HostRing, HostWork};

/// A queued request, ordered by priority (higher first), then by arrival.
struct Queued {
    priority: i32,
    seq: u64,
    request: Request,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.seq) == (other.priority, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// The max-heap pops the highest priority, and the lowest sequence
    /// number among equals.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority
            .cmp(&other.priority)
            .then(other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
struct HostQueue {
    queue: BinaryHeap<Queued>,
    /// Leases of this host not yet acknowledged.
    leased: usize,
}

impl HostWork for HostQueue {
    fn has_work(&self) -> bool {
        !self.queue.is_empty()
    }
}

/// Fingerprints are random already: no need to hash them again.
type FingerprintSet = HashSet<[u8; 16], Prehashed>;

#[derive(Default)]
struct Inner {
    seen: FingerprintSet,
    hosts: HostRing<HostQueue>,
    /// Outstanding leases, and whether each is still fetching.
    leases: HashMap<u64, (Lease, bool)>,
    next_id: u64,
    /// Arrival order of queued requests.
    next_seq: u64,
    queued: u64,
}

/// See the module documentation.
pub struct MemoryFrontier {
    inner: Mutex<Inner>,
    host_limit: usize,
    notify: Notify,
}

impl MemoryFrontier {
    /// A frontier that never leases more than `host_limit` requests of one
    /// host at a time.
    pub fn new(host_limit: usize) -> Self {
        MemoryFrontier {
            inner: Mutex::new(Inner::default()),
            host_limit: host_limit.max(1),
            notify: Notify::new(),
        }
    }
}

#[async_trait::async_trait]
impl Frontier for MemoryFrontier {
    async fn push(&self, requests: Vec<Request>) -> Result<usize, FrontierError> {
        self.push_split(requests, 0).await.map(|(added, _)| added)
    }

    async fn push_split(
        &self,
        requests: Vec<Request>,
        split: usize,
    ) -> Result<(usize, usize), FrontierError> {
        let now = Instant::now();
        let (mut added, mut added_first) = (0, 0);
        {
            // Hash outside the lock.
            let keyed: Vec<([u8; 16], Request)> =
                requests.into_iter().map(|r| (r.fingerprint(), r)).collect();
            let mut inner = self.inner.lock();
            for (i, (fp, req)) in keyed.into_iter().enumerate() {
                if !inner.seen.insert(fp) {
                    continue;
                }
                added_first += usize::from(i < split);
                let host = req.host_key();
                inner.next_seq += 1;
                let queued = Queued {
                    priority: req.priority,
                    seq: inner.next_seq,
                    request: req,
                };
                inner.hosts.entry(&host).work.queue.push(queued);
                inner.queued += 1;
                inner.hosts.offer(&host, self.host_limit, now);
                added += 1;
            }
        }
        if added > 0 {
            self.notify.notify_waiters();
        }
        Ok((added, added_first))
    }

    async fn lease(&self, max: usize) -> Result<Vec<Lease>, FrontierError> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut inner = self.inner.lock();
        inner.hosts.wake_due(self.host_limit, now);
        while out.len() < max {
            let Some(host) = inner.hosts.next_ready() else {
                break;
            };
            let h = inner.hosts.entry(&host);
            let Some(Queued { request, .. }) = h.work.queue.pop() else {
                continue;
            };
            h.work.leased += 1;
            h.fetching += 1;
            inner.queued -= 1;
            inner.next_id += 1;
            let lease = Lease {
                id: inner.next_id,
                request,
                host: host.clone(),
            };
            inner.leases.insert(lease.id, (lease.clone(), true));
            inner.hosts.offer(&host, self.host_limit, now);
            out.push(lease);
        }
        Ok(out)
    }

    async fn fetched(&self, lease: &Lease) -> Result<(), FrontierError> {
        let now = Instant::now();
        {
            let mut inner = self.inner.lock();
            let Some((_, fetching)) = inner.leases.get_mut(&lease.id) else {
                return Err(FrontierError::UnknownLease(lease.id));
            };
            if std::mem::replace(fetching, false) {
                inner.hosts.finished(&lease.host);
            }
            inner.hosts.offer(&lease.host, self.host_limit, now);
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn ack(&self, lease: &Lease) -> Result<(), FrontierError> {
        let now = Instant::now();
        {
            let mut inner = self.inner.lock();
            let Some((_, fetching)) = inner.leases.remove(&lease.id) else {
                return Err(FrontierError::UnknownLease(lease.id));
            };
            if let Some(h) = inner.hosts.get_mut(&lease.host) {
                h.work.leased = h.work.leased.saturating_sub(1);
                if fetching {
                    h.fetching = h.fetching.saturating_sub(1);
                }
            }
            inner.hosts.offer(&lease.host, self.host_limit, now);
            inner
                .hosts
                .remove_if(&lease.host, |h| h.queue.is_empty() && h.leased == 0);
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<(), FrontierError> {
        let now = Instant::now();
        {
            let mut inner = self.inner.lock();
            let Some((lease, fetching)) = inner.leases.remove(&lease.id) else {
                return Err(FrontierError::UnknownLease(lease.id));
            };
            let h = inner.hosts.entry(&lease.host);
            h.work.leased = h.work.leased.saturating_sub(1);
            if fetching {
                h.fetching = h.fetching.saturating_sub(1);
            }
            // Back at the head of its priority class.
            h.work.queue.push(Queued {
                priority: lease.request.priority,
                seq: 0,
                request: lease.request,
            });
            inner.queued += 1;
            inner.hosts.offer(&lease.host, self.host_limit, now);
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn defer_host(&self, host: &str, delay: Duration) -> Result<(), FrontierError> {
        let until = Instant::now() + delay;
        self.inner.lock().hosts.defer(host, until);
        Ok(())
    }

    async fn wait_ready(&self, timeout: Duration) {
        let notified = self.notify.notified();
        let deadline = {
            let inner = self.inner.lock();
            if inner.hosts.has_ready() {
                return;
            }
            let cap = Instant::now() + timeout;
            inner.hosts.next_due().map_or(cap, |t| t.min(cap))
        };
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }

    async fn stats(&self) -> Result<FrontierStats, FrontierError> {
        let inner = self.inner.lock();
        Ok(FrontierStats {
            queued: inner.queued,
            leased: inner.leases.len() as u64,
            seen: inner.seen.len() as u64,
            hosts: inner.hosts.host_count() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_core::Url;

    fn req(s: &str) -> Request {
        Request::seed(Url::parse(s).unwrap())
    }

    #[tokio::test]
    async fn push_split_counts_the_first_part_apart() {
        let f = MemoryFrontier::new(2);
        f.push(vec![req("http://a/1"), req("http://a/4")])
            .await
            .unwrap();
        let links = || {
            [
                "http://a/1",
                "http://a/2",
                "http://a/2",
                "http://a/3",
                "http://a/4",
                "http://a/5",
            ]
            .map(req)
            .to_vec()
        };
        // New among the first three: /2 (once); among all: /2, /3, /5.
        assert_eq!(f.push_split(links(), 3).await.unwrap(), (3, 1));
        assert_eq!(f.push_split(links(), 3).await.unwrap(), (0, 0));
        // The trait's default (two pushes) says the same.
        struct TwoPushes(MemoryFrontier);
        #[async_trait::async_trait]
        impl Frontier for TwoPushes {
            async fn push(&self, requests: Vec<Request>) -> Result<usize, FrontierError> {
                self.0.push(requests).await
            }
            async fn lease(&self, max: usize) -> Result<Vec<Lease>, FrontierError> {
                self.0.lease(max).await
            }
            async fn ack(&self, lease: &Lease) -> Result<(), FrontierError> {
                self.0.ack(lease).await
            }
            async fn release(&self, lease: &Lease) -> Result<(), FrontierError> {
                self.0.release(lease).await
            }
            async fn defer_host(&self, host: &str, delay: Duration) -> Result<(), FrontierError> {
                self.0.defer_host(host, delay).await
            }
            async fn wait_ready(&self, timeout: Duration) {
                self.0.wait_ready(timeout).await
            }
            async fn stats(&self) -> Result<trawl_core::FrontierStats, FrontierError> {
                self.0.stats().await
            }
        }
        let g = TwoPushes(MemoryFrontier::new(2));
        g.push(vec![req("http://a/1"), req("http://a/4")])
            .await
            .unwrap();
        assert_eq!(g.push_split(links(), 3).await.unwrap(), (3, 1));
        assert_eq!(g.push_split(links(), 0).await.unwrap(), (0, 0));
        assert_eq!(f.push_split(Vec::new(), 5).await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn dedupes_and_counts() {
        let f = MemoryFrontier::new(2);
        assert_eq!(
            f.push(vec![
                req("http://a/1"),
                req("http://a/1"),
                req("http://a/2")
            ])
            .await
            .unwrap(),
            2
        );
        assert_eq!(f.push(vec![req("http://a/2")]).await.unwrap(), 0);
        let s = f.stats().await.unwrap();
        assert_eq!((s.queued, s.seen), (2, 2));
    }

    #[tokio::test]
    async fn round_robin_and_host_limit() {
        let f = MemoryFrontier::new(2);
        let mut reqs: Vec<Request> = (0..10).map(|i| req(&format!("http://big/{i}"))).collect();
        reqs.push(req("http://small/1"));
        reqs.push(req("http://small/2"));
        f.push(reqs).await.unwrap();
        let leases = f.lease(10).await.unwrap();
        // Two per host at most, both hosts served.
        assert_eq!(leases.len(), 4);
        assert_eq!(leases.iter().filter(|l| l.host == "big").count(), 2);
        assert_eq!(leases.iter().filter(|l| l.host == "small").count(), 2);
        assert!(f.lease(10).await.unwrap().is_empty());
        // The slot frees when the fetch is over, before the ack.
        f.fetched(&leases[0]).await.unwrap();
        let more = f.lease(10).await.unwrap();
        assert_eq!(more.len(), 1);
        assert_eq!(more[0].host, leases[0].host);
        f.ack(&leases[0]).await.unwrap();
        assert!(f.lease(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn release_requeues_and_finish_detected() {
        let f = MemoryFrontier::new(1);
        f.push(vec![req("http://a/1")]).await.unwrap();
        let l = f.lease(1).await.unwrap();
        assert!(!f.stats().await.unwrap().is_finished());
        f.release(&l[0]).await.unwrap();
        let l = f.lease(1).await.unwrap();
        assert_eq!(l[0].request.url.as_str(), "http://a/1");
        f.ack(&l[0]).await.unwrap();
        assert!(f.stats().await.unwrap().is_finished());
        assert!(f.ack(&l[0]).await.is_err());
    }

    #[tokio::test]
    async fn priority_first_then_fifo() {
        let f = MemoryFrontier::new(1);
        let mut reqs: Vec<Request> = (0..4).map(|i| req(&format!("http://a/{i}"))).collect();
        reqs[2].priority = 5;
        f.push(reqs).await.unwrap();
        let mut order = Vec::new();
        for _ in 0..4 {
            let l = f.lease(1).await.unwrap();
            order.push(l[0].request.url.path().to_string());
            f.ack(&l[0]).await.unwrap();
        }
        assert_eq!(order, vec!["/2", "/0", "/1", "/3"]);
    }

    #[tokio::test]
    async fn per_request_fields_survive_lease_and_release() {
        let f = MemoryFrontier::new(1);
        let pushed = crate::testing::rich_request();
        assert_eq!(f.push(vec![pushed.clone()]).await.unwrap(), 1);
        let l = f.lease(1).await.unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].request, pushed);
        assert_eq!(l[0].request.headers, pushed.headers);
        assert_eq!(l[0].request.proxy_pool.as_deref(), Some("residential"));
        assert_eq!(l[0].request.callback.as_deref(), Some("parse_item"));
        // A released request comes back whole.
        f.release(&l[0]).await.unwrap();
        let again = f.lease(1).await.unwrap();
        assert_eq!(again[0].request, pushed);
    }

    #[tokio::test(start_paused = true)]
    async fn deferred_host_waits() {
        let f = MemoryFrontier::new(2);
        f.push(vec![req("http://a/1"), req("http://b/1")])
            .await
            .unwrap();
        f.defer_host("a", Duration::from_secs(5)).await.unwrap();
        let l = f.lease(10).await.unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].host, "b");
        tokio::time::advance(Duration::from_secs(6)).await;
        let l = f.lease(10).await.unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].host, "a");
    }
}
