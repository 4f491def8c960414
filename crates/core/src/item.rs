//! The records a crawl produces.

use serde::{Deserialize, Serialize};

/// What a sink receives: one JSON object (the fields of a page record or of a
/// spider's item). Kept as a JSON map so every sink can handle every item type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Item(pub serde_json::Map<String, serde_json::Value>);

/// The item written for every fetched page (the default output of a crawl).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageRecord {
    /// The URL that was requested (canonical form).
    pub url: String,
    /// The URL the response finally came from, after redirects.
    pub final_url: String,
    /// HTTP status of the final response; absent when no response arrived.
    pub status: Option<u16>,
    pub depth: u32,
    pub referrer: Option<String>,
    pub title: Option<String>,
    pub meta_description: Option<String>,
    pub canonical: Option<String>,
    pub lang: Option<String>,
    pub content_type: Option<String>,
    /// Body bytes received (after content decoding).
    pub bytes: u64,
    /// True when the body cap stopped the download early.
    pub truncated: bool,
    /// blake3 of the body, hex.
    pub content_hash: Option<String>,
    pub fetch_ms: u64,
    /// RFC 3339 time the fetch finished.
    pub timestamp: String,
    pub links_count: usize,
    /// Number of redirect hops followed.
    pub redirects: u32,
    /// Retries spent on this URL.
    pub retries: u32,
    /// Validators of the response, kept for conditional recrawls.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Why the fetch failed, if it did (status >= 400 counts as an error).
    pub error: Option<String>,
    /// SimHash of the visible text (HTML), 16 hex digits.
    pub simhash: Option<String>,
    /// The earlier page with the same body (another URL).
    pub duplicate_of: Option<String>,
    /// The earlier page whose text is within the near-duplicate distance.
    pub near_duplicate_of: Option<String>,
    /// On a revisit (`--recrawl`): `unchanged`, `near_duplicate_change`
    /// or `changed`.
    pub change: Option<String>,
}

impl PageRecord {
    /// Turn the record into a generic item.
    pub fn into_item(self) -> Item {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => Item(map),
            _ => Item(serde_json::Map::new()),
        }
    }
}
