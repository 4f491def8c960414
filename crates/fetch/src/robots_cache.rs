//! robots.txt, fetched once per host and cached for the crawl.
//!
//! The HTTP side of RFC 9309 is ours: at most 500 KiB are parsed, a 4xx
//! means "allow everything", a 5xx or an unreachable server means "disallow
//! everything", and at most 5 redirects are followed. Concurrent requests for
//! a host that has no entry yet wait on one shared fetch (single flight).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::OnceCell;
use trawl_core::{Url, host_key};
use trawl_robots::{MAX_ROBOTS_BYTES, Robots};

/// Per-host robots.txt rules.
#[derive(Default)]
pub struct RobotsCache {
    entries: Mutex<HashMap<String, Arc<OnceCell<Arc<Robots>>>>>,
}

impl RobotsCache {
    /// The cell for `url`'s host; whoever finds it empty fetches.
    pub fn cell(&self, url: &Url) -> Arc<OnceCell<Arc<Robots>>> {
        self.entries
            .lock()
            .entry(host_key(url))
            .or_default()
            .clone()
    }

    /// Rules already known for `url`'s host, if fetched.
    pub fn get(&self, url: &Url) -> Option<Arc<Robots>> {
        self.entries
            .lock()
            .get(&host_key(url))
            .and_then(|c| c.get().cloned())
    }

    /// Number of hosts with an entry.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The robots.txt URL of `url`'s origin.
pub fn robots_url(url: &Url) -> Option<Url> {
    url.join("/robots.txt").ok()
}

/// The part of a URL robots rules are matched against: path plus query.
pub fn robots_path(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Build the rules from a robots.txt response.
pub fn rules_from_response(status: u16, body: &[u8], token: &str) -> Robots {
    let body = &body[..body.len().min(MAX_ROBOTS_BYTES)];
    Robots::from_status(status, body, token)
}
