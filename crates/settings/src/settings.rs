//! The settings themselves: one flat table of named, typed values.
//!
//! Every key is also a command-line flag (`per_host` is `--per-host`) and
//! an environment variable (`TRAWL_PER_HOST`); a spider file's
//! `[settings]`, a `--config` file and an API job's JSON use the same
//! names. Where Scrapy has a name for the same thing, it is accepted as an
//! alias (`download_delay` for `delay`), see [`ALIASES`].

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use trawl_core::{RenderMode, RenderSpec, ScopeMode};
use trawl_fetch::proxy::Strategy;

use crate::values::{self, ByteSize, duration, opt_duration, word};

/// Every crawl setting, with its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    // --- Crawl -----------------------------------------------------------
    /// Requests in flight at once, across all hosts.
    #[serde(
        alias = "concurrent_requests",
        deserialize_with = "values::at_least_one"
    )]
    pub concurrency: usize,
    /// Requests in flight at once per host (per exit, with proxies).
    #[serde(
        alias = "concurrent_requests_per_domain",
        deserialize_with = "values::at_least_one"
    )]
    pub per_host: usize,
    /// Minimum delay between requests to one host (robots.txt
    /// Crawl-delay may raise it).
    #[serde(alias = "download_delay", with = "duration")]
    pub delay: Duration,
    /// Which URLs to follow: host, domain, prefix or any.
    #[serde(with = "word")]
    pub scope: ScopeMode,
    /// Only follow URLs matching one of these regexes.
    #[serde(deserialize_with = "values::regexes")]
    pub include: Vec<String>,
    /// Never follow URLs matching one of these regexes.
    #[serde(deserialize_with = "values::regexes")]
    pub exclude: Vec<String>,
    /// Do not follow links found deeper than this (seeds are depth 0).
    #[serde(alias = "depth_limit", skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
    /// Stop after this many fetched pages, counted per crawl (a crawl
    /// resumed from `state` counts what earlier runs fetched).
    #[serde(
        alias = "closespider_pagecount",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_pages: Option<u64>,
    /// Fetch at most this many pages per host.
    pub max_pages_per_host: u64,
    /// Ignore URLs longer than this.
    pub max_url_len: usize,
    /// Fetch and obey robots.txt (`--ignore-robots` turns it off).
    #[serde(alias = "robotstxt_obey")]
    pub obey_robots: bool,
    /// Also seed from the sitemaps listed in robots.txt (or /sitemap.xml).
    pub sitemaps: bool,
    /// Parse worker threads (default: one per core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_threads: Option<usize>,

    // --- HTTP ------------------------------------------------------------
    /// The User-Agent header (default: trawl's own, naming its version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Rotate browser identities (a User-Agent with its matching headers):
    /// `"builtin"` (8 desktop and mobile browsers), a file with one
    /// User-Agent per line, or a list of User-Agents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agents: Option<UserAgents>,
    /// Headers sent with every request, after the identity's.
    #[serde(deserialize_with = "values::headers")]
    pub headers: IndexMap<String, String>,
    /// Time limit for one HTTP exchange.
    #[serde(
        alias = "download_timeout",
        serialize_with = "duration::serialize",
        deserialize_with = "duration::positive"
    )]
    pub timeout: Duration,
    /// Time limit for opening a connection (TCP and TLS).
    #[serde(
        serialize_with = "duration::serialize",
        deserialize_with = "duration::positive"
    )]
    pub connect_timeout: Duration,
    /// Stop reading a body after this many bytes and mark the page
    /// truncated.
    #[serde(alias = "download_maxsize")]
    pub max_body: ByteSize,
    /// Also trust the CA certificates in these PEM files for HTTPS.
    pub ca_certs: Vec<PathBuf>,
    /// Retries for timeouts, resets, 5xx and 429.
    #[serde(alias = "retry_times")]
    pub retries: u32,
    /// Longest Retry-After honoured.
    #[serde(with = "duration")]
    pub max_retry_after: Duration,

    // --- Politeness and pacing -------------------------------------------
    /// AutoThrottle: each host's delay follows its latency toward
    /// `autothrottle_target` requests in flight, and backs off on 429/503.
    #[serde(alias = "autothrottle_enabled")]
    pub autothrottle: bool,
    /// Average requests in flight AutoThrottle aims at per host.
    #[serde(alias = "autothrottle_target_concurrency")]
    pub autothrottle_target: f64,
    /// Longest delay AutoThrottle may set.
    #[serde(with = "duration")]
    pub autothrottle_max_delay: Duration,
    /// Pace each exit × host pair at the rate the site allows (slow start,
    /// then AIMD on 429s, Retry-After, RateLimit headers and latency
    /// climbs); `--no-pacing` turns it off.
    pub pacing: bool,
    /// Tries of one request after rate-limit answers, each through the
    /// first exit ready for the host.
    pub rate_limit_retries: u32,

    // --- Proxies, sessions, bans ------------------------------------------
    /// Send requests through these proxies: `http://`, `https://`,
    /// `socks5://` or `socks5h://` URLs with `user:password@` if needed.
    #[serde(deserialize_with = "values::proxies")]
    pub proxies: Vec<String>,
    /// A file of proxies, one per line (URL, host:port or
    /// host:port:user:pass); reloaded when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_file: Option<PathBuf>,
    /// How requests are spread over the proxies: round-robin, random,
    /// least-used or least-latency.
    #[serde(with = "word")]
    pub proxy_strategy: Strategy,
    /// Named proxy pools that `host_pools` (or a spider rule's
    /// `proxy_pool`) can choose.
    pub proxy_pools: IndexMap<String, PoolSettings>,
    /// Requests to hosts matching a pattern (host, host:port, *.domain or
    /// *) go through a pool: a `proxy_pools` name, `direct` or `default`.
    /// The first match wins.
    #[serde(deserialize_with = "values::host_pools")]
    pub host_pools: IndexMap<String, String>,
    /// Sticky sessions: N sessions, each keeping one proxy, one cookie jar
    /// and one identity until it is banned or used up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
    /// Requests per session before it is replaced.
    pub session_max_uses: u32,
    /// Statuses that mean "banned" (with proxies or sessions).
    pub ban_statuses: Vec<u16>,
    /// A body matching one of these regexes (case-insensitive) means
    /// "banned"; empty: the built-in block-page and challenge markers.
    #[serde(deserialize_with = "values::regexes")]
    pub ban_patterns: Vec<String>,
    /// A 200 body shorter than this many bytes means "banned".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban_min_body: Option<usize>,
    /// First cooldown of a banned or failed proxy; doubles with each
    /// consecutive ban, up to 10 minutes.
    #[serde(with = "duration")]
    pub proxy_cooldown: Duration,
    /// Tries of one request on other proxies or sessions after bans.
    pub proxy_attempts: u32,

    // --- Rendering -------------------------------------------------------
    /// How pages are rendered in headless Chromium: `"never"`, `"auto"`,
    /// `"always"`, or a table with `mode` and the options of a spider
    /// file's `render`.
    pub render: RenderSetting,
    /// Browser tabs rendering at once (apart from `concurrency`).
    #[serde(deserialize_with = "values::at_least_one")]
    pub render_tabs: usize,
    /// Deadline of one rendered page (waits and actions included).
    #[serde(
        serialize_with = "duration::serialize",
        deserialize_with = "duration::positive"
    )]
    pub render_timeout: Duration,
    /// Wait until this CSS selector matches before taking the DOM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<String>,
    /// Wait until no request has been in flight this long.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub network_idle: Option<Duration>,
    /// Also block stylesheets (images, media and fonts always are).
    pub block_stylesheets: bool,
    /// Block requests to hosts other than the page's.
    pub block_third_party: bool,
    /// A full-page PNG of each rendered page, in `render_dir`.
    pub screenshots: bool,
    /// A PDF of each rendered page, in `render_dir`.
    pub pdfs: bool,
    /// Where screenshots and PDFs go.
    pub render_dir: PathBuf,
    /// Restart the browser when all its processes together use more
    /// memory than this.
    pub render_memory: ByteSize,
    /// The Chromium executable (default: `chromium` on PATH).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chromium: Option<PathBuf>,

    // --- Outputs ---------------------------------------------------------
    /// The JSONL output (`-` is standard output; left at `-` while
    /// `sinks` are given, it writes nothing).
    pub output: PathBuf,
    /// Append to the output files instead of truncating them.
    pub append: bool,
    /// More outputs: `TYPE:TARGET[,option…]` strings as `--sink` takes
    /// them, or tables as a spider file's `[[sinks]]`.
    pub sinks: Vec<SinkSetting>,
    /// Where a spider's error records go (default: NAME-errors.jsonl).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<PathBuf>,
    /// Where a sink that gives up on a batch writes its items.
    pub dead_letter: PathBuf,
    /// Write attempts per batch and sink before it goes to the dead-letter
    /// file.
    #[serde(deserialize_with = "values::at_least_one")]
    pub sink_attempts: usize,
    /// First wait between two attempts; doubles each time (at most 10s).
    #[serde(with = "duration")]
    pub sink_backoff: Duration,
    /// Items per sink batch.
    #[serde(deserialize_with = "values::at_least_one")]
    pub batch_size: usize,

    // --- Duplicates, traps, revisits ---------------------------------------
    /// What happens to a page that repeats an earlier one (same body:
    /// `duplicate_of`; text within `near_duplicate_distance`:
    /// `near_duplicate_of`): keep (write it, follow its links), skip-items,
    /// skip-links, skip (neither), or off (no duplicate index).
    #[serde(with = "word")]
    pub duplicates: trawl_engine::DuplicatePolicy,
    /// SimHash bits (0 to 7) within which two pages' text counts as
    /// near-duplicate.
    #[serde(deserialize_with = "values::near_distance")]
    pub near_duplicate_distance: u32,
    /// Detect crawler traps: a URL pattern whose pages keep repeating
    /// earlier ones while linking to new URLs of their own kind is no
    /// longer followed (`--no-traps` turns it off).
    pub traps: bool,
    /// Pages of one URL pattern judged together.
    #[serde(deserialize_with = "values::at_least_one_u32")]
    pub trap_window: u32,
    /// Share of a window's pages that must be duplicates for a trap.
    #[serde(deserialize_with = "values::share")]
    pub trap_duplicate_rate: f64,
    /// Share of those duplicates' new links that must be of their own
    /// kind (same directory pattern) for a trap.
    #[serde(deserialize_with = "values::share")]
    pub trap_own_links: f64,
    /// Revisit interval of a page after its first visit (`--recrawl
    /// --due`); it doubles while the page stays unchanged and halves when
    /// it changes.
    #[serde(
        serialize_with = "duration::serialize",
        deserialize_with = "duration::positive"
    )]
    pub revisit_interval: Duration,
    /// Shortest revisit interval.
    #[serde(
        serialize_with = "duration::serialize",
        deserialize_with = "duration::positive"
    )]
    pub revisit_min: Duration,
    /// Longest revisit interval.
    #[serde(
        serialize_with = "duration::serialize",
        deserialize_with = "duration::positive"
    )]
    pub revisit_max: Duration,

    // --- Frontier --------------------------------------------------------
    /// Keep the crawl state (queue, seen URLs, output checkpoint) in this
    /// directory; the same command resumes after a crash or stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<PathBuf>,
    /// Share the crawl through this Redis (`redis://host:port`), several
    /// (`redis://a:6379,redis://b:6379`) or a Redis Cluster
    /// (`redis-cluster://host:port[?shards=N]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// Name of the distributed crawl (its keys are `trawl:{NAME}:*`).
    pub crawl: String,
    /// This worker's id (default: hostname-pid-random).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// A lease not renewed for this long returns to the queue.
    #[serde(with = "duration")]
    pub lease_timeout: Duration,
    /// How a distributed crawl remembers queued URLs: `exact` (a Redis
    /// set, ~45 bytes per URL) or `bloom:EXPECTED[:ERROR]` (a Bloom filter,
    /// ~1.8 bytes per URL at 0.001; that share of URLs is never fetched).
    /// Chosen by the process that creates the crawl.
    pub seen_set: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 64,
            per_host: 2,
            delay: Duration::ZERO,
            scope: ScopeMode::Host,
            include: Vec::new(),
            exclude: Vec::new(),
            max_depth: None,
            max_pages: None,
            max_pages_per_host: 100_000,
            max_url_len: 2048,
            obey_robots: true,
            sitemaps: false,
            parse_threads: None,
            user_agent: None,
            user_agents: None,
            headers: IndexMap::new(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_body: ByteSize(10 << 20),
            ca_certs: Vec::new(),
            retries: 3,
            max_retry_after: Duration::from_secs(60),
            autothrottle: false,
            autothrottle_target: 2.0,
            autothrottle_max_delay: Duration::from_secs(60),
            pacing: true,
            rate_limit_retries: 10,
            proxies: Vec::new(),
            proxy_file: None,
            proxy_strategy: Strategy::RoundRobin,
            proxy_pools: IndexMap::new(),
            host_pools: IndexMap::new(),
            sessions: None,
            session_max_uses: 50,
            ban_statuses: vec![403, 503],
            ban_patterns: Vec::new(),
            ban_min_body: None,
            proxy_cooldown: Duration::from_secs(30),
            proxy_attempts: 8,
            render: RenderSetting::default(),
            render_tabs: 4,
            render_timeout: Duration::from_secs(30),
            wait_for: None,
            network_idle: None,
            block_stylesheets: false,
            block_third_party: false,
            screenshots: false,
            pdfs: false,
            render_dir: PathBuf::from("renders"),
            render_memory: ByteSize(2 << 30),
            chromium: None,
            output: PathBuf::from("-"),
            append: false,
            sinks: Vec::new(),
            errors: None,
            dead_letter: PathBuf::from("dead-letter"),
            sink_attempts: 8,
            sink_backoff: Duration::from_millis(250),
            batch_size: 256,
            duplicates: trawl_engine::DuplicatePolicy::Keep,
            near_duplicate_distance: 3,
            traps: true,
            trap_window: 32,
            trap_duplicate_rate: 0.8,
            trap_own_links: 0.5,
            revisit_interval: Duration::from_secs(24 * 3600),
            revisit_min: Duration::from_secs(3600),
            revisit_max: Duration::from_secs(30 * 24 * 3600),
            state: None,
            redis: None,
            crawl: "default".to_string(),
            worker_id: None,
            lease_timeout: Duration::from_secs(30),
            seen_set: "exact".to_string(),
        }
    }
}

/// Scrapy's names for trawl's settings, accepted in files, JSON and the
/// environment and read as trawl's (`download_delay = "1s"` is `delay`).
pub const ALIASES: &[(&str, &str)] = &[
    ("concurrent_requests", "concurrency"),
    ("concurrent_requests_per_domain", "per_host"),
    ("download_delay", "delay"),
    ("depth_limit", "max_depth"),
    ("closespider_pagecount", "max_pages"),
    ("robotstxt_obey", "obey_robots"),
    ("download_timeout", "timeout"),
    ("download_maxsize", "max_body"),
    ("retry_times", "retries"),
    ("autothrottle_enabled", "autothrottle"),
    ("autothrottle_target_concurrency", "autothrottle_target"),
];

/// The settings key an alias stands for (a key stands for itself).
pub fn canonical(key: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, name)| name)
}

/// `user_agents`: the built-in identities, a file, or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum UserAgents {
    Builtin,
    File(PathBuf),
    List(Vec<String>),
}

impl Serialize for UserAgents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UserAgents::Builtin => s.serialize_str("builtin"),
            UserAgents::File(path) => path.serialize(s),
            UserAgents::List(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for UserAgents {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected \"builtin\", a file name or a list of User-Agents")
        })? {
            Raw::Text(t) if t == "builtin" => Ok(UserAgents::Builtin),
            Raw::Text(t) if t.trim().is_empty() => {
                Err(serde::de::Error::custom("empty user_agents"))
            }
            Raw::Text(t) => Ok(UserAgents::File(PathBuf::from(t))),
            Raw::List(list) if list.iter().any(|ua| ua.trim().is_empty()) => Err(
                serde::de::Error::custom("an empty User-Agent in user_agents"),
            ),
            Raw::List(list) => Ok(UserAgents::List(list)),
        }
    }
}

impl std::str::FromStr for UserAgents {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" => Err("empty --user-agents".into()),
            "builtin" => Ok(UserAgents::Builtin),
            path => Ok(UserAgents::File(PathBuf::from(path))),
        }
    }
}

/// One named proxy pool.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSettings {
    /// Its proxies.
    #[serde(
        deserialize_with = "values::proxies",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub proxies: Vec<String>,
    /// More proxies from a file, one per line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Its own rotation (default: `proxy_strategy`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_word",
        deserialize_with = "de_opt_strategy"
    )]
    pub strategy: Option<Strategy>,
    /// Requests to these hosts use this pool.
    #[serde(
        deserialize_with = "values::host_patterns",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hosts: Vec<String>,
}

fn opt_word<S: serde::Serializer>(v: &Option<Strategy>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(v.as_str()),
        None => s.serialize_none(),
    }
}

fn de_opt_strategy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Strategy>, D::Error> {
    word::deserialize(d).map(Some)
}

/// `render`: a mode, or a whole render spec.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderSetting(pub RenderSpec);

impl Default for RenderSetting {
    fn default() -> Self {
        RenderSetting(RenderSpec::mode(RenderMode::Never))
    }
}

impl RenderSetting {
    pub fn mode(&self) -> RenderMode {
        self.0.mode
    }
}

impl Serialize for RenderSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == RenderSpec::mode(self.0.mode) {
            self.0.mode.serialize(s)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for RenderSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Mode(String),
            Spec(toml::Table),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected \"never\", \"auto\", \"always\" or a table")
        })? {
            Raw::Mode(mode) => mode
                .parse::<RenderMode>()
                .map(|m| RenderSetting(RenderSpec::mode(m)))
                .map_err(serde::de::Error::custom),
            Raw::Spec(table) => RenderSpec::deserialize(toml::Value::Table(table))
                .map(RenderSetting)
                .map_err(|e| serde::de::Error::custom(e.message())),
        }
    }
}

impl std::str::FromStr for RenderSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<RenderMode>()
            .map(|m| RenderSetting(RenderSpec::mode(m)))
    }
}

/// One output: the `--sink` text form or a table.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkSetting(pub trawl_sink::SinkSpec);

impl Serialize for SinkSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SinkSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Table(toml::Table),
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a sink: \"TYPE:TARGET\" or a table"))?
        {
            Raw::Text(text) => text.parse(),
            Raw::Table(table) => trawl_sink::SinkSpec::deserialize(toml::Value::Table(table))
                .map(SinkSetting)
                .map_err(|e| e.message().to_string()),
        }
        .map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for SinkSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        trawl_sink::SinkSpec::parse_cli(s)
            .map(SinkSetting)
            .map_err(|e| e.to_string())
    }
}
