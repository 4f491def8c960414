//! Declarative spiders end to end: `trawl run` on the test site's shop,
//! every field checked against the generator's ground truth.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::trawl;
use trawl_testsite::{SiteConfig, TestSite};

fn spider_file(base: &str) -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/spiders/shop.toml"
    ))
    .unwrap();
    example
        .replace("http://127.0.0.1:8080", base)
        // Make reviews required, to exercise error records.
        .replace(
            r#"reviews = { selector = "span.reviews", type = "integer" }"#,
            r#"reviews = { selector = "span.reviews", type = "integer", required = true }"#,
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_spider_extracts_every_field_exactly() {
    let site = TestSite::start(SiteConfig {
        pages: 20,
        shop: true,
        shop_products: 47,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("shop.toml");
    std::fs::write(&spider, spider_file(&site.base_url())).unwrap();
    let (items_path, errors_path) = (
        dir.path().join("items.jsonl"),
        dir.path().join("errors.jsonl"),
    );
    let out = tokio::task::spawn_blocking({
        let (spider, items_path, errors_path) =
            (spider.clone(), items_path.clone(), errors_path.clone());
        move || {
            trawl()
                .arg("run")
                .arg(&spider)
                .arg("-o")
                .arg(&items_path)
                .arg("--errors")
                .arg(&errors_path)
                .arg("--stats-json")
                .arg(errors_path.with_extension("stats.json"))
                .arg("-q")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let items = read(&items_path);
    let errors = read(&errors_path);
    let products = site.site().products();
    assert_eq!(products.len(), 47);

    let by_path: BTreeMap<String, serde_json::Value> = items
        .iter()
        .map(|i| {
            (
                trawl_core::Url::parse(i["url"].as_str().unwrap())
                    .unwrap()
                    .path()
                    .to_string(),
                i.clone(),
            )
        })
        .collect();
    assert_eq!(by_path.len(), items.len(), "an item was written twice");
    let mut expected_errors = Vec::new();
    for p in &products {
        let Some(reviews) = p.review_count else {
            expected_errors.push(p.path.clone());
            assert!(
                !by_path.contains_key(&p.path),
                "{} has no reviews: it must be an error record",
                p.path
            );
            continue;
        };
        let item = by_path
            .get(&p.path)
            .unwrap_or_else(|| panic!("no item for {}", p.path));
        assert_eq!(item["name"], p.name, "{}", p.path);
        assert!(
            (item["price"].as_f64().unwrap() - p.price).abs() < 1e-9,
            "{}: {} vs {}",
            p.path,
            item["price"],
            p.price
        );
        assert_eq!(item["currency"], p.currency);
        assert_eq!(item["sku"], p.sku);
        assert_eq!(item["brand"], p.brand);
        match p.rating {
            Some(r) => assert!(
                (item["rating"].as_f64().unwrap() - r).abs() < 1e-9,
                "{}",
                p.path
            ),
            None => assert!(item.get("rating").is_none(), "{}", p.path),
        }
        assert_eq!(item["reviews"], reviews);
        assert_eq!(item["in_stock"], p.in_stock, "{}", p.path);
        assert_eq!(item["tags"], serde_json::json!(p.tags), "{}", p.path);
        assert_eq!(item["released"], p.released, "{}", p.path);
        assert_eq!(item["image"], p.image, "{}", p.path);
        // The built-in JSON-LD extractor found the Product with the same SKU.
        let ld = item["json_ld"].as_array().unwrap();
        assert!(ld.iter().any(|v| v["sku"] == p.sku), "{}", p.path);
    }
    assert!(
        !expected_errors.is_empty(),
        "the site has no product without reviews"
    );
    let mut got_errors: Vec<String> = errors
        .iter()
        .map(|e| {
            assert_eq!(e["field"], "reviews");
            assert_eq!(e["rule"], "product");
            trawl_core::Url::parse(e["url"].as_str().unwrap())
                .unwrap()
                .path()
                .to_string()
        })
        .collect();
    got_errors.sort();
    expected_errors.sort();
    assert_eq!(got_errors, expected_errors);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(errors_path.with_extension("stats.json")).unwrap())
            .unwrap();
    assert_eq!(
        stats["item_errors"],
        expected_errors.len() as u64,
        "error records count in the stats"
    );
    site.shutdown().await;
}

#[test]
fn check_reports_bad_spider_files_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, spider_file("http://127.0.0.1:9")).unwrap();
    let out = trawl().arg("check").arg(&good).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        spider_file("http://127.0.0.1:9")
            .replace(r#"selector = "span.sku""#, r#"selector = "span..sku""#),
    )
    .unwrap();
    let out = trawl().arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = spider_file("")
        .lines()
        .position(|l| l.starts_with("sku = "))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("bad.toml:{line}:7:")), "{err}");
    assert!(err.contains("field `sku`"), "{err}");

    // `run` refuses it before crawling.
    let out = trawl().arg("run").arg(&bad).arg("-q").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_one_page_as_json_markdown_and_text() {
    let site = TestSite::start(SiteConfig {
        pages: 10,
        shop: true,
        shop_products: 5,
        shop_articles: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let product = site
        .site()
        .products()
        .into_iter()
        .find(|p| p.rating.is_some())
        .unwrap();
    let url = site.url(&product.path);
    let out = tokio::task::spawn_blocking(move || {
        trawl()
            .args([
                "scrape",
                &url,
                "-s",
                "name=h1.product-title",
                "-s",
                "price:number=span.price",
                "-s",
                "tags:list=ul.tags li",
            ])
            .args(["-s", "image=img.product-image@src", "--explain"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["fields"]["name"], product.name);
    assert!((v["fields"]["price"].as_f64().unwrap() - product.price).abs() < 1e-9);
    assert_eq!(v["fields"]["tags"], serde_json::json!(product.tags));
    assert_eq!(v["fields"]["image"], product.image);
    assert!(
        v["json_ld"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["sku"] == product.sku)
    );
    assert_eq!(v["opengraph"]["og:type"], "product");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("price: `span.price` matched 1 element(s)")
    );

    let article = site.site().articles().into_iter().next().unwrap();
    let url = site.url(&article.path);
    let (u1, u2) = (url.clone(), url.clone());
    let text = tokio::task::spawn_blocking(move || {
        trawl()
            .args(["scrape", &u1, "--format", "text"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    for p in &article.paragraphs {
        assert!(
            text.contains(p.as_str()),
            "main text lacks a paragraph: {p}"
        );
    }
    assert!(
        !text.contains("All rights reserved"),
        "footer boilerplate kept"
    );
    let md = tokio::task::spawn_blocking(move || {
        trawl()
            .args(["scrape", &u2, "--format", "markdown"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let md = String::from_utf8_lossy(&md.stdout).to_string();
    assert!(md.contains(&format!("# {}", article.title)), "{md}");
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blog_spider_extracts_articles_and_their_main_text() {
    let site = TestSite::start(SiteConfig {
        pages: 10,
        shop: true,
        shop_products: 5,
        shop_articles: 14,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("blog.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/spiders/blog.toml"
    ))
    .unwrap();
    std::fs::write(
        &spider,
        text.replace("http://127.0.0.1:8080", &site.base_url()),
    )
    .unwrap();
    let items_path = dir.path().join("articles.jsonl");
    let (s, i, e) = (
        spider.clone(),
        items_path.clone(),
        dir.path().join("errors.jsonl"),
    );
    let out = tokio::task::spawn_blocking(move || {
        trawl()
            .arg("run")
            .arg(&s)
            .arg("-o")
            .arg(&i)
            .arg("--errors")
            .arg(&e)
            .arg("-q")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items: Vec<serde_json::Value> = std::fs::read_to_string(&items_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let articles = site.site().articles();
    assert_eq!(items.len(), articles.len());
    for a in &articles {
        let item = items
            .iter()
            .find(|i| i["url"].as_str().unwrap().ends_with(&a.path))
            .unwrap_or_else(|| panic!("no item for {}", a.path));
        assert_eq!(item["title"], a.title);
        assert_eq!(item["author"], a.author);
        assert_eq!(item["published"], a.published);
        let main = item["main_text"].as_str().unwrap();
        for p in &a.paragraphs {
            assert!(main.contains(p.as_str()), "{}: main text lacks {p}", a.path);
        }
        assert!(!main.contains("cookies"), "{}: boilerplate kept", a.path);
        assert!(
            item["markdown"]
                .as_str()
                .unwrap()
                .contains(&format!("# {}", a.title))
        );
        assert_eq!(item["opengraph"]["og:type"], "article");
    }
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_with_a_spider_shows_which_rules_match() {
    let site = TestSite::start(SiteConfig {
        pages: 10,
        shop: true,
        shop_products: 30,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("shop.toml");
    std::fs::write(&spider, spider_file(&site.base_url())).unwrap();
    let (listing, s) = (site.url("/shop/"), spider.clone());
    let out = tokio::task::spawn_blocking(move || {
        trawl()
            .args(["scrape", &listing, "--spider"])
            .arg(&s)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v["results"][0];
    let follows = first["follows"].as_array().unwrap();
    // 20 product links for the `product` rule, and the next page.
    assert_eq!(
        follows
            .iter()
            .filter(|f| f["callback"] == "product")
            .count(),
        20
    );
    assert!(
        follows
            .iter()
            .any(|f| f["url"].as_str().unwrap().ends_with("/shop/page/2"))
    );
    let product = site
        .site()
        .products()
        .into_iter()
        .find(|p| p.review_count.is_some())
        .unwrap();
    let (url, s) = (site.url(&product.path), spider.clone());
    let out = tokio::task::spawn_blocking(move || {
        trawl()
            .args(["scrape", &url, "--spider"])
            .arg(&s)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hit = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["as_callback"] == "product")
        .unwrap();
    let item = &hit["items"][0];
    assert_eq!(item["sku"], product.sku);
    // Fields come out in the order the file lists them.
    let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
    assert_eq!(keys[..4], ["url", "_rule", "name", "price"]);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_pipeline_stages_transform_drop_validate_and_dedupe() {
    let site = TestSite::start(SiteConfig {
        pages: 10,
        shop: true,
        shop_products: 120,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = r#"
[[pipeline]]
type = "transform"
lowercase = ["brand"]
set = { source = "shop" }

[[pipeline]]
type = "drop"
field = "in_stock"
equals = false

[[pipeline]]
type = "validate"
[pipeline.fields.rating]
max = 4.5

[[pipeline]]
type = "dedupe"
key = ["brand"]
"#;
    let spider = dir.path().join("shop.toml");
    let text =
        spider_file(&site.base_url()).replace("[settings]", &format!("{pipeline}\n[settings]"));
    std::fs::write(&spider, text).unwrap();
    let (items_path, errors_path, stats_path) = (
        dir.path().join("items.jsonl"),
        dir.path().join("errors.jsonl"),
        dir.path().join("stats.json"),
    );
    let out = tokio::task::spawn_blocking({
        let (spider, i, e, s) = (
            spider.clone(),
            items_path.clone(),
            errors_path.clone(),
            stats_path.clone(),
        );
        move || {
            trawl()
                .arg("run")
                .arg(&spider)
                .arg("-o")
                .arg(&i)
                .arg("--errors")
                .arg(&e)
                .arg("--stats-json")
                .arg(&s)
                .arg("-q")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    // Products without reviews are error records (required in this test's
    // spider file), so the run reports item errors but succeeds.
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let items = read(&items_path);
    let errors = read(&errors_path);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_path).unwrap()).unwrap();

    // What the stages should leave, from the generator's ground truth.
    let products = site.site().products();
    let extracted: Vec<_> = products
        .iter()
        .filter(|p| p.review_count.is_some())
        .collect();
    let in_stock: Vec<_> = extracted.iter().filter(|p| p.in_stock).collect();
    let too_good: Vec<_> = in_stock
        .iter()
        .filter(|p| p.rating.is_some_and(|r| r > 4.5))
        .collect();
    let valid: Vec<_> = in_stock
        .iter()
        .filter(|p| !p.rating.is_some_and(|r| r > 4.5))
        .collect();
    let brands: BTreeMap<String, usize> = valid.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p.brand.to_lowercase()).or_insert(0) += 1;
        m
    });
    assert!(!too_good.is_empty() && in_stock.len() < extracted.len());
    assert!(brands.values().any(|&n| n > 1), "dedupe has nothing to do");

    // Transform ran: lowercase brand, a constant field.
    assert!(items.iter().all(|i| i["source"] == "shop"));
    let got: BTreeMap<String, usize> = items.iter().fold(BTreeMap::new(), |mut m, i| {
        let b = i["brand"].as_str().unwrap();
        assert_eq!(b, b.to_lowercase());
        *m.entry(b.to_string()).or_insert(0) += 1;
        m
    });
    // Drop + validate + dedupe: one item per brand of the valid in-stock products.
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        brands.keys().collect::<Vec<_>>()
    );
    assert!(got.values().all(|&n| n == 1));
    assert!(items.iter().all(|i| i["in_stock"] == true));
    // Validation failures are error records naming the stage and field.
    let rating_errors: Vec<_> = errors
        .iter()
        .filter(|e| e["field"] == "rating" && e.get("stage").is_some())
        .collect();
    assert_eq!(rating_errors.len(), too_good.len(), "{errors:?}");
    let dropped = (extracted.len() - in_stock.len()) + (valid.len() - brands.len());
    assert_eq!(stats["items_dropped"].as_u64(), Some(dropped as u64));
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_given_on_the_command_line_win_over_settings_even_at_their_defaults() {
    let site = TestSite::start(SiteConfig {
        pages: 40,
        fanout: 6,
        latency: Some(std::time::Duration::from_millis(30)),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spider = dir.path().join("s.toml");
    let settings_output = dir.path().join("from-settings.jsonl");
    std::fs::write(
        &spider,
        format!(
            r#"name = "s"
start_urls = ["{}/"]
[[follow]]
pattern = "/p/"
[items.page]
match = "/p/"
[items.page.fields]
title = {{ selector = "title" }}
[settings]
per_host = 8
concurrency = 8
output = "{}"
"#,
            site.base_url(),
            settings_output.display()
        ),
    )
    .unwrap();
    // `-o -` and `--per-host 2` are the defaults, given explicitly.
    let out = tokio::task::spawn_blocking(move || {
        trawl()
            .arg("run")
            .arg(&spider)
            .args(["-o", "-", "--per-host", "2", "-q"])
            .arg("--errors")
            .arg(dir.path().join("errors.jsonl"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(items > 10, "items go to stdout: {items}");
    assert!(!settings_output.exists(), "settings.output was not used");
    let max = site
        .stats()
        .hosts
        .values()
        .map(|h| h.max_concurrency)
        .max()
        .unwrap();
    assert!(max <= 2, "--per-host 2 holds: {max} at once");
}
