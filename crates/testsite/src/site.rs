//! The generated site: a deterministic page graph, its ground truth (what a
//! correct crawler must fetch) and the catalogue of fault routes.
//!
//! Everything the server renders is derived from the same [`Site`] data the
//! ground-truth functions walk, so the two cannot drift apart.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::config::SiteConfig;
use crate::rng::{Rng, hash3};
use crate::robots::Rules;
use crate::shop::{Article, Product, Shop};
use crate::traps::TrapSite;

/// Title of `/`.
pub const ROOT_TITLE: &str = "Trawl test site";
/// Title of `/latin1` (served as windows-1252 / ISO-8859-1).
pub const LATIN1_TITLE: &str = "Café crème — Ümlaut";
/// Title of `/sjis` (served as Shift_JIS, declared only by `<meta charset>`).
pub const SJIS_TITLE: &str = "日本語のテストページ 東京";

/// Error kinds used in [`Expected::error_paths`].
pub mod error_kind {
    /// Final status 404.
    pub const HTTP_404: &str = "http-404";
    /// Final status 410.
    pub const HTTP_410: &str = "http-410";
    /// Final status 500 (possibly after retries).
    pub const HTTP_500: &str = "http-500";
    /// Final status 503 (always 503, with `Retry-After: 1`).
    pub const HTTP_503: &str = "http-503";
    /// `/redirect/loop/a` ↔ `/redirect/loop/b` (a crawler that does not
    /// detect loops reports too-many-redirects instead).
    pub const REDIRECT_LOOP: &str = "redirect-loop";
    /// A chain longer than 10 hops.
    pub const TOO_MANY_REDIRECTS: &str = "too-many-redirects";
    /// A redirect to another host, which must not be followed.
    pub const REDIRECT_OUT_OF_SCOPE: &str = "redirect-out-of-scope";
    /// The server resets the TCP connection.
    pub const CONNECTION_RESET: &str = "connection-reset";
    /// No headers (`/hang`) or a body that stops (`/stall`).
    pub const TIMEOUT: &str = "timeout";
    /// An endless body (`/huge`): must be cut by a body-size limit.
    pub const BODY_TOO_LARGE: &str = "body-too-large";
}

/// Kind of a generated `/p/` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageKind {
    /// Linked from other pages; reachable from `/`.
    Normal,
    /// Linked from nowhere and listed nowhere.
    Unreachable,
    /// Linked from nowhere, listed in the sitemaps.
    SitemapOnly,
}

/// Fixed non-`/p/` pages of the clean site (robots.txt tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Extra {
    PrivateSecret,
    PrivatePublicOk,
    NotTrawl,
    PrivateFromSitemap,
}

impl Extra {
    pub(crate) const ALL: [Extra; 4] = [
        Extra::PrivateSecret,
        Extra::PrivatePublicOk,
        Extra::NotTrawl,
        Extra::PrivateFromSitemap,
    ];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Extra::PrivateSecret => "/private/secret",
            Extra::PrivatePublicOk => "/private/public-ok",
            Extra::NotTrawl => "/nottrawl/page",
            Extra::PrivateFromSitemap => "/private/from-sitemap",
        }
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Extra::PrivateSecret => "Private secret",
            Extra::PrivatePublicOk => "Private but public for star",
            Extra::NotTrawl => "Not for trawl",
            Extra::PrivateFromSitemap => "Private page listed in the sitemap",
        }
    }

    pub(crate) fn from_path(path: &str) -> Option<Extra> {
        Extra::ALL.into_iter().find(|e| e.path() == path)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A node of the clean graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Node {
    Root,
    Page(u32),
    Extra(Extra),
    /// `/shop/` (1) or `/shop/page/{n}`.
    ShopList(u32),
    /// `/shop/product/{id}` (1-based).
    Product(u32),
    /// `/blog/` (1) or `/blog/page/{n}`.
    BlogList(u32),
    /// `/blog/{slug}` of article `i` (0-based).
    Article(u32),
}

impl Node {
    pub(crate) fn path(self) -> String {
        match self {
            Node::Root => "/".to_owned(),
            Node::Page(i) => format!("/p/{i}"),
            Node::Extra(e) => e.path().to_owned(),
            Node::ShopList(n) => crate::shop::list_path("/shop/", n),
            Node::Product(id) => format!("/shop/product/{id}"),
            Node::BlogList(n) => crate::shop::list_path("/blog/", n),
            Node::Article(i) => format!("/blog/{}", crate::shop::article_slug(i)),
        }
    }
}

/// What a correct crawler gets for a fault route linked from `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NastyOutcome {
    /// A 200 HTML page (links to [`Site::nasty_page_links`]).
    Ok,
    /// A 200 HTML page after retrying 503/429 answers honouring `Retry-After`.
    Retried,
    /// Redirects (≤ 10 hops) to this 200 page.
    RedirectTo(&'static str),
    /// Ends in this [`error_kind`].
    Error(&'static str),
    /// A 200 non-HTML resource.
    NonHtml,
    /// A crawler trap under this prefix, cut by depth/budget limits.
    Trap(&'static str),
}

/// Fault routes linked from `/` when `nasty` is on, with their outcome.
pub(crate) const NASTY_LINKS: &[(&str, NastyOutcome)] = &[
    (
        "/redirect/chain/3",
        NastyOutcome::RedirectTo("/redirect/chain/0"),
    ),
    (
        "/redirect/chain/15",
        NastyOutcome::Error(error_kind::TOO_MANY_REDIRECTS),
    ),
    (
        "/redirect/loop/a",
        NastyOutcome::Error(error_kind::REDIRECT_LOOP),
    ),
    (
        "/redirect/offsite",
        NastyOutcome::Error(error_kind::REDIRECT_OUT_OF_SCOPE),
    ),
    ("/status/404", NastyOutcome::Error(error_kind::HTTP_404)),
    ("/status/410", NastyOutcome::Error(error_kind::HTTP_410)),
    ("/status/500", NastyOutcome::Error(error_kind::HTTP_500)),
    ("/status/503", NastyOutcome::Error(error_kind::HTTP_503)),
    ("/flaky/1", NastyOutcome::Retried),
    ("/flaky429/1", NastyOutcome::Retried),
    ("/slow/50", NastyOutcome::Ok),
    ("/stall", NastyOutcome::Error(error_kind::TIMEOUT)),
    ("/hang", NastyOutcome::Error(error_kind::TIMEOUT)),
    ("/reset", NastyOutcome::Error(error_kind::CONNECTION_RESET)),
    ("/gzip", NastyOutcome::Ok),
    ("/brotli", NastyOutcome::Ok),
    ("/huge", NastyOutcome::Error(error_kind::BODY_TOO_LARGE)),
    ("/malformed", NastyOutcome::Ok),
    ("/binary", NastyOutcome::NonHtml),
    ("/latin1", NastyOutcome::Ok),
    ("/sjis", NastyOutcome::Ok),
    ("/calendar/2024/1", NastyOutcome::Trap("/calendar/")),
    (
        "/session/0?sid=0000000000000000",
        NastyOutcome::Trap("/session/"),
    ),
];

/// What a correct crawler ends up with (robots obeyed, scope = this host, no
/// depth limit, redirects followed inline up to 10 hops, 503/429 retried at
/// least twice honouring `Retry-After`, header/body read timeouts and a body
/// size limit in place). Paths are canonical (`/p/17`, no fragment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// 200 HTML pages the crawler records, redirect chains by their final
    /// path. Includes [`Site::ground_truth`], the reachable fault routes
    /// that end in a 200 page and the `retried` ones. Excludes trap pages.
    pub ok_pages: BTreeSet<String>,
    /// Linked path → final path, for redirect chains that end in a 200.
    pub redirects: BTreeMap<String, String>,
    /// Linked path → [`error_kind`] constant.
    pub error_paths: BTreeMap<String, String>,
    /// 200 answers that are not HTML (`/binary`).
    pub non_html: BTreeSet<String>,
    /// Pages that only succeed after retrying 503/429 (also in `ok_pages`).
    pub retried: BTreeSet<String>,
    /// Prefixes of crawler traps (`/calendar/`, `/session/`): infinitely
    /// many URLs that must be cut by depth/budget limits.
    pub traps: Vec<String>,
    /// Linked (or sitemap-listed) paths robots.txt forbids: never request.
    pub disallowed: BTreeSet<String>,
    /// Pages reachable only through the sitemaps.
    pub sitemap_only: BTreeSet<String>,
}

/// Capitalised words for titles.
pub(crate) const TITLE_WORDS: [&str; 64] = [
    "Amber", "Birch", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Indigo",
    "Juniper", "Kestrel", "Lantern", "Meadow", "Nebula", "Orchid", "Pioneer", "Quartz", "Raven",
    "Saffron", "Tundra", "Umber", "Velvet", "Willow", "Xenon", "Yarrow", "Zephyr", "Aurora",
    "Basalt", "Cedar", "Dune", "Estuary", "Fjord", "Glacier", "Heather", "Iris", "Jasper", "Kelp",
    "Lagoon", "Maple", "Nimbus", "Onyx", "Prairie", "Quill", "Reef", "Sierra", "Thistle", "Upland",
    "Valley", "Walnut", "Yew", "Zinc", "Acorn", "Bramble", "Canyon", "Drift", "Echo", "Fern",
    "Grove", "Hollow", "Islet", "Jade", "Knoll", "Lichen", "Marsh",
];

/// Lower-case words for the padding corpus.
const CORPUS_WORDS: [&str; 48] = [
    "the",
    "crawler",
    "reads",
    "every",
    "page",
    "once",
    "and",
    "follows",
    "links",
    "across",
    "quiet",
    "servers",
    "while",
    "robots",
    "rules",
    "guard",
    "private",
    "corners",
    "of",
    "a",
    "deterministic",
    "site",
    "where",
    "sitemaps",
    "list",
    "hidden",
    "documents",
    "that",
    "no",
    "anchor",
    "reaches",
    "yet",
    "frontier",
    "queues",
    "grow",
    "steadily",
    "with",
    "canonical",
    "addresses",
    "fragments",
    "vanish",
    "hosts",
    "lower",
    "case",
    "dots",
    "resolve",
    "bytes",
    "flow",
];

/// Links from `/` to `/p/` pages (at most).
const ROOT_PAGE_LINKS: usize = 10;

/// The generated site graph. Cheap to query; shared by the server.
#[derive(Clone)]
pub struct Site {
    cfg: SiteConfig,
    kinds: Vec<PageKind>,
    normals: Vec<u32>,
    offsets: Vec<u32>,
    targets: Vec<u32>,
    root_links: Vec<u32>,
    sitemap1: Vec<Node>,
    sitemap2: Vec<Node>,
    rules: Rules,
    corpus: String,
    shop: Shop,
    traps: TrapSite,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("config", &self.cfg)
            .field("pages", &self.kinds.len())
            .field("reachable_normal_pages", &self.normals.len())
            .finish_non_exhaustive()
    }
}

/// Result of a breadth-first walk.
struct Reach {
    /// Fetched (allowed) nodes with their depth.
    fetched: Vec<(Node, u32)>,
    /// Linked nodes robots forbids.
    disallowed: Vec<Node>,
}

impl Site {
    /// Generates the site for `cfg`; identical output for identical input.
    pub fn generate(cfg: &SiteConfig) -> Site {
        let n = cfg.pages.min(u32::MAX as usize - 1);
        let seed = cfg.seed;
        let mut rng = Rng::new(seed);

        let mut kinds = vec![PageKind::Normal; n];
        for kind in kinds.iter_mut().skip(1) {
            let r = rng.below(100);
            *kind = if r < 3 {
                PageKind::Unreachable
            } else if r < 5 {
                PageKind::SitemapOnly
            } else {
                PageKind::Normal
            };
        }
        if n >= 3 {
            if !kinds.contains(&PageKind::Unreachable) {
                kinds[n - 1] = PageKind::Unreachable;
            }
            if !kinds.contains(&PageKind::SitemapOnly)
                && let Some(i) = (1..n).rev().find(|&i| kinds[i] == PageKind::Normal)
            {
                kinds[i] = PageKind::SitemapOnly;
            }
        }
        let normals: Vec<u32> = (0..n as u32)
            .filter(|&i| kinds[i as usize] == PageKind::Normal)
            .collect();
        let m = normals.len() as u64;

        let fanout = cfg.fanout;
        let mut offsets = Vec::with_capacity(n + 1);
        let mut targets = Vec::with_capacity(n.saturating_mul(fanout));
        let mut pos = 0usize; // position of page i in `normals` (if normal)
        for (i, kind) in kinds.iter().enumerate() {
            offsets.push(targets.len() as u32);
            let mut prng = Rng::new(hash3(seed, i as u64, 0x0A11_1275));
            if *kind == PageKind::Normal {
                let k = pos;
                pos += 1;
                let ahead = normals.len() - k - 1;
                for l in 0..fanout {
                    let t = if l == 0 {
                        if ahead > 0 {
                            normals[k + 1]
                        } else {
                            normals[0]
                        }
                    } else if ahead > 0 && prng.chance(4, 5) {
                        normals[k + 1 + prng.below(ahead as u64) as usize]
                    } else {
                        normals[prng.below(m) as usize]
                    };
                    targets.push(t);
                }
            } else {
                for _ in 0..fanout {
                    targets.push(normals[prng.below(m) as usize]);
                }
            }
        }
        offsets.push(targets.len() as u32);

        let mut root_links = Vec::new();
        if m > 0 {
            root_links.push(normals[0]);
            for _ in 1..ROOT_PAGE_LINKS.min(normals.len()) {
                root_links.push(normals[rng.below(m) as usize]);
            }
        }

        let mut sitemap1 = vec![Node::Root, Node::Extra(Extra::PrivateFromSitemap)];
        let mut sitemap2 = Vec::new();
        let mut alt = false;
        for i in 0..n as u32 {
            match kinds[i as usize] {
                PageKind::Normal => match hash3(seed, u64::from(i), 0x5173_3A70) % 10 {
                    0 => sitemap1.push(Node::Page(i)),
                    1 => sitemap2.push(Node::Page(i)),
                    _ => {}
                },
                PageKind::SitemapOnly => {
                    if alt {
                        sitemap2.push(Node::Page(i));
                    } else {
                        sitemap1.push(Node::Page(i));
                    }
                    alt = !alt;
                }
                PageKind::Unreachable => {}
            }
        }

        Site {
            cfg: cfg.clone(),
            kinds,
            normals,
            offsets,
            targets,
            root_links,
            sitemap1,
            sitemap2,
            rules: Rules::for_mode(&cfg.robots),
            corpus: make_corpus(seed),
            shop: Shop::generate(seed, cfg.shop, cfg.shop_products, cfg.shop_articles),
            traps: TrapSite::new(seed, cfg.traps, cfg.trap_products),
        }
    }

    /// The configuration this site was generated from.
    pub fn config(&self) -> &SiteConfig {
        &self.cfg
    }

    /// Number of `/p/` pages.
    pub fn page_count(&self) -> usize {
        self.kinds.len()
    }

    /// Every generated page path: `/` and `/p/{i}` for all `i` (reachable or
    /// not).
    pub fn all_pages(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = std::iter::once("/".to_owned())
            .chain((0..self.kinds.len()).map(|i| format!("/p/{i}")))
            .collect();
        if self.shop.enabled {
            out.extend(self.listing_pages());
            out.extend(self.blog_pages());
            out.extend(self.shop.products.iter().map(|p| p.path.clone()));
            out.extend(self.shop.articles.iter().map(|a| a.path.clone()));
        }
        out
    }

    /// The trap site ([`SiteConfig::traps`]): its real pages, which URLs
    /// are traps, titles. Its real pages are not part of
    /// [`Site::ground_truth`] (add [`TrapSite::real_paths`]).
    pub fn traps(&self) -> &TrapSite {
        &self.traps
    }

    /// Ground truth of the products (`/shop/product/{id}`, ids from 1);
    /// empty unless [`SiteConfig::shop`].
    pub fn products(&self) -> Vec<Product> {
        self.shop.products.clone()
    }

    /// Ground truth of the blog articles (`/blog/{slug}`); empty unless
    /// [`SiteConfig::shop`].
    pub fn articles(&self) -> Vec<Article> {
        self.shop.articles.clone()
    }

    /// The product catalogue's listing pages in order (`/shop/`,
    /// `/shop/page/2`, …), each listing [`crate::PRODUCTS_PER_PAGE`]
    /// products and linking the next with `<a rel="next" class="next">`;
    /// empty unless [`SiteConfig::shop`].
    pub fn listing_pages(&self) -> Vec<String> {
        (1..=self.shop.shop_pages())
            .map(|n| Node::ShopList(n).path())
            .collect()
    }

    /// The blog's index pages in order (`/blog/`, `/blog/page/2`, …), each
    /// listing [`crate::ARTICLES_PER_PAGE`] articles; empty unless
    /// [`SiteConfig::shop`].
    pub fn blog_pages(&self) -> Vec<String> {
        (1..=self.shop.blog_pages())
            .map(|n| Node::BlogList(n).path())
            .collect()
    }

    /// `/p/` pages that nothing links to and no sitemap lists.
    pub fn unreachable_paths(&self) -> BTreeSet<String> {
        self.kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == PageKind::Unreachable)
            .map(|(i, _)| format!("/p/{i}"))
            .collect()
    }

    /// Exact set of paths a correct crawler (scope = this host, robots.txt
    /// obeyed for `trawl`, no depth limit, sitemaps ignored) fetches with a
    /// 200 and records as pages when starting from `/`. Fault routes are
    /// excluded even when `nasty` is on (see [`Site::expected`]).
    ///
    /// With the default robots.txt this is `/` plus the reachable `/p/`
    /// pages; with [`crate::RobotsMode::None`] it also has the `/private/`
    /// and `/nottrawl/` pages; with [`crate::RobotsMode::ServerError`] it
    /// is empty (complete disallow).
    pub fn ground_truth(&self) -> BTreeSet<String> {
        paths(
            self.bfs(&[Node::Root], None)
                .fetched
                .iter()
                .map(|(n, _)| *n),
        )
    }

    /// Like [`Site::ground_truth`] but only pages at link depth ≤
    /// `max_depth` (`/` has depth 0, the pages it links to depth 1, ...).
    pub fn ground_truth_within_depth(&self, max_depth: u32) -> BTreeSet<String> {
        paths(
            self.bfs(&[Node::Root], Some(max_depth))
                .fetched
                .iter()
                .map(|(n, _)| *n),
        )
    }

    /// Linked or sitemap-listed paths that robots.txt forbids for `trawl`
    /// (they must never be requested). Includes fault routes when `nasty`.
    pub fn disallowed_paths(&self) -> BTreeSet<String> {
        let mut seeds = vec![Node::Root];
        seeds.extend(self.sitemap_nodes());
        let reach = self.bfs(&seeds, None);
        let mut out = paths(reach.disallowed.iter().copied());
        let root_ok = self.rules.is_allowed("/");
        if self.cfg.nasty && root_ok {
            for (path, outcome) in NASTY_LINKS {
                if !self.rules.is_allowed(path) {
                    out.insert((*path).to_owned());
                } else if let NastyOutcome::RedirectTo(fin) = outcome
                    && !self.rules.is_allowed(fin)
                {
                    out.insert((*fin).to_owned());
                }
            }
        }
        out
    }

    /// Pages reachable only via the sitemaps (`/sitemap_index.xml` →
    /// `/sitemap1.xml`, `/sitemap2.xml.gz`; also `/sitemap.txt`), i.e. not
    /// in [`Site::ground_truth`], robots obeyed.
    pub fn sitemap_only_paths(&self) -> BTreeSet<String> {
        let mut seeds = vec![Node::Root];
        seeds.extend(self.sitemap_nodes());
        let all = paths(self.bfs(&seeds, None).fetched.iter().map(|(n, _)| *n));
        let truth = self.ground_truth();
        all.difference(&truth).cloned().collect()
    }

    /// Paths listed in the sitemaps (allowed or not).
    pub fn sitemap_paths(&self) -> BTreeSet<String> {
        paths(self.sitemap_nodes())
    }

    /// Ground-truth title of the page at `path` (exact canonical path, with
    /// the query for trap-site pages), if the site serves an HTML page there.
    pub fn title_of(&self, path: &str) -> Option<String> {
        if path == "/" {
            return Some(ROOT_TITLE.to_owned());
        }
        if let Some(i) = self.page_index(path) {
            let mut out = Vec::new();
            self.write_page_title(i, &mut out);
            return String::from_utf8(out).ok();
        }
        if let Some(e) = Extra::from_path(path) {
            return Some(e.title().to_owned());
        }
        if let Some(node) = self.shop.node_of(path) {
            return self.shop.title(node);
        }
        if let Some(t) = self.traps.title_of(path) {
            return Some(t);
        }
        nasty_title(path)
    }

    /// Canonical same-site link targets (paths, deduplicated, sorted) that
    /// the clean page at `path` (`/`, `/p/{i}`, `/private/…`,
    /// `/nottrawl/page`) contains, fault routes excluded; `None` for other
    /// paths.
    pub fn links_of(&self, path: &str) -> Option<BTreeSet<String>> {
        let node = if path == "/" {
            Node::Root
        } else if let Some(i) = self.page_index(path) {
            Node::Page(i)
        } else if let Some(node) = self.shop.node_of(path) {
            node
        } else {
            Node::Extra(Extra::from_path(path)?)
        };
        let mut out = BTreeSet::new();
        self.for_each_link(node, |n| {
            out.insert(n.path());
        });
        Some(out)
    }

    /// The full expectation including fault routes (meaningful with
    /// `nasty = true`; with `nasty = false` only `ok_pages`, `disallowed`
    /// and `sitemap_only` are filled).
    pub fn expected(&self) -> Expected {
        let mut exp = Expected::default();
        let root_ok = self.rules.is_allowed("/");
        let mut seeds = vec![Node::Root];
        if self.cfg.nasty && root_ok {
            let mut any_ok = false;
            for (path, outcome) in NASTY_LINKS {
                if !self.rules.is_allowed(path) {
                    continue;
                }
                let path = (*path).to_owned();
                match outcome {
                    NastyOutcome::Ok => {
                        any_ok = true;
                        exp.ok_pages.insert(path);
                    }
                    NastyOutcome::Retried => {
                        any_ok = true;
                        exp.ok_pages.insert(path.clone());
                        exp.retried.insert(path);
                    }
                    NastyOutcome::RedirectTo(fin) => {
                        if self.rules.is_allowed(fin) {
                            any_ok = true;
                            exp.ok_pages.insert((*fin).to_owned());
                            exp.redirects.insert(path, (*fin).to_owned());
                        }
                    }
                    NastyOutcome::Error(kind) => {
                        exp.error_paths.insert(path, (*kind).to_owned());
                    }
                    NastyOutcome::NonHtml => {
                        exp.non_html.insert(path);
                    }
                    NastyOutcome::Trap(prefix) => exp.traps.push((*prefix).to_owned()),
                }
            }
            if any_ok {
                seeds.extend(self.nasty_page_links());
            }
        }
        exp.ok_pages.extend(paths(
            self.bfs(&seeds, None).fetched.iter().map(|(n, _)| *n),
        ));
        exp.disallowed = self.disallowed_paths();
        exp.sitemap_only = self.sitemap_only_paths();
        exp
    }

    // ----- crate-internal accessors used by the renderer and the server -----

    pub(crate) fn corpus(&self) -> &str {
        &self.corpus
    }

    pub(crate) fn seed(&self) -> u64 {
        self.cfg.seed
    }

    /// `i` if `path` is exactly `/p/{i}` (canonical decimal) with `i < pages`.
    pub(crate) fn page_index(&self, path: &str) -> Option<u32> {
        let i = parse_canonical_u64(path.strip_prefix("/p/")?)?;
        (i < self.kinds.len() as u64).then_some(i as u32)
    }

    pub(crate) fn page_targets(&self, i: u32) -> &[u32] {
        let i = i as usize;
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        &self.targets[a..b]
    }

    pub(crate) fn root_links(&self) -> &[u32] {
        &self.root_links
    }

    /// The optional extra (non-`/p/`) link of page `i`.
    pub(crate) fn page_extra_link(&self, i: u32) -> Option<Node> {
        match hash3(self.cfg.seed, u64::from(i), 0xE7_7A) % 40 {
            0 => Some(Node::Extra(Extra::PrivateSecret)),
            1 => Some(Node::Extra(Extra::PrivatePublicOk)),
            2 => Some(Node::Extra(Extra::NotTrawl)),
            3 => Some(Node::Root),
            _ => None,
        }
    }

    /// Extras linked from `/`.
    pub(crate) fn root_extras(&self) -> [Extra; 3] {
        [
            Extra::PrivateSecret,
            Extra::PrivatePublicOk,
            Extra::NotTrawl,
        ]
    }

    /// Whether page `i` carries a `<base href>` (pointing at `/p/x/`).
    pub(crate) fn has_base(&self, i: u32) -> bool {
        i != 0 && hash3(self.cfg.seed, u64::from(i), 0xBA5E).is_multiple_of(12)
    }

    /// Links of every 200 fault page (gzip, brotli, malformed, ...).
    pub(crate) fn nasty_page_links(&self) -> Vec<Node> {
        let mut out = vec![Node::Root];
        if let (Some(first), Some(last)) = (self.normals.first(), self.normals.last()) {
            out.push(Node::Page(*first));
            let mid = self.normals[self.normals.len() / 2];
            if mid != *first {
                out.push(Node::Page(mid));
            }
            if *last != mid && *last != *first {
                out.push(Node::Page(*last));
            }
        }
        out
    }

    pub(crate) fn sitemap1(&self) -> &[Node] {
        &self.sitemap1
    }

    pub(crate) fn sitemap2(&self) -> &[Node] {
        &self.sitemap2
    }

    fn sitemap_nodes(&self) -> impl Iterator<Item = Node> + '_ {
        self.sitemap1.iter().chain(self.sitemap2.iter()).copied()
    }

    /// Writes the title of page `i` ("Page 17 — Amber Falcon").
    pub(crate) fn write_page_title(&self, i: u32, out: &mut Vec<u8>) {
        let h = hash3(self.cfg.seed, u64::from(i), 0x717E);
        out.extend_from_slice(b"Page ");
        push_u64(out, u64::from(i));
        out.extend_from_slice(" — ".as_bytes());
        out.extend_from_slice(TITLE_WORDS[(h % 64) as usize].as_bytes());
        out.push(b' ');
        out.extend_from_slice(TITLE_WORDS[((h >> 8) % 64) as usize].as_bytes());
    }

    /// Writes the meta description of page `i`.
    pub(crate) fn write_page_description(&self, i: u32, out: &mut Vec<u8>) {
        let h = hash3(self.cfg.seed, u64::from(i), 0x717E);
        out.extend_from_slice(b"Test page ");
        push_u64(out, u64::from(i));
        out.extend_from_slice(b" about ");
        for b in TITLE_WORDS[(h % 64) as usize].bytes() {
            out.push(b.to_ascii_lowercase());
        }
        out.extend_from_slice(b" and ");
        for b in TITLE_WORDS[((h >> 8) % 64) as usize].bytes() {
            out.push(b.to_ascii_lowercase());
        }
        out.push(b'.');
    }

    /// Outgoing same-site links of a clean node (what the rendered HTML
    /// contains, canonicalized), excluding fault routes.
    pub(crate) fn for_each_link(&self, node: Node, mut f: impl FnMut(Node)) {
        match node {
            Node::Root => {
                for &p in &self.root_links {
                    f(Node::Page(p));
                }
                for e in self.root_extras() {
                    f(Node::Extra(e));
                }
                if self.shop.enabled {
                    f(Node::ShopList(1));
                    f(Node::BlogList(1));
                }
            }
            Node::Page(i) => {
                for &t in self.page_targets(i) {
                    f(Node::Page(t));
                }
                if let Some(x) = self.page_extra_link(i) {
                    f(x);
                }
            }
            Node::Extra(_) => f(Node::Root),
            Node::ShopList(_) | Node::Product(_) | Node::BlogList(_) | Node::Article(_) => {
                self.shop.for_each_link(node, &mut f);
            }
        }
    }

    pub(crate) fn shop(&self) -> &Shop {
        &self.shop
    }

    fn node_index(&self, node: Node) -> usize {
        match node {
            Node::Root => 0,
            Node::Page(i) => 1 + i as usize,
            Node::Extra(e) => 1 + self.kinds.len() + e.index(),
            Node::ShopList(_) | Node::Product(_) | Node::BlogList(_) | Node::Article(_) => {
                1 + self.kinds.len() + Extra::ALL.len() + self.shop.node_index(node)
            }
        }
    }

    fn bfs(&self, seeds: &[Node], max_depth: Option<u32>) -> Reach {
        const UNSEEN: u8 = 0;
        let mut state =
            vec![UNSEEN; 1 + self.kinds.len() + Extra::ALL.len() + self.shop.node_count()];
        let mut reach = Reach {
            fetched: Vec::new(),
            disallowed: Vec::new(),
        };
        let mut queue = VecDeque::new();
        let mut visit =
            |node: Node, depth: u32, reach: &mut Reach, queue: &mut VecDeque<(Node, u32)>| {
                let idx = self.node_index(node);
                if state[idx] != UNSEEN {
                    return;
                }
                state[idx] = 1;
                if self.rules.is_allowed(&node.path()) {
                    reach.fetched.push((node, depth));
                    queue.push_back((node, depth));
                } else {
                    reach.disallowed.push(node);
                }
            };
        for &s in seeds {
            visit(s, 0, &mut reach, &mut queue);
        }
        while let Some((node, depth)) = queue.pop_front() {
            if max_depth.is_some_and(|m| depth >= m) {
                continue;
            }
            let mut next = Vec::new();
            self.for_each_link(node, |t| next.push(t));
            for t in next {
                visit(t, depth + 1, &mut reach, &mut queue);
            }
        }
        reach
    }
}

fn paths(nodes: impl Iterator<Item = Node>) -> BTreeSet<String> {
    nodes.map(Node::path).collect()
}

/// Title of a fault-route page, if it is an HTML page.
pub(crate) fn nasty_title(path: &str) -> Option<String> {
    let fixed = match path {
        "/gzip" => Some("Gzip page"),
        "/brotli" => Some("Brotli page"),
        "/malformed" => Some("Malformed page"),
        "/latin1" => Some(LATIN1_TITLE),
        "/sjis" => Some(SJIS_TITLE),
        "/redirect/chain/0" => Some("End of the redirect chain"),
        _ => None,
    };
    if let Some(t) = fixed {
        return Some(t.to_owned());
    }
    if let Some(ms) = path.strip_prefix("/slow/").and_then(parse_canonical_u64) {
        return Some(format!("Slow page ({ms} ms)"));
    }
    if let Some(id) = path.strip_prefix("/flaky/").filter(|s| is_segment(s)) {
        return Some(format!("Flaky page {id}"));
    }
    if let Some(id) = path.strip_prefix("/flaky429/").filter(|s| is_segment(s)) {
        return Some(format!("Rate-limited page {id}"));
    }
    if let Some((y, m)) = parse_calendar(path) {
        return Some(format!("Calendar {y}-{m:02}"));
    }
    if let Some(n) = path.strip_prefix("/session/").and_then(parse_canonical_u64) {
        return Some(format!("Session page {n}"));
    }
    None
}

/// A non-empty path segment without `/`.
pub(crate) fn is_segment(s: &str) -> bool {
    !s.is_empty() && !s.contains('/')
}

/// `/calendar/{year}/{month}` with month in 1..=12 and year in 1..=9999.
pub(crate) fn parse_calendar(path: &str) -> Option<(u32, u32)> {
    let rest = path.strip_prefix("/calendar/")?;
    let (y, m) = rest.split_once('/')?;
    let (y, m) = (parse_canonical_u64(y)?, parse_canonical_u64(m)?);
    ((1..=9999).contains(&y) && (1..=12).contains(&m)).then_some((y as u32, m as u32))
}

/// Parses canonical decimal (no sign, no leading zeros except "0").
pub(crate) fn parse_canonical_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Appends the decimal representation of `n`.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// ~64 KiB of ASCII sentences used to pad pages (sliced, never copied per
/// word on the hot path).
fn make_corpus(seed: u64) -> String {
    let mut rng = Rng::new(seed ^ 0xC0_4B05);
    let mut s = String::with_capacity(66 * 1024);
    while s.len() < 64 * 1024 {
        let words = 6 + rng.below(10);
        for w in 0..words {
            let word = CORPUS_WORDS[rng.below(CORPUS_WORDS.len() as u64) as usize];
            if w == 0 {
                let mut cs = word.chars();
                if let Some(c) = cs.next() {
                    s.push(c.to_ascii_uppercase());
                    s.push_str(cs.as_str());
                }
            } else {
                s.push(' ');
                s.push_str(word);
            }
        }
        s.push_str(". ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RobotsMode;

    fn cfg(seed: u64, pages: usize) -> SiteConfig {
        SiteConfig {
            seed,
            pages,
            ..SiteConfig::default()
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = Site::generate(&cfg(7, 300));
        let b = Site::generate(&cfg(7, 300));
        assert_eq!(a.targets, b.targets);
        assert_eq!(a.kinds, b.kinds);
        assert_eq!(a.ground_truth(), b.ground_truth());
        assert_eq!(a.title_of("/p/5"), b.title_of("/p/5"));
        let c = Site::generate(&cfg(8, 300));
        assert_ne!(a.targets, c.targets);
        assert_ne!(a.ground_truth(), c.ground_truth());
    }

    #[test]
    fn ground_truth_is_a_strict_subset() {
        let site = Site::generate(&SiteConfig::default());
        let truth = site.ground_truth();
        let all = site.all_pages();
        assert!(truth.contains("/"));
        assert!(truth.is_subset(&all));
        assert!(truth.len() < all.len());
        assert!(truth.len() > all.len() / 2);
        let sitemap_only = site.sitemap_only_paths();
        assert!(!sitemap_only.is_empty());
        assert!(sitemap_only.is_disjoint(&truth));
        assert!(sitemap_only.iter().all(|p| p.starts_with("/p/")));
        let unreachable = site.unreachable_paths();
        assert!(!unreachable.is_empty());
        assert!(unreachable.is_disjoint(&truth));
        assert!(unreachable.is_disjoint(&sitemap_only));
        // nasty=false: just "/" and /p/ pages.
        assert!(truth.iter().all(|p| p == "/" || p.starts_with("/p/")));
    }

    #[test]
    fn depth_limited_truth_grows_with_depth() {
        let site = Site::generate(&SiteConfig::default());
        assert_eq!(
            site.ground_truth_within_depth(0),
            BTreeSet::from(["/".to_owned()])
        );
        let d1 = site.ground_truth_within_depth(1);
        assert!(d1.len() > 1 && d1.len() <= 1 + ROOT_PAGE_LINKS);
        let mut prev = d1.len();
        for d in 2..6 {
            let n = site.ground_truth_within_depth(d).len();
            assert!(n >= prev);
            prev = n;
        }
        assert_eq!(site.ground_truth_within_depth(10_000), site.ground_truth());
    }

    #[test]
    fn disallowed_paths_follow_robots_mode() {
        let site = Site::generate(&SiteConfig::default());
        let dis = site.disallowed_paths();
        for p in [
            "/private/secret",
            "/private/public-ok",
            "/nottrawl/page",
            "/private/from-sitemap",
        ] {
            assert!(dis.contains(p), "{p}");
        }
        let none = Site::generate(&SiteConfig {
            robots: RobotsMode::None,
            ..SiteConfig::default()
        });
        assert!(none.disallowed_paths().is_empty());
        assert!(none.ground_truth().contains("/private/secret"));
        assert!(none.sitemap_only_paths().contains("/private/from-sitemap"));
        let err = Site::generate(&SiteConfig {
            robots: RobotsMode::ServerError,
            ..SiteConfig::default()
        });
        assert!(err.ground_truth().is_empty());
        let custom = Site::generate(&SiteConfig {
            robots: RobotsMode::Custom("User-agent: trawl\nDisallow: /p/1\n".into()),
            ..SiteConfig::default()
        });
        let truth = custom.ground_truth();
        assert!(!truth.iter().any(|p| p.starts_with("/p/1")));
        assert!(
            custom
                .disallowed_paths()
                .iter()
                .any(|p| p.starts_with("/p/1"))
        );
    }

    #[test]
    fn expected_with_nasty() {
        let site = Site::generate(&SiteConfig {
            nasty: true,
            ..SiteConfig::default()
        });
        let exp = site.expected();
        assert!(exp.ok_pages.is_superset(&site.ground_truth()));
        assert!(exp.ok_pages.contains("/redirect/chain/0"));
        assert!(exp.ok_pages.contains("/gzip"));
        assert!(exp.ok_pages.contains("/flaky/1"));
        assert_eq!(
            exp.error_paths
                .get("/redirect/chain/15")
                .map(String::as_str),
            Some(error_kind::TOO_MANY_REDIRECTS)
        );
        assert_eq!(
            exp.error_paths.get("/reset").map(String::as_str),
            Some(error_kind::CONNECTION_RESET)
        );
        assert_eq!(
            exp.traps,
            vec!["/calendar/".to_owned(), "/session/".to_owned()]
        );
        assert!(exp.non_html.contains("/binary"));
        assert!(exp.disallowed.contains("/private/secret"));
        for p in &exp.ok_pages {
            assert!(site.title_of(p).is_some(), "{p} has no title");
        }
        // ground_truth() ignores the fault routes.
        let clean = Site::generate(&SiteConfig::default());
        assert_eq!(site.ground_truth(), clean.ground_truth());
    }

    #[test]
    fn titles() {
        let site = Site::generate(&SiteConfig::default());
        let t = site.title_of("/p/17").unwrap();
        assert!(t.starts_with("Page 17 — "), "{t}");
        assert_eq!(site.title_of("/p/017"), None);
        assert_eq!(site.title_of("/p/200"), None);
        assert_eq!(site.title_of("/"), Some(ROOT_TITLE.to_owned()));
        assert_eq!(site.title_of("/latin1"), Some(LATIN1_TITLE.to_owned()));
        assert_eq!(
            site.title_of("/calendar/2024/3"),
            Some("Calendar 2024-03".to_owned())
        );
    }

    #[test]
    fn tiny_sites_work() {
        for pages in 0..6 {
            let site = Site::generate(&SiteConfig {
                pages,
                fanout: 2,
                ..SiteConfig::default()
            });
            let truth = site.ground_truth();
            assert!(truth.contains("/"));
            let _ = site.expected();
            let _ = site.sitemap_only_paths();
        }
    }

    #[test]
    fn push_u64_works() {
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            let mut v = Vec::new();
            push_u64(&mut v, n);
            assert_eq!(String::from_utf8(v).unwrap(), n.to_string());
        }
    }
}
