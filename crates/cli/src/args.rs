//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "trawl",
    version,
    about = "A fast, polite web crawler and scraper."
)]
pub struct Cli {
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Crawl from seed URLs and write one JSON item per page.
    Crawl(CrawlArgs),
    /// Serve the built-in test site on loopback and crawl it (works offline).
    Demo(DemoArgs),
    /// Run a declarative spider file (TOML): items instead of page records.
    Run(RunArgs),
    /// Check a spider file without crawling.
    Check(CheckArgs),
    /// Fetch one page and print what can be extracted from it: the quick way
    /// to develop a rule.
    Scrape(ScrapeArgs),
    /// Join a distributed crawl seeded with `trawl crawl --redis URL --crawl NAME`.
    Worker(WorkerArgs),
    /// Show a distributed crawl's queues, leases, workers and progress.
    Status(StatusArgs),
}

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub opts: CrawlOpts,
    /// How long to wait for the crawl to be seeded.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub wait_for_seed: std::time::Duration,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The spider file.
    pub spider: PathBuf,
    /// Where error records go (required fields missing, pages that failed);
    /// default: the file's `settings.errors`, else NAME-errors.jsonl.
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// Crawl options; the spider file's `[settings]` fill in those left at their defaults.
    #[command(flatten)]
    pub opts: CrawlOpts,
}

#[derive(Args, Debug, Clone)]
pub struct ScrapeArgs {
    /// The page to fetch.
    pub url: String,
    /// A field to extract: `name=css`, `name=css@attr`, `name=css::html`,
    /// with an optional type: `price:number=span.price` (string, number,
    /// integer, bool, date, list). Repeatable.
    #[arg(long = "select", short = 's')]
    pub select: Vec<String>,
    /// json (fields plus JSON-LD, OpenGraph, Twitter, meta, microdata),
    /// markdown or text (the main content).
    #[arg(long, default_value = "json", value_parser = ["json", "markdown", "text"])]
    pub format: String,
    /// Also show, on stderr, what each selector matched.
    #[arg(long)]
    pub explain: bool,
    /// Apply this spider file's rules to the page and show which matched:
    /// the items and error records it yields and the links it follows.
    #[arg(long)]
    pub spider: Option<PathBuf>,
    /// Do not fetch or obey robots.txt.
    #[arg(long)]
    pub ignore_robots: bool,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub timeout: std::time::Duration,
    /// Render the page in headless Chromium before extracting.
    #[arg(long)]
    pub render: bool,
    /// With --render: wait until this CSS selector matches.
    #[arg(long, value_name = "SELECTOR", requires = "render")]
    pub wait_for: Option<String>,
    /// With --render: write a full-page PNG here.
    #[arg(long, value_name = "FILE", requires = "render")]
    pub screenshot: Option<PathBuf>,
    /// The Chromium executable (default: $TRAWL_CHROMIUM, else `chromium`
    /// on PATH).
    #[arg(long, value_name = "PATH")]
    pub chromium: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// The spider file.
    pub spider: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// Redis URL of the crawl.
    #[arg(long, required = true)]
    pub redis: String,
    /// Crawl name.
    #[arg(long, default_value = "default")]
    pub crawl: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CrawlArgs {
    /// Seed URLs.
    #[arg(required = true)]
    pub seeds: Vec<String>,
    #[command(flatten)]
    pub opts: CrawlOpts,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Pages in the generated site.
    #[arg(long, default_value_t = 2000)]
    pub pages: usize,
    /// Links per page.
    #[arg(long, default_value_t = 20)]
    pub fanout: usize,
    /// Include the fault routes (redirect loops, resets, traps, huge bodies…).
    #[arg(long)]
    pub nasty: bool,
    #[command(flatten)]
    pub opts: CrawlOpts,
}

#[derive(Args, Debug, Clone)]
pub struct CrawlOpts {
    /// The options given on the command line (or by environment), by
    /// argument id (the field's name): a spider file's `[settings]` do not
    /// override them.
    #[arg(skip)]
    pub given: std::collections::BTreeSet<String>,
    /// Output JSONL file ("-" for stdout).
    #[arg(short, long, default_value = "-")]
    pub output: PathBuf,
    /// Append to the output file instead of truncating it.
    #[arg(long)]
    pub append: bool,
    /// Another output, as TYPE:TARGET[,option…] (repeatable):
    /// `jsonl:FILE`, `csv:FILE[,gzip][,rotate_rows=N][,rotate_bytes=N]`,
    /// `warc:DIR[,rotate_bytes=N][,items=false]`,
    /// `postgres://USER@HOST/DB[,table=T][,key=FIELD][,mode=rows]`.
    /// With --sink, `-o` left at stdout writes nothing.
    #[arg(long, value_name = "SPEC")]
    pub sink: Vec<String>,
    /// Where a sink that gives up on a batch writes its items (one JSONL
    /// file per sink).
    #[arg(long, default_value = "dead-letter")]
    pub dead_letter: PathBuf,
    /// Write attempts per batch and sink before it goes to the dead-letter file.
    #[arg(long, default_value_t = 8)]
    pub sink_attempts: u32,
    /// First wait between two attempts; doubles each time (at most 10s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "250ms")]
    pub sink_backoff: std::time::Duration,
    /// Items per sink batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Requests in flight at once, across all hosts.
    #[arg(short, long, default_value_t = 64, value_parser = at_least_one)]
    pub concurrency: usize,
    /// Requests in flight at once per host (per exit, with proxies).
    #[arg(long, default_value_t = 2, value_parser = at_least_one)]
    pub per_host: usize,
    /// Minimum delay between requests to one host, e.g. "500ms" (robots.txt Crawl-delay may raise it).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub delay: std::time::Duration,
    /// Which URLs to follow: host, domain, prefix or any.
    #[arg(long, default_value = "host")]
    pub scope: trawl_core::ScopeMode,
    /// Only follow URLs matching one of these regexes.
    #[arg(long)]
    pub include: Vec<String>,
    /// Never follow URLs matching one of these regexes.
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Do not follow links found deeper than this (seeds are depth 0).
    #[arg(long)]
    pub max_depth: Option<u32>,
    /// Stop after this many fetched pages, counted per crawl (a crawl
    /// resumed from --state counts what earlier runs fetched).
    #[arg(long)]
    pub max_pages: Option<u64>,
    /// Fetch at most this many pages per host.
    #[arg(long, default_value_t = 100_000)]
    pub max_pages_per_host: u64,
    /// Ignore URLs longer than this.
    #[arg(long, default_value_t = 2048)]
    pub max_url_len: usize,
    /// Do not fetch or obey robots.txt.
    #[arg(long)]
    pub ignore_robots: bool,
    /// Also seed from the sitemaps listed in robots.txt (or /sitemap.xml).
    #[arg(long)]
    pub sitemaps: bool,
    /// User-Agent header.
    #[arg(long)]
    pub user_agent: Option<String>,
    /// Rotate browser identities: a User-Agent with its matching headers
    /// (Accept, Accept-Language, client hints), one per session with
    /// --sessions, else one per request. `builtin` (8 desktop and mobile
    /// browsers) or a file with one User-Agent per line.
    #[arg(long, value_name = "builtin|FILE")]
    pub user_agents: Option<String>,
    /// User-Agents given by a spider file's settings.
    #[arg(skip)]
    pub user_agent_list: Vec<String>,
    /// Send this header with every request, "Name: value" (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Send requests through this proxy (repeatable): http://, https://,
    /// socks5:// or socks5h://, with user:password@ if needed. Also read
    /// from --proxy-file and the TRAWL_PROXIES variable (comma-separated).
    #[arg(long = "proxy", value_name = "URL")]
    pub proxies: Vec<String>,
    /// A file of proxies, one per line (URL, host:port or host:port:user:pass).
    #[arg(long, value_name = "FILE")]
    pub proxy_file: Option<PathBuf>,
    /// A named proxy pool that --host-pool (or a spider rule's proxy_pool)
    /// can choose: NAME=URL[,URL…] or NAME=@FILE (repeatable; the same
    /// NAME again adds proxies).
    #[arg(long = "proxy-pool", value_name = "NAME=URLS")]
    pub proxy_pools: Vec<String>,
    /// Requests to these hosts go through this pool: PATTERN=POOL, where
    /// PATTERN is host, host:port, *.domain or *, and POOL a --proxy-pool
    /// name, `direct` (no proxy) or `default` (the --proxy list). The
    /// first match wins (repeatable).
    #[arg(long = "host-pool", value_name = "PATTERN=POOL")]
    pub host_pools: Vec<String>,
    /// Pools and host rules from a spider file.
    #[arg(skip)]
    pub spider_pools: Vec<trawl_fetch::proxy::NamedPool>,
    #[arg(skip)]
    pub spider_host_pools: Vec<trawl_fetch::proxy::HostRule>,
    /// The spider file's crawl-wide `render` (`--render` wins).
    #[arg(skip)]
    pub spider_render: Option<trawl_core::RenderSpec>,
    /// Some rule of the spider file renders: the crawl needs a browser.
    #[arg(skip)]
    pub spider_renders: bool,
    /// How requests are spread over the proxies.
    #[arg(
        long,
        default_value = "round-robin",
        value_name = "round-robin|random|least-used|least-latency"
    )]
    pub proxy_strategy: String,
    /// Sticky sessions: N sessions, each keeping one proxy, one cookie jar
    /// and one identity until it is banned or used up (Crawlee's SessionPool).
    #[arg(long, value_name = "N")]
    pub sessions: Option<usize>,
    /// Requests per session before it is replaced.
    #[arg(long, default_value_t = 50)]
    pub session_max_uses: u32,
    /// Statuses that mean "banned" (with proxies or sessions). A 429, a
    /// 503 with Retry-After and an exhausted RateLimit quota are rate
    /// limits, not bans: the exit is paced down for that host, never
    /// cooled down.
    #[arg(long = "ban-status", value_delimiter = ',', default_values_t = [403u16, 503])]
    pub ban_statuses: Vec<u16>,
    /// A body matching this regex (case-insensitive) means "banned"
    /// (repeatable). Default: block-page titles and headings (CAPTCHA, "are
    /// you a robot", "robot check", "access denied", "attention required",
    /// …), phrases only block pages use, and DataDome, PerimeterX,
    /// Cloudflare and Incapsula challenge markers; a reCAPTCHA embedded in
    /// an ordinary page is not a ban.
    #[arg(long = "ban-pattern", value_name = "REGEX")]
    pub ban_patterns: Vec<String>,
    /// A 200 body shorter than this many bytes means "banned".
    #[arg(long, value_name = "BYTES")]
    pub ban_min_body: Option<usize>,
    /// First cooldown of a banned proxy (per host) or a failed one; doubles
    /// with each consecutive ban, up to 10 minutes.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub proxy_cooldown: std::time::Duration,
    /// Tries of one request on other proxies/sessions after bans.
    #[arg(long, default_value_t = 8)]
    pub proxy_attempts: u32,
    /// Do not pace exits: by default each exit (a proxy, or this machine
    /// for direct requests) × host pair finds the rate the site allows
    /// (slow start, then additive increase and multiplicative decrease on
    /// 429s, Retry-After, RateLimit headers and latency climbs).
    #[arg(long)]
    pub no_pacing: bool,
    /// Tries of one request after rate-limit answers (429, …), each
    /// through the first exit ready for the host.
    #[arg(long, default_value_t = 10)]
    pub rate_limit_retries: u32,
    /// Render pages in headless Chromium: `never`, `auto` (plain HTTP
    /// first; rendered only when the page needs it: a required selector
    /// missing, an almost empty body with scripts, an empty app mount, a
    /// `<noscript>` asking for JavaScript) or `always`. Spider rules may
    /// set their own.
    #[arg(long, default_value = "never", value_name = "never|auto|always")]
    pub render: trawl_core::RenderMode,
    /// Browser tabs rendering at once (apart from --concurrency).
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = at_least_one)]
    pub render_tabs: usize,
    /// Deadline of one rendered page (waits and actions included).
    #[arg(long, value_parser = positive_duration, default_value = "30s")]
    pub render_timeout: std::time::Duration,
    /// Wait until this CSS selector matches before taking the DOM.
    #[arg(long, value_name = "SELECTOR")]
    pub wait_for: Option<String>,
    /// Wait until no request has been in flight this long (e.g. 500ms).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub network_idle: Option<std::time::Duration>,
    /// Also block stylesheets (images, media and fonts are always blocked).
    #[arg(long)]
    pub block_stylesheets: bool,
    /// Block requests to hosts other than the page's.
    #[arg(long)]
    pub block_third_party: bool,
    /// A full-page PNG of each rendered page (in --render-dir; the item's
    /// `_screenshot` names it).
    #[arg(long)]
    pub screenshots: bool,
    /// A PDF of each rendered page (`_pdf`).
    #[arg(long)]
    pub pdfs: bool,
    /// Where screenshots and PDFs go.
    #[arg(long, default_value = "renders", value_name = "DIR")]
    pub render_dir: PathBuf,
    /// The browser is restarted when all its processes together use more
    /// memory than this (e.g. 2GiB).
    #[arg(long, value_parser = byte_size, default_value = "2GiB", value_name = "SIZE")]
    pub render_memory: usize,
    /// The Chromium executable (default: $TRAWL_CHROMIUM, else `chromium`
    /// on PATH).
    #[arg(long, value_name = "PATH")]
    pub chromium: Option<PathBuf>,
    /// AutoThrottle: each host's delay follows its latency toward
    /// --autothrottle-target requests in flight, and backs off on 429/503.
    #[arg(long)]
    pub autothrottle: bool,
    /// Average requests in flight AutoThrottle aims at per host.
    #[arg(long, default_value_t = 2.0)]
    pub autothrottle_target: f64,
    /// Longest delay AutoThrottle may set.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub autothrottle_max_delay: std::time::Duration,
    /// Time limit for one HTTP exchange, e.g. "30s".
    #[arg(long, value_parser = positive_duration, default_value = "30s")]
    pub timeout: std::time::Duration,
    #[arg(long, value_parser = positive_duration, default_value = "10s")]
    pub connect_timeout: std::time::Duration,
    /// Stop reading a body after this many bytes and mark the page
    /// truncated: a number of bytes, or with a unit (`512KiB`, `10MiB`,
    /// `1GB`).
    #[arg(long, default_value = "10MiB", value_parser = byte_size)]
    pub max_body: usize,
    /// Also trust the CA certificate(s) in this PEM file for HTTPS, on top
    /// of the system's roots (repeatable).
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Retries for timeouts, resets, 5xx and 429.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Longest Retry-After honoured.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub max_retry_after: std::time::Duration,
    /// Parse worker threads (default: one per core).
    #[arg(long)]
    pub parse_threads: Option<usize>,
    /// Write the final statistics as JSON to this file.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Keep the crawl state (queue, seen URLs, output checkpoint) in this
    /// directory; run the same command again to resume after a crash or stop.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Revisit every URL the --state crawl fetched, with conditional GETs
    /// (ETag / Last-Modified); unchanged pages answer 304 and are counted.
    #[arg(long, requires = "state", conflicts_with = "resume")]
    pub recrawl: bool,
    /// Require that --state holds a crawl to resume (fail instead of starting afresh).
    #[arg(long, requires = "state")]
    pub resume: bool,
    /// Share the crawl through this Redis (`redis://host:port`): any number
    /// of `trawl worker` processes on any machines join it.
    #[arg(long, conflicts_with = "state")]
    pub redis: Option<String>,
    /// Name of the distributed crawl (its keys are `trawl:{NAME}:*`).
    #[arg(long, default_value = "default")]
    pub crawl: String,
    /// Start the distributed crawl NAME afresh, deleting its previous state.
    #[arg(long, requires = "redis")]
    pub fresh: bool,
    /// This worker's id (default: hostname-pid-random). Reusing the id of a
    /// killed worker with the same output file resumes its output exactly.
    #[arg(long)]
    pub worker_id: Option<String>,
    /// A lease not renewed for this long returns to the queue (dead worker).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub lease_timeout: std::time::Duration,
    /// No progress line and no summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the progress line even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

/// A size in bytes: `1048576`, `512KiB`, `10MiB`, `1GB`, `64k` (K/M/G
/// alone are binary, like `ls -h`; kB/MB/GB decimal; KiB/MiB/GiB binary).
fn byte_size(value: &str) -> Result<usize, String> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a size (e.g. 10MiB, 512KiB, 1048576)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (B, kB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    let bytes = number * factor;
    if !(1.0..=usize::MAX as f64).contains(&bytes) {
        return Err(format!("{value:?} must be at least 1 byte"));
    }
    Ok(bytes as usize)
}

/// A count that must be at least 1 (`-c 0` would crawl nothing, forever).
fn at_least_one(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A duration that must be above zero (a zero timeout fails every request).
fn positive_duration(value: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be more than zero (e.g. 30s)".to_string());
    }
    Ok(d)
}
