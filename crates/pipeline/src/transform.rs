//! `type = "transform"`: change items, with operations applied in the order
//! they are written.
//!
//! ```toml
//! [[pipeline]]
//! type = "transform"
//! rename = { title = "name" }            # keeps the field's position
//! remove = ["_debug"]
//! set = { source = "shop" }              # always
//! default = { currency = "EUR" }         # when missing or null
//! trim = ["name"]                        # whitespace at both ends
//! lowercase = ["brand"]                  # uppercase = [..]
//! replace = { sku = { pattern = "\\s+", with = "" } }
//! split = { tags = "," }                 # "a, b" → ["a", "b"]
//! join = { authors = ", " }              # ["a", "b"] → "a, b"
//! to_number = ["price"]                  # "$1,234.50" → 1234.5, junk → null
//! ```
//!
//! See [`TransformOp`] for the details of each.

use std::collections::HashSet;

use regex::Regex;
use serde_json::{Map, Number, Value};
use trawl_core::Item;
use trawl_core::number::parse_number;

use crate::spec::{CompileError, TransformOp, TransformSpec, regex};
use crate::{ItemPipeline, RuleFilter, Verdict};

#[derive(Clone, Copy)]
enum Case {
    Trim,
    Lower,
    Upper,
}

enum Op {
    Rename(Vec<(String, String)>),
    Remove(Vec<String>),
    Set(Vec<(String, Value)>),
    Default(Vec<(String, Value)>),
    Strings(Vec<String>, Case),
    Replace(Vec<(String, Regex, String)>),
    Split(Vec<(String, String)>),
    Join(Vec<(String, String)>),
    ToNumber(Vec<String>),
}

/// The `transform` stage.
pub struct TransformStage {
    name: String,
    filter: RuleFilter,
    ops: Vec<Op>,
}

impl TransformStage {
    pub fn new(name: String, spec: &TransformSpec) -> Result<TransformStage, CompileError> {
        if spec.ops.is_empty() {
            return Err(CompileError::new(
                &[],
                "a transform stage needs at least one operation",
            ));
        }
        let mut ops = Vec::new();
        for op in &spec.ops {
            ops.push(match op {
                TransformOp::Rename(p) => Op::Rename(p.clone()),
                TransformOp::Remove(f) => Op::Remove(f.clone()),
                TransformOp::Set(p) => Op::Set(p.clone()),
                TransformOp::Default(p) => Op::Default(p.clone()),
                TransformOp::Trim(f) => Op::Strings(f.clone(), Case::Trim),
                TransformOp::Lowercase(f) => Op::Strings(f.clone(), Case::Lower),
                TransformOp::Uppercase(f) => Op::Strings(f.clone(), Case::Upper),
                TransformOp::Replace(p) => {
                    let mut compiled = Vec::new();
                    for (field, r) in p {
                        let re = regex(
                            &["replace", field, "pattern"],
                            &format!("replace `{field}`"),
                            &r.pattern,
                        )?;
                        compiled.push((field.clone(), re, r.with.clone()));
                    }
                    Op::Replace(compiled)
                }
                TransformOp::Split(p) => {
                    if let Some((field, _)) = p.iter().find(|(_, sep)| sep.is_empty()) {
                        return Err(CompileError::new(
                            &["split", field],
                            format!("split `{field}`: the separator is empty"),
                        ));
                    }
                    Op::Split(p.clone())
                }
                TransformOp::Join(p) => Op::Join(p.clone()),
                TransformOp::ToNumber(f) => Op::ToNumber(f.clone()),
            });
        }
        Ok(TransformStage {
            name,
            filter: RuleFilter::new(&spec.rules),
            ops,
        })
    }
}

/// Apply `f` to a string, or to the strings in an array.
fn each_string(v: &mut Value, f: &mut impl FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => {
            for e in a {
                if let Value::String(s) = e {
                    f(s);
                }
            }
        }
        _ => {}
    }
}

fn to_number(v: &mut Value) {
    match v {
        Value::Null | Value::Number(_) => {}
        Value::String(s) => {
            *v = parse_number(s)
                .and_then(Number::from_f64)
                .map_or(Value::Null, Value::Number);
        }
        Value::Array(a) => a.iter_mut().for_each(to_number),
        Value::Bool(_) | Value::Object(_) => *v = Value::Null,
    }
}

/// Rename fields in place: each keeps its position; a field already called
/// by a new name is replaced (renames are simultaneous, so `a → b, b → a`
/// swaps).
fn rename(map: &mut Map<String, Value>, pairs: &[(String, String)]) {
    let active: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(old, new)| old != new && map.contains_key(old))
        .collect();
    if active.is_empty() {
        return;
    }
    let targets: HashSet<&str> = active.iter().map(|(_, new)| new.as_str()).collect();
    let old = std::mem::take(map);
    for (k, v) in old {
        if let Some((_, new)) = active.iter().find(|(o, _)| *o == k) {
            map.insert(new.clone(), v);
        } else if !targets.contains(k.as_str()) {
            map.insert(k, v);
        }
    }
}

impl Op {
    fn apply(&self, map: &mut Map<String, Value>) {
        match self {
            Op::Rename(pairs) => rename(map, pairs),
            Op::Remove(fields) => {
                for f in fields {
                    // `shift_remove`: `remove` would move the last field here.
                    map.shift_remove(f);
                }
            }
            Op::Set(pairs) => {
                for (k, v) in pairs {
                    map.insert(k.clone(), v.clone());
                }
            }
            Op::Default(pairs) => {
                for (k, v) in pairs {
                    if map.get(k).is_none_or(Value::is_null) {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
            Op::Strings(fields, case) => {
                for f in fields {
                    if let Some(v) = map.get_mut(f) {
                        each_string(v, &mut |s: &mut String| {
                            *s = match case {
                                Case::Trim => s.trim().to_string(),
                                Case::Lower => s.to_lowercase(),
                                Case::Upper => s.to_uppercase(),
                            }
                        });
                    }
                }
            }
            Op::Replace(rules) => {
                for (f, re, with) in rules {
                    if let Some(v) = map.get_mut(f) {
                        each_string(v, &mut |s: &mut String| {
                            if let std::borrow::Cow::Owned(new) = re.replace_all(s, with.as_str()) {
                                *s = new;
                            }
                        });
                    }
                }
            }
            Op::Split(pairs) => {
                for (f, sep) in pairs {
                    if let Some(v) = map.get_mut(f)
                        && let Value::String(s) = v
                    {
                        *v = Value::Array(
                            s.split(sep.as_str())
                                .map(str::trim)
                                .filter(|p| !p.is_empty())
                                .map(Value::from)
                                .collect(),
                        );
                    }
                }
            }
            Op::Join(pairs) => {
                for (f, sep) in pairs {
                    if let Some(v) = map.get_mut(f)
                        && let Value::Array(a) = v
                    {
                        let parts: Vec<String> = a
                            .iter()
                            .filter_map(|e| match e {
                                Value::Null => None,
                                Value::String(s) => Some(s.clone()),
                                other => Some(other.to_string()),
                            })
                            .collect();
                        *v = Value::String(parts.join(sep));
                    }
                }
            }
            Op::ToNumber(fields) => {
                for f in fields {
                    if let Some(v) = map.get_mut(f) {
                        to_number(v);
                    }
                }
            }
        }
    }
}

impl ItemPipeline for TransformStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, mut item: Item) -> Verdict {
        if !self.filter.applies(&item) {
            return Verdict::Keep(item);
        }
        for op in &self.ops {
            op.apply(&mut item.0);
        }
        Verdict::Keep(item)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::test_util::*;

    fn run(config: Value, input: Value) -> Value {
        let mut config = config;
        config["type"] = json!("transform");
        kept(stage(config).process(item(input)))
    }

    /// Field names in order.
    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn rename_keeps_position() {
        let out = run(
            json!({"rename": {"title": "name"}}),
            json!({"url": "u", "title": "Lamp", "price": 1}),
        );
        assert_eq!(out, json!({"url": "u", "name": "Lamp", "price": 1}));
        assert_eq!(keys(&out), ["url", "name", "price"]);
        // The renamed field replaces one of the new name, wherever it was.
        let out = run(
            json!({"rename": {"title": "name"}}),
            json!({"name": "old", "url": "u", "title": "new"}),
        );
        assert_eq!(keys(&out), ["url", "name"]);
        assert_eq!(out["name"], "new");
        // A missing source leaves the target alone.
        let out = run(
            json!({"rename": {"title": "name"}}),
            json!({"name": "kept"}),
        );
        assert_eq!(out, json!({"name": "kept"}));
        // Simultaneous: a swap.
        let out = run(
            json!({"rename": {"a": "b", "b": "a"}}),
            json!({"a": 1, "b": 2}),
        );
        assert_eq!(keys(&out), ["b", "a"]);
        assert_eq!(out, json!({"b": 1, "a": 2}));
    }

    #[test]
    fn remove_keeps_order_of_the_rest() {
        let out = run(
            json!({"remove": ["b", "nope"]}),
            json!({"a": 1, "b": 2, "c": 3, "d": 4}),
        );
        assert_eq!(keys(&out), ["a", "c", "d"]);
    }

    #[test]
    fn set_and_default() {
        let out = run(
            json!({"set": {"source": "shop", "a": [1]}}),
            json!({"a": 0, "b": 1}),
        );
        assert_eq!(keys(&out), ["a", "b", "source"]);
        assert_eq!(out, json!({"a": [1], "b": 1, "source": "shop"}));
        let out = run(
            json!({"default": {"currency": "EUR", "n": 0, "x": 1}}),
            json!({"n": null, "x": 5}),
        );
        assert_eq!(keys(&out), ["n", "x", "currency"]);
        assert_eq!(out, json!({"n": 0, "x": 5, "currency": "EUR"}));
    }

    #[test]
    fn trim_and_case() {
        let out = run(
            json!({"trim": ["a", "l", "n", "missing"]}),
            json!({"a": "  x y \n", "l": [" p ", 1, "q  "], "n": 5}),
        );
        assert_eq!(out, json!({"a": "x y", "l": ["p", 1, "q"], "n": 5}));
        let out = run(json!({"lowercase": ["a"]}), json!({"a": "ÄBc", "b": "ÄBc"}));
        assert_eq!(out, json!({"a": "äbc", "b": "ÄBc"}));
        let out = run(json!({"uppercase": ["a"]}), json!({"a": ["x", "straße"]}));
        assert_eq!(out, json!({"a": ["X", "STRASSE"]}));
    }

    #[test]
    fn replace() {
        let out = run(
            json!({"replace": {
                "sku": {"pattern": "\\s+"},
                "date": {"pattern": "(\\d+)/(\\d+)/(\\d+)", "with": "$3-$1-$2"},
                "n": {"pattern": "1", "with": "2"}
            }}),
            json!({"sku": " AB 12 ", "date": ["12/31/2024", "x"], "n": 1}),
        );
        assert_eq!(
            out,
            json!({"sku": "AB12", "date": ["2024-12-31", "x"], "n": 1})
        );
    }

    #[test]
    fn split_and_join() {
        let out = run(
            json!({"split": {"tags": ",", "done": ","}}),
            json!({"tags": " a, b ,,c ,", "done": ["x"]}),
        );
        assert_eq!(out, json!({"tags": ["a", "b", "c"], "done": ["x"]}));
        let out = run(json!({"split": {"t": " | "}}), json!({"t": ""}));
        assert_eq!(out, json!({"t": []}));
        let out = run(
            json!({"join": {"a": ", ", "s": "-"}}),
            json!({"a": ["x", null, 1, true, {"k": 1}], "s": "as is"}),
        );
        assert_eq!(out, json!({"a": "x, 1, true, {\"k\":1}", "s": "as is"}));
    }

    #[test]
    fn to_number() {
        let out = run(
            json!({"to_number": ["a", "b", "c", "d", "e", "f", "g", "h", "missing"]}),
            json!({"a": "1,234.50", "b": "$ 12", "c": "free", "d": 7, "e": null,
                   "f": ["1.5", "x"], "g": true, "h": "12,5 kg"}),
        );
        assert_eq!(
            out,
            json!({"a": 1234.5, "b": 12.0, "c": null, "d": 7, "e": null,
                   "f": [1.5, null], "g": null, "h": 12.5})
        );
        assert!(out.get("missing").is_none());
    }

    #[test]
    fn operations_run_in_written_order() {
        // trim before split before join…
        let out = run(
            json!({"trim": ["t"], "split": {"t": ";"}, "uppercase": ["t"], "join": {"t": "/"}}),
            json!({"t": "  a;b  "}),
        );
        assert_eq!(out, json!({"t": "A/B"}));
        // …and the same operations in another order give another result.
        let out = run(
            json!({"join": {"t": "/"}, "uppercase": ["t"], "split": {"t": ";"}}),
            json!({"t": "a;b"}),
        );
        assert_eq!(out, json!({"t": ["A", "B"]}));
        // rename then default on the new name.
        let out = run(
            json!({"rename": {"cost": "price"}, "default": {"price": 0}, "to_number": ["price"]}),
            json!({"cost": "3.5"}),
        );
        assert_eq!(out, json!({"price": 3.5}));
    }

    #[test]
    fn rules_limit_the_stage() {
        let s = stage(json!({"type": "transform", "rules": ["product"], "uppercase": ["n"]}));
        assert_eq!(
            kept(s.process(item(json!({"_rule": "product", "n": "a"})))),
            json!({"_rule": "product", "n": "A"})
        );
        assert_eq!(
            kept(s.process(item(json!({"_rule": "review", "n": "a"})))),
            json!({"_rule": "review", "n": "a"})
        );
    }

    #[test]
    fn compile_errors() {
        let e = compile_err(json!({"type": "transform"}));
        assert!(e.key.is_empty());
        let e = compile_err(json!({"type": "transform", "name": "t", "rules": ["p"]}));
        assert!(e.message.contains("at least one operation"), "{e}");
        let e = compile_err(json!({"type": "transform", "replace": {"sku": {"pattern": "[a-"}}}));
        assert_eq!(e.key, ["replace", "sku", "pattern"]);
        assert!(
            e.message
                .starts_with("replace `sku`: invalid regex \"[a-\""),
            "{e}"
        );
        let e = compile_err(json!({"type": "transform", "split": {"tags": ""}}));
        assert_eq!(e.key, ["split", "tags"]);
    }
}
