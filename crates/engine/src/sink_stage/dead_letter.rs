//! The dead-letter file: where a sink's items go when it gives up.
//!
//! One JSON Lines file per sink, `DIR/<sink name, made file-safe>.jsonl`,
//! appended to. Each line is one item exactly as the sink would have got it,
//! so the file can be fed back later (`trawl` items are JSONL everywhere).
//! Raw HTTP exchanges of a WARC sink that gave up are recorded as
//! `{"_exchange": {url, status, bytes}}` lines: their bodies are not kept.

use std::io::Write;
use std::path::{Path, PathBuf};

use trawl_core::{Exchange, Item};

/// The dead-letter file of sink `name` in `dir`.
pub fn path_for(dir: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_matches('_');
    let safe = if safe.len() > 120 {
        &safe[safe.len() - 120..]
    } else {
        safe
    };
    dir.join(format!("{safe}.jsonl"))
}

/// Append `items` (and a summary line per exchange) to `path`, durably.
pub fn write(path: &Path, items: &[Item], exchanges: &[Exchange]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut buf = Vec::new();
    for item in items {
        serde_json::to_writer(&mut buf, item)?;
        buf.push(b'\n');
    }
    for ex in exchanges {
        let line = serde_json::json!({"_exchange": {
            "url": ex.url, "status": ex.status, "bytes": ex.body.len()
        }});
        serde_json::to_writer(&mut buf, &line)?;
        buf.push(b'\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(&buf)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_file_safe_and_items_append() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(dir.path(), "postgres:127.0.0.1:5432/test/items");
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            "postgres_127.0.0.1_5432_test_items.jsonl"
        );
        let mut m = serde_json::Map::new();
        m.insert("a".into(), 1.into());
        write(&p, &[Item(m.clone())], &[]).unwrap();
        write(&p, &[Item(m)], &[]).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"a\":1}\n");
    }
}
