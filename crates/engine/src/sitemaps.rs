//! Seeding from sitemaps (`--sitemaps`).
//!
//! For each seed origin, the sitemaps listed in its robots.txt (or
//! `/sitemap.xml` when none are listed) are fetched through the fetcher (the downloader)
//! (so politeness applies), sitemap indexes are followed, and every
//! in-scope URL becomes a depth-0 request. Parsing runs off the runtime.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;

use futures_util::future::BoxFuture;

use trawl_core::{CrawlStats, Frontier, FrontierError, Request, Scope, Url, parse_canonical};
use trawl_fetch::{Fetcher, RequestOptions};
use trawl_robots::sitemap::{self, Sitemap};

/// Sitemap documents fetched at most per crawl.
const MAX_SITEMAPS: usize = 1000;

/// Fetch the seeds' sitemaps and push their URLs. Returns how many new
/// requests were queued.
pub async fn seed(
    fetcher: &dyn Fetcher,
    seeds: &[Url],
    scope: &Scope,
    frontier: &dyn Frontier,
    stats: &CrawlStats,
) -> Result<usize, FrontierError> {
    let added = std::sync::atomic::AtomicUsize::new(0);
    let in_scope = |u: &Url| scope.allows(u).is_ok();
    let mut push = |urls: Vec<Url>, filtered: u64| -> BoxFuture<'_, Result<bool, FrontierError>> {
        CrawlStats::add(&stats.filtered, filtered);
        let added = &added;
        Box::pin(async move {
            let requests = urls.into_iter().map(Request::seed).collect();
            added.fetch_add(frontier.push(requests).await?, Ordering::Relaxed);
            Ok(true)
        })
    };
    let read = read(fetcher, seeds, &in_scope, &mut push).await?;
    let added = added.load(Ordering::Relaxed);
    tracing::info!(sitemaps = read, added, "Sitemaps read.");
    Ok(added)
}

/// Read the sitemaps of the seeds' origins: those their robots.txt lists,
/// or `/sitemap.xml`; indexes are followed. Each document's in-scope page
/// URLs go to `found` (with how many were out of scope), which says
/// whether to read on. Returns how many documents were read.
pub async fn read<'a>(
    fetcher: &dyn Fetcher,
    seeds: &[Url],
    in_scope: &(dyn Fn(&Url) -> bool + Sync),
    found: &mut (
             dyn FnMut(Vec<Url>, u64) -> BoxFuture<'a, Result<bool, FrontierError>> + Send + 'a
         ),
) -> Result<usize, FrontierError> {
    let mut queue = VecDeque::new();
    let mut origins = HashSet::new();
    for seed in seeds {
        if !origins.insert(seed.origin().ascii_serialization()) {
            continue;
        }
        let listed: Vec<Url> = fetcher
            .robots(seed)
            .await
            .sitemaps()
            .iter()
            .filter_map(|s| parse_canonical(Some(seed), s))
            .collect();
        if listed.is_empty() {
            queue.extend(seed.join("/sitemap.xml").ok());
        } else {
            queue.extend(listed);
        }
    }
    let mut done = HashSet::new();
    while let Some(url) = queue.pop_front() {
        if done.len() >= MAX_SITEMAPS {
            tracing::warn!(limit = MAX_SITEMAPS, "Sitemap limit reached.");
            break;
        }
        if !done.insert(url.to_string()) || !in_scope(&url) {
            continue;
        }
        let outcome = fetcher
            .fetch(&url, &RequestOptions::default(), &|u| in_scope(u))
            .await;
        if outcome.error.is_some() || outcome.status != Some(200) {
            tracing::info!(%url, status = ?outcome.status, error = ?outcome.error, "Sitemap not fetched.");
            continue;
        }
        let body = outcome.body;
        let parsed = tokio::task::spawn_blocking(move || sitemap::parse(&body)).await;
        match parsed {
            Ok(Ok(Sitemap::Index(children))) => {
                queue.extend(
                    children
                        .iter()
                        .filter_map(|c| parse_canonical(Some(&url), c)),
                );
            }
            Ok(Ok(Sitemap::UrlSet(entries))) => {
                let mut urls = Vec::new();
                let mut filtered = 0;
                for entry in entries {
                    match parse_canonical(Some(&url), &entry.loc) {
                        Some(u) if in_scope(&u) => urls.push(u),
                        _ => filtered += 1,
                    }
                }
                if !found(urls, filtered).await? {
                    break;
                }
            }
            Ok(Err(error)) => tracing::warn!(%url, %error, "Bad sitemap."),
            Err(error) => tracing::warn!(%url, %error, "Sitemap parser task failed."),
        }
    }
    Ok(done.len())
}
