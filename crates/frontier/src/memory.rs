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

use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use trawl_core::{Frontier, FrontierError, FrontierStats, Lease, Prehashed, Request};

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
    /// Leases of this host whose fetch is not over (the politeness limit).
    fetching: usize,
    /// Leases of this host not yet acknowledged.
    leased: usize,
    /// Not before this instant (Retry-After and the like).
    not_before: Option<Instant>,
    /// Whether the host's key is in `ready` right now.
    in_ready: bool,
}

/// Fingerprints are random already: no need to hash them again.
type FingerprintSet = HashSet<[u8; 16], Prehashed>;

#[derive(Default)]
struct Inner {
    seen: FingerprintSet,
    hosts: HashMap<String, HostQueue>,
    ready: VecDeque<String>,
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

impl Inner {
    /// Put `host` in the ready ring if it can be leased from now.
    fn maybe_ready(&mut self, host: &str, limit: usize, now: Instant) {
        if let Some(h) = self.hosts.get_mut(host) {
            let backing_off = h.not_before.is_some_and(|t| t > now);
            if !h.in_ready && !h.queue.is_empty() && h.fetching < limit && !backing_off {
                h.in_ready = true;
                self.ready.push_back(host.to_string());
            }
        }
    }

    /// Re-admit hosts whose back-off has expired.
    fn wake_deferred(&mut self, limit: usize, now: Instant) {
        let due: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.not_before.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for host in due {
            if let Some(h) = self.hosts.get_mut(&host) {
                h.not_before = None;
            }
            self.maybe_ready(&host, limit, now);
        }
    }

    fn drop_host_if_idle(&mut self, host: &str) {
        if self
            .hosts
            .get(host)
            .is_some_and(|h| h.queue.is_empty() && h.leased == 0 && h.not_before.is_none())
        {
            self.hosts.remove(host);
        }
    }

    fn next_deferred(&self) -> Option<Instant> {
        self.hosts.values().filter_map(|h| h.not_before).min()
    }
}

#[async_trait::async_trait]
impl Frontier for MemoryFrontier {
    async fn push(&self, requests: Vec<Request>) -> Result<usize, FrontierError> {
        let now = Instant::now();
        let mut added = 0;
        {
            // Hash outside the lock.
            let keyed: Vec<([u8; 16], Request)> =
                requests.into_iter().map(|r| (r.fingerprint(), r)).collect();
            let mut inner = self.inner.lock();
            for (fp, req) in keyed {
                if !inner.seen.insert(fp) {
                    continue;
                }
                let host = req.host_key();
                inner.next_seq += 1;
                let queued = Queued {
                    priority: req.priority,
                    seq: inner.next_seq,
                    request: req,
                };
                inner
                    .hosts
                    .entry(host.clone())
                    .or_default()
                    .queue
                    .push(queued);
                inner.queued += 1;
                inner.maybe_ready(&host, self.host_limit, now);
                added += 1;
            }
        }
        if added > 0 {
            self.notify.notify_waiters();
        }
        Ok(added)
    }

    async fn lease(&self, max: usize) -> Result<Vec<Lease>, FrontierError> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut inner = self.inner.lock();
        if inner.hosts.values().any(|h| h.not_before.is_some()) {
            inner.wake_deferred(self.host_limit, now);
        }
        while out.len() < max {
            let Some(host) = inner.ready.pop_front() else {
                break;
            };
            let Some(h) = inner.hosts.get_mut(&host) else {
                continue;
            };
            h.in_ready = false;
            let Some(Queued { request, .. }) = h.queue.pop() else {
                continue;
            };
            h.leased += 1;
            h.fetching += 1;
            inner.queued -= 1;
            inner.next_id += 1;
            let lease = Lease {
                id: inner.next_id,
                request,
                host: host.clone(),
            };
            inner.leases.insert(lease.id, (lease.clone(), true));
            inner.maybe_ready(&host, self.host_limit, now);
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
            if std::mem::replace(fetching, false)
                && let Some(h) = inner.hosts.get_mut(&lease.host)
            {
                h.fetching = h.fetching.saturating_sub(1);
            }
            inner.maybe_ready(&lease.host, self.host_limit, now);
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
                h.leased = h.leased.saturating_sub(1);
                if fetching {
                    h.fetching = h.fetching.saturating_sub(1);
                }
            }
            inner.maybe_ready(&lease.host, self.host_limit, now);
            inner.drop_host_if_idle(&lease.host);
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
            let h = inner.hosts.entry(lease.host.clone()).or_default();
            h.leased = h.leased.saturating_sub(1);
            if fetching {
                h.fetching = h.fetching.saturating_sub(1);
            }
            // Back at the head of its priority class.
            h.queue.push(Queued {
                priority: lease.request.priority,
                seq: 0,
                request: lease.request,
            });
            inner.queued += 1;
            inner.maybe_ready(&lease.host, self.host_limit, now);
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn defer_host(&self, host: &str, delay: Duration) -> Result<(), FrontierError> {
        let until = Instant::now() + delay;
        let mut inner = self.inner.lock();
        let h = inner.hosts.entry(host.to_string()).or_default();
        h.not_before = Some(h.not_before.map_or(until, |t| t.max(until)));
        if h.in_ready {
            h.in_ready = false;
            inner.ready.retain(|k| k != host);
        }
        Ok(())
    }

    async fn wait_ready(&self, timeout: Duration) {
        let notified = self.notify.notified();
        let deadline = {
            let inner = self.inner.lock();
            if !inner.ready.is_empty() {
                return;
            }
            let cap = Instant::now() + timeout;
            inner.next_deferred().map_or(cap, |t| t.min(cap))
        };
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }

    async fn stats(&self) -> Result<FrontierStats, FrontierError> {
        let inner = self.inner.lock();
        Ok(FrontierStats {
            queued: inner.queued,
            leased: inner.leases.len() as u64,
            seen: inner.seen.len() as u64,
            hosts: inner.hosts.len() as u64,
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
