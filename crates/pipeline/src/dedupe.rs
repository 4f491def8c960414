//! `type = "dedupe"`: keep the first item for each key, drop the others.
//!
//! ```toml
//! [[pipeline]]
//! type = "dedupe"
//! key = ["sku"]          # one or more fields; add "_rule" to keep types apart
//! ```
//!
//! The key is the list of the key fields' values (a missing field counts
//! as `null`), as canonical JSON (object keys sorted, `2.0` written as `2`)
//! hashed with XXH3-128; only the hashes are kept. Items that have none of
//! the key fields (all missing or `null`) cannot be compared and pass
//! through.
//!
//! The seen-set lives in memory, in this process, for the life of the
//! pipeline: it does not survive a resume and is not shared between
//! distributed workers. Across those, deduplicate where the items land
//! (e.g. the PostgreSQL sink's upsert on a key).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::Mutex;
use serde_json::{Map, Value};
use trawl_core::Item;

use crate::spec::{CompileError, DedupeSpec};
use crate::{ItemPipeline, RuleFilter, Verdict, present};

/// Shards of the seen-set, so that parse threads rarely wait for each other.
const SHARDS: usize = 64;

/// The keys are already XXH3 hashes: use their low bits as they are.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type Set = HashSet<u128, BuildHasherDefault<PreHashed>>;

/// The `dedupe` stage.
pub struct DedupeStage {
    name: String,
    filter: RuleFilter,
    key: Vec<String>,
    shards: Vec<Mutex<Set>>,
}

/// `v` with object keys sorted and integral floats written as integers.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                Value::from(f as i64)
            }
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&o[k]));
            }
            Value::Object(out)
        }
        _ => v.clone(),
    }
}

impl DedupeStage {
    pub fn new(name: String, spec: &DedupeSpec) -> Result<DedupeStage, CompileError> {
        if spec.key.is_empty() {
            return Err(CompileError::new(
                &["key"],
                "a dedupe stage needs at least one field in `key`",
            ));
        }
        Ok(DedupeStage {
            name,
            filter: RuleFilter::new(&spec.rules),
            key: spec.key.clone(),
            shards: (0..SHARDS).map(|_| Mutex::new(Set::default())).collect(),
        })
    }

    /// The hash of the item's key, or `None` when it has none of the fields.
    fn key_of(&self, item: &Item) -> Option<(u128, Value)> {
        let values: Vec<Value> = self
            .key
            .iter()
            .map(|f| present(item, f).map_or(Value::Null, canonical))
            .collect();
        if values.iter().all(Value::is_null) {
            return None;
        }
        let key = Value::Array(values);
        let hash = xxhash_rust::xxh3::xxh3_128(key.to_string().as_bytes());
        Some((hash, key))
    }

    /// How many distinct keys have been seen.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ItemPipeline for DedupeStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, item: Item) -> Verdict {
        if !self.filter.applies(&item) {
            return Verdict::Keep(item);
        }
        let Some((hash, key)) = self.key_of(&item) else {
            return Verdict::Keep(item);
        };
        // The high bits pick the shard, the low bits the bucket.
        let shard = ((hash >> 64) as usize) % SHARDS;
        if self.shards[shard].lock().insert(hash) {
            Verdict::Keep(item)
        } else {
            Verdict::Drop {
                reason: format!("duplicate key {}", crate::show(&key)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use serde_json::json;

    use super::*;
    use crate::test_util::*;

    fn dedupe(key: &[&str]) -> DedupeStage {
        DedupeStage::new(
            "d".into(),
            &DedupeSpec {
                key: key.iter().map(|k| k.to_string()).collect(),
                ..DedupeSpec::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn keeps_the_first_of_each_key() {
        let s = dedupe(&["sku"]);
        let first = json!({"url": "u1", "sku": "A"});
        assert_eq!(kept(s.process(item(first.clone()))), first);
        assert_eq!(
            s.process(item(json!({"url": "u2", "sku": "A"}))),
            Verdict::Drop {
                reason: "duplicate key [\"A\"]".into()
            }
        );
        assert!(matches!(
            s.process(item(json!({"sku": "B"}))),
            Verdict::Keep(_)
        ));
        // Types matter: the string "1" and the number 1 differ…
        assert!(matches!(
            s.process(item(json!({"sku": 1}))),
            Verdict::Keep(_)
        ));
        assert!(matches!(
            s.process(item(json!({"sku": "1"}))),
            Verdict::Keep(_)
        ));
        // …but 1.0 is the number 1, and object key order does not matter.
        assert!(is_dropped(&s.process(item(json!({"sku": 1.0})))));
        assert!(matches!(
            s.process(item(json!({"sku": {"a": 1, "b": 2}}))),
            Verdict::Keep(_)
        ));
        assert!(is_dropped(
            &s.process(item(json!({"sku": {"b": 2, "a": 1}})))
        ));
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn composite_keys() {
        let s = dedupe(&["shop", "sku"]);
        assert!(matches!(
            s.process(item(json!({"shop": "x", "sku": "A"}))),
            Verdict::Keep(_)
        ));
        assert!(matches!(
            s.process(item(json!({"shop": "y", "sku": "A"}))),
            Verdict::Keep(_)
        ));
        assert!(is_dropped(
            &s.process(item(json!({"sku": "A", "shop": "x", "n": 2})))
        ));
        // One field missing counts as null, so it is still a key.
        assert!(matches!(
            s.process(item(json!({"sku": "A"}))),
            Verdict::Keep(_)
        ));
        assert!(is_dropped(
            &s.process(item(json!({"sku": "A", "shop": null})))
        ));
    }

    #[test]
    fn items_without_key_fields_pass() {
        let s = dedupe(&["sku"]);
        for _ in 0..3 {
            assert!(matches!(
                s.process(item(json!({"name": "x"}))),
                Verdict::Keep(_)
            ));
            assert!(matches!(
                s.process(item(json!({"sku": null}))),
                Verdict::Keep(_)
            ));
        }
        assert!(s.is_empty());
    }

    #[test]
    fn rules_limit_the_stage() {
        let s = stage(json!({"type": "dedupe", "key": ["sku"], "rules": ["product"]}));
        assert!(matches!(
            s.process(item(json!({"_rule": "product", "sku": "A"}))),
            Verdict::Keep(_)
        ));
        assert!(is_dropped(
            &s.process(item(json!({"_rule": "product", "sku": "A"})))
        ));
        // Other types are not deduplicated, nor do they count.
        for _ in 0..2 {
            assert!(matches!(
                s.process(item(json!({"_rule": "offer", "sku": "B"}))),
                Verdict::Keep(_)
            ));
        }
        assert!(matches!(
            s.process(item(json!({"_rule": "product", "sku": "B"}))),
            Verdict::Keep(_)
        ));
        // "_rule" in the key keeps item types apart.
        let s = dedupe(&["_rule", "sku"]);
        assert!(matches!(
            s.process(item(json!({"_rule": "a", "sku": "A"}))),
            Verdict::Keep(_)
        ));
        assert!(matches!(
            s.process(item(json!({"_rule": "b", "sku": "A"}))),
            Verdict::Keep(_)
        ));
        assert!(is_dropped(
            &s.process(item(json!({"_rule": "b", "sku": "A"})))
        ));
    }

    #[test]
    fn concurrent_threads_keep_exactly_one_per_key() {
        const THREADS: usize = 8;
        const KEYS: usize = 2_048; // a power of two: odd strides below visit every key
        let s = Arc::new(dedupe(&["sku"]));
        let barrier = Barrier::new(THREADS);
        let kept_per_thread: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let s = s.clone();
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        let mut kept = Vec::new();
                        for k in 0..KEYS {
                            // Threads walk the keys in different orders.
                            let k = (k * (2 * t + 1) + t) % KEYS;
                            let it = item(json!({"sku": format!("S{k}"), "thread": t}));
                            if let Verdict::Keep(it) = s.process(it) {
                                let sku = it.0["sku"].as_str().unwrap();
                                kept.push(sku[1..].parse::<u64>().unwrap());
                            }
                        }
                        kept
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<u64> = kept_per_thread.into_iter().flatten().collect();
        assert_eq!(all.len(), KEYS);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), KEYS, "a key was kept twice");
        assert_eq!(s.len(), KEYS);
    }

    #[test]
    fn compile_errors() {
        let e = compile_err(json!({"type": "dedupe", "key": []}));
        assert_eq!(e.key, ["key"]);
    }

    #[test]
    fn canonical_form() {
        assert_eq!(
            canonical(&json!({"b": [2.0, {"d": 1, "c": 0.5}], "a": "x"})).to_string(),
            r#"{"a":"x","b":[2,{"c":0.5,"d":1}]}"#
        );
    }
}
