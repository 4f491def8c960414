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
    /// Headers of this request only (a spider rule's `headers`), sent after
    /// the crawl-wide ones, which they replace when the name is the same.
    /// Shared (`Arc`) so all the requests one rule makes hold one copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Arc<[(String, String)]>>,
    /// The named proxy pool this request goes through (a spider rule's
    /// `proxy_pool`; `"direct"` for none), instead of the one its host
    /// would get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_pool: Option<Arc<str>>,
    /// How this page is rendered in a browser (a spider rule's `render`);
    /// none: the crawl's `--render` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<Arc<crate::RenderSpec>>,
    /// What the last visit of this URL found (`--recrawl`), to tell what
    /// changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<PreviousVisit>>,
}

/// The last visit of a URL, as a persistent frontier remembers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousVisit {
    /// blake3 of the body, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// SimHash of the visible text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simhash: Option<u64>,
    /// When it was fetched (Unix seconds).
    #[serde(default)]
    pub visited: u64,
    /// Seconds until it is due again.
    #[serde(default)]
    pub interval: u64,
    /// Visits so far, and how many found it changed.
    #[serde(default)]
    pub visits: u32,
    #[serde(default)]
    pub changes: u32,
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
            headers: None,
            proxy_pool: None,
            render: None,
            previous: None,
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
            headers: None,
            proxy_pool: None,
            render: None,
            previous: None,
        }
    }

    /// This request's own headers (none: empty).
    pub fn own_headers(&self) -> &[(String, String)] {
        self.headers.as_deref().unwrap_or(&[])
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn per_request_fields_round_trip_through_json() {
        let mut r = Request::seed(Url::parse("http://a.test/item").unwrap());
        r.callback = Some("parse_item".into());
        r.headers = Some(
            vec![
                ("Accept-Language".to_string(), "de".to_string()),
                ("X-Token".to_string(), "a b".to_string()),
            ]
            .into(),
        );
        r.proxy_pool = Some("residential".into());
        let json = serde_json::to_string(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["headers"],
            serde_json::json!([["Accept-Language", "de"], ["X-Token", "a b"]])
        );
        assert_eq!(v["proxy_pool"], "residential");
        assert_eq!(v["callback"], "parse_item");
        let back: Request = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn a_render_spec_travels_with_the_request() {
        let mut r = Request::seed(Url::parse("http://a.test/app").unwrap());
        let spec: crate::RenderSpec = serde_json::from_value(serde_json::json!({
            "mode": "always",
            "wait": [{"selector": "ul li", "timeout": "3s"}],
            "actions": [{"scroll": 2}],
            "screenshot": true
        }))
        .unwrap();
        r.render = Some(Arc::new(spec));
        let back: Request = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn old_records_without_the_fields_still_load() {
        let r: Request = serde_json::from_str(r#"{"url":"http://a.test/","depth":0}"#).unwrap();
        assert!(r.headers.is_none() && r.own_headers().is_empty());
        assert_eq!(r.proxy_pool, None);
        assert_eq!(r.callback, None);
        assert_eq!(r, Request::seed(Url::parse("http://a.test/").unwrap()));
    }

    #[test]
    fn absent_fields_are_not_serialized() {
        let r = Request::seed(Url::parse("http://a.test/").unwrap());
        let v = serde_json::to_value(&r).unwrap();
        let obj = v.as_object().unwrap();
        assert!(!obj.contains_key("headers"), "{v}");
        assert!(!obj.contains_key("proxy_pool"), "{v}");
        assert!(!obj.contains_key("callback"), "{v}");
    }
}
