//! `POST /v1/map`: the URLs of a site, fast and bounded (Firecrawl's
//! map): the site's sitemaps (from its robots.txt, else `/sitemap.xml`,
//! indexes followed) and the links of the page itself, same host (or its
//! subdomains too), through the address guard, deduplicated, optionally
//! filtered by a search word, at most `limit`.
//!
//! ```json
//! {"url": "https://docs.example/", "limit": 500, "search": "guide"}
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use trawl_core::{FrontierError, Url, parse_canonical};
use trawl_fetch::{FetchError, RequestOptions};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};

/// URLs answered at most.
pub const MAX_LIMIT: usize = 5000;

/// `POST /v1/map`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MapRequest {
    /// The site: an http(s) URL.
    #[schema(format = "uri")]
    pub url: String,
    /// URLs answered at most (1 to 5000; default 1000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
    /// Keep only URLs containing this (case-insensitive).
    #[serde(default)]
    pub search: Option<String>,
    /// Read the site's sitemaps (default true).
    #[serde(default)]
    pub sitemaps: Option<bool>,
    /// Count subdomains of the URL's host as the site (default false).
    #[serde(default)]
    pub subdomains: Option<bool>,
}

/// `POST /v1/map`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct MapAnswer {
    pub url: String,
    /// The site's URLs: the page, then its sitemaps' URLs, then its
    /// links; each once.
    pub links: Vec<String>,
    /// URLs found in sitemaps, and in the page's links (before the
    /// search filter and the limit).
    pub from_sitemaps: usize,
    pub from_page: usize,
    pub total_ms: u64,
}

/// The site's URLs.
#[utoipa::path(
    post,
    path = "/v1/map",
    tag = "map",
    operation_id = "map",
    request_body = MapRequest,
    responses(
        (status = 200, description = "The site's URLs", body = MapAnswer),
        (status = 400, description = "A bad request (`pointer` names the value)", body = ErrorBody),
        (status = 401, description = "No or an unknown API key", body = ErrorBody),
        (status = 413, description = "The request body is too large", body = ErrorBody),
        (status = 422, description = "The target is refused (address guard, robots.txt)", body = ErrorBody),
        (status = 429, description = "A limit of the key (Retry-After says when)", body = ErrorBody),
        (status = 502, description = "The site did not answer", body = ErrorBody),
    ),
)]
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let _entered = match crate::scrape::admit(&state, &caller) {
        Ok(entered) => entered,
        Err(error) => return error.into_response(),
    };
    match map(&state, body).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn map(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<MapAnswer, ApiError> {
    let started = Instant::now();
    let req: MapRequest = crate::scrape::parse(body)?;
    let url = crate::scrape::http_url(&req.url)?;
    let limit = req.limit.unwrap_or(1000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            400,
            "invalid_request",
            format!("limit must be 1 to {MAX_LIMIT}"),
        )
        .at("/limit"));
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let subdomains = req.subdomains.unwrap_or(false);
    let guard = state.downloader.config().address_guard.clone();
    let in_site = move |u: &Url| {
        let Some(h) = u.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let same = h == host
            || (subdomains
                && h.strip_suffix(host.as_str())
                    .is_some_and(|rest| rest.ends_with('.')));
        same && guard.as_ref().is_none_or(|g| g.refuses_url(u).is_none())
    };
    // The page itself: refused targets and robots.txt answer here.
    let deadline = state.cfg.timeout;
    let page = tokio::time::timeout(
        deadline,
        state
            .downloader
            .fetch_with(&url, &RequestOptions::default(), &|u| in_site(u)),
    )
    .await
    .map_err(|_| ApiError::new(504, "timeout", format!("no answer within {deadline:?}")))?;
    match &page.error {
        Some(FetchError::Refused(why)) => {
            return Err(ApiError::new(422, "target_refused", why.clone()).at("/url"));
        }
        Some(FetchError::RobotsDenied) => {
            return Err(
                ApiError::new(422, "robots_denied", "robots.txt disallows it".to_string())
                    .at("/url"),
            );
        }
        Some(error) if page.status.is_none() => {
            return Err(ApiError::new(502, "fetch_failed", error.to_string()));
        }
        _ => {}
    }
    let mut from_sitemaps = Vec::new();
    if req.sitemaps.unwrap_or(true) {
        let collected = parking_lot::Mutex::new(Vec::new());
        let mut found =
            |urls: Vec<Url>, _filtered: u64| -> BoxFuture<'_, Result<bool, FrontierError>> {
                let mut all = collected.lock();
                all.extend(urls);
                let more = all.len() < MAX_LIMIT * 4;
                Box::pin(async move { Ok(more) })
            };
        let left = deadline
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let read = trawl_engine::sitemaps::read(
            &state.downloader,
            std::slice::from_ref(&url),
            &in_site,
            &mut found,
        );
        // Past the deadline, what was read so far.
        let _ = tokio::time::timeout(left, read).await;
        from_sitemaps = collected.into_inner();
    }
    let text = trawl_extract::charset::decode(page.content_type.as_deref(), &page.body);
    let from_page: Vec<Url> = {
        let doc = scraper::Html::parse_document(&text);
        trawl_extract::readable::links(&doc, &page.final_url)
            .iter()
            .filter_map(|l| parse_canonical(None, l))
            .filter(|u| in_site(u))
            .collect()
    };
    let (n_sitemaps, n_page) = (from_sitemaps.len(), from_page.len());
    let search = req.search.as_deref().map(str::to_lowercase);
    let mut seen = std::collections::HashSet::new();
    let links: Vec<String> = std::iter::once(page.final_url.clone())
        .chain(from_sitemaps)
        .chain(from_page)
        .map(|u| u.to_string())
        .filter(|u| seen.insert(u.clone()))
        .filter(|u| {
            search
                .as_deref()
                .is_none_or(|s| u.to_lowercase().contains(s))
        })
        .take(limit)
        .collect();
    Ok(MapAnswer {
        url: url.to_string(),
        links,
        from_sitemaps: n_sitemaps,
        from_page: n_page,
        total_ms: started.elapsed().as_millis() as u64,
    })
}
