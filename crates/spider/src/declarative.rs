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
//! Everything is checked before a crawl starts: a TOML mistake, an unknown
//! key, an invalid CSS selector or regex is reported with the file, line and
//! column and what was expected.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use regex::Regex;
use scraper::{Html, Selector};
use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;
use trawl_core::{Item, Request, Url, parse_canonical};
use trawl_extract::select::{CompiledRules, FieldRule, FieldType, Source};
use trawl_extract::{readable, structured};

use crate::spider::{Output, Response, Spider};

/// A spider file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum SpiderFileError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpiderFile {
    name: String,
    #[serde(default)]
    start_urls: Vec<Spanned<String>>,
    #[serde(default)]
    follow: Vec<FollowSpec>,
    pagination: Option<FollowSpec>,
    #[serde(default)]
    items: BTreeMap<String, ItemSpec>,
    #[serde(default)]
    settings: Settings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowSpec {
    selector: Option<Spanned<String>>,
    pattern: Option<Spanned<String>>,
    callback: Option<Spanned<String>>,
    max_depth: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemSpec {
    #[serde(rename = "match")]
    url_match: Option<Spanned<String>>,
    #[serde(default)]
    extractors: Vec<Spanned<String>>,
    #[serde(default)]
    /// In file order: items keep the fields in the order they are written.
    fields: indexmap::IndexMap<String, Spanned<FieldSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldSpec {
    selector: String,
    attr: Option<String>,
    #[serde(default)]
    html: bool,
    regex: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    required: bool,
    default: Option<toml::Value>,
}

/// Crawl settings a spider file may carry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub concurrency: Option<usize>,
    pub per_host: Option<usize>,
    /// e.g. "500ms".
    pub delay: Option<String>,
    /// host, domain, prefix or any.
    pub scope: Option<String>,
    pub max_depth: Option<u32>,
    pub max_pages: Option<u64>,
    pub output: Option<String>,
    /// Where error records go (required fields missing).
    pub errors: Option<String>,
    pub obey_robots: Option<bool>,
    /// Also start from the sitemaps listed in robots.txt (or /sitemap.xml).
    pub sitemaps: Option<bool>,
}

/// Built-in extractors an item rule may ask for.
const EXTRACTORS: &[&str] = &[
    "json_ld",
    "opengraph",
    "twitter",
    "meta",
    "microdata",
    "main_text",
    "markdown",
    "links",
    "images",
];

struct Follow {
    selector: Option<Selector>,
    pattern: Option<Regex>,
    callback: Option<String>,
    max_depth: Option<u32>,
}

struct ItemRule {
    name: String,
    url_match: Option<Regex>,
    extractors: Vec<String>,
    fields: CompiledRules,
}

/// A spider built from a TOML file. See the module documentation.
pub struct DeclarativeSpider {
    name: String,
    start_urls: Vec<Url>,
    follow: Vec<Follow>,
    pagination: Option<Follow>,
    items: Vec<ItemRule>,
    settings: Settings,
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

impl DeclarativeSpider {
    /// Read and check a spider file.
    pub fn from_file(path: &Path) -> Result<DeclarativeSpider, SpiderFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpiderFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_str(&path.display().to_string(), &text)
    }

    /// Parse and check spider source `text`; `path` names it in errors.
    pub fn from_str(path: &str, text: &str) -> Result<DeclarativeSpider, SpiderFileError> {
        let invalid = |span: Option<Range<usize>>, message: String| {
            let (line, column) = span.map_or((1, 1), |s| line_col(text, s.start));
            SpiderFileError::Invalid {
                path: path.to_string(),
                line,
                column,
                message,
            }
        };
        let file: SpiderFile =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_string()))?;

        let mut start_urls = Vec::new();
        for u in &file.start_urls {
            match Url::parse(u.get_ref()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => start_urls.push(url),
                _ => {
                    return Err(invalid(
                        Some(u.span()),
                        format!("start URL {:?} is not an http(s) URL", u.get_ref()),
                    ));
                }
            }
        }
        if start_urls.is_empty() {
            return Err(invalid(
                None,
                "expected at least one URL in `start_urls`".into(),
            ));
        }

        let compile_follow = |f: &FollowSpec| -> Result<Follow, SpiderFileError> {
            let selector = match &f.selector {
                Some(s) => Some(Selector::parse(s.get_ref()).map_err(|e| {
                    invalid(
                        Some(s.span()),
                        format!("invalid CSS selector {:?}: {e}", s.get_ref()),
                    )
                })?),
                None => None,
            };
            let pattern = match &f.pattern {
                Some(p) => Some(Regex::new(p.get_ref()).map_err(|e| {
                    invalid(
                        Some(p.span()),
                        format!("invalid regex {:?}: {e}", p.get_ref()),
                    )
                })?),
                None => None,
            };
            if selector.is_none() && pattern.is_none() {
                return Err(invalid(
                    None,
                    "a follow rule needs `selector` or `pattern`".into(),
                ));
            }
            if let Some(cb) = &f.callback
                && !file.items.contains_key(cb.get_ref())
            {
                return Err(invalid(
                    Some(cb.span()),
                    format!(
                        "callback {:?} names no [items.{}] rule",
                        cb.get_ref(),
                        cb.get_ref()
                    ),
                ));
            }
            Ok(Follow {
                selector,
                pattern,
                callback: f.callback.as_ref().map(|c| c.get_ref().clone()),
                max_depth: f.max_depth,
            })
        };
        let follow = file
            .follow
            .iter()
            .map(&compile_follow)
            .collect::<Result<Vec<_>, _>>()?;
        let pagination = file.pagination.as_ref().map(&compile_follow).transpose()?;

        let mut items = Vec::new();
        for (name, spec) in &file.items {
            let url_match = match &spec.url_match {
                Some(m) => Some(Regex::new(m.get_ref()).map_err(|e| {
                    invalid(
                        Some(m.span()),
                        format!("invalid regex {:?}: {e}", m.get_ref()),
                    )
                })?),
                None => None,
            };
            for x in &spec.extractors {
                if !EXTRACTORS.contains(&x.get_ref().as_str()) {
                    return Err(invalid(
                        Some(x.span()),
                        format!(
                            "unknown extractor {:?}: expected one of {}",
                            x.get_ref(),
                            EXTRACTORS.join(", ")
                        ),
                    ));
                }
            }
            let mut rules = Vec::new();
            for (field, spec) in &spec.fields {
                let span = spec.span();
                let spec = spec.get_ref();
                let kind = match spec.kind.as_deref().unwrap_or("string") {
                    "string" => FieldType::String,
                    "number" => FieldType::Number,
                    "integer" => FieldType::Integer,
                    "bool" => FieldType::Bool,
                    "date" => FieldType::Date,
                    "list" => FieldType::List,
                    other => {
                        return Err(invalid(
                            Some(span),
                            format!(
                                "field `{field}`: unknown type {other:?}: expected string, number, integer, bool, date or list"
                            ),
                        ));
                    }
                };
                let source = match (&spec.attr, spec.html) {
                    (Some(a), _) => Source::Attr(a.clone()),
                    (None, true) => Source::Html,
                    (None, false) => Source::Text,
                };
                let default = spec
                    .default
                    .clone()
                    .and_then(|v| serde_json::to_value(v).ok());
                let rule = FieldRule {
                    name: field.clone(),
                    selector: spec.selector.clone(),
                    source,
                    regex: spec.regex.clone(),
                    kind,
                    required: spec.required,
                    default,
                };
                // Compile one by one so an error points at its field.
                CompiledRules::compile(std::slice::from_ref(&rule))
                    .map_err(|e| invalid(Some(span.clone()), e.to_string()))?;
                rules.push(rule);
            }
            let fields =
                CompiledRules::compile(&rules).map_err(|e| invalid(None, e.to_string()))?;
            items.push(ItemRule {
                name: name.clone(),
                url_match,
                extractors: spec
                    .extractors
                    .iter()
                    .map(|x| x.get_ref().clone())
                    .collect(),
                fields,
            });
        }
        Ok(DeclarativeSpider {
            name: file.name,
            start_urls,
            follow,
            pagination,
            items,
            settings: file.settings,
        })
    }

    /// Names of the item rules (`[items.NAME]`).
    pub fn item_rule_names(&self) -> Vec<String> {
        self.items.iter().map(|r| r.name.clone()).collect()
    }

    /// The crawl settings the file carries.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Which item rules apply to a response (by callback or URL match).
    fn rules_for<'a>(&'a self, response: &Response<'_>) -> impl Iterator<Item = &'a ItemRule> {
        let callback = response.request.callback.clone();
        let url = response.url.as_str().to_string();
        self.items.iter().filter(move |r| {
            callback.as_deref() == Some(r.name.as_str())
                || r.url_match.as_ref().is_some_and(|m| m.is_match(&url))
        })
    }

    /// Links a follow rule picks from a page, as requests.
    fn follow_links(
        &self,
        rule: &Follow,
        doc: &Html,
        response: &Response<'_>,
        out: &mut Vec<Request>,
    ) {
        if rule
            .max_depth
            .is_some_and(|max| response.request.depth >= max)
        {
            return;
        }
        let referrer: std::sync::Arc<str> = std::sync::Arc::from(response.url.as_str());
        let any = Selector::parse("a[href], area[href]").ok();
        let selector = rule.selector.as_ref().or(any.as_ref());
        let Some(selector) = selector else { return };
        for el in doc.select(selector) {
            let Some(href) = el.value().attr("href") else {
                continue;
            };
            let Some(url) = parse_canonical(Some(response.url), href) else {
                continue;
            };
            if rule
                .pattern
                .as_ref()
                .is_some_and(|p| !p.is_match(url.as_str()))
            {
                continue;
            }
            let mut req = Request::child_of(url, response.request.depth, referrer.clone());
            req.callback = rule.callback.clone();
            out.push(req);
        }
    }
}

impl Spider for DeclarativeSpider {
    fn name(&self) -> &str {
        &self.name
    }

    fn start_urls(&self) -> Vec<Url> {
        self.start_urls.clone()
    }

    fn parse(&self, response: &Response<'_>) -> Output {
        let doc = Html::parse_document(response.text);
        let mut out = Output::default();
        for rule in &self.follow {
            self.follow_links(rule, &doc, response, &mut out.requests);
        }
        if let Some(rule) = &self.pagination {
            let before = out.requests.len();
            self.follow_links(rule, &doc, response, &mut out.requests);
            // The next page is parsed like the one it came from.
            for req in &mut out.requests[before..] {
                req.callback = rule
                    .callback
                    .clone()
                    .or_else(|| response.request.callback.clone());
            }
        }
        for rule in self.rules_for(response) {
            let extracted = rule.fields.extract(&doc);
            if !extracted.missing_required.is_empty() {
                for field in &extracted.missing_required {
                    let mut e = Map::new();
                    e.insert("url".into(), response.url.as_str().into());
                    e.insert("rule".into(), rule.name.clone().into());
                    e.insert("field".into(), field.clone().into());
                    e.insert("error".into(), "required field missing".into());
                    out.errors.push(Item(e));
                }
                continue;
            }
            let mut fields = Map::new();
            fields.insert("url".into(), response.url.as_str().into());
            fields.insert("_rule".into(), rule.name.clone().into());
            fields.extend(extracted.fields);
            for x in &rule.extractors {
                let value = match x.as_str() {
                    "json_ld" => Value::Array(structured::json_ld(&doc)),
                    "opengraph" => Value::Object(structured::opengraph(&doc)),
                    "twitter" => Value::Object(structured::twitter(&doc)),
                    "meta" => Value::Object(structured::meta(&doc)),
                    "microdata" => Value::Array(structured::microdata(&doc)),
                    "main_text" => readable::main_text(response.text).into(),
                    "markdown" => readable::main_markdown(response.text).into(),
                    "links" => readable::links(&doc, response.url).into(),
                    "images" => readable::images(&doc, response.url).into(),
                    _ => continue,
                };
                fields.insert(x.clone(), value);
            }
            out.items.push(Item(fields));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match DeclarativeSpider::from_str("s.toml", text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
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
        let out = spider.parse(&Response {
            request: &req,
            url: &list_url,
            status: 200,
            content_type: None,
            text: html,
        });
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
        let out = spider.parse(&Response {
            request: &ireq,
            url: &item_url,
            status: 200,
            content_type: None,
            text: "<h1>Lamp</h1><span class=price>$1,234.50</span>",
        });
        assert_eq!(out.items.len(), 1);
        assert_eq!(out.items[0].0["price"], 1234.5);
        assert_eq!(out.items[0].0["name"], "Lamp");
        let out = spider.parse(&Response {
            request: &ireq,
            url: &item_url,
            status: 200,
            content_type: None,
            text: "<h1>Lamp</h1>",
        });
        assert!(out.items.is_empty());
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].0["field"], "price");
    }
}
