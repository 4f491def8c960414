//! Sink specifications: which outputs a crawl writes, as written in a
//! spider file's `[[sinks]]` tables or on the command line (`--sink`).
//!
//! ```toml
//! [[sinks]]
//! type = "jsonl"
//! path = "items.jsonl"
//!
//! [[sinks]]
//! type = "jsonl"
//! path = "pages.jsonl.gz"
//! gzip = true
//! rotate_bytes = 100000000
//!
//! [[sinks]]
//! type = "csv"
//! path = "items.csv.gz"
//! gzip = true
//! rotate_rows = 100000
//!
//! [[sinks]]
//! type = "warc"
//! dir = "archive"
//! rotate_bytes = 1000000000
//!
//! [[sinks]]
//! type = "postgres"
//! url = "postgres://postgres@127.0.0.1:5432/test"
//! key = "url"
//!
//! [[sinks]]
//! type = "nats"
//! url = "nats://127.0.0.1:4222"
//! subject = "trawl.items"
//! stream = "TRAWL_ITEMS"
//!
//! [[sinks]]
//! type = "amqp"
//! url = "amqp://guest:guest@127.0.0.1:5672/%2f"
//! queue = "trawl_items"
//! exchange = "trawl"              # optional: "" (default) is the default exchange
//! routing_key = "items"           # optional: default the queue's name
//! ```
//!
//! On the command line the same thing is `TYPE:TARGET[,key=value…]`, a bare
//! `key` meaning `key=true`; a `postgres://` or `postgresql://` URL needs no
//! type, nor does a `nats://HOST:PORT/SUBJECT` or an `amqp://…` URL:
//!
//! ```text
//! --sink jsonl:items.jsonl
//! --sink jsonl:items.jsonl.gz,gzip,rotate_rows=1000
//! --sink csv:items.csv.gz,gzip,rotate_rows=100000
//! --sink warc:archive,rotate_bytes=1000000000
//! --sink postgres://postgres@127.0.0.1/test,table=products,key=sku
//! --sink nats://127.0.0.1:4222/trawl.items,stream=TRAWL_ITEMS
//! --sink amqp://guest:guest@127.0.0.1:5672/%2f,queue=trawl_items
//! --sink amqp://guest:guest@127.0.0.1:5672/%2f,queue=pages,exchange=trawl,routing_key=pages
//! ```
//!
//! Commas separate options, so a comma in an AMQP password is written
//! `%2C`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One output of a crawl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkSpec {
    /// JSON Lines (`-` is standard output, which cannot be gzipped or
    /// rotated).
    Jsonl {
        path: PathBuf,
        #[serde(default)]
        gzip: bool,
        /// Start a new file after this many lines.
        rotate_rows: Option<u64>,
        /// Start a new file before it passes this many (uncompressed) bytes.
        rotate_bytes: Option<u64>,
    },
    /// CSV with a header row; columns in the spider's field order.
    Csv {
        path: PathBuf,
        #[serde(default)]
        gzip: bool,
        /// Start a new file after this many rows.
        rotate_rows: Option<u64>,
        /// Start a new file before it passes this many (uncompressed) bytes.
        rotate_bytes: Option<u64>,
        /// Column order (default: the spider's fields, else the first item's keys).
        columns: Option<Vec<String>>,
    },
    /// WARC 1.1 archive of every response (request and response records),
    /// plus a metadata record per item unless `items = false`.
    Warc {
        dir: PathBuf,
        #[serde(default = "default_prefix")]
        prefix: String,
        rotate_bytes: Option<u64>,
        #[serde(default = "yes")]
        items: bool,
    },
    /// PostgreSQL: a table per item type (`<prefix><rule>`), typed columns
    /// from the spider's fields plus the whole item as `jsonb`.
    Postgres {
        /// Connection string (`postgres://…` or `key=value …`).
        url: String,
        /// Write every item to this one table instead of one per item type.
        table: Option<String>,
        /// Table name prefix for per-type tables (default: the spider's name and `_`).
        table_prefix: Option<String>,
        /// Upsert key column; default `url`. `key = ""` appends instead.
        key: Option<String>,
        /// Most connections in the pool.
        #[serde(default = "default_pool")]
        pool: usize,
        /// Only `url` and `item jsonb` columns, no typed columns.
        #[serde(default)]
        jsonb_only: bool,
        /// `copy` (default) or `rows` (one INSERT per item; slower).
        #[serde(default)]
        mode: PgMode,
    },
    /// NATS JetStream: each item a message on `subject`, stored by
    /// `stream` (created if missing, with a ten-minute duplicate window).
    Nats {
        /// The server (`nats://host:port`).
        url: String,
        subject: String,
        #[serde(default = "default_stream")]
        stream: String,
    },
    /// AMQP 0-9-1 (RabbitMQ): each item a persistent message in the
    /// durable `queue` (declared if missing), published through `exchange`
    /// (`""`: the default exchange; else declared `direct` and bound to the
    /// queue with `routing_key`) with publisher confirms.
    Amqp {
        /// The broker (`amqp://USER:PASS@HOST:PORT/VHOST`; the vhost `%2f`
        /// or empty is `/`).
        url: String,
        #[serde(default = "default_queue")]
        queue: String,
        #[serde(default)]
        exchange: String,
        /// Default: the queue's name.
        routing_key: Option<String>,
    },
}

/// How the PostgreSQL sink writes a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PgMode {
    #[default]
    Copy,
    Rows,
}

fn default_prefix() -> String {
    "trawl".to_string()
}
fn yes() -> bool {
    true
}
fn default_pool() -> usize {
    4
}
fn default_stream() -> String {
    crate::nats::DEFAULT_STREAM.to_string()
}
fn default_queue() -> String {
    crate::amqp::DEFAULT_QUEUE.to_string()
}

/// Options whose values are names, kept as strings even when they look like
/// a number or a bool (`queue=2024`).
const NAME_OPTIONS: [&str; 3] = ["queue", "exchange", "routing_key"];

/// A `--sink` argument that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--sink {spec:?}: {message}")]
pub struct SpecError {
    pub spec: String,
    pub message: String,
}

impl SinkSpec {
    /// A plain JSON Lines file (`-`: standard output).
    pub fn jsonl(path: impl Into<PathBuf>) -> SinkSpec {
        SinkSpec::Jsonl {
            path: path.into(),
            gzip: false,
            rotate_rows: None,
            rotate_bytes: None,
        }
    }

    /// Parse a command-line spec (see the module docs).
    pub fn parse_cli(text: &str) -> Result<SinkSpec, SpecError> {
        let fail = |message: String| SpecError {
            spec: without_password(text),
            message,
        };
        let mut parts = split_options(text).into_iter();
        let head = parts.next().unwrap_or_default();
        let (kind, target) = if head.starts_with("postgres://") || head.starts_with("postgresql://")
        {
            ("postgres".to_string(), head.clone())
        } else if head.starts_with("nats://") {
            ("nats".to_string(), head.clone())
        } else if head.starts_with("amqp://") || head.starts_with("amqps://") {
            ("amqp".to_string(), head.clone())
        } else {
            match head.split_once(':') {
                Some((k, t)) if !t.is_empty() => (k.to_ascii_lowercase(), t.to_string()),
                _ => {
                    return Err(fail(
                        "expected TYPE:TARGET (jsonl:FILE, csv:FILE, warc:DIR, postgres://URL, nats://HOST:PORT/SUBJECT, amqp://USER:PASS@HOST:PORT/VHOST)"
                            .into(),
                    ));
                }
            }
        };
        let mut table = toml::Table::new();
        table.insert("type".into(), kind.clone().into());
        let target_key = match kind.as_str() {
            "jsonl" | "csv" => "path",
            "warc" => "dir",
            "postgres" | "postgresql" => {
                table.insert("type".into(), "postgres".into());
                "url"
            }
            "nats" => {
                let server_end = target
                    .strip_prefix("nats://")
                    .and_then(|rest| rest.find('/'))
                    .map(|i| i + "nats://".len());
                let Some(end) = server_end.filter(|&end| end + 1 < target.len()) else {
                    return Err(fail("expected nats://HOST:PORT/SUBJECT".into()));
                };
                table.insert("subject".into(), target[end + 1..].into());
                table.insert("url".into(), target[..end].into());
                ""
            }
            "amqp" => "url",
            other => {
                return Err(fail(format!(
                    "unknown sink type {other:?} (expected jsonl, csv, warc, postgres, nats or amqp)"
                )));
            }
        };
        if !target_key.is_empty() {
            table.insert(target_key.into(), target.into());
        }
        for opt in parts {
            let (k, v) = match opt.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => (opt.trim().to_string(), "true".to_string()),
            };
            let value = if NAME_OPTIONS.contains(&k.as_str()) && kind == "amqp" {
                toml::Value::String(v)
            } else if let Ok(n) = v.parse::<i64>() {
                toml::Value::Integer(n)
            } else if let Ok(b) = v.parse::<bool>() {
                toml::Value::Boolean(b)
            } else if k == "columns" {
                toml::Value::Array(v.split('|').map(|c| c.trim().into()).collect())
            } else {
                toml::Value::String(v)
            };
            table.insert(k, value);
        }
        let spec =
            SinkSpec::deserialize(table).map_err(|e| fail(e.to_string().trim().to_string()))?;
        if let SinkSpec::Jsonl {
            path,
            gzip,
            rotate_rows,
            rotate_bytes,
        } = &spec
            && path == std::path::Path::new("-")
            && (*gzip || rotate_rows.is_some() || rotate_bytes.is_some())
        {
            return Err(fail(
                "standard output cannot be gzipped or rotated: write to a file".into(),
            ));
        }
        if let SinkSpec::Amqp {
            url,
            queue,
            exchange,
            routing_key,
        } = &spec
        {
            crate::amqp::Address::parse(url).map_err(fail)?;
            crate::amqp::check_route(queue, exchange, routing_key.as_deref()).map_err(fail)?;
        }
        Ok(spec)
    }

    /// The file or directory this sink writes, if any.
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match self {
            SinkSpec::Jsonl { path, .. } | SinkSpec::Csv { path, .. } => Some(path),
            SinkSpec::Warc { dir, .. } => Some(dir),
            SinkSpec::Postgres { .. } | SinkSpec::Nats { .. } | SinkSpec::Amqp { .. } => None,
        }
    }
}

/// `text` with the password of a `scheme://user:password@host` URL in it
/// replaced by `***`: error messages repeat the spec.
fn without_password(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_string();
    };
    let authority_end = text[start..]
        .find(['/', ',', '?', '#'])
        .map_or(text.len(), |i| start + i);
    let Some(at) = text[start..authority_end].rfind('@').map(|i| start + i) else {
        return text.to_string();
    };
    match text[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}***{}", &text[..colon + 1], &text[at..]),
        None => text.to_string(),
    }
}

/// Split on commas, except inside a `postgres://` URL's query (`?a=b&c=d`
/// has no commas, so plain splitting is enough) — kept simple: commas are
/// separators everywhere.
fn split_options(text: &str) -> Vec<String> {
    text.split(',').map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn command_line_specs() {
        assert_eq!(
            SinkSpec::parse_cli("jsonl:out.jsonl").unwrap(),
            SinkSpec::Jsonl {
                path: "out.jsonl".into(),
                gzip: false,
                rotate_rows: None,
                rotate_bytes: None,
            }
        );
        assert_eq!(
            SinkSpec::parse_cli("jsonl:out.jsonl").unwrap(),
            SinkSpec::jsonl("out.jsonl")
        );
        assert_eq!(
            SinkSpec::parse_cli("jsonl:out.jsonl.gz,gzip,rotate_rows=1000").unwrap(),
            SinkSpec::Jsonl {
                path: "out.jsonl.gz".into(),
                gzip: true,
                rotate_rows: Some(1000),
                rotate_bytes: None,
            }
        );
        assert_eq!(
            SinkSpec::parse_cli("jsonl:o.jsonl,rotate_bytes=5000,gzip=false").unwrap(),
            SinkSpec::Jsonl {
                path: "o.jsonl".into(),
                gzip: false,
                rotate_rows: None,
                rotate_bytes: Some(5000),
            }
        );
        assert_eq!(
            SinkSpec::parse_cli("jsonl:-").unwrap(),
            SinkSpec::jsonl("-")
        );
        assert_eq!(
            SinkSpec::parse_cli("csv:o.csv.gz,gzip,rotate_rows=10,columns=a|b").unwrap(),
            SinkSpec::Csv {
                path: "o.csv.gz".into(),
                gzip: true,
                rotate_rows: Some(10),
                rotate_bytes: None,
                columns: Some(vec!["a".into(), "b".into()]),
            }
        );
        match SinkSpec::parse_cli("warc:arch,rotate_bytes=1000,items=false").unwrap() {
            SinkSpec::Warc {
                dir,
                prefix,
                rotate_bytes,
                items,
            } => {
                assert_eq!(dir, PathBuf::from("arch"));
                assert_eq!(prefix, "trawl");
                assert_eq!(rotate_bytes, Some(1000));
                assert!(!items);
            }
            other => panic!("{other:?}"),
        }
        match SinkSpec::parse_cli("postgres://u@127.0.0.1/test,table=t,key=sku,mode=rows").unwrap()
        {
            SinkSpec::Postgres {
                url,
                table,
                key,
                mode,
                pool,
                ..
            } => {
                assert_eq!(url, "postgres://u@127.0.0.1/test");
                assert_eq!(table.as_deref(), Some("t"));
                assert_eq!(key.as_deref(), Some("sku"));
                assert_eq!(mode, PgMode::Rows);
                assert_eq!(pool, 4);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nats_specs() {
        assert_eq!(
            SinkSpec::parse_cli("nats://127.0.0.1:4222/trawl.items,stream=PAGES").unwrap(),
            SinkSpec::Nats {
                url: "nats://127.0.0.1:4222".into(),
                subject: "trawl.items".into(),
                stream: "PAGES".into(),
            }
        );
        match SinkSpec::parse_cli("nats://h:1/s").unwrap() {
            SinkSpec::Nats { stream, .. } => assert_eq!(stream, "TRAWL_ITEMS"),
            other => panic!("{other:?}"),
        }
        for bad in ["nats://h:1", "nats://h:1/", "nats:"] {
            let e = SinkSpec::parse_cli(bad).unwrap_err().to_string();
            assert!(
                e.contains("nats://HOST:PORT/SUBJECT") || e.contains("TYPE:TARGET"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn amqp_specs() {
        assert_eq!(
            SinkSpec::parse_cli("amqp://guest:guest@127.0.0.1:5672/%2f,queue=pages").unwrap(),
            SinkSpec::Amqp {
                url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
                queue: "pages".into(),
                exchange: String::new(),
                routing_key: None,
            }
        );
        assert_eq!(
            SinkSpec::parse_cli("amqp://h").unwrap(),
            SinkSpec::Amqp {
                url: "amqp://h".into(),
                queue: "trawl_items".into(),
                exchange: String::new(),
                routing_key: None,
            }
        );
        // Names that look like numbers or bools stay names.
        assert_eq!(
            SinkSpec::parse_cli("amqp://u:p@h:5673/crawls,queue=2024,exchange=true,routing_key=7")
                .unwrap(),
            SinkSpec::Amqp {
                url: "amqp://u:p@h:5673/crawls".into(),
                queue: "2024".into(),
                exchange: "true".into(),
                routing_key: Some("7".into()),
            }
        );
        for (bad, want) in [
            ("amqps://u:p@h/", "amqps:// (TLS) is not supported"),
            ("amqp://h/a/b", "write it as %2f"),
            ("amqp:///", "no host"),
            ("amqp://h/,queue=", "queue= names no queue"),
            ("amqp://h/,routing_key=k", "without exchange="),
            ("amqp://h/,qeue=x", "qeue"),
            ("amqp://h/?heartbeat=10", "query"),
        ] {
            let e = SinkSpec::parse_cli(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let long = format!("amqp://h/,exchange={}", "x".repeat(256));
        let e = SinkSpec::parse_cli(&long).unwrap_err().to_string();
        assert!(e.contains("exchange= is 256 bytes long"), "{e}");
        // The spec is repeated in the message, its password not.
        let e = SinkSpec::parse_cli("amqp://me:s3cret@h/a/b,queue=q")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--sink \"amqp://me:***@h/a/b,queue=q\""),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        let e = SinkSpec::parse_cli("postgres://me:s3cret@h/db,mode=fast")
            .unwrap_err()
            .to_string();
        assert!(e.contains("me:***@h/db") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn bad_command_line_specs_say_why() {
        let e = SinkSpec::parse_cli("parquet:x").unwrap_err().to_string();
        assert!(e.contains("unknown sink type \"parquet\""), "{e}");
        let e = SinkSpec::parse_cli("out.jsonl").unwrap_err().to_string();
        assert!(e.contains("TYPE:TARGET"), "{e}");
        let e = SinkSpec::parse_cli("csv:o.csv,gzipp")
            .unwrap_err()
            .to_string();
        assert!(e.contains("gzipp"), "{e}");
        for spec in [
            "jsonl:-,gzip",
            "jsonl:-,rotate_rows=10",
            "jsonl:-,rotate_bytes=10",
        ] {
            let e = SinkSpec::parse_cli(spec).unwrap_err().to_string();
            assert!(
                e.contains("standard output cannot be gzipped or rotated"),
                "{e}"
            );
        }
        let e = SinkSpec::parse_cli("jsonl:o.jsonl,columns=a|b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("columns"), "{e}");
        let e = SinkSpec::parse_cli("csv:o.csv,rotate_rows=many")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rotate_rows"), "{e}");
    }

    #[test]
    fn toml_specs() {
        #[derive(Deserialize)]
        struct F {
            sinks: Vec<SinkSpec>,
        }
        let f: F = toml::from_str(
            "[[sinks]]\ntype = \"jsonl\"\npath = \"a.jsonl\"\n[[sinks]]\ntype = \"postgres\"\nurl = \"postgres://x/y\"\n",
        )
        .unwrap();
        assert_eq!(f.sinks.len(), 2);
        assert_eq!(f.sinks[0], SinkSpec::jsonl("a.jsonl"));
        let f: F = toml::from_str(
            "[[sinks]]\ntype = \"jsonl\"\npath = \"a.jsonl.gz\"\ngzip = true\nrotate_rows = 10\nrotate_bytes = 2000\n",
        )
        .unwrap();
        assert_eq!(
            f.sinks,
            [SinkSpec::Jsonl {
                path: "a.jsonl.gz".into(),
                gzip: true,
                rotate_rows: Some(10),
                rotate_bytes: Some(2000),
            }]
        );
        let f: F = toml::from_str(
            "[[sinks]]\ntype = \"amqp\"\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nexchange = \"trawl\"\nrouting_key = \"pages\"\n",
        )
        .unwrap();
        assert_eq!(
            f.sinks,
            [SinkSpec::Amqp {
                url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
                queue: "trawl_items".into(),
                exchange: "trawl".into(),
                routing_key: Some("pages".into()),
            }]
        );
        let e = toml::from_str::<F>("[[sinks]]\ntype = \"amqp\"\nqueue = \"q\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("url"), "{e}");
        let e = toml::from_str::<F>("[[sinks]]\ntype = \"jsonl\"\npath = \"a\"\nzip = true\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("zip"), "{e}");
    }
}
