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
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use trawl_core::{RenderMode, RenderSpec, Url};
use trawl_extract::select::{CompiledRules, FieldRule, FieldType, Source};
use trawl_extract::{charset, readable};
use trawl_fetch::{FetchError, RequestOptions};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};

/// Field rules of one scrape at most.
pub const MAX_FIELDS: usize = 100;

/// Bytes of one selector or regex at most.
pub const MAX_RULE_LEN: usize = 2048;

/// The request body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeRequest {
    /// An http(s) URL.
    #[schema(format = "uri")]
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
    /// Deadline of the whole scrape (at most the server's): `"10s"`,
    /// `"500ms"`.
    #[serde(default, deserialize_with = "duration")]
    #[schema(value_type = Option<String>, example = "10s")]
    pub timeout: Option<Duration>,
    /// Render the page in the browser: `never`, `auto`, `always`, or a
    /// table as in a spider file (`mode`, `wait`, `actions`, `block`,
    /// `timeout`).
    #[serde(default)]
    #[schema(value_type = Value)]
    pub render: Option<RenderRequest>,
    /// A proxy pool of the server's settings, or `direct`.
    #[serde(default)]
    pub proxy_pool: Option<String>,
    /// A session of this key (1 to 64 letters, digits, `-`, `_`): the
    /// scrapes naming it share one exit (proxy), one cookie jar and one
    /// identity, replaced only when banned; idle for 10 minutes, it ends.
    #[serde(default)]
    pub session: Option<String>,
    /// Built-in extractors, as in a spider file's item rules: `json_ld`,
    /// `opengraph`, `twitter`, `meta`, `microdata`, `main_text`,
    /// `markdown`, `links`, `images`.
    #[serde(default)]
    pub extractors: Vec<String>,
}

/// `render`: a mode, or a full spec.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RenderRequest {
    Mode(RenderMode),
    Spec(Box<RenderSpec>),
}

/// One field rule, as in a spider file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// A CSS selector.
    pub selector: String,
    /// Read this attribute instead of the text.
    pub attr: Option<String>,
    /// Read the element's HTML instead of the text.
    #[serde(default)]
    pub html: bool,
    /// Keep what the regex matches (its first group, if it has one).
    pub regex: Option<String>,
    /// `string` (default), `number`, `integer`, `bool`, `date`, `list`,
    /// `json`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// The value when nothing is found.
    pub default: Option<Value>,
}

/// An answer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
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
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
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

/// Read a request body of type `T`, with the JSON pointer of what is
/// wrong in it.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let value = read_json(body)?;
    serde_path_to_error::deserialize(&value).map_err(|e| {
        let message = e.inner().to_string();
        ApiError::new(400, "invalid_request", message.clone()).at(pointer_of(e.path(), &message))
    })
}

/// The field rules, compiled one by one so an error names its field.
fn rules(fields: &IndexMap<String, FieldSpec>) -> Result<CompiledRules, ApiError> {
    if fields.len() > MAX_FIELDS {
        return Err(ApiError::new(
            400,
            "invalid_request",
            format!("at most {MAX_FIELDS} fields"),
        )
        .at("/fields"));
    }
    let mut rules = Vec::new();
    for (name, spec) in fields {
        for (key, text) in [
            ("selector", Some(&spec.selector)),
            ("regex", spec.regex.as_ref()),
        ] {
            if text.is_some_and(|t| t.len() > MAX_RULE_LEN) {
                return Err(ApiError::new(
                    400,
                    "invalid_request",
                    format!("a {key} is at most {MAX_RULE_LEN} bytes"),
                )
                .at(format!(
                    "/fields/{}/{key}",
                    name.replace('~', "~0").replace('/', "~1")
                )));
            }
        }
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

/// Fetch one URL (politely, through the address guard) and answer with
/// what the request asks for.
#[utoipa::path(
    post,
    path = "/v1/scrape",
    tag = "scrape",
    operation_id = "scrape",
    request_body = ScrapeRequest,
    responses(
        (status = 200, description = "The page, in the formats asked for", body = ScrapeAnswer),
        (status = 400, description = "A bad request (`pointer` names the value)", body = ErrorBody),
        (status = 401, description = "No or an unknown API key", body = ErrorBody),
        (status = 413, description = "The request body is too large", body = ErrorBody),
        (status = 422, description = "The target is refused (address guard, robots.txt)", body = ErrorBody),
        (status = 429, description = "A limit of the key (Retry-After says when)", body = ErrorBody),
        (status = 502, description = "The site did not answer, or rendering failed", body = ErrorBody),
        (status = 504, description = "No answer within the deadline", body = ErrorBody),
    ),
)]
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let _entered = match admit(&state, &caller) {
        Ok(entered) => entered,
        Err(error) => return error.into_response(),
    };
    match scrape(&state, &caller, body).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Let one page's call of `caller` in: a scrape slot (held while the
/// answer is made) and a page of the quota; else the `429`.
pub(crate) fn admit(
    state: &AppState,
    caller: &Caller,
) -> Result<Option<crate::limits::Entered>, ApiError> {
    let limits = state.cfg.limits;
    let entered = match limits.max_scrapes {
        None => None,
        Some(max) => match state.scrapes.enter(&caller.0, max) {
            Some(entered) => Some(entered),
            None => {
                return Err(ApiError::new(
                    429,
                    "too_many_scrapes",
                    format!("{max} scrapes of this key are in flight (at most {max})"),
                )
                .retry_after(Duration::from_secs(1)));
            }
        },
    };
    if let Some(quota) = limits.quota
        && let Err(wait) = state
            .quotas
            .reserve(&caller.0, 1, quota, std::time::SystemTime::now())
    {
        return Err(crate::limits::quota_exceeded(quota).retry_after(wait));
    }
    Ok(entered)
}

/// `text` as an http(s) URL, or the error naming `/url`.
pub(crate) fn http_url(text: &str) -> Result<Url, ApiError> {
    Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_url",
                format!("{text:?} is not an http(s) URL"),
            )
            .at("/url")
        })
}

async fn scrape(
    state: &AppState,
    caller: &Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<ScrapeAnswer, ApiError> {
    let started = Instant::now();
    let req: ScrapeRequest = parse(body)?;
    let url = http_url(&req.url)?;
    let compiled = rules(&req.fields)?;
    for (i, name) in req.extractors.iter().enumerate() {
        if !trawl_extract::builtin::NAMES.contains(&name.as_str()) {
            return Err(ApiError::new(
                400,
                "invalid_request",
                format!(
                    "no extractor {name:?} (extractors: {})",
                    trawl_extract::builtin::NAMES.join(", ")
                ),
            )
            .at(format!("/extractors/{i}")));
        }
    }
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
    let session = match &req.session {
        None => None,
        Some(name) => Some(state.sessions.get(&caller.0, name)?),
    };
    let downloader = session.as_deref().unwrap_or(&state.downloader);
    let fetched = tokio::time::timeout(deadline, downloader.fetch_with(&url, &options, &|_| true))
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
    let extractors = req.extractors;
    let mut out = if fetched.body.len() <= INLINE_PARSE_BYTES && fetched.rendered.is_none() {
        // A small page parses in about a tenth of a millisecond: on the
        // runtime's thread, with no hand-off to another thread and back.
        answer(&url, &fetched, &compiled, &formats, &extractors)
    } else {
        // Larger pages are CPU work for the blocking pool, one per core
        // at a time, so other requests' I/O is not held up behind them.
        let _slot = state
            .parse_slots
            .acquire()
            .await
            .map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            answer(&url, &fetched, &compiled, &formats, &extractors)
        })
        .await
        .map_err(|e| ApiError::new(500, "internal", e.to_string()))?
    };
    out.timings = Timings {
        fetch_ms,
        total_ms: started.elapsed().as_millis() as u64,
    };
    Ok(out)
}

/// Pages up to this size are parsed on the runtime's thread.
const INLINE_PARSE_BYTES: usize = 32 * 1024;

/// The answer's content from the fetched page.
fn answer(
    url: &Url,
    fetched: &trawl_fetch::FetchOutcome,
    compiled: &CompiledRules,
    formats: &[Format],
    extractors: &[String],
) -> ScrapeAnswer {
    let text = charset::decode(fetched.content_type.as_deref(), &fetched.body);
    let doc = Html::parse_document(&text);
    let mut out = ScrapeAnswer {
        url: url.to_string(),
        final_url: fetched.final_url.to_string(),
        status: fetched.status,
        title: trawl_extract::select::document_title(&doc),
        ..ScrapeAnswer::default()
    };
    for format in formats {
        match format {
            Format::Json => {
                let extracted = compiled.extract_page(&doc, Some(&text));
                out.fields = Some(extracted.fields);
                out.warnings = extracted
                    .warnings
                    .into_iter()
                    .map(|w| Warning {
                        field: w.field,
                        value: w.value,
                        reason: w.reason,
                    })
                    .collect();
                out.missing_required = extracted.missing_required;
            }
            Format::Markdown => {
                out.markdown = Some(readable::main_markdown_at(&text, &fetched.final_url));
            }
            Format::Text => out.text = Some(readable::main_text(&text)),
            Format::Html => out.html = Some(readable::main_html(&text)),
            Format::RawHtml => out.raw_html = Some(text.to_string()),
            Format::Links => out.links = Some(readable::links(&doc, &fetched.final_url)),
            Format::Screenshot => {
                out.screenshot = fetched
                    .rendered
                    .as_ref()
                    .and_then(|r| r.screenshot.as_ref())
                    .map(|png| data_encoding::BASE64.encode(png));
            }
        }
    }
    if !extractors.is_empty() {
        out.extracted = Some(
            extractors
                .iter()
                .filter_map(|name| {
                    trawl_extract::builtin::run(name, &doc, &text, &fetched.final_url)
                        .map(|v| (name.clone(), v))
                })
                .collect(),
        );
    }
    out.rendered = fetched.rendered.as_ref().map(|r| RenderedInfo {
        reason: r.reason.clone(),
        ms: r.elapsed.as_millis() as u64,
        requests: r.requests,
        blocked: r.blocked,
    });
    out
}

/// How long an unused session lives.
const SESSION_IDLE: Duration = Duration::from_secs(600);

/// Sessions one key may hold.
const MAX_SESSIONS: usize = 100;

/// The named sessions of `/v1/scrape`: each is a downloader of its own
/// with one sticky session (trawl's sessions: a proxy of the pools, a
/// cookie jar, an identity; retired and replaced when banned), sharing
/// the server's browser.
pub struct Sessions {
    fetch: trawl_fetch::FetchConfig,
    renderer: Arc<trawl_render::Renderer>,
    live: parking_lot::Mutex<std::collections::HashMap<SessionKey, LiveSession>>,
}

/// A session's key and name.
type SessionKey = (String, String);

/// A session's downloader and when it was last used.
type LiveSession = (Arc<trawl_fetch::Downloader>, Instant);

impl Sessions {
    pub fn new(fetch: trawl_fetch::FetchConfig, renderer: Arc<trawl_render::Renderer>) -> Sessions {
        Sessions {
            fetch,
            renderer,
            live: Default::default(),
        }
    }

    /// Session `name` of `key`, made at its first use.
    pub fn get(&self, key: &str, name: &str) -> Result<Arc<trawl_fetch::Downloader>, ApiError> {
        let valid = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ApiError::new(
                400,
                "invalid_request",
                "a session name is 1 to 64 letters, digits, `-` or `_`",
            )
            .at("/session"));
        }
        let now = Instant::now();
        let mut live = self.live.lock();
        live.retain(|_, (_, used)| now.duration_since(*used) < SESSION_IDLE);
        let id = (key.to_string(), name.to_string());
        if let Some((downloader, used)) = live.get_mut(&id) {
            *used = now;
            return Ok(downloader.clone());
        }
        if live.keys().filter(|(k, _)| k == key).count() >= MAX_SESSIONS {
            return Err(ApiError::new(
                429,
                "too_many_sessions",
                format!("this key holds {MAX_SESSIONS} sessions; one ends after 10 idle minutes"),
            )
            .retry_after(SESSION_IDLE));
        }
        let fetch = trawl_fetch::FetchConfig {
            sessions: Some(trawl_fetch::config::SessionConfig {
                max_sessions: 1,
                max_uses: 0,
                ..Default::default()
            }),
            ..self.fetch.clone()
        };
        let downloader =
            trawl_fetch::Downloader::new(fetch, Arc::new(trawl_core::CrawlStats::default()))
                .map_err(|e| ApiError::new(500, "internal", e.to_string()))?
                .with_renderer(self.renderer.clone());
        let downloader = Arc::new(downloader);
        live.insert(id, (downloader.clone(), now));
        Ok(downloader)
    }
}

/// `POST /v1/scrape`'s answer.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ScrapeAnswer {
    /// The URL asked for.
    pub url: String,
    /// Where redirects ended.
    pub final_url: String,
    /// The site's HTTP status (none: no answer).
    pub status: Option<u16>,
    pub title: Option<String>,
    /// `json`: the fields found (and defaults of missing ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Map<String, Value>>,
    /// `json`: fields found whose value did not convert to their type.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// `json`: required fields not found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_required: Vec<String>,
    /// `markdown`: the main content as Markdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    /// `text`: the main content as plain text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `html`: the main content as HTML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// `raw_html`: the whole page (rendered, when it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_html: Option<String>,
    /// `links`: absolute URLs of the page's links, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<String>>,
    /// `screenshot`: a full-page PNG, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<String>,
    /// What each extractor asked for found, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub extracted: Option<Map<String, Value>>,
    /// How the browser rendered it, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendered: Option<RenderedInfo>,
    pub timings: Timings,
}

/// A field whose value did not convert.
#[derive(Debug, Serialize, ToSchema)]
pub struct Warning {
    pub field: String,
    pub value: String,
    pub reason: String,
}

/// How a page was rendered.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderedInfo {
    /// Why (`always`, `required selector … missing`, …).
    pub reason: String,
    /// Time in the browser.
    pub ms: u64,
    /// Requests the page made, and how many were blocked.
    pub requests: u32,
    pub blocked: u32,
}

/// Where the time went.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Timings {
    /// Fetching (with retries and rendering).
    pub fetch_ms: u64,
    /// The whole call.
    pub total_ms: u64,
}
