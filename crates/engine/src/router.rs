//! The router: between the parse pool and the sink stage, it decides what
//! a parsed page leads to.
//!
//! For each page it asks the duplicate index whether the page repeats an
//! earlier one (same body: `duplicate_of`; text within the near-duplicate
//! distance: `near_duplicate_of`), applies the `duplicates` policy (keep,
//! or skip the item and/or the links), drops links whose URL pattern the
//! trap detector has found to be a trap, pushes the rest to the frontier
//! (counting how many were new, and for a duplicate how many were in its
//! own directory, which is what the detector judges), tells the frontier
//! what this visit found (for `--recrawl` and `--due`), marks WARC
//! revisits, and hands the items with their lease to the sink stage.
//!
//! Pages go through in order. With a frontier whose pushes cost a round
//! trip (`Frontier::pushes_ahead` > 1, Redis), the pushes of the next
//! pages are sent while earlier ones are out, so the frontier can gather
//! them into one call; a page is finished (trap detector, sink stage)
//! when its own push is back, so its lease is still acknowledged only
//! after its links are in the frontier.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use trawl_core::{CrawlStats, Frontier, Item, Request, Revisit, RevisitProfile, Url, Visit};
use trawl_traps::{Change, ContentIndex, Digest, PageOutcome, TrapDetector, UrlPattern, Verdict};

use crate::config::{DuplicateConfig, DuplicatePolicy};
use crate::parse::{PageFacts, Parsed};

/// Refresh the trap reports in the stats every this many pages (and on
/// each new trap).
const REPORT_EVERY: u64 = 256;
/// Pages whose duplicate verdict may be asked before the page in hand is
/// routed (the router holds that many more pages: a bounded queue).
const VERDICTS_AHEAD: usize = 16;

/// A routed page on its way to the sink stage, waiting for its push.
struct Routed {
    lease: trawl_core::Lease,
    items: Vec<Item>,
    errors: Vec<Item>,
    exchange: Option<trawl_core::Exchange>,
    facts: Option<PageFacts>,
    /// When the trap detector judges the page: whether it duplicates a
    /// page of its own pattern, and of its own family.
    judged: Option<(bool, bool)>,
}

/// A page whose push is out: it, its pattern, and the push's counts.
type PushOut<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = (Routed, Option<UrlPattern>, (u64, u64))> + Send + 'a>,
>;

/// What the router needs besides its queues.
pub(crate) struct Router {
    pub(crate) frontier: Arc<dyn Frontier>,
    pub(crate) stats: Arc<CrawlStats>,
    pub(crate) index: Option<Arc<dyn ContentIndex>>,
    pub(crate) cfg: DuplicateConfig,
}

impl Router {
    pub(crate) fn spawn(
        self,
        route_rx: async_channel::Receiver<Parsed>,
        item_tx: mpsc::Sender<crate::sink_stage::Done>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let this = &self;
            let mut traps = TrapDetector::new(this.cfg.traps.clone());
            let mut patterns = Patterns::default();
            let mut pages = 0u64;
            // Verdicts of the next pages are asked while this one is
            // routed (in order), so a shared index answers many in one
            // round trip.
            let ahead = this.frontier.pushes_ahead().max(1);
            let verdicts = route_rx
                .map(|parsed| async {
                    let verdict = this.verdict_of(&parsed).await;
                    (parsed, verdict)
                })
                .buffered(VERDICTS_AHEAD.max(ahead));
            tokio::pin!(verdicts);
            // Pages whose push is out, finished in order; a remote
            // frontier gathers their pushes into one call.
            let mut pushing: FuturesOrdered<PushOut<'_>> = FuturesOrdered::new();
            let mut input_done = false;
            loop {
                let done = tokio::select! {
                    biased;
                    Some((routed, pattern, pushed)) = pushing.next(), if !pushing.is_empty() => {
                        this.finish(&mut traps, routed, pattern.as_ref(), pushed).await
                    }
                    next = verdicts.next(), if !input_done && pushing.len() < ahead => {
                        let Some((parsed, verdict)) = next else {
                            input_done = true;
                            continue;
                        };
                        let (routed, children, split) =
                            this.route(&mut traps, &mut patterns, parsed, verdict);
                        if ahead == 1 {
                            let pushed = this.push_split(children, split).await;
                            let pattern = routed.judged.map(|_| &patterns.page);
                            this.finish(&mut traps, routed, pattern, pushed).await
                        } else {
                            let pattern: Option<UrlPattern> =
                                routed.judged.map(|_| patterns.page.clone());
                            pushing.push_back(Box::pin(async move {
                                (routed, pattern, this.push_split(children, split).await)
                            }));
                            continue;
                        }
                    }
                    else => break,
                };
                CrawlStats::inc(&this.stats.pages);
                pages += 1;
                if traps.trapped() > 0 && pages.is_multiple_of(REPORT_EVERY) {
                    *this.stats.traps.lock() = traps.reports();
                }
                // The sink stage acknowledges the lease once the item is
                // written.
                if item_tx.send(done).await.is_err() {
                    tracing::error!("Sink stage stopped; item dropped.");
                }
            }
            *this.stats.traps.lock() = traps.reports();
        })
    }

    /// The index's verdict on a parsed page (an original without one).
    async fn verdict_of(&self, parsed: &Parsed) -> Verdict {
        match &parsed.facts {
            Some(f) => self.duplicate_verdict(&parsed.lease.request, f).await,
            None => Verdict::Original,
        }
    }

    /// Everything about a page up to its push: returns the page, the
    /// links to push and how many of them (the first) are in its own
    /// directory.
    fn route(
        &self,
        traps: &mut TrapDetector,
        patterns: &mut Patterns,
        parsed: Parsed,
        verdict: Verdict,
    ) -> (Routed, Vec<Request>, usize) {
        let Parsed {
            lease,
            mut items,
            errors,
            mut children,
            mut exchange,
            facts,
        } = parsed;
        let request = &lease.request;
        let duplicate = verdict.is_duplicate();
        if let Some(first) = items.first_mut() {
            annotate(first, &verdict);
        }
        if let Some(ex) = &mut exchange {
            ex.revisit = revisit_of(request, facts.as_ref(), &verdict);
        }
        if duplicate && self.cfg.policy.skips_items() {
            CrawlStats::add(&self.stats.items_dropped, items.len() as u64);
            items.clear();
        }
        if duplicate && self.cfg.policy.skips_links() {
            CrawlStats::add(&self.stats.filtered, children.len() as u64);
            children.clear();
        }
        if traps.trapped() > 0 {
            let before = children.len();
            children.retain(|c| !traps.blocks_url(&c.url));
            CrawlStats::add(&self.stats.trap_blocked, (before - children.len()) as u64);
        }
        let judged = traps.enabled() && facts.is_some();
        let Patterns { page, of, link } = patterns;
        if judged {
            page.set(&request.url);
        }
        // Only a duplicate of a page of its own kind speaks of its pattern.
        let (same_key, same_family) = match (judged, verdict.of()) {
            (true, Some(url)) if of.set_str(url) => {
                (of.key() == page.key(), of.family() == page.family())
            }
            _ => (false, false),
        };
        let (children, split) = if judged && same_family && !children.is_empty() {
            // A duplicate's links are told apart: those in its own
            // directory are what makes a template a trap. Own links
            // first, then the others, in one push.
            let flags = in_own_directory(&request.url, page, link, &children);
            let mut flags = flags.into_iter();
            let (mut ordered, other): (Vec<Request>, Vec<Request>) = children
                .into_iter()
                .partition(|_| flags.next().unwrap_or(false));
            let own = ordered.len();
            ordered.extend(other);
            (ordered, own)
        } else {
            (children, 0)
        };
        let routed = Routed {
            lease,
            items,
            errors,
            exchange,
            facts,
            judged: judged.then_some((same_key, same_family)),
        };
        (routed, children, split)
    }

    /// The rest once the page's push is back (`pushed`: links new, and
    /// new in its own directory): the trap detector's judgement, the
    /// visit remembered, the page for the sink stage.
    async fn finish(
        &self,
        traps: &mut TrapDetector,
        routed: Routed,
        pattern: Option<&UrlPattern>,
        (new_links, own_new_links): (u64, u64),
    ) -> crate::sink_stage::Done {
        let Routed {
            lease,
            items,
            errors,
            exchange,
            facts,
            judged,
        } = routed;
        if let (Some(p), Some((same_key, same_family))) = (pattern, judged) {
            let outcome = PageOutcome {
                duplicate: same_key,
                family_duplicate: same_family,
                new_links,
                own_new_links,
            };
            if !traps.observe(p, outcome).is_empty() {
                *self.stats.traps.lock() = traps.reports();
            }
        }
        if let Some(f) = &facts {
            self.remember(&lease.request, f).await;
        }
        crate::sink_stage::Done {
            items,
            errors,
            exchange,
            lease,
        }
    }

    /// Ask the index about a page with a body.
    async fn duplicate_verdict(&self, request: &Request, f: &PageFacts) -> Verdict {
        let Some(index) = &self.index else {
            return Verdict::Original;
        };
        let digest = Digest::new(f.content_hash.as_deref(), f.simhash);
        if f.status == Some(304) || digest.is_empty() {
            return Verdict::Original;
        }
        let verdict = match index.check(request.url.as_str(), digest).await {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(%error, "Duplicate index unavailable; page taken as new.");
                return Verdict::Original;
            }
        };
        match &verdict {
            Verdict::Duplicate { .. } => CrawlStats::inc(&self.stats.duplicate_pages),
            Verdict::NearDuplicate { .. } => CrawlStats::inc(&self.stats.near_duplicate_pages),
            Verdict::Original => {}
        }
        verdict
    }

    /// Offer links to the frontier; returns how many were new, and how
    /// many of the first `split`. Never drops links: while the frontier's
    /// storage is unreachable (Redis restarting), waits and retries.
    async fn push_split(&self, children: Vec<Request>, split: usize) -> (u64, u64) {
        let offered = children.len();
        if offered == 0 {
            return (0, 0);
        }
        match crate::retry::persist("push", || self.frontier.push_split(children.clone(), split))
            .await
        {
            Ok((added, first)) => {
                CrawlStats::add(&self.stats.duplicates, (offered - added) as u64);
                (added as u64, first as u64)
            }
            Err(error) => {
                tracing::error!(%error, "Frontier push failed; links dropped.");
                (0, 0)
            }
        }
    }

    /// Tell the frontier what this visit found (validators, hashes, the
    /// next revisit interval).
    async fn remember(&self, request: &Request, f: &PageFacts) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let record = self.cfg.revisit.visit(
            request.previous.as_deref(),
            f.change,
            f.content_hash.clone(),
            f.simhash,
            now,
        );
        // A 304 confirms the validators it was asked with.
        let (etag, last_modified) = if f.status == Some(304) {
            (
                request.etag.as_deref().or(f.etag.as_deref()),
                request
                    .last_modified
                    .as_deref()
                    .or(f.last_modified.as_deref()),
            )
        } else {
            (f.etag.as_deref(), f.last_modified.as_deref())
        };
        let visit = Visit {
            etag,
            last_modified,
            record: &record,
        };
        if let Err(error) = self.frontier.remember(request, visit).await {
            tracing::warn!(%error, "Frontier could not remember the visit.");
        }
    }
}

/// Whether each link is in the page's own directory pattern: one URL
/// generalised per distinct directory among the links (a page links into
/// a few), not one per link.
fn in_own_directory(
    page_url: &Url,
    page: &UrlPattern,
    link: &mut UrlPattern,
    children: &[Request],
) -> Vec<bool> {
    fn raw_directory(url: &Url) -> (&str, Option<u16>, &str) {
        let path = url.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        (url.host_str().unwrap_or(""), url.port(), dir)
    }
    // The page's own directory as written is its own without asking;
    // a page links into a few directories, so a list beats a map.
    let mut known = vec![(raw_directory(page_url), true)];
    children
        .iter()
        .map(|c| {
            let key = raw_directory(&c.url);
            match known.iter().find(|(k, _)| *k == key) {
                Some(&(_, own)) => own,
                None => {
                    link.set(&c.url);
                    let own = link.directory() == page.directory();
                    known.push((key, own));
                    own
                }
            }
        })
        .collect()
}

/// The router's URL patterns, kept from page to page so that
/// generalising a URL reuses their strings.
#[derive(Default)]
pub(crate) struct Patterns {
    /// The page's own.
    page: UrlPattern,
    /// The page it duplicates.
    of: UrlPattern,
    /// One of its links.
    link: UrlPattern,
}

/// Say in the page record what the page duplicates.
fn annotate(item: &mut Item, verdict: &Verdict) {
    let (key, of) = match verdict {
        Verdict::Original => return,
        Verdict::Duplicate { of } => ("duplicate_of", of),
        Verdict::NearDuplicate { of, .. } => ("near_duplicate_of", of),
    };
    // Page records have the field; a spider's items only get it if they
    // have one of that name already, so their shape stays theirs.
    if let Some(slot) = item.0.get_mut(key) {
        *slot = of.clone().into();
    }
}

/// A WARC revisit for a page whose payload is archived already: a 304 or
/// the same body as the last visit (`--recrawl`), or the same body as
/// another page of this crawl.
fn revisit_of(request: &Request, facts: Option<&PageFacts>, verdict: &Verdict) -> Option<Revisit> {
    let f = facts?;
    let last_visit = || {
        request
            .previous
            .as_deref()
            .map(|p| UNIX_EPOCH + Duration::from_secs(p.visited))
    };
    if f.status == Some(304) {
        return Some(Revisit {
            profile: RevisitProfile::ServerNotModified,
            refers_to_uri: request.url.to_string(),
            refers_to_date: last_visit(),
        });
    }
    if f.change == Some(Change::Unchanged) {
        return Some(Revisit {
            profile: RevisitProfile::IdenticalPayloadDigest,
            refers_to_uri: request.url.to_string(),
            refers_to_date: last_visit(),
        });
    }
    match verdict {
        Verdict::Duplicate { of } => Some(Revisit {
            profile: RevisitProfile::IdenticalPayloadDigest,
            refers_to_uri: of.clone(),
            refers_to_date: None,
        }),
        _ => None,
    }
}

impl DuplicatePolicy {
    fn skips_items(self) -> bool {
        matches!(self, DuplicatePolicy::SkipItems | DuplicatePolicy::Skip)
    }
    fn skips_links(self) -> bool {
        matches!(self, DuplicatePolicy::SkipLinks | DuplicatePolicy::Skip)
    }
}
