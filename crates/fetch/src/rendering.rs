//! Rendering as part of a fetch.
//!
//! The downloader fetches a page as always (robots.txt, the host's slot,
//! an exit ready by its pace, retries). When its rule's render mode says
//! so (`always`, or `auto` and [`trawl_render::auto`] finds the page needs
//! it), the response is handed to a browser tab that goes through the same
//! exit (a browser context per proxy, with its credentials), with the
//! session's cookies and the identity's User-Agent, while the host's slot
//! is still held: per-host politeness counts rendered pages as the time
//! they take. The rendered DOM becomes the outcome's body, so link
//! extraction and every field rule see it; the raw response stays in the
//! exchange (WARC), next to the rendered page. Ban detection reads the
//! rendered page.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::cookie::CookieStore;
use trawl_core::{RenderMode, RenderSpec, Url};
use trawl_render::auto::Reason;
use trawl_render::{BrowserProxy, Cookie};

use crate::proxy::{ProxyScheme, ProxySpec};

/// What rendering added to a fetch.
#[derive(Debug, Clone)]
pub struct RenderedPage {
    /// Why the page was rendered ("always", "required selector … missing").
    pub reason: String,
    pub screenshot: Option<Bytes>,
    pub pdf: Option<Bytes>,
    /// The rule asked for the rendered HTML in its items.
    pub keep_html: bool,
    /// Time in the browser.
    pub elapsed: Duration,
    /// Requests the page made in the browser, and how many were blocked.
    pub requests: u32,
    pub blocked: u32,
}

/// Whether the content type is HTML (or unknown, which sniffing treats as
/// HTML).
pub(crate) fn is_html(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.contains("html") || ct.is_empty()
    })
}

/// Why this response goes to the browser, if it does.
pub(crate) fn reason(
    spec: &RenderSpec,
    memory: &trawl_render::auto::AutoMemory,
    url: &Url,
    body: &[u8],
) -> Option<Reason> {
    match spec.mode {
        RenderMode::Never => None,
        RenderMode::Always => Some(Reason::Always),
        RenderMode::Auto => {
            if let Some(known) = memory.known(url) {
                return Some(known);
            }
            let text = String::from_utf8_lossy(body);
            let found = trawl_render::auto::needs_rendering(&text, &spec.require);
            memory.learn(url, found.is_some());
            found
        }
    }
}

/// The browser's side of a proxy: server without credentials, and them.
pub(crate) fn browser_proxy(spec: &ProxySpec) -> BrowserProxy {
    let scheme = match spec.scheme() {
        ProxyScheme::Http => "http",
        ProxyScheme::Https => "https",
        _ => "socks5",
    };
    let host = spec.host();
    BrowserProxy {
        server: format!("{scheme}://{host}:{}", spec.port()),
        username: spec.username().map(str::to_string),
        password: spec.password().map(str::to_string),
    }
}

/// The jar's cookies for `url`.
pub(crate) fn jar_cookies(jar: &reqwest::cookie::Jar, url: &Url) -> Vec<Cookie> {
    let Some(header) = jar.cookies(url) else {
        return Vec::new();
    };
    let Ok(text) = header.to_str() else {
        return Vec::new();
    };
    text.split(';')
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some(Cookie {
                name: name.to_string(),
                value: value.to_string(),
                domain: None,
                path: None,
            })
        })
        .collect()
}

/// Puts the browser's cookies back into the session's jar.
pub(crate) fn store_cookies(jar: &Arc<reqwest::cookie::Jar>, url: &Url, cookies: &[Cookie]) {
    for c in cookies {
        let mut line = format!("{}={}", c.name, c.value);
        if let Some(path) = &c.path {
            line.push_str("; Path=");
            line.push_str(path);
        }
        jar.add_cookie_str(&line, url);
    }
}
