//! The optional shop and blog: real HTTP fetches agree with the
//! `Site::products` / `Site::articles` ground truth, pagination reaches
//! every product, and `shop: false` leaves the site untouched.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{client, decode_entities, extract};
use trawl_testsite::{PRODUCTS_PER_PAGE, RobotsMode, Site, SiteConfig, TestSite};
use url::Url;

fn shop_cfg() -> SiteConfig {
    SiteConfig {
        shop: true,
        ..SiteConfig::default()
    }
}

/// The text between `start` (first occurrence) and the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let s = html.find(start)? + start.len();
    let e = s + html[s..].find(end)?;
    Some(&html[s..e])
}

/// Every JSON-LD block of `html`, parsed.
fn json_ld(html: &str) -> Vec<serde_json::Value> {
    let open = "<script type=\"application/ld+json\">";
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(open) {
        let s = &rest[i + open.len()..];
        let e = s.find("</script>").unwrap();
        out.push(serde_json::from_str(&s[..e]).unwrap());
        rest = &s[e..];
    }
    out
}

/// The schema.org object of `ty` in a JSON-LD value (object or array).
fn find_type<'a>(v: &'a serde_json::Value, ty: &str) -> Option<&'a serde_json::Value> {
    match v {
        serde_json::Value::Array(items) => items.iter().find_map(|x| find_type(x, ty)),
        serde_json::Value::Object(o) => {
            (o.get("@type").and_then(|t| t.as_str()) == Some(ty)).then_some(v)
        }
        _ => None,
    }
}

fn meta<'a>(html: &'a str, prop: &str) -> Option<&'a str> {
    between(html, &format!("property=\"{prop}\" content=\""), "\"")
}

#[tokio::test]
async fn product_pages_match_the_ground_truth() {
    let site = TestSite::start(shop_cfg()).await.unwrap();
    let http = client();
    let products = site.site().products();
    assert_eq!(products.len(), 100);
    assert!(products.iter().any(|p| p.rating.is_none()));
    assert!(products.iter().any(|p| p.review_count.is_none()));
    assert!(products.iter().any(|p| p.broken_markup));
    assert!(products.iter().any(|p| p.price >= 1000.0));
    for p in &products {
        let resp = http.get(site.url(&p.path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", p.path);
        let html = resp.text().await.unwrap();
        let price = format!("{:.2}", p.price);

        // JSON-LD.
        let lds = json_ld(&html);
        let ld = lds
            .iter()
            .find_map(|v| find_type(v, "Product"))
            .unwrap_or_else(|| panic!("no Product JSON-LD on {}", p.path));
        assert_eq!(ld["name"], p.name.as_str());
        assert_eq!(ld["sku"], p.sku.as_str());
        assert_eq!(ld["brand"]["name"], p.brand.as_str());
        assert_eq!(ld["offers"]["price"], price.as_str());
        assert_eq!(ld["offers"]["priceCurrency"], p.currency.as_str());
        let avail = ld["offers"]["availability"].as_str().unwrap();
        assert_eq!(avail.ends_with("/InStock"), p.in_stock, "{}", p.path);
        assert_eq!(
            ld["aggregateRating"]["ratingValue"].as_f64(),
            p.rating,
            "{}",
            p.path
        );
        assert_eq!(
            ld["aggregateRating"]["reviewCount"]
                .as_u64()
                .map(|c| c as u32),
            p.review_count
        );

        // Visible markup.
        let title = between(&html, "<h1 class=\"product-title\"", "</h1>").unwrap();
        let title = &title[title.find('>').unwrap() + 1..];
        assert_eq!(decode_entities(title), p.name);
        let shown = between(&html, "data-currency=\"USD\"", "</span>").unwrap();
        let shown = &shown[shown.find('>').unwrap() + 1..];
        let digits: String = shown.chars().filter(|c| *c != ',' && *c != '$').collect();
        assert_eq!(digits, price, "{}", p.path);
        assert!(shown.starts_with('$'));
        if p.price >= 1000.0 {
            assert!(shown.contains(','), "{shown}");
        }
        assert!(html.contains(&format!(">{}</span>", p.sku)));
        assert_eq!(
            html.contains(&format!("data-rating=\"{:.1}\"", p.rating.unwrap_or(0.0))),
            p.rating.is_some()
        );
        match p.review_count {
            Some(c) => assert!(html.contains(&format!("({c} reviews)"))),
            None => assert!(!html.contains("class=\"reviews\"")),
        }
        assert_eq!(html.contains("stock in-stock"), p.in_stock);
        assert_eq!(html.contains("stock out-of-stock"), !p.in_stock);
        let tags = between(&html, "<ul class=\"tags\">", "</ul>").unwrap();
        let found: Vec<String> = tags
            .split("<li>")
            .skip(1)
            .map(|t| t.trim_end_matches("</li>").to_owned())
            .collect();
        assert_eq!(found, p.tags);
        assert!(html.contains(&format!("<time datetime=\"{}\">", p.released)));
        assert!(html.contains(&format!("src=\"{}\"", p.image)));
        // Descriptions are plain ASCII words, so they appear verbatim.
        assert!(html.contains(&p.description));
        assert_eq!(
            html.contains("itemtype=\"https://schema.org/Product\""),
            p.microdata
        );

        // OpenGraph.
        assert_eq!(meta(&html, "og:type"), Some("product"));
        assert_eq!(meta(&html, "product:price:amount"), Some(price.as_str()));
        assert_eq!(
            meta(&html, "og:url"),
            Some(site.url(&p.path).as_str()),
            "{}",
            p.path
        );
        assert_eq!(decode_entities(meta(&html, "og:title").unwrap()), p.name);
        assert!(html.contains("name=\"twitter:card\""));

        // The image is served.
        let img = http.get(site.url(&p.image)).send().await.unwrap();
        assert_eq!(img.status(), 200);
        assert_eq!(img.headers()["content-type"], "image/png");
    }
    site.shutdown().await;
}

#[tokio::test]
async fn listing_pagination_reaches_every_product() {
    let cfg = SiteConfig {
        shop_products: 47,
        ..shop_cfg()
    };
    let site = TestSite::start(cfg).await.unwrap();
    let http = client();
    let base = Url::parse(&site.base_url()).unwrap();
    let root = http.get(site.url("/")).send().await.unwrap();
    let root = root.text().await.unwrap();
    assert!(root.contains("href=\"/shop/\""));
    assert!(root.contains("href=\"/blog/\""));

    let mut next = Some("/shop/".to_owned());
    let mut visited = Vec::new();
    let mut found = BTreeSet::new();
    while let Some(path) = next.take() {
        let resp = http.get(base.join(&path).unwrap()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let html = resp.text().await.unwrap();
        let cards = html.matches("<div class=\"product-card\">").count();
        assert!(cards <= PRODUCTS_PER_PAGE);
        for card in html.split("<a class=\"product-link\" href=\"").skip(1) {
            found.insert(card[..card.find('"').unwrap()].to_owned());
        }
        next = between(&html, "<a rel=\"next\" class=\"next\" href=\"", "\"").map(str::to_owned);
        visited.push(path);
    }
    assert_eq!(visited, site.site().listing_pages());
    assert_eq!(visited.len(), 3);
    let all: BTreeSet<String> = site.site().products().into_iter().map(|p| p.path).collect();
    assert_eq!(found, all);
    assert_eq!(
        http.get(site.url("/shop/page/4"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    site.shutdown().await;
}

#[tokio::test]
async fn article_pages_match_the_ground_truth() {
    let site = TestSite::start(shop_cfg()).await.unwrap();
    let http = client();
    let articles = site.site().articles();
    assert_eq!(articles.len(), 20);
    // The blog index pages list every article.
    let mut listed = BTreeSet::new();
    for page in site.site().blog_pages() {
        let html = http.get(site.url(&page)).send().await.unwrap();
        let html = html.text().await.unwrap();
        for h in extract(&html).1 {
            if h.starts_with("/blog/") && !h.starts_with("/blog/page/") && h != "/blog/" {
                listed.insert(h);
            }
        }
    }
    let all: BTreeSet<String> = articles.iter().map(|a| a.path.clone()).collect();
    assert_eq!(listed, all);
    for a in &articles {
        let html = http.get(site.url(&a.path)).send().await.unwrap();
        let html = html.text().await.unwrap();
        let body = between(&html, "<article>", "</article>").unwrap();
        assert_eq!(
            decode_entities(between(body, "<h1>", "</h1>").unwrap()),
            a.title
        );
        assert!(body.contains(&format!(">{}</span>", a.author)));
        assert!(body.contains(&format!("<time datetime=\"{}\">", a.published)));
        for p in &a.paragraphs {
            assert!(body.contains(&format!("<p>{p}</p>")), "{}", a.path);
        }
        assert!(body.contains("<pre><code"));
        assert!(body.contains("<ul"));
        assert!(html.contains("<aside class=\"sidebar\">"));
        assert!(html.contains("<footer"));
        let ld = json_ld(&html);
        let post = ld
            .iter()
            .find_map(|v| find_type(v, "BlogPosting").or_else(|| find_type(v, "Article")))
            .unwrap();
        assert_eq!(post["headline"], a.title.as_str());
        assert_eq!(post["author"]["name"], a.author.as_str());
        assert_eq!(post["datePublished"], a.published.as_str());
        assert_eq!(meta(&html, "og:type"), Some("article"));
        let words: usize = a
            .paragraphs
            .iter()
            .map(|p| p.split_whitespace().count())
            .sum();
        assert_eq!(words, a.word_count);
    }
    site.shutdown().await;
}

#[test]
fn shop_off_leaves_the_ground_truth_alone() {
    for robots in [RobotsMode::Default, RobotsMode::None] {
        let off = Site::generate(&SiteConfig {
            robots: robots.clone(),
            ..SiteConfig::default()
        });
        let on = Site::generate(&SiteConfig {
            robots,
            ..shop_cfg()
        });
        let off_truth = off.ground_truth();
        assert!(
            off_truth
                .iter()
                .all(|p| !p.starts_with("/shop") && !p.starts_with("/blog"))
        );
        assert!(off.products().is_empty() && off.articles().is_empty());
        assert!(off.listing_pages().is_empty());
        let on_truth = on.ground_truth();
        assert!(on_truth.is_superset(&off_truth));
        // Exactly the shop and blog pages are added.
        let added: BTreeSet<String> = on_truth.difference(&off_truth).cloned().collect();
        let mut shop_pages: BTreeSet<String> = on.listing_pages().into_iter().collect();
        shop_pages.extend(on.blog_pages());
        shop_pages.extend(on.products().into_iter().map(|p| p.path));
        shop_pages.extend(on.articles().into_iter().map(|a| a.path));
        assert_eq!(added, shop_pages);
        assert_eq!(off.sitemap_only_paths(), on.sitemap_only_paths());
        assert_eq!(off.disallowed_paths(), on.disallowed_paths());
        for p in &added {
            assert!(on.title_of(p).is_some(), "{p}");
            assert!(off.title_of(p).is_none(), "{p}");
        }
    }
}

#[tokio::test]
async fn shop_routes_are_404_when_off() {
    let site = TestSite::start(SiteConfig::default()).await.unwrap();
    let http = client();
    for p in ["/shop/", "/shop/product/1", "/blog/", "/shop/images/1.png"] {
        let r = http.get(site.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
    let root = http.get(site.url("/")).send().await.unwrap();
    assert!(!root.text().await.unwrap().contains("/shop/"));
    site.shutdown().await;
}

#[test]
fn shop_is_deterministic_for_a_seed() {
    let a = Site::generate(&shop_cfg());
    let b = Site::generate(&shop_cfg());
    assert_eq!(a.products(), b.products());
    assert_eq!(a.articles(), b.articles());
    let c = Site::generate(&SiteConfig {
        seed: 2,
        ..shop_cfg()
    });
    assert_ne!(a.products(), c.products());
}
