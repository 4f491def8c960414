//! The optional shop and blog ([`crate::SiteConfig::shop`]): realistic
//! product, listing and article pages for scraping tests, and their ground
//! truth ([`Product`], [`Article`]).
//!
//! Routes (served only when `shop` is on): `/shop/`, `/shop/page/{n}`
//! (`n ≥ 2`), `/shop/product/{id}` (`id` in `1..=shop_products`),
//! `/shop/images/{id}.png`, `/blog/`, `/blog/page/{n}` (`n ≥ 2`) and
//! `/blog/{slug}`.

use crate::rng::{Rng, hash3};
use crate::site::{Node, parse_canonical_u64};

/// Products per `/shop/` listing page.
pub const PRODUCTS_PER_PAGE: usize = 20;
/// Articles per `/blog/` index page.
pub const ARTICLES_PER_PAGE: usize = 10;

/// Ground truth of one product page (`/shop/product/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// 1-based id (`/shop/product/{id}`, `SKU-{id:05}`).
    pub id: u32,
    /// `/shop/product/{id}`.
    pub path: String,
    /// Display name (may contain `&` and `"`, HTML-escaped in the markup).
    pub name: String,
    /// Price with two decimals (`1234.5` is shown as `$1,234.50` and is
    /// `"1234.50"` in the JSON-LD and `product:price:amount`).
    pub price: f64,
    /// ISO 4217 currency (always `USD`).
    pub currency: String,
    /// `SKU-00042`.
    pub sku: String,
    /// Brand name.
    pub brand: String,
    /// Average rating (one decimal, 1.0–5.0); `None`: no rating markup.
    pub rating: Option<f64>,
    /// Number of reviews; `None`: no reviews markup.
    pub review_count: Option<u32>,
    /// `In stock` (else `Out of stock`).
    pub in_stock: bool,
    /// Tags in page order.
    pub tags: Vec<String>,
    /// The description paragraph (plain ASCII text).
    pub description: String,
    /// Release date, `YYYY-MM-DD`.
    pub released: String,
    /// Absolute path of the product image (`/shop/images/{id}.png`).
    pub image: String,
    /// The page has unclosed tags (`<li>`, `<p>`, `<div>`) and unquoted
    /// attributes; browsers (and html5ever) still parse every field.
    pub broken_markup: bool,
    /// The page also carries schema.org microdata (`itemscope`, `itemprop`
    /// `name`, `price`, `priceCurrency`, …).
    pub microdata: bool,
}

/// Ground truth of one article page (`/blog/{slug}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// URL slug (lower-case words and the index, `-`-separated).
    pub slug: String,
    /// `/blog/{slug}`.
    pub path: String,
    /// Headline (`<h1>`, JSON-LD `headline`, `og:title`).
    pub title: String,
    /// Author name.
    pub author: String,
    /// Publication date, `YYYY-MM-DD`.
    pub published: String,
    /// The `<p>` paragraphs of the `<article>` body, in order (the list,
    /// code block and byline are not included).
    pub paragraphs: Vec<String>,
    /// Whitespace-separated words of `paragraphs`.
    pub word_count: usize,
}

pub(crate) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const ADJECTIVES: [&str; 16] = [
    "Classic",
    "Compact",
    "Deluxe",
    "Ergonomic",
    "Handmade",
    "Heavy-Duty",
    "Lightweight",
    "Modern",
    "Portable",
    "Premium",
    "Rustic",
    "Smart",
    "Vintage",
    "Wireless",
    "Essential",
    "Organic",
];

const NOUNS: [&str; 16] = [
    "Backpack",
    "Desk Lamp",
    "Kettle",
    "Notebook",
    "Headphones",
    "Water Bottle",
    "Salt & Pepper Mill",
    "10\" Skillet",
    "Keyboard",
    "Tent",
    "Throw Blanket",
    "Coffee Grinder",
    "Bike Light",
    "Plant Pot",
    "Chef's Knife",
    "Sneakers",
];

const BRANDS: [&str; 8] = [
    "Northwind",
    "Acme",
    "Barnes & Co",
    "Lumen",
    "Fernhill",
    "Oakridge",
    "Kite Labs",
    "Bluepeak",
];

const TAGS: [&str; 12] = [
    "new",
    "sale",
    "bestseller",
    "eco",
    "gift",
    "outdoor",
    "kitchen",
    "office",
    "travel",
    "limited",
    "bundle",
    "clearance",
];

const AUTHORS: [&str; 6] = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
];

const TOPICS: [&str; 8] = [
    "crawling politely",
    "parsing broken markup",
    "sitemaps at scale",
    "canonical URLs",
    "rate limits",
    "structured data",
    "frontier design",
    "robots rules",
];

/// Capitalised words of article slugs/titles (seed-independent so that a
/// [`Node`] can compute its path alone).
const SLUG_WORDS: [&str; 16] = [
    "Amber", "Birch", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Indigo",
    "Juniper", "Kestrel", "Lantern", "Meadow", "Nebula", "Orchid", "Quartz",
];

const WORDS: [&str; 40] = [
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
    "frontier",
    "queues",
    "grow",
    "steadily",
    "with",
    "canonical",
    "addresses",
    "durable",
    "design",
    "careful",
    "spiders",
    "extract",
    "fields",
];

fn pick<'a>(r: &mut Rng, list: &[&'a str]) -> &'a str {
    list[r.below(list.len() as u64) as usize]
}

fn sentence(r: &mut Rng, min: u64, max: u64) -> String {
    let n = min + r.below(max - min + 1);
    let mut s = String::new();
    for k in 0..n {
        let w = pick(r, &WORDS);
        if k == 0 {
            let mut cs = w.chars();
            if let Some(c) = cs.next() {
                s.push(c.to_ascii_uppercase());
                s.push_str(cs.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
    }
    s.push('.');
    s
}

fn date(r: &mut Rng) -> String {
    let y = 2018 + r.below(8);
    let m = 1 + r.below(12);
    let d = 1 + r.below(28);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2025-03-14` → `March 14, 2025`.
pub(crate) fn human_date(iso: &str) -> String {
    let mut it = iso.split('-');
    let (y, m, d) = (it.next(), it.next(), it.next());
    match (
        y,
        m.and_then(|m| m.parse::<usize>().ok()),
        d.and_then(|d| d.parse::<u32>().ok()),
    ) {
        (Some(y), Some(m), Some(d)) if (1..=12).contains(&m) => {
            format!("{} {d}, {y}", MONTHS[m - 1])
        }
        _ => iso.to_owned(),
    }
}

/// Price in cents.
pub(crate) fn cents(price: f64) -> u64 {
    (price * 100.0).round().max(0.0) as u64
}

/// `1234.50` (JSON-LD / meta form).
pub(crate) fn plain_price(price: f64) -> String {
    let c = cents(price);
    format!("{}.{:02}", c / 100, c % 100)
}

/// `$1,234.50` (display form).
pub(crate) fn display_price(price: f64) -> String {
    let c = cents(price);
    let whole = (c / 100).to_string();
    let mut grouped = String::new();
    for (k, ch) in whole.chars().enumerate() {
        if k > 0 && (whole.len() - k).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("${grouped}.{:02}", c % 100)
}

/// Generates the products of a site.
pub(crate) fn gen_products(seed: u64, n: usize) -> Vec<Product> {
    let n = n.min(1_000_000) as u32;
    (1..=n)
        .map(|id| {
            let mut r = Rng::new(hash3(seed, u64::from(id), 0x5409_D0C7));
            let name = format!(
                "{} {} {}",
                pick(&mut r, &ADJECTIVES),
                pick(&mut r, &crate::site::TITLE_WORDS),
                pick(&mut r, &NOUNS)
            );
            let brand = pick(&mut r, &BRANDS).to_owned();
            let price_cents = if r.chance(1, 5) {
                100_000 + r.below(2_400_000)
            } else {
                199 + r.below(99_800)
            };
            let no_rating = id % 7 == 3 || r.chance(1, 10);
            let rating = (!no_rating).then(|| (10 + r.below(41)) as f64 / 10.0);
            let no_reviews = no_rating || id % 7 == 4 || r.chance(1, 10);
            let review_count = (!no_reviews).then(|| 1 + r.below(2000) as u32);
            let in_stock = id % 9 != 2 && !r.chance(1, 6);
            let ntags = 1 + r.below(4);
            let mut tags: Vec<String> = Vec::new();
            for _ in 0..ntags {
                let t = pick(&mut r, &TAGS);
                if !tags.iter().any(|x| x == t) {
                    tags.push(t.to_owned());
                }
            }
            let description = format!("{} {}", sentence(&mut r, 8, 16), sentence(&mut r, 6, 14));
            let released = date(&mut r);
            Product {
                id,
                path: format!("/shop/product/{id}"),
                name,
                price: price_cents as f64 / 100.0,
                currency: "USD".to_owned(),
                sku: format!("SKU-{id:05}"),
                brand,
                rating,
                review_count,
                in_stock,
                tags,
                description,
                released,
                image: format!("/shop/images/{id}.png"),
                broken_markup: id % 11 == 7,
                microdata: id % 3 == 1,
            }
        })
        .collect()
}

fn slug_words(i: u32) -> (&'static str, &'static str) {
    let h = hash3(0x5106, u64::from(i), 0xA271);
    (
        SLUG_WORDS[(h % 16) as usize],
        SLUG_WORDS[((h >> 8) % 16) as usize],
    )
}

/// Slug of article `i` (0-based); independent of the seed.
pub(crate) fn article_slug(i: u32) -> String {
    let (a, b) = slug_words(i);
    format!(
        "{}-{}-{}",
        a.to_ascii_lowercase(),
        b.to_ascii_lowercase(),
        i + 1
    )
}

/// Generates the articles of a site.
pub(crate) fn gen_articles(seed: u64, n: usize) -> Vec<Article> {
    let n = n.min(100_000) as u32;
    (0..n)
        .map(|i| {
            let mut r = Rng::new(hash3(seed, u64::from(i), 0xB106_A271));
            let (a, b) = slug_words(i);
            let slug = article_slug(i);
            let title = format!("{a} {b}: notes on {}", pick(&mut r, &TOPICS));
            let author = pick(&mut r, &AUTHORS).to_owned();
            let published = date(&mut r);
            let np = 3 + r.below(4);
            let paragraphs: Vec<String> = (0..np)
                .map(|_| {
                    let ns = 2 + r.below(3);
                    (0..ns)
                        .map(|_| sentence(&mut r, 8, 18))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            let word_count = paragraphs
                .iter()
                .map(|p| p.split_whitespace().count())
                .sum();
            Article {
                path: format!("/blog/{slug}"),
                slug,
                title,
                author,
                published,
                paragraphs,
                word_count,
            }
        })
        .collect()
}

/// Number of listing pages for `items` items, at least 1.
pub(crate) fn page_count(items: usize, per_page: usize) -> u32 {
    items.div_ceil(per_page).max(1) as u32
}

/// Path of listing page `n` (1-based) under `prefix` (`/shop/`, `/blog/`).
pub(crate) fn list_path(prefix: &str, n: u32) -> String {
    if n <= 1 {
        prefix.to_owned()
    } else {
        format!("{prefix}page/{n}")
    }
}

/// The listing page number of `path` under `prefix`, if served.
pub(crate) fn parse_list(path: &str, prefix: &str, pages: u32) -> Option<u32> {
    if path == prefix {
        return Some(1);
    }
    let n = parse_canonical_u64(path.strip_prefix(prefix)?.strip_prefix("page/")?)?;
    (2..=u64::from(pages)).contains(&n).then_some(n as u32)
}

/// HTML-escapes text or attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// JSON for a `<script>` element (no `</` inside).
fn script_json(v: &serde_json::Value) -> String {
    v.to_string().replace("</", "<\\/")
}

/// Links shared by every shop/blog page (header navigation).
pub(crate) const NAV: [Node; 3] = [Node::Root, Node::ShopList(1), Node::BlogList(1)];

/// A minimal valid 1×1 PNG (served for product images).
pub(crate) const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// Shop/blog data of a [`crate::Site`] (empty when `shop` is off).
#[derive(Debug, Clone, Default)]
pub(crate) struct Shop {
    pub(crate) enabled: bool,
    pub(crate) products: Vec<Product>,
    pub(crate) articles: Vec<Article>,
}

impl Shop {
    pub(crate) fn generate(seed: u64, enabled: bool, products: usize, articles: usize) -> Shop {
        if !enabled {
            return Shop::default();
        }
        Shop {
            enabled,
            products: gen_products(seed, products),
            articles: gen_articles(seed, articles),
        }
    }

    pub(crate) fn shop_pages(&self) -> u32 {
        if self.enabled {
            page_count(self.products.len(), PRODUCTS_PER_PAGE)
        } else {
            0
        }
    }

    pub(crate) fn blog_pages(&self) -> u32 {
        if self.enabled {
            page_count(self.articles.len(), ARTICLES_PER_PAGE)
        } else {
            0
        }
    }

    /// Number of shop/blog nodes (for the BFS state vector).
    pub(crate) fn node_count(&self) -> usize {
        self.shop_pages() as usize
            + self.products.len()
            + self.blog_pages() as usize
            + self.articles.len()
    }

    /// Dense index of a shop/blog node in `0..node_count()`.
    pub(crate) fn node_index(&self, node: Node) -> usize {
        let sp = self.shop_pages() as usize;
        let np = self.products.len();
        let bp = self.blog_pages() as usize;
        match node {
            Node::ShopList(n) => (n as usize).saturating_sub(1),
            Node::Product(id) => sp + (id as usize).saturating_sub(1),
            Node::BlogList(n) => sp + np + (n as usize).saturating_sub(1),
            Node::Article(i) => sp + np + bp + i as usize,
            _ => 0,
        }
    }

    /// The shop/blog node served at `path`.
    pub(crate) fn node_of(&self, path: &str) -> Option<Node> {
        if !self.enabled {
            return None;
        }
        if let Some(n) = parse_list(path, "/shop/", self.shop_pages()) {
            return Some(Node::ShopList(n));
        }
        if let Some(n) = parse_list(path, "/blog/", self.blog_pages()) {
            return Some(Node::BlogList(n));
        }
        if let Some(id) = path
            .strip_prefix("/shop/product/")
            .and_then(parse_canonical_u64)
        {
            return (1..=self.products.len() as u64)
                .contains(&id)
                .then_some(Node::Product(id as u32));
        }
        let slug = path.strip_prefix("/blog/")?;
        self.articles
            .iter()
            .position(|a| a.slug == slug)
            .map(|i| Node::Article(i as u32))
    }

    pub(crate) fn product(&self, id: u32) -> Option<&Product> {
        self.products.get((id as usize).checked_sub(1)?)
    }

    /// Products on listing page `n`.
    fn page_products(&self, n: u32) -> &[Product] {
        let start = ((n as usize).saturating_sub(1) * PRODUCTS_PER_PAGE).min(self.products.len());
        let end = (start + PRODUCTS_PER_PAGE).min(self.products.len());
        &self.products[start..end]
    }

    /// Articles on index page `n`.
    fn page_articles(&self, n: u32) -> &[Article] {
        let start = ((n as usize).saturating_sub(1) * ARTICLES_PER_PAGE).min(self.articles.len());
        let end = (start + ARTICLES_PER_PAGE).min(self.articles.len());
        &self.articles[start..end]
    }

    /// Related products of product `id` (the neighbours, wrapping).
    fn related(&self, id: u32) -> Vec<u32> {
        let n = self.products.len() as u32;
        let mut out = Vec::new();
        if n > 1 {
            out.push(if id >= n { 1 } else { id + 1 });
            let prev = if id <= 1 { n } else { id - 1 };
            if !out.contains(&prev) {
                out.push(prev);
            }
        }
        out
    }

    /// Sidebar links of article pages: the first three articles.
    fn recent(&self) -> impl Iterator<Item = u32> {
        0..self.articles.len().min(3) as u32
    }

    /// The product an article mentions, if any.
    fn mentioned_product(&self, i: u32) -> Option<u32> {
        let n = self.products.len() as u64;
        (n > 0).then(|| 1 + (hash3(0xB106, u64::from(i), 0x9D) % n) as u32)
    }

    /// Same-site page links of a shop/blog node (what the page contains).
    pub(crate) fn for_each_link(&self, node: Node, f: &mut dyn FnMut(Node)) {
        for n in NAV {
            f(n);
        }
        match node {
            Node::ShopList(n) => {
                for p in self.page_products(n) {
                    f(Node::Product(p.id));
                }
                if n > 1 {
                    f(Node::ShopList(n - 1));
                }
                if n < self.shop_pages() {
                    f(Node::ShopList(n + 1));
                }
            }
            Node::Product(id) => {
                for r in self.related(id) {
                    f(Node::Product(r));
                }
            }
            Node::BlogList(n) => {
                let start = (n as usize).saturating_sub(1) * ARTICLES_PER_PAGE;
                for k in 0..self.page_articles(n).len() {
                    f(Node::Article((start + k) as u32));
                }
                if n > 1 {
                    f(Node::BlogList(n - 1));
                }
                if n < self.blog_pages() {
                    f(Node::BlogList(n + 1));
                }
            }
            Node::Article(i) => {
                let n = self.articles.len() as u32;
                if n > 1 {
                    f(Node::Article((i + 1) % n));
                }
                if let Some(p) = self.mentioned_product(i) {
                    f(Node::Product(p));
                }
                for r in self.recent() {
                    f(Node::Article(r));
                }
            }
            _ => {}
        }
    }

    /// Title (`<title>`) of a shop/blog node.
    pub(crate) fn title(&self, node: Node) -> Option<String> {
        match node {
            Node::ShopList(1) => Some("Shop — all products".to_owned()),
            Node::ShopList(n) => Some(format!("Shop — page {n}")),
            Node::BlogList(1) => Some("Blog".to_owned()),
            Node::BlogList(n) => Some(format!("Blog — page {n}")),
            Node::Product(id) => self.product(id).map(|p| format!("{} | Trawl Shop", p.name)),
            Node::Article(i) => self
                .articles
                .get(i as usize)
                .map(|a| format!("{} | Trawl Blog", a.title)),
            _ => None,
        }
    }

    /// Renders a shop/blog node for `scheme://host`.
    pub(crate) fn render(&self, node: Node, scheme: &str, host: &str) -> Option<String> {
        let origin = format!("{scheme}://{host}");
        match node {
            Node::ShopList(n) => Some(self.render_shop_list(n, &origin)),
            Node::BlogList(n) => Some(self.render_blog_list(n, &origin)),
            Node::Product(id) => self.product(id).map(|p| self.render_product(p, &origin)),
            Node::Article(i) => self
                .articles
                .get(i as usize)
                .map(|a| self.render_article(i, a, &origin)),
            _ => None,
        }
    }

    fn head(&self, node: Node, origin: &str, extra: &str) -> String {
        let title = self.title(node).unwrap_or_default();
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<link rel=\"canonical\" href=\"{origin}{}\">\n\
             <link rel=\"stylesheet\" href=\"/static/site.css\">\n{extra}</head>\n<body>\n\
             <header class=\"site-header\"><div class=\"logo\">Trawl Store</div>\n\
             <nav class=\"main-nav\"><a href=\"/\">Home</a> <a href=\"/shop/\">Shop</a> \
             <a href=\"/blog/\">Blog</a></nav></header>\n\
             <div class=\"cookie-banner\">We use cookies to improve your experience. \
             <button>Accept</button></div>\n",
            esc(&title),
            node.path()
        )
    }

    fn foot(&self) -> &'static str {
        "<footer class=\"site-footer\"><p>© 2025 Trawl Store. All rights reserved.</p>\n\
         <p>Terms · Privacy · Contact</p>\n\
         <a href=\"https://external.invalid/social\">Follow us</a></footer>\n\
         <script>window.dataLayer = window.dataLayer || [];</script>\n</body>\n</html>\n"
    }

    fn pagination(&self, prefix: &str, n: u32, pages: u32) -> String {
        let mut s = String::from("<nav class=\"pagination\">");
        if n > 1 {
            s.push_str(&format!(
                "<a rel=\"prev\" class=\"prev\" href=\"{}\">Previous</a> ",
                list_path(prefix, n - 1)
            ));
        }
        s.push_str(&format!(
            "<span class=\"current\">Page {n} of {pages}</span>"
        ));
        if n < pages {
            s.push_str(&format!(
                " <a rel=\"next\" class=\"next\" href=\"{}\">Next</a>",
                list_path(prefix, n + 1)
            ));
        }
        s.push_str("</nav>\n");
        s
    }

    fn render_shop_list(&self, n: u32, origin: &str) -> String {
        let node = Node::ShopList(n);
        let mut s = self.head(
            node,
            origin,
            "<meta property=\"og:type\" content=\"website\">\n",
        );
        s.push_str(
            "<main>\n<h1 class=\"listing-title\">All products</h1>\n<div class=\"product-grid\">\n",
        );
        for p in self.page_products(n) {
            s.push_str(&format!(
                "<div class=\"product-card\"><a class=\"product-link\" href=\"{}\">{}</a><span class=\"price\">{}</span></div>\n",
                p.path,
                esc(&p.name),
                display_price(p.price)
            ));
        }
        s.push_str("</div>\n");
        s.push_str(&self.pagination("/shop/", n, self.shop_pages()));
        s.push_str("</main>\n");
        s.push_str(self.foot());
        s
    }

    fn render_blog_list(&self, n: u32, origin: &str) -> String {
        let node = Node::BlogList(n);
        let mut s = self.head(
            node,
            origin,
            "<meta property=\"og:type\" content=\"website\">\n",
        );
        s.push_str("<main>\n<h1>Blog</h1>\n");
        for a in self.page_articles(n) {
            let excerpt: String = a
                .paragraphs
                .first()
                .map(|p| p.split_whitespace().take(20).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            s.push_str(&format!(
                "<div class=\"post-summary\"><h2><a class=\"post-link\" href=\"{}\">{}</a></h2>\n\
                 <p class=\"byline\">By {} · <time datetime=\"{}\">{}</time></p>\n<p class=\"excerpt\">{excerpt}…</p></div>\n",
                a.path,
                esc(&a.title),
                esc(&a.author),
                a.published,
                human_date(&a.published)
            ));
        }
        s.push_str(&self.pagination("/blog/", n, self.blog_pages()));
        s.push_str("</main>\n");
        s.push_str(self.foot());
        s
    }

    fn render_product(&self, p: &Product, origin: &str) -> String {
        let url = format!("{origin}{}", p.path);
        let image = format!("{origin}{}", p.image);
        let price = plain_price(p.price);
        let availability = if p.in_stock {
            "https://schema.org/InStock"
        } else {
            "https://schema.org/OutOfStock"
        };
        let mut ld = serde_json::json!({
            "@context": "https://schema.org",
            "@type": "Product",
            "name": p.name,
            "sku": p.sku,
            "brand": {"@type": "Brand", "name": p.brand},
            "description": p.description,
            "image": image,
            "releaseDate": p.released,
            "offers": {
                "@type": "Offer",
                "url": url,
                "price": price,
                "priceCurrency": p.currency,
                "availability": availability,
            },
        });
        if let (Some(r), Some(obj)) = (p.rating, ld.as_object_mut()) {
            let mut agg =
                serde_json::json!({"@type": "AggregateRating", "ratingValue": r, "bestRating": 5});
            if let (Some(c), Some(a)) = (p.review_count, agg.as_object_mut()) {
                a.insert("reviewCount".to_owned(), serde_json::json!(c));
            }
            obj.insert("aggregateRating".to_owned(), agg);
        }
        if p.id % 5 == 2 {
            // Some sites wrap their JSON-LD in an array with breadcrumbs.
            ld = serde_json::json!([
                {
                    "@context": "https://schema.org",
                    "@type": "BreadcrumbList",
                    "itemListElement": [
                        {"@type": "ListItem", "position": 1, "name": "Shop", "item": format!("{origin}/shop/")},
                        {"@type": "ListItem", "position": 2, "name": p.name, "item": url},
                    ],
                },
                ld,
            ]);
        }
        let name = esc(&p.name);
        let desc = esc(&p.description);
        let extra = format!(
            "<meta name=\"description\" content=\"{desc}\">\n\
             <meta property=\"og:title\" content=\"{name}\">\n\
             <meta property=\"og:type\" content=\"product\">\n\
             <meta property=\"og:image\" content=\"{image}\">\n\
             <meta property=\"og:url\" content=\"{url}\">\n\
             <meta property=\"og:description\" content=\"{desc}\">\n\
             <meta property=\"og:site_name\" content=\"Trawl Store\">\n\
             <meta property=\"product:price:amount\" content=\"{price}\">\n\
             <meta property=\"product:price:currency\" content=\"{}\">\n\
             <meta name=\"twitter:card\" content=\"summary_large_image\">\n\
             <meta name=\"twitter:title\" content=\"{name}\">\n\
             <meta name=\"twitter:description\" content=\"{desc}\">\n\
             <meta name=\"twitter:image\" content=\"{image}\">\n\
             <script type=\"application/ld+json\">\n{}\n</script>\n",
            p.currency,
            script_json(&ld)
        );
        let mut s = self.head(Node::Product(p.id), origin, &extra);
        let md = p.microdata;
        let broken = p.broken_markup;
        s.push_str(
            "<nav class=\"breadcrumbs\"><a href=\"/\">Home</a> › <a href=\"/shop/\">Shop</a> › ",
        );
        s.push_str(&format!("<span>{name}</span></nav>\n<main>\n"));
        if md {
            s.push_str(
                "<div class=\"product\" itemscope itemtype=\"https://schema.org/Product\">\n",
            );
        } else {
            s.push_str("<div class=\"product\">\n");
        }
        s.push_str(&format!(
            "<h1 class=\"product-title\"{}>{name}</h1>\n",
            if md { " itemprop=\"name\"" } else { "" }
        ));
        s.push_str(&format!(
            "<img class=\"product-image\" src=\"{}\" alt=\"{name}\" width=\"600\" height=\"600\"{}>\n",
            p.image,
            if md { " itemprop=\"image\"" } else { "" }
        ));
        if md {
            s.push_str(&format!(
                "<div class=\"price-box\" itemprop=\"offers\" itemscope itemtype=\"https://schema.org/Offer\">\
                 <span class=\"price\" data-currency=\"{}\" itemprop=\"price\" content=\"{price}\">{}</span>\
                 <meta itemprop=\"priceCurrency\" content=\"{}\">\
                 <link itemprop=\"availability\" href=\"{availability}\"></div>\n",
                p.currency,
                display_price(p.price),
                p.currency
            ));
        } else {
            s.push_str(&format!(
                "<div class=\"price-box\"><span class=\"price\" data-currency=\"{}\">{}</span></div>\n",
                p.currency,
                display_price(p.price)
            ));
        }
        if broken {
            s.push_str(&format!("<span class=sku>{}</span>\n", p.sku));
        } else {
            s.push_str(&format!(
                "<span class=\"sku\"{}>{}</span>\n",
                if md { " itemprop=\"sku\"" } else { "" },
                p.sku
            ));
        }
        s.push_str(&format!(
            "<span class=\"brand\"{}>{}</span>\n",
            if md { " itemprop=\"brand\"" } else { "" },
            esc(&p.brand)
        ));
        if let Some(r) = p.rating {
            let full = r.round().clamp(0.0, 5.0) as usize;
            s.push_str(&format!(
                "<div class=\"rating\" data-rating=\"{r:.1}\"><span class=\"stars\">{}{}</span> {r:.1} out of 5</div>\n",
                "★".repeat(full),
                "☆".repeat(5 - full)
            ));
        }
        if let Some(c) = p.review_count {
            s.push_str(&format!("<span class=\"reviews\">({c} reviews)</span>\n"));
        }
        s.push_str(if p.in_stock {
            "<span class=\"stock in-stock\">In stock</span>\n"
        } else {
            "<span class=\"stock out-of-stock\">Out of stock</span>\n"
        });
        s.push_str("<ul class=\"tags\">");
        for t in &p.tags {
            if broken {
                s.push_str(&format!("<li>{t}"));
            } else {
                s.push_str(&format!("<li>{t}</li>"));
            }
        }
        s.push_str("</ul>\n");
        s.push_str(&format!(
            "<p class=\"description\"{}>{desc}{}\n",
            if md { " itemprop=\"description\"" } else { "" },
            if broken { "" } else { "</p>" }
        ));
        s.push_str(&format!(
            "<p class=\"released\">Released <time datetime=\"{}\">{}</time></p>\n",
            p.released,
            human_date(&p.released)
        ));
        s.push_str(if broken { "\n" } else { "</div>\n" });
        s.push_str("<section class=\"related\"><h2>Related products</h2><ul>\n");
        for r in self.related(p.id) {
            if let Some(q) = self.product(r) {
                s.push_str(&format!(
                    "<li><a href=\"{}\">{}</a></li>\n",
                    q.path,
                    esc(&q.name)
                ));
            }
        }
        s.push_str("</ul></section>\n</main>\n");
        s.push_str(
            "<aside class=\"sidebar\"><h3>Free shipping</h3><p>On orders over $50.</p></aside>\n",
        );
        s.push_str(self.foot());
        s
    }

    fn render_article(&self, i: u32, a: &Article, origin: &str) -> String {
        let url = format!("{origin}{}", a.path);
        let kind = if i.is_multiple_of(2) {
            "BlogPosting"
        } else {
            "Article"
        };
        let ld = serde_json::json!({
            "@context": "https://schema.org",
            "@type": kind,
            "headline": a.title,
            "author": {"@type": "Person", "name": a.author},
            "datePublished": a.published,
            "wordCount": a.word_count,
            "mainEntityOfPage": url,
        });
        let title = esc(&a.title);
        let summary = esc(a.paragraphs.first().map_or("", String::as_str));
        let extra = format!(
            "<meta name=\"description\" content=\"{summary}\">\n\
             <meta name=\"author\" content=\"{}\">\n\
             <meta property=\"og:title\" content=\"{title}\">\n\
             <meta property=\"og:type\" content=\"article\">\n\
             <meta property=\"og:url\" content=\"{url}\">\n\
             <meta property=\"og:description\" content=\"{summary}\">\n\
             <meta property=\"article:published_time\" content=\"{}\">\n\
             <meta name=\"twitter:card\" content=\"summary\">\n\
             <meta name=\"twitter:title\" content=\"{title}\">\n\
             <script type=\"application/ld+json\">\n{}\n</script>\n",
            esc(&a.author),
            a.published,
            script_json(&ld)
        );
        let mut s = self.head(Node::Article(i), origin, &extra);
        s.push_str("<div class=\"layout\">\n<main>\n<article>\n");
        s.push_str(&format!("<h1>{title}</h1>\n"));
        s.push_str(&format!(
            "<p class=\"byline\">By <span class=\"author\" rel=\"author\">{}</span> · <time datetime=\"{}\">{}</time></p>\n",
            esc(&a.author),
            a.published,
            human_date(&a.published)
        ));
        let n = self.articles.len() as u32;
        for (k, para) in a.paragraphs.iter().enumerate() {
            s.push_str(&format!("<p>{}</p>\n", esc(para)));
            if k == 0 {
                s.push_str("<ul class=\"takeaways\">\n<li>Respect robots.txt.</li>\n");
                if n > 1 {
                    let next = (i + 1) % n;
                    if let Some(b) = self.articles.get(next as usize) {
                        s.push_str(&format!(
                            "<li>Read next: <a href=\"{}\">{}</a></li>\n",
                            b.path,
                            esc(&b.title)
                        ));
                    }
                }
                if let Some(p) = self.mentioned_product(i).and_then(|id| self.product(id)) {
                    s.push_str(&format!(
                        "<li>Featured: <a href=\"{}\">{}</a></li>\n",
                        p.path,
                        esc(&p.name)
                    ));
                }
                s.push_str("</ul>\n");
            }
            if k == 1 {
                s.push_str(
                    "<pre><code class=\"language-rust\">let page = fetch(&amp;url).await?;\n\
                     for link in page.links() {\n    frontier.push(link);\n}\n</code></pre>\n",
                );
            }
        }
        s.push_str(
            "</article>\n<div class=\"share\">Share: Twitter · Facebook · Email</div>\n</main>\n",
        );
        s.push_str("<aside class=\"sidebar\"><h3>Recent posts</h3><ul>\n");
        for r in self.recent() {
            if let Some(b) = self.articles.get(r as usize) {
                s.push_str(&format!(
                    "<li><a href=\"{}\">{}</a></li>\n",
                    b.path,
                    esc(&b.title)
                ));
            }
        }
        s.push_str(
            "</ul><h3>Newsletter</h3><p>Subscribe for weekly crawling tips.</p></aside>\n</div>\n",
        );
        s.push_str(self.foot());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_format() {
        assert_eq!(display_price(1234.5), "$1,234.50");
        assert_eq!(display_price(12.34), "$12.34");
        assert_eq!(display_price(1_000_000.0), "$1,000,000.00");
        assert_eq!(display_price(999.99), "$999.99");
        assert_eq!(plain_price(1234.5), "1234.50");
        assert_eq!(human_date("2025-03-14"), "March 14, 2025");
    }

    #[test]
    fn list_paths() {
        assert_eq!(list_path("/shop/", 1), "/shop/");
        assert_eq!(list_path("/shop/", 3), "/shop/page/3");
        assert_eq!(parse_list("/shop/page/3", "/shop/", 5), Some(3));
        assert_eq!(parse_list("/shop/page/1", "/shop/", 5), None);
        assert_eq!(parse_list("/shop/page/6", "/shop/", 5), None);
        assert_eq!(parse_list("/shop/page/03", "/shop/", 5), None);
    }

    #[test]
    fn generated_data_has_variety() {
        let ps = gen_products(1, 100);
        assert_eq!(ps.len(), 100);
        assert!(ps.iter().any(|p| p.rating.is_none()));
        assert!(
            ps.iter()
                .any(|p| p.rating.is_some() && p.review_count.is_none())
        );
        assert!(ps.iter().any(|p| p.broken_markup));
        assert!(ps.iter().any(|p| p.microdata));
        assert!(ps.iter().any(|p| !p.in_stock));
        assert!(ps.iter().any(|p| p.price >= 1000.0));
        assert!(ps.iter().all(|p| !p.tags.is_empty()));
        let arts = gen_articles(1, 20);
        let mut slugs: Vec<_> = arts.iter().map(|a| a.slug.clone()).collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), 20);
        assert!(
            arts.iter()
                .all(|a| a.paragraphs.len() >= 3 && a.word_count > 0)
        );
    }
}
