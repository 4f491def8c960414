//! `trawl worker --redis URL --crawl NAME`: join a distributed crawl;
//! `trawl worker --redis URL --api`: work on the Scraper API's jobs.

use std::sync::Arc;

use anyhow::Context;
use trawl_core::CrawlStats;
use trawl_engine::Shutdown;
use trawl_settings::Effective;

use crate::args::WorkerArgs;
use crate::crawl::{Job, distributed};
use crate::flags::{Files, layers, load};

pub async fn run(args: WorkerArgs) -> anyhow::Result<u8> {
    if args.api {
        return api_jobs(args).await;
    }
    let settings = load(&args.settings, Files::default())?;
    if args.run.print_config {
        print!("{}", settings.to_annotated_toml()?);
        return Ok(0);
    }
    let job = Job {
        settings,
        spider: None,
        run: args.run,
    };
    distributed::join(job, args.wait_for_seed).await
}

/// Every job of the servers started with `trawl serve --redis URL`, until
/// SIGINT or SIGTERM; this worker's settings (flags, environment) lie
/// under each job's.
async fn api_jobs(args: WorkerArgs) -> anyhow::Result<u8> {
    let base = layers(&args.settings, Files::default())?;
    let settings = Effective::stack(&base)?;
    if args.run.print_config {
        print!("{}", settings.to_annotated_toml()?);
        return Ok(0);
    }
    let url = settings
        .settings
        .redis
        .clone()
        .context("trawl worker --api needs --redis URL (the one of trawl serve --redis)")?;
    let shutdown = Shutdown::default();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        stop.trigger();
    });
    let stats = Arc::new(CrawlStats::default());
    if !args.run.quiet {
        eprintln!("trawl: working on the Scraper API's jobs at {url}");
    }
    // One set of counters for every job it works on.
    let identity = trawl_metrics::Identity {
        crawl: "api".into(),
        worker: settings
            .settings
            .worker_id
            .clone()
            .unwrap_or_else(crate::logs::process_worker_id),
    };
    crate::logs::set_ids(&identity.crawl, &identity.worker);
    let board = Arc::new(trawl_metrics::Board::single(identity, stats.clone()));
    let metrics = crate::crawl::terminal::serve_metrics(&args.run, board).await?;
    trawl_api::jobs::remote::work(&url, base, stats.clone(), shutdown)
        .await
        .map_err(anyhow::Error::msg)?;
    if let Some(server) = metrics {
        server.stop();
    }
    if !args.run.quiet {
        let s = stats.snapshot(std::time::Duration::ZERO);
        eprintln!("trawl: {} pages fetched for API jobs", s.pages);
    }
    Ok(0)
}
