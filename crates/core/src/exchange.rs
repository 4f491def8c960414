//! One HTTP request and its response as they went over the wire (the raw
//! material of a WARC archive).

use std::net::IpAddr;
use std::time::SystemTime;

/// A fetched exchange. Only recorded when a sink asks for exchanges
/// ([`crate::Sink::wants_exchanges`]), since it keeps the body alive until
/// the sink has written it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The URL the response came from (after redirects).
    pub url: String,
    pub method: String,
    /// Headers the crawler sent, in order.
    pub request_headers: Vec<(String, String)>,
    pub status: u16,
    /// "OK", "Not Found", …
    pub reason: String,
    /// "HTTP/1.1", "HTTP/2.0".
    pub http_version: String,
    pub response_headers: Vec<(String, String)>,
    /// The body as the crawler saw it: after content decoding, possibly
    /// truncated at the body cap.
    pub body: bytes::Bytes,
    pub truncated: bool,
    /// The page's DOM after rendering in a browser, when it was rendered
    /// (`body` is then the response as it came).
    pub rendered: Option<bytes::Bytes>,
    pub ip: Option<IpAddr>,
    /// When the response arrived.
    pub date: SystemTime,
    /// Set when the response repeats content archived before: a WARC
    /// sink writes a `revisit` record (headers only) instead of a
    /// `response`.
    pub revisit: Option<Revisit>,
}

/// Why an exchange is a revisit, and of what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revisit {
    pub profile: RevisitProfile,
    /// The URL whose earlier capture holds the payload.
    pub refers_to_uri: String,
    /// When that capture was made, if known.
    pub refers_to_date: Option<SystemTime>,
}

/// The WARC 1.1 revisit profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisitProfile {
    /// A 304 answer to a conditional request.
    ServerNotModified,
    /// The same payload as an earlier capture (same digest).
    IdenticalPayloadDigest,
}

impl RevisitProfile {
    /// The profile's URI, as `WARC-Profile` names it.
    pub fn uri(self) -> &'static str {
        match self {
            RevisitProfile::ServerNotModified => {
                "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
            }
            RevisitProfile::IdenticalPayloadDigest => {
                "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
            }
        }
    }
}
