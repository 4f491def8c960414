//! The trap site ([`crate::SiteConfig::traps`]): crawler traps next to
//! genuinely large real sections, with ground truth ([`TrapSite`]).
//!
//! Real sections (every page must be found; the text of every page is made
//! of seeded words, so no two are near-duplicates even with digits ignored):
//! `/products?page={n}` (listings of [`TRAP_PRODUCTS_PER_PAGE`] products),
//! `/p?id={id}` (`id` in `1..=trap_products`), `/news?page={n}` (`n` in
//! `1..=`[`NEWS_PAGES`]), `/archive?page={n}` (`n` in
//! `1..=`[`ARCHIVE_REAL_PAGES`]), `/docs/guide/`, `/docs/intro`,
//! `/docs/faq`.
//!
//! Traps ([`TRAP_NAMES`], entered from `/` at [`TRAP_ENTRIES`]), endless
//! unless noted:
//! * `calendar-query`: `/calendar?d={n}` (`|n| ≤ 10⁹`), one day each,
//!   linking `d=n+1` and `d=n+1000`;
//! * `calendar-path`: `/events/YYYY/MM/DD/` (years 1–9999), linking the
//!   previous and next day, the same day next month and next year;
//! * `session-path`: `/s/{16 hex}/{home,about,contact}`: the same three
//!   pages whatever the id, every response linking them under a fresh id;
//! * `pagination`: `/archive?page={n}` for `n` > [`ARCHIVE_REAL_PAGES`]:
//!   "No more entries." and a link to the next page;
//! * `facets`: `/search?q=shoes` with any of `brand`, `color`, `size`,
//!   `sort` in any order, linking every one-facet change with the keys in a
//!   per-link order (1,008 combinations, ~120,000 spellings);
//! * `path-growth`: `/docs/guide/guide/…/` (the guide's relative link
//!   `guide/` resolved again and again) serves the guide page.
//!
//! Paths and queries are matched exactly (canonical decimals, no extra
//! keys); anything else is a 404.

use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::rng::{Rng, hash3};
use crate::shop::MONTHS;
use crate::site::parse_canonical_u64;

/// Names of the traps, as [`TrapSite::trap_of`] returns them.
pub const TRAP_NAMES: [&str; 6] = [
    "calendar-query",
    "calendar-path",
    "session-path",
    "pagination",
    "facets",
    "path-growth",
];

/// Where each trap of [`TRAP_NAMES`] is entered, linked from `/` (for
/// `pagination` and `path-growth` a real page whose links lead into it).
pub const TRAP_ENTRIES: [&str; 6] = [
    "/calendar?d=0",
    "/events/2026/12/04/",
    "/s/0000000000000001/home",
    "/archive?page=1",
    "/search?q=shoes",
    "/docs/guide/",
];

/// Products per `/products?page=N` listing.
pub const TRAP_PRODUCTS_PER_PAGE: usize = 50;
/// Number of `/news?page=N` pages.
pub const NEWS_PAGES: u64 = 300;
/// `/archive?page=N` pages with content (later ones are the trap).
pub const ARCHIVE_REAL_PAGES: u64 = 20;

/// Links `/` gets when the trap site is on: (href, label).
pub(crate) const ROOT_LINKS: [(&str, &str); 10] = [
    ("/products?page=1", "Products"),
    ("/news?page=1", "News"),
    ("/archive?page=1", "Archive"),
    ("/docs/guide/", "Guide"),
    ("/docs/intro", "Introduction"),
    ("/docs/faq", "FAQ"),
    ("/calendar?d=0", "Calendar"),
    ("/events/2026/12/04/", "Events"),
    ("/s/0000000000000001/home", "Members"),
    ("/search?q=shoes", "Search shoes"),
];

const SESSION_TITLES: [&str; 3] = ["Home", "About us", "Contact"];
const SESSION_PAGES: [&str; 3] = ["home", "about", "contact"];
const SESSION_TEXT: [&str; 3] = [
    "Welcome to the members area. Your session lives in the address bar.",
    "We are a small team that builds outdoor gear and writes about it.",
    "Write to us any time; we answer within two working days.",
];
const NAV: &str = "<a href=\"/\">Home</a> <a href=\"/products?page=1\">Products</a> \
                   <a href=\"/news?page=1\">News</a> <a href=\"/docs/intro\">Docs</a>";
const MAX_DAYS: u64 = 1_000_000_000;
const MAX_PAGE: u64 = 1_000_000_000_000;

const ADJECTIVES: &str = "amber ancient autumn bitter bold brave brisk bright broad calm \
    careful cheerful chilly clever cloudy coastal copper crimson curious dappled daring distant \
    dusty eager early earnest elegant faint fierce fragile frosty gentle gilded golden graceful \
    grand hardy hazy hidden hollow humble icy idle jolly keen kind lively lofty lonely loyal \
    lucky lunar mellow merry mighty misty modest narrow nimble noble northern odd olive pale \
    patient plain polished proud quiet rapid rare restless rocky rosy rugged rustic sandy \
    scarlet secret serene shady sharp silent silver simple sleek slender smoky snowy soft solar \
    sturdy subtle sunny swift tall tender thorny tidy timid tiny tranquil velvet vivid \
    wandering warm weary wild windy wise wooden young zealous";
const NOUNS: &str = "acorn anchor anvil apron arbor arrow attic badger balcony banner barley \
    basket beacon beetle bell bench blanket bonnet bramble bridge brook bucket cabin canal \
    candle canyon carriage castle cellar chapel chimney cider cliff clock cloud compass cottage \
    courtyard crane creek crown cupboard dagger dairy desk dove dragon drum eagle easel ember \
    engine falcon feather fence ferry fiddle field fig flag forest fountain fox garden garnet \
    gate glacier goblet goose granary hammer harbor harp hawk hearth hedge helmet heron hill \
    hive island ivy jacket jar kettle kiln kite ladder lagoon lake lantern larch ledger lemon \
    library lighthouse lily locket loom map maple market meadow mill mirror moth mountain nest \
    oak oar orchard otter owl paddle parcel pebble pepper piano pier pillow pine plum pond \
    quarry quill rabbit raft raven reed ribbon river robin rope saddle sail satchel scarf shell \
    shepherd shovel skiff sled sparrow spindle spoon spring stable staircase statue stove \
    sundial swan tavern teapot thicket thimble thistle tower trellis trumpet tunnel umbrella \
    valley vase village violin wagon walnut well whistle willow windmill wren yarn";
const VERBS: &str = "admires awakens balances beckons borrows brightens builds calms carries \
    carves chases cherishes circles climbs collects comforts crosses decorates delivers \
    discovers drifts echoes embraces escapes explores faces fills finds follows gathers \
    glimmers greets guards guides hides holds honors hums inspects joins keeps kindles leads \
    lifts lingers mends mirrors misses nudges opens outlasts paints passes polishes praises \
    protects pulls quiets reaches recalls remembers repairs rescues rests reveals rides roams \
    sails scatters searches shelters shines sings sketches soothes sorts steadies swaps tames \
    teaches tends touches tows trades unfolds visits waits wanders warms watches weaves \
    welcomes whispers";
const DETS: [&str; 7] = ["the", "a", "every", "our", "each", "some", "that"];
const PREPS: [&str; 12] = [
    "near", "beyond", "under", "with", "across", "inside", "after", "before", "behind", "around",
    "along", "past",
];
const ONSETS: [&str; 24] = [
    "b", "br", "c", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "pl",
    "r", "s", "st", "t", "tr", "v",
];
const VOWELS: [&str; 8] = ["a", "e", "i", "o", "u", "ai", "ea", "oo"];
const CODAS: [&str; 8] = ["", "n", "r", "l", "s", "th", "m", "x"];

/// The `/search` facets: key and values.
const FACETS: [(&str, &[&str]); 4] = [
    (
        "brand",
        &["acme", "northwind", "fernhill", "lumen", "bluepeak"],
    ),
    ("color", &["black", "white", "red", "blue", "green", "grey"]),
    ("size", &["38", "39", "40", "41", "42"]),
    ("sort", &["relevance", "price", "newest"]),
];
/// The shoes `/search` knows: name, brand, color, size, price in cents.
const SHOES: [(&str, u8, u8, u8, u32); 12] = [
    ("Trail Runner", 0, 0, 2, 8900),
    ("City Sneaker", 1, 1, 1, 6500),
    ("Harbor Loafer", 2, 4, 3, 7400),
    ("Summit Boot", 0, 0, 3, 14900),
    ("Court Classic", 3, 1, 2, 5900),
    ("Marathon Flyer", 4, 3, 2, 12900),
    ("Garden Clog", 2, 4, 0, 3900),
    ("Dance Flat", 3, 2, 1, 4500),
    ("Canyon Sandal", 1, 5, 4, 5200),
    ("Ridge Hiker", 4, 5, 3, 11900),
    ("Studio Slip-on", 0, 1, 2, 4900),
    ("Harbor Loafer II", 2, 0, 4, 8200),
];

/// A page the trap site serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Listing(u64),
    Product(u64),
    News(u64),
    Archive(u64),
    /// 0: `/docs/guide/`, 1: `/docs/intro`, 2: `/docs/faq`.
    Doc(usize),
    Calendar(i64),
    /// Day number (days since 1970-01-01).
    Events(i64),
    Session(usize),
    Search(Facets),
    Growth,
}

impl Page {
    /// Index into [`TRAP_NAMES`] of a trap page.
    fn trap(self) -> Option<usize> {
        match self {
            Page::Calendar(_) => Some(0),
            Page::Events(_) => Some(1),
            Page::Session(_) => Some(2),
            Page::Archive(n) if n > ARCHIVE_REAL_PAGES => Some(3),
            Page::Search(_) => Some(4),
            Page::Growth => Some(5),
            _ => None,
        }
    }
}

/// Selected facet values (`brand`, `color`, `size`, `sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Facets([Option<u8>; 4]);

impl Facets {
    fn parse(query: &str) -> Option<Facets> {
        let (mut f, mut q) = ([None; 4], false);
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=')?;
            if k == "q" {
                if q || v != "shoes" {
                    return None;
                }
                q = true;
                continue;
            }
            let i = FACETS.iter().position(|(name, _)| *name == k)?;
            if f[i].is_some() {
                return None;
            }
            f[i] = Some(FACETS[i].1.iter().position(|x| *x == v)? as u8);
        }
        q.then_some(Facets(f))
    }

    fn code(self) -> u64 {
        (self.0.iter().enumerate()).fold(0, |c, (i, v)| {
            c | (v.map_or(0, |v| u64::from(v) + 1) << (3 * i))
        })
    }

    /// `/search?…` with the keys shuffled by `salt`.
    fn href(self, salt: u64) -> String {
        let mut pairs = vec![("q", "shoes")];
        for (i, v) in self.0.iter().enumerate() {
            if let Some(v) = v {
                pairs.push((FACETS[i].0, value(i, *v)));
            }
        }
        let mut r = Rng::new(salt);
        for i in (1..pairs.len()).rev() {
            pairs.swap(i, r.below(i as u64 + 1) as usize);
        }
        let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("/search?{}", q.join("&amp;"))
    }
}

/// The trap site of a [`crate::Site`] ([`crate::Site::traps`]): renders
/// its pages and knows its ground truth. Empty when
/// [`crate::SiteConfig::traps`] is off (nothing served, nothing real).
#[derive(Debug, Clone)]
pub struct TrapSite {
    enabled: bool,
    seed: u64,
    products: u64,
    adjectives: Vec<&'static str>,
    nouns: Vec<&'static str>,
    verbs: Vec<&'static str>,
}

impl TrapSite {
    pub(crate) fn new(seed: u64, enabled: bool, products: usize) -> TrapSite {
        TrapSite {
            enabled,
            seed,
            products: products.min(10_000_000) as u64,
            adjectives: ADJECTIVES.split_whitespace().collect(),
            nouns: NOUNS.split_whitespace().collect(),
            verbs: VERBS.split_whitespace().collect(),
        }
    }

    /// Whether the trap site is served.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Number of `/products?page=N` listings.
    pub fn listing_pages(&self) -> u64 {
        self.products.div_ceil(TRAP_PRODUCTS_PER_PAGE as u64)
    }

    /// Path and query of every real page, `/` first (then the listings,
    /// products, news, archive pages 1–20 and the three docs pages); empty
    /// when the trap site is off. The `/p/{i}` graph of the rest of the
    /// site is not included (see [`crate::Site::ground_truth`]).
    pub fn real_paths(&self) -> Vec<String> {
        if !self.enabled {
            return Vec::new();
        }
        let mut out = vec!["/".to_owned()];
        out.extend((1..=self.listing_pages()).map(|n| format!("/products?page={n}")));
        out.extend((1..=self.products).map(|id| format!("/p?id={id}")));
        out.extend((1..=NEWS_PAGES).map(|n| format!("/news?page={n}")));
        out.extend((1..=ARCHIVE_REAL_PAGES).map(|n| format!("/archive?page={n}")));
        out.extend(["/docs/guide/", "/docs/intro", "/docs/faq"].map(str::to_owned));
        out
    }

    /// The trap ([`TRAP_NAMES`]) a request target (`/calendar?d=3`) belongs
    /// to, if the site serves it as a trap page; `None` for real pages,
    /// unknown targets and when the trap site is off.
    pub fn trap_of(&self, path_and_query: &str) -> Option<&'static str> {
        let (path, query) = split_target(path_and_query);
        self.trap_index(path, query).map(|i| TRAP_NAMES[i])
    }

    /// Whether `path_and_query` is one of [`TrapSite::real_paths`].
    pub fn is_real(&self, path_and_query: &str) -> bool {
        let (path, query) = split_target(path_and_query);
        (path == "/" && query.is_none() && self.enabled)
            || self.parse(path, query).is_some_and(|p| p.trap().is_none())
    }

    /// Titles of the three `session-path` pages (`home`, `about`,
    /// `contact`), whatever the session id.
    pub fn session_titles(&self) -> [&'static str; 3] {
        SESSION_TITLES
    }

    /// `<title>` of a page of the trap site (`/` excluded).
    pub fn title_of(&self, path_and_query: &str) -> Option<String> {
        let (path, query) = split_target(path_and_query);
        Some(self.title(self.parse(path, query)?))
    }

    fn title(&self, page: Page) -> String {
        match page {
            Page::Listing(n) => format!("Products – page {n}"),
            Page::Product(id) => self.product_head(id).0,
            Page::News(n) => format!("News – page {n}"),
            Page::Archive(n) => format!("Archive – page {n}"),
            Page::Doc(i) => ["Guide", "Introduction", "Frequently asked questions"][i].to_owned(),
            Page::Calendar(d) => format!("Events for {}", iso(BASE_DAY + d).0),
            Page::Events(z) => format!("Events – {}", iso(z).0),
            Page::Session(i) => SESSION_TITLES[i].to_owned(),
            Page::Search(f) => search_title(f),
            Page::Growth => "Guide".to_owned(),
        }
    }

    pub(crate) fn trap_index(&self, path: &str, query: Option<&str>) -> Option<usize> {
        self.parse(path, query)?.trap()
    }

    fn parse(&self, path: &str, query: Option<&str>) -> Option<Page> {
        if !self.enabled {
            return None;
        }
        let one = |key: &str| parse_canonical_u64(query?.strip_prefix(key)?.strip_prefix('=')?);
        let page = match path {
            "/products" => {
                Page::Listing(one("page").filter(|n| (1..=self.listing_pages()).contains(n))?)
            }
            "/p" => Page::Product(one("id").filter(|n| (1..=self.products).contains(n))?),
            "/news" => Page::News(one("page").filter(|n| (1..=NEWS_PAGES).contains(n))?),
            "/archive" => Page::Archive(one("page").filter(|n| (1..=MAX_PAGE).contains(n))?),
            "/calendar" => Page::Calendar(parse_days(query?.strip_prefix("d=")?)?),
            "/search" => Page::Search(Facets::parse(query?)?),
            _ if query.is_some() => return None,
            "/docs/guide/" => Page::Doc(0),
            "/docs/intro" => Page::Doc(1),
            "/docs/faq" => Page::Doc(2),
            _ => return parse_other(path),
        };
        Some(page)
    }

    /// The page at `path`/`query`, or `None` (404); `sids` mints the
    /// session ids of `session-path` links.
    pub(crate) fn render(
        &self,
        path: &str,
        query: Option<&str>,
        sids: &AtomicU64,
    ) -> Option<Vec<u8>> {
        let page = self.parse(path, query)?;
        let title = self.title(page);
        let mut m = String::with_capacity(8192);
        match page {
            Page::Listing(n) => {
                m.push_str("<ul class=\"products\">\n");
                let first = (n - 1) * TRAP_PRODUCTS_PER_PAGE as u64 + 1;
                for id in first..=(first + TRAP_PRODUCTS_PER_PAGE as u64 - 1).min(self.products) {
                    let (name, blurb, _) = self.product_head(id);
                    let _ = writeln!(
                        m,
                        "<li><a href=\"/p?id={id}\">{name}</a> <span class=\"blurb\">{blurb}</span></li>"
                    );
                }
                m.push_str("</ul>\n");
                pager(&mut m, "/products?page=", n, n < self.listing_pages());
            }
            Page::Product(id) => {
                let (_, blurb, mut r) = self.product_head(id);
                let cents = 499 + r.below(49_500);
                let _ = write!(
                    m,
                    "<p class=\"price\">${}.{:02}</p>\n<p class=\"description\">{blurb}",
                    cents / 100,
                    cents % 100
                );
                for _ in 0..3 + r.below(3) {
                    m.push(' ');
                    self.sentence(&mut r, &mut m);
                }
                m.push_str("</p>\n<h2>Related products</h2>\n<ul class=\"related\">\n");
                for _ in 0..3 {
                    let other = (id + r.below(self.products - 1)) % self.products + 1;
                    li(
                        &mut m,
                        format_args!("/p?id={other}"),
                        self.product_head(other).0,
                    );
                }
                let list = (id - 1) / TRAP_PRODUCTS_PER_PAGE as u64 + 1;
                let _ = writeln!(
                    m,
                    "</ul>\n<p><a href=\"/products?page={list}\">Back to the catalogue</a></p>"
                );
            }
            Page::News(n) => {
                self.entries(&mut m, 0x4E_E5, n);
                pager(&mut m, "/news?page=", n, n < NEWS_PAGES);
            }
            Page::Archive(n) => {
                if n <= ARCHIVE_REAL_PAGES {
                    self.entries(&mut m, 0xA4_C1, n);
                } else {
                    m.push_str("<p>No more entries.</p>\n");
                }
                pager(&mut m, "?page=", n, n < MAX_PAGE);
            }
            Page::Doc(i) => self.doc(&mut m, i),
            Page::Growth => self.doc(&mut m, 0),
            Page::Calendar(d) => {
                let (date, month) = iso(BASE_DAY + d);
                let _ = writeln!(
                    m,
                    "<p>Events for {date} ({month}): nothing scheduled.</p>\n<ul class=\"days\">"
                );
                for (step, label) in [(1, "Next day"), (1000, "In 1000 days")] {
                    if (d + step).unsigned_abs() <= MAX_DAYS {
                        li(&mut m, format_args!("/calendar?d={}", d + step), label);
                    }
                }
                m.push_str("</ul>\n");
            }
            Page::Events(z) => {
                let _ = writeln!(m, "<p>No events on {}.</p>\n<ul class=\"days\">", iso(z).0);
                let (y, mo, d) = civil(z);
                let next_month = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
                let targets = [
                    (z - 1, "Previous day"),
                    (z + 1, "Next day"),
                    (clamped_day(next_month.0, next_month.1, d), "Next month"),
                    (clamped_day(y + 1, mo, d), "Next year"),
                ];
                for (t, label) in targets {
                    let (ty, tm, td) = civil(t);
                    if (1..=9999).contains(&ty) {
                        li(
                            &mut m,
                            format_args!("/events/{ty:04}/{tm:02}/{td:02}/"),
                            label,
                        );
                    }
                }
                m.push_str("</ul>\n");
            }
            Page::Session(i) => {
                let c = sids.fetch_add(1, Ordering::Relaxed);
                let sid = hash3(self.seed, c, 0x5E55_10A5);
                let _ = writeln!(m, "<p>{}</p>\n<ul class=\"members\">", SESSION_TEXT[i]);
                for (p, t) in SESSION_PAGES.iter().zip(SESSION_TITLES) {
                    li(&mut m, format_args!("/s/{sid:016x}/{p}"), t);
                }
                m.push_str("</ul>\n");
            }
            Page::Search(f) => self.search(&mut m, f),
        }
        Some(format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
             </head>\n<body>\n<header><nav>{NAV}</nav></header>\n<main>\n<h1>{title}</h1>\n{m}</main>\n\
             <footer><p>&copy; 2026 Trawl Outfitters &middot; <a href=\"/docs/faq\">FAQ</a></p></footer>\n\
             </body>\n</html>\n"
        ).into_bytes())
    }

    /// Name, blurb (the first sentence of the description) and the
    /// generator positioned after them, of product `id`.
    fn product_head(&self, id: u64) -> (String, String, Rng) {
        let mut r = Rng::new(hash3(self.seed, id, 0x7A_9D0C));
        let mut name = capitalized(pick(&mut r, &self.adjectives));
        let _ = write!(
            name,
            " {} {}",
            coined(&mut r),
            capitalized(pick(&mut r, &self.nouns))
        );
        let mut blurb = String::new();
        self.sentence(&mut r, &mut blurb);
        (name, blurb, r)
    }

    /// Appends a sentence of 6–16 seeded words.
    fn sentence(&self, r: &mut Rng, out: &mut String) {
        let start = out.len();
        let _ = write!(
            out,
            "{} {} {} {}",
            pick(r, &DETS),
            pick(r, &self.adjectives),
            pick(r, &self.nouns),
            pick(r, &self.verbs)
        );
        self.phrase(r, out);
        if r.chance(2, 3) {
            let _ = write!(out, " {}", pick(r, &PREPS));
            self.phrase(r, out);
        }
        if r.chance(1, 2) {
            let _ = write!(out, " and {}", pick(r, &self.verbs));
            self.phrase(r, out);
        }
        out.push('.');
        out[start..=start].make_ascii_uppercase();
    }

    /// Appends ` det [adjective] noun`.
    fn phrase(&self, r: &mut Rng, out: &mut String) {
        let _ = write!(out, " {}", pick(r, &DETS));
        if r.chance(1, 2) {
            let _ = write!(out, " {}", pick(r, &self.adjectives));
        }
        let _ = write!(out, " {}", pick(r, &self.nouns));
    }

    /// Ten headlines with a sentence each (news and archive pages).
    fn entries(&self, m: &mut String, salt: u64, n: u64) {
        let mut r = Rng::new(hash3(self.seed, n, salt));
        for _ in 0..10 {
            let a = capitalized(pick(&mut r, &self.adjectives));
            let (noun, verb) = (pick(&mut r, &self.nouns), pick(&mut r, &self.verbs));
            let _ = write!(
                m,
                "<article>\n<h2>{a} {noun} {verb} {}</h2>\n<p>",
                coined(&mut r)
            );
            self.sentence(&mut r, m);
            m.push_str("</p>\n</article>\n");
        }
    }

    /// The docs page `i` (guide, intro, faq): three sections and its links.
    fn doc(&self, m: &mut String, i: usize) {
        let mut r = Rng::new(hash3(self.seed, i as u64, 0xD0C5));
        for _ in 0..3 {
            let (a, noun) = (
                capitalized(pick(&mut r, &self.adjectives)),
                pick(&mut r, &self.nouns),
            );
            let _ = write!(m, "<h2>{a} {noun}</h2>\n<p>");
            self.sentence(&mut r, m);
            m.push(' ');
            self.sentence(&mut r, m);
            m.push_str("</p>\n");
        }
        m.push_str(match i {
            0 => "<p><a href=\"guide/\">Next chapter</a> <a href=\"./\">This chapter</a></p>\n",
            1 => "<p><a href=\"./faq\">FAQ</a> <a href=\"./guide/\">Read the guide</a></p>\n",
            _ => "<p><a href=\"./intro\">Introduction</a> <a href=\"guide/\">Read the guide</a></p>\n",
        });
    }

    fn search(&self, m: &mut String, f: Facets) {
        let mut hits: Vec<_> = SHOES
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                [s.1, s.2, s.3]
                    .iter()
                    .zip(f.0)
                    .all(|(v, want)| want.is_none_or(|w| w == *v))
            })
            .collect();
        match f.0[3] {
            Some(1) => hits.sort_by_key(|(_, s)| s.4),
            Some(2) => hits.reverse(),
            _ => {}
        }
        if hits.is_empty() {
            m.push_str("<p>No results.</p>\n");
        } else {
            let _ = writeln!(m, "<p>{} results</p>\n<ul class=\"results\">", hits.len());
            for (_, s) in hits {
                let (brand, color, size) = (value(0, s.1), value(1, s.2), value(2, s.3));
                let (brand, dollars, cents) = (capitalized(brand), s.4 / 100, s.4 % 100);
                let _ = writeln!(
                    m,
                    "<li>{} – {brand}, {color}, size {size}, ${dollars}.{cents:02}</li>",
                    s.0
                );
            }
            m.push_str("</ul>\n");
        }
        // The filters live in a sidebar, as on most shops.
        m.push_str("<aside>\n<h2>Refine</h2>\n<ul class=\"facets\">\n");
        for (i, (key, values)) in FACETS.iter().enumerate() {
            let mut link = |v: Option<u8>, label: String| {
                let mut t = f;
                t.0[i] = v;
                li(&mut *m, t.href(hash3(self.seed, f.code(), t.code())), label);
            };
            for (k, v) in values.iter().enumerate() {
                if f.0[i] != Some(k as u8) {
                    link(Some(k as u8), format!("{key}: {v}"));
                }
            }
            if f.0[i].is_some() {
                link(None, format!("any {key}"));
            }
        }
        m.push_str("</ul>\n</aside>\n");
    }
}

/// `/search?…` page title.
fn search_title(f: Facets) -> String {
    let mut t = "Shoes".to_owned();
    for (k, v) in f.0.iter().enumerate().take(3) {
        if let Some(v) = v {
            t.push_str(if t.len() == 5 { ": " } else { ", " });
            t.push_str(value(k, *v));
        }
    }
    if let Some(s) = f.0[3] {
        let _ = write!(t, " (by {})", value(3, s));
    }
    t
}

/// `/events/…/`, `/s/…/…` and `/docs/guide/guide/…/` pages.
fn parse_other(path: &str) -> Option<Page> {
    if let Some(rest) = path.strip_prefix("/events/") {
        let mut it = rest.strip_suffix('/')?.split('/');
        let mut num = |len: usize| {
            it.next()
                .filter(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))?
                .parse::<i64>()
                .ok()
        };
        let (y, m, d) = (num(4)?, num(2)?, num(2)?);
        let ok = it.next().is_none()
            && y >= 1
            && (1..=12).contains(&m)
            && d >= 1
            && d <= days_in_month(y, m);
        return ok.then(|| Page::Events(days_from_civil(y, m, d)));
    }
    if let Some(rest) = path.strip_prefix("/s/") {
        let (sid, page) = rest.split_once('/')?;
        let hex = sid.len() == 16 && sid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        return SESSION_PAGES
            .iter()
            .position(|p| *p == page)
            .filter(|_| hex)
            .map(Page::Session);
    }
    let rest = path.strip_prefix("/docs/guide/")?;
    (rest.ends_with('/') && rest.split_terminator('/').all(|s| s == "guide"))
        .then_some(Page::Growth)
}

/// Splits `/path?query` (a fragment, never sent, is not expected).
fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

/// `n`, `-n` (canonical decimal, `|n| ≤ MAX_DAYS`).
fn parse_days(s: &str) -> Option<i64> {
    let (neg, digits) = s.strip_prefix('-').map_or((false, s), |d| (true, d));
    let n = parse_canonical_u64(digits).filter(|&n| n <= MAX_DAYS && !(neg && n == 0))? as i64;
    Some(if neg { -n } else { n })
}

/// Appends a list item with a link.
fn li(m: &mut String, href: impl Display, label: impl Display) {
    let _ = writeln!(m, "<li><a href=\"{href}\">{label}</a></li>");
}

/// The value name of facet `k`.
fn value(k: usize, v: u8) -> &'static str {
    FACETS[k].1[usize::from(v)]
}

/// `/archive` and listing pager: previous and next links.
fn pager(m: &mut String, prefix: &str, n: u64, next: bool) {
    m.push_str("<nav class=\"pager\">");
    if n > 1 {
        let _ = write!(
            m,
            "<a rel=\"prev\" href=\"{prefix}{}\">Previous</a> ",
            n - 1
        );
    }
    if next {
        let _ = write!(m, "<a rel=\"next\" href=\"{prefix}{}\">Next</a>", n + 1);
    }
    m.push_str("</nav>\n");
}

fn pick<'a>(r: &mut Rng, list: &[&'a str]) -> &'a str {
    list[r.below(list.len() as u64) as usize]
}

fn capitalized(w: &str) -> String {
    let mut s = w.to_owned();
    let n = 1.min(s.len());
    s[..n].make_ascii_uppercase();
    s
}

/// A made-up, pronounceable model name (`Tralobin`).
fn coined(r: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..2 + r.below(2) {
        s.push_str(pick(r, &ONSETS));
        s.push_str(pick(r, &VOWELS));
    }
    s.push_str(pick(r, &CODAS));
    capitalized(&s)
}

/// Day number of 2026-01-01 (`/calendar?d=0`).
const BASE_DAY: i64 = 20_454;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let (d, m) = (
        doy - (153 * mp + 2) / 5 + 1,
        if mp < 10 { mp + 3 } else { mp - 9 },
    );
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    days_from_civil(y + i64::from(m == 12), m % 12 + 1, 1) - days_from_civil(y, m, 1)
}

/// Day number of `y-m-d`, the day clamped to the month's length.
fn clamped_day(y: i64, m: i64, d: i64) -> i64 {
    days_from_civil(y, m, d.min(days_in_month(y, m)))
}

/// `YYYY-MM-DD` and the month's name of a day number.
fn iso(z: i64) -> (String, &'static str) {
    let (y, m, d) = civil(z);
    (format!("{y:04}-{m:02}-{d:02}"), MONTHS[(m - 1) as usize])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

    use super::*;
    use crate::{SiteConfig, TestSite};

    fn trap_cfg() -> SiteConfig {
        SiteConfig {
            pages: 10,
            traps: true,
            trap_products: 200,
            ..SiteConfig::default()
        }
    }

    async fn get(c: &reqwest::Client, url: &url::Url) -> (u16, String) {
        let r = c.get(url.as_str()).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Same-host links of `html`, resolved against `base`.
    fn links(base: &url::Url, html: &str) -> Vec<url::Url> {
        html.split("href=\"")
            .skip(1)
            .filter_map(|s| base.join(&s[..s.find('"')?].replace("&amp;", "&")).ok())
            .filter(|u| u.host() == base.host() && u.port() == base.port())
            .collect()
    }

    fn target(u: &url::Url) -> String {
        u.query()
            .map_or_else(|| u.path().to_owned(), |q| format!("{}?{q}", u.path()))
    }

    fn mix_str(w: &str) -> u64 {
        w.bytes().fold(0, |h, b| crate::rng::mix(h, u64::from(b)))
    }

    /// Word 3-shingles of the `<main>` text, digits dropped.
    fn shingles(html: &str) -> HashSet<u64> {
        let main = &html[html.find("<main>").unwrap()..html.find("</main>").unwrap()];
        let mut text = String::new();
        let mut in_tag = false;
        for c in main.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    text.push(' ')
                }
                c if !in_tag && !c.is_ascii_digit() => text.push(c.to_ascii_lowercase()),
                _ => {}
            }
        }
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| !w.is_empty())
            .collect();
        words
            .windows(3)
            .map(|w| hash3(mix_str(w[0]), mix_str(w[1]), mix_str(w[2])))
            .collect()
    }

    #[test]
    fn ground_truth_and_classification() {
        let site = crate::Site::generate(&trap_cfg());
        let t = site.traps();
        let real = t.real_paths();
        assert_eq!(real.len(), 1 + 4 + 200 + 300 + 20 + 3);
        assert_eq!(real.iter().collect::<BTreeSet<_>>().len(), real.len());
        assert!(real.iter().all(|p| t.is_real(p) && t.trap_of(p).is_none()));
        assert!(t.trap_of("/archive?page=20").is_none());
        for (target, name) in [
            ("/calendar?d=0", "calendar-query"),
            ("/calendar?d=-40", "calendar-query"),
            ("/events/2026/12/04/", "calendar-path"),
            ("/events/2024/02/29/", "calendar-path"),
            ("/s/00ff00ff00ff00ff/about", "session-path"),
            ("/archive?page=21", "pagination"),
            ("/archive?page=99999", "pagination"),
            ("/search?q=shoes", "facets"),
            ("/search?sort=price&color=red&q=shoes", "facets"),
            ("/docs/guide/guide/", "path-growth"),
            ("/docs/guide/guide/guide/guide/", "path-growth"),
        ] {
            assert_eq!(t.trap_of(target), Some(name), "{target}");
            assert!(!t.is_real(target));
        }
        let bad = "/calendar?d=01 /calendar?d=-0 /calendar /archive?page=0 /p?id=201 /p?id=0 \
            /products?page=5 /news?page=301 /docs/intro?x=1 /events/2026/02/30/ /events/2026/2/3/ \
            /events/2026/12/04 /s/ABCDEF0123456789/home /s/0123/home /s/0000000000000001/shop \
            /search?q=boots /search?q=shoes&q=shoes /search?q=shoes&color=pink /search?color=red \
            /docs/guide/guide /docs/guide// /products?page=1&x=2";
        for bad in bad.split_whitespace() {
            assert_eq!(t.trap_of(bad), None, "{bad}");
            assert!(!t.is_real(bad), "{bad}");
        }
        assert_eq!(
            t.title_of("/calendar?d=59").as_deref(),
            Some("Events for 2026-03-01")
        );
        assert_eq!(
            t.title_of("/calendar?d=-1").as_deref(),
            Some("Events for 2025-12-31")
        );
        assert_eq!(civil(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_from_civil(2026, 1, 1), BASE_DAY);
        let words: BTreeSet<&str> = [ADJECTIVES, NOUNS, VERBS]
            .iter()
            .flat_map(|s| s.split_whitespace())
            .collect();
        assert!(words.len() >= 350, "{}", words.len());
        let off = crate::Site::generate(&SiteConfig::default());
        assert!(off.traps().real_paths().is_empty());
        assert_eq!(off.traps().trap_of("/calendar?d=0"), None);
    }

    #[tokio::test]
    async fn real_pages_are_found_and_distinct() {
        let site = TestSite::start(trap_cfg()).await.unwrap();
        let (c, t) = (
            reqwest::Client::builder().no_proxy().build().unwrap(),
            site.site().traps(),
        );
        let root = url::Url::parse(&site.url("/")).unwrap();
        let (mut seen, mut queue) = (BTreeSet::from([target(&root)]), VecDeque::from([root]));
        let mut bodies = BTreeMap::new();
        while let Some(u) = queue.pop_front() {
            let (status, body) = get(&c, &u).await;
            assert_eq!(status, 200, "{u}");
            for l in links(&u, &body) {
                if t.is_real(&target(&l)) && seen.insert(target(&l)) {
                    queue.push_back(l);
                }
            }
            bodies.insert(target(&u), body);
        }
        assert_eq!(seen, t.real_paths().into_iter().collect());
        let sets: Vec<(String, HashSet<u64>)> = bodies
            .iter()
            .filter(|(p, _)| *p != "/")
            .map(|(p, b)| (p.clone(), shingles(b)))
            .collect();
        for (i, (pa, a)) in sets.iter().enumerate() {
            assert!(a.len() >= 30, "{pa}: {}", a.len());
            for (pb, b) in &sets[i + 1..] {
                let common = a.intersection(b).count();
                assert!(common * 3 < a.len().min(b.len()), "{pa} ~ {pb}: {common}");
            }
        }
        let archive20 = &bodies["/archive?page=20"];
        assert!(archive20.contains("href=\"?page=21\""));
        let off = TestSite::start(SiteConfig::default()).await.unwrap();
        let (status, _) = get(&c, &url::Url::parse(&off.url("/products?page=1")).unwrap()).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn every_trap_is_endless() {
        let site = TestSite::start(trap_cfg()).await.unwrap();
        let (c, t) = (
            reqwest::Client::builder().no_proxy().build().unwrap(),
            site.site().traps(),
        );
        let starts = [
            "/calendar?d=0",
            "/events/2026/12/04/",
            "/s/0000000000000001/home",
            "/archive?page=21",
            "/search?q=shoes",
            "/docs/guide/guide/",
        ];
        let (mut titles, mut spellings) = (BTreeSet::new(), BTreeSet::new());
        for (name, start) in TRAP_NAMES.iter().zip(starts) {
            let mut u = url::Url::parse(&site.url(start)).unwrap();
            let mut seen = BTreeSet::new();
            for step in 0..50 {
                assert_eq!(t.trap_of(&target(&u)), Some(*name), "{u}");
                seen.insert(target(&u));
                let (status, body) = get(&c, &u).await;
                assert_eq!(status, 200, "{u}");
                let title =
                    &body[body.find("<title>").unwrap() + 7..body.find("</title>").unwrap()];
                assert_eq!(Some(title.to_owned()), t.title_of(&target(&u)));
                titles.insert(title.to_owned());
                let next: Vec<url::Url> = links(&u, &body)
                    .into_iter()
                    .filter(|l| t.trap_of(&target(l)) == Some(*name) && !seen.contains(&target(l)))
                    .collect();
                assert!(!next.is_empty(), "{name} ended after {step} steps at {u}");
                if *name == "facets" {
                    spellings.extend(next.iter().map(target));
                }
                u = next[step % next.len()].clone();
            }
        }
        assert!(t.session_titles().iter().all(|s| titles.contains(*s)));
        // Facet links spell the same combination with its keys in several orders.
        let canonical: BTreeSet<Vec<&str>> = spellings
            .iter()
            .map(|s| {
                let mut keys: Vec<&str> = s.split(['?', '&']).collect();
                keys.sort_unstable();
                keys
            })
            .collect();
        assert!(canonical.len() < spellings.len(), "{}", canonical.len());
        let (_, body) = get(
            &c,
            &url::Url::parse(&site.url("/search?brand=acme&q=shoes")).unwrap(),
        )
        .await;
        assert!(body.contains("Trail Runner") && !body.contains("City Sneaker"));
        let stats = site.stats();
        assert_eq!(stats.by_trap.values().sum::<u64>(), 6 * 50 + 1);
        assert_eq!(stats.by_trap["facets"], 51);
    }
}
