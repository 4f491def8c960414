//! Sitemap parsing (sitemaps.org protocol 0.9): XML `<urlset>`, XML
//! `<sitemapindex>` and plain-text sitemaps, optionally gzip-compressed.
//!
//! Sitemaps seed the crawl frontier. They come from untrusted servers, so
//! input is capped at [`MAX_SITEMAP_BYTES`] *uncompressed* (a gzip bomb stops
//! at the cap without allocating beyond it) and at [`MAX_SITEMAP_URLS`]
//! entries. XML is read in streaming mode with quick-xml; namespaces may be
//! default or prefixed, and only elements in the root element's namespace at
//! the protocol's positions (`urlset/url/loc`, `sitemapindex/sitemap/loc`) are
//! read, so extension elements such as `<image:loc>` are ignored.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Largest sitemap accepted, in bytes after decompression (the protocol's
/// limit).
pub const MAX_SITEMAP_BYTES: usize = 50 * 1024 * 1024;

/// Most entries kept from one sitemap (the protocol's limit); later entries
/// are dropped.
pub const MAX_SITEMAP_URLS: usize = 50_000;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A parsed sitemap document.
#[derive(Clone, Debug, PartialEq)]
pub enum Sitemap {
    /// A `<urlset>` or a plain-text sitemap: pages to crawl.
    UrlSet(Vec<SitemapUrl>),
    /// A `<sitemapindex>`: URLs of further sitemaps.
    Index(Vec<String>),
}

/// One `<url>` entry of a `<urlset>`.
#[derive(Clone, Debug, PartialEq)]
pub struct SitemapUrl {
    /// The page URL, whitespace-trimmed; always an absolute http(s) URL.
    pub loc: String,
    /// `<lastmod>` as written (W3C datetime, not validated), if non-empty.
    pub lastmod: Option<String>,
    /// `<priority>` if it is a number in `0.0..=1.0`.
    pub priority: Option<f32>,
}

/// Why a sitemap could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SitemapError {
    /// The document (after decompression) is larger than the limit.
    #[error("sitemap is larger than {limit} bytes uncompressed")]
    TooLarge {
        /// The limit that was exceeded, [`MAX_SITEMAP_BYTES`].
        limit: usize,
    },
    /// The body starts with the gzip magic bytes but is not valid gzip.
    #[error("invalid gzip data: {0}")]
    Gzip(#[source] std::io::Error),
    /// The XML is not well-formed.
    #[error("malformed sitemap XML at byte {position}: {message}")]
    Xml {
        /// Byte offset into the (decompressed) document.
        position: u64,
        /// What the XML parser reported.
        message: String,
    },
    /// Well-formed XML, but not a sitemap.
    #[error("unexpected root element <{0}>, expected <urlset> or <sitemapindex>")]
    UnexpectedRoot(String),
}

/// Parse a sitemap document: XML urlset, XML sitemapindex, or plain text
/// (one URL per line). Gzip is detected by its magic bytes (`1f 8b`)
/// regardless of Content-Type, and decompressed up to [`MAX_SITEMAP_BYTES`].
///
/// Only absolute http/https URLs are kept; invalid ones are skipped. At most
/// [`MAX_SITEMAP_URLS`] entries are returned.
pub fn parse(bytes: &[u8]) -> Result<Sitemap, SitemapError> {
    let decompressed;
    let data: &[u8] = if bytes.starts_with(GZIP_MAGIC) {
        decompressed = read_capped(MultiGzDecoder::new(bytes), MAX_SITEMAP_BYTES)?;
        &decompressed
    } else if bytes.len() > MAX_SITEMAP_BYTES {
        return Err(SitemapError::TooLarge {
            limit: MAX_SITEMAP_BYTES,
        });
    } else {
        bytes
    };
    let data = data.strip_prefix(UTF8_BOM).unwrap_or(data);
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Ok(Sitemap::UrlSet(Vec::new())),
        Some(b'<') => parse_xml(data),
        Some(_) => Ok(Sitemap::UrlSet(parse_text(data))),
    }
}

/// Read all of `reader` but at most `cap` bytes; more is
/// [`SitemapError::TooLarge`]. The buffer's capacity never exceeds `cap`, so
/// a decompression bomb cannot make us allocate more than the limit.
fn read_capped(mut reader: impl Read, cap: usize) -> Result<Vec<u8>, SitemapError> {
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SitemapError::Gzip(e)),
        };
        let needed = out.len() + n;
        if needed > cap {
            tracing::debug!(limit = cap, "sitemap decompression stopped at the size cap");
            return Err(SitemapError::TooLarge { limit: cap });
        }
        if out.capacity() < needed {
            let target = out.capacity().saturating_mul(2).max(needed).min(cap);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Keep `candidate` only if it is an absolute http(s) URL.
fn valid_url(candidate: &str) -> bool {
    match url::Url::parse(candidate) {
        Ok(url) => matches!(url.scheme(), "http" | "https"),
        Err(_) => false,
    }
}

/// A plain-text sitemap: one URL per line; blank and invalid lines skipped.
fn parse_text(data: &[u8]) -> Vec<SitemapUrl> {
    let mut urls = Vec::new();
    for line in data.split(|&b| b == b'\n' || b == b'\r') {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() || !valid_url(line) {
            continue;
        }
        if urls.len() == MAX_SITEMAP_URLS {
            tracing::warn!(
                limit = MAX_SITEMAP_URLS,
                "text sitemap truncated at the URL limit"
            );
            break;
        }
        urls.push(SitemapUrl {
            loc: line.to_owned(),
            lastmod: None,
            priority: None,
        });
    }
    urls
}

/// Which kind of document the root element announced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    UrlSet,
    Index,
}

/// The child of `<url>`/`<sitemap>` whose text is being collected.
#[derive(Clone, Copy)]
enum Field {
    Loc,
    LastMod,
    Priority,
}

/// A namespace resolution result we can keep across events.
#[derive(PartialEq, Eq)]
enum Ns {
    None,
    Bound(Vec<u8>),
    Unknown(Vec<u8>),
}

impl From<&ResolveResult<'_>> for Ns {
    fn from(resolved: &ResolveResult<'_>) -> Self {
        match resolved {
            ResolveResult::Unbound => Ns::None,
            ResolveResult::Bound(ns) => Ns::Bound(ns.as_ref().to_vec()),
            ResolveResult::Unknown(prefix) => Ns::Unknown(prefix.clone()),
        }
    }
}

/// The `<url>`/`<sitemap>` entry being read.
#[derive(Default)]
struct Entry {
    loc: Option<String>,
    lastmod: Option<String>,
    priority: Option<f32>,
    /// Some text could not be unescaped (e.g. an undefined entity).
    broken: bool,
}

/// Collected entries, capped at [`MAX_SITEMAP_URLS`].
struct Collector {
    kind: Kind,
    urls: Vec<SitemapUrl>,
    sitemaps: Vec<String>,
}

impl Collector {
    fn len(&self) -> usize {
        match self.kind {
            Kind::UrlSet => self.urls.len(),
            Kind::Index => self.sitemaps.len(),
        }
    }

    fn push(&mut self, entry: Entry) {
        if entry.broken {
            tracing::debug!("skipping sitemap entry with undecodable text");
            return;
        }
        let Some(loc) = entry.loc.filter(|loc| valid_url(loc)) else {
            return;
        };
        match self.kind {
            Kind::UrlSet => self.urls.push(SitemapUrl {
                loc,
                lastmod: entry.lastmod,
                priority: entry.priority,
            }),
            Kind::Index => self.sitemaps.push(loc),
        }
    }

    fn finish(self) -> Sitemap {
        match self.kind {
            Kind::UrlSet => Sitemap::UrlSet(self.urls),
            Kind::Index => Sitemap::Index(self.sitemaps),
        }
    }
}

fn xml_error(position: u64, message: impl Into<String>) -> SitemapError {
    SitemapError::Xml {
        position,
        message: message.into(),
    }
}

/// Stream through an XML sitemap. Depth 1 is the root, 2 `<url>`/`<sitemap>`,
/// 3 their fields; anything deeper or in another namespace is ignored.
fn parse_xml(data: &[u8]) -> Result<Sitemap, SitemapError> {
    let mut reader = NsReader::from_reader(data);
    reader.config_mut().expand_empty_elements = true;

    let mut depth: usize = 0;
    let mut collector: Option<Collector> = None;
    let mut root_ns = Ns::None;
    let mut entry: Option<Entry> = None;
    let mut field: Option<Field> = None;
    let mut text = String::new();

    loop {
        let event = reader.read_resolved_event();
        let (resolved, event) = match event {
            Ok(pair) => pair,
            Err(e) => return Err(xml_error(reader.error_position(), e.to_string())),
        };
        match event {
            Event::Start(start) => {
                depth += 1;
                let local = start.local_name();
                let local = local.as_ref();
                if depth == 1 {
                    let kind = match local {
                        b"urlset" => Kind::UrlSet,
                        b"sitemapindex" => Kind::Index,
                        other => {
                            return Err(SitemapError::UnexpectedRoot(
                                String::from_utf8_lossy(other).into_owned(),
                            ));
                        }
                    };
                    root_ns = Ns::from(&resolved);
                    collector = Some(Collector {
                        kind,
                        urls: Vec::new(),
                        sitemaps: Vec::new(),
                    });
                    continue;
                }
                if Ns::from(&resolved) != root_ns {
                    continue;
                }
                let Some(kind) = collector.as_ref().map(|c| c.kind) else {
                    continue;
                };
                match (depth, kind, local) {
                    (2, Kind::UrlSet, b"url") | (2, Kind::Index, b"sitemap") => {
                        entry = Some(Entry::default());
                    }
                    (3, _, _) if entry.is_some() => {
                        field = match (kind, local) {
                            (_, b"loc") => Some(Field::Loc),
                            (_, b"lastmod") => Some(Field::LastMod),
                            (Kind::UrlSet, b"priority") => Some(Field::Priority),
                            _ => None,
                        };
                        text.clear();
                    }
                    _ => {}
                }
            }
            Event::End(_) => {
                match depth {
                    1 => break,
                    2 => {
                        if let (Some(done), Some(collector)) = (entry.take(), collector.as_mut()) {
                            collector.push(done);
                            if collector.len() >= MAX_SITEMAP_URLS {
                                tracing::warn!(
                                    limit = MAX_SITEMAP_URLS,
                                    "XML sitemap truncated at the URL limit"
                                );
                                break;
                            }
                        }
                    }
                    3 => {
                        if let (Some(done), Some(current)) = (field.take(), entry.as_mut()) {
                            let value = text.trim();
                            match done {
                                Field::Loc => current.loc = Some(value.to_owned()),
                                Field::LastMod => {
                                    current.lastmod = (!value.is_empty()).then(|| value.to_owned());
                                }
                                Field::Priority => {
                                    current.priority = value
                                        .parse::<f32>()
                                        .ok()
                                        .filter(|p| (0.0..=1.0).contains(p));
                                }
                            }
                        }
                    }
                    _ => {}
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(chunk) if depth == 3 && field.is_some() => match chunk.unescape() {
                Ok(s) => text.push_str(&s),
                Err(_) => {
                    if let Some(current) = entry.as_mut() {
                        current.broken = true;
                    }
                }
            },
            Event::CData(chunk) if depth == 3 && field.is_some() => {
                text.push_str(&String::from_utf8_lossy(&chunk.into_inner()));
            }
            Event::Eof => {
                let message = if collector.is_none() {
                    "no root element"
                } else {
                    "unexpected end of document: unclosed elements"
                };
                return Err(xml_error(reader.buffer_position(), message));
            }
            _ => {}
        }
    }
    collector
        .map(Collector::finish)
        .ok_or_else(|| xml_error(reader.buffer_position(), "no root element"))
}

#[cfg(test)]
mod tests;
