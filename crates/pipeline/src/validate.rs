//! `type = "validate"`: required fields and per-field checks.
//!
//! ```toml
//! [[pipeline]]
//! type = "validate"
//! rules = ["product"]
//! required = ["name", "price"]
//! [pipeline.fields.price]
//! type = "number"          # string, number, integer, bool, array, object
//! min = 0                  # max; numbers
//! [pipeline.fields.sku]
//! pattern = "^[A-Z0-9-]+$" # a regex the string must match
//! max_len = 32             # min_len; characters of a string, elements of an array
//! [pipeline.fields.currency]
//! one_of = ["EUR", "USD"]
//! ```
//!
//! The first failing check makes the item [`Verdict::Invalid`] with an
//! error record naming the field. A field that is missing or `null` fails
//! only `required`; its other checks are skipped.

use regex::Regex;
use serde_json::Value;
use trawl_core::Item;

use crate::spec::{CompileError, FieldCheck, ValidateSpec, ValueType, regex};
use crate::{ItemPipeline, RuleFilter, Verdict, error_record, loose_eq, present, show, type_name};

struct Check {
    field: String,
    required: bool,
    kind: Option<ValueType>,
    min: Option<f64>,
    max: Option<f64>,
    min_len: Option<usize>,
    max_len: Option<usize>,
    pattern: Option<(Regex, String)>,
    one_of: Option<Vec<Value>>,
}

/// The `validate` stage.
pub struct ValidateStage {
    name: String,
    filter: RuleFilter,
    required: Vec<String>,
    checks: Vec<Check>,
}

impl ValidateStage {
    pub fn new(name: String, spec: &ValidateSpec) -> Result<ValidateStage, CompileError> {
        if spec.required.is_empty() && spec.fields.is_empty() {
            return Err(CompileError::new(
                &[],
                "a validate stage needs `required` or `fields`",
            ));
        }
        let mut checks = Vec::new();
        for (field, c) in &spec.fields {
            checks.push(compile_check(field, c)?);
        }
        Ok(ValidateStage {
            name,
            filter: RuleFilter::new(&spec.rules),
            required: spec.required.clone(),
            checks,
        })
    }

    /// The first check `item` fails: (field, message).
    fn first_failure(&self, item: &Item) -> Option<(&str, String)> {
        for field in &self.required {
            if present(item, field).is_none() {
                return Some((field, "required field missing".into()));
            }
        }
        for c in &self.checks {
            let Some(value) = present(item, &c.field) else {
                if c.required {
                    return Some((&c.field, "required field missing".into()));
                }
                continue;
            };
            if let Some(message) = c.fails(value) {
                return Some((&c.field, message));
            }
        }
        None
    }
}

fn compile_check(field: &str, c: &FieldCheck) -> Result<Check, CompileError> {
    let at = |key: &'static str| ["fields", field, key];
    if let (Some(min), Some(max)) = (c.min, c.max)
        && min > max
    {
        return Err(CompileError::new(
            &at("min"),
            format!("field `{field}`: min {min} is greater than max {max}"),
        ));
    }
    if let (Some(min), Some(max)) = (c.min_len, c.max_len)
        && min > max
    {
        return Err(CompileError::new(
            &at("min_len"),
            format!("field `{field}`: min_len {min} is greater than max_len {max}"),
        ));
    }
    let pattern = match &c.pattern {
        Some(p) => Some((
            regex(&at("pattern"), &format!("field `{field}`"), p)?,
            p.clone(),
        )),
        None => None,
    };
    Ok(Check {
        field: field.to_string(),
        required: c.required,
        kind: c.kind,
        min: c.min,
        max: c.max,
        min_len: c.min_len,
        max_len: c.max_len,
        pattern,
        one_of: c.one_of.clone(),
    })
}

fn has_type(v: &Value, kind: ValueType) -> bool {
    match kind {
        ValueType::String => v.is_string(),
        ValueType::Number => v.is_number(),
        ValueType::Integer => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        ValueType::Bool => v.is_boolean(),
        ValueType::Array => v.is_array(),
        ValueType::Object => v.is_object(),
    }
}

impl Check {
    /// Why `value` (present, not null) fails, if it does.
    fn fails(&self, value: &Value) -> Option<String> {
        let found = || format!("found {} {}", type_name(value), show(value));
        if let Some(kind) = self.kind
            && !has_type(value, kind)
        {
            return Some(format!("expected {}, {}", kind.as_str(), found()));
        }
        if self.min.is_some() || self.max.is_some() {
            let Some(n) = value.as_f64() else {
                return Some(format!("expected a number, {}", found()));
            };
            if let Some(min) = self.min
                && n < min
            {
                return Some(format!("{} is less than the minimum {min}", show(value)));
            }
            if let Some(max) = self.max
                && n > max
            {
                return Some(format!("{} is greater than the maximum {max}", show(value)));
            }
        }
        if self.min_len.is_some() || self.max_len.is_some() {
            let len = match value {
                Value::String(s) => s.chars().count(),
                Value::Array(a) => a.len(),
                _ => return Some(format!("expected a string or an array, {}", found())),
            };
            if let Some(min) = self.min_len
                && len < min
            {
                return Some(format!("length {len} is less than min_len {min}"));
            }
            if let Some(max) = self.max_len
                && len > max
            {
                return Some(format!("length {len} is greater than max_len {max}"));
            }
        }
        if let Some((re, source)) = &self.pattern {
            let Some(s) = value.as_str() else {
                return Some(format!("expected a string, {}", found()));
            };
            if !re.is_match(s) {
                return Some(format!("{} does not match {source:?}", show(value)));
            }
        }
        if let Some(allowed) = &self.one_of
            && !allowed.iter().any(|a| loose_eq(a, value))
        {
            let list: Vec<String> = allowed.iter().map(show).collect();
            return Some(format!("{} is not one of {}", show(value), list.join(", ")));
        }
        None
    }
}

impl ItemPipeline for ValidateStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, item: Item) -> Verdict {
        if !self.filter.applies(&item) {
            return Verdict::Keep(item);
        }
        match self.first_failure(&item) {
            None => Verdict::Keep(item),
            Some((field, message)) => Verdict::Invalid {
                error: error_record(&item, &self.name, field, message),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::test_util::*;

    fn error_of(stage: &dyn crate::ItemPipeline, v: Value) -> (String, String) {
        let e = invalid(stage.process(item(v)));
        (
            e["field"].as_str().unwrap().to_string(),
            e["error"].as_str().unwrap().to_string(),
        )
    }

    use serde_json::Value;

    #[test]
    fn required_fields() {
        let s = stage(json!({"type": "validate", "required": ["name", "price"]}));
        let ok = json!({"url": "u", "_rule": "p", "name": "x", "price": 0});
        assert_eq!(kept(s.process(item(ok.clone()))), ok);
        let e = invalid(s.process(item(json!({"url": "u", "_rule": "p", "name": "x"}))));
        assert_eq!(
            e,
            json!({"url": "u", "rule": "p", "stage": "validate[0]", "field": "price",
                   "error": "required field missing"})
        );
        // null counts as missing; the first missing field is named.
        let (field, _) = error_of(&*s, json!({"name": null}));
        assert_eq!(field, "name");
        // `required = true` in a field table does the same.
        let s =
            stage(json!({"type": "validate", "fields": {"price": {"required": true, "min": 0}}}));
        assert_eq!(error_of(&*s, json!({})).1, "required field missing");
        assert!(matches!(
            s.process(item(json!({"price": 1}))),
            crate::Verdict::Keep(_)
        ));
    }

    #[test]
    fn checks_skip_missing_fields() {
        let s =
            stage(json!({"type": "validate", "fields": {"price": {"type": "number", "min": 0}}}));
        let v = json!({"name": "x"});
        assert_eq!(kept(s.process(item(v.clone()))), v);
        let v = json!({"price": null});
        assert_eq!(kept(s.process(item(v.clone()))), v);
    }

    #[test]
    fn types() {
        let cases = [
            ("string", json!("a"), json!(1)),
            ("number", json!(1.5), json!("1.5")),
            ("integer", json!(3), json!(3.5)),
            ("integer", json!(3.0), json!("3")),
            ("bool", json!(true), json!("true")),
            ("boolean", json!(false), json!(0)),
            ("array", json!([1]), json!({"a": 1})),
            ("list", json!([]), json!("a,b")),
            ("object", json!({"a": 1}), json!([1])),
        ];
        for (kind, good, bad) in cases {
            let s = stage(json!({"type": "validate", "fields": {"f": {"type": kind}}}));
            assert_eq!(
                kept(s.process(item(json!({"f": good})))),
                json!({"f": good}),
                "{kind}"
            );
            let (field, message) = error_of(&*s, json!({"f": bad}));
            assert_eq!(field, "f");
            assert!(message.starts_with("expected "), "{kind}: {message}");
        }
        let s = stage(json!({"type": "validate", "fields": {"f": {"type": "integer"}}}));
        assert_eq!(
            error_of(&*s, json!({"f": 3.5})).1,
            "expected an integer, found a number 3.5"
        );
    }

    #[test]
    fn min_and_max() {
        let s = stage(json!({"type": "validate", "fields": {"p": {"min": 0, "max": 10.5}}}));
        for good in [json!(0), json!(10.5), json!(3)] {
            assert!(matches!(
                s.process(item(json!({"p": good}))),
                crate::Verdict::Keep(_)
            ));
        }
        assert_eq!(
            error_of(&*s, json!({"p": -1})).1,
            "-1 is less than the minimum 0"
        );
        assert_eq!(
            error_of(&*s, json!({"p": 11})).1,
            "11 is greater than the maximum 10.5"
        );
        assert_eq!(
            error_of(&*s, json!({"p": "5"})).1,
            "expected a number, found a string \"5\""
        );
    }

    #[test]
    fn lengths() {
        let s = stage(json!({"type": "validate", "fields": {"t": {"min_len": 2, "max_len": 3}}}));
        for good in [json!("ab"), json!("äöü"), json!([1, 2]), json!([1, 2, 3])] {
            assert!(matches!(
                s.process(item(json!({"t": good}))),
                crate::Verdict::Keep(_)
            ));
        }
        assert_eq!(
            error_of(&*s, json!({"t": "a"})).1,
            "length 1 is less than min_len 2"
        );
        assert_eq!(
            error_of(&*s, json!({"t": [1, 2, 3, 4]})).1,
            "length 4 is greater than max_len 3"
        );
        assert!(
            error_of(&*s, json!({"t": 12}))
                .1
                .starts_with("expected a string or an array")
        );
    }

    #[test]
    fn pattern() {
        let s = stage(json!({"type": "validate", "fields": {"sku": {"pattern": "^[A-Z]+-\\d+$"}}}));
        assert!(matches!(
            s.process(item(json!({"sku": "AB-12"}))),
            crate::Verdict::Keep(_)
        ));
        assert_eq!(
            error_of(&*s, json!({"sku": "ab-12"})).1,
            "\"ab-12\" does not match \"^[A-Z]+-\\\\d+$\""
        );
        assert!(
            error_of(&*s, json!({"sku": 12}))
                .1
                .starts_with("expected a string")
        );
        // Not anchored: matches anywhere.
        let s = stage(json!({"type": "validate", "fields": {"u": {"pattern": "https?://"}}}));
        assert!(matches!(
            s.process(item(json!({"u": "see http://x"}))),
            crate::Verdict::Keep(_)
        ));
    }

    #[test]
    fn one_of() {
        let s = stage(json!({"type": "validate", "fields": {"c": {"one_of": ["EUR", "USD", 1]}}}));
        for good in [json!("EUR"), json!("USD"), json!(1.0)] {
            assert!(matches!(
                s.process(item(json!({"c": good}))),
                crate::Verdict::Keep(_)
            ));
        }
        assert_eq!(
            error_of(&*s, json!({"c": "GBP"})).1,
            "\"GBP\" is not one of \"EUR\", \"USD\", 1"
        );
    }

    #[test]
    fn first_failing_field_in_order() {
        let s = stage(json!({"type": "validate", "required": ["a"],
            "fields": {"b": {"min": 0}, "c": {"max_len": 1}}}));
        assert_eq!(error_of(&*s, json!({"b": -1, "c": "xx"})).0, "a");
        assert_eq!(error_of(&*s, json!({"a": 1, "b": -1, "c": "xx"})).0, "b");
        assert_eq!(error_of(&*s, json!({"a": 1, "b": 1, "c": "xx"})).0, "c");
    }

    #[test]
    fn rules_limit_the_stage() {
        let s = stage(json!({"type": "validate", "rules": ["product"], "required": ["price"]}));
        let review = json!({"_rule": "review", "text": "ok"});
        assert_eq!(kept(s.process(item(review.clone()))), review);
        let untyped = json!({"text": "ok"});
        assert_eq!(kept(s.process(item(untyped.clone()))), untyped);
        assert_eq!(
            invalid(s.process(item(json!({"_rule": "product"}))))["field"],
            "price"
        );
    }

    #[test]
    fn compile_errors() {
        let e = compile_err(json!({"type": "validate", "fields": {"sku": {"pattern": "(["}}}));
        assert_eq!(e.key, ["fields", "sku", "pattern"]);
        assert!(
            e.message.starts_with("field `sku`: invalid regex \"([\""),
            "{e}"
        );
        let e = compile_err(json!({"type": "validate", "fields": {"p": {"min": 5, "max": 1}}}));
        assert_eq!(e.key, ["fields", "p", "min"]);
        let e =
            compile_err(json!({"type": "validate", "fields": {"p": {"min_len": 5, "max_len": 1}}}));
        assert_eq!(e.key, ["fields", "p", "min_len"]);
        let e = compile_err(json!({"type": "validate"}));
        assert!(e.key.is_empty());
        assert!(e.message.contains("needs `required` or `fields`"));
    }
}
