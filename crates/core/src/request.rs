//! A URL scheduled for fetching.

use serde::{Deserialize, Serialize};
use url::Url;

/// One unit of crawl work: a canonical URL plus where it came from.
///
/// Requests are serialisable so persistent and distributed frontiers can
/// store them as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Canonical URL (see [`crate::canon`]).
    pub url: Url,
    /// Link distance from a seed; seeds are 0.
    pub depth: u32,
    /// The page this URL was found on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Higher is fetched earlier by frontiers that honour priorities.
    #[serde(default)]
    pub priority: i32,
}

impl Request {
    /// A seed request (depth 0, no referrer).
    pub fn seed(url: Url) -> Self {
        Request {
            url,
            depth: 0,
            referrer: None,
            priority: 0,
        }
    }

    /// A request for a link found at `depth - 1` on `referrer`.
    pub fn child(url: Url, parent: &Request) -> Self {
        Request {
            url,
            depth: parent.depth + 1,
            referrer: Some(parent.url.to_string()),
            priority: 0,
        }
    }

    /// The politeness key (host and non-default port).
    pub fn host_key(&self) -> String {
        crate::canon::host_key(&self.url)
    }

    /// A 128-bit fingerprint of the canonical URL, used by seen-sets.
    pub fn fingerprint(&self) -> [u8; 16] {
        fingerprint(self.url.as_str())
    }
}

/// A 128-bit fingerprint of a canonical URL string.
pub fn fingerprint(url: &str) -> [u8; 16] {
    let hash = blake3::hash(url.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash.as_bytes()[..16]);
    out
}
