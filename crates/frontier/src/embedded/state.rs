//! The `DiskFrontier` implementation (see the module documentation).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use trawl_core::{Frontier, FrontierError, FrontierStats, Lease, Prehashed, Request};

use crate::ring::{HostRing, HostWork};

/// Memtable size per keyspace.
const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

/// Fingerprints kept in memory in front of the on-disk seen-set (~30 bytes
/// each: 10 M URLs cost ~300 MiB). Past it, lookups go to disk.
const SEEN_CACHE: usize = 16_000_000;

fn storage(context: &str, e: impl std::fmt::Display) -> FrontierError {
    FrontierError::Storage(format!("{context}: {e}"))
}

/// In a state directory: the state was created completely (written once
/// the database has opened).
const READY_MARKER: &str = "trawl-state.ready";
/// In a state directory: trawl began creating the state in this (then
/// empty) directory. Found without [`READY_MARKER`], the first run was
/// killed half-way through creating it: nothing was crawled into it.
const CREATING_MARKER: &str = "trawl-state.creating";

/// Create `path` with `content` durably (the file and its directory).
fn write_durably(path: &Path, content: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, content)?;
    std::fs::File::open(path)?.sync_all()?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Make `dir` ready for the database: create it, and clear what a first
/// run killed while creating the state left behind (a database that never
/// finished its first open cannot be opened again). A directory that holds
/// anything else is left as it is.
fn prepare_dir(dir: &Path) -> Result<(), FrontierError> {
    let io = |what: &str, e: std::io::Error| storage(&format!("{what} {}", dir.display()), e);
    std::fs::create_dir_all(dir).map_err(|e| io("creating", e))?;
    if dir.join(READY_MARKER).exists() {
        return Ok(());
    }
    if dir.join(CREATING_MARKER).exists() {
        tracing::info!(dir = %dir.display(), "The state was never completely created (the first run was stopped); starting it afresh.");
        for entry in std::fs::read_dir(dir).map_err(|e| io("reading", e))? {
            let path = entry.map_err(|e| io("reading", e))?.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| io("clearing", e))?;
        }
    } else if std::fs::read_dir(dir)
        .map_err(|e| io("reading", e))?
        .next()
        .is_some()
    {
        // A state from before these markers (or other files): as it is.
        return Ok(());
    }
    write_durably(&dir.join(CREATING_MARKER), b"").map_err(|e| io("marking", e))
}

/// The database in `dir` has opened: the state exists for good.
fn mark_ready(dir: &Path) -> Result<(), FrontierError> {
    let ready = dir.join(READY_MARKER);
    if ready.exists() {
        return Ok(());
    }
    let io = |e| storage(&format!("marking {}", dir.display()), e);
    write_durably(&ready, b"").map_err(io)?;
    match std::fs::remove_file(dir.join(CREATING_MARKER)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
        _ => Ok(()),
    }
}

#[derive(Default)]
struct Host {
    /// Requests of this host on disk and not leased.
    queued: u64,
    /// Key of the last request read from disk; the next read starts after it.
    cursor: Option<Vec<u8>>,
    /// Leases given back (read again before the disk).
    /// By key, so they come out in queue order.
    returned: BTreeMap<Vec<u8>, Request>,
}

impl HostWork for Host {
    fn has_work(&self) -> bool {
        self.queued > 0 || !self.returned.is_empty()
    }
}

#[derive(Default)]
struct State {
    hosts: HostRing<Host>,
    /// Lease id → (lease, its queue key, still fetching).
    leases: HashMap<u64, (Lease, Vec<u8>, bool)>,
    next_id: u64,
    next_seq: u64,
    queued: u64,
    seen: u64,
    seen_cache: HashSet<[u8; 16], Prehashed>,
}

/// A persistent frontier in a directory.
pub struct DiskFrontier {
    db: Database,
    seen: Keyspace,
    queue: Keyspace,
    meta: Keyspace,
    /// Fingerprint → `Known` of every fetched URL (for `--recrawl`).
    known: Keyspace,
    state: Mutex<State>,
    host_limit: usize,
    notify: Notify,
}

/// What the store keeps of a fetched URL.
#[derive(serde::Serialize, serde::Deserialize)]
struct Known {
    url: String,
    depth: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    /// What the last visit found (hashes, time, revisit interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    visit: Option<trawl_core::PreviousVisit>,
}

/// `host 0x00 rank seq`: per host, by priority (higher first: the rank is
/// the priority flipped so it sorts ascending), then arrival.
fn queue_key(host: &str, priority: i32, seq: u64) -> Vec<u8> {
    let rank = (i64::from(i32::MAX) - i64::from(priority)) as u32;
    let mut key = Vec::with_capacity(host.len() + 13);
    key.extend_from_slice(host.as_bytes());
    key.push(0);
    key.extend_from_slice(&rank.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn host_of_key(key: &[u8]) -> Option<&str> {
    let end = key.len().checked_sub(13)?;
    std::str::from_utf8(&key[..end]).ok()
}

fn read_u64(ks: &Keyspace, key: &str) -> Result<u64, FrontierError> {
    Ok(ks
        .get(key)
        .map_err(|e| storage("reading meta", e))?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

impl DiskFrontier {
    /// Open (or create) the state in `dir`; an existing crawl is resumed.
    pub fn open(dir: &Path, host_limit: usize) -> Result<DiskFrontier, FrontierError> {
        prepare_dir(dir)?;
        let db = Database::builder(dir)
            .cache_size(32 * 1024 * 1024)
            .open()
            .map_err(|e| storage(&format!("opening the state in {}", dir.display()), e))?;
        // Small memtables keep memory flat however large the queue grows.
        let open = |name: &str| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(|e| storage(name, e))
        };
        let (seen, queue, meta, known) =
            (open("seen")?, open("queue")?, open("meta")?, open("known")?);
        db.persist(fjall::PersistMode::SyncAll)
            .map_err(|e| storage("persisting the new state", e))?;
        mark_ready(dir)?;
        let mut state = State {
            next_seq: read_u64(&meta, "seq")?,
            seen: read_u64(&meta, "seen")?,
            ..State::default()
        };
        // Rebuild the per-host counters from the queue.
        for guard in queue.iter() {
            let key = guard.key().map_err(|e| storage("scanning the queue", e))?;
            if let Some(host) = host_of_key(&key) {
                state.hosts.entry(host).work.queued += 1;
                state.queued += 1;
            }
        }
        let frontier = DiskFrontier {
            db,
            seen,
            queue,
            meta,
            known,
            state: Mutex::new(state),
            host_limit: host_limit.max(1),
            notify: Notify::new(),
        };
        frontier
            .state
            .lock()
            .hosts
            .offer_all(frontier.host_limit, Instant::now());
        Ok(frontier)
    }

    /// Start a new pass over every URL fetched before: the queue and the
    /// seen-set are cleared and each known URL is queued again with its
    /// validators and its last visit, so the downloader revisits it with a
    /// conditional GET (an unchanged page costs a 304) and the parse stage
    /// can say what changed. New links found on changed pages are crawled
    /// as usual. With `due_at` (Unix seconds), only URLs whose revisit
    /// interval has run out by then are queued; the others count as seen,
    /// so links to them are not followed in this pass. Returns how many
    /// URLs were queued.
    pub async fn begin_recrawl(&self, due_at: Option<u64>) -> Result<usize, FrontierError> {
        self.queue
            .clear()
            .map_err(|e| storage("clearing the queue", e))?;
        self.seen
            .clear()
            .map_err(|e| storage("clearing the seen-set", e))?;
        // The old output checkpoint belongs to the finished pass.
        self.meta
            .remove("checkpoint")
            .map_err(|e| storage("clearing the checkpoint", e))?;
        {
            let mut state = self.state.lock();
            let next_seq = state.next_seq;
            *state = State {
                next_seq,
                ..State::default()
            };
        }
        let mut batch = Vec::with_capacity(1000);
        let mut not_due = Vec::new();
        let mut queued = 0;
        for guard in self.known.iter() {
            let (_, value) = guard
                .into_inner()
                .map_err(|e| storage("reading known URLs", e))?;
            let Ok(known) = serde_json::from_slice::<Known>(&value) else {
                continue;
            };
            let Ok(url) = trawl_core::Url::parse(&known.url) else {
                continue;
            };
            let mut request = Request::seed(url);
            request.depth = known.depth;
            request.etag = known.etag;
            request.last_modified = known.last_modified;
            if let Some(now) = due_at
                && !trawl_traps::is_due(known.visit.as_ref(), now)
            {
                not_due.push(request.fingerprint());
                continue;
            }
            request.previous = known.visit.map(Box::new);
            batch.push(request);
            if batch.len() == 1000 {
                queued += self.push(std::mem::take(&mut batch)).await?;
            }
        }
        queued += self.push(batch).await?;
        self.mark_seen(&not_due)?;
        Ok(queued)
    }

    /// Count these fingerprints as seen without queueing them.
    fn mark_seen(&self, fingerprints: &[[u8; 16]]) -> Result<(), FrontierError> {
        if fingerprints.is_empty() {
            return Ok(());
        }
        let mut state = self.state.lock();
        let mut batch = self.db.batch();
        for fp in fingerprints {
            batch.insert(&self.seen, fp.to_vec(), Vec::<u8>::new());
            if state.seen_cache.len() < SEEN_CACHE {
                state.seen_cache.insert(*fp);
            }
        }
        state.seen += fingerprints.len() as u64;
        batch.insert(&self.meta, "seen", state.seen.to_be_bytes().to_vec());
        batch
            .commit()
            .map_err(|e| storage("marking URLs that are not due", e))
    }

    /// The duplicate index kept in this state directory (`dupes`),
    /// loaded into memory.
    pub fn content_index(
        &self,
        distance: u32,
    ) -> Result<super::StateIndex, trawl_traps::IndexError> {
        let keyspace = self
            .db
            .keyspace("dupes", || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(|e| trawl_traps::IndexError::Storage(format!("dupes: {e}")))?;
        super::StateIndex::load(keyspace, distance)
    }

    /// Whether this state directory already holds a crawl.
    pub fn is_resumed(&self) -> bool {
        self.state.lock().seen > 0
    }

    /// Read the next unleased request of `host` from disk.
    fn next_from_disk(
        &self,
        host: &str,
        cursor: Option<&[u8]>,
    ) -> Result<Option<(Vec<u8>, Request)>, FrontierError> {
        let mut start = match cursor {
            Some(c) => c.to_vec(),
            None => queue_key(host, i32::MAX, 0),
        };
        let end = queue_key(host, i32::MIN, u64::MAX);
        if cursor.is_some() {
            // Strictly after the cursor.
            start.push(0);
        }
        let mut range = self.queue.range(start..=end);
        match range.next() {
            Some(guard) => {
                let (key, value) = guard
                    .into_inner()
                    .map_err(|e| storage("reading the queue", e))?;
                let request: Request = serde_json::from_slice(&value)
                    .map_err(|e| storage("decoding a queued request", e))?;
                Ok(Some((key.to_vec(), request)))
            }
            None => Ok(None),
        }
    }

    fn is_seen(&self, state: &State, fp: &[u8; 16]) -> Result<bool, FrontierError> {
        if state.seen_cache.contains(fp) {
            return Ok(true);
        }
        if state.seen_cache.len() < SEEN_CACHE {
            // The cache holds every fingerprint until it fills up.
            return Ok(false);
        }
        self.seen
            .contains_key(fp)
            .map_err(|e| storage("reading the seen-set", e))
    }
}

#[async_trait::async_trait]
impl Frontier for DiskFrontier {
    async fn push(&self, requests: Vec<Request>) -> Result<usize, FrontierError> {
        let keyed: Vec<([u8; 16], Request)> =
            requests.into_iter().map(|r| (r.fingerprint(), r)).collect();
        let now = Instant::now();
        let added = {
            let mut state = self.state.lock();
            if state.seen_cache.is_empty() && state.seen > 0 {
                // Resumed: warm the cache from disk (bounded).
                for guard in self.seen.iter().take(SEEN_CACHE) {
                    if let Ok(key) = guard.key()
                        && let Ok(fp) = <[u8; 16]>::try_from(key.as_ref())
                    {
                        state.seen_cache.insert(fp);
                    }
                }
            }
            let mut batch = self.db.batch();
            let mut fresh: Vec<(String, Vec<u8>, Request)> = Vec::new();
            let mut in_batch: HashSet<[u8; 16], Prehashed> = HashSet::default();
            for (fp, req) in keyed {
                if in_batch.contains(&fp) || self.is_seen(&state, &fp)? {
                    continue;
                }
                in_batch.insert(fp);
                let host = req.host_key();
                let key = queue_key(&host, req.priority, state.next_seq);
                state.next_seq += 1;
                let json =
                    serde_json::to_vec(&req).map_err(|e| storage("encoding a request", e))?;
                batch.insert(&self.seen, fp.to_vec(), Vec::<u8>::new());
                batch.insert(&self.queue, key.clone(), json);
                fresh.push((host, key, req));
            }
            if fresh.is_empty() {
                return Ok(0);
            }
            state.seen += fresh.len() as u64;
            batch.insert(&self.meta, "seq", state.next_seq.to_be_bytes().to_vec());
            batch.insert(&self.meta, "seen", state.seen.to_be_bytes().to_vec());
            batch
                .commit()
                .map_err(|e| storage("writing new requests", e))?;
            for fp in &in_batch {
                if state.seen_cache.len() < SEEN_CACHE {
                    state.seen_cache.insert(*fp);
                }
            }
            let added = fresh.len();
            for (host, key, req) in fresh {
                let h = &mut state.hosts.entry(&host).work;
                if h.cursor.as_ref().is_some_and(|c| key < *c) {
                    // Higher priority than what the host's disk reads have
                    // passed: served from memory, in key order, before them.
                    h.returned.insert(key, req);
                } else {
                    h.queued += 1;
                    state.queued += 1;
                }
                state.hosts.offer(&host, self.host_limit, now);
            }
            added
        };
        self.notify.notify_waiters();
        Ok(added)
    }

    async fn lease(&self, max: usize) -> Result<Vec<Lease>, FrontierError> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.hosts.wake_due(self.host_limit, now);
        while out.len() < max {
            let Some(host) = state.hosts.next_ready() else {
                break;
            };
            let (returned, cursor) = match state.hosts.get_mut(&host) {
                Some(h) => (h.work.returned.pop_first(), h.work.cursor.clone()),
                None => continue,
            };
            let next = match returned {
                Some(r) => Some(r),
                None => {
                    let next = self.next_from_disk(&host, cursor.as_deref())?;
                    if let (Some((key, _)), Some(h)) = (&next, state.hosts.get_mut(&host)) {
                        h.work.cursor = Some(key.clone());
                        h.work.queued = h.work.queued.saturating_sub(1);
                        state.queued = state.queued.saturating_sub(1);
                    } else if let Some(h) = state.hosts.get_mut(&host) {
                        // Counters said there was work but the disk has none.
                        state.queued = state.queued.saturating_sub(h.work.queued);
                        h.work.queued = 0;
                    }
                    next
                }
            };
            let Some((key, request)) = next else { continue };
            state.hosts.started(&host);
            state.next_id += 1;
            let lease = Lease {
                id: state.next_id,
                request,
                host: host.clone(),
            };
            state.leases.insert(lease.id, (lease.clone(), key, true));
            state.hosts.offer(&host, self.host_limit, now);
            out.push(lease);
        }
        Ok(out)
    }

    async fn fetched(&self, lease: &Lease) -> Result<(), FrontierError> {
        let now = Instant::now();
        {
            let mut guard = self.state.lock();
            let state = &mut *guard;
            let Some((_, _, fetching)) = state.leases.get_mut(&lease.id) else {
                return Err(FrontierError::UnknownLease(lease.id));
            };
            if std::mem::replace(fetching, false) {
                state.hosts.finished(&lease.host);
            }
            state.hosts.offer(&lease.host, self.host_limit, now);
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn ack(&self, lease: &Lease) -> Result<(), FrontierError> {
        self.ack_batch(std::slice::from_ref(lease), None).await
    }

    async fn ack_batch(
        &self,
        leases: &[Lease],
        checkpoint: Option<Vec<u8>>,
    ) -> Result<(), FrontierError> {
        let now = Instant::now();
        {
            let mut state = self.state.lock();
            let mut batch = self.db.batch();
            let mut done = Vec::with_capacity(leases.len());
            for lease in leases {
                let Some((lease, key, fetching)) = state.leases.remove(&lease.id) else {
                    return Err(FrontierError::UnknownLease(lease.id));
                };
                batch.remove(&self.queue, key);
                done.push((lease.host, fetching));
            }
            if let Some(cp) = checkpoint {
                batch.insert(&self.meta, "checkpoint", cp);
            }
            batch
                .commit()
                .map_err(|e| storage("acknowledging leases", e))?;
            for (host, fetching) in done {
                if fetching {
                    state.hosts.finished(&host);
                }
                state.hosts.offer(&host, self.host_limit, now);
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn remember(
        &self,
        request: &Request,
        visit: trawl_core::Visit<'_>,
    ) -> Result<(), FrontierError> {
        let known = Known {
            url: request.url.to_string(),
            depth: request.depth,
            etag: visit.etag.map(str::to_string),
            last_modified: visit.last_modified.map(str::to_string),
            visit: Some(visit.record.clone()),
        };
        let value = serde_json::to_vec(&known).map_err(|e| storage("encoding validators", e))?;
        self.known
            .insert(request.fingerprint().to_vec(), value)
            .map_err(|e| storage("storing validators", e))
    }

    async fn checkpoint(&self) -> Result<Option<Vec<u8>>, FrontierError> {
        Ok(self
            .meta
            .get("checkpoint")
            .map_err(|e| storage("reading the checkpoint", e))?
            .map(|v| v.to_vec()))
    }

    async fn release(&self, lease: &Lease) -> Result<(), FrontierError> {
        let now = Instant::now();
        {
            let mut state = self.state.lock();
            let Some((lease, key, fetching)) = state.leases.remove(&lease.id) else {
                return Err(FrontierError::UnknownLease(lease.id));
            };
            let h = state.hosts.entry(&lease.host);
            if fetching {
                h.fetching = h.fetching.saturating_sub(1);
            }
            h.work.returned.insert(key, lease.request);
            state.hosts.offer(&lease.host, self.host_limit, now);
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn defer_host(&self, host: &str, delay: Duration) -> Result<(), FrontierError> {
        let until = Instant::now() + delay;
        self.state.lock().hosts.defer(host, until);
        Ok(())
    }

    async fn wait_ready(&self, timeout: Duration) {
        let notified = self.notify.notified();
        let deadline = {
            let state = self.state.lock();
            if state.hosts.has_ready() {
                return;
            }
            let cap = Instant::now() + timeout;
            state.hosts.next_due().map_or(cap, |t| t.min(cap))
        };
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }

    async fn stats(&self) -> Result<FrontierStats, FrontierError> {
        let state = self.state.lock();
        let returned: u64 = state
            .hosts
            .entries()
            .map(|(_, h)| h.work.returned.len() as u64)
            .sum();
        Ok(FrontierStats {
            queued: state.queued + returned,
            leased: state.leases.len() as u64,
            seen: state.seen,
            hosts: state
                .hosts
                .entries()
                .filter(|(_, h)| h.work.has_work() || h.fetching > 0)
                .count() as u64,
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

    /// The duplicate index outlives the process: after a reopen, a page
    /// with the body or text of one indexed before is found.
    #[tokio::test]
    async fn duplicate_index_survives_reopen() {
        use trawl_traps::{ContentIndex, Digest, Verdict};
        let dir = tempfile::tempdir().unwrap();
        let first = Digest::new(Some(&"ab".repeat(32)), Some(0xf0f0));
        let other = Digest::new(Some(&"cd".repeat(32)), Some(!0xf0f0));
        {
            let f = DiskFrontier::open(dir.path(), 2).unwrap();
            let index = f.content_index(3).unwrap();
            assert_eq!(
                index.check("http://a/1", first).await.unwrap(),
                Verdict::Original
            );
            assert_eq!(
                index.check("http://a/2", other).await.unwrap(),
                Verdict::Original
            );
            // Not indexed twice.
            assert_eq!(
                index.check("http://a/1", first).await.unwrap(),
                Verdict::Original
            );
            assert_eq!(index.len(), 2);
        }
        let f = DiskFrontier::open(dir.path(), 2).unwrap();
        let index = f.content_index(3).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(
            index.check("http://a/3", first).await.unwrap(),
            Verdict::Duplicate {
                of: "http://a/1".into()
            }
        );
        let near = Digest::new(Some(&"ef".repeat(32)), Some(!0xf0f0 ^ 0b101));
        assert_eq!(
            index.check("http://a/4", near).await.unwrap(),
            Verdict::NearDuplicate {
                of: "http://a/2".into(),
                distance: 2
            }
        );
    }

    #[tokio::test]
    async fn survives_reopen_with_unacked_leases_requeued() {
        let dir = tempfile::tempdir().unwrap();
        {
            let f = DiskFrontier::open(dir.path(), 2).unwrap();
            assert_eq!(
                f.push(vec![
                    req("http://a/1"),
                    req("http://a/2"),
                    req("http://b/1"),
                    req("http://a/1")
                ])
                .await
                .unwrap(),
                3
            );
            let leases = f.lease(10).await.unwrap();
            assert_eq!(leases.len(), 3);
            let a1 = leases
                .iter()
                .find(|l| l.request.url.as_str() == "http://a/1")
                .unwrap();
            f.ack_batch(std::slice::from_ref(a1), Some(b"cp-1".to_vec()))
                .await
                .unwrap();
            // Dropped without acking the other two: like a crash.
        }
        let f = DiskFrontier::open(dir.path(), 2).unwrap();
        assert!(f.is_resumed());
        assert_eq!(f.checkpoint().await.unwrap().as_deref(), Some(&b"cp-1"[..]));
        let s = f.stats().await.unwrap();
        assert_eq!((s.queued, s.leased, s.seen), (2, 0, 3));
        // Seen survives: nothing is queued twice.
        assert_eq!(
            f.push(vec![
                req("http://a/1"),
                req("http://a/2"),
                req("http://c/1")
            ])
            .await
            .unwrap(),
            1
        );
        let mut urls: Vec<String> = f
            .lease(10)
            .await
            .unwrap()
            .iter()
            .map(|l| l.request.url.to_string())
            .collect();
        urls.sort();
        assert_eq!(urls, vec!["http://a/2", "http://b/1", "http://c/1"]);
    }

    #[tokio::test]
    async fn a_state_whose_creation_was_killed_starts_afresh() {
        // What `kill -9` during the very first open leaves: the marker, a
        // journal file fjall refuses to create again, a half-made folder.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CREATING_MARKER), b"").unwrap();
        std::fs::write(dir.path().join("0.jnl"), b"").unwrap();
        std::fs::create_dir(dir.path().join("keyspaces")).unwrap();
        let f = DiskFrontier::open(dir.path(), 2).unwrap();
        assert!(!f.is_resumed());
        assert!(dir.path().join(READY_MARKER).exists());
        assert!(!dir.path().join(CREATING_MARKER).exists());
        let url = Url::parse("http://a.test/1").unwrap();
        assert_eq!(f.push(vec![Request::seed(url)]).await.unwrap(), 1);
        drop(f);
        // From now on it is a state like any other: reopened, not cleared.
        let f = DiskFrontier::open(dir.path(), 2).unwrap();
        assert!(f.is_resumed());
        assert_eq!(f.lease(1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn files_that_are_not_a_half_made_state_are_never_cleared() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        let f = DiskFrontier::open(dir.path(), 2).unwrap();
        drop(f);
        assert_eq!(
            std::fs::read(dir.path().join("notes.txt")).unwrap(),
            b"mine"
        );
        let f = DiskFrontier::open(dir.path(), 2).unwrap();
        drop(f);
        assert_eq!(
            std::fs::read(dir.path().join("notes.txt")).unwrap(),
            b"mine"
        );
    }

    #[tokio::test]
    async fn per_request_fields_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let pushed = crate::testing::rich_request();
        {
            let f = DiskFrontier::open(dir.path(), 2).unwrap();
            assert_eq!(
                f.push(vec![pushed.clone(), req("http://a.test/plain")])
                    .await
                    .unwrap(),
                2
            );
            // Read back from disk in the same session.
            let leases = f.lease(10).await.unwrap();
            let got = leases.iter().find(|l| l.request.url == pushed.url).unwrap();
            assert_eq!(got.request, pushed);
            // Dropped without acking: resumed below.
        }
        let f = DiskFrontier::open(dir.path(), 2).unwrap();
        assert!(f.is_resumed());
        let leases = f.lease(10).await.unwrap();
        assert_eq!(leases.len(), 2);
        let got = leases.iter().find(|l| l.request.url == pushed.url).unwrap();
        assert_eq!(got.request, pushed);
        assert_eq!(got.request.headers, pushed.headers);
        assert_eq!(got.request.proxy_pool.as_deref(), Some("residential"));
        assert_eq!(got.request.callback.as_deref(), Some("parse_item"));
        // The plain request stays plain.
        let plain = leases
            .iter()
            .find(|l| l.request.url.path() == "/plain")
            .unwrap();
        assert_eq!(plain.request, req("http://a.test/plain"));
    }

    #[tokio::test]
    async fn priority_first_even_after_reads_moved_on() {
        let dir = tempfile::tempdir().unwrap();
        let f = DiskFrontier::open(dir.path(), 1).unwrap();
        f.push((0..3).map(|i| req(&format!("http://a/{i}"))).collect())
            .await
            .unwrap();
        let first = f.lease(1).await.unwrap();
        assert_eq!(first[0].request.url.path(), "/0");
        f.ack(&first[0]).await.unwrap();
        let mut urgent = req("http://a/urgent");
        urgent.priority = 10;
        f.push(vec![urgent]).await.unwrap();
        let mut order = Vec::new();
        for _ in 0..3 {
            let l = f.lease(1).await.unwrap();
            order.push(l[0].request.url.path().to_string());
            f.ack(&l[0]).await.unwrap();
        }
        assert_eq!(order, vec!["/urgent", "/1", "/2"]);
        assert!(f.stats().await.unwrap().is_finished());
    }

    #[tokio::test]
    async fn fifo_per_host_limit_and_release() {
        let dir = tempfile::tempdir().unwrap();
        let f = DiskFrontier::open(dir.path(), 1).unwrap();
        f.push((0..5).map(|i| req(&format!("http://a/{i}"))).collect())
            .await
            .unwrap();
        let first = f.lease(10).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].request.url.as_str(), "http://a/0");
        f.release(&first[0]).await.unwrap();
        let again = f.lease(10).await.unwrap();
        assert_eq!(again[0].request.url.as_str(), "http://a/0");
        f.ack(&again[0]).await.unwrap();
        let next = f.lease(10).await.unwrap();
        assert_eq!(next[0].request.url.as_str(), "http://a/1");
        f.ack(&next[0]).await.unwrap();
        let s = f.stats().await.unwrap();
        assert_eq!((s.queued, s.leased), (3, 0));
    }
}
