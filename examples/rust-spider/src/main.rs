//! A spider written in Rust, the way Scrapy users write one in Python.
//!
//! It walks a shop's listing pages, follows product links, and yields a
//! typed `Product` item (serde) per product page. The engine does the rest:
//! politeness, retries, the CPU pool, backpressure, the JSONL output.
//!
//! ```sh
//! cargo run --release -p trawl-testsite -- --addr 127.0.0.1:8080 --shop &
//! cargo run --release -p trawl-example-spider -- http://127.0.0.1:8080/shop/ products.jsonl
//! ```

use std::sync::Arc;

use anyhow::Context;
use scraper::{Html, Selector};
use serde::Serialize;
use trawl_core::{CrawlStats, Item, Request, Sink, Url, parse_canonical};
use trawl_engine::{CrawlConfig, Engine, Shutdown};
use trawl_extract::select::{collapse_ws, parse_number};
use trawl_frontier::MemoryFrontier;
use trawl_sink::JsonlSink;
use trawl_spider::{Output, Response, Spider};

/// The item this spider produces.
#[derive(Debug, Serialize)]
pub struct Product {
    pub url: String,
    pub name: String,
    pub price: Option<f64>,
    pub sku: Option<String>,
}

/// Selectors are parsed once; the spider is shared by every parse thread.
pub struct ProductSpider {
    start: Url,
    product_link: Selector,
    next_page: Selector,
    title: Selector,
    price: Selector,
    sku: Selector,
}

fn selector(css: &str) -> anyhow::Result<Selector> {
    Selector::parse(css).map_err(|e| anyhow::anyhow!("selector {css:?}: {e}"))
}

impl ProductSpider {
    pub fn new(start: Url) -> anyhow::Result<Self> {
        Ok(ProductSpider {
            start,
            product_link: selector("a.product-link")?,
            next_page: selector("a.next")?,
            title: selector("h1.product-title")?,
            price: selector("span.price")?,
            sku: selector("span.sku")?,
        })
    }

    fn text(doc: &Html, sel: &Selector) -> Option<String> {
        doc.select(sel)
            .next()
            .map(|e| collapse_ws(&e.text().collect::<String>()))
    }
}

impl Spider for ProductSpider {
    fn name(&self) -> &str {
        "products"
    }

    fn start_urls(&self) -> Vec<Url> {
        vec![self.start.clone()]
    }

    fn parse(&self, response: &Response<'_>) -> Output {
        let doc = Html::parse_document(response.text);
        let mut out = Output::default();
        if response.url.path().starts_with("/shop/product/") {
            if let Some(name) = Self::text(&doc, &self.title) {
                let product = Product {
                    url: response.url.to_string(),
                    name,
                    price: Self::text(&doc, &self.price).and_then(|p| parse_number(&p)),
                    sku: Self::text(&doc, &self.sku),
                };
                if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(product) {
                    out.items.push(Item(map));
                }
            }
            return out;
        }
        // A listing: follow products and the next page.
        for sel in [&self.product_link, &self.next_page] {
            for a in doc.select(sel) {
                if let Some(url) = a
                    .value()
                    .attr("href")
                    .and_then(|h| parse_canonical(Some(response.url), h))
                {
                    out.requests.push(Request::child(url, response.request));
                }
            }
        }
        out
    }
}

/// Crawl from `start` with the spider, writing items to `output`.
pub async fn crawl(start: Url, output: &std::path::Path) -> anyhow::Result<u64> {
    let spider = Arc::new(ProductSpider::new(start.clone())?);
    let cfg = CrawlConfig {
        seeds: spider.start_urls(),
        concurrency: 16,
        ..CrawlConfig::default()
    };
    let frontier = Arc::new(MemoryFrontier::new(cfg.fetch.per_host));
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonlSink::open(output, false)?)];
    let engine = Engine::new(cfg, Arc::new(CrawlStats::default())).with_spider(spider, Vec::new());
    let report = engine.run(frontier, sinks, Shutdown::default()).await?;
    Ok(report.stats.items_written)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let start = args
        .get(1)
        .context("usage: trawl-example-spider START_URL [OUTPUT]")?;
    let start = Url::parse(start).with_context(|| format!("invalid URL {start:?}"))?;
    let output = std::path::PathBuf::from(args.get(2).map_or("products.jsonl", String::as_str));
    let n = crawl(start, &output).await?;
    eprintln!("{n} items written to {}", output.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_testsite::{SiteConfig, TestSite};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scrapes_every_product_of_the_test_shop() {
        let site = TestSite::start(SiteConfig {
            pages: 10,
            shop: true,
            shop_products: 30,
            ..Default::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("p.jsonl");
        let start = Url::parse(&site.url("/shop/")).unwrap();
        crawl(start, &out).await.unwrap();
        let items: Vec<serde_json::Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let products = site.site().products();
        assert_eq!(items.len(), products.len());
        for p in &products {
            let item = items
                .iter()
                .find(|i| i["url"].as_str().unwrap().ends_with(&p.path))
                .unwrap();
            assert_eq!(item["name"], p.name);
            assert!((item["price"].as_f64().unwrap() - p.price).abs() < 1e-9);
        }
        site.shutdown().await;
    }
}
