//! The spider file as written: the serde types of its sections, and the
//! span helpers that point a mistake inside a `[[pipeline]]` stage at its
//! key or value.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use trawl_pipeline::{DedupeSpec, DropSpec, StageSpec, TransformSpec, ValidateSpec};

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
pub(super) struct SpiderFile {
    pub(super) name: String,
    #[serde(default)]
    pub(super) start_urls: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) follow: Vec<FollowSpec>,
    pub(super) pagination: Option<FollowSpec>,
    #[serde(default)]
    pub(super) items: BTreeMap<String, ItemSpec>,
    /// Crawl settings: read by `trawl-settings` (the same keys as the
    /// command line's flags), not by the spider.
    #[serde(default)]
    pub(super) settings: toml::Table,
    /// Item pipeline stages, in order.
    #[serde(default)]
    pub(super) pipeline: Vec<Spanned<StageSpec>>,
    /// Outputs besides `-o` (see `trawl_sink::spec`).
    #[serde(default)]
    pub(super) sinks: Vec<trawl_sink::SinkSpec>,
    /// Named proxy pools, in file order.
    #[serde(default)]
    pub(super) proxy_pools: indexmap::IndexMap<String, Spanned<PoolSpec>>,
    /// How pages are rendered unless their rule says otherwise.
    pub(super) render: Option<Spanned<RenderRule>>,
}

/// `render = "auto"`, or a table with `mode` and the options of
/// [`trawl_core::RenderSpec`].
#[derive(Debug)]
pub(super) struct RenderRule(pub(super) trawl_core::RenderSpec);

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
pub(super) struct PoolSpec {
    pub(super) proxies: Vec<Spanned<String>>,
    pub(super) strategy: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) hosts: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FollowSpec {
    pub(super) selector: Option<Spanned<String>>,
    pub(super) pattern: Option<Spanned<String>>,
    pub(super) callback: Option<Spanned<String>>,
    pub(super) max_depth: Option<u32>,
    /// A named pool (or "direct"/"default") for the requests it makes.
    pub(super) proxy_pool: Option<Spanned<String>>,
    /// Headers of the requests it makes.
    pub(super) headers: Option<Spanned<indexmap::IndexMap<String, String>>>,
    /// How the pages it finds are rendered.
    pub(super) render: Option<Spanned<RenderRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ItemSpec {
    #[serde(rename = "match")]
    pub(super) url_match: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) extractors: Vec<Spanned<String>>,
    #[serde(default)]
    /// In file order: items keep the fields in the order they are written.
    pub(super) fields: indexmap::IndexMap<String, Spanned<FieldSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FieldSpec {
    pub(super) selector: String,
    pub(super) attr: Option<String>,
    #[serde(default)]
    pub(super) html: bool,
    pub(super) regex: Option<String>,
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) required: bool,
    pub(super) default: Option<toml::Value>,
}

/// The span of a value inside the `index`th `[[pipeline]]` stage: `key`
/// walks tables by key and arrays by index (see
/// [`trawl_pipeline::CompileError::key`]).
pub(super) fn stage_value_span(text: &str, index: usize, key: &[String]) -> Option<Range<usize>> {
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
pub(super) fn stage_error(text: &str, at: &Range<usize>) -> Option<(Range<usize>, String)> {
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
