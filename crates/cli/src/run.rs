//! Running a crawl from the command line: config, signals, progress, summary.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, bail};
use trawl_core::{CrawlStats, Frontier, ScopeConfig, Sink, Url};
use trawl_engine::{CrawlConfig, Engine, Shutdown};
use trawl_fetch::FetchConfig;
use trawl_frontier::{DiskFrontier, MemoryFrontier};
use trawl_sink::SinkSpec;

use crate::sinks::OutputContext;

use crate::args::{Cli, Command, CrawlOpts};
use crate::progress;

/// Exit code of a crawl stopped by a signal (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

pub async fn main(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Crawl(args) => {
            let seeds = parse_seeds(&args.seeds)?;
            match &args.opts.redis {
                Some(url) => crate::distributed::crawl(url, seeds, &args.opts).await,
                None => crawl(seeds, &args.opts).await,
            }
        }
        Command::Worker(args) => {
            let Some(url) = &args.opts.redis else {
                bail!("trawl worker needs --redis URL (and --crawl NAME)");
            };
            crate::distributed::worker(url, &args.opts, args.wait_for_seed).await
        }
        Command::Status(args) => crate::distributed::status(&args).await,
        Command::Run(args) => crate::spider::run(&args).await,
        Command::Check(args) => crate::spider::check(&args),
        Command::Scrape(args) => crate::scrape::run(&args).await,
        Command::Demo(args) => {
            let cfg = trawl_testsite::SiteConfig {
                pages: args.pages,
                fanout: args.fanout,
                nasty: args.nasty,
                ..Default::default()
            };
            let site = trawl_testsite::TestSite::start(cfg)
                .await
                .context("starting the demo site")?;
            let seed = format!("{}/", site.base_url());
            if !args.opts.quiet {
                eprintln!(
                    "Serving a generated {}-page test site at {seed} ({} pages reachable); crawling it.",
                    args.pages,
                    site.site().ground_truth().len()
                );
            }
            let code = crawl(parse_seeds(&[seed])?, &args.opts).await;
            site.shutdown().await;
            code
        }
    }
}

pub fn parse_seeds(seeds: &[String]) -> anyhow::Result<Vec<Url>> {
    seeds
        .iter()
        .map(|s| {
            let url = Url::parse(s).with_context(|| format!("invalid seed URL {s:?}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                bail!("seed {s:?} is not an http(s) URL");
            }
            Ok(url)
        })
        .collect()
}

/// Reads the `--ca-cert` files: a missing or unreadable file, or one with
/// no PEM certificate in it, is an error naming the path.
fn read_ca_certs(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    paths
        .iter()
        .map(|path| {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the CA certificate {}", path.display()))?;
            if !pem
                .windows(CERT_BEGIN.len())
                .any(|w| w == CERT_BEGIN.as_bytes())
            {
                bail!(
                    "CA certificate {} is not a PEM certificate file (no \"{CERT_BEGIN}\" line)",
                    path.display()
                );
            }
            Ok(pem)
        })
        .collect()
}

const CERT_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

/// Proxies from `--proxy`, `--proxy-file` and `TRAWL_PROXIES`; every
/// error names the proxy with its password masked.
pub fn read_proxies(o: &CrawlOpts) -> anyhow::Result<Vec<trawl_fetch::proxy::ProxySpec>> {
    use trawl_fetch::proxy::{ProxySpec, parse_list};
    let mut out = Vec::new();
    for p in &o.proxies {
        out.push(ProxySpec::parse(p).map_err(|e| anyhow::anyhow!("--proxy: {e}"))?);
    }
    if let Some(path) = &o.proxy_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--proxy-file: reading {}", path.display()))?;
        out.extend(parse_list(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?);
    }
    if let Ok(env) = std::env::var("TRAWL_PROXIES") {
        let text = env.replace(',', "\n");
        out.extend(parse_list(&text).map_err(|e| anyhow::anyhow!("TRAWL_PROXIES: {e}"))?);
    }
    Ok(out)
}

/// Named pools from `--proxy-pool`, then the spider file's.
pub fn read_proxy_pools(o: &CrawlOpts) -> anyhow::Result<Vec<trawl_fetch::proxy::NamedPool>> {
    use trawl_fetch::proxy::{NamedPool, ProxySpec, parse_list};
    let mut pools: Vec<NamedPool> = Vec::new();
    for flag in &o.proxy_pools {
        let Some((name, list)) = flag.split_once('=') else {
            anyhow::bail!("--proxy-pool: expected NAME=URL[,URL…] or NAME=@FILE");
        };
        let name = name.trim();
        if name.is_empty() {
            anyhow::bail!("--proxy-pool: the pool has no name");
        }
        let proxies = match list.trim().strip_prefix('@') {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--proxy-pool {name}: reading {path}"))?;
                parse_list(&text)
                    .map_err(|e| anyhow::anyhow!("--proxy-pool {name}: {path}: {e}"))?
            }
            None => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    ProxySpec::parse(p).map_err(|e| anyhow::anyhow!("--proxy-pool {name}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        };
        match pools.iter_mut().find(|p| p.name == name) {
            Some(pool) => pool.proxies.extend(proxies),
            None => pools.push(NamedPool {
                name: name.to_string(),
                proxies,
                strategy: None,
            }),
        }
    }
    for pool in &o.spider_pools {
        if pools.iter().any(|p| p.name == pool.name) {
            anyhow::bail!(
                "proxy pool {:?} is given by --proxy-pool and by the spider file",
                pool.name
            );
        }
        pools.push(pool.clone());
    }
    Ok(pools)
}

/// Host rules from `--host-pool`, then the spider file's.
fn read_host_pools(o: &CrawlOpts) -> anyhow::Result<Vec<trawl_fetch::proxy::HostRule>> {
    let mut rules = Vec::new();
    for flag in &o.host_pools {
        rules.push(
            flag.parse()
                .map_err(|e| anyhow::anyhow!("--host-pool: {e}"))?,
        );
    }
    rules.extend(o.spider_host_pools.iter().cloned());
    Ok(rules)
}

fn ban_rules(o: &CrawlOpts) -> anyhow::Result<trawl_fetch::proxy::BanRules> {
    let rules = if o.ban_patterns.is_empty() {
        trawl_fetch::proxy::BanRules::default()
            .with_statuses(o.ban_statuses.clone())
            .with_min_body(o.ban_min_body)
    } else {
        trawl_fetch::proxy::BanRules::new(o.ban_statuses.clone(), &o.ban_patterns, o.ban_min_body)
            .map_err(|e| anyhow::anyhow!("--ban-pattern: {e}"))?
    };
    Ok(rules)
}

pub fn crawl_config(seeds: Vec<Url>, o: &CrawlOpts) -> anyhow::Result<CrawlConfig> {
    let defaults = FetchConfig::default();
    let fetch = FetchConfig {
        user_agent: o.user_agent.clone().unwrap_or(defaults.user_agent.clone()),
        obey_robots: !o.ignore_robots,
        connect_timeout: o.connect_timeout,
        timeout: o.timeout,
        max_body: o.max_body,
        retries: o.retries,
        max_retry_after: o.max_retry_after,
        per_host: o.per_host.max(1),
        delay: o.delay,
        extra_root_certs: read_ca_certs(&o.ca_cert)?,
        headers: o
            .headers
            .iter()
            .map(|h| trawl_fetch::identity::parse_header_line(h).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()
            .context("--header")?,
        identities: match o.user_agents.as_deref() {
            None if !o.user_agent_list.is_empty() => Some(Arc::new(
                trawl_fetch::identity::Identities::from_user_agents(o.user_agent_list.clone())
                    .map_err(anyhow::Error::msg)
                    .context("settings.user_agents")?,
            )),
            None => None,
            Some("builtin") => Some(Arc::new(trawl_fetch::identity::Identities::builtin())),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--user-agents: reading {path}"))?;
                let list = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect();
                Some(Arc::new(
                    trawl_fetch::identity::Identities::from_user_agents(list)
                        .map_err(anyhow::Error::msg)
                        .with_context(|| format!("--user-agents {path}"))?,
                ))
            }
        },
        proxies: read_proxies(o)?,
        proxy_pools: read_proxy_pools(o)?,
        host_pools: read_host_pools(o)?,
        proxy_strategy: o
            .proxy_strategy
            .parse()
            .map_err(|e| anyhow::anyhow!("--proxy-strategy: {e}"))?,
        proxy_health: trawl_fetch::proxy::HealthConfig {
            cooldown_base: o.proxy_cooldown,
            ..Default::default()
        },
        ban_rules: ban_rules(o)?,
        sessions: o.sessions.map(|n| trawl_fetch::config::SessionConfig {
            max_sessions: n.max(1),
            max_uses: o.session_max_uses,
            ..Default::default()
        }),
        proxy_attempts: o.proxy_attempts,
        pacing: trawl_fetch::pacing::PacingConfig {
            enabled: !o.no_pacing,
            ..Default::default()
        },
        rate_limit_retries: o.rate_limit_retries,
        render: match &o.spider_render {
            Some(spec) if !o.given.contains("render") => spec.clone(),
            _ => render_spec(o),
        },
        autothrottle: o
            .autothrottle
            .then(|| trawl_fetch::autothrottle::AutoThrottleConfig {
                target_concurrency: o.autothrottle_target,
                max_delay: o.autothrottle_max_delay,
                min_delay: o.delay,
                ..Default::default()
            }),
        ..defaults
    };
    let scope = ScopeConfig {
        mode: o.scope,
        include: o.include.clone(),
        exclude: o.exclude.clone(),
        max_url_len: o.max_url_len,
        ..ScopeConfig::default()
    };
    let mut cfg = CrawlConfig {
        seeds,
        concurrency: o.concurrency.max(1),
        fetch,
        scope,
        max_depth: o.max_depth,
        max_pages: o.max_pages,
        max_pages_per_host: Some(o.max_pages_per_host),
        sitemaps: o.sitemaps,
        ..CrawlConfig::default()
    };
    if let Some(n) = o.parse_threads {
        cfg.parse_threads = n.max(1);
    }
    if cfg.fetch.render.mode != trawl_core::RenderMode::Never || o.spider_renders {
        cfg.render = Some(render_config(o));
    }
    cfg.render_dir = o.render_dir.clone();
    cfg.batch_size = o.batch_size.max(1);
    cfg.sinks = trawl_engine::SinkOptions {
        attempts: o.sink_attempts.max(1),
        backoff: o.sink_backoff,
        dead_letter_dir: o.dead_letter.clone(),
        ..trawl_engine::SinkOptions::default()
    };
    Ok(cfg)
}

/// The crawl-wide render spec of the command line.
pub fn render_spec(o: &CrawlOpts) -> trawl_core::RenderSpec {
    use trawl_core::render::{Blocked, STEP_TIMEOUT, Until, Wait};
    let mut spec = trawl_core::RenderSpec::mode(o.render);
    if let Some(sel) = &o.wait_for {
        spec.wait.push(Wait {
            until: Until::Selector(sel.clone()),
            timeout: STEP_TIMEOUT.min(o.render_timeout),
        });
    }
    if let Some(quiet) = o.network_idle {
        spec.wait.push(Wait {
            until: Until::NetworkIdle(quiet),
            timeout: STEP_TIMEOUT.min(o.render_timeout),
        });
    }
    if o.block_stylesheets {
        spec.block.push(Blocked::Stylesheet);
    }
    if o.block_third_party {
        spec.block.push(Blocked::ThirdParty);
    }
    spec.screenshot = o.screenshots;
    spec.pdf = o.pdfs;
    spec
}

/// The browser pool of the command line.
pub fn render_config(o: &CrawlOpts) -> trawl_render::RenderConfig {
    let mut rc = trawl_render::RenderConfig {
        tabs: o.render_tabs.max(1),
        page_timeout: o.render_timeout,
        memory_ceiling: Some(o.render_memory as u64),
        ..trawl_render::RenderConfig::default()
    };
    if let Some(path) = &o.chromium {
        rc.launch.executable = path.clone();
    }
    rc
}

async fn crawl(seeds: Vec<Url>, o: &CrawlOpts) -> anyhow::Result<u8> {
    let mut cfg = crawl_config(seeds, o)?;
    if o.ignore_robots {
        eprintln!("trawl: robots.txt is IGNORED for this crawl (--ignore-robots).");
    }
    let specs = output_specs(o, Vec::new())?;
    let (frontier, checkpoint) = local_frontier(o, cfg.fetch.host_concurrency()).await?;
    max_pages_per_crawl(frontier.as_ref(), &mut cfg, o).await?;
    let ctx = OutputContext {
        checkpoint: checkpoint.as_deref(),
        append: o.append,
        ..OutputContext::default()
    };
    let sinks = crate::sinks::open_all(&specs, &ctx).await?;
    let engine = Engine::new(cfg, Arc::new(CrawlStats::default()));
    run_engine_custom(engine, frontier, sinks, o).await
}

/// `--max-pages` counts per crawl, not per run: a crawl resumed from its
/// `--state` takes off what earlier runs already fetched.
pub async fn max_pages_per_crawl(
    frontier: &dyn Frontier,
    cfg: &mut CrawlConfig,
    o: &CrawlOpts,
) -> anyhow::Result<()> {
    let (Some(max), Some(_)) = (cfg.max_pages, &o.state) else {
        return Ok(());
    };
    if o.recrawl {
        return Ok(());
    }
    let s = frontier.stats().await?;
    let done = s.seen.saturating_sub(s.queued + s.leased);
    if done > 0 {
        let left = max.saturating_sub(done);
        if !o.quiet {
            eprintln!(
                "trawl: resuming: {done} URLs done in earlier runs count toward --max-pages {max}; {left} to go"
            );
        }
        cfg.max_pages = Some(left);
    }
    Ok(())
}

/// The outputs of a crawl: `--sink` specs and the spider file's, plus the
/// `-o` JSONL output unless it was left at its default (stdout) while other
/// outputs are configured.
pub fn output_specs(o: &CrawlOpts, from_spider: Vec<SinkSpec>) -> anyhow::Result<Vec<SinkSpec>> {
    let mut specs = crate::sinks::parse_specs(&o.sink)?;
    specs.extend(from_spider);
    if o.output != std::path::Path::new("-") || specs.is_empty() {
        specs.insert(0, SinkSpec::jsonl(o.output.clone()));
    }
    crate::sinks::check_distinct(&specs)?;
    Ok(specs)
}

/// The frontier of a single-box crawl, and its checkpoint when it resumes
/// a crawl (the outputs continue from it).
pub async fn local_frontier(
    o: &CrawlOpts,
    per_host: usize,
) -> anyhow::Result<(Arc<dyn Frontier>, Option<Vec<u8>>)> {
    Ok(match &o.state {
        None => (Arc::new(MemoryFrontier::new(per_host)), None),
        Some(dir) => open_state(dir, o, per_host).await?,
    })
}

/// Run a prepared engine with the terminal UI: signals, progress line,
/// summary and the stats file.
pub async fn run_engine_custom(
    engine: Engine,
    frontier: Arc<dyn Frontier>,
    sinks: Vec<Box<dyn Sink>>,
    o: &CrawlOpts,
) -> anyhow::Result<u8> {
    if let Some(path) = &o.stats_json {
        check_writable(path).context("--stats-json")?;
    }
    let engine = crate::reload::attach(engine, o);
    let stats = engine.stats().clone();
    let shutdown = Shutdown::default();
    let signals = tokio::spawn(watch_signals(shutdown.clone(), o.quiet));
    let show_progress = !o.quiet && (o.progress || std::io::stderr().is_terminal());
    let progress_task = show_progress.then(|| tokio::spawn(progress::run(stats.clone())));

    let result = engine.run(frontier, sinks, shutdown.clone()).await;
    if let Some(task) = progress_task {
        task.abort();
        let _ = task.await;
        progress::clear();
    }
    signals.abort();
    let report = result.context("crawl failed")?;
    if !o.quiet {
        eprint!("{}", progress::summary(&report.stats, report.left_queued));
        for e in &report.sink_errors {
            eprintln!("  sink error    {e}");
        }
    }
    if let Some(path) = &o.stats_json {
        let mut value = serde_json::to_value(&report.stats)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("left_queued".into(), report.left_queued.into());
            map.insert("sink_errors".into(), report.sink_errors.clone().into());
        }
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !report.sink_errors.is_empty() {
        return Ok(1);
    }
    if let Some(why) = nothing_fetched(&report.stats) {
        eprintln!("trawl: nothing was fetched: {why}");
        return Ok(EXIT_NOTHING_FETCHED);
    }
    Ok(if report.stats.interrupted {
        EXIT_INTERRUPTED
    } else {
        0
    })
}

/// Fail now, not after the crawl, when `path` cannot be written (a missing
/// directory, no permission). Leaves no file behind that was not there.
fn check_writable(path: &std::path::Path) -> anyhow::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("{} cannot be written", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Exit status of a crawl that ran to its end without one good page.
pub const EXIT_NOTHING_FETCHED: u8 = 1;

/// Why a crawl that ran to its end has nothing to show: every page it
/// tried failed (the seeds included), or robots.txt kept it from trying.
/// `None` when some page arrived, when nothing was left to do (a finished
/// crawl resumed), or when the crawl was stopped early.
fn nothing_fetched(s: &trawl_core::stats::StatsSnapshot) -> Option<String> {
    if s.pages_ok > 0 || s.interrupted || s.output_closed {
        return None;
    }
    if s.robots_denied > 0 && s.robots_denied >= s.pages {
        return Some(format!(
            "robots.txt disallows every URL tried ({} denied; an unreachable robots.txt disallows its host): --ignore-robots crawls anyway",
            s.robots_denied
        ));
    }
    (s.pages > 0).then(|| {
        format!(
            "all {} pages failed ({} requests, {} retries); the items' \"error\" fields say why",
            s.pages, s.requests, s.retries
        )
    })
}

/// Open a persistent crawl state. When it holds a crawl, return its
/// checkpoint: every output is cut back to the last acknowledged batch so
/// each item ends up written once.
async fn open_state(
    dir: &std::path::Path,
    o: &CrawlOpts,
    per_host: usize,
) -> anyhow::Result<(Arc<dyn Frontier>, Option<Vec<u8>>)> {
    let disk = DiskFrontier::open(dir, per_host)
        .with_context(|| format!("opening the crawl state in {}", dir.display()))?;
    if o.recrawl {
        let queued = disk.begin_recrawl().await?;
        if !o.quiet {
            eprintln!("trawl: recrawling {queued} known URLs with conditional requests");
        }
        return Ok((Arc::new(disk), None));
    }
    if !disk.is_resumed() {
        if o.resume {
            bail!("--resume: {} holds no crawl to resume", dir.display());
        }
        return Ok((Arc::new(disk), None));
    }
    let stats = disk.stats().await?;
    let checkpoint = disk.checkpoint().await?.unwrap_or_else(|| b"{}".to_vec());
    if !o.quiet {
        eprintln!(
            "trawl: resuming the crawl in {}: {} URLs seen, {} queued; outputs continue from their checkpoint",
            dir.display(),
            stats.seen,
            stats.queued,
        );
    }
    Ok((Arc::new(disk), Some(checkpoint)))
}

/// First SIGINT/SIGTERM: graceful stop. Second: exit at once, but only
/// between two output batches, so no file is left with half a line.
async fn watch_signals(shutdown: Shutdown, quiet: bool) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(error) => {
            tracing::warn!(%error, "Cannot listen for SIGTERM.");
            None
        }
    };
    let mut count = 0;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        count += 1;
        if count == 1 {
            if !quiet {
                progress::clear();
                eprintln!(
                    "trawl: stopping: no new fetches, draining the pipeline (press Ctrl-C again to quit now)"
                );
            }
            shutdown.trigger();
        } else {
            let _guard = trawl_sink::output_lock().lock();
            eprintln!("\ntrawl: quitting now");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_ca_certs;

    #[test]
    fn ca_cert_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        std::fs::write(&good, pem).unwrap();
        assert_eq!(
            read_ca_certs(std::slice::from_ref(&good)).unwrap(),
            vec![pem.as_bytes().to_vec()]
        );
        assert!(read_ca_certs(&[]).unwrap().is_empty());

        let missing = dir.path().join("missing.pem");
        let e = format!("{:#}", read_ca_certs(&[good.clone(), missing]).unwrap_err());
        assert!(e.contains("missing.pem"), "{e}");

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello").unwrap();
        let e = format!("{:#}", read_ca_certs(&[text]).unwrap_err());
        assert!(e.contains("notes.txt") && e.contains("not a PEM"), "{e}");
    }
}
