//! A crawl job's request, as sent and as kept: seeds, settings (a
//! settings layer, checked with JSON pointers), a spider file (its TOML
//! text, or the same tables as JSON) and a webhook.
//!
//! ```json
//! {"seeds": ["https://docs.example/"],
//!  "settings": {"max_pages": 500, "per_host": 4, "download_delay": "250ms"},
//!  "webhook": {"url": "https://hooks.example/trawl", "metadata": {"team": "a"}}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use trawl_core::{Spider as _, Url};
use trawl_settings::{Effective, Layer, UserAgents};
use trawl_spider::DeclarativeSpider;

use crate::error::ApiError;

/// Settings a job may not set: they name the server's files or its Redis
/// (a job's state, items and errors live in its own directory).
const SERVER_ONLY: &[&str] = &[
    "state",
    "redis",
    "output",
    "sinks",
    "errors",
    "dead_letter",
    "ca_certs",
    "proxy_file",
    "render_dir",
    "chromium",
];

/// `POST /v1/crawls`'s body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrawlRequest {
    /// Where to start (default: the spider's start URLs).
    #[serde(default)]
    pub seeds: Vec<String>,
    /// Settings, as in a settings file (`max_pages`, `per_host`, …; see
    /// docs/settings.md). A job without `max_pages` stops at 10,000.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Object)]
    pub settings: Value,
    /// A spider file: its TOML text, or its tables as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub spider: Option<SpiderSource>,
    /// Called when the job ends: a URL, or `{"url", "metadata"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub webhook: Option<Webhook>,
}

/// A spider file: its TOML text, or its tables as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SpiderSource {
    Toml(String),
    Tables(serde_json::Map<String, Value>),
}

/// Where the job's end is announced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Webhook {
    Url(String),
    Full {
        url: String,
        /// Sent back as is in every call.
        #[serde(default)]
        metadata: Value,
    },
}

impl Webhook {
    pub fn url(&self) -> &str {
        match self {
            Webhook::Url(url) | Webhook::Full { url, .. } => url,
        }
    }

    pub fn metadata(&self) -> Value {
        match self {
            Webhook::Url(_) => Value::Null,
            Webhook::Full { metadata, .. } => metadata.clone(),
        }
    }
}

/// A request checked and ready to crawl.
pub struct Prepared {
    pub seeds: Vec<Url>,
    pub effective: Effective,
    pub spider: Option<DeclarativeSpider>,
    pub webhook: Option<Url>,
}

impl Prepared {
    /// The job's page limit: its `max_pages`, else
    /// [`super::DEFAULT_MAX_PAGES`].
    pub fn max_pages(&self) -> u64 {
        self.effective
            .settings
            .max_pages
            .filter(|_| self.effective.is_set("max_pages"))
            .unwrap_or(super::DEFAULT_MAX_PAGES)
    }

    /// The crawl's plan, under the server's address guard and robots
    /// policy (a job turns robots.txt off only on a server that ignores
    /// it).
    pub fn plan(
        &self,
        guard: Option<std::sync::Arc<trawl_fetch::guard::AddressGuard>>,
        obey_robots: bool,
    ) -> Result<trawl_settings::Plan, ApiError> {
        let parts = self.spider.as_ref().map(|s| s.parts()).unwrap_or_default();
        let mut plan = self
            .effective
            .build(self.seeds.clone(), &parts)
            .map_err(settings_error)?;
        plan.crawl.fetch.address_guard = guard;
        if obey_robots {
            plan.crawl.fetch.obey_robots = true;
        }
        Ok(plan)
    }
}

fn bad(pointer: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::new(400, "invalid_request", message).at(pointer)
}

/// Check `req` and build what its crawl needs, on top of the server's
/// settings `base`.
pub fn prepare(base: &[Layer], req: &CrawlRequest) -> Result<Prepared, ApiError> {
    // Each layer with the pointer of where it came from.
    let mut layers: Vec<(Layer, &str)> = Vec::new();
    let spider = match &req.spider {
        None => None,
        Some(source) => {
            let text = match source {
                SpiderSource::Toml(text) => text.clone(),
                SpiderSource::Tables(tables) => toml::to_string(tables)
                    .map_err(|e| bad("/spider", format!("not a spider file: {e}")))?,
            };
            let spider = DeclarativeSpider::from_str("spider", &text)
                .map_err(|e| ApiError::new(400, "invalid_spider", e.to_string()).at("/spider"))?;
            if !spider.sinks().is_empty() {
                return Err(bad(
                    "/spider",
                    "a spider's outputs are not available through the API: a job's items are streamed from /v1/crawls/{id}/items",
                ));
            }
            layers.push((
                Layer::from_toml("spider", &text, Some("settings"))
                    .map_err(|e| bad("/spider/settings", e.to_string()))?,
                "/spider/settings",
            ));
            Some(spider)
        }
    };
    let settings = match &req.settings {
        Value::Null => Value::Object(Default::default()),
        other => other.clone(),
    };
    layers.push((
        Layer::from_json(&settings, "/settings").map_err(settings_error)?,
        "/settings",
    ));
    for (layer, at) in &layers {
        for key in layer.keys() {
            if SERVER_ONLY.contains(&key) {
                return Err(bad(
                    format!("{at}/{key}"),
                    format!(
                        "`{key}` is not available through the API: it names the server's own files or services"
                    ),
                ));
            }
        }
    }
    // Job records keep no secrets: credentials belong in the server's
    // settings, which jobs name (a pool through `host_pools`).
    for (layer, at) in &layers {
        let own = Effective::stack(std::slice::from_ref(layer)).map_err(settings_error)?;
        let pools = own.settings.proxy_pools.iter().flat_map(|(name, pool)| {
            pool.proxies
                .iter()
                .map(move |p| (format!("{at}/proxy_pools/{name}/proxies"), p))
        });
        let listed = own
            .settings
            .proxies
            .iter()
            .map(|p| (format!("{at}/proxies"), p));
        for (pointer, proxy) in listed.chain(pools) {
            if Url::parse(proxy).is_ok_and(|u| !u.username().is_empty() || u.password().is_some()) {
                return Err(bad(
                    pointer,
                    "proxy credentials are not kept in job records: put the pool in the server's settings (trawl serve --config) and name it in host_pools",
                ));
            }
        }
        for name in own.settings.headers.keys() {
            if ["authorization", "cookie", "proxy-authorization"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                return Err(bad(
                    format!("{at}/headers/{name}"),
                    format!("`{name}` is not kept in job records: set it in the server's settings"),
                ));
            }
        }
    }
    let layers: Vec<Layer> = base
        .iter()
        .cloned()
        .chain(layers.into_iter().map(|(layer, _)| layer))
        .collect();
    let effective = Effective::stack(&layers).map_err(settings_error)?;
    if matches!(effective.settings.user_agents, Some(UserAgents::File(_))) {
        return Err(bad(
            "/settings/user_agents",
            "a User-Agent file is not available through the API: give the list",
        ));
    }
    if let Some((name, _)) = effective
        .settings
        .proxy_pools
        .iter()
        .find(|(_, pool)| pool.file.is_some())
    {
        return Err(bad(
            format!("/settings/proxy_pools/{name}/file"),
            "a proxy file is not available through the API: give the list",
        ));
    }
    let mut seeds = Vec::new();
    for (i, s) in req.seeds.iter().enumerate() {
        seeds.push(http_url(s).ok_or_else(|| {
            ApiError::new(400, "invalid_url", format!("{s:?} is not an http(s) URL"))
                .at(format!("/seeds/{i}"))
        })?);
    }
    if seeds.is_empty() {
        seeds = spider.as_ref().map(|s| s.start_urls()).unwrap_or_default();
    }
    if seeds.is_empty() {
        return Err(bad("/seeds", "no seed URL (and no spider with start URLs)"));
    }
    let webhook = match &req.webhook {
        None => None,
        Some(hook) => Some(http_url(hook.url()).ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_url",
                format!("{:?} is not an http(s) URL", hook.url()),
            )
            .at("/webhook")
        })?),
    };
    Ok(Prepared {
        seeds,
        effective,
        spider,
        webhook,
    })
}

fn http_url(s: &str) -> Option<Url> {
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

pub(crate) fn settings_error(e: trawl_settings::SettingsError) -> ApiError {
    match e {
        trawl_settings::SettingsError::Json { pointer, message } => bad(pointer, message),
        other => bad("/settings", other.to_string()),
    }
}
