//! The OpenAPI document (`GET /openapi.json`), generated from the
//! handlers' annotations and the request and answer types (utoipa): what
//! the code takes and answers is what the document says.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::crawls::JobList;
use crate::error::{ApiError, ErrorBody};
use crate::jobs::request::CrawlRequest;
use crate::jobs::store::JobState;
use crate::jobs::{JobStats, JobView};
use crate::scrape::{
    FieldSpec, Format, RenderedInfo, ScrapeAnswer, ScrapeRequest, Timings, Warning,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "trawl Scraper API",
        description = "Scrape one URL into structured data, or run a crawl job and stream its items. Errors answer `{\"error\": {\"code\", \"message\", \"pointer\"}}`; limits answer 429 with Retry-After.",
    ),
    paths(
        crate::scrape::handle,
        crate::map::handle,
        crate::crawls::create,
        crate::crawls::list,
        crate::crawls::get,
        crate::crawls::cancel,
        crate::crawls::items,
        healthz,
        readyz,
    ),
    components(schemas(
        ScrapeRequest,
        ScrapeAnswer,
        FieldSpec,
        Format,
        Warning,
        RenderedInfo,
        Timings,
        crate::map::MapRequest,
        crate::map::MapAnswer,
        CrawlRequest,
        JobView,
        JobStats,
        JobState,
        JobList,
        ErrorBody,
        ApiError,
    )),
    modifiers(&BearerKey),
    security(("api_key" = [])),
)]
pub struct ApiDoc;

/// `Authorization: Bearer KEY` (once the server has keys).
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz", security(()), responses((status = 200, description = "Alive", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The server takes requests.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz", security(()), responses((status = 200, description = "Ready", body = String, content_type = "text/plain")))]
pub async fn readyz() -> &'static str {
    "ready\n"
}
