//! Command-line arguments: the subcommands, the flags that set
//! [`trawl_settings::Settings`] (one flag per key, read into a settings
//! layer by [`crate::flags`]) and the flags that only steer one run.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use trawl_settings::values::{ByteSize, duration, parse_at_least_one};

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
    /// Log lines as text, or as JSON objects (one per line, with the
    /// crawl and worker ids) for log collectors.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: crate::logs::LogFormat,
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
    /// Print the effective settings as TOML, with where each value came
    /// from (default, file, TRAWL_* variable or flag).
    Config(ConfigArgs),
    /// Run the Scraper API: `POST /v1/scrape` takes a URL and answers with
    /// structured data (see the README).
    Serve(ServeArgs),
}

#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// Where the server keeps its API keys (`keys.json`: with a key in
    /// it, every `/v1` call needs `Authorization: Bearer KEY`; without,
    /// the API is open to whoever reaches the port), its crawl jobs
    /// (`jobs/`, resumed after a restart) and its webhook secret.
    #[arg(long, default_value = "trawl-data", value_name = "DIR")]
    pub data: PathBuf,
    /// A settings file (as for `trawl crawl --config`): the proxy pools,
    /// identities and browser of scrapes, and the settings every crawl
    /// job's own go on top of.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0: any free port; the address is
    /// printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Let requests reach loopback and private addresses (tests,
    /// intranets). Off: the address guard refuses them, in every spelling
    /// and after every redirect.
    #[arg(long)]
    pub allow_private: bool,
    /// One address reachable although private (repeatable).
    #[arg(long, value_name = "IP")]
    pub allow_address: Vec<std::net::IpAddr>,
    /// Only this host (and its subdomains) may be reached (repeatable;
    /// none: any host the address guard lets through). Checked before
    /// any name is resolved.
    #[arg(long, value_name = "HOST")]
    pub target_host: Vec<String>,
    /// Do not fetch or obey robots.txt.
    #[arg(long)]
    pub ignore_robots: bool,
    /// Longest a scrape may take (a request may ask for less).
    #[arg(long, value_parser = duration::parse_positive, default_value = "30s")]
    pub timeout: Duration,
    /// Requests per second per key (bursts of as many); beyond: 429 with
    /// Retry-After.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Crawl jobs running at once per key; beyond: 429 with Retry-After.
    #[arg(long, value_name = "N", value_parser = parse_at_least_one)]
    pub max_jobs: Option<usize>,
    /// Scrapes in flight at once per key; beyond: 429 with Retry-After.
    #[arg(long, value_name = "N", value_parser = parse_at_least_one)]
    pub max_scrapes: Option<usize>,
    /// Keep job records and items in this PostgreSQL database (tables
    /// `trawl_api_jobs`, `trawl_api_items`) instead of the data directory.
    #[arg(long, value_name = "POSTGRES_URL")]
    pub store: Option<String>,
    /// Run crawl jobs as distributed crawls on this Redis: the server
    /// works on them, and so does every `trawl worker --redis URL --api`.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Pages per key per period (`10000/day`, `500/hour`, `100/10m`): a
    /// scrape is one page, a job holds its page limit and gives back
    /// what it did not fetch; beyond: 429 with Retry-After.
    #[arg(long, value_name = "PAGES/PERIOD")]
    pub page_quota: Option<trawl_api::limits::Quota>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ServeCommand {
    /// Manage the API keys (only a hash of each is stored).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
        /// The server's data directory.
        #[arg(long, default_value = "trawl-data", value_name = "DIR", global = true)]
        data: PathBuf,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum KeysAction {
    /// Make a key named NAME and print it (once).
    Add {
        name: String,
        /// An admin key: it may also read the server-wide figures
        /// (`/metrics`, `/dashboard`), which show every key's jobs.
        #[arg(long)]
        admin: bool,
    },
    /// List the keys: names, prefixes, creation times.
    List,
    /// Remove the key named NAME.
    Revoke { name: String },
}

#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// A spider file whose `[settings]` to include.
    pub spider: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingsFlags,
}

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub settings: SettingsFlags,
    #[command(flatten)]
    pub run: RunFlags,
    /// How long to wait for the crawl to be seeded.
    #[arg(long, value_parser = duration::parse, default_value = "60s")]
    pub wait_for_seed: Duration,
    /// Work on every crawl job of the Scraper API servers started with
    /// `trawl serve --redis` on this Redis (instead of one `--crawl`).
    #[arg(long)]
    pub api: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The spider file.
    pub spider: PathBuf,
    /// Settings; they override the spider file's `[settings]`.
    #[command(flatten)]
    pub settings: SettingsFlags,
    #[command(flatten)]
    pub run: RunFlags,
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
    #[arg(long, value_parser = duration::parse_positive, default_value = "30s")]
    pub timeout: Duration,
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
    /// Settings to check along with the file's.
    #[command(flatten)]
    pub settings: SettingsFlags,
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// Redis URL of the crawl (as given to `trawl crawl --redis`: one URL,
    /// a list, or `redis-cluster://…`).
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
    pub settings: SettingsFlags,
    #[command(flatten)]
    pub run: RunFlags,
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
    pub settings: SettingsFlags,
    #[command(flatten)]
    pub run: RunFlags,
}

/// Flags that steer one run and are not settings.
#[derive(Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// Print the effective settings (as `trawl config` does) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Write the final statistics as JSON to this file.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Revisit every URL the `--state` crawl fetched, with conditional GETs
    /// (ETag / Last-Modified); unchanged pages answer 304 and are counted.
    #[arg(long, conflicts_with = "resume")]
    pub recrawl: bool,
    /// With `--recrawl`: revisit only the URLs whose revisit interval has
    /// run out (it adapts to how often each page changed: `revisit_*`
    /// settings).
    #[arg(long)]
    pub due: bool,
    /// Require that the `--state` directory holds a crawl to resume (fail
    /// instead of starting afresh).
    #[arg(long)]
    pub resume: bool,
    /// Start the distributed crawl afresh, deleting its previous state.
    #[arg(long)]
    pub fresh: bool,
    /// No progress line and no summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the progress line even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Serve Prometheus metrics (`/metrics`) and a live dashboard
    /// (`/dashboard`) on this address while the crawl runs, e.g.
    /// 127.0.0.1:9898 (port 0: any free port; the address is logged).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Hosts given their own series in the metrics (the slowest first).
    #[arg(long, value_name = "N", default_value_t = trawl_metrics::board::DEFAULT_HOST_SERIES)]
    pub metrics_hosts: usize,
    /// Keep serving the metrics this long after the crawl ends, so that a
    /// Prometheus scrape sees the final figures of a short crawl (SIGINT
    /// or SIGTERM ends the wait).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub metrics_linger: Option<Duration>,
}

/// One flag per setting (`docs/settings.md`): a flag given on the command
/// line overrides the environment (`TRAWL_*`), which overrides the files
/// (`--config`, a spider file's `[settings]`), which override the
/// defaults. The defaults shown by `--help` come from
/// [`trawl_settings::Settings::default`].
#[derive(Args, Debug, Clone, Default)]
pub struct SettingsFlags {
    /// A settings file (TOML, the keys of docs/settings.md at top level),
    /// below a spider file's `[settings]`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output JSONL file ("-" for stdout).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Append to the output file instead of truncating it.
    #[arg(long)]
    pub append: bool,
    /// Another output, as TYPE:TARGET[,option…] (repeatable):
    /// `jsonl:FILE`, `csv:FILE[,gzip][,rotate_rows=N][,rotate_bytes=N]`,
    /// `warc:DIR[,rotate_bytes=N][,items=false]`,
    /// `postgres://USER@HOST/DB[,table=T][,key=FIELD][,mode=rows]`,
    /// `nats://HOST:PORT/SUBJECT[,stream=NAME]`,
    /// `amqp://USER:PASS@HOST:PORT/VHOST[,queue=Q][,exchange=X][,routing_key=K]`.
    /// With --sink, `-o` left at stdout writes nothing.
    #[arg(long, value_name = "SPEC", value_parser = check_sink)]
    pub sink: Vec<String>,
    /// Where a spider's error records go (required fields missing, pages
    /// that failed); default NAME-errors.jsonl.
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// Where a sink that gives up on a batch writes its items (one JSONL
    /// file per sink).
    #[arg(long)]
    pub dead_letter: Option<PathBuf>,
    /// Write attempts per batch and sink before it goes to the dead-letter file.
    #[arg(long, value_parser = parse_at_least_one)]
    pub sink_attempts: Option<usize>,
    /// First wait between two attempts; doubles each time (at most 10s).
    #[arg(long, value_parser = duration::parse)]
    pub sink_backoff: Option<Duration>,
    /// Items per sink batch.
    #[arg(long, value_parser = parse_at_least_one)]
    pub batch_size: Option<usize>,
    /// Requests in flight at once, across all hosts.
    #[arg(short, long, value_parser = parse_at_least_one)]
    pub concurrency: Option<usize>,
    /// Requests in flight at once per host (per exit, with proxies).
    #[arg(long, value_parser = parse_at_least_one)]
    pub per_host: Option<usize>,
    /// Minimum delay between requests to one host, e.g. "500ms" (robots.txt Crawl-delay may raise it).
    #[arg(long, value_parser = duration::parse)]
    pub delay: Option<Duration>,
    /// Which URLs to follow: host, domain, prefix or any.
    #[arg(long)]
    pub scope: Option<trawl_core::ScopeMode>,
    /// Only follow URLs matching one of these regexes.
    #[arg(long, value_parser = check_regex)]
    pub include: Vec<String>,
    /// Never follow URLs matching one of these regexes.
    #[arg(long, value_parser = check_regex)]
    pub exclude: Vec<String>,
    /// Do not follow links found deeper than this (seeds are depth 0).
    #[arg(long)]
    pub max_depth: Option<u32>,
    /// Stop after this many fetched pages, counted per crawl (a crawl
    /// resumed from --state counts what earlier runs fetched).
    #[arg(long)]
    pub max_pages: Option<u64>,
    /// Fetch at most this many pages per host.
    #[arg(long)]
    pub max_pages_per_host: Option<u64>,
    /// Ignore URLs longer than this.
    #[arg(long)]
    pub max_url_len: Option<usize>,
    /// Do not fetch or obey robots.txt (`obey_robots = false`).
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
    pub user_agents: Option<trawl_settings::UserAgents>,
    /// Send this header with every request, "Name: value" (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = check_header)]
    pub headers: Vec<(String, String)>,
    /// Send requests through this proxy (repeatable): http://, https://,
    /// socks5:// or socks5h://, with user:password@ if needed (also
    /// TRAWL_PROXIES, comma-separated).
    #[arg(long = "proxy", value_name = "URL", value_parser = check_proxy)]
    pub proxies: Vec<String>,
    /// A file of proxies, one per line (URL, host:port or host:port:user:pass).
    #[arg(long, value_name = "FILE")]
    pub proxy_file: Option<PathBuf>,
    /// A named proxy pool that --host-pool (or a spider rule's proxy_pool)
    /// can choose: NAME=URL[,URL…] or NAME=@FILE (repeatable; the same
    /// NAME again adds proxies).
    #[arg(long = "proxy-pool", value_name = "NAME=URLS", value_parser = check_pool)]
    pub proxy_pools: Vec<(String, trawl_settings::PoolSettings)>,
    /// Requests to these hosts go through this pool: PATTERN=POOL, where
    /// PATTERN is host, host:port, *.domain or *, and POOL a --proxy-pool
    /// name, `direct` (no proxy) or `default` (the --proxy list). The
    /// first match wins (repeatable).
    #[arg(long = "host-pool", value_name = "PATTERN=POOL", value_parser = check_host_pool)]
    pub host_pools: Vec<(String, String)>,
    /// How requests are spread over the proxies.
    #[arg(long, value_name = "round-robin|random|least-used|least-latency")]
    pub proxy_strategy: Option<trawl_fetch::proxy::Strategy>,
    /// Sticky sessions: N sessions, each keeping one proxy, one cookie jar
    /// and one identity until it is banned or used up (Crawlee's SessionPool).
    #[arg(long, value_name = "N", value_parser = parse_at_least_one)]
    pub sessions: Option<usize>,
    /// Requests per session before it is replaced.
    #[arg(long)]
    pub session_max_uses: Option<u32>,
    /// Statuses that mean "banned" (with proxies or sessions). A 429, a
    /// 503 with Retry-After and an exhausted RateLimit quota are rate
    /// limits, not bans: the exit is paced down for that host, never
    /// cooled down.
    #[arg(long = "ban-status", value_delimiter = ',')]
    pub ban_statuses: Vec<u16>,
    /// A body matching this regex (case-insensitive) means "banned"
    /// (repeatable). Default: block-page titles and headings (CAPTCHA, "are
    /// you a robot", "robot check", "access denied", "attention required",
    /// …), phrases only block pages use, and DataDome, PerimeterX,
    /// Cloudflare and Incapsula challenge markers; a reCAPTCHA embedded in
    /// an ordinary page is not a ban.
    #[arg(long = "ban-pattern", value_name = "REGEX", value_parser = check_regex)]
    pub ban_patterns: Vec<String>,
    /// A 200 body shorter than this many bytes means "banned".
    #[arg(long, value_name = "BYTES")]
    pub ban_min_body: Option<usize>,
    /// First cooldown of a banned proxy (per host) or a failed one; doubles
    /// with each consecutive ban, up to 10 minutes.
    #[arg(long, value_parser = duration::parse)]
    pub proxy_cooldown: Option<Duration>,
    /// Tries of one request on other proxies/sessions after bans.
    #[arg(long)]
    pub proxy_attempts: Option<u32>,
    /// Do not pace exits: by default each exit (a proxy, or this machine
    /// for direct requests) × host pair finds the rate the site allows
    /// (slow start, then additive increase and multiplicative decrease on
    /// 429s, Retry-After, RateLimit headers and latency climbs).
    #[arg(long)]
    pub no_pacing: bool,
    /// Tries of one request after rate-limit answers (429, …), each
    /// through the first exit ready for the host.
    #[arg(long)]
    pub rate_limit_retries: Option<u32>,
    /// Render pages in headless Chromium: `never`, `auto` (plain HTTP
    /// first; rendered only when the page needs it: a required selector
    /// missing, an almost empty body with scripts, an empty app mount, a
    /// `<noscript>` asking for JavaScript) or `always`. Spider rules may
    /// set their own.
    #[arg(long, value_name = "never|auto|always")]
    pub render: Option<trawl_core::RenderMode>,
    /// Browser tabs rendering at once (apart from --concurrency).
    #[arg(long, value_name = "N", value_parser = parse_at_least_one)]
    pub render_tabs: Option<usize>,
    /// Deadline of one rendered page (waits and actions included).
    #[arg(long, value_parser = duration::parse_positive)]
    pub render_timeout: Option<Duration>,
    /// Wait until this CSS selector matches before taking the DOM.
    #[arg(long, value_name = "SELECTOR")]
    pub wait_for: Option<String>,
    /// Wait until no request has been in flight this long (e.g. 500ms).
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    pub network_idle: Option<Duration>,
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
    #[arg(long, value_name = "DIR")]
    pub render_dir: Option<PathBuf>,
    /// The browser is restarted when all its processes together use more
    /// memory than this (e.g. 2GiB).
    #[arg(long, value_name = "SIZE")]
    pub render_memory: Option<ByteSize>,
    /// The Chromium executable (default: `chromium` on PATH; also
    /// TRAWL_CHROMIUM).
    #[arg(long, value_name = "PATH")]
    pub chromium: Option<PathBuf>,
    /// AutoThrottle: each host's delay follows its latency toward
    /// --autothrottle-target requests in flight, and backs off on 429/503.
    #[arg(long)]
    pub autothrottle: bool,
    /// Average requests in flight AutoThrottle aims at per host.
    #[arg(long)]
    pub autothrottle_target: Option<f64>,
    /// Longest delay AutoThrottle may set.
    #[arg(long, value_parser = duration::parse)]
    pub autothrottle_max_delay: Option<Duration>,
    /// Time limit for one HTTP exchange, e.g. "30s".
    #[arg(long, value_parser = duration::parse_positive)]
    pub timeout: Option<Duration>,
    #[arg(long, value_parser = duration::parse_positive)]
    pub connect_timeout: Option<Duration>,
    /// Stop reading a body after this many bytes and mark the page
    /// truncated: a number of bytes, or with a unit (`512KiB`, `10MiB`,
    /// `1GB`).
    #[arg(long)]
    pub max_body: Option<ByteSize>,
    /// Also trust the CA certificate(s) in this PEM file for HTTPS, on top
    /// of the system's roots (repeatable).
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,
    /// Retries for timeouts, resets, 5xx and 429.
    #[arg(long)]
    pub retries: Option<u32>,
    /// Longest Retry-After honoured.
    #[arg(long, value_parser = duration::parse)]
    pub max_retry_after: Option<Duration>,
    /// Parse worker threads (default: one per core).
    #[arg(long, value_parser = parse_at_least_one)]
    pub parse_threads: Option<usize>,
    /// Keep the crawl state (queue, seen URLs, output checkpoint) in this
    /// directory; run the same command again to resume after a crash or stop.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Share the crawl through this Redis (`redis://host:port`): any number
    /// of `trawl worker` processes on any machines join it. Several
    /// instances (`redis://a:6379,redis://b:6379`) or a Redis Cluster
    /// (`redis-cluster://host:port[,host:port][?shards=N]`) shard the
    /// crawl's hosts over them.
    #[arg(long)]
    pub redis: Option<String>,
    /// Name of the distributed crawl (its keys are `trawl:{NAME}:*`).
    #[arg(long)]
    pub crawl: Option<String>,
    /// This worker's id (default: hostname-pid-random). Reusing the id of a
    /// killed worker with the same output file resumes its output exactly.
    #[arg(long)]
    pub worker_id: Option<String>,
    /// A lease not renewed for this long returns to the queue (dead worker).
    #[arg(long, value_parser = duration::parse)]
    pub lease_timeout: Option<Duration>,
    /// The seen-set of a new distributed crawl: exact (default) or
    /// bloom:EXPECTED[:ERROR], e.g. bloom:500M:0.001.
    #[arg(long, value_name = "SET")]
    pub seen_set: Option<String>,
    /// What happens to duplicate and near-duplicate pages: keep,
    /// skip-items, skip-links, skip or off.
    #[arg(long, value_name = "POLICY")]
    pub duplicates: Option<trawl_engine::DuplicatePolicy>,
    /// SimHash bits (0 to 7) within which pages are near-duplicates.
    #[arg(long, value_name = "BITS")]
    pub near_duplicate_distance: Option<u32>,
    /// Do not detect crawler traps.
    #[arg(long)]
    pub no_traps: bool,
    /// Pages of one URL pattern judged together for traps.
    #[arg(long, value_name = "N")]
    pub trap_window: Option<u32>,
    /// Share of duplicates in a window that makes a pattern a trap.
    #[arg(long, value_name = "SHARE")]
    pub trap_duplicate_rate: Option<f64>,
    /// Share of the duplicates' new links of their own kind for a trap.
    #[arg(long, value_name = "SHARE")]
    pub trap_own_links: Option<f64>,
    /// Revisit interval after a first visit (adapts per page).
    #[arg(long, value_parser = duration::parse_positive)]
    pub revisit_interval: Option<Duration>,
    /// Shortest revisit interval.
    #[arg(long, value_parser = duration::parse_positive)]
    pub revisit_min: Option<Duration>,
    /// Longest revisit interval.
    #[arg(long, value_parser = duration::parse_positive)]
    pub revisit_max: Option<Duration>,
}

fn check_sink(value: &str) -> Result<String, String> {
    value.parse::<trawl_settings::SinkSetting>()?;
    Ok(value.to_string())
}

fn check_regex(value: &str) -> Result<String, String> {
    regex::Regex::new(value).map_err(|e| e.to_string())?;
    Ok(value.to_string())
}

fn check_proxy(value: &str) -> Result<String, String> {
    trawl_fetch::proxy::ProxySpec::parse(value).map_err(|e| e.to_string())?;
    Ok(value.to_string())
}

fn check_header(value: &str) -> Result<(String, String), String> {
    let Some((name, v)) = value.split_once(':') else {
        return Err(format!("header {value:?} is not `Name: value`"));
    };
    trawl_fetch::identity::parse_header_line(value)?;
    Ok((name.trim().to_string(), v.trim().to_string()))
}

/// `NAME=URL[,URL…]` or `NAME=@FILE`.
fn check_pool(value: &str) -> Result<(String, trawl_settings::PoolSettings), String> {
    let Some((name, list)) = value.split_once('=') else {
        return Err("expected NAME=URL[,URL…] or NAME=@FILE".into());
    };
    let name = name.trim();
    if name.is_empty() {
        return Err("the pool has no name".into());
    }
    let mut pool = trawl_settings::PoolSettings::default();
    match list.trim().strip_prefix('@') {
        Some(path) => pool.file = Some(PathBuf::from(path)),
        None => {
            for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                check_proxy(p).map_err(|e| format!("{name}: {e}"))?;
                pool.proxies.push(p.to_string());
            }
        }
    }
    Ok((name.to_string(), pool))
}

/// `PATTERN=POOL`.
fn check_host_pool(value: &str) -> Result<(String, String), String> {
    let rule: trawl_fetch::proxy::HostRule = value
        .parse()
        .map_err(|e: trawl_fetch::proxy::RouteError| e.to_string())?;
    Ok((rule.pattern.to_string(), rule.pool))
}
