//! `trawl run spider.toml` and `trawl check spider.toml`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use trawl_core::{CrawlStats, Sink};
use trawl_engine::Engine;
use trawl_sink::SinkSpec;
use trawl_spider::{DeclarativeSpider, Spider};

use crate::args::{CheckArgs, CrawlOpts, RunArgs};
use crate::run::{crawl_config, local_frontier, output_specs, run_engine_custom};
use crate::sinks::{ItemSchema, OutputContext};

/// Exit code for a spider file that cannot be used.
const EXIT_BAD_SPIDER: u8 = 2;

/// `trawl check`: everything `run` would refuse, without crawling.
pub fn check(args: &CheckArgs) -> anyhow::Result<u8> {
    match DeclarativeSpider::from_file(&args.spider) {
        Ok(spider) => {
            for warning in spider.warnings() {
                eprintln!("{}: warning: {warning}", args.spider.display());
            }
            println!(
                "{}: ok: spider {:?}, {} start URL(s)",
                args.spider.display(),
                spider.name(),
                spider.start_urls().len()
            );
            Ok(0)
        }
        Err(error) => {
            eprintln!("trawl: {error}");
            Ok(EXIT_BAD_SPIDER)
        }
    }
}

/// The spider file's `[settings]` fill in what the command line did not
/// give; a flag given explicitly wins, even when it repeats the default.
fn apply_settings(spider: &DeclarativeSpider, o: &CrawlOpts) -> anyhow::Result<CrawlOpts> {
    let s = spider.settings();
    let mut o = o.clone();
    let free = |id: &str| !o.given.contains(id);
    if let Some(n) = s.concurrency.filter(|_| free("concurrency")) {
        o.concurrency = n;
    }
    if let Some(n) = s.per_host.filter(|_| free("per_host")) {
        o.per_host = n;
    }
    if let Some(d) = s.delay.as_ref().filter(|_| free("delay")) {
        o.delay = humantime::parse_duration(d).with_context(|| format!("settings.delay {d:?}"))?;
    }
    if let Some(scope) = s.scope.as_ref().filter(|_| free("scope")) {
        o.scope = scope.parse().map_err(anyhow::Error::msg)?;
    }
    if o.max_depth.is_none() {
        o.max_depth = s.max_depth;
    }
    if o.max_pages.is_none() {
        o.max_pages = s.max_pages;
    }
    if let Some(out) = s.output.as_ref().filter(|_| free("output")) {
        o.output = PathBuf::from(out);
    }
    if let Some(sitemaps) = s.sitemaps.filter(|_| !o.sitemaps) {
        o.sitemaps = sitemaps;
    }
    if let Some(obey) = s.obey_robots.filter(|_| !o.ignore_robots) {
        o.ignore_robots = !obey;
    }
    // Anti-ban settings: the file's proxies and headers add to the command
    // line's; the rest fill in what the command line left at its default.
    o.proxies.extend(s.proxies.iter().cloned());
    o.spider_pools = spider.proxy_pools().to_vec();
    o.spider_host_pools = spider.host_pools().to_vec();
    o.spider_render = spider.render().cloned();
    o.spider_renders = spider.renders();
    o.headers
        .extend(s.headers.iter().map(|(k, v)| format!("{k}: {v}")));
    if let Some(strategy) = s.proxy_strategy.as_ref().filter(|_| free("proxy_strategy")) {
        o.proxy_strategy = strategy.clone();
    }
    if o.sessions.is_none() {
        o.sessions = s.sessions;
    }
    if let Some(at) = s.autothrottle.filter(|_| !o.autothrottle) {
        o.autothrottle = at;
    }
    if o.user_agents.is_none() {
        match &s.user_agents {
            None => {}
            Some(toml::Value::String(v)) if v == "builtin" => o.user_agents = Some(v.clone()),
            Some(toml::Value::Array(list)) => {
                o.user_agent_list = list
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
            }
            Some(other) => anyhow::bail!(
                "settings.user_agents: expected \"builtin\" or a list of strings, got {other}"
            ),
        }
    }
    Ok(o)
}

/// A spider with everything its run needs besides the frontier.
pub struct SpiderRun {
    pub spider: Arc<DeclarativeSpider>,
    /// Where error records go.
    pub errors: PathBuf,
    /// Outputs: `-o`, `--sink` and the file's `[[sinks]]`.
    pub specs: Vec<SinkSpec>,
    pub schemas: Vec<ItemSchema>,
}

impl SpiderRun {
    /// Open the outputs and the error output (resumed at `checkpoint`) and
    /// build the engine.
    pub async fn engine(
        &self,
        cfg: trawl_engine::CrawlConfig,
        stats: Arc<CrawlStats>,
        checkpoint: Option<&[u8]>,
        append: bool,
    ) -> anyhow::Result<(Engine, Vec<Box<dyn Sink>>)> {
        let ctx = OutputContext {
            checkpoint,
            append,
            spider_name: Some(self.spider.name()),
            schemas: &self.schemas,
        };
        let sinks = crate::sinks::open_all(&self.specs, &ctx).await?;
        let errors = SinkSpec::jsonl(self.errors.clone());
        let error_sink = crate::sinks::open(&errors, &ctx, false)
            .await
            .context("opening the error output")?;
        let spider: Arc<dyn Spider> = self.spider.clone();
        let engine = Engine::new(cfg, stats)
            .with_spider(spider, vec![error_sink])
            .with_pipeline(Arc::new(self.spider.pipeline()));
        Ok((engine, sinks))
    }
}

/// `trawl run`: crawl with the spider; items to the outputs, error records
/// to the error output.
pub async fn run(args: &RunArgs) -> anyhow::Result<u8> {
    let spider = match DeclarativeSpider::from_file(&args.spider) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("trawl: {error}");
            return Ok(EXIT_BAD_SPIDER);
        }
    };
    let o = apply_settings(&spider, &args.opts)?;
    let errors = args
        .errors
        .clone()
        .or_else(|| spider.settings().errors.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(format!("{}-errors.jsonl", spider.name())));
    let specs = output_specs(&o, spider.sinks())?;
    let schemas = spider
        .item_schemas()
        .into_iter()
        .map(|(item_type, fields)| ItemSchema { item_type, fields })
        .collect();
    let run = SpiderRun {
        spider: Arc::new(spider),
        errors,
        specs,
        schemas,
    };
    if let Some(url) = &o.redis {
        // The same file on every machine: each process joins the crawl.
        return crate::distributed::run_spider(url, run, &o).await;
    }
    let mut cfg = crawl_config(run.spider.start_urls(), &o)?;
    let (frontier, checkpoint) = local_frontier(&o, cfg.fetch.host_concurrency()).await?;
    crate::run::max_pages_per_crawl(frontier.as_ref(), &mut cfg, &o).await?;
    let stats = Arc::new(CrawlStats::default());
    let errors_existed = run.errors.exists();
    let (engine, sinks) = run
        .engine(cfg, stats, checkpoint.as_deref(), o.append)
        .await?;
    let code = run_engine_custom(engine, frontier, sinks, &o).await?;
    // No error record: leave no empty error file behind (one that was
    // there before stays).
    if !errors_existed && std::fs::metadata(&run.errors).is_ok_and(|m| m.is_file() && m.len() == 0)
    {
        let _ = std::fs::remove_file(&run.errors);
    }
    Ok(code)
}
