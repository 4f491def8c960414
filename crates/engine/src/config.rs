//! Crawl settings.

use std::path::PathBuf;
use std::time::Duration;

use trawl_core::{ScopeConfig, Url};
use trawl_fetch::FetchConfig;

/// Everything a crawl needs besides its frontier and sinks.
#[derive(Debug, Clone)]
pub struct CrawlConfig {
    pub seeds: Vec<Url>,
    /// Requests in flight at once, across all hosts.
    pub concurrency: usize,
    pub fetch: FetchConfig,
    pub scope: ScopeConfig,
    /// Links found at this depth are not followed (seeds are depth 0).
    pub max_depth: Option<u32>,
    /// Stop leasing after this many requests.
    pub max_pages: Option<u64>,
    /// Fetch at most this many pages of one host.
    pub max_pages_per_host: Option<u64>,
    /// Parse worker threads (default: one per core).
    pub parse_threads: usize,
    /// Seed from the sitemaps listed in robots.txt (or /sitemap.xml).
    pub sitemaps: bool,
    /// Items per sink batch.
    pub batch_size: usize,
    /// Retries, queues and the dead-letter directory of the sinks.
    pub sinks: SinkOptions,
    /// Offer the seeds to the frontier at start. Workers joining a shared
    /// crawl only use them for the scope.
    pub push_seeds: bool,
    /// Browser tabs for rendered pages; none: pages are never rendered
    /// (whatever `fetch.render` and the requests say).
    pub render: Option<trawl_render::RenderConfig>,
    /// Where screenshots and PDFs of rendered pages are written.
    pub render_dir: std::path::PathBuf,
    /// Duplicates, near-duplicates, traps and revisits.
    pub duplicates: DuplicateConfig,
}

/// What a crawl does about pages it has seen before.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateConfig {
    /// SimHash bits within which two pages are near-duplicates.
    pub near_distance: u32,
    /// What happens to duplicates' items and links.
    pub policy: DuplicatePolicy,
    /// When a URL pattern is a crawler trap.
    pub traps: trawl_traps::TrapConfig,
    /// When a page is visited again (`--recrawl --due`).
    pub revisit: trawl_traps::RevisitPolicy,
}

impl Default for DuplicateConfig {
    fn default() -> Self {
        DuplicateConfig {
            near_distance: trawl_traps::index::DEFAULT_DISTANCE,
            policy: DuplicatePolicy::Keep,
            traps: trawl_traps::TrapConfig::default(),
            revisit: trawl_traps::RevisitPolicy::default(),
        }
    }
}

/// The `duplicates` setting: what happens to a page that duplicates (or
/// nearly duplicates) an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicatePolicy {
    /// Write its item (saying `duplicate_of` / `near_duplicate_of`) and
    /// follow its links.
    #[default]
    Keep,
    /// Do not write its item; follow its links.
    SkipItems,
    /// Write its item; do not follow its links.
    SkipLinks,
    /// Neither.
    Skip,
    /// No SimHash and no duplicate index at all (saves their CPU and the
    /// index's memory, ~100 bytes a page); trap detection then sees no
    /// duplicates either, and revisits tell only unchanged from changed.
    Off,
}

impl DuplicatePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicatePolicy::Keep => "keep",
            DuplicatePolicy::SkipItems => "skip-items",
            DuplicatePolicy::SkipLinks => "skip-links",
            DuplicatePolicy::Skip => "skip",
            DuplicatePolicy::Off => "off",
        }
    }
}

impl std::fmt::Display for DuplicatePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DuplicatePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keep" => Ok(DuplicatePolicy::Keep),
            "skip-items" => Ok(DuplicatePolicy::SkipItems),
            "skip-links" => Ok(DuplicatePolicy::SkipLinks),
            "skip" => Ok(DuplicatePolicy::Skip),
            "off" => Ok(DuplicatePolicy::Off),
            other => Err(format!(
                "unknown duplicates policy {other:?} (keep, skip-items, skip-links, skip or off)"
            )),
        }
    }
}

impl Default for CrawlConfig {
    fn default() -> Self {
        CrawlConfig {
            seeds: Vec::new(),
            concurrency: 64,
            fetch: FetchConfig::default(),
            scope: ScopeConfig::default(),
            max_depth: None,
            max_pages: None,
            max_pages_per_host: None,
            parse_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            sitemaps: false,
            batch_size: 256,
            sinks: SinkOptions::default(),
            push_seeds: true,
            render: None,
            render_dir: std::path::PathBuf::from("renders"),
            duplicates: DuplicateConfig::default(),
        }
    }
}

/// How the sink stage treats its sinks.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Write attempts per batch before the batch goes to the dead-letter file.
    pub attempts: u32,
    /// First wait between attempts; doubles each time, with ±25% jitter.
    pub backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Batches waiting in each sink's queue before the crawl waits for it.
    pub queue_batches: usize,
    /// Where batches a sink gave up on are written (one JSONL file per sink).
    pub dead_letter_dir: PathBuf,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            // 0.25 + 0.5 + 1 + 2 + 4 + 8 + 10 s: rides out a database restart.
            attempts: 8,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            queue_batches: 4,
            dead_letter_dir: PathBuf::from("dead-letter"),
        }
    }
}
