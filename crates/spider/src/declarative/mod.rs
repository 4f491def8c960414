//! Declarative spiders: a TOML file that says where to start, which links
//! to follow, and which fields to extract from which pages.
//!
//! ```toml
//! name = "shop"
//! start_urls = ["https://example.com/shop/"]
//!
//! [[follow]]                      # links to follow, by CSS selector or URL regex
//! selector = "a.product-link"
//! callback = "product"            # the item rule for the pages it reaches
//!
//! [pagination]                    # the "next page" link of listings
//! selector = "a.next"
//!
//! [items.product]
//! match = "/shop/product/\\d+$"   # or reached through a rule's callback
//! extractors = ["json_ld", "opengraph"]
//! [items.product.fields]
//! name  = { selector = "h1.product-title" }
//! price = { selector = "span.price", type = "number", required = true }
//! tags  = { selector = "ul.tags li", type = "list" }
//! image = { selector = "img", attr = "src" }
//!
//! [settings]                      # crawl settings (the command line wins)
//! concurrency = 16
//! ```
//!
//! # Proxy pools and request headers per rule and per host
//!
//! `[settings] proxies` is the crawl's default pool. Named pools serve
//! some hosts, or the requests some rules make:
//!
//! ```toml
//! [proxy_pools.residential]
//! proxies = ["socks5://user:pass@10.0.0.7:1080", "http://10.0.0.8:3128"]
//! strategy = "least-latency"      # default: settings.proxy_strategy
//! hosts = ["*.shop.example"]      # requests to these hosts use this pool
//!
//! [settings.host_pools]           # more host rules: pattern = pool
//! "static.example" = "direct"     # "direct": no proxy; "default": settings.proxies
//!
//! [[follow]]
//! selector = "a.product-link"
//! callback = "product"
//! proxy_pool = "residential"      # the pages this rule finds go through it
//! headers = { Referer = "https://shop.example/", X-Requested-With = "XMLHttpRequest" }
//! ```
//!
//! A request uses its rule's pool, else the first matching host rule
//! (`hosts` of the pools in file order, then `[settings.host_pools]`),
//! else the default pool. A rule's headers go with the requests it makes
//! (and are kept with them in the frontier, so a resumed or distributed
//! crawl sends them too), over `[settings] headers` of the same name. The
//! pagination rule passes on the pool and headers of the page it is on
//! unless it sets its own.
//!
//! # Item pipeline
//!
//! `[[pipeline]]` tables are the stages every item goes through before it
//! is written, in the order they are written (see [`trawl_pipeline`]). Each
//! has a `type`, optionally a `name` (for stats and error records; default
//! e.g. `"validate[1]"`, the type and the stage's index from 0) and
//! `rules = ["product", …]` to look only at items of those item rules (the
//! others pass untouched). A stage stops an item by dropping it or by
//! finding it invalid; an invalid item becomes an error record
//! (`{"url", "rule", "stage", "field", "error"}`) for the error output.
//!
//! ```toml
//! [[pipeline]]
//! type = "transform"              # operations, in the order written
//! rename = { title = "name" }     # keeps the field's position
//! trim = ["name"]                 # also lowercase, uppercase = [fields]
//! replace = { sku = { pattern = "\\s+", with = "" } }
//! split = { tags = "," }          # "a, b" → ["a", "b"]; join = { f = ", " } undoes it
//! to_number = ["price"]           # "$1,234.50" → 1234.5, junk → null
//! default = { currency = "EUR" }  # when missing or null; set = {..} always
//! remove = ["debug"]
//!
//! [[pipeline]]
//! type = "validate"
//! rules = ["product"]
//! required = ["name", "price"]    # present and not null
//! [pipeline.fields.price]         # checks of one field, skipped when it is absent
//! type = "number"                 # string, number, integer, bool, array, object
//! min = 0                         # max = ..; numbers
//! [pipeline.fields.sku]
//! pattern = "^[A-Z0-9-]+$"        # a regex the string must match
//! max_len = 32                    # min_len = ..; characters, or array elements
//! [pipeline.fields.currency]
//! one_of = ["EUR", "USD"]
//!
//! [[pipeline]]
//! type = "drop"                   # drop items for which the condition holds
//! field = "stock"
//! equals = "sold out"             # or missing = true, empty = true,
//!                                 # matches = "regex", lt = 1, gt = 1000
//!
//! [[pipeline]]
//! type = "dedupe"                 # keep the first item of each key
//! key = ["sku"]                   # one or more fields; "_rule" keeps types apart
//! ```
//!
//! Dedupe remembers keys in memory for one crawl in one process; across
//! resumes and distributed workers, the PostgreSQL sink's upsert is what
//! deduplicates.
//!
//! Everything is checked before a crawl starts: a TOML mistake, an unknown
//! key, an invalid CSS selector or regex, a stage's `rules` naming no item
//! rule is reported with the file, line and column and what was expected.

mod compile;
mod file;
mod runtime;

use std::path::Path;

use trawl_core::Url;
use trawl_pipeline::Pipeline;

pub use file::SpiderFileError;
use runtime::{Follow, ItemRule};

/// A spider built from a TOML file. See the module documentation.
pub struct DeclarativeSpider {
    /// The crawl-wide `render`.
    render: Option<trawl_core::RenderSpec>,
    name: String,
    start_urls: Vec<Url>,
    follow: Vec<Follow>,
    pagination: Option<Follow>,
    items: Vec<ItemRule>,
    /// `[settings] sitemaps = true`: the crawl also starts from sitemaps.
    sitemaps: bool,
    pipeline: Pipeline,
    sinks: Vec<trawl_sink::SinkSpec>,
    /// The `[proxy_pools]` tables; their `hosts` are in `host_pools`.
    proxy_pools: Vec<trawl_fetch::proxy::NamedPool>,
    host_pools: Vec<trawl_fetch::proxy::HostRule>,
}
impl DeclarativeSpider {
    /// Read and check a spider file.
    /// What `trawl check` warns about: item rules that can apply to no
    /// page (no `match` and no follow rule's `callback` names them, or a
    /// `match` with nothing to reach pages beyond the start URLs, which it
    /// does not match), and start URLs that no rule does anything with.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let rules = self.follow.iter().chain(self.pagination.as_ref());
        let callbacks: Vec<&str> = rules.filter_map(|f| f.callback.as_deref()).collect();
        let goes_on = !self.follow.is_empty() || self.pagination.is_some() || self.sitemaps;
        for rule in &self.items {
            let called = callbacks.contains(&rule.name.as_str());
            match &rule.url_match {
                None if !called => out.push(format!(
                    "item rule `{}` applies to no page: it has no `match`, and no follow rule names it as `callback`",
                    rule.name
                )),
                Some(re)
                    if !called
                        && !goes_on
                        && !self.start_urls.iter().any(|u| re.is_match(u.as_str())) =>
                {
                    out.push(format!(
                        "item rule `{}` applies to no page: its `match` fits no start URL, and no follow rule (or sitemap) leads anywhere else",
                        rule.name
                    ))
                }
                _ => {}
            }
        }
        if self.follow.is_empty() && self.pagination.is_none() {
            for url in &self.start_urls {
                let matched = self.items.iter().any(|r| {
                    r.url_match
                        .as_ref()
                        .is_some_and(|re| re.is_match(url.as_str()))
                });
                if !matched {
                    out.push(format!(
                        "start URL {url} is handled by no rule: no item rule matches it and there is no follow rule to take links from it"
                    ));
                }
            }
        }
        out
    }

    pub fn from_file(path: &Path) -> Result<DeclarativeSpider, SpiderFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpiderFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_str(&path.display().to_string(), &text)
    }

    /// Parse and check spider source `text`; `path` names it in errors.
    pub fn from_str(path: &str, text: &str) -> Result<DeclarativeSpider, SpiderFileError> {
        compile::compile(path, text)
    }

    /// The file's crawl-wide `render`, if it has one.
    pub fn render(&self) -> Option<&trawl_core::RenderSpec> {
        self.render.as_ref()
    }

    /// Whether any page of this spider may be rendered (the crawl needs a
    /// browser).
    pub fn renders(&self) -> bool {
        let renders = |s: &trawl_core::RenderSpec| s.mode != trawl_core::RenderMode::Never;
        self.render.as_ref().is_some_and(renders)
            || self
                .follow
                .iter()
                .chain(&self.pagination)
                .any(|f| f.render.as_deref().is_some_and(renders))
    }

    /// The `[proxy_pools]` tables, in file order.
    pub fn proxy_pools(&self) -> &[trawl_fetch::proxy::NamedPool] {
        &self.proxy_pools
    }

    /// Host rules: the pools' `hosts` in file order (`[settings]
    /// host_pools` are settings, added by `trawl-settings`).
    pub fn host_pools(&self) -> &[trawl_fetch::proxy::HostRule] {
        &self.host_pools
    }

    /// Names of the item rules (`[items.NAME]`).
    pub fn item_rule_names(&self) -> Vec<String> {
        self.items.iter().map(|r| r.name.clone()).collect()
    }

    /// Each item rule's fields with their declared types ("text", "number",
    /// "integer", "bool", "date", "list"; "json" for extractors), in file
    /// order: table columns and CSV headers are made from them.
    pub fn item_schemas(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.items
            .iter()
            .map(|r| (r.name.clone(), r.schema.clone()))
            .collect()
    }

    /// What the file adds to a crawl's settings (its proxy pools, host
    /// rules, rendering and outputs).
    pub fn parts(&self) -> trawl_settings::SpiderParts {
        trawl_settings::SpiderParts {
            proxy_pools: self.proxy_pools().to_vec(),
            host_rules: self.host_pools().to_vec(),
            render: self.render().cloned(),
            renders: self.renders(),
            sinks: self.sinks(),
        }
    }

    /// The outputs the file's `[[sinks]]` tables ask for.
    pub fn sinks(&self) -> Vec<trawl_sink::SinkSpec> {
        self.sinks.clone()
    }

    /// The item pipeline of the `[[pipeline]]` stages (empty without any).
    ///
    /// Built once when the file is loaded: every call returns a clone of
    /// the same pipeline, sharing its state (dedupe's seen keys) and its
    /// counters, so one spider serves one crawl; load the file again for a
    /// fresh one.
    pub fn pipeline(&self) -> Pipeline {
        self.pipeline.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;
    use trawl_core::spider::{Output, Response, Spider};
    use trawl_core::{Item, Request};

    use super::*;

    /// What `spider` makes of `html` fetched for `request` (status 200).
    fn parse_page(spider: &DeclarativeSpider, request: &Request, html: &str) -> Output {
        spider.parse(&Response {
            request,
            url: &request.url,
            status: 200,
            content_type: None,
            text: html,
        })
    }

    fn err(text: &str) -> String {
        match DeclarativeSpider::from_str("s.toml", text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn render_rules_are_checked_and_go_on_requests() {
        let base = "name = \"t\"\nstart_urls = [\"https://a.example/\"]\n\n[[follow]]\nselector = \"a\"\ncallback = \"p\"\nRENDER\n\n[items.p]\nfields = { n = { selector = \"h1.n\", required = true } }\n";
        let with = |r: &str| base.replace("RENDER", r);
        let e = err(&with("render = \"sometimes\""));
        assert!(
            e.starts_with("s.toml:7:") && e.contains("unknown render mode"),
            "{e}"
        );
        let e = err(&with(
            "render = { mode = \"always\", wait = [{ selector = \"a[\" }] }",
        ));
        assert!(
            e.starts_with("s.toml:7:") && e.contains("invalid CSS selector `a[`"),
            "{e}"
        );
        let e = err(&with(
            "render = { mode = \"always\", wait = [{ selector = \"a\", js = \"1\" }] }",
        ));
        assert!(e.contains("exactly one"), "{e}");
        let spider = DeclarativeSpider::from_str("t.toml", &with("render = \"auto\"")).unwrap();
        assert!(spider.renders());
        let page = Request::seed(Url::parse("https://a.example/").unwrap());
        let out = parse_page(&spider, &page, "<a href=\"/p/1\">1</a>");
        let spec = out.requests[0].render.as_deref().unwrap();
        assert_eq!(spec.mode, trawl_core::RenderMode::Auto);
        // auto looks for the callback's required fields.
        assert_eq!(spec.require, vec!["h1.n".to_string()]);
        let plain = DeclarativeSpider::from_str("t.toml", &with("")).unwrap();
        assert!(!plain.renders());
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = err("name = \"x\"\nstart_urls = [\"http://e.com/\"]\nbogus = 1\n");
        assert!(e.starts_with("s.toml:3:1: unknown field `bogus`"), "{e}");
        let e = err(
            "name = \"x\"\nstart_urls = [\"http://e.com/\"]\n[items.p.fields]\nprice = { selector = \"span[\" }\n",
        );
        assert!(e.starts_with("s.toml:4:9:"), "{e}");
        assert!(e.contains("field `price`") && e.contains("selector"), "{e}");
        let e = err(
            "name = \"x\"\nstart_urls = [\"http://e.com/\"]\n[items.p]\nmatch = \"(unclosed\"\n",
        );
        assert!(e.starts_with("s.toml:4:9: invalid regex"), "{e}");
        let e = err(
            "name = \"x\"\nstart_urls = [\"http://e.com/\"]\n[[follow]]\nselector = \"a\"\ncallback = \"nope\"\n",
        );
        assert!(e.starts_with("s.toml:5:12: callback \"nope\""), "{e}");
        let e = err("name = \"x\"\nstart_urls = [\"ftp://e.com/\"]\n");
        assert!(e.starts_with("s.toml:2:15: start URL"), "{e}");
        let e = err("name = \"x\"\nstart_urls = [\"http://e.com/\"\n");
        assert!(e.starts_with("s.toml:2:"), "{e}");
        let e = err(
            "name = \"x\"\nstart_urls = [\"http://e.com/\"]\n[items.p.fields]\nn = { selector = \"a\", type = \"money\" }\n",
        );
        assert!(e.contains("unknown type \"money\""), "{e}");
    }

    #[test]
    fn parses_items_follows_and_errors() {
        let spider = DeclarativeSpider::from_str(
            "s.toml",
            r#"
name = "t"
start_urls = ["http://e.com/list"]
[[follow]]
selector = "a.item"
callback = "item"
[pagination]
selector = "a.next"
[items.item.fields]
name = { selector = "h1" }
price = { selector = ".price", type = "number", required = true }
"#,
        )
        .unwrap();
        let list_url = Url::parse("http://e.com/list").unwrap();
        let req = Request::seed(list_url.clone());
        let html = r#"<a class="item" href="/i/1">1</a><a class="item" href="/i/2">2</a><a class="next" href="/list?page=2">next</a>"#;
        let out = parse_page(&spider, &req, html);
        let urls: Vec<(String, Option<String>)> = out
            .requests
            .iter()
            .map(|r| (r.url.to_string(), r.callback.clone()))
            .collect();
        assert_eq!(
            urls,
            vec![
                ("http://e.com/i/1".to_string(), Some("item".to_string())),
                ("http://e.com/i/2".to_string(), Some("item".to_string())),
                ("http://e.com/list?page=2".to_string(), None),
            ]
        );
        assert!(out.items.is_empty());

        let item_url = Url::parse("http://e.com/i/1").unwrap();
        let mut ireq = Request::seed(item_url.clone());
        ireq.callback = Some("item".into());
        let out = parse_page(
            &spider,
            &ireq,
            "<h1>Lamp</h1><span class=price>$1,234.50</span>",
        );
        assert_eq!(out.items.len(), 1);
        assert_eq!(out.items[0].0["price"], 1234.5);
        assert_eq!(out.items[0].0["name"], "Lamp");
        let out = parse_page(&spider, &ireq, "<h1>Lamp</h1>");
        assert!(out.items.is_empty());
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].0["field"], "price");
    }

    /// The items a spider makes of one page.
    fn items_of(spider: &DeclarativeSpider, url: &str, html: &str) -> Vec<Item> {
        let url = Url::parse(url).unwrap();
        let req = Request::seed(url.clone());
        let out = parse_page(spider, &req, html);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        out.items
    }

    #[test]
    fn module_doc_examples_load() {
        let mut blocks = Vec::new();
        let mut block: Option<String> = None;
        for line in include_str!("mod.rs").lines() {
            let Some(doc) = line.strip_prefix("//!") else {
                continue;
            };
            let doc = doc.strip_prefix(' ').unwrap_or(doc);
            match (&mut block, doc) {
                (None, "```toml") => block = Some(String::new()),
                (Some(_), "```") => blocks.extend(block.take()),
                (Some(b), line) => {
                    b.push_str(line);
                    b.push('\n');
                }
                (None, _) => {}
            }
        }
        assert_eq!(blocks.len(), 3);
        let spider = DeclarativeSpider::from_str("doc.toml", &blocks.concat()).unwrap();
        assert_eq!(
            spider.pipeline().stage_names(),
            ["transform[0]", "validate[1]", "drop[2]", "dedupe[3]"]
        );
        assert_eq!(spider.proxy_pools().len(), 1);
        // The pool's `hosts`; `[settings.host_pools]` is read by trawl-settings.
        assert_eq!(spider.host_pools().len(), 1);
    }

    const POOLS: &str = r#"
name = "t"
start_urls = ["http://e.com/list"]
[proxy_pools.res]
proxies = ["socks5://u:p@10.0.0.7:1080", "http://10.0.0.8:3128"]
strategy = "least-latency"
hosts = ["*.shop.test", "api.test:8080"]
[proxy_pools.dc]
proxies = ["http://10.0.0.9:3128"]
[[follow]]
selector = "a.item"
callback = "item"
proxy_pool = "res"
headers = { Referer = "http://e.com/", "X-Requested-With" = "XMLHttpRequest" }
[[follow]]
selector = "a.other"
[pagination]
selector = "a.next"
[items.item.fields]
name = { selector = "h1" }
"#;

    #[test]
    fn pools_host_rules_and_rule_headers_go_on_requests() {
        let spider = DeclarativeSpider::from_str("s.toml", POOLS).unwrap();
        let pools = spider.proxy_pools();
        assert_eq!(pools.len(), 2);
        assert_eq!(pools[0].name, "res");
        assert_eq!(pools[0].proxies.len(), 2);
        assert_eq!(
            pools[0].strategy,
            Some(trawl_fetch::proxy::Strategy::LeastLatency)
        );
        assert_eq!(pools[1].strategy, None);
        // Pools' hosts, in file order.
        let rules: Vec<(String, String)> = spider
            .host_pools()
            .iter()
            .map(|r| (r.pattern.to_string(), r.pool.clone()))
            .collect();
        let expected: Vec<(String, String)> = [("*.shop.test", "res"), ("api.test:8080", "res")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(rules, expected);

        let url = Url::parse("http://e.com/list").unwrap();
        let mut req = Request::seed(url.clone());
        req.proxy_pool = Some("dc".into());
        req.headers = Some(vec![("x-page".to_string(), "list".to_string())].into());
        let html = r#"<a class="item" href="/i/1">1</a><a class="other" href="/o/1">o</a><a class="next" href="/list?page=2">next</a>"#;
        let out = parse_page(&spider, &req, html);
        let by_url: BTreeMap<String, &Request> = out
            .requests
            .iter()
            .map(|r| (r.url.path().to_string(), r))
            .collect();
        let item = by_url["/i/1"];
        assert_eq!(item.proxy_pool.as_deref(), Some("res"));
        assert_eq!(
            item.own_headers(),
            [
                ("referer".to_string(), "http://e.com/".to_string()),
                ("x-requested-with".to_string(), "XMLHttpRequest".to_string()),
            ]
        );
        // A rule without pool or headers sets none.
        assert_eq!(by_url["/o/1"].proxy_pool, None);
        assert!(by_url["/o/1"].headers.is_none());
        // The next page keeps the page's own pool and headers.
        assert_eq!(by_url["/list"].proxy_pool.as_deref(), Some("dc"));
        assert_eq!(by_url["/list"].headers, req.headers);
    }

    #[test]
    fn pool_mistakes_name_line_and_column() {
        let bad = |from: &str, to: &str| err(&POOLS.replacen(from, to, 1));
        let e = bad("proxy_pool = \"res\"", "proxy_pool = \"rez\"");
        assert!(
            e.starts_with(
                "s.toml:13:14: unknown proxy pool \"rez\" (known: default, direct, res, dc)"
            ),
            "{e}"
        );
        let e = bad("\"http://10.0.0.8:3128\"", "\"ftp://10.0.0.8\"");
        assert!(e.starts_with("s.toml:5:42:"), "{e}");
        let e = bad("least-latency", "fastest");
        assert!(
            e.starts_with("s.toml:6:12:") && e.contains("unknown proxy strategy"),
            "{e}"
        );
        let e = bad("\"api.test:8080\"", "\"http://api.test/\"");
        assert!(
            e.starts_with("s.toml:7:25:") && e.contains("invalid host pattern"),
            "{e}"
        );
        let e = bad("[proxy_pools.dc]", "[proxy_pools.direct]");
        assert!(e.contains("reserved"), "{e}");
        let e = bad("proxies = [\"http://10.0.0.9:3128\"]", "proxies = []");
        assert!(e.contains("proxy pool \"dc\" has no proxies"), "{e}");
        let e = bad(
            "\"X-Requested-With\" = \"XMLHttpRequest\"",
            "\"X-Bad\" = \"a\\nb\"",
        );
        assert!(e.starts_with("s.toml:14:11:") && e.contains("x-bad"), "{e}");
    }

    #[test]
    fn pipeline_stages_run_on_items() {
        let spider = DeclarativeSpider::from_str(
            "s.toml",
            r#"
name = "t"
start_urls = ["http://e.com/"]
[items.product]
match = "/p/"
[items.product.fields]
name = { selector = "h1" }
price = { selector = ".price" }
sku = { selector = ".sku" }
[items.review]
match = "/r/"
[items.review.fields]
text = { selector = "p" }

[[pipeline]]
type = "transform"
to_number = ["price"]
lowercase = ["text"]

[[pipeline]]
type = "validate"
rules = ["product"]
required = ["name"]
[pipeline.fields.price]
type = "number"
min = 0

[[pipeline]]
type = "dedupe"
name = "unique-sku"
rules = ["product"]
key = ["sku"]
"#,
        )
        .unwrap();
        let pipeline = spider.pipeline();
        assert_eq!(
            pipeline.stage_names(),
            ["transform[0]", "validate[1]", "unique-sku"]
        );
        let product = |sku: &str, price: &str| {
            format!("<h1>Lamp</h1><span class=price>{price}</span><span class=sku>{sku}</span>")
        };
        let mut items = Vec::new();
        items.extend(items_of(
            &spider,
            "http://e.com/p/1",
            &product("L1", "$1,234.50"),
        ));
        items.extend(items_of(&spider, "http://e.com/p/2", &product("L1", "$9")));
        items.extend(items_of(&spider, "http://e.com/p/3", &product("L3", "-5")));
        items.extend(items_of(&spider, "http://e.com/r/1", "<p>Nice LAMP</p>"));
        items.extend(items_of(&spider, "http://e.com/r/2", "<p>Nice LAMP</p>"));
        assert_eq!(items.len(), 5);

        let out = pipeline.process(items);
        let kept: Vec<Value> = out.kept.into_iter().map(|i| Value::Object(i.0)).collect();
        assert_eq!(
            kept,
            vec![
                serde_json::json!({"url": "http://e.com/p/1", "_rule": "product",
                    "name": "Lamp", "price": 1234.5, "sku": "L1"}),
                // Reviews are not deduplicated: the stage is for products.
                serde_json::json!({"url": "http://e.com/r/1", "_rule": "review", "text": "nice lamp"}),
                serde_json::json!({"url": "http://e.com/r/2", "_rule": "review", "text": "nice lamp"}),
            ]
        );
        assert_eq!(out.dropped, 1);
        assert_eq!(out.invalid.len(), 1);
        assert_eq!(
            Value::Object(out.invalid[0].0.clone()),
            serde_json::json!({"url": "http://e.com/p/3", "rule": "product", "stage": "validate[1]",
                "field": "price", "error": "-5.0 is less than the minimum 0"})
        );
        let stats = pipeline.stats();
        assert_eq!(
            stats
                .iter()
                .map(|s| (s.seen, s.kept, s.dropped, s.invalid))
                .collect::<Vec<_>>(),
            [(5, 5, 0, 0), (5, 4, 0, 1), (4, 3, 1, 0)]
        );

        // Every call hands out the same pipeline: L1 is still known.
        let again = items_of(&spider, "http://e.com/p/4", &product("L1", "1"));
        assert_eq!(spider.pipeline().process(again).dropped, 1);
        assert_eq!(pipeline.stats()[2].dropped, 2);

        let plain = DeclarativeSpider::from_str(
            "s.toml",
            "name = \"x\"\nstart_urls = [\"http://e.com/\"]\n",
        )
        .unwrap();
        assert!(plain.pipeline().is_empty());
    }

    #[test]
    fn pipeline_errors_name_line_and_column() {
        let head = "name = \"x\"\nstart_urls = [\"http://e.com/\"]\n[items.p.fields]\nn = { selector = \"h1\" }\n";
        let pipeline_err = |stages: &str| err(&format!("{head}{stages}"));

        // Unknown stage type.
        let e = pipeline_err("[[pipeline]]\ntype = \"nope\"\n");
        assert!(
            e.starts_with("s.toml:6:8: unknown variant `nope`, expected one of `validate`, `drop`, `dedupe`, `transform`"),
            "{e}"
        );
        // No type.
        let e = pipeline_err("[[pipeline]]\nkey = [\"n\"]\n");
        assert!(e.starts_with("s.toml:5:1: missing field `type`"), "{e}");
        let e = pipeline_err(
            "[[pipeline]]\ntype = \"dedupe\"\nkey = [\"n\"]\n[[pipeline]]\nkey = [\"n\"]\n",
        );
        assert!(e.starts_with("s.toml:8:1: missing field `type`"), "{e}");
        // Unknown keys, in the stage and in a field's checks.
        let e = pipeline_err("[[pipeline]]\ntype = \"dedupe\"\nkey = [\"n\"]\nbogus = 1\n");
        assert!(e.starts_with("s.toml:8:1: unknown field `bogus`"), "{e}");
        let e = pipeline_err(
            "[[pipeline]]\ntype = \"validate\"\n[pipeline.fields.n]\nmin = 0\nmni = 1\n",
        );
        assert!(e.starts_with("s.toml:9:1: unknown field `mni`"), "{e}");
        let e = pipeline_err("[[pipeline]]\ntype = \"transform\"\nstrip = [\"n\"]\n");
        assert!(e.starts_with("s.toml:7:1: unknown field `strip`"), "{e}");
        // A value of the wrong type, and an unknown check type.
        let e = pipeline_err("[[pipeline]]\ntype = \"validate\"\nfields.n.min = \"x\"\n");
        assert!(
            e.starts_with("s.toml:7:16: invalid type: string \"x\""),
            "{e}"
        );
        let e = pipeline_err("[[pipeline]]\ntype = \"validate\"\nfields.n.type = \"money\"\n");
        assert!(e.starts_with("s.toml:7:17: unknown variant `money`"), "{e}");
        // In the second stage, and in an inline array.
        let e = pipeline_err(
            "[[pipeline]]\ntype = \"dedupe\"\nkey = [\"n\"]\n[[pipeline]]\ntype = \"dedupe\"\nkye = [\"n\"]\n",
        );
        assert!(e.starts_with("s.toml:10:1: unknown field `kye`"), "{e}");
        // (Before the first table header, or it would belong to that table.)
        let e = err(
            "name = \"x\"\nstart_urls = [\"http://e.com/\"]\npipeline = [{ type = \"dedupe\", key = [\"n\"] }, { type = \"dedupe\", kye = [\"n\"] }]\n",
        );
        assert!(e.starts_with("s.toml:3:66: unknown field `kye`"), "{e}");

        // Bad regexes point at the regex.
        let e = pipeline_err(
            "[[pipeline]]\ntype = \"validate\"\n[pipeline.fields.n]\npattern = \"([\"\n",
        );
        assert!(
            e.starts_with("s.toml:8:11: field `n`: invalid regex \"([\""),
            "{e}"
        );
        let e = pipeline_err(
            "[[pipeline]]\ntype = \"transform\"\nreplace = { n = { pattern = \"[a-\" } }\n",
        );
        assert!(
            e.starts_with("s.toml:7:29: replace `n`: invalid regex \"[a-\""),
            "{e}"
        );
        let e = pipeline_err("[[pipeline]]\ntype = \"drop\"\nfield = \"n\"\nmatches = \"a(\"\n");
        assert!(
            e.starts_with("s.toml:8:11: field `n`: invalid regex \"a(\""),
            "{e}"
        );
        // Other compile errors: at the key, or at the stage.
        let e = pipeline_err(
            "[[pipeline]]\ntype = \"dedupe\"\nkey = [\"n\"]\n[[pipeline]]\ntype = \"drop\"\nfield = \"n\"\nlt = 1\ngt = 2\n",
        );
        assert!(
            e.starts_with("s.toml:12:6: a drop stage takes one condition"),
            "{e}"
        );
        let e = pipeline_err("[[pipeline]]\ntype = \"transform\"\nname = \"t\"\n");
        assert!(
            e.starts_with("s.toml:5:1: a transform stage needs at least one operation"),
            "{e}"
        );
        // `rules` must name item rules.
        let e = pipeline_err(
            "[[pipeline]]\ntype = \"dedupe\"\nkey = [\"n\"]\nrules = [\"p\", \"q\"]\n",
        );
        assert!(
            e.starts_with("s.toml:8:15: rules: \"q\" names no [items.q] rule"),
            "{e}"
        );
    }
}

/// `docs/spider-file.md` documents every key of the file (read from the
/// code), and every example in it is a valid spider file.
#[cfg(test)]
mod reference {
    use serde::Deserialize;

    use super::file::{FieldSpec, FollowSpec, ItemSpec, PoolSpec, SpiderFile};
    use super::*;

    fn keys<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        let names = trawl_core::config::field_names::<T>();
        assert!(!names.is_empty());
        names
    }

    const DOC: &str = include_str!("../../../../docs/spider-file.md");

    /// The text of the section whose heading starts with `heading`.
    fn section(heading: &str) -> &'static str {
        let start = DOC
            .find(&format!("\n{heading}"))
            .unwrap_or_else(|| panic!("no section {heading:?} in docs/spider-file.md"));
        let rest = &DOC[start + 1..];
        let end = rest[1..].find("\n## ").map_or(rest.len(), |i| i + 1);
        &rest[..end]
    }

    #[test]
    fn reference_documents_every_key() {
        let sections: [(&str, Vec<&str>); 6] = [
            ("## Top level", keys::<SpiderFile>()),
            ("## `[[follow]]`", keys::<FollowSpec>()),
            ("## `[items.NAME]`", keys::<ItemSpec>()),
            ("### Field rules", keys::<FieldSpec>()),
            ("## `[proxy_pools.NAME]`", keys::<PoolSpec>()),
            ("## `render`", keys::<trawl_core::RenderSpec>()),
        ];
        for (heading, keys) in sections {
            let text = section(heading);
            for key in keys {
                assert!(
                    text.contains(&format!("| `{key}` |")),
                    "docs/spider-file.md: `{key}` is missing from the table under {heading:?}"
                );
            }
        }
    }

    #[test]
    fn check_warns_about_rules_that_reach_nothing() {
        let spider = |text: &str| DeclarativeSpider::from_str("t.toml", text).unwrap();
        let lonely = spider(
            "name = \"t\"\nstart_urls = [\"https://a.example/\"]\n\n[items.orphan]\nfields = { t = { selector = \"h1\" } }\n\n[items.deep]\nmatch = \"/deep/\"\nfields = { t = { selector = \"h1\" } }\n",
        );
        let warnings = lonely.warnings();
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        let has = |a: &str, b: &str| warnings.iter().any(|w| w.contains(a) && w.contains(b));
        assert!(has("`orphan`", "no `match`"), "{warnings:#?}");
        assert!(has("`deep`", "fits no start URL"), "{warnings:#?}");
        assert!(has("https://a.example/", "no rule"), "{warnings:#?}");
        // A follow rule reaches further pages and names its callback.
        let fine = spider(
            "name = \"t\"\nstart_urls = [\"https://a.example/\"]\n\n[[follow]]\nselector = \"a\"\ncallback = \"orphan\"\n\n[items.orphan]\nfields = { t = { selector = \"h1\" } }\n\n[items.deep]\nmatch = \"/deep/\"\nfields = { t = { selector = \"h1\" } }\n",
        );
        assert_eq!(fine.warnings(), Vec::<String>::new());
    }

    #[test]
    fn every_example_in_the_reference_is_a_valid_spider() {
        let mut examples = 0;
        for (i, block) in DOC.split("```toml\n").skip(1).enumerate() {
            let toml = &block[..block.find("```").expect("closed code block")];
            if let Err(error) = DeclarativeSpider::from_str(&format!("example {}", i + 1), toml) {
                panic!("docs/spider-file.md example {}: {error}\n{toml}", i + 1);
            }
            examples += 1;
        }
        assert!(examples >= 8, "{examples} examples");
    }
}
