//! trawl-pipeline: item pipeline stages, Scrapy's item pipelines for trawl.
//!
//! A spider turns pages into items; before an item is written it goes
//! through the crawl's [`Pipeline`], an ordered list of stages
//! ([`ItemPipeline`]). Each stage looks at one item and returns a
//! [`Verdict`]: keep it (possibly changed), drop it, or reject it as
//! invalid with an error record for the error output.
//!
//! # Built-in stages
//! Configured by a [`StageSpec`] (a `[[pipeline]]` table of a declarative
//! spider file, or any serde format) and built with [`compile`]:
//! - [`validate`]: required fields and per-field checks (type, range,
//!   length, regex, allowed values); a failing item becomes an error record.
//! - [`drop`](mod@drop): drop items for which a condition on one field holds.
//! - [`dedupe`]: keep only the first item for each key (in memory, per
//!   process).
//! - [`transform`]: rename, remove, set, default, trim, change case,
//!   replace, split, join and parse numbers, in the order written.
//!
//! Every stage takes `rules = ["product", …]`: it then only looks at items
//! whose `_rule` (the item rule that made them, i.e. their type) is listed;
//! the others pass through untouched.
//!
//! # Threads
//! Stages run on the engine's parse pool (CPU threads), so everything here
//! is synchronous. One [`Pipeline`] is shared by all parse threads: stages
//! are `Send + Sync`, their state (dedupe's seen-set) sits behind sharded
//! locks and the counters are atomics. Cloning a `Pipeline` is cheap and
//! shares the stages, their state and their counters.

pub mod dedupe;
pub mod drop;
pub mod spec;
pub mod transform;
pub mod validate;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};
use trawl_core::Item;

pub use dedupe::DedupeStage;
pub use drop::DropStage;
pub use spec::{
    CompileError, DedupeSpec, DropSpec, FieldCheck, Replace, STAGE_TYPES, StageSpec, TransformOp,
    TransformSpec, ValidateSpec, ValueType, compile,
};
pub use transform::TransformStage;
pub use validate::ValidateStage;

/// What a stage decided about one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Pass the item (possibly changed) on to the next stage.
    Keep(Item),
    /// Throw the item away (a filter, a duplicate); not an error.
    Drop { reason: String },
    /// The item is broken: `error` is an error record
    /// (`{"url", "rule", "stage", "field", "error"}`) for the error output.
    Invalid { error: Item },
}

/// One stage of an item pipeline.
///
/// Called from several parse threads at once, synchronously: keep state
/// behind locks or atomics and do not block for long.
pub trait ItemPipeline: Send + Sync {
    /// The stage's name, for stats and error records.
    fn name(&self) -> &str;
    /// Look at one item.
    fn process(&self, item: Item) -> Verdict;
}

/// What [`Pipeline::process`] made of a batch of items.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processed {
    /// Items that went through every stage, in input order.
    pub kept: Vec<Item>,
    /// Error records of items a stage found invalid.
    pub invalid: Vec<Item>,
    /// How many items a stage dropped.
    pub dropped: u64,
}

/// Counters of one stage, see [`Pipeline::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageStats {
    pub name: String,
    /// Items handed to the stage (those its `rules` skip included).
    pub seen: u64,
    pub kept: u64,
    pub dropped: u64,
    pub invalid: u64,
}

#[derive(Default)]
struct Counters {
    seen: AtomicU64,
    kept: AtomicU64,
    dropped: AtomicU64,
    invalid: AtomicU64,
}

#[derive(Clone)]
struct Entry {
    stage: Arc<dyn ItemPipeline>,
    counters: Arc<Counters>,
}

/// An ordered list of stages. Clones share stages, state and counters.
#[derive(Clone, Default)]
pub struct Pipeline {
    stages: Vec<Entry>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.stages.iter().map(|e| e.stage.name()))
            .finish()
    }
}

impl Pipeline {
    /// An empty pipeline: every item is kept as it is.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Build the stages of `specs`, in order (stage `i` is compiled with
    /// index `i`). The error names the index of the failing stage.
    pub fn from_specs(specs: &[StageSpec]) -> Result<Pipeline, (usize, CompileError)> {
        let mut pipeline = Pipeline::new();
        for (i, spec) in specs.iter().enumerate() {
            pipeline.push(compile(spec, i).map_err(|e| (i, e))?);
        }
        Ok(pipeline)
    }

    /// Append a stage.
    pub fn push(&mut self, stage: Arc<dyn ItemPipeline>) {
        self.stages.push(Entry {
            stage,
            counters: Arc::default(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// The stages' names, in order.
    pub fn stage_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .map(|e| e.stage.name().to_string())
            .collect()
    }

    /// Run one item through the stages in order, stopping at the first
    /// stage that drops it or finds it invalid.
    pub fn process_one(&self, mut item: Item) -> Verdict {
        for entry in &self.stages {
            let c = &entry.counters;
            c.seen.fetch_add(1, Ordering::Relaxed);
            match entry.stage.process(item) {
                Verdict::Keep(next) => {
                    c.kept.fetch_add(1, Ordering::Relaxed);
                    item = next;
                }
                verdict @ Verdict::Drop { .. } => {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                    return verdict;
                }
                verdict @ Verdict::Invalid { .. } => {
                    c.invalid.fetch_add(1, Ordering::Relaxed);
                    return verdict;
                }
            }
        }
        Verdict::Keep(item)
    }

    /// Run each item through the stages (see [`Pipeline::process_one`]).
    pub fn process(&self, items: Vec<Item>) -> Processed {
        let mut out = Processed::default();
        if self.stages.is_empty() {
            out.kept = items;
            return out;
        }
        out.kept.reserve(items.len());
        for item in items {
            match self.process_one(item) {
                Verdict::Keep(item) => out.kept.push(item),
                Verdict::Drop { .. } => out.dropped += 1,
                Verdict::Invalid { error } => out.invalid.push(error),
            }
        }
        out
    }

    /// Counters of every stage, in order.
    pub fn stats(&self) -> Vec<StageStats> {
        self.stages
            .iter()
            .map(|e| StageStats {
                name: e.stage.name().to_string(),
                seen: e.counters.seen.load(Ordering::Relaxed),
                kept: e.counters.kept.load(Ordering::Relaxed),
                dropped: e.counters.dropped.load(Ordering::Relaxed),
                invalid: e.counters.invalid.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// The `rules = [..]` option every stage has: which item types it applies to.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleFilter(Vec<String>);

impl RuleFilter {
    pub(crate) fn new(rules: &[String]) -> RuleFilter {
        RuleFilter(rules.to_vec())
    }

    /// Whether the stage looks at `item`: no `rules` given, or the item's
    /// `_rule` is one of them.
    pub(crate) fn applies(&self, item: &Item) -> bool {
        self.0.is_empty()
            || item
                .0
                .get("_rule")
                .and_then(Value::as_str)
                .is_some_and(|r| self.0.iter().any(|x| x == r))
    }
}

/// An error record for `item`: `{"url", "rule", "stage", "field", "error"}`.
pub(crate) fn error_record(item: &Item, stage: &str, field: &str, error: String) -> Item {
    let mut e = Map::new();
    e.insert(
        "url".into(),
        item.0.get("url").cloned().unwrap_or(Value::Null),
    );
    e.insert(
        "rule".into(),
        item.0.get("_rule").cloned().unwrap_or(Value::Null),
    );
    e.insert("stage".into(), stage.into());
    e.insert("field".into(), field.into());
    e.insert("error".into(), error.into());
    Item(e)
}

/// Missing and `null` count as absent.
pub(crate) fn present<'a>(item: &'a Item, field: &str) -> Option<&'a Value> {
    item.0.get(field).filter(|v| !v.is_null())
}

/// JSON equality where numbers compare by value (`1 == 1.0`).
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| loose_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| loose_eq(a, b)))
        }
        _ => a == b,
    }
}

/// A value for a message: JSON, cut short.
pub(crate) fn show(v: &Value) -> String {
    const MAX: usize = 60;
    let s = v.to_string();
    match s.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s,
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use serde_json::Value;
    use trawl_core::Item;

    use crate::{ItemPipeline, StageSpec, Verdict};

    pub fn item(v: Value) -> Item {
        match v {
            Value::Object(m) => Item(m),
            other => panic!("not an object: {other}"),
        }
    }

    /// Compile a stage from JSON config.
    pub fn stage(config: Value) -> std::sync::Arc<dyn ItemPipeline> {
        let spec: StageSpec = serde_json::from_value(config).unwrap();
        crate::compile(&spec, 0).unwrap()
    }

    /// Compile error message of a JSON config.
    pub fn compile_err(config: Value) -> crate::CompileError {
        let spec: StageSpec = serde_json::from_value(config).unwrap();
        match crate::compile(&spec, 0) {
            Ok(_) => panic!("compiled"),
            Err(e) => e,
        }
    }

    pub fn kept(v: Verdict) -> Value {
        match v {
            Verdict::Keep(item) => Value::Object(item.0),
            other => panic!("not kept: {other:?}"),
        }
    }

    pub fn is_dropped(v: &Verdict) -> bool {
        matches!(v, Verdict::Drop { .. })
    }

    pub fn invalid(v: Verdict) -> Value {
        match v {
            Verdict::Invalid { error } => Value::Object(error.0),
            other => panic!("not invalid: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::test_util::*;
    use super::*;

    struct Tag(&'static str);
    impl ItemPipeline for Tag {
        fn name(&self) -> &str {
            self.0
        }
        fn process(&self, mut item: Item) -> Verdict {
            let trail = match item.0.get("trail") {
                Some(Value::String(s)) => format!("{s},{}", self.0),
                _ => self.0.to_string(),
            };
            item.0.insert("trail".into(), trail.into());
            Verdict::Keep(item)
        }
    }

    #[test]
    fn empty_pipeline_keeps_everything() {
        let p = Pipeline::new();
        assert!(p.is_empty());
        let items = vec![item(json!({"a": 1})), item(json!({"a": 2}))];
        let out = p.process(items.clone());
        assert_eq!(out.kept, items);
        assert!(out.invalid.is_empty());
        assert_eq!(out.dropped, 0);
        assert!(p.stats().is_empty());
    }

    #[test]
    fn stages_run_in_order() {
        let mut p = Pipeline::new();
        p.push(Arc::new(Tag("a")));
        p.push(Arc::new(Tag("b")));
        p.push(Arc::new(Tag("c")));
        assert_eq!(p.len(), 3);
        assert_eq!(p.stage_names(), ["a", "b", "c"]);
        let out = p.process(vec![item(json!({}))]);
        assert_eq!(out.kept[0].0["trail"], "a,b,c");
    }

    #[test]
    fn process_counts_and_stops_at_first_drop_or_invalid() {
        let p = Pipeline::from_specs(&[
            serde_json::from_value(json!({"type": "drop", "field": "skip", "equals": true}))
                .unwrap(),
            serde_json::from_value(json!({"type": "validate", "required": ["name"]})).unwrap(),
            serde_json::from_value(json!({"type": "dedupe", "key": ["name"]})).unwrap(),
            serde_json::from_value(json!({"type": "transform", "uppercase": ["name"]})).unwrap(),
        ])
        .unwrap();
        assert_eq!(
            p.stage_names(),
            ["drop[0]", "validate[1]", "dedupe[2]", "transform[3]"]
        );
        let out = p.process(vec![
            item(json!({"url": "u1", "name": "a"})),
            item(json!({"url": "u2", "name": "a", "skip": true})),
            item(json!({"url": "u3"})),
            item(json!({"url": "u4", "name": "a"})),
            item(json!({"url": "u5", "name": "b"})),
        ]);
        let kept: Vec<Value> = out.kept.into_iter().map(|i| Value::Object(i.0)).collect();
        assert_eq!(
            kept,
            vec![
                json!({"url": "u1", "name": "A"}),
                json!({"url": "u5", "name": "B"})
            ]
        );
        assert_eq!(out.dropped, 2);
        assert_eq!(out.invalid.len(), 1);
        assert_eq!(
            Value::Object(out.invalid[0].0.clone()),
            json!({"url": "u3", "rule": null, "stage": "validate[1]", "field": "name",
                   "error": "required field missing"})
        );
        let stats = p.stats();
        let row = |s: &StageStats| (s.name.clone(), s.seen, s.kept, s.dropped, s.invalid);
        assert_eq!(
            stats.iter().map(row).collect::<Vec<_>>(),
            vec![
                ("drop[0]".to_string(), 5, 4, 1, 0),
                ("validate[1]".to_string(), 4, 3, 0, 1),
                ("dedupe[2]".to_string(), 3, 2, 1, 0),
                ("transform[3]".to_string(), 2, 2, 0, 0),
            ]
        );
        // Clones share state and counters: "a" is still a duplicate.
        let clone = p.clone();
        let out = clone.process(vec![item(json!({"url": "u6", "name": "a"}))]);
        assert_eq!(out.dropped, 1);
        assert_eq!(p.stats()[2].dropped, 2);
    }

    #[test]
    fn from_specs_names_the_failing_stage() {
        let specs: Vec<StageSpec> = serde_json::from_value(json!([
            {"type": "dedupe", "key": ["a"]},
            {"type": "drop", "field": "a", "matches": "("},
        ]))
        .unwrap();
        let (i, e) = Pipeline::from_specs(&specs).unwrap_err();
        assert_eq!(i, 1);
        assert_eq!(e.key, ["matches"]);
    }

    #[test]
    fn module_doc_examples_compile() {
        #[derive(serde::Deserialize)]
        struct File {
            pipeline: Vec<StageSpec>,
        }
        let sources = [
            include_str!("validate.rs"),
            include_str!("drop.rs"),
            include_str!("dedupe.rs"),
            include_str!("transform.rs"),
        ];
        for source in sources {
            let mut block = String::new();
            let mut inside = false;
            for line in source.lines().filter_map(|l| l.strip_prefix("//!")) {
                let line = line.strip_prefix(' ').unwrap_or(line);
                match (inside, line) {
                    (false, "```toml") => inside = true,
                    (true, "```") => break,
                    (true, line) => {
                        block.push_str(line);
                        block.push('\n');
                    }
                    (false, _) => {}
                }
            }
            let file: File = toml::from_str(&block).unwrap_or_else(|e| panic!("{e}\n{block}"));
            let p = Pipeline::from_specs(&file.pipeline).unwrap();
            assert_eq!(p.len(), 1);
        }
    }

    #[test]
    fn rule_filter_and_loose_eq() {
        let f = RuleFilter::new(&["product".to_string()]);
        assert!(f.applies(&item(json!({"_rule": "product"}))));
        assert!(!f.applies(&item(json!({"_rule": "review"}))));
        assert!(!f.applies(&item(json!({}))));
        assert!(RuleFilter::new(&[]).applies(&item(json!({}))));
        assert!(loose_eq(&json!(1), &json!(1.0)));
        assert!(loose_eq(&json!([1, {"a": 2}]), &json!([1.0, {"a": 2.0}])));
        assert!(!loose_eq(&json!(1), &json!("1")));
        assert!(!loose_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert_eq!(show(&json!("x".repeat(100))).chars().count(), 61);
    }
}
