//! Which frontier a crawl uses, and opening it: the frontier builds
//! itself from its spec (as a sink does), so callers never set its host
//! limit or delay by hand.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use trawl_core::{Frontier, FrontierError};

use crate::{DiskFrontier, MemoryFrontier, RedisFrontier, RedisFrontierConfig};

/// Where the queue and the seen set live.
#[derive(Debug, Clone, PartialEq)]
pub enum FrontierKind {
    /// In this process; gone when it exits.
    Memory,
    /// A directory (`--state`): resumes after a crash.
    Disk { dir: PathBuf },
    /// A Redis shared by any number of workers.
    Redis {
        url: String,
        crawl: String,
        /// `None`: hostname-pid-random.
        worker_id: Option<String>,
        lease_timeout: Duration,
        /// The seen-set of a crawl this process creates.
        seen: crate::redis::SeenSet,
    },
}

/// A frontier to open, with the politeness limits it enforces.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontierSpec {
    pub kind: FrontierKind,
    /// Leases outstanding per host (the downloader's per-host slots, times
    /// the exits with proxies).
    pub host_limit: usize,
    /// Gap between two lease starts of one host (shared frontiers only;
    /// the downloader keeps it locally).
    pub host_delay: Duration,
    /// The near-duplicate distance of the duplicate index a persistent or
    /// shared frontier keeps beside it.
    pub near_distance: u32,
}

/// How a persistent frontier starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskStart {
    /// Resume what the directory holds, else start afresh.
    #[default]
    Continue,
    /// The directory must hold a crawl to resume.
    Resume,
    /// Revisit the URLs fetched before, with conditional requests: all of
    /// them, or (`due_at`, Unix seconds) those whose revisit interval has
    /// run out by then.
    Recrawl { due_at: Option<u64> },
}

/// What an opened frontier found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// Nothing before: a new crawl.
    Fresh,
    /// An earlier crawl continues.
    Resumed { seen: u64, queued: u64 },
    /// An earlier crawl's URLs are queued again for a recrawl.
    Recrawl { queued: usize },
}

/// An open local frontier.
pub struct Opened {
    pub frontier: Arc<dyn Frontier>,
    /// The duplicate index kept with a `--state` frontier (none: the
    /// engine keeps one in memory).
    pub index: Option<Arc<dyn trawl_traps::ContentIndex>>,
    /// The output checkpoint of a resumed crawl: every output is cut back
    /// to it, so each item ends up written once.
    pub checkpoint: Option<Vec<u8>>,
    pub resumed: Resumed,
}

/// Why a frontier could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening the crawl state in {dir}: {source}")]
    Disk { dir: String, source: FrontierError },
    #[error("--resume: {dir} holds no crawl to resume")]
    NothingToResume { dir: String },
    #[error("connecting to the crawl {crawl:?} at {url}: {source}")]
    Redis {
        url: String,
        crawl: String,
        source: FrontierError,
    },
    #[error("{0} is not a local frontier")]
    NotLocal(&'static str),
    #[error(transparent)]
    Frontier(#[from] FrontierError),
}

impl Opened {
    /// URLs earlier runs of this crawl finished (none for a fresh one): a
    /// page limit counts per crawl, not per run.
    pub async fn done_before(&self) -> Result<u64, FrontierError> {
        let s = self.frontier.stats().await?;
        Ok(s.seen.saturating_sub(s.queued + s.leased))
    }
}

impl FrontierSpec {
    /// A memory frontier with the given host limit.
    pub fn memory(host_limit: usize) -> FrontierSpec {
        FrontierSpec {
            kind: FrontierKind::Memory,
            host_limit,
            host_delay: Duration::ZERO,
            near_distance: trawl_traps::index::DEFAULT_DISTANCE,
        }
    }

    /// Open a memory or disk frontier.
    pub async fn open_local(&self, start: DiskStart) -> Result<Opened, OpenError> {
        let dir = match &self.kind {
            FrontierKind::Memory => {
                return Ok(Opened {
                    frontier: Arc::new(MemoryFrontier::new(self.host_limit)),
                    index: None,
                    checkpoint: None,
                    resumed: Resumed::Fresh,
                });
            }
            FrontierKind::Disk { dir } => dir,
            FrontierKind::Redis { .. } => return Err(OpenError::NotLocal("a Redis frontier")),
        };
        let shown = dir.display().to_string();
        let disk = DiskFrontier::open(dir, self.host_limit).map_err(|source| OpenError::Disk {
            dir: shown.clone(),
            source,
        })?;
        let index: Option<Arc<dyn trawl_traps::ContentIndex>> = Some(Arc::new(
            disk.content_index(self.near_distance)
                .map_err(|e| OpenError::Disk {
                    dir: shown.clone(),
                    source: FrontierError::Storage(e.to_string()),
                })?,
        ));
        if let DiskStart::Recrawl { due_at } = start {
            let queued = disk.begin_recrawl(due_at).await?;
            return Ok(Opened {
                frontier: Arc::new(disk),
                index,
                checkpoint: None,
                resumed: Resumed::Recrawl { queued },
            });
        }
        if !disk.is_resumed() {
            if start == DiskStart::Resume {
                return Err(OpenError::NothingToResume { dir: shown });
            }
            return Ok(Opened {
                frontier: Arc::new(disk),
                index,
                checkpoint: None,
                resumed: Resumed::Fresh,
            });
        }
        let stats = disk.stats().await?;
        let checkpoint = disk.checkpoint().await?.unwrap_or_else(|| b"{}".to_vec());
        Ok(Opened {
            frontier: Arc::new(disk),
            index,
            checkpoint: Some(checkpoint),
            resumed: Resumed::Resumed {
                seen: stats.seen,
                queued: stats.queued,
            },
        })
    }

    /// Connect to a Redis frontier.
    pub async fn connect_redis(&self) -> Result<Arc<RedisFrontier>, OpenError> {
        let FrontierKind::Redis {
            url,
            crawl,
            worker_id,
            lease_timeout,
            seen,
        } = &self.kind
        else {
            return Err(OpenError::NotLocal("not a Redis frontier"));
        };
        let mut cfg = RedisFrontierConfig::new(url.clone(), crawl.clone());
        if let Some(id) = worker_id {
            cfg.worker_id = id.clone();
        }
        cfg.host_limit = self.host_limit;
        cfg.host_delay = self.host_delay;
        cfg.lease_timeout = *lease_timeout;
        cfg.seen = *seen;
        let frontier = RedisFrontier::connect(cfg)
            .await
            .map_err(|source| OpenError::Redis {
                url: url.clone(),
                crawl: crawl.clone(),
                source,
            })?;
        Ok(Arc::new(frontier))
    }
}
