//! The checkpoint stored with each acknowledgement: every sink's position.
//!
//! `{"sinks": {"jsonl:/abs/out.jsonl": 12345, "csv:/abs/out.csv": 678}}`

use serde_json::{Map, Value};

/// Encode sink positions as a checkpoint.
pub fn encode(positions: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "sinks": positions })).unwrap_or_default()
}

/// Where sink `name` stood at the last acknowledgement, from a checkpoint.
pub fn position_in(checkpoint: &[u8], name: &str) -> Option<u64> {
    let value: Value = serde_json::from_slice(checkpoint).ok()?;
    value.get("sinks")?.get(name)?.as_u64()
}

/// The only sink position in a checkpoint, if it holds exactly one (a
/// crawl resumed with its output path spelled differently).
pub fn single_position(checkpoint: &[u8]) -> Option<u64> {
    let value: Value = serde_json::from_slice(checkpoint).ok()?;
    let sinks = value.get("sinks")?.as_object()?;
    match sinks.values().collect::<Vec<_>>().as_slice() {
        [only] => only.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let mut m = Map::new();
        m.insert("a".into(), 5.into());
        let c = encode(&m);
        assert_eq!(position_in(&c, "a"), Some(5));
        assert_eq!(position_in(&c, "b"), None);
        assert_eq!(single_position(&c), Some(5));
        m.insert("b".into(), 7.into());
        let c = encode(&m);
        assert_eq!(position_in(&c, "b"), Some(7));
        assert_eq!(single_position(&c), None);
        assert_eq!(position_in(b"not json", "a"), None);
    }
}
