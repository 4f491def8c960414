//! The trap detector: per URL pattern, counts of pages, duplicates and
//! the new links they found, and the verdict that a pattern is a trap.
//!
//! A trap is a template that keeps producing pages the crawl already has
//! (duplicates or near-duplicates of pages *of the same pattern*) while
//! each of them links to new URLs of the same template: a calendar's next
//! day, the next page of an endless listing, the same page under a new
//! session id. A page that duplicates a page of another pattern (a mirror
//! host, a printable version) says nothing about its own pattern. A pattern is judged
//! every `window` pages; it is trapped when, within that window, at least
//! `duplicate_rate` of its pages were duplicates and the links those
//! duplicates added to the frontier were mostly (`own_links`) in the
//! pattern's own directory. From then on links of the pattern are not
//! followed (what is queued already is still fetched). Genuinely
//! different pages under one pattern (20,000 products at `/p?id=N`)
//! are never duplicates, so they are never trapped, however many.
//!
//! A pattern seen once is only remembered by its hash; its counts start
//! at its second page, so a crawl of millions of one-of-a-kind URLs keeps
//! ~8 bytes per URL here, not a record each.
//!
//! Patterns are judged at two widths: the full pattern (query keys
//! included) and its family (query keys dropped), which catches faceted
//! search, where every combination of keys is its own pattern.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use trawl_core::{TrapReport, Url};

use crate::pattern::UrlPattern;

/// When a pattern is a trap.
#[derive(Debug, Clone, PartialEq)]
pub struct TrapConfig {
    /// Detect traps at all.
    pub enabled: bool,
    /// Pages of a pattern judged together.
    pub window: u32,
    /// Share of the window's pages that are duplicates or near-duplicates.
    pub duplicate_rate: f64,
    /// Share of the duplicates' new links in the pattern's own directory.
    pub own_links: f64,
    /// Patterns tracked at most (beyond, new patterns are not judged).
    pub max_patterns: usize,
}

impl Default for TrapConfig {
    fn default() -> Self {
        TrapConfig {
            enabled: true,
            window: 32,
            duplicate_rate: 0.8,
            own_links: 0.5,
            max_patterns: 200_000,
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    pages: u64,
    duplicates: u64,
    new_links: u64,
    /// The current window.
    window_pages: u32,
    window_duplicates: u32,
    window_dup_links: u64,
    window_dup_own_links: u64,
    trapped: bool,
    blocked: u64,
}

/// What one fetched page showed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageOutcome {
    /// A duplicate or near-duplicate of an earlier page of the same
    /// pattern (key: query keys included).
    pub duplicate: bool,
    /// A duplicate or near-duplicate of an earlier page of the same
    /// family (query keys dropped).
    pub family_duplicate: bool,
    /// Links the page added to the frontier (not seen before).
    pub new_links: u64,
    /// Of them, in the page's own directory.
    pub own_new_links: u64,
}

/// Hashes of patterns seen once, at most this many (then forgotten).
const MAX_SINGLES: usize = 4_000_000;

/// The detector of one crawl (one per worker in a distributed crawl).
#[derive(Debug)]
pub struct TrapDetector {
    cfg: TrapConfig,
    patterns: HashMap<String, Counts>,
    /// Patterns met once so far, by hash.
    singles: HashSet<u64>,
    trapped: usize,
    /// Reused for the links checked against trapped patterns.
    link: UrlPattern,
    family: String,
}

impl TrapDetector {
    pub fn new(cfg: TrapConfig) -> TrapDetector {
        TrapDetector {
            cfg,
            patterns: HashMap::new(),
            singles: HashSet::new(),
            trapped: 0,
            link: UrlPattern::default(),
            family: String::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// Count one fetched page of `pattern`; returns the patterns this page
    /// trapped (its key, its family, or neither).
    pub fn observe(&mut self, pattern: &UrlPattern, outcome: PageOutcome) -> Vec<String> {
        let mut trapped = Vec::new();
        if !self.cfg.enabled {
            return trapped;
        }
        if self.observe_one(pattern.key(), outcome) {
            trapped.push(pattern.key().to_string());
        }
        if pattern.has_query() {
            let family = family_key(pattern);
            let outcome = PageOutcome {
                duplicate: outcome.family_duplicate,
                ..outcome
            };
            if self.observe_one(&family, outcome) {
                trapped.push(family);
            }
        }
        trapped
    }

    fn observe_one(&mut self, name: &str, outcome: PageOutcome) -> bool {
        if !self.patterns.contains_key(name) {
            if self.singles.len() >= MAX_SINGLES {
                self.singles.clear();
            }
            if self.singles.insert(SINGLES.hash_one(name))
                || self.patterns.len() >= self.cfg.max_patterns
            {
                return false;
            }
            // The key is allocated only for a pattern met the second time.
            self.patterns.insert(name.to_string(), Counts::default());
        }
        let cfg = &self.cfg;
        let Some(c) = self.patterns.get_mut(name) else {
            return false;
        };
        c.pages += 1;
        c.new_links += outcome.new_links;
        c.window_pages += 1;
        if outcome.duplicate {
            c.duplicates += 1;
            c.window_duplicates += 1;
            c.window_dup_links += outcome.new_links;
            c.window_dup_own_links += outcome.own_new_links;
        }
        if c.window_pages < cfg.window.max(1) {
            return false;
        }
        let window = f64::from(c.window_pages);
        let dup_rate = f64::from(c.window_duplicates) / window;
        // The duplicates keep finding new links (at least one per four
        // pages of the window), mostly their own kind.
        let producing = c.window_dup_links * 4 >= u64::from(c.window_pages);
        let own = c.window_dup_links > 0
            && c.window_dup_own_links as f64 / c.window_dup_links as f64 >= cfg.own_links;
        let newly = !c.trapped && dup_rate >= cfg.duplicate_rate && producing && own;
        c.trapped |= newly;
        self.trapped += usize::from(newly);
        c.window_pages = 0;
        c.window_duplicates = 0;
        c.window_dup_links = 0;
        c.window_dup_own_links = 0;
        if newly {
            tracing::warn!(
                pattern = name,
                pages = c.pages,
                duplicates = c.duplicates,
                "Crawler trap: links of this pattern are no longer followed."
            );
        }
        newly
    }

    /// Whether a link of `pattern` should not be followed; counts it.
    pub fn blocks(&mut self, pattern: &UrlPattern) -> bool {
        if !self.cfg.enabled || self.trapped == 0 {
            return false;
        }
        fn block(patterns: &mut HashMap<String, Counts>, name: &str) -> bool {
            match patterns.get_mut(name) {
                Some(c) if c.trapped => {
                    c.blocked += 1;
                    true
                }
                _ => false,
            }
        }
        if block(&mut self.patterns, pattern.key()) {
            return true;
        }
        if !pattern.has_query() {
            return false;
        }
        self.family.clear();
        self.family.push_str(pattern.family());
        self.family.push_str(FAMILY_MARK);
        block(&mut self.patterns, &self.family)
    }

    /// Whether a link to `url` should not be followed; counts it.
    pub fn blocks_url(&mut self, url: &Url) -> bool {
        let mut link = std::mem::take(&mut self.link);
        link.set(url);
        let blocked = self.blocks(&link);
        self.link = link;
        blocked
    }

    /// Every trapped pattern with its counts.
    pub fn reports(&self) -> Vec<TrapReport> {
        let mut out: Vec<TrapReport> = self
            .patterns
            .iter()
            .filter(|(_, c)| c.trapped)
            .map(|(name, c)| TrapReport {
                pattern: name.clone(),
                pages: c.pages,
                duplicates: c.duplicates,
                new_links: c.new_links,
                blocked_links: c.blocked,
            })
            .collect();
        out.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        out
    }

    /// Trapped patterns so far.
    pub fn trapped(&self) -> usize {
        self.trapped
    }
}

/// One hasher for the singles (a fixed random key per process).
static SINGLES: std::sync::LazyLock<RandomState> = std::sync::LazyLock::new(RandomState::new);

/// What a family's name ends with, to tell it from a key.
const FAMILY_MARK: &str = "?…";

/// The family as a pattern of its own (`family?…`), for a pattern whose
/// key has a query.
fn family_key(pattern: &UrlPattern) -> String {
    format!("{}{FAMILY_MARK}", pattern.family())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(u: &str) -> UrlPattern {
        crate::pattern_of(&Url::parse(u).unwrap())
    }

    fn dup(new: u64, own: u64) -> PageOutcome {
        PageOutcome {
            duplicate: true,
            family_duplicate: true,
            new_links: new,
            own_new_links: own,
        }
    }

    #[test]
    fn a_calendar_is_trapped_after_one_window() {
        let mut d = TrapDetector::new(TrapConfig::default());
        let mut trapped = Vec::new();
        for day in 0..33 {
            trapped = d.observe(&pat(&format!("http://e.com/calendar?d={day}")), dup(2, 2));
        }
        assert_eq!(
            trapped,
            vec![
                "e.com/calendar?d=*".to_string(),
                "e.com/calendar?…".to_string()
            ]
        );
        assert!(d.blocks(&pat("http://e.com/calendar?d=99999")));
        assert!(!d.blocks(&pat("http://e.com/p?id=1")));
        let r = d.reports();
        // The first page only marks the pattern as seen.
        assert_eq!(r[0].pages, 32);
        assert_eq!(r[0].blocked_links, 1);
    }

    #[test]
    fn distinct_pages_are_never_trapped() {
        let mut d = TrapDetector::new(TrapConfig::default());
        for id in 0..20_000 {
            let outcome = PageOutcome {
                duplicate: id % 10 == 0,
                family_duplicate: id % 10 == 0,
                new_links: 3,
                own_new_links: 3,
            };
            assert!(
                d.observe(&pat(&format!("http://e.com/p?id={id}")), outcome)
                    .is_empty()
            );
        }
        assert_eq!(d.trapped(), 0);
    }

    #[test]
    fn duplicates_without_new_links_of_their_own_are_not_a_trap() {
        // Printable copies of real pages: duplicates, but their links lead
        // elsewhere (or nowhere new).
        let mut d = TrapDetector::new(TrapConfig::default());
        for id in 0..200 {
            d.observe(&pat(&format!("http://e.com/print?doc={id}")), dup(1, 0));
            d.observe(&pat(&format!("http://e.com/print2?doc={id}")), dup(0, 0));
        }
        assert_eq!(d.trapped(), 0);
    }

    #[test]
    fn endless_pagination_is_trapped_once_it_repeats() {
        let mut d = TrapDetector::new(TrapConfig::default());
        let mut at = None;
        for page in 1..200 {
            let outcome = if page <= 20 {
                PageOutcome {
                    new_links: 1,
                    own_new_links: 1,
                    ..PageOutcome::default()
                }
            } else {
                dup(1, 1)
            };
            if !d
                .observe(&pat(&format!("http://e.com/archive?page={page}")), outcome)
                .is_empty()
            {
                at = Some(page);
                break;
            }
        }
        assert_eq!(at, Some(65));
    }

    #[test]
    fn facets_are_trapped_by_family() {
        let mut d = TrapDetector::new(TrapConfig::default());
        let keys = ["color", "size", "brand", "sort"];
        let mut n = 0u32;
        'outer: for a in 0..4 {
            for b in 0..4 {
                for v in 0..10 {
                    let url = format!("http://e.com/search?q=x&{}={v}&{}={v}", keys[a], keys[b]);
                    n += 1;
                    if d.observe(&pat(&url), dup(3, 3))
                        .iter()
                        .any(|t| t.ends_with('…'))
                    {
                        break 'outer;
                    }
                }
            }
        }
        // The family's first page only marks it as seen.
        assert_eq!(n, 33);
        assert!(d.blocks(&pat(
            "http://e.com/search?brand=1&q=x&size=2&color=3&sort=1"
        )));
    }

    #[test]
    fn off_means_off() {
        let mut d = TrapDetector::new(TrapConfig {
            enabled: false,
            ..TrapConfig::default()
        });
        for day in 0..100 {
            assert!(
                d.observe(&pat(&format!("http://e.com/c?d={day}")), dup(2, 2))
                    .is_empty()
            );
        }
        assert!(!d.blocks(&pat("http://e.com/c?d=1")));
    }
}
