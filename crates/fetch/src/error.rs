//! Fetch errors, classified so the retry policy can decide.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum FetchError {
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("connection reset")]
    Reset,
    #[error("TLS: {0}")]
    Tls(String),
    #[error("reading body: {0}")]
    Body(String),
    #[error("HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    #[error("redirect loop at {0}")]
    RedirectLoop(String),
    #[error("redirect out of scope to {0}")]
    OffsiteRedirect(String),
    #[error("redirect without a usable Location")]
    BadRedirect,
    #[error("disallowed by robots.txt")]
    RobotsDenied,
    #[error("request failed: {0}")]
    Other(String),
    /// The site refused the request as sent through `proxy` (or with the
    /// session's identity): ban status, CAPTCHA page, body too short.
    #[error("banned via {proxy}: {reason}")]
    Banned { proxy: String, reason: String },
    /// The proxy itself failed (unreachable, bad credentials, garbage).
    #[error("proxy {proxy}: {reason}")]
    Proxy { proxy: String, reason: String },
    /// The crawl stopped while the request waited for a route (a paced or
    /// cooling exit); nothing was sent, so it is no page: the URL goes back
    /// to the queue.
    #[error("not sent: the crawl is stopping")]
    Stopped,
    /// The page was fetched but its rendering failed (a wait or action
    /// timed out, the tab crashed, the browser died).
    #[error("rendering: {reason}")]
    Render { reason: String, retryable: bool },
    /// The address guard refused the target (a private, loopback or
    /// metadata address; see [`crate::guard`]); nothing was sent.
    #[error("refused by the address guard: {0}")]
    Refused(String),
}

impl FetchError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Timeout
            | FetchError::Connect(_)
            | FetchError::Reset
            | FetchError::Body(_) => true,
            FetchError::Status { status, .. } => is_retryable_status(*status),
            FetchError::Render { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// A short stable name for stats and the `error` field.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout => "timeout",
            FetchError::Connect(_) => "connect",
            FetchError::Reset => "reset",
            FetchError::Tls(_) => "tls",
            FetchError::Body(_) => "body",
            FetchError::Status { .. } => "status",
            FetchError::TooManyRedirects(_) => "too_many_redirects",
            FetchError::RedirectLoop(_) => "redirect_loop",
            FetchError::OffsiteRedirect(_) => "offsite_redirect",
            FetchError::BadRedirect => "bad_redirect",
            FetchError::RobotsDenied => "robots_denied",
            FetchError::Other(_) => "other",
            FetchError::Banned { .. } => "banned",
            FetchError::Proxy { .. } => "proxy",
            FetchError::Stopped => "stopped",
            FetchError::Render { .. } => "render",
            FetchError::Refused(_) => "refused",
        }
    }

    /// A failure another proxy or session may not have: tried again at once
    /// on a different route, within `FetchConfig::proxy_attempts`.
    pub fn needs_another_route(&self) -> bool {
        matches!(self, FetchError::Banned { .. } | FetchError::Proxy { .. })
    }

    /// Classify a reqwest error by walking its source chain.
    pub fn from_reqwest(err: &reqwest::Error) -> FetchError {
        if err.is_timeout() {
            return FetchError::Timeout;
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            // The guarded resolver refused every address of the host.
            if let Some(refused) = e.downcast_ref::<crate::guard::Refused>() {
                return FetchError::Refused(refused.0.clone());
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe => {
                        return FetchError::Reset;
                    }
                    std::io::ErrorKind::TimedOut => return FetchError::Timeout,
                    _ => {}
                }
            }
            let text = e.to_string();
            if text.contains("connection closed before message completed")
                || text.contains("connection reset")
            {
                return FetchError::Reset;
            }
            source = e.source();
        }
        if err.is_connect() {
            let text = chain(err);
            // A certificate problem will not fix itself on retry.
            if text.contains("certificate") || text.contains("InvalidCertificate") {
                return FetchError::Tls(text);
            }
            return FetchError::Connect(text);
        }
        if err.is_body() || err.is_decode() {
            return FetchError::Body(chain(err));
        }
        if err.is_request() {
            // Errors while sending (e.g. the peer closed a pooled connection).
            return FetchError::Reset;
        }
        FetchError::Other(chain(err))
    }
}

/// 5xx gateway-ish statuses, 429 and 408 are worth another try.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 522 | 524)
}

/// An error and its sources, joined with ": " (reqwest's Display leaves
/// the cause out).
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
