//! Stage configuration ([`StageSpec`]) and [`compile`], which checks it and
//! builds the stage.
//!
//! Every stage takes two optional keys besides its own: `name` (for stats
//! and error records; default: the type and the stage's index, e.g.
//! `"dedupe[2]"`) and `rules` (only items whose `_rule` is listed).

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use regex::Regex;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::Value;

use crate::{DedupeStage, DropStage, ItemPipeline, TransformStage, ValidateStage};

/// The stage types, as written in `type = "…"`.
pub const STAGE_TYPES: &[&str] = &["validate", "drop", "dedupe", "transform"];

/// One stage's configuration: `type` picks the variant, the other keys are
/// the variant's. Unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StageSpec {
    Validate(ValidateSpec),
    Drop(DropSpec),
    Dedupe(DedupeSpec),
    Transform(TransformSpec),
}

impl StageSpec {
    /// The `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            StageSpec::Validate(_) => "validate",
            StageSpec::Drop(_) => "drop",
            StageSpec::Dedupe(_) => "dedupe",
            StageSpec::Transform(_) => "transform",
        }
    }

    /// The `name`, if given.
    pub fn name(&self) -> Option<&str> {
        match self {
            StageSpec::Validate(s) => s.name.as_deref(),
            StageSpec::Drop(s) => s.name.as_deref(),
            StageSpec::Dedupe(s) => s.name.as_deref(),
            StageSpec::Transform(s) => s.name.as_deref(),
        }
    }

    /// The `rules` (item types) the stage is limited to; empty for all.
    pub fn rules(&self) -> &[String] {
        match self {
            StageSpec::Validate(s) => &s.rules,
            StageSpec::Drop(s) => &s.rules,
            StageSpec::Dedupe(s) => &s.rules,
            StageSpec::Transform(s) => &s.rules,
        }
    }
}

/// `type = "validate"`: `required = [fields]` and per-field checks in
/// `fields.NAME` tables. Checks of a field that is missing or `null` are
/// skipped (unless it is required).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateSpec {
    pub name: Option<String>,
    #[serde(default)]
    pub rules: Vec<String>,
    /// Fields that must be present and not `null`.
    #[serde(default)]
    pub required: Vec<String>,
    /// Checks per field, run in this order.
    #[serde(default)]
    pub fields: IndexMap<String, FieldCheck>,
}

/// The checks of one field, run in the order of the struct fields.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCheck {
    /// Same as listing the field in `required`.
    #[serde(default)]
    pub required: bool,
    #[serde(rename = "type")]
    pub kind: Option<ValueType>,
    /// Numbers only.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Strings (in characters) and arrays (in elements) only.
    pub min_len: Option<usize>,
    pub max_len: Option<usize>,
    /// A regex a string must match somewhere (anchor it with `^…$`).
    pub pattern: Option<String>,
    /// The allowed values (numbers compare by value).
    pub one_of: Option<Vec<Value>>,
}

/// A JSON type for `FieldCheck::kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    Number,
    /// A number without a fractional part.
    Integer,
    #[serde(alias = "boolean")]
    Bool,
    #[serde(alias = "list")]
    Array,
    Object,
}

impl ValueType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "a string",
            ValueType::Number => "a number",
            ValueType::Integer => "an integer",
            ValueType::Bool => "a bool",
            ValueType::Array => "an array",
            ValueType::Object => "an object",
        }
    }
}

/// `type = "drop"`: drop the items for which a condition on `field` holds.
/// Exactly one condition must be given.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropSpec {
    pub name: Option<String>,
    #[serde(default)]
    pub rules: Vec<String>,
    pub field: String,
    /// `true`: drop when the field is missing or `null`; `false`: when present.
    pub missing: Option<bool>,
    /// `true`: drop when the field is missing, `null`, a blank string, `[]`
    /// or `{}`; `false`: when it is none of those.
    pub empty: Option<bool>,
    /// Drop when the field equals this value (numbers compare by value).
    pub equals: Option<Value>,
    /// Drop when the field is a string matching this regex.
    pub matches: Option<String>,
    /// Drop when the field is a number less than this.
    pub lt: Option<f64>,
    /// Drop when the field is a number greater than this.
    pub gt: Option<f64>,
}

/// `type = "dedupe"`: keep the first item for each `key`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeSpec {
    pub name: Option<String>,
    #[serde(default)]
    pub rules: Vec<String>,
    /// The fields whose values together identify an item.
    pub key: Vec<String>,
}

/// `type = "transform"`: operations applied in the order they are written.
/// Each operation key may appear once per stage; use another stage to
/// repeat one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransformSpec {
    pub name: Option<String>,
    pub rules: Vec<String>,
    pub ops: Vec<TransformOp>,
}

/// One transform operation. Operations on strings (`trim`, `lowercase`,
/// `uppercase`, `replace`) and `to_number` also apply to the elements of an
/// array; fields that are missing are left alone (except by `set` and
/// `default`).
#[derive(Debug, Clone, PartialEq)]
pub enum TransformOp {
    /// `rename = { old = "new" }`: the field keeps its position; a field
    /// already called `new` is replaced.
    Rename(Vec<(String, String)>),
    /// `remove = [fields]`.
    Remove(Vec<String>),
    /// `set = { field = value }`: always.
    Set(Vec<(String, Value)>),
    /// `default = { field = value }`: when the field is missing or `null`.
    Default(Vec<(String, Value)>),
    /// `trim = [fields]`: strip leading and trailing whitespace.
    Trim(Vec<String>),
    Lowercase(Vec<String>),
    Uppercase(Vec<String>),
    /// `replace = { field = { pattern = "regex", with = "…" } }`: every
    /// match; `with` may use `$1`/`${name}` and defaults to "".
    Replace(Vec<(String, Replace)>),
    /// `split = { field = "," }`: a string becomes an array of its trimmed,
    /// non-empty parts.
    Split(Vec<(String, String)>),
    /// `join = { field = ", " }`: an array becomes a string (`null`
    /// elements skipped, other non-strings as JSON).
    Join(Vec<(String, String)>),
    /// `to_number = [fields]`: strings like "$1,234.50" become numbers, as
    /// for a `type = "number"` item field; what does not parse becomes `null`.
    ToNumber(Vec<String>),
}

impl TransformOp {
    /// The key it is written as.
    pub fn key(&self) -> &'static str {
        match self {
            TransformOp::Rename(_) => "rename",
            TransformOp::Remove(_) => "remove",
            TransformOp::Set(_) => "set",
            TransformOp::Default(_) => "default",
            TransformOp::Trim(_) => "trim",
            TransformOp::Lowercase(_) => "lowercase",
            TransformOp::Uppercase(_) => "uppercase",
            TransformOp::Replace(_) => "replace",
            TransformOp::Split(_) => "split",
            TransformOp::Join(_) => "join",
            TransformOp::ToNumber(_) => "to_number",
        }
    }
}

/// The value of one `replace` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replace {
    pub pattern: String,
    #[serde(default)]
    pub with: String,
}

/// The keys of a transform table; deserialized as an identifier so that an
/// unknown key is reported where it is written.
#[derive(Deserialize, PartialEq)]
#[serde(field_identifier, rename_all = "snake_case")]
enum TransformKey {
    Name,
    Rules,
    Rename,
    Remove,
    Set,
    Default,
    Trim,
    Lowercase,
    Uppercase,
    Replace,
    Split,
    Join,
    ToNumber,
}

fn pairs<V>(map: IndexMap<String, V>) -> Vec<(String, V)> {
    map.into_iter().collect()
}

// By hand rather than derived: the operations are kept in the order the
// keys are written.
impl<'de> Deserialize<'de> for TransformSpec {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = TransformSpec;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of transform operations")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TransformSpec, A::Error> {
                use TransformKey as K;
                let mut spec = TransformSpec::default();
                let mut seen: Vec<K> = Vec::new();
                while let Some(key) = map.next_key::<K>()? {
                    if seen.contains(&key) {
                        return Err(de::Error::custom("a transform key appears twice"));
                    }
                    let op = match key {
                        K::Name => {
                            spec.name = Some(map.next_value()?);
                            None
                        }
                        K::Rules => {
                            spec.rules = map.next_value()?;
                            None
                        }
                        K::Rename => Some(TransformOp::Rename(pairs(map.next_value()?))),
                        K::Remove => Some(TransformOp::Remove(map.next_value()?)),
                        K::Set => Some(TransformOp::Set(pairs(map.next_value()?))),
                        K::Default => Some(TransformOp::Default(pairs(map.next_value()?))),
                        K::Trim => Some(TransformOp::Trim(map.next_value()?)),
                        K::Lowercase => Some(TransformOp::Lowercase(map.next_value()?)),
                        K::Uppercase => Some(TransformOp::Uppercase(map.next_value()?)),
                        K::Replace => Some(TransformOp::Replace(pairs(map.next_value()?))),
                        K::Split => Some(TransformOp::Split(pairs(map.next_value()?))),
                        K::Join => Some(TransformOp::Join(pairs(map.next_value()?))),
                        K::ToNumber => Some(TransformOp::ToNumber(map.next_value()?)),
                    };
                    spec.ops.extend(op);
                    seen.push(key);
                }
                Ok(spec)
            }
        }
        deserializer.deserialize_map(SpecVisitor)
    }
}

/// A stage configuration that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Where in the stage's table: keys (and array indexes, as numbers)
    /// from the stage down, e.g. `["fields", "price", "pattern"]`; empty
    /// for the stage as a whole.
    pub key: Vec<String>,
    pub message: String,
}

impl CompileError {
    pub(crate) fn new(key: &[&str], message: impl Into<String>) -> CompileError {
        CompileError {
            key: key.iter().map(|k| k.to_string()).collect(),
            message: message.into(),
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CompileError {}

/// Compile a regex, the error naming where it was written.
pub(crate) fn regex(key: &[&str], what: &str, pattern: &str) -> Result<Regex, CompileError> {
    Regex::new(pattern)
        .map_err(|e| CompileError::new(key, format!("{what}: invalid regex {pattern:?}: {e}")))
}

/// Check `spec` and build its stage. `index` is the stage's position in
/// the pipeline (from 0); an unnamed stage is called `"{type}[{index}]"`.
pub fn compile(spec: &StageSpec, index: usize) -> Result<Arc<dyn ItemPipeline>, CompileError> {
    let name = spec
        .name()
        .map_or_else(|| format!("{}[{index}]", spec.kind()), str::to_string);
    Ok(match spec {
        StageSpec::Validate(s) => Arc::new(ValidateStage::new(name, s)?),
        StageSpec::Drop(s) => Arc::new(DropStage::new(name, s)?),
        StageSpec::Dedupe(s) => Arc::new(DedupeStage::new(name, s)?),
        StageSpec::Transform(s) => Arc::new(TransformStage::new(name, s)?),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tagged_specs_deny_unknown_keys() {
        let e =
            serde_json::from_value::<StageSpec>(json!({"type": "dedupe", "key": ["a"], "x": 1}))
                .unwrap_err()
                .to_string();
        assert!(e.contains("unknown field `x`"), "{e}");
        let e = serde_json::from_value::<StageSpec>(
            json!({"type": "validate", "fields": {"a": {"mni": 1}}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `mni`"), "{e}");
        let e = serde_json::from_value::<StageSpec>(json!({"type": "transform", "strip": ["a"]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `strip`"), "{e}");
        let e = serde_json::from_value::<StageSpec>(json!({"type": "nope"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `nope`"), "{e}");
        let e = serde_json::from_value::<StageSpec>(json!({"key": ["a"]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `type`"), "{e}");
        let e = serde_json::from_value::<StageSpec>(
            json!({"type": "validate", "fields": {"a": {"type": "money"}}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown variant `money`"), "{e}");
        let e = serde_json::from_str::<StageSpec>(
            r#"{"type": "transform", "trim": ["a"], "trim": ["b"]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("appears twice"), "{e}");
    }

    #[test]
    fn accessors_and_default_names() {
        let spec: StageSpec =
            serde_json::from_value(json!({"type": "dedupe", "key": ["a"], "rules": ["p"]}))
                .unwrap();
        assert_eq!(spec.kind(), "dedupe");
        assert_eq!(spec.name(), None);
        assert_eq!(spec.rules(), ["p"]);
        assert_eq!(compile(&spec, 3).unwrap().name(), "dedupe[3]");
        let spec: StageSpec = serde_json::from_value(
            json!({"type": "drop", "name": "no-free", "field": "price", "lt": 0.01}),
        )
        .unwrap();
        assert_eq!(spec.name(), Some("no-free"));
        assert_eq!(compile(&spec, 0).unwrap().name(), "no-free");
        for (kind, config) in [
            ("validate", json!({"type": "validate", "required": ["a"]})),
            ("transform", json!({"type": "transform", "trim": ["a"]})),
        ] {
            let spec: StageSpec = serde_json::from_value(config).unwrap();
            assert_eq!(spec.kind(), kind);
            assert!(STAGE_TYPES.contains(&kind));
        }
    }

    #[test]
    fn transform_ops_keep_written_order() {
        let spec: StageSpec = serde_json::from_value(json!({
            "type": "transform", "name": "t", "to_number": ["b"], "rename": {"z": "y", "a": "b"},
            "trim": ["c"], "rules": ["p"]
        }))
        .unwrap();
        let StageSpec::Transform(t) = spec else {
            panic!("not a transform")
        };
        assert_eq!(t.name.as_deref(), Some("t"));
        assert_eq!(t.rules, ["p"]);
        assert_eq!(
            t.ops,
            vec![
                TransformOp::ToNumber(vec!["b".into()]),
                TransformOp::Rename(vec![("z".into(), "y".into()), ("a".into(), "b".into())]),
                TransformOp::Trim(vec!["c".into()]),
            ]
        );
        assert_eq!(t.ops[1].key(), "rename");
    }

    #[test]
    fn compile_error_display_is_the_message() {
        let e = CompileError::new(&["fields", "a"], "bad");
        assert_eq!(e.to_string(), "bad");
        assert_eq!(e.key, ["fields", "a"]);
    }
}
