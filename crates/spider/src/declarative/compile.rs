//! From the file as written to a spider: each section is compiled and
//! checked on its own (start URLs, proxy pools, follow rules, item rules,
//! pipeline stages, render), and every mistake points at its line and
//! column.

use std::ops::Range;

use regex::Regex;
use scraper::Selector;
use toml::Spanned;
use trawl_core::Url;
use trawl_core::config::line_col;
use trawl_extract::select::{CompiledRules, FieldRule, FieldType, Source};
use trawl_fetch::proxy::{HostRule, NamedPool, RouteTable};
use trawl_pipeline::{Pipeline, compile as compile_stage};

use super::DeclarativeSpider;
use super::file::{
    FollowSpec, ItemSpec, SpiderFile, SpiderFileError, stage_error, stage_value_span,
};
use super::runtime::{Follow, ItemRule};

/// The selectors of a render spec, checked before the crawl starts.
fn check_render(spec: &trawl_core::RenderSpec) -> Result<(), String> {
    use trawl_core::render::{Step, Until};
    let mut selectors: Vec<&str> = spec.require.iter().map(String::as_str).collect();
    for w in &spec.wait {
        if let Until::Selector(s) = &w.until {
            selectors.push(s);
        }
    }
    for a in &spec.actions {
        match &a.step {
            Step::Click { selector, .. } | Step::Type { selector, .. } => selectors.push(selector),
            Step::WaitFor(s) => selectors.push(s),
            _ => {}
        }
    }
    for s in selectors {
        Selector::parse(s).map_err(|e| format!("render: invalid CSS selector `{s}`: {e}"))?;
    }
    Ok(())
}

/// The CSS selectors of an item rule's required fields.
fn required_css(item: &ItemSpec) -> Vec<String> {
    item.fields
        .values()
        .filter(|f| f.get_ref().required)
        .map(|f| f.get_ref().selector.clone())
        .filter(|s| Selector::parse(s).is_ok())
        .collect()
}

/// Built-in extractors an item rule may ask for.
const EXTRACTORS: &[&str] = trawl_extract::builtin::NAMES;

/// Compiles one file; `path` names it in errors.
struct Compiler<'a> {
    path: &'a str,
    text: &'a str,
    file: &'a SpiderFile,
}

/// Parse and check spider source `text`.
pub(super) fn compile(path: &str, text: &str) -> Result<DeclarativeSpider, SpiderFileError> {
    let located = |span: Option<Range<usize>>, message: String| invalid(path, text, span, message);
    let file: SpiderFile =
        toml::from_str(text).map_err(|e| match e.span().and_then(|at| stage_error(text, &at)) {
            Some((span, message)) => located(Some(span), message),
            None => located(e.span(), e.message().to_string()),
        })?;
    let c = Compiler {
        path,
        text,
        file: &file,
    };
    let start_urls = c.start_urls()?;
    let (proxy_pools, host_pools, routes) = c.proxy_pools()?;
    let follow = file
        .follow
        .iter()
        .map(|f| c.follow(f, &routes))
        .collect::<Result<Vec<_>, _>>()?;
    let pagination = file
        .pagination
        .as_ref()
        .map(|f| c.follow(f, &routes))
        .transpose()?;
    let items = c.items()?;
    let pipeline = c.pipeline()?;
    let render = c.render()?;
    Ok(DeclarativeSpider {
        render,
        name: file.name.clone(),
        start_urls,
        follow,
        pagination,
        items,
        sitemaps: file.settings.get("sitemaps") == Some(&toml::Value::Boolean(true)),
        pipeline,
        sinks: file.sinks.clone(),
        proxy_pools,
        host_pools,
    })
}

fn invalid(path: &str, text: &str, span: Option<Range<usize>>, message: String) -> SpiderFileError {
    let (line, column) = span.map_or((1, 1), |s| line_col(text, s.start));
    SpiderFileError::Invalid {
        path: path.to_string(),
        line,
        column,
        message,
    }
}

impl Compiler<'_> {
    fn invalid(&self, span: Option<Range<usize>>, message: String) -> SpiderFileError {
        invalid(self.path, self.text, span, message)
    }

    /// `start_urls`: at least one, each http(s).
    fn start_urls(&self) -> Result<Vec<Url>, SpiderFileError> {
        let mut start_urls = Vec::new();
        for u in &self.file.start_urls {
            match Url::parse(u.get_ref()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => start_urls.push(url),
                _ => {
                    return Err(self.invalid(
                        Some(u.span()),
                        format!("start URL {:?} is not an http(s) URL", u.get_ref()),
                    ));
                }
            }
        }
        if start_urls.is_empty() {
            return Err(self.invalid(None, "expected at least one URL in `start_urls`".into()));
        }
        Ok(start_urls)
    }

    /// `[proxy_pools]`: the pools, their `hosts` as host rules, and the
    /// route table that checks the pool names rules use.
    fn proxy_pools(&self) -> Result<(Vec<NamedPool>, Vec<HostRule>, RouteTable), SpiderFileError> {
        let mut proxy_pools = Vec::new();
        let mut host_pools = Vec::new();
        for (name, pool) in &self.file.proxy_pools {
            let pool = pool.get_ref();
            let mut proxies = Vec::new();
            for p in &pool.proxies {
                proxies.push(
                    trawl_fetch::proxy::ProxySpec::parse(p.get_ref())
                        .map_err(|e| self.invalid(Some(p.span()), e.to_string()))?,
                );
            }
            let strategy = match &pool.strategy {
                Some(s) => Some(s.get_ref().parse().map_err(
                    |e: trawl_fetch::proxy::UnknownStrategy| {
                        self.invalid(Some(s.span()), e.to_string())
                    },
                )?),
                None => None,
            };
            for h in &pool.hosts {
                let pattern: trawl_fetch::proxy::HostPattern =
                    h.get_ref()
                        .parse()
                        .map_err(|e: trawl_fetch::proxy::HostPatternError| {
                            self.invalid(Some(h.span()), e.to_string())
                        })?;
                host_pools.push(trawl_fetch::proxy::HostRule {
                    pattern,
                    pool: name.clone(),
                });
            }
            proxy_pools.push(trawl_fetch::proxy::NamedPool {
                name: name.clone(),
                proxies,
                strategy,
            });
        }
        // The downloader's own table checks the pools (reserved names, no
        // proxies) and resolves the names rules and hosts use.
        let routes = trawl_fetch::proxy::RouteTable::new(&proxy_pools, &[]).map_err(|e| {
            use trawl_fetch::proxy::RouteError::{Duplicate, Empty, Reserved};
            let span = match &e {
                Reserved { name } | Empty { name } | Duplicate { name } => {
                    self.file.proxy_pools.get(name).map(Spanned::span)
                }
                _ => None,
            };
            self.invalid(span, e.to_string())
        })?;
        Ok((proxy_pools, host_pools, routes))
    }

    /// One `[[follow]]` rule (or `[pagination]`).
    fn follow(&self, f: &FollowSpec, routes: &RouteTable) -> Result<Follow, SpiderFileError> {
        let selector =
            match &f.selector {
                Some(s) => Some(trawl_extract::css::parse(s.get_ref()).map_err(|e| {
                    self.invalid(Some(s.span()), format!("invalid CSS selector {e}"))
                })?),
                None => None,
            };
        let pattern = match &f.pattern {
            Some(p) => Some(Regex::new(p.get_ref()).map_err(|e| {
                self.invalid(
                    Some(p.span()),
                    format!("invalid regex {:?}: {e}", p.get_ref()),
                )
            })?),
            None => None,
        };
        if selector.is_none() && pattern.is_none() {
            return Err(self.invalid(None, "a follow rule needs `selector` or `pattern`".into()));
        }
        if let Some(cb) = &f.callback
            && !self.file.items.contains_key(cb.get_ref())
        {
            return Err(self.invalid(
                Some(cb.span()),
                format!(
                    "callback {:?} names no [items.{}] rule",
                    cb.get_ref(),
                    cb.get_ref()
                ),
            ));
        }
        if let Some(pool) = &f.proxy_pool {
            routes
                .group(pool.get_ref())
                .map_err(|e| self.invalid(Some(pool.span()), e.to_string()))?;
        }
        let mut headers = Vec::new();
        if let Some(table) = &f.headers {
            for (k, v) in table.get_ref() {
                headers.push(
                    trawl_fetch::identity::parse_header_line(&format!("{k}: {v}"))
                        .map_err(|e| self.invalid(Some(table.span()), e))?,
                );
            }
        }
        let render = f
            .render
            .as_ref()
            .map(|r| {
                let mut spec = r.get_ref().0.clone();
                check_render(&spec).map_err(|e| self.invalid(Some(r.span()), e))?;
                // `auto` looks for what the target rule requires.
                if spec.require.is_empty()
                    && let Some(cb) = &f.callback
                    && let Some(item) = self.file.items.get(cb.get_ref())
                {
                    spec.require = required_css(item);
                }
                Ok::<_, SpiderFileError>(std::sync::Arc::new(spec))
            })
            .transpose()?;
        Ok(Follow {
            selector,
            pattern,
            callback: f.callback.as_ref().map(|c| c.get_ref().clone()),
            max_depth: f.max_depth,
            proxy_pool: f.proxy_pool.as_ref().map(|p| p.get_ref().as_str().into()),
            headers: (!headers.is_empty()).then(|| headers.into()),
            render,
        })
    }

    /// `[items.NAME]` rules, their fields compiled one by one so an error
    /// points at its field.
    fn items(&self) -> Result<Vec<ItemRule>, SpiderFileError> {
        let mut items = Vec::new();
        for (name, spec) in &self.file.items {
            let url_match = match &spec.url_match {
                Some(m) => Some(Regex::new(m.get_ref()).map_err(|e| {
                    self.invalid(
                        Some(m.span()),
                        format!("invalid regex {:?}: {e}", m.get_ref()),
                    )
                })?),
                None => None,
            };
            for x in &spec.extractors {
                if !EXTRACTORS.contains(&x.get_ref().as_str()) {
                    return Err(self.invalid(
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
            let mut schema = Vec::new();
            for (field, spec) in &spec.fields {
                let span = spec.span();
                let spec = spec.get_ref();
                schema.push((
                    field.clone(),
                    spec.kind.clone().unwrap_or_else(|| "text".to_string()),
                ));
                let kind: FieldType =
                    spec.kind
                        .as_deref()
                        .unwrap_or("string")
                        .parse()
                        .map_err(|e| {
                            self.invalid(Some(span.clone()), format!("field `{field}`: {e}"))
                        })?;
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
                    .map_err(|e| self.invalid(Some(span.clone()), e.to_string()))?;
                rules.push(rule);
            }
            let fields =
                CompiledRules::compile(&rules).map_err(|e| self.invalid(None, e.to_string()))?;
            for x in &spec.extractors {
                schema.push((x.get_ref().clone(), "json".to_string()));
            }
            items.push(ItemRule {
                name: name.clone(),
                schema,
                url_match,
                extractors: spec
                    .extractors
                    .iter()
                    .map(|x| x.get_ref().clone())
                    .collect(),
                fields,
            });
        }
        Ok(items)
    }

    /// `[[pipeline]]` stages, in order.
    fn pipeline(&self) -> Result<Pipeline, SpiderFileError> {
        let mut pipeline = Pipeline::new();
        for (index, stage) in self.file.pipeline.iter().enumerate() {
            let spec = stage.get_ref();
            let at =
                |key: &[String]| stage_value_span(self.text, index, key).or(Some(stage.span()));
            for (i, rule) in spec.rules().iter().enumerate() {
                if !self.file.items.contains_key(rule) {
                    return Err(self.invalid(
                        at(&["rules".to_string(), i.to_string()]),
                        format!("rules: {rule:?} names no [items.{rule}] rule"),
                    ));
                }
            }
            let compiled =
                compile_stage(spec, index).map_err(|e| self.invalid(at(&e.key), e.message))?;
            pipeline.push(compiled);
        }
        Ok(pipeline)
    }

    /// The crawl-wide `render`.
    fn render(&self) -> Result<Option<trawl_core::RenderSpec>, SpiderFileError> {
        let render = match &self.file.render {
            Some(r) => {
                check_render(&r.get_ref().0).map_err(|e| self.invalid(Some(r.span()), e))?;
                Some(r.get_ref().0.clone())
            }
            None => None,
        };
        Ok(render)
    }
}
