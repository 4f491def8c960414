//! The parse pool's work on one response.
//!
//! Runs on a plain OS thread: charset decoding, link and metadata
//! extraction, hashing, link filtering (scope, depth) and building the item.
//! Nothing here touches the async runtime.

use std::sync::Arc;
use std::time::SystemTime;

use trawl_core::{CrawlStats, Item, Lease, PageRecord, Request, Scope};
use trawl_core::{Response, Spider};
use trawl_extract::{charset, content_hash, extract_page_with, is_html, page_simhash};
use trawl_fetch::FetchOutcome;
use trawl_traps::Change;

/// A response on its way to the parse pool.
pub struct Fetched {
    pub lease: Lease,
    pub outcome: FetchOutcome,
}

/// A parsed response on its way to the router.
pub struct Parsed {
    pub lease: Lease,
    /// The page record, or the spider's items.
    pub items: Vec<Item>,
    /// Error records of the spider (required fields missing, fetch failures).
    pub errors: Vec<Item>,
    /// In-scope links to offer the frontier.
    pub children: Vec<Request>,
    /// The raw exchange, for archiving sinks.
    pub exchange: Option<trawl_core::Exchange>,
    /// What the duplicate index, the trap detector and the revisit record
    /// need to know of a page that answered 2xx or 304.
    pub facts: Option<PageFacts>,
}

/// What a fetched page showed, for the router's duplicate and trap checks
/// and the frontier's revisit record.
#[derive(Debug, Clone, Default)]
pub struct PageFacts {
    pub status: Option<u16>,
    pub content_hash: Option<String>,
    pub simhash: Option<u64>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// What a revisit found (requests with a previous visit only).
    pub change: Option<Change>,
}

/// What the parse pool needs to know.
pub struct ParseContext {
    pub scope: Scope,
    /// When set, the spider turns pages into items and follow-up requests
    /// instead of the default page record and all-links following.
    pub spider: Option<Arc<dyn Spider>>,
    pub max_depth: Option<u32>,
    pub stats: Arc<CrawlStats>,
    /// Item pipeline stages (validate, drop, dedupe, transform), run on
    /// every item before it leaves the parse pool.
    pub pipeline: Option<Arc<trawl_pipeline::Pipeline>>,
    /// Where screenshots and PDFs of rendered pages go.
    pub render_dir: std::path::PathBuf,
    /// Bits within which a revisited page's text counts as a
    /// near-duplicate change.
    pub near_distance: u32,
    /// Compute each page's SimHash (off with `duplicates = "off"`).
    pub simhash: bool,
}

/// Run the item pipeline over a page's items: invalid items become error
/// records, dropped ones are counted.
fn run_pipeline(ctx: &ParseContext, parsed: &mut Parsed) {
    let Some(pipeline) = &ctx.pipeline else {
        return;
    };
    if parsed.items.is_empty() {
        return;
    }
    let out = pipeline.process(std::mem::take(&mut parsed.items));
    CrawlStats::add(&ctx.stats.items_dropped, out.dropped);
    CrawlStats::add(&ctx.stats.item_errors, out.invalid.len() as u64);
    parsed.items = out.kept;
    parsed.errors.extend(out.invalid);
}

/// Turn one response into an item and child requests.
pub fn parse(ctx: &ParseContext, fetched: Fetched) -> Parsed {
    let rendered = fetched.outcome.rendered.clone().map(|r| {
        let html = r
            .keep_html
            .then(|| String::from_utf8_lossy(&fetched.outcome.body).into_owned());
        (r, html)
    });
    let mut parsed = parse_page(ctx, fetched);
    if let Some((r, html)) = rendered {
        attach_render(ctx, &mut parsed, r, html);
    }
    run_pipeline(ctx, &mut parsed);
    parsed
}

/// Says in each item of a rendered page that it was rendered (`_render`:
/// why, how long, requests made and blocked), and adds the rendered HTML
/// (`_rendered_html`), and the screenshot's and PDF's paths (`_screenshot`,
/// `_pdf`: files named by the URL's fingerprint under the render
/// directory), when the rule asked for them.
fn attach_render(
    ctx: &ParseContext,
    parsed: &mut Parsed,
    r: trawl_fetch::RenderedPage,
    html: Option<String>,
) {
    let url = parsed.lease.request.url.as_str();
    let name: String = trawl_core::fingerprint(url)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut files = serde_json::Map::new();
    for (key, bytes, ext) in [
        ("_screenshot", &r.screenshot, "png"),
        ("_pdf", &r.pdf, "pdf"),
    ] {
        let Some(bytes) = bytes else { continue };
        let path = ctx.render_dir.join(format!("{name}.{ext}"));
        let written =
            std::fs::create_dir_all(&ctx.render_dir).and_then(|()| std::fs::write(&path, bytes));
        match written {
            Ok(()) => {
                files.insert(key.into(), path.display().to_string().into());
            }
            Err(error) => {
                tracing::error!(%error, path = %path.display(), "Could not write a render file.")
            }
        }
    }
    let info = serde_json::json!({
        "reason": r.reason,
        "ms": r.elapsed.as_millis() as u64,
        "requests": r.requests,
        "blocked": r.blocked,
    });
    for item in &mut parsed.items {
        item.0.insert("_render".into(), info.clone());
        for (k, v) in &files {
            item.0.insert(k.clone(), v.clone());
        }
        if let Some(h) = &html {
            item.0.insert("_rendered_html".into(), h.clone().into());
        }
    }
}

fn parse_page(ctx: &ParseContext, fetched: Fetched) -> Parsed {
    let Fetched { lease, mut outcome } = fetched;
    let exchange = outcome.exchange.take();
    let req = &lease.request;
    let mut record = PageRecord {
        url: req.url.to_string(),
        final_url: outcome.final_url.to_string(),
        status: outcome.status,
        depth: req.depth,
        referrer: req.referrer.as_deref().map(str::to_string),
        content_type: outcome.content_type.clone(),
        bytes: outcome.body.len() as u64,
        truncated: outcome.truncated,
        content_hash: (!outcome.body.is_empty()).then(|| content_hash(&outcome.body)),
        fetch_ms: outcome.elapsed.as_millis() as u64,
        timestamp: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        redirects: outcome.redirects,
        retries: outcome.retries,
        etag: outcome.etag.clone(),
        last_modified: outcome.last_modified.clone(),
        error: outcome.error.as_ref().map(|e| e.to_string()),
        ..PageRecord::default()
    };
    let mut children = Vec::new();
    let ok = outcome.status.is_some_and(|s| (200..300).contains(&s));
    if ok {
        CrawlStats::inc(&ctx.stats.pages_ok);
    }
    ctx.stats
        .page_done(outcome.status, outcome.body.len() as u64);
    if let Some(error) = &outcome.error {
        ctx.stats.error_kind(error.kind());
    }
    if record.error.is_some() {
        CrawlStats::inc(&ctx.stats.errors);
    }
    let mut facts = (ok || outcome.status == Some(304)).then(|| PageFacts {
        status: outcome.status,
        content_hash: record.content_hash.clone(),
        etag: outcome.etag.clone(),
        last_modified: outcome.last_modified.clone(),
        ..PageFacts::default()
    });
    if let Some(spider) = &ctx.spider {
        let mut parsed = parse_with_spider(ctx, spider.as_ref(), lease, &outcome, ok, record);
        if let Some(f) = &mut facts {
            f.simhash = parsed.facts.take().and_then(|p| p.simhash);
            f.change = classify(ctx, &parsed.lease.request, f);
        }
        parsed.exchange = exchange;
        parsed.facts = facts;
        return parsed;
    }
    if ok && is_html(outcome.content_type.as_deref(), &outcome.body) {
        let text = charset::decode(outcome.content_type.as_deref(), &outcome.body);
        let key = ctx
            .simhash
            .then(|| {
                same_text_key(
                    &outcome.final_url,
                    outcome.content_type.as_deref(),
                    record.content_hash.as_deref(),
                )
            })
            .flatten();
        let known = key.and_then(known_simhash);
        let mut info = extract_page_with(&outcome.final_url, &text, ctx.simhash && known.is_none());
        match (known, key) {
            (Some(simhash), _) => info.simhash = simhash,
            (None, Some(key)) => remember_simhash(key, info.simhash),
            (None, None) => {}
        }
        if let Some(f) = &mut facts {
            f.simhash = info.simhash;
        }
        record.simhash = info.simhash.map(|h| format!("{h:016x}"));
        let links = info.links();
        record.title = info.title;
        record.meta_description = info.meta_description;
        record.canonical = info.canonical;
        record.lang = info.lang;
        let follow = ctx.max_depth.is_none_or(|max| req.depth < max);
        record.links_count = links.len();
        if follow {
            let referrer: std::sync::Arc<str> = std::sync::Arc::from(req.url.as_str());
            children.reserve(links.len());
            for link in links {
                match ctx.scope.allows(&link) {
                    Ok(()) => children.push(Request::child_of(link, req.depth, referrer.clone())),
                    Err(_) => CrawlStats::inc(&ctx.stats.filtered),
                }
            }
        } else {
            CrawlStats::add(&ctx.stats.filtered, links.len() as u64);
        }
    }
    if let Some(f) = &mut facts {
        f.change = classify(ctx, req, f);
        record.change = f.change.map(|c| c.as_str().to_string());
    }
    Parsed {
        lease,
        items: vec![record.into_item()],
        errors: Vec::new(),
        children,
        exchange,
        facts,
    }
}

/// SimHashes this parse thread computed lately, by body: the same body
/// under another URL (a mirror, a copy, the identical pages of a trap) is
/// not fingerprinted again. Cleared when it holds this many.
const KNOWN_SIMHASHES: usize = 1 << 16;

thread_local! {
    static SIMHASHES: std::cell::RefCell<std::collections::HashMap<u128, Option<u64>, trawl_core::Prehashed>> =
        std::cell::RefCell::new(std::collections::HashMap::default());
}

/// What a page's SimHash depends on, as one key: its body (the content
/// hash) and the charset the body was decoded with (the content type).
/// None for a URL with a query: the fingerprint leaves the query's values
/// out, so the same body can fingerprint differently under another query.
fn same_text_key(
    url: &trawl_core::Url,
    content_type: Option<&str>,
    content_hash: Option<&str>,
) -> Option<u128> {
    if url.query().is_some() {
        return None;
    }
    let body = u128::from_str_radix(content_hash?.get(..32)?, 16).ok()?;
    let content_type = content_type.unwrap_or("");
    Some(body ^ u128::from_le_bytes(trawl_core::fingerprint(content_type)))
}

fn known_simhash(key: u128) -> Option<Option<u64>> {
    SIMHASHES.with(|known| known.borrow().get(&key).copied())
}

fn remember_simhash(key: u128, simhash: Option<u64>) {
    SIMHASHES.with(|known| {
        let mut known = known.borrow_mut();
        if known.len() >= KNOWN_SIMHASHES {
            known.clear();
        }
        known.insert(key, simhash);
    });
}

/// What a revisit found, counted; none for a first visit.
fn classify(ctx: &ParseContext, req: &Request, facts: &PageFacts) -> Option<Change> {
    let change = match req.previous.as_deref() {
        Some(previous) => Change::classify(
            previous,
            facts.status,
            facts.content_hash.as_deref(),
            facts.simhash,
            ctx.near_distance,
        ),
        // A 304 answers a conditional request (validators kept by an
        // older state, without hashes): unchanged.
        None if facts.status == Some(304) => Change::Unchanged,
        None => return None,
    };
    CrawlStats::inc(match change {
        Change::Unchanged => &ctx.stats.unchanged,
        Change::NearDuplicateChange => &ctx.stats.near_duplicate_changes,
        Change::Changed => &ctx.stats.changed,
    });
    Some(change)
}

/// The spider's turn: items, error records and the requests it asks for
/// (still subject to scope and depth).
fn parse_with_spider(
    ctx: &ParseContext,
    spider: &dyn Spider,
    lease: Lease,
    outcome: &FetchOutcome,
    ok: bool,
    record: PageRecord,
) -> Parsed {
    let mut parsed = Parsed {
        lease,
        items: Vec::new(),
        errors: Vec::new(),
        children: Vec::new(),
        exchange: None,
        facts: None,
    };
    if !ok {
        if record.error.is_some() {
            // A page the spider never saw is an error record, not an item.
            let mut e = serde_json::Map::new();
            e.insert("url".into(), record.url.into());
            e.insert("status".into(), record.status.into());
            e.insert("error".into(), record.error.into());
            parsed.errors.push(Item(e));
        }
        return parsed;
    }
    if !is_html(outcome.content_type.as_deref(), &outcome.body) {
        return parsed;
    }
    let text = charset::decode(outcome.content_type.as_deref(), &outcome.body);
    let response = Response {
        request: &parsed.lease.request,
        url: &outcome.final_url,
        status: outcome.status.unwrap_or(200),
        content_type: outcome.content_type.as_deref(),
        text: &text,
    };
    let out = spider.parse(&response);
    // The page's text fingerprint, for the duplicate index and traps.
    parsed.facts = Some(PageFacts {
        simhash: ctx
            .simhash
            .then(|| page_simhash(&outcome.final_url, &text))
            .flatten(),
        ..PageFacts::default()
    });
    let follow = ctx
        .max_depth
        .is_none_or(|max| parsed.lease.request.depth < max);
    for req in out.requests {
        if follow && ctx.scope.allows(&req.url).is_ok() {
            parsed.children.push(req);
        } else {
            CrawlStats::inc(&ctx.stats.filtered);
        }
    }
    CrawlStats::add(&ctx.stats.item_errors, out.errors.len() as u64);
    parsed.items = out.items;
    parsed.errors = out.errors;
    parsed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use trawl_core::Url;

    #[test]
    fn one_fingerprint_per_body_and_charset_never_under_a_query() {
        let url = |u: &str| Url::parse(u).unwrap();
        let body = content_hash(b"<p>the same page</p>");
        let html = Some("text/html");
        let key = |u: &str, ct: Option<&str>, h: Option<&str>| same_text_key(&url(u), ct, h);
        let a = key("http://a/x", html, Some(&body));
        assert!(a.is_some());
        // A copy elsewhere: the same key.
        assert_eq!(a, key("http://b/copy/x", html, Some(&body)));
        // Another charset, another body, no body: not the same.
        assert_ne!(
            a,
            key("http://a/x", Some("text/html; charset=koi8-r"), Some(&body))
        );
        let other = content_hash(b"<p>another page</p>");
        assert_ne!(a, key("http://a/x", html, Some(&other)));
        assert_eq!(key("http://a/x", html, None), None);
        // Query values are left out of the fingerprint: never shared.
        assert_eq!(key("http://a/x?color=red", html, Some(&body)), None);
        // The cache gives back what it was given, per thread.
        let k = a.unwrap();
        assert_eq!(known_simhash(k), None);
        remember_simhash(k, Some(42));
        assert_eq!(known_simhash(k), Some(Some(42)));
        let elsewhere = std::thread::spawn(move || known_simhash(k)).join().unwrap();
        assert_eq!(elsewhere, None);
    }
}
