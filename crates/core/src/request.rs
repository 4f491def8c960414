//! A URL scheduled for fetching.

use std::sync::Arc;

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
    /// The page this URL was found on (shared by all links of that page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<Arc<str>>,
    /// Higher is fetched earlier by frontiers that honour priorities.
    #[serde(default)]
    pub priority: i32,
    /// Validators from an earlier crawl (`--recrawl`): sent as
    /// `If-None-Match` / `If-Modified-Since`, so unchanged pages answer 304.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The spider rule that should parse the response (Scrapy's callback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
}

impl Request {
    /// A seed request (depth 0, no referrer).
    pub fn seed(url: Url) -> Self {
        Request {
            url,
            depth: 0,
            referrer: None,
            priority: 0,
            etag: None,
            last_modified: None,
            callback: None,
        }
    }

    /// A request for a link found on `parent`.
    pub fn child(url: Url, parent: &Request) -> Self {
        Self::child_of(url, parent.depth, Arc::from(parent.url.as_str()))
    }

    /// A request for a link found on a page at `parent_depth` whose URL is
    /// `referrer`; lets all links of one page share one referrer string.
    pub fn child_of(url: Url, parent_depth: u32, referrer: Arc<str>) -> Self {
        Request {
            url,
            depth: parent_depth + 1,
            referrer: Some(referrer),
            priority: 0,
            etag: None,
            last_modified: None,
            callback: None,
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

/// A 128-bit fingerprint of a canonical URL string (XXH3-128: fast on
/// short inputs, stable across versions and machines, so it can be stored).
pub fn fingerprint(url: &str) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(url.as_bytes()).to_le_bytes()
}

/// A `Hasher` for keys that are already uniformly random (fingerprints,
/// XXH3 digests): it folds the key's bytes instead of hashing them again.
#[derive(Default, Clone, Copy)]
pub struct PrehashedHasher(u64);

impl std::hash::Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
}

/// `BuildHasher` for [`PrehashedHasher`].
pub type Prehashed = std::hash::BuildHasherDefault<PrehashedHasher>;
