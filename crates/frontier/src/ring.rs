//! The per-host ready ring both local frontiers (memory and embedded)
//! schedule with: which hosts may be leased from now, in turn.
//!
//! A host is in the ring while it has work, fewer leases fetching than the
//! host limit, and no back-off (`defer_host`) pending. `lease` takes hosts
//! from the front, one request each, and offers them again at the back,
//! so one big host never takes every slot. What "work" is belongs to the
//! frontier: a heap of requests in memory, counters and a disk cursor in
//! the embedded one.

use std::collections::{HashMap, VecDeque};
use tokio::time::Instant;

/// What a frontier keeps per host besides its politeness state.
pub(crate) trait HostWork: Default {
    /// Whether the host has requests waiting to be leased.
    fn has_work(&self) -> bool;
}

/// One host: the frontier's work, and its politeness state.
#[derive(Default)]
pub(crate) struct HostEntry<H> {
    pub work: H,
    /// Leases whose fetch is not over (the politeness limit).
    pub fetching: usize,
    /// Not before this instant (Retry-After and the like).
    pub not_before: Option<Instant>,
    /// Whether the host's key is in the ring right now.
    in_ready: bool,
}

/// Hosts and the ring of those ready to be leased from.
pub(crate) struct HostRing<H> {
    hosts: HashMap<String, HostEntry<H>>,
    ready: VecDeque<String>,
}

impl<H> Default for HostRing<H> {
    fn default() -> Self {
        HostRing {
            hosts: HashMap::new(),
            ready: VecDeque::new(),
        }
    }
}

impl<H: HostWork> HostRing<H> {
    /// The host's entry, made if new.
    pub fn entry(&mut self, host: &str) -> &mut HostEntry<H> {
        if !self.hosts.contains_key(host) {
            self.hosts.insert(host.to_string(), HostEntry::default());
        }
        self.hosts
            .get_mut(host)
            .expect("the entry was just made if missing")
    }

    #[cfg(test)]
    pub fn get(&self, host: &str) -> Option<&HostEntry<H>> {
        self.hosts.get(host)
    }

    pub fn get_mut(&mut self, host: &str) -> Option<&mut HostEntry<H>> {
        self.hosts.get_mut(host)
    }

    /// Every host with its entry.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &HostEntry<H>)> {
        self.hosts.iter()
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Put `host` in the ring if it can be leased from now.
    pub fn offer(&mut self, host: &str, limit: usize, now: Instant) {
        if let Some(h) = self.hosts.get_mut(host) {
            let backing_off = h.not_before.is_some_and(|t| t > now);
            if !h.in_ready && h.work.has_work() && h.fetching < limit && !backing_off {
                h.in_ready = true;
                self.ready.push_back(host.to_string());
            }
        }
    }

    /// Offer every host (after a restart).
    pub fn offer_all(&mut self, limit: usize, now: Instant) {
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        for host in hosts {
            self.offer(&host, limit, now);
        }
    }

    /// Re-admit hosts whose back-off has expired.
    pub fn wake_due(&mut self, limit: usize, now: Instant) {
        if !self.hosts.values().any(|h| h.not_before.is_some()) {
            return;
        }
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
            self.offer(&host, limit, now);
        }
    }

    /// The next host to lease from, out of the ring (offer it again after
    /// leasing).
    pub fn next_ready(&mut self) -> Option<String> {
        while let Some(host) = self.ready.pop_front() {
            if let Some(h) = self.hosts.get_mut(&host) {
                h.in_ready = false;
                return Some(host);
            }
        }
        None
    }

    /// A lease of `host` started fetching.
    pub fn started(&mut self, host: &str) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.fetching += 1;
        }
    }

    /// A lease of `host` is no longer fetching.
    pub fn finished(&mut self, host: &str) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.fetching = h.fetching.saturating_sub(1);
        }
    }

    /// Lease nothing of `host` before `until`.
    pub fn defer(&mut self, host: &str, until: Instant) {
        let h = self.entry(host);
        h.not_before = Some(h.not_before.map_or(until, |t| t.max(until)));
        if std::mem::replace(&mut h.in_ready, false) {
            self.ready.retain(|k| k != host);
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// When the first back-off ends.
    pub fn next_due(&self) -> Option<Instant> {
        self.hosts.values().filter_map(|h| h.not_before).min()
    }

    /// Forget `host` when `idle` says its work is done and it has no
    /// back-off pending.
    pub fn remove_if(&mut self, host: &str, idle: impl FnOnce(&H) -> bool) {
        if self
            .hosts
            .get(host)
            .is_some_and(|h| h.not_before.is_none() && h.fetching == 0 && idle(&h.work))
        {
            self.hosts.remove(host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Count(usize);

    impl HostWork for Count {
        fn has_work(&self) -> bool {
            self.0 > 0
        }
    }

    #[test]
    fn hosts_take_turns_within_their_limit_and_back_off() {
        let now = Instant::now();
        let mut ring = HostRing::<Count>::default();
        ring.entry("a").work.0 = 3;
        ring.entry("b").work.0 = 1;
        ring.entry("c");
        ring.offer_all(1, now);
        let mut order = Vec::new();
        while let Some(host) = ring.next_ready() {
            ring.entry(&host).work.0 -= 1;
            ring.started(&host);
            ring.offer(&host, 1, now);
            order.push(host);
        }
        order.sort();
        assert_eq!(order, ["a", "b"], "one each: the limit is 1; c has no work");
        ring.finished("a");
        ring.offer("a", 1, now);
        ring.defer("a", now + std::time::Duration::from_secs(5));
        assert!(!ring.has_ready(), "a deferred host leaves the ring");
        ring.wake_due(1, now + std::time::Duration::from_secs(6));
        assert_eq!(ring.next_ready().as_deref(), Some("a"));
        ring.remove_if("b", |w| w.0 == 0);
        assert!(ring.get("b").is_some(), "b still fetching");
        ring.finished("b");
        ring.remove_if("b", |w| w.0 == 0);
        assert!(ring.get("b").is_none());
    }
}
