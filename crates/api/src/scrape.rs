//! `POST /v1/scrape`: fetch one URL (politely, through the address guard)
//! and answer with what the caller asked for.
//!
//! ```json
//! {"url": "https://shop.example/p/1",
//!  "fields": {"name": {"selector": "h1"},
//!             "price": {"selector": "span.price", "type": "number"}},
//!  "formats": ["json", "markdown", "links"],
//!  "headers": {"Accept-Language": "en"},
//!  "render": {"mode": "always", "wait": [{"selector": "ul.products li", "timeout": "5s"}]},
//!  "proxy_pool": "residential",
//!  "timeout": "10s"}
//! ```
//!
//! Answer: `url`, `final_url`, `status` (the site's), `timings`
//! (`fetch_ms`, `total_ms`), `title`, `rendered` (why and how long, when
//! the browser rendered it), and per format: `fields` (+ `warnings`) for
//! `json`, `markdown`, `text`, `html` (the main content), `raw_html`,
//! `links`, `screenshot` (a full-page PNG, base64; renders the page).
//!
//! `render` is `never`, `auto`, `always` or a table as in a spider file
//! (`mode`, `wait`, `actions`, `block`, `timeout`); `proxy_pool` names a
//! pool of the server's settings (or `direct`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use indexmap::IndexMap;
use scraper::Html;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use trawl_core::{RenderMode, RenderSpec, Url};
use trawl_extract::select::{CompiledRules, FieldRule, FieldType, Source};
use trawl_extract::{charset, readable};
use trawl_fetch::{FetchError, RequestOptions};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeRequest {
    pub url: String,
    /// Field rules, as in a spider file's `[items.NAME.fields]`.
    #[serde(default)]
    pub fields: IndexMap<String, FieldSpec>,
    /// What to answer with (default: `json`).
    #[serde(default)]
    pub formats: Vec<Format>,
    /// Sent with the request.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Deadline of the whole scrape (at most the server's).
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    /// Render the page in the browser.
    #[serde(default)]
    pub render: Option<RenderRequest>,
    /// A proxy pool of the server's settings, or `direct`.
    #[serde(default)]
    pub proxy_pool: Option<String>,
}

/// `render`: a mode, or a full spec.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RenderRequest {
    Mode(RenderMode),
    Spec(Box<RenderSpec>),
}

/// One field rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub selector: String,
    pub attr: Option<String>,
    #[serde(default)]
    pub html: bool,
    pub regex: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub required: bool,
    pub default: Option<Value>,
}

/// An answer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Json,
    Markdown,
    Text,
    Html,
    RawHtml,
    Links,
    Screenshot,
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    let value = humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration: {e}")))?;
    if value.is_zero() {
        return Err(serde::de::Error::custom("must be more than zero"));
    }
    Ok(Some(value))
}

/// The body as JSON: our own errors for a body too large and for bad JSON.
pub(crate) fn read_json(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(413, "payload_too_large", e.body_text())
        } else {
            ApiError::new(400, "invalid_request", e.body_text())
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| ApiError::new(400, "invalid_json", e.to_string()))
}

/// The JSON pointer of a bad value; a missing field is named only in the
/// message.
pub(crate) fn pointer_of(path: &serde_path_to_error::Path, message: &str) -> String {
    let pointer = trawl_settings::layer::json_pointer(path);
    if !pointer.is_empty() {
        return pointer;
    }
    message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
        .map_or_else(|| "/".to_string(), |k| format!("/{k}"))
}

/// Read the request, with the JSON pointer of what is wrong in it.
fn parse(body: Result<Bytes, BytesRejection>) -> Result<ScrapeRequest, ApiError> {
    let value = read_json(body)?;
    serde_path_to_error::deserialize::<_, ScrapeRequest>(&value).map_err(|e| {
        let message = e.inner().to_string();
        ApiError::new(400, "invalid_request", message.clone()).at(pointer_of(e.path(), &message))
    })
}

/// The field rules, compiled one by one so an error names its field.
fn rules(fields: &IndexMap<String, FieldSpec>) -> Result<CompiledRules, ApiError> {
    let mut rules = Vec::new();
    for (name, spec) in fields {
        let at = |key: &str| {
            format!(
                "/fields/{}/{key}",
                name.replace('~', "~0").replace('/', "~1")
            )
        };
        let kind: FieldType = spec
            .kind
            .as_deref()
            .unwrap_or("string")
            .parse()
            .map_err(|e: String| ApiError::new(400, "invalid_request", e).at(at("type")))?;
        let rule = FieldRule {
            name: name.clone(),
            selector: spec.selector.clone(),
            source: match (&spec.attr, spec.html) {
                (Some(a), _) => Source::Attr(a.clone()),
                (None, true) => Source::Html,
                (None, false) => Source::Text,
            },
            regex: spec.regex.clone(),
            kind,
            required: spec.required,
            default: spec.default.clone(),
        };
        CompiledRules::compile(std::slice::from_ref(&rule)).map_err(|e| {
            let key = if matches!(e, trawl_extract::select::RuleError::BadRegex { .. }) {
                "regex"
            } else {
                "selector"
            };
            ApiError::new(400, "invalid_request", e.to_string()).at(at(key))
        })?;
        rules.push(rule);
    }
    CompiledRules::compile(&rules).map_err(|e| ApiError::new(400, "invalid_request", e.to_string()))
}

pub async fn handle(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let limits = state.cfg.limits;
    let _entered = match limits.max_scrapes {
        None => None,
        Some(max) => match state.scrapes.enter(&caller.0, max) {
            Some(entered) => Some(entered),
            None => {
                return crate::limits::too_many(
                    "too_many_scrapes",
                    format!("{max} scrapes of this key are in flight (at most {max})"),
                    Duration::from_secs(1),
                );
            }
        },
    };
    if let Some(quota) = limits.quota
        && let Err(wait) = state
            .quotas
            .reserve(&caller.0, 1, quota, std::time::SystemTime::now())
    {
        return crate::limits::too_many(
            "quota_exceeded",
            format!(
                "this key's quota of {} pages is used up for this period",
                quota.pages
            ),
            wait,
        );
    }
    match scrape(&state, body).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn scrape(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let started = Instant::now();
    let req = parse(body)?;
    let url = Url::parse(&req.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_url",
                format!("{:?} is not an http(s) URL", req.url),
            )
            .at("/url")
        })?;
    let compiled = rules(&req.fields)?;
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (name, value) in &headers {
        trawl_fetch::identity::parse_header_line(&format!("{name}: {value}"))
            .map_err(|e| ApiError::new(400, "invalid_request", e).at(format!("/headers/{name}")))?;
    }
    let formats = if req.formats.is_empty() {
        vec![Format::Json]
    } else {
        req.formats.clone()
    };
    let deadline = req
        .timeout
        .map_or(state.cfg.timeout, |t| t.min(state.cfg.timeout));
    let mut render = match req.render {
        None => None,
        Some(RenderRequest::Mode(mode)) => Some(RenderSpec::mode(mode)),
        Some(RenderRequest::Spec(spec)) => Some(*spec),
    };
    if formats.contains(&Format::Screenshot) {
        let spec = render.get_or_insert_with(|| RenderSpec::mode(RenderMode::Always));
        if spec.mode == RenderMode::Never {
            return Err(ApiError::new(
                400,
                "invalid_request",
                "a screenshot needs the page rendered: render is `never`",
            )
            .at("/render"));
        }
        spec.screenshot = true;
    }
    if let Some(pool) = &req.proxy_pool
        && !(pool == "direct" || pool == "default" || state.pools.contains(pool))
    {
        return Err(ApiError::new(
            400,
            "invalid_request",
            format!(
                "no proxy pool {pool:?} on this server (pools: {})",
                if state.pools.is_empty() {
                    "none".to_string()
                } else {
                    state.pools.join(", ")
                }
            ),
        )
        .at("/proxy_pool"));
    }
    let options = RequestOptions {
        headers: &headers,
        render: render.as_ref(),
        proxy_pool: req.proxy_pool.as_deref(),
        ..RequestOptions::default()
    };
    let fetched = tokio::time::timeout(
        deadline,
        state.downloader.fetch_with(&url, &options, &|_| true),
    )
    .await
    .map_err(|_| ApiError::new(504, "timeout", format!("no answer within {deadline:?}")))?;
    let fetch_ms = fetched.elapsed.as_millis() as u64;
    match &fetched.error {
        Some(FetchError::Refused(why)) => {
            return Err(ApiError::new(422, "target_refused", why.clone()).at("/url"));
        }
        Some(FetchError::RobotsDenied) => {
            return Err(ApiError::new(
                422,
                "robots_denied",
                format!(
                    "robots.txt of {} disallows it",
                    url.host_str().unwrap_or("")
                ),
            )
            .at("/url"));
        }
        Some(FetchError::Render { reason, .. }) => {
            return Err(ApiError::new(502, "render_failed", reason.clone()));
        }
        Some(error) if fetched.body.is_empty() && fetched.status.is_none() => {
            return Err(ApiError::new(502, "fetch_failed", error.to_string()));
        }
        _ => {}
    }
    let text = charset::decode(fetched.content_type.as_deref(), &fetched.body);
    let doc = Html::parse_document(&text);
    let title = trawl_extract::select::document_title(&doc);
    let mut out = Map::new();
    out.insert("url".into(), url.as_str().into());
    out.insert("final_url".into(), fetched.final_url.as_str().into());
    out.insert("status".into(), json!(fetched.status));
    out.insert("title".into(), json!(title));
    for format in &formats {
        match format {
            Format::Json => {
                let extracted = compiled.extract_page(&doc, Some(&text));
                out.insert("fields".into(), Value::Object(extracted.fields));
                if !extracted.warnings.is_empty() {
                    out.insert("warnings".into(), json!(extracted.warnings));
                }
                if !extracted.missing_required.is_empty() {
                    out.insert("missing_required".into(), json!(extracted.missing_required));
                }
            }
            Format::Markdown => {
                out.insert(
                    "markdown".into(),
                    readable::main_markdown_at(&text, &fetched.final_url).into(),
                );
            }
            Format::Text => {
                out.insert("text".into(), readable::main_text(&text).into());
            }
            Format::Html => {
                out.insert("html".into(), readable::main_html(&text).into());
            }
            Format::RawHtml => {
                out.insert("raw_html".into(), text.clone().into());
            }
            Format::Links => {
                out.insert(
                    "links".into(),
                    json!(readable::links(&doc, &fetched.final_url)),
                );
            }
            Format::Screenshot => {
                let png = fetched
                    .rendered
                    .as_ref()
                    .and_then(|r| r.screenshot.as_ref())
                    .map(|png| data_encoding::BASE64.encode(png));
                out.insert("screenshot".into(), json!(png));
            }
        }
    }
    if let Some(r) = &fetched.rendered {
        out.insert(
            "rendered".into(),
            json!({
                "reason": r.reason,
                "ms": r.elapsed.as_millis() as u64,
                "requests": r.requests,
                "blocked": r.blocked,
            }),
        );
    }
    out.insert(
        "timings".into(),
        json!({"fetch_ms": fetch_ms, "total_ms": started.elapsed().as_millis() as u64}),
    );
    Ok(Value::Object(out))
}
