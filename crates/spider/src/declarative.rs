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

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use regex::Regex;
use scraper::{Html, Selector};
use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use trawl_core::{Item, Request, Url, parse_canonical};
use trawl_extract::select::{CompiledRules, FieldRule, FieldType, Source};
use trawl_extract::{readable, structured};
use trawl_pipeline::{
    DedupeSpec, DropSpec, Pipeline, StageSpec, TransformSpec, ValidateSpec, compile,
};

use trawl_core::spider::{Output, Response, Spider};

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
    /// Crawl settings: read by `trawl-settings` (the same keys as the
    /// command line's flags), not by the spider.
    #[serde(default)]
    settings: toml::Table,
    /// Item pipeline stages, in order.
    #[serde(default)]
    pipeline: Vec<Spanned<StageSpec>>,
    /// Outputs besides `-o` (see `trawl_sink::spec`).
    #[serde(default)]
    sinks: Vec<trawl_sink::SinkSpec>,
    /// Named proxy pools, in file order.
    #[serde(default)]
    proxy_pools: indexmap::IndexMap<String, Spanned<PoolSpec>>,
    /// How pages are rendered unless their rule says otherwise.
    render: Option<Spanned<RenderRule>>,
}

/// `render = "auto"`, or a table with `mode` and the options of
/// [`trawl_core::RenderSpec`].
#[derive(Debug)]
struct RenderRule(trawl_core::RenderSpec);

impl<'de> Deserialize<'de> for RenderRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        match value {
            toml::Value::String(mode) => mode
                .parse::<trawl_core::RenderMode>()
                .map(|m| RenderRule(trawl_core::RenderSpec::mode(m)))
                .map_err(serde::de::Error::custom),
            table @ toml::Value::Table(_) => trawl_core::RenderSpec::deserialize(table)
                .map(RenderRule)
                .map_err(|e| serde::de::Error::custom(format!("render: {}", e.message()))),
            other => Err(serde::de::Error::custom(format!(
                "render: expected \"never\", \"auto\", \"always\" or a table, found {}",
                other.type_str()
            ))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolSpec {
    proxies: Vec<Spanned<String>>,
    strategy: Option<Spanned<String>>,
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowSpec {
    selector: Option<Spanned<String>>,
    pattern: Option<Spanned<String>>,
    callback: Option<Spanned<String>>,
    max_depth: Option<u32>,
    /// A named pool (or "direct"/"default") for the requests it makes.
    proxy_pool: Option<Spanned<String>>,
    /// Headers of the requests it makes.
    headers: Option<Spanned<indexmap::IndexMap<String, String>>>,
    /// How the pages it finds are rendered.
    render: Option<Spanned<RenderRule>>,
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
    /// Shared by every request the rule makes.
    proxy_pool: Option<std::sync::Arc<str>>,
    headers: Option<std::sync::Arc<[(String, String)]>>,
    render: Option<std::sync::Arc<trawl_core::RenderSpec>>,
}

struct ItemRule {
    name: String,
    url_match: Option<Regex>,
    extractors: Vec<String>,
    fields: CompiledRules,
    /// Field names and declared types, in file order, then the extractors.
    schema: Vec<(String, String)>,
}

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

use trawl_core::config::line_col;

/// The span of a value inside the `index`th `[[pipeline]]` stage: `key`
/// walks tables by key and arrays by index (see
/// [`trawl_pipeline::CompileError::key`]).
fn stage_value_span(text: &str, index: usize, key: &[String]) -> Option<Range<usize>> {
    let doc = DeTable::parse(text).ok()?;
    let mut value = doc.get_ref().get("pipeline")?.get_ref().get(index)?;
    for k in key {
        value = match value.get_ref() {
            DeValue::Array(_) => value.get_ref().get(k.parse::<usize>().ok()?)?,
            _ => value.get_ref().get(k.as_str())?,
        };
    }
    Some(value.span())
}

/// A mistake inside a `[[pipeline]]` stage that toml reported at `at`.
///
/// serde reads a stage into a buffer before it looks at `type`, so toml can
/// only point at the whole stage or at the whole `pipeline` array (for
/// `[[pipeline]]` tables, the first header). Read the stages within `at`
/// again, straight into their type's struct, to find the key or value at
/// fault.
fn stage_error(text: &str, at: &Range<usize>) -> Option<(Range<usize>, String)> {
    let within = |span: &Range<usize>| at.start <= span.start && span.end <= at.end;
    let doc = DeTable::parse(text).ok()?;
    let array = doc.get_ref().get("pipeline")?;
    let all = within(&array.span());
    for stage in array.get_ref().as_array()?.iter() {
        let span = stage.span();
        if !all && !within(&span) {
            continue;
        }
        let Some(table) = stage.get_ref().as_table() else {
            continue;
        };
        let Some(kind) = table.get("type").and_then(|t| t.get_ref().as_str()) else {
            if table.get("type").is_none() {
                return Some((span, "missing field `type`".into()));
            }
            continue;
        };
        let mut rest = DeTable::new();
        for (k, v) in table.iter().filter(|(k, _)| k.get_ref() != "type") {
            rest.insert(k.clone(), v.clone());
        }
        let de = ValueDeserializer::from(Spanned::new(span, DeValue::Table(rest)));
        let result = match kind {
            "validate" => ValidateSpec::deserialize(de).map(|_| ()),
            "drop" => DropSpec::deserialize(de).map(|_| ()),
            "dedupe" => DedupeSpec::deserialize(de).map(|_| ()),
            "transform" => TransformSpec::deserialize(de).map(|_| ()),
            _ => continue,
        };
        if let Err(e) = result {
            return Some((e.span()?, e.message().to_string()));
        }
    }
    None
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
        let invalid = |span: Option<Range<usize>>, message: String| {
            let (line, column) = span.map_or((1, 1), |s| line_col(text, s.start));
            SpiderFileError::Invalid {
                path: path.to_string(),
                line,
                column,
                message,
            }
        };
        let file: SpiderFile = toml::from_str(text).map_err(|e| {
            match e.span().and_then(|at| stage_error(text, &at)) {
                Some((span, message)) => invalid(Some(span), message),
                None => invalid(e.span(), e.message().to_string()),
            }
        })?;

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

        let mut proxy_pools = Vec::new();
        let mut host_pools = Vec::new();
        for (name, pool) in &file.proxy_pools {
            let pool = pool.get_ref();
            let mut proxies = Vec::new();
            for p in &pool.proxies {
                proxies.push(
                    trawl_fetch::proxy::ProxySpec::parse(p.get_ref())
                        .map_err(|e| invalid(Some(p.span()), e.to_string()))?,
                );
            }
            let strategy = match &pool.strategy {
                Some(s) => Some(s.get_ref().parse().map_err(
                    |e: trawl_fetch::proxy::UnknownStrategy| invalid(Some(s.span()), e.to_string()),
                )?),
                None => None,
            };
            for h in &pool.hosts {
                let pattern: trawl_fetch::proxy::HostPattern =
                    h.get_ref()
                        .parse()
                        .map_err(|e: trawl_fetch::proxy::HostPatternError| {
                            invalid(Some(h.span()), e.to_string())
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
                    file.proxy_pools.get(name).map(Spanned::span)
                }
                _ => None,
            };
            invalid(span, e.to_string())
        })?;

        let compile_follow = |f: &FollowSpec| -> Result<Follow, SpiderFileError> {
            let selector =
                match &f.selector {
                    Some(s) => Some(trawl_extract::css::parse(s.get_ref()).map_err(|e| {
                        invalid(Some(s.span()), format!("invalid CSS selector {e}"))
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
            if let Some(pool) = &f.proxy_pool {
                routes
                    .group(pool.get_ref())
                    .map_err(|e| invalid(Some(pool.span()), e.to_string()))?;
            }
            let mut headers = Vec::new();
            if let Some(table) = &f.headers {
                for (k, v) in table.get_ref() {
                    headers.push(
                        trawl_fetch::identity::parse_header_line(&format!("{k}: {v}"))
                            .map_err(|e| invalid(Some(table.span()), e))?,
                    );
                }
            }
            let render = f
                .render
                .as_ref()
                .map(|r| {
                    let mut spec = r.get_ref().0.clone();
                    check_render(&spec).map_err(|e| invalid(Some(r.span()), e))?;
                    // `auto` looks for what the target rule requires.
                    if spec.require.is_empty()
                        && let Some(cb) = &f.callback
                        && let Some(item) = file.items.get(cb.get_ref())
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
            let mut schema = Vec::new();
            for (field, spec) in &spec.fields {
                let span = spec.span();
                let spec = spec.get_ref();
                schema.push((
                    field.clone(),
                    spec.kind.clone().unwrap_or_else(|| "text".to_string()),
                ));
                let kind: FieldType = spec
                    .kind
                    .as_deref()
                    .unwrap_or("string")
                    .parse()
                    .map_err(|e| invalid(Some(span.clone()), format!("field `{field}`: {e}")))?;
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

        let mut pipeline = Pipeline::new();
        for (index, stage) in file.pipeline.iter().enumerate() {
            let spec = stage.get_ref();
            let at = |key: &[String]| stage_value_span(text, index, key).or(Some(stage.span()));
            for (i, rule) in spec.rules().iter().enumerate() {
                if !file.items.contains_key(rule) {
                    return Err(invalid(
                        at(&["rules".to_string(), i.to_string()]),
                        format!("rules: {rule:?} names no [items.{rule}] rule"),
                    ));
                }
            }
            let compiled = compile(spec, index).map_err(|e| invalid(at(&e.key), e.message))?;
            pipeline.push(compiled);
        }

        let render = match &file.render {
            Some(r) => {
                check_render(&r.get_ref().0).map_err(|e| invalid(Some(r.span()), e))?;
                Some(r.get_ref().0.clone())
            }
            None => None,
        };
        Ok(DeclarativeSpider {
            render,
            name: file.name,
            start_urls,
            follow,
            pagination,
            items,
            sitemaps: file.settings.get("sitemaps") == Some(&toml::Value::Boolean(true)),
            pipeline,
            sinks: file.sinks,
            proxy_pools,
            host_pools,
        })
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
                let value = match x.as_str() {
                    "json_ld" => Value::Array(structured::json_ld(&doc)),
                    "opengraph" => Value::Object(structured::opengraph(&doc)),
                    "twitter" => Value::Object(structured::twitter(&doc)),
                    "meta" => Value::Object(structured::meta(&doc)),
                    "microdata" => Value::Array(structured::microdata(&doc)),
                    "main_text" => readable::main_text(response.text).into(),
                    "markdown" => readable::main_markdown_at(response.text, response.url).into(),
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
        for line in include_str!("declarative.rs").lines() {
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
    use super::*;

    fn keys<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        let names = trawl_core::config::field_names::<T>();
        assert!(!names.is_empty());
        names
    }

    const DOC: &str = include_str!("../../../docs/spider-file.md");

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
