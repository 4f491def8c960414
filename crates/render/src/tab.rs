//! One browser tab and one page rendered in it.
//!
//! The page's own document is never fetched by Chromium: trawl's downloader
//! fetched it (robots.txt, politeness, pacing, proxies, retries, ban
//! detection all applied), and the tab is handed that response through
//! `Fetch.fulfillRequest`. Chromium loads only what the page itself loads
//! (scripts, XHR), through the tab's browser context (its proxy), minus
//! what is blocked. Every request of the tab is paused on its way out
//! (`Fetch.requestPaused`) and answered here: fulfilled, blocked or let
//! through.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EventRequestPaused, FailRequestParams, FulfillRequestParams, HeaderEntry,
};
use chromiumoxide::cdp::browser_protocol::inspector::EventTargetCrashed;
use chromiumoxide::cdp::browser_protocol::network::{
    CookieParam, ErrorReason, EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent,
    GetCookiesParams, ResourceType, SetCookiesParams, SetExtraHttpHeadersParams,
    SetUserAgentOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::page::{NavigateParams, PrintToPdfParams};
use chromiumoxide::page::ScreenshotParams;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use trawl_core::render::{Action, Blocked, Step, Until, Wait};

use crate::{Cookie, RenderError, RenderJob, Rendered};

/// How often a condition in the page is checked.
const POLL: Duration = Duration::from_millis(25);
/// After a scroll, a page that has not grown and has had no request in
/// flight for this long is at the end of its list.
const SCROLL_QUIET: Duration = Duration::from_millis(1000);
/// Without waits of its own, a page is taken after `load` and this long
/// without a request in flight…
const DEFAULT_IDLE: Duration = Duration::from_millis(500);
/// …or this long after `load` at most.
const DEFAULT_SETTLE: Duration = Duration::from_secs(5);

/// What the tab's request handler needs to know about the page being
/// rendered now.
#[derive(Default)]
struct Current {
    /// The document to hand over, taken by the first request for it.
    document: Option<Document>,
    url: String,
    host: Option<String>,
    block: Vec<Blocked>,
    guard: Option<std::sync::Arc<dyn crate::RequestGuard>>,
}

struct Document {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Requests in flight in the tab, for network-idle waits.
#[derive(Default)]
struct Network {
    in_flight: HashSet<String>,
    last_change: Option<Instant>,
    requests: u32,
    blocked: u32,
}

/// A tab kept open between pages.
pub(crate) struct Tab {
    pub(crate) page: Page,
    current: Arc<parking_lot::Mutex<Current>>,
    network: Arc<parking_lot::Mutex<Network>>,
    crashed: Arc<Notify>,
    crashed_flag: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    /// What the page is doing now, for a deadline's message.
    step: parking_lot::Mutex<String>,
    /// The User-Agent and headers last set on the tab (set again only
    /// when a page needs others).
    identity: parking_lot::Mutex<Option<Identity>>,
}

type Identity = (Option<String>, Vec<(String, String)>);

impl Drop for Tab {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Tab {
    /// Wires the tab's listeners. The page must already intercept requests
    /// (`Fetch.enable`).
    pub(crate) async fn new(page: Page) -> Result<Tab, RenderError> {
        let current = Arc::new(parking_lot::Mutex::new(Current::default()));
        let network = Arc::new(parking_lot::Mutex::new(Network::default()));
        let crashed = Arc::new(Notify::new());
        let crashed_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();

        let mut paused = page.event_listener::<EventRequestPaused>().await?;
        let (p, cur, net) = (page.clone(), current.clone(), network.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(event) = paused.next().await {
                answer(&p, &cur, &net, &event).await;
            }
        }));

        let mut sent = page.event_listener::<EventRequestWillBeSent>().await?;
        let net = network.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(e) = sent.next().await {
                let mut n = net.lock();
                n.in_flight.insert(e.request_id.inner().clone());
                n.last_change = Some(Instant::now());
                n.requests += 1;
            }
        }));
        let mut finished = page.event_listener::<EventLoadingFinished>().await?;
        let net = network.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(e) = finished.next().await {
                let mut n = net.lock();
                n.in_flight.remove(e.request_id.inner());
                n.last_change = Some(Instant::now());
            }
        }));
        let mut failed = page.event_listener::<EventLoadingFailed>().await?;
        let net = network.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(e) = failed.next().await {
                let mut n = net.lock();
                n.in_flight.remove(e.request_id.inner());
                n.last_change = Some(Instant::now());
            }
        }));
        let mut crash = page.event_listener::<EventTargetCrashed>().await?;
        let (c, flag) = (crashed.clone(), crashed_flag.clone());
        tasks.push(tokio::spawn(async move {
            if crash.next().await.is_some() {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                c.notify_waiters();
                c.notify_one();
            }
        }));
        Ok(Tab {
            page,
            current,
            network,
            crashed,
            crashed_flag,
            tasks,
            step: parking_lot::Mutex::new(String::new()),
            identity: parking_lot::Mutex::new(None),
        })
    }

    /// What the page was doing last ("waiting for selector `…`").
    pub(crate) fn step(&self) -> String {
        self.step.lock().clone()
    }

    fn doing(&self, what: &str) {
        *self.step.lock() = what.to_string();
    }

    pub(crate) fn crashed(&self) -> bool {
        self.crashed_flag.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Renders one page; fails with [`RenderError::Crashed`] as soon as
    /// the tab crashes.
    pub(crate) async fn render(&self, job: &RenderJob<'_>) -> Result<Rendered, RenderError> {
        tokio::select! {
            r = self.render_inner(job) => r,
            _ = self.crashed.notified() => Err(RenderError::Crashed),
        }
    }

    async fn render_inner(&self, job: &RenderJob<'_>) -> Result<Rendered, RenderError> {
        let started = Instant::now();
        let spec = job.spec;
        {
            let mut cur = self.current.lock();
            *cur = Current {
                document: Some(Document {
                    status: job.status,
                    headers: job.headers.to_vec(),
                    body: job.body.to_vec(),
                }),
                url: job.url.as_str().to_string(),
                host: job.url.host_str().map(str::to_string),
                block: spec.block.clone(),
                guard: job.guard.cloned(),
            };
            let mut net = self.network.lock();
            *net = Network::default();
        }
        let identity: Identity = (
            job.user_agent.map(str::to_string),
            job.request_headers.to_vec(),
        );
        if self.identity.lock().as_ref() != Some(&identity) {
            if let Some(ua) = job.user_agent {
                self.page
                    .execute(SetUserAgentOverrideParams::new(ua.to_string()))
                    .await?;
            }
            let headers: serde_json::Map<String, serde_json::Value> = job
                .request_headers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            self.page
                .execute(SetExtraHttpHeadersParams::new(
                    chromiumoxide::cdp::browser_protocol::network::Headers::new(
                        serde_json::Value::Object(headers),
                    ),
                ))
                .await?;
            *self.identity.lock() = Some(identity);
        }
        if !job.cookies.is_empty() {
            let cookies = job
                .cookies
                .iter()
                .map(|c| {
                    let mut p = CookieParam::new(c.name.clone(), c.value.clone());
                    p.url = Some(job.url.as_str().to_string());
                    if let Some(d) = &c.domain {
                        p.domain = Some(d.clone());
                    }
                    if let Some(path) = &c.path {
                        p.path = Some(path.clone());
                    }
                    p
                })
                .collect::<Vec<_>>();
            self.page.execute(SetCookiesParams::new(cookies)).await?;
        }

        self.doing("loading the page");
        let nav = self
            .page
            .execute(NavigateParams::new(job.url.as_str().to_string()))
            .await?;
        if let Some(text) = &nav.result.error_text {
            return Err(RenderError::Navigation(text.clone()));
        }
        if spec.wait.is_empty() {
            // The default: `load`, then what scripts fetch after it (most
            // apps build their content from an XHR started on load): up
            // to DEFAULT_SETTLE for 500 ms without a request, and no error
            // if the page never goes quiet.
            self.wait(&Wait {
                until: Until::Load,
                timeout: trawl_core::render::STEP_TIMEOUT,
            })
            .await?;
            let _ = self
                .network_idle(
                    DEFAULT_IDLE,
                    Instant::now() + DEFAULT_SETTLE,
                    "network idle",
                )
                .await;
        }
        for wait in &spec.wait {
            self.wait(wait).await?;
        }
        for (n, action) in spec.actions.iter().enumerate() {
            self.act(n, action).await?;
        }
        self.doing("reading the DOM");
        let html = self.page.content().await?;
        let final_url = self
            .page
            .url()
            .await?
            .unwrap_or_else(|| job.url.as_str().to_string());
        let screenshot = if spec.screenshot {
            Some(
                self.page
                    .screenshot(ScreenshotParams::builder().full_page(true).build())
                    .await?,
            )
        } else {
            None
        };
        let pdf = if spec.pdf {
            Some(self.page.pdf(PrintToPdfParams::default()).await?)
        } else {
            None
        };
        // Cookies go back to a session's jar; without a session nobody
        // reads them.
        let cookies = if job.session.is_some() {
            self.cookies(job).await.unwrap_or_default()
        } else {
            Vec::new()
        };
        let (requests, blocked) = {
            let n = self.network.lock();
            (n.requests, n.blocked)
        };
        Ok(Rendered {
            html,
            final_url,
            screenshot,
            pdf,
            cookies,
            requests,
            blocked,
            elapsed: started.elapsed(),
        })
    }

    /// Forgets the page: requests it still makes are let through, and
    /// the next page's navigation ends it (a navigation to about:blank in
    /// between would cost every page a second navigation).
    pub(crate) fn done(&self) {
        *self.current.lock() = Current::default();
    }

    async fn cookies(&self, job: &RenderJob<'_>) -> Result<Vec<Cookie>, RenderError> {
        let got = self
            .page
            .execute(GetCookiesParams {
                urls: Some(vec![job.url.as_str().to_string()]),
            })
            .await?;
        Ok(got
            .result
            .cookies
            .iter()
            .map(|c| Cookie {
                name: c.name.clone(),
                value: c.value.clone(),
                domain: Some(c.domain.clone()),
                path: Some(c.path.clone()),
            })
            .collect())
    }

    async fn wait(&self, wait: &Wait) -> Result<(), RenderError> {
        let what = describe_wait(&wait.until);
        self.doing(&what);
        let deadline = Instant::now() + wait.timeout;
        match &wait.until {
            Until::Delay(d) => {
                tokio::time::sleep((*d).min(wait.timeout)).await;
                Ok(())
            }
            Until::NetworkIdle(quiet) => self.network_idle(*quiet, deadline, &what).await,
            Until::Load => {
                self.poll_js("document.readyState === 'complete'", deadline, &what)
                    .await
            }
            Until::DomContentLoaded => {
                self.poll_js("document.readyState !== 'loading'", deadline, &what)
                    .await
            }
            Until::Selector(sel) => self.poll_js(&selector_js(sel), deadline, &what).await,
            Until::Js(expr) => self.poll_js(&format!("!!({expr})"), deadline, &what).await,
        }
    }

    async fn network_idle(
        &self,
        quiet: Duration,
        deadline: Instant,
        what: &str,
    ) -> Result<(), RenderError> {
        let since = Instant::now();
        loop {
            let idle_for = {
                let n = self.network.lock();
                if n.in_flight.is_empty() {
                    Some(since.max(n.last_change.unwrap_or(since)).elapsed())
                } else {
                    None
                }
            };
            if idle_for.is_some_and(|d| d >= quiet) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RenderError::Timeout(what.to_string()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `expr` is true. The page checks it itself every 10 ms
    /// (one round trip per second of waiting, not one per check); a check
    /// cut short by a navigation is tried again until the deadline.
    async fn poll_js(&self, expr: &str, deadline: Instant, what: &str) -> Result<(), RenderError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RenderError::Timeout(what.to_string()));
            }
            let slice = left.min(Duration::from_secs(1)).as_millis();
            let js = format!(
                "new Promise(resolve => {{ const end = Date.now() + {slice}; \
                 const check = () => {{ let ok = false; try {{ ok = !!({expr}); }} catch (e) {{}} \
                 if (ok) resolve(true); else if (Date.now() >= end) resolve(false); \
                 else setTimeout(check, 10); }}; check(); }})"
            );
            match self.eval(&js).await {
                Ok(v) if v.as_bool() == Some(true) => return Ok(()),
                Ok(_) => {}
                Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Err(e) => return Err(e),
            }
        }
    }

    async fn eval_bool(&self, expr: &str) -> Result<bool, RenderError> {
        let v = self.eval(expr).await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    async fn eval(&self, expr: &str) -> Result<serde_json::Value, RenderError> {
        let result = self
            .page
            .evaluate_expression(expr)
            .await
            .map_err(|e| RenderError::Script(format!("{expr}: {e}")))?;
        Ok(result.value().cloned().unwrap_or(serde_json::Value::Null))
    }

    async fn act(&self, n: usize, action: &Action) -> Result<(), RenderError> {
        let deadline = Instant::now() + action.timeout;
        let what = format!("action {} ({})", n + 1, describe_step(&action.step));
        self.doing(&what);
        let timed_out = || RenderError::Timeout(what.clone());
        match &action.step {
            Step::Wait(d) => {
                tokio::time::sleep((*d).min(action.timeout)).await;
            }
            Step::WaitFor(sel) => self.poll_js(&selector_js(sel), deadline, &what).await?,
            Step::Scroll(times) => {
                for _ in 0..*times {
                    let before = self.height().await?;
                    // The scroll event is dispatched at the next frame, which
                    // a tab rendering in the background may not get soon:
                    // dispatch it now too, so the page's handlers run
                    // (those that look at the scroll position see the new
                    // one), then let what they started begin.
                    self.eval(
                        "window.scrollTo(0, document.documentElement.scrollHeight); \
                         window.dispatchEvent(new Event('scroll')); \
                         new Promise(r => setTimeout(() => r(true), 20))",
                    )
                    .await?;
                    // Until the page grows, or the network has been quiet
                    // for a while without it growing (the end of the list).
                    let mut quiet_since: Option<Instant> = None;
                    loop {
                        if self.height().await? > before {
                            break;
                        }
                        let idle = self.network.lock().in_flight.is_empty();
                        match (idle, quiet_since) {
                            (true, None) => quiet_since = Some(Instant::now()),
                            (true, Some(t)) if t.elapsed() >= SCROLL_QUIET => break,
                            (false, _) => quiet_since = None,
                            _ => {}
                        }
                        if Instant::now() >= deadline {
                            return Err(timed_out());
                        }
                        tokio::time::sleep(POLL).await;
                    }
                }
            }
            Step::Click { selector, times } => {
                for _ in 0..*times {
                    let js = format!(
                        "(() => {{ const e = document.querySelector({}); \
                         if (!e || e.disabled) return false; e.scrollIntoView(); e.click(); return true; }})()",
                        json(selector)
                    );
                    if !self.until_done(&js, deadline).await? {
                        return if action.optional {
                            Ok(())
                        } else {
                            Err(timed_out())
                        };
                    }
                    // Let what the click started arrive.
                    let settle = Instant::now() + Duration::from_millis(2000);
                    let _ = self
                        .network_idle(Duration::from_millis(100), settle.min(deadline), &what)
                        .await;
                }
            }
            Step::Type { selector, text } => {
                let js = format!(
                    "(() => {{ const e = document.querySelector({}); if (!e) return false; \
                     e.focus(); e.value = {}; \
                     e.dispatchEvent(new Event('input', {{bubbles: true}})); \
                     e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
                    json(selector),
                    json(text)
                );
                if !self.until_done(&js, deadline).await? && !action.optional {
                    return Err(timed_out());
                }
            }
        }
        Ok(())
    }

    /// Runs `js` (which does something to an element and says whether it
    /// found it) until it returns true; false when the deadline passed
    /// first.
    async fn until_done(&self, js: &str, deadline: Instant) -> Result<bool, RenderError> {
        loop {
            if self.eval_bool(js).await? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn height(&self) -> Result<f64, RenderError> {
        Ok(self
            .eval("document.documentElement.scrollHeight")
            .await?
            .as_f64()
            .unwrap_or(0.0))
    }
}

/// Answers one paused request: the page's own document from trawl's
/// response, blocked kinds refused, the rest let through.
async fn answer(
    page: &Page,
    current: &parking_lot::Mutex<Current>,
    network: &parking_lot::Mutex<Network>,
    event: &EventRequestPaused,
) {
    enum Verdict {
        Fulfil(Document),
        Block,
        Continue,
    }
    let mut guard = None;
    let mut verdict = {
        let mut cur = current.lock();
        let url = event.request.url.as_str();
        if event.resource_type == ResourceType::Document
            && cur.document.is_some()
            && same_document(url, &cur.url)
        {
            match cur.document.take() {
                Some(d) => Verdict::Fulfil(d),
                None => Verdict::Continue,
            }
        } else if blocked(&cur, &event.resource_type, url) {
            Verdict::Block
        } else {
            guard = cur.guard.clone();
            Verdict::Continue
        }
    };
    // The service's address guard holds for what the page loads too
    // (scripts, frames, fetches, redirects of them).
    if let Some(guard) = guard
        && let Ok(url) = url::Url::parse(&event.request.url)
        && matches!(url.scheme(), "http" | "https" | "ws" | "wss")
        && let Some(why) = guard.refuses(&url).await
    {
        tracing::debug!(url = %event.request.url, why, "A page's request was refused by the address guard.");
        verdict = Verdict::Block;
    }
    let id = event.request_id.clone();
    let sent = match verdict {
        Verdict::Fulfil(doc) => {
            let headers: Vec<HeaderEntry> = doc
                .headers
                .iter()
                // The body is already decoded and whole.
                .filter(|(k, _)| {
                    !matches!(
                        k.to_ascii_lowercase().as_str(),
                        "content-encoding" | "content-length" | "transfer-encoding"
                    )
                })
                .map(|(k, v)| HeaderEntry::new(k.clone(), v.clone()))
                .collect();
            let mut params = FulfillRequestParams::new(id, doc.status as i64);
            params.response_headers = Some(headers);
            params.body = Some(data_encoding::BASE64.encode(&doc.body).into());
            page.execute(params).await.map(|_| ())
        }
        Verdict::Block => {
            network.lock().blocked += 1;
            page.execute(FailRequestParams::new(id, ErrorReason::BlockedByClient))
                .await
                .map(|_| ())
        }
        Verdict::Continue => page
            .execute(ContinueRequestParams::new(id))
            .await
            .map(|_| ()),
    };
    if let Err(error) = sent {
        tracing::debug!(%error, url = %event.request.url, "Could not answer a paused request.");
    }
}

/// The same URL, ignoring a fragment.
fn same_document(a: &str, b: &str) -> bool {
    let strip = |u: &str| u.split('#').next().unwrap_or(u).to_string();
    strip(a) == strip(b)
}

fn blocked(cur: &Current, kind: &ResourceType, url: &str) -> bool {
    if cur.url.is_empty() {
        return false;
    }
    for b in &cur.block {
        let hit = match b {
            Blocked::Image => *kind == ResourceType::Image,
            Blocked::Media => *kind == ResourceType::Media,
            Blocked::Font => *kind == ResourceType::Font,
            Blocked::Stylesheet => *kind == ResourceType::Stylesheet,
            Blocked::ThirdParty => {
                let host = url::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string));
                host.is_some() && host != cur.host && !url.starts_with("data:")
            }
        };
        if hit {
            return true;
        }
    }
    false
}

fn json(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn selector_js(sel: &str) -> String {
    format!("!!document.querySelector({})", json(sel))
}

fn describe_wait(until: &Until) -> String {
    match until {
        Until::Load => "waiting for load".into(),
        Until::DomContentLoaded => "waiting for DOMContentLoaded".into(),
        Until::NetworkIdle(d) => format!("waiting for {}ms of network idle", d.as_millis()),
        Until::Selector(s) => format!("waiting for selector `{s}`"),
        Until::Js(js) => format!("waiting for `{js}`"),
        Until::Delay(d) => format!("waiting {}ms", d.as_millis()),
    }
}

fn describe_step(step: &Step) -> String {
    match step {
        Step::Scroll(n) => format!("scroll {n}×"),
        Step::Click { selector, times } => format!("click `{selector}` {times}×"),
        Step::Type { selector, .. } => format!("type into `{selector}`"),
        Step::Wait(d) => format!("wait {}ms", d.as_millis()),
        Step::WaitFor(s) => format!("wait for `{s}`"),
    }
}
