//! The downloader's edge: what the engine asks of whatever fetches pages.
//!
//! [`Downloader`](crate::Downloader) is the implementation every crawl
//! uses (plain HTTP, rendering through its browser pool when a request
//! asks, robots.txt, politeness, proxies, retries). Another one — a
//! rendering service, a recorded site replayed, a cache — plugs in with
//! `Engine::with_fetcher` and the rest of the crawl does not change.

use std::sync::Arc;

use trawl_core::Url;
use trawl_robots::Robots;

use crate::FetchError;
use crate::downloader::{FetchOutcome, RequestOptions};
use crate::proxy::ProxySpec;

/// Fetches pages for the engine.
#[async_trait::async_trait]
pub trait Fetcher: Send + Sync {
    /// Fetch `url` with a request's own headers, pool and validators,
    /// following redirects that `in_scope` accepts. A robots.txt denial,
    /// a stop while waiting and every failure are the outcome's `error`.
    async fn fetch(
        &self,
        url: &Url,
        options: &RequestOptions<'_>,
        in_scope: &(dyn for<'u> Fn(&'u Url) -> bool + Sync),
    ) -> FetchOutcome;

    /// The robots rules of `url`'s host (sitemap seeding reads their
    /// `Sitemap:` lines).
    async fn robots(&self, url: &Url) -> Arc<Robots>;

    /// Replace the proxy list of pool `name` while the crawl runs; returns
    /// (added, removed). Without proxies there is nothing to reload.
    fn reload_proxies(
        &self,
        name: &str,
        specs: &[ProxySpec],
    ) -> Result<(usize, usize), FetchError> {
        let _ = (name, specs);
        Ok((0, 0))
    }

    /// The crawl is stopping: give up waiting retries at once.
    fn stop_retrying(&self) {}

    /// Every fetch is done: publish the last statistics and release what
    /// is held (the browser).
    async fn finish(&self) {}
}

#[async_trait::async_trait]
impl Fetcher for crate::Downloader {
    async fn fetch(
        &self,
        url: &Url,
        options: &RequestOptions<'_>,
        in_scope: &(dyn for<'u> Fn(&'u Url) -> bool + Sync),
    ) -> FetchOutcome {
        self.fetch_with(url, options, in_scope).await
    }

    async fn robots(&self, url: &Url) -> Arc<Robots> {
        crate::Downloader::robots(self, url).await
    }

    fn reload_proxies(
        &self,
        name: &str,
        specs: &[ProxySpec],
    ) -> Result<(usize, usize), FetchError> {
        crate::Downloader::reload_proxies(self, name, specs)
    }

    fn stop_retrying(&self) {
        crate::Downloader::stop_retrying(self)
    }

    async fn finish(&self) {
        self.publish_proxy_stats(true);
        self.publish_render_stats(true);
        if let Some(r) = self.renderer() {
            r.shutdown().await;
        }
    }
}
