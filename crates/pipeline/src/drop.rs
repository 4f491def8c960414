//! `type = "drop"`: drop the items for which a condition on one field holds.
//!
//! ```toml
//! [[pipeline]]
//! type = "drop"
//! field = "price"
//! lt = 0.01          # or: missing = true, empty = true, equals = <value>,
//!                    #     matches = "regex", gt = <number>
//! ```
//!
//! Exactly one condition per stage; use several stages for several. A
//! condition on a value of the wrong type (`lt` on a string, `matches` on
//! a number) does not hold, so the item is kept.

use regex::Regex;
use serde_json::Value;
use trawl_core::Item;

use crate::spec::{CompileError, DropSpec, regex};
use crate::{ItemPipeline, RuleFilter, Verdict, loose_eq, present, show};

enum Condition {
    Missing(bool),
    Empty(bool),
    Equals(Value),
    Matches(Regex, String),
    Lt(f64),
    Gt(f64),
}

/// The `drop` stage.
pub struct DropStage {
    name: String,
    filter: RuleFilter,
    field: String,
    condition: Condition,
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

impl DropStage {
    pub fn new(name: String, spec: &DropSpec) -> Result<DropStage, CompileError> {
        let mut conditions = Vec::new();
        if let Some(b) = spec.missing {
            conditions.push(("missing", Condition::Missing(b)));
        }
        if let Some(b) = spec.empty {
            conditions.push(("empty", Condition::Empty(b)));
        }
        if let Some(v) = &spec.equals {
            conditions.push(("equals", Condition::Equals(v.clone())));
        }
        if let Some(p) = &spec.matches {
            let re = regex(&["matches"], &format!("field `{}`", spec.field), p)?;
            conditions.push(("matches", Condition::Matches(re, p.clone())));
        }
        if let Some(n) = spec.lt {
            conditions.push(("lt", Condition::Lt(n)));
        }
        if let Some(n) = spec.gt {
            conditions.push(("gt", Condition::Gt(n)));
        }
        let mut conditions = conditions.into_iter();
        let Some((_, condition)) = conditions.next() else {
            return Err(CompileError::new(
                &[],
                "a drop stage needs one condition: missing, empty, equals, matches, lt or gt",
            ));
        };
        if let Some((key, _)) = conditions.next() {
            return Err(CompileError::new(
                &[key],
                format!(
                    "a drop stage takes one condition; put `{key}` in another [[pipeline]] stage"
                ),
            ));
        }
        Ok(DropStage {
            name,
            filter: RuleFilter::new(&spec.rules),
            field: spec.field.clone(),
            condition,
        })
    }

    /// Why the item is dropped, if it is.
    fn reason(&self, item: &Item) -> Option<String> {
        let f = &self.field;
        let value = present(item, f);
        match &self.condition {
            Condition::Missing(b) => (value.is_none() == *b).then(|| match b {
                true => format!("`{f}` is missing"),
                false => format!("`{f}` is present"),
            }),
            Condition::Empty(b) => (is_empty(value) == *b).then(|| match b {
                true => format!("`{f}` is empty"),
                false => format!("`{f}` is not empty"),
            }),
            Condition::Equals(x) => value
                .is_some_and(|v| loose_eq(v, x))
                .then(|| format!("`{f}` equals {}", show(x))),
            Condition::Matches(re, source) => value
                .and_then(Value::as_str)
                .is_some_and(|s| re.is_match(s))
                .then(|| format!("`{f}` matches {source:?}")),
            Condition::Lt(n) => value
                .and_then(Value::as_f64)
                .is_some_and(|v| v < *n)
                .then(|| format!("`{f}` < {n}")),
            Condition::Gt(n) => value
                .and_then(Value::as_f64)
                .is_some_and(|v| v > *n)
                .then(|| format!("`{f}` > {n}")),
        }
    }
}

impl ItemPipeline for DropStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, item: Item) -> Verdict {
        if !self.filter.applies(&item) {
            return Verdict::Keep(item);
        }
        match self.reason(&item) {
            Some(reason) => Verdict::Drop { reason },
            None => Verdict::Keep(item),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::Verdict;
    use crate::test_util::*;

    /// Which of `values` (as field `f`) the stage drops; `null` stands for
    /// "field missing".
    fn dropped(config: Value, values: &[Value]) -> Vec<bool> {
        let s = stage(config);
        values
            .iter()
            .map(|v| {
                let it = if v.is_null() {
                    item(json!({"url": "u"}))
                } else {
                    item(json!({"url": "u", "f": v}))
                };
                is_dropped(&s.process(it))
            })
            .collect()
    }

    #[test]
    fn missing() {
        let values = [json!(null), json!(""), json!(0)];
        assert_eq!(
            dropped(
                json!({"type": "drop", "field": "f", "missing": true}),
                &values
            ),
            [true, false, false]
        );
        assert_eq!(
            dropped(
                json!({"type": "drop", "field": "f", "missing": false}),
                &values
            ),
            [false, true, true]
        );
        // An explicit null is missing too.
        let s = stage(json!({"type": "drop", "field": "f", "missing": true}));
        assert_eq!(
            s.process(item(json!({"f": null}))),
            Verdict::Drop {
                reason: "`f` is missing".into()
            }
        );
    }

    #[test]
    fn empty() {
        let values = [
            json!(null),
            json!("  "),
            json!([]),
            json!({}),
            json!("x"),
            json!(0),
            json!(false),
            json!([0]),
        ];
        assert_eq!(
            dropped(
                json!({"type": "drop", "field": "f", "empty": true}),
                &values
            ),
            [true, true, true, true, false, false, false, false]
        );
        assert_eq!(
            dropped(
                json!({"type": "drop", "field": "f", "empty": false}),
                &values
            ),
            [false, false, false, false, true, true, true, true]
        );
    }

    #[test]
    fn equals() {
        let values = [json!("sold out"), json!("Sold out"), json!(null)];
        assert_eq!(
            dropped(
                json!({"type": "drop", "field": "f", "equals": "sold out"}),
                &values
            ),
            [true, false, false]
        );
        let values = [json!(0), json!(0.0), json!("0"), json!(1)];
        assert_eq!(
            dropped(json!({"type": "drop", "field": "f", "equals": 0}), &values),
            [true, true, false, false]
        );
    }

    #[test]
    fn matches() {
        let values = [
            json!("Gift card"),
            json!("gift"),
            json!("Lamp"),
            json!(5),
            json!(null),
        ];
        assert_eq!(
            dropped(
                json!({"type": "drop", "field": "f", "matches": "(?i)^gift"}),
                &values
            ),
            [true, true, false, false, false]
        );
    }

    #[test]
    fn lt_and_gt() {
        let values = [
            json!(-1),
            json!(0),
            json!(0.5),
            json!(100),
            json!("-5"),
            json!(null),
        ];
        assert_eq!(
            dropped(json!({"type": "drop", "field": "f", "lt": 0}), &values),
            [true, false, false, false, false, false]
        );
        assert_eq!(
            dropped(json!({"type": "drop", "field": "f", "gt": 0.5}), &values),
            [false, false, false, true, false, false]
        );
        let s = stage(json!({"type": "drop", "field": "f", "lt": 0}));
        assert_eq!(
            s.process(item(json!({"f": -2}))),
            Verdict::Drop {
                reason: "`f` < 0".into()
            }
        );
    }

    #[test]
    fn rules_limit_the_stage() {
        let s = stage(json!({"type": "drop", "field": "f", "missing": true, "rules": ["a", "b"]}));
        assert!(is_dropped(&s.process(item(json!({"_rule": "a"})))));
        assert!(is_dropped(&s.process(item(json!({"_rule": "b"})))));
        let other = json!({"_rule": "c"});
        assert_eq!(kept(s.process(item(other.clone()))), other);
    }

    #[test]
    fn compile_errors() {
        let e = compile_err(json!({"type": "drop", "field": "f"}));
        assert!(e.key.is_empty());
        assert!(e.message.contains("needs one condition"), "{e}");
        let e = compile_err(json!({"type": "drop", "field": "f", "lt": 1, "gt": 5}));
        assert_eq!(e.key, ["gt"]);
        let e = compile_err(json!({"type": "drop", "field": "f", "matches": "a("}));
        assert_eq!(e.key, ["matches"]);
        assert!(
            e.message.starts_with("field `f`: invalid regex \"a(\""),
            "{e}"
        );
    }
}
