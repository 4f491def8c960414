//! trawl-render: pages rendered in headless Chromium.
//!
//! A [`Renderer`] is a pool of browser tabs (`--render-tabs`), sized apart
//! from HTTP concurrency. It starts Debian's `chromium` itself (see
//! [`process`]) and drives it over the DevTools protocol (chromiumoxide).
//! Tabs are reused; each proxy (and each session) gets its own browser
//! context, so cookies and proxies never mix. A page that passes its
//! deadline or crashes its tab fails alone; a browser that dies, stops
//! answering or grows past the memory ceiling is replaced, and the pages
//! it had are failed (the engine retries them like any fetch error).
//!
//! # Layout
//! - [`process`]: one Chromium process, its process group and its memory.
//! - `tab`: one tab; handing over the document, blocking, waits, actions.
//! - [`auto`]: whether a page fetched over plain HTTP needs rendering.
//! - `stats`: tabs busy, pages rendered, render time percentiles.

pub mod auto;
pub mod process;
mod stats;
mod tab;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::handler::HandlerConfig;
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use trawl_core::RenderSpec;

pub use process::{ChromiumProcess, LaunchConfig, default_executable};
pub use stats::{RenderStats, RenderStatsSnapshot};

use tab::Tab;

/// Why a page could not be rendered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    #[error("could not start chromium: {0}")]
    Launch(String),
    #[error("browser: {0}")]
    Browser(String),
    #[error("the tab crashed")]
    Crashed,
    #[error("render timed out {0}")]
    Timeout(String),
    #[error("navigation failed: {0}")]
    Navigation(String),
    #[error("script failed: {0}")]
    Script(String),
    #[error("the renderer is shut down")]
    Closed,
}

impl From<chromiumoxide::error::CdpError> for RenderError {
    fn from(e: chromiumoxide::error::CdpError) -> Self {
        RenderError::Browser(e.to_string())
    }
}

/// A cookie passed between trawl's cookie jars and the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub domain: Option<String>,
    pub path: Option<String>,
}

/// The proxy a browser context goes through.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrowserProxy {
    /// `http://host:port`, `socks5://host:port` (no credentials).
    pub server: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// One page to render: the response trawl fetched for it, and how.
#[derive(Debug, Clone, Copy)]
pub struct RenderJob<'a> {
    pub url: &'a url::Url,
    pub status: u16,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub spec: &'a RenderSpec,
    pub proxy: Option<&'a BrowserProxy>,
    /// Pages of one session share a browser context (and its cookies).
    pub session: Option<u64>,
    pub user_agent: Option<&'a str>,
    /// Headers sent with every request the page makes.
    pub request_headers: &'a [(String, String)],
    pub cookies: &'a [Cookie],
    /// Checks every request the page makes (the service's address guard).
    pub guard: Option<&'a Arc<dyn RequestGuard>>,
}

/// A check on each request a page makes: why it is refused, if it is.
pub trait RequestGuard: Send + Sync + std::fmt::Debug {
    fn refuses<'a>(
        &'a self,
        url: &'a url::Url,
    ) -> futures_util::future::BoxFuture<'a, Option<String>>;
}

/// A rendered page.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The DOM after waits and actions, serialised.
    pub html: String,
    pub final_url: String,
    pub screenshot: Option<Vec<u8>>,
    pub pdf: Option<Vec<u8>>,
    /// The context's cookies for the page's URL afterwards.
    pub cookies: Vec<Cookie>,
    /// Requests the page made, and how many of them were blocked.
    pub requests: u32,
    pub blocked: u32,
    pub elapsed: Duration,
}

/// The pool's settings.
#[derive(Debug, Clone)]
pub struct RenderConfig {
    pub launch: LaunchConfig,
    /// Pages rendered at once.
    pub tabs: usize,
    /// A page's deadline unless its spec says otherwise.
    pub page_timeout: Duration,
    /// The browser (all its processes) is replaced past this RSS.
    pub memory_ceiling: Option<u64>,
    /// Browser contexts kept (one per proxy and session); the least
    /// recently used is closed past it.
    pub max_contexts: usize,
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig {
            launch: LaunchConfig::default(),
            tabs: 2,
            page_timeout: Duration::from_secs(30),
            memory_ceiling: Some(2 << 30),
            max_contexts: 16,
        }
    }
}

/// The pool of tabs.
pub struct Renderer {
    cfg: RenderConfig,
    permits: Semaphore,
    browser: tokio::sync::Mutex<Option<Arc<Browser>>>,
    stats: Arc<RenderStats>,
    generation: AtomicU64,
}

type ContextKey = (Option<BrowserProxy>, Option<u64>);

struct Context {
    id: BrowserContextId,
    idle: Vec<Tab>,
    last_used: Instant,
}

/// One running browser.
struct Browser {
    /// Taken by `Drop`, which ends it off the runtime's threads.
    process: Arc<parking_lot::Mutex<Option<ChromiumProcess>>>,
    pid: u32,
    cdp: chromiumoxide::Browser,
    alive: Arc<AtomicBool>,
    contexts: tokio::sync::Mutex<HashMap<ContextKey, Context>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    generation: u64,
    rss: Arc<AtomicU64>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // SIGTERM, a grace period, SIGKILL to the group: not on a runtime
        // thread.
        if let Some(process) = self.process.lock().take() {
            let spawned = std::thread::Builder::new()
                .name("trawl-chromium-stop".into())
                .spawn(move || drop(process));
            if let Err(error) = spawned {
                tracing::warn!(%error, "Stopping Chromium on this thread.");
            }
        }
    }
}

impl Browser {
    fn usable(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
            && self.process.lock().as_mut().is_some_and(|p| !p.exited())
    }
}

impl Renderer {
    pub fn new(cfg: RenderConfig) -> Renderer {
        let tabs = cfg.tabs.max(1);
        let stats = Arc::new(RenderStats::new(tabs));
        Renderer {
            permits: Semaphore::new(tabs),
            cfg,
            browser: tokio::sync::Mutex::new(None),
            stats,
            generation: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &RenderConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &Arc<RenderStats> {
        &self.stats
    }

    /// Starts the browser now rather than at the first page, so a missing
    /// or broken Chromium is reported before the crawl begins.
    pub async fn start(&self) -> Result<(), RenderError> {
        self.browser().await.map(|_| ())
    }

    /// Renders one page in a free tab (waiting for one).
    pub async fn render(&self, job: &RenderJob<'_>) -> Result<Rendered, RenderError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| RenderError::Closed)?;
        let _busy = trawl_core::stats::GaugeGuard::new(&self.stats.busy);
        let limit = job.spec.timeout.unwrap_or(self.cfg.page_timeout);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + limit;
        let result = self.render_in_tab(job, deadline).await;
        self.stats.record(&result, started.elapsed());
        result
    }

    async fn render_in_tab(
        &self,
        job: &RenderJob<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<Rendered, RenderError> {
        let late = |what: &str| {
            RenderError::Timeout(format!("at the page's deadline, waiting for {what}"))
        };
        let browser = tokio::time::timeout_at(deadline, self.browser())
            .await
            .map_err(|_| late("the browser"))??;
        let key: ContextKey = (job.proxy.cloned(), job.session);
        let tab = match tokio::time::timeout_at(deadline, self.take_tab(&browser, &key, job.proxy))
            .await
        {
            Ok(tab) => tab?,
            Err(_) => {
                self.check_responsive(&browser).await;
                return Err(late("a tab"));
            }
        };
        let outcome = match tokio::time::timeout_at(deadline, tab.render(job)).await {
            Ok(r) => r,
            Err(_) => {
                // A slow page, or a browser that stopped answering?
                self.check_responsive(&browser).await;
                Err(RenderError::Timeout(format!(
                    "at the page's deadline, {}",
                    tab.step()
                )))
            }
        };
        match &outcome {
            Ok(_) if !tab.crashed() => {
                tab.done();
                self.put_back(&browser, key, tab).await;
            }
            Ok(_) => self.close_tab(&browser, tab).await,
            Err(RenderError::Crashed) => {
                trawl_core::CrawlStats::inc(&self.stats.crashes);
                self.close_tab(&browser, tab).await;
            }
            Err(_) => self.close_tab(&browser, tab).await,
        }
        outcome
    }

    async fn put_back(&self, browser: &Arc<Browser>, key: ContextKey, tab: Tab) {
        let mut contexts = browser.contexts.lock().await;
        match contexts.get_mut(&key) {
            Some(ctx) => {
                ctx.idle.push(tab);
                ctx.last_used = Instant::now();
            }
            // Its context was closed meanwhile (the least recently used
            // one, to make room): the tab goes with it.
            None => {
                drop(contexts);
                self.close_tab(browser, tab).await;
            }
        }
    }

    /// Marks the browser for replacement when it does not answer a
    /// version query within 2 s (hung, or stopped).
    async fn check_responsive(&self, browser: &Arc<Browser>) {
        let answered = tokio::time::timeout(Duration::from_secs(2), browser.cdp.version()).await;
        if !matches!(answered, Ok(Ok(_))) {
            tracing::warn!("Chromium does not answer; restarting it.");
            browser.alive.store(false, Ordering::SeqCst);
        }
    }

    /// Closes a tab that failed; a browser that cannot even do that is
    /// hung and gets replaced.
    async fn close_tab(&self, browser: &Arc<Browser>, tab: Tab) {
        let page = tab.page.clone();
        drop(tab);
        let closed = tokio::time::timeout(Duration::from_secs(5), page.close()).await;
        if closed.is_err() {
            tracing::warn!("Chromium does not answer; restarting it.");
            browser.alive.store(false, Ordering::SeqCst);
        }
    }

    async fn take_tab(
        &self,
        browser: &Arc<Browser>,
        key: &ContextKey,
        proxy: Option<&BrowserProxy>,
    ) -> Result<Tab, RenderError> {
        let mut contexts = browser.contexts.lock().await;
        if let Some(ctx) = contexts.get_mut(key) {
            ctx.last_used = Instant::now();
            if let Some(tab) = ctx.idle.pop() {
                return Ok(tab);
            }
        } else {
            if contexts.len() >= self.cfg.max_contexts.max(1) {
                let oldest = contexts
                    .iter()
                    .min_by_key(|(_, c)| c.last_used)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest
                    && let Some(old) = contexts.remove(&k)
                {
                    drop(old.idle);
                    let _ = browser.cdp.dispose_browser_context(old.id).await;
                }
            }
            let mut params = CreateBrowserContextParams::builder().dispose_on_detach(true);
            if let Some(p) = proxy {
                // Chromium sends loopback requests past proxies unless told
                // not to.
                params = params
                    .proxy_server(p.server.clone())
                    .proxy_bypass_list("<-loopback>");
            }
            let id = browser.cdp.create_browser_context(params.build()).await?;
            contexts.insert(
                key.clone(),
                Context {
                    id,
                    idle: Vec::new(),
                    last_used: Instant::now(),
                },
            );
        }
        let Some(id) = contexts.get(key).map(|c| c.id.clone()) else {
            return Err(RenderError::Browser("browser context vanished".into()));
        };
        drop(contexts);
        let mut params = CreateTargetParams::new("about:blank");
        params.browser_context_id = Some(id);
        let page = browser.cdp.new_page(params).await?;
        if let Some(p) = proxy
            && let Some(user) = &p.username
        {
            page.authenticate(chromiumoxide::auth::Credentials {
                username: user.clone(),
                password: p.password.clone().unwrap_or_default(),
            })
            .await?;
        }
        // No focus emulation (Playwright's default): measured, it costs
        // every page ~30 % more CPU, and nothing here needs it (scrolls
        // dispatch their event themselves).
        Tab::new(page).await
    }

    /// The running browser, started or replaced when needed.
    async fn browser(&self) -> Result<Arc<Browser>, RenderError> {
        let mut slot = self.browser.lock().await;
        if let Some(b) = slot.as_ref() {
            let over = self
                .cfg
                .memory_ceiling
                .is_some_and(|c| b.rss.load(Ordering::Relaxed) > c);
            if b.usable() && !over {
                return Ok(b.clone());
            }
            if over {
                tracing::warn!(
                    rss_mb = b.rss.load(Ordering::Relaxed) >> 20,
                    "Chromium grew past the memory ceiling; restarting it."
                );
            } else {
                tracing::warn!("Chromium exited or stopped answering; restarting it.");
            }
            trawl_core::CrawlStats::inc(&self.stats.restarts);
            // Pages still rendering in it fail; the process group is
            // killed when the last of them lets go.
            *slot = None;
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let browser = Arc::new(self.launch(generation).await?);
        *slot = Some(browser.clone());
        Ok(browser)
    }

    async fn launch(&self, generation: u64) -> Result<Browser, RenderError> {
        let launch = self.cfg.launch.clone();
        let process = tokio::task::spawn_blocking(move || ChromiumProcess::launch(&launch))
            .await
            .map_err(|e| RenderError::Launch(e.to_string()))??;
        let config = HandlerConfig {
            request_intercept: true,
            request_timeout: Duration::from_secs(20),
            viewport: Some(chromiumoxide::handler::viewport::Viewport {
                width: 1280,
                height: 900,
                ..Default::default()
            }),
            ..HandlerConfig::default()
        };
        let (cdp, mut handler) =
            chromiumoxide::Browser::connect_with_config(process.ws_url.clone(), config).await?;
        let alive = Arc::new(AtomicBool::new(true));
        let pid = process.pid();
        let held = Arc::new(parking_lot::Mutex::new(Some(process)));
        let a = alive.clone();
        let mut tasks = vec![tokio::spawn(async move {
            while handler.next().await.is_some() {}
            // The socket closed: the browser is gone.
            a.store(false, Ordering::SeqCst);
        })];
        let rss = Arc::new(AtomicU64::new(0));
        let (r, pgid, stats) = (rss.clone(), pid as i32, self.stats.clone());
        let (a, h) = (alive.clone(), held.clone());
        let ceiling = self.cfg.memory_ceiling.unwrap_or(u64::MAX);
        tasks.push(tokio::spawn(async move {
            // Each second the cheap sum of RSS (an upper bound); the
            // proportional size (what the ceiling means) when that bound
            // passes the ceiling, and every fifth second for the stats.
            for tick in 0u64.. {
                // A browser that exited (crashed, killed) is reaped here,
                // so it is no zombie while the pool waits for a page.
                if h.lock().as_mut().is_some_and(|p| p.exited()) {
                    a.store(false, Ordering::SeqCst);
                    break;
                }
                let bytes = tokio::task::spawn_blocking(move || {
                    let bound = process::group_rss_bound(pgid);
                    (bound > ceiling || tick % 5 == 0).then(|| process::group_memory(pgid))
                })
                .await
                .unwrap_or(None);
                if let Some(bytes) = bytes {
                    r.store(bytes, Ordering::Relaxed);
                    stats.browser_rss.store(bytes, Ordering::Relaxed);
                    stats.browser_peak_rss.fetch_max(bytes, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
        tracing::info!(pid, generation, "Chromium started.");
        Ok(Browser {
            pid,
            process: held,
            cdp,
            alive,
            contexts: tokio::sync::Mutex::new(HashMap::new()),
            tasks,
            generation,
            rss,
        })
    }

    /// Kills the browser now (pages rendering fail). Also done on drop.
    pub async fn shutdown(&self) {
        self.permits.close();
        let taken = self.browser.lock().await.take();
        if let Some(b) = taken {
            tracing::debug!(generation = b.generation, "Chromium stopped.");
            // Now, even if a page still holds the browser: SIGTERM (it
            // reaps its helpers), then SIGKILL to what is left.
            // Taken out of the browser, which pages may still hold: they
            // find it gone.
            let process = b.process.lock().take();
            if let Some(mut p) = process {
                let _ =
                    tokio::task::spawn_blocking(move || p.terminate(Duration::from_secs(2))).await;
            }
        }
    }

    /// The browser's process id, while one runs.
    pub async fn browser_pid(&self) -> Option<u32> {
        self.browser.lock().await.as_ref().map(|b| b.pid)
    }
}
