//! Running a crawl from its settings: the frontier, the outputs and the
//! engine are built from the [`Plan`] (each by its own crate), then run
//! under the terminal (signals, progress line, summary).
//!
//! Every command that crawls (`crawl`, `run`, `worker`, `demo`) comes
//! here; commands never call each other.

pub mod distributed;
pub mod terminal;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use trawl_core::{CrawlStats, Sink, Spider, Url};
use trawl_engine::Engine;
use trawl_frontier::{DiskStart, Opened, Resumed};
use trawl_settings::{Effective, Plan, SpiderParts};
use trawl_sink::{ItemSchema, OutputContext, SinkSpec};
use trawl_spider::DeclarativeSpider;

use crate::args::RunFlags;

/// A crawl about to start: its settings, its spider (if any) and the
/// run's own flags.
pub struct Job {
    pub settings: Effective,
    pub spider: Option<SpiderJob>,
    pub run: RunFlags,
}

/// A spider and what its run writes besides items.
pub struct SpiderJob {
    pub spider: Arc<DeclarativeSpider>,
    /// Where error records go.
    pub errors: PathBuf,
    pub schemas: Vec<ItemSchema>,
}

impl SpiderJob {
    pub fn new(spider: DeclarativeSpider, settings: &Effective) -> SpiderJob {
        let errors = settings
            .settings
            .errors
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}-errors.jsonl", spider.name())));
        let schemas = spider
            .item_schemas()
            .into_iter()
            .map(|(item_type, fields)| ItemSchema { item_type, fields })
            .collect();
        SpiderJob {
            spider: Arc::new(spider),
            errors,
            schemas,
        }
    }
}

impl Job {
    pub fn parts(&self) -> SpiderParts {
        self.spider
            .as_ref()
            .map(|s| s.spider.parts())
            .unwrap_or_default()
    }

    /// Build the plan of this crawl from `seeds`.
    pub fn plan(&self, seeds: Vec<Url>) -> anyhow::Result<Plan> {
        Ok(self.settings.build(seeds, &self.parts())?)
    }

    /// Run the crawl: on the local frontier, or on the shared one when
    /// the settings name a Redis.
    pub async fn run(self, seeds: Vec<Url>) -> anyhow::Result<u8> {
        if self.settings.settings.redis.is_some() {
            return distributed::seed_and_work(self, seeds).await;
        }
        if self.run.fresh {
            bail!("--fresh starts a distributed crawl afresh: it needs --redis");
        }
        let mut plan = self.plan(seeds)?;
        if !plan.crawl.fetch.obey_robots {
            eprintln!("trawl: robots.txt is IGNORED for this crawl (--ignore-robots).");
        }
        let state = self.settings.settings.state.is_some();
        if (self.run.resume || self.run.recrawl) && !state {
            bail!("--resume and --recrawl need a crawl state directory (--state DIR)");
        }
        if self.run.due && !self.run.recrawl {
            bail!("--due is for --recrawl: revisit only the URLs that are due");
        }
        let start = if self.run.recrawl {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            DiskStart::Recrawl {
                due_at: self.run.due.then_some(now),
            }
        } else if self.run.resume {
            DiskStart::Resume
        } else {
            DiskStart::Continue
        };
        let opened = plan.frontier.open_local(start).await?;
        match opened.resumed {
            Resumed::Fresh => {}
            Resumed::Recrawl { queued } if !self.run.quiet => {
                let which = if self.run.due { "due" } else { "known" };
                eprintln!("trawl: recrawling {queued} {which} URLs with conditional requests");
            }
            Resumed::Resumed { seen, queued } if !self.run.quiet => {
                let dir = self.settings.settings.state.clone().unwrap_or_default();
                eprintln!(
                    "trawl: resuming the crawl in {}: {seen} URLs seen, {queued} queued; outputs continue from their checkpoint",
                    dir.display(),
                );
            }
            _ => {}
        }
        if !matches!(start, DiskStart::Recrawl { .. }) {
            max_pages_per_crawl(&opened, &mut plan, self.run.quiet).await?;
        }
        let stats = Arc::new(CrawlStats::default());
        let board = terminal::board(terminal::identity(&self), &self, stats.clone());
        let errors_existed = self.spider.as_ref().is_some_and(|s| s.errors.exists());
        let (mut engine, sinks) = self
            .engine(&plan, stats, opened.checkpoint.as_deref())
            .await?;
        if let Some(index) = opened.index.clone() {
            engine = engine.with_content_index(index);
        }
        let code = terminal::run(engine, opened.frontier, sinks, &self, board).await?;
        self.remove_empty_errors(errors_existed);
        Ok(code)
    }

    /// Open the outputs (resumed at `checkpoint`) and build the engine.
    pub async fn engine(
        &self,
        plan: &Plan,
        stats: Arc<CrawlStats>,
        checkpoint: Option<&[u8]>,
    ) -> anyhow::Result<(Engine, Vec<Box<dyn Sink>>)> {
        let schemas: &[ItemSchema] = self.spider.as_ref().map_or(&[], |s| &s.schemas);
        let ctx = OutputContext {
            checkpoint,
            append: plan.append,
            spider_name: self.spider.as_ref().map(|s| s.spider.name()),
            schemas,
        };
        let sinks = trawl_sink::open::open_all(&plan.outputs, &ctx).await?;
        let engine = Engine::new(plan.crawl.clone(), stats);
        let Some(job) = &self.spider else {
            return Ok((engine, sinks));
        };
        let errors = SinkSpec::jsonl(job.errors.clone());
        let error_sink = trawl_sink::open::open(&errors, &ctx, false)
            .await
            .context("opening the error output")?;
        let spider: Arc<dyn Spider> = job.spider.clone();
        let engine = engine
            .with_spider(spider, vec![error_sink])
            .with_pipeline(Arc::new(job.spider.pipeline()));
        Ok((engine, sinks))
    }

    /// No error record: leave no empty error file behind (one that was
    /// there before stays).
    fn remove_empty_errors(&self, existed: bool) {
        if let Some(job) = &self.spider
            && !existed
            && std::fs::metadata(&job.errors).is_ok_and(|m| m.is_file() && m.len() == 0)
        {
            let _ = std::fs::remove_file(&job.errors);
        }
    }
}

/// `max_pages` counts per crawl, not per run: a crawl resumed from its
/// state takes off what earlier runs already fetched.
async fn max_pages_per_crawl(opened: &Opened, plan: &mut Plan, quiet: bool) -> anyhow::Result<()> {
    let Some(max) = plan.crawl.max_pages else {
        return Ok(());
    };
    let done = opened.done_before().await?;
    if done > 0 {
        let left = max.saturating_sub(done);
        if !quiet {
            eprintln!(
                "trawl: resuming: {done} URLs done in earlier runs count toward --max-pages {max}; {left} to go"
            );
        }
        plan.crawl.max_pages = Some(left);
    }
    Ok(())
}

/// Seed URLs from the command line.
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
