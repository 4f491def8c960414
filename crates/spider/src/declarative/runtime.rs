//! A compiled spider at work on the parse pool: which rules apply to a
//! response, the items they extract, and the links they follow.

use regex::Regex;
use scraper::{Html, Selector};
use serde_json::Map;
use trawl_core::spider::{Output, Response, Spider};
use trawl_core::{Item, Request, Url, parse_canonical};
use trawl_extract::select::CompiledRules;

use super::DeclarativeSpider;

pub(super) struct Follow {
    pub(super) selector: Option<Selector>,
    pub(super) pattern: Option<Regex>,
    pub(super) callback: Option<String>,
    pub(super) max_depth: Option<u32>,
    /// Shared by every request the rule makes.
    pub(super) proxy_pool: Option<std::sync::Arc<str>>,
    pub(super) headers: Option<std::sync::Arc<[(String, String)]>>,
    pub(super) render: Option<std::sync::Arc<trawl_core::RenderSpec>>,
}

pub(super) struct ItemRule {
    pub(super) name: String,
    pub(super) url_match: Option<Regex>,
    pub(super) extractors: Vec<String>,
    pub(super) fields: CompiledRules,
    /// Field names and declared types, in file order, then the extractors.
    pub(super) schema: Vec<(String, String)>,
}
impl DeclarativeSpider {
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
            req.proxy_pool = rule.proxy_pool.clone();
            req.headers = rule.headers.clone();
            req.render = rule.render.clone();
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
                if rule.proxy_pool.is_none() {
                    req.proxy_pool = response.request.proxy_pool.clone();
                }
                if rule.headers.is_none() {
                    req.headers = response.request.headers.clone();
                }
                if rule.render.is_none() {
                    req.render = response.request.render.clone();
                }
            }
        }
        for rule in self.rules_for(response) {
            let extracted = rule.fields.extract_page(&doc, Some(response.text));
            if !extracted.missing_required.is_empty() {
                for field in &extracted.missing_required {
                    let mut e = Map::new();
                    e.insert("url".into(), response.url.as_str().into());
                    e.insert("rule".into(), rule.name.clone().into());
                    e.insert("field".into(), field.clone().into());
                    let why = extracted.warnings.iter().find(|w| &w.field == field);
                    let error = match why {
                        Some(w) => format!("required field: {}", w.reason),
                        None => "required field missing".to_string(),
                    };
                    e.insert("error".into(), error.into());
                    out.errors.push(Item(e));
                }
                continue;
            }
            let mut fields = Map::new();
            fields.insert("url".into(), response.url.as_str().into());
            fields.insert("_rule".into(), rule.name.clone().into());
            fields.extend(extracted.fields);
            if !extracted.warnings.is_empty() {
                // Fields found but not convertible are null; say why.
                fields.insert(
                    "_warnings".into(),
                    serde_json::to_value(&extracted.warnings).unwrap_or_default(),
                );
            }
            for x in &rule.extractors {
                if let Some(value) =
                    trawl_extract::builtin::run(x, &doc, response.text, response.url)
                {
                    fields.insert(x.clone(), value);
                }
            }
            out.items.push(Item(fields));
        }
        out
    }
}
