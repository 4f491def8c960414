//! Opening outputs from their specs: each sink builds itself from its
//! [`SinkSpec`] (as Vector's `SinkConfig::build`), resumed at its
//! checkpointed position when a crawl resumes. A new kind of sink is a
//! spec variant and an arm here; nothing outside this crate changes.

use std::path::Path;

use trawl_core::checkpoint::{position_in, single_position};
use trawl_core::{Sink, SinkError};

use crate::postgres::{ColumnType, WriteMode};
use crate::postgres_tables::{PostgresTables, TableSchema, Tables};
use crate::spec::PgMode;
use crate::warc::WarcSink;
use crate::{CsvOptions, CsvSink, JsonlSink, SinkSpec};

/// An output that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The sink's error is in the message (not chained as a source, so
    /// error reports don't print it twice).
    #[error("{what}: {error}")]
    Sink { what: String, error: SinkError },
    #[error("two outputs write {0}")]
    SameTarget(String),
}

trait Context<T> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, OpenError>;
    fn context(self, what: &str) -> Result<T, OpenError>;
}

impl<T> Context<T> for Result<T, SinkError> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, OpenError> {
        self.map_err(|error| OpenError::Sink {
            what: what(),
            error,
        })
    }
    fn context(self, what: &str) -> Result<T, OpenError> {
        self.with_context(|| what.to_string())
    }
}

/// An item type's fields, in order, with their declared types
/// ("text", "number", "integer", "bool", "date", "list", "json").
#[derive(Debug, Clone, Default)]
pub struct ItemSchema {
    pub item_type: String,
    pub fields: Vec<(String, String)>,
}

/// What opening outputs needs to know about the crawl.
#[derive(Default)]
pub struct OutputContext<'a> {
    /// The frontier's checkpoint, when the crawl resumes.
    pub checkpoint: Option<&'a [u8]>,
    /// Truncate-or-append for fresh files.
    pub append: bool,
    /// The spider's name and item types (table names, columns).
    pub spider_name: Option<&'a str>,
    pub schemas: &'a [ItemSchema],
}

/// Open every output. The first `--sink`-less file output keeps the
/// single-position fallback (a resumed crawl whose `-o` was spelled
/// differently).
pub async fn open_all(
    specs: &[SinkSpec],
    ctx: &OutputContext<'_>,
) -> Result<Vec<Box<dyn Sink>>, OpenError> {
    let mut sinks = Vec::with_capacity(specs.len());
    for spec in specs {
        sinks.push(open(spec, ctx, specs.len() == 1).await?);
    }
    Ok(sinks)
}

/// The checkpointed position of sink `name`.
fn position(ctx: &OutputContext<'_>, name: &str, only: bool) -> Option<u64> {
    let c = ctx.checkpoint?;
    position_in(c, name).or_else(|| if only { single_position(c) } else { None })
}

/// Open one output.
pub async fn open(
    spec: &SinkSpec,
    ctx: &OutputContext<'_>,
    only: bool,
) -> Result<Box<dyn Sink>, OpenError> {
    Ok(match spec {
        SinkSpec::Jsonl {
            path,
            gzip,
            rotate_rows,
            rotate_bytes,
        } => {
            let opts = crate::jsonl::JsonlOptions {
                gzip: *gzip,
                rotate_rows: *rotate_rows,
                rotate_bytes: *rotate_bytes,
            };
            let name = JsonlSink::open_name(path);
            let sink = match position(ctx, &name, only) {
                _ if path == Path::new("-") => {
                    JsonlSink::open_with(path, opts, true).context("opening standard output")?
                }
                Some(pos) if path.exists() => JsonlSink::resume_with(path, opts, pos)
                    .with_context(|| format!("resuming {}", path.display()))?,
                None if ctx.checkpoint.is_some() && path.exists() => {
                    // A resumed crawl whose output has no checkpoint yet.
                    JsonlSink::resume_with(path, opts, 0)
                        .with_context(|| format!("resuming {}", path.display()))?
                }
                _ => JsonlSink::open_with(path, opts, ctx.append)
                    .with_context(|| format!("opening {}", path.display()))?,
            };
            Box::new(sink)
        }
        SinkSpec::Csv {
            path,
            gzip,
            rotate_rows,
            rotate_bytes,
            columns,
        } => {
            let opts = CsvOptions {
                gzip: *gzip,
                rotate_rows: *rotate_rows,
                rotate_bytes: *rotate_bytes,
            };
            let columns = columns.clone().or_else(|| csv_columns(ctx.schemas));
            let name = CsvSink::open_name(path);
            let sink = match (ctx.checkpoint, position(ctx, &name, only)) {
                (Some(_), pos) if path.exists() => {
                    CsvSink::resume(path, columns, opts, pos.unwrap_or(0))
                        .with_context(|| format!("resuming {}", path.display()))?
                }
                _ => CsvSink::open(path, columns, opts)
                    .with_context(|| format!("opening {}", path.display()))?,
            };
            Box::new(sink)
        }
        SinkSpec::Warc {
            dir,
            prefix,
            rotate_bytes,
            items,
        } => {
            std::fs::create_dir_all(dir)
                .map_err(|error| SinkError::Io {
                    target: dir.display().to_string(),
                    error,
                })
                .with_context(|| format!("creating the WARC directory {}", dir.display()))?;
            let name = WarcSink::open_name(dir, prefix);
            let sink = match ctx.checkpoint {
                Some(_) if WarcSink::has_files(dir, prefix) => WarcSink::resume(
                    dir,
                    prefix,
                    *rotate_bytes,
                    *items,
                    position(ctx, &name, only).unwrap_or(0),
                )
                .with_context(|| format!("resuming the WARC files in {}", dir.display()))?,
                _ => WarcSink::create(dir, prefix, *rotate_bytes, *items)
                    .with_context(|| format!("creating WARC files in {}", dir.display()))?,
            };
            Box::new(sink)
        }
        SinkSpec::Postgres {
            url,
            table,
            table_prefix,
            key,
            pool,
            jsonb_only,
            mode,
        } => {
            let tables = match table {
                Some(t) => Tables::One(t.clone()),
                None => Tables::PerType {
                    prefix: table_prefix.clone().unwrap_or_else(|| {
                        ctx.spider_name
                            .map(|n| format!("{}_", sql_name(n)))
                            .unwrap_or_default()
                    }),
                },
            };
            let key = match key.as_deref() {
                None => Some("url".to_string()),
                Some("") => None,
                Some(k) => Some(k.to_string()),
            };
            let schemas = ctx.schemas.iter().map(table_schema).collect();
            let mode = match mode {
                PgMode::Copy => WriteMode::Copy,
                PgMode::Rows => WriteMode::RowByRow,
            };
            let sink = PostgresTables::connect(url, *pool, tables, schemas, key, mode, *jsonb_only)
                .await
                .context("opening the PostgreSQL sink")?;
            Box::new(sink)
        }
        SinkSpec::Nats {
            url,
            subject,
            stream,
        } => Box::new(
            crate::nats::NatsSink::connect(url, subject, stream)
                .await
                .context("opening the NATS sink")?,
        ),
        SinkSpec::Amqp {
            url,
            queue,
            exchange,
            routing_key,
        } => Box::new(
            crate::amqp::AmqpSink::connect(url, queue, exchange, routing_key.as_deref())
                .await
                .context("opening the AMQP sink")?,
        ),
    })
}

/// A spider or rule name as a table name: lowercase letters, digits, `_`.
fn sql_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// CSV columns from the spider: `url` then every item type's fields, in
/// order, each once.
fn csv_columns(schemas: &[ItemSchema]) -> Option<Vec<String>> {
    if schemas.is_empty() {
        return None;
    }
    let mut cols = vec!["url".to_string()];
    if schemas.len() > 1 {
        cols.push("_rule".to_string());
    }
    for s in schemas {
        for (f, _) in &s.fields {
            if !cols.contains(f) {
                cols.push(f.clone());
            }
        }
    }
    Some(cols)
}

fn table_schema(s: &ItemSchema) -> TableSchema {
    let mut columns = vec![("url".to_string(), ColumnType::Text)];
    for (f, ty) in &s.fields {
        if columns.iter().any(|(n, _)| n == f) {
            continue;
        }
        let ty = match ty.as_str() {
            "number" => ColumnType::Double,
            "integer" => ColumnType::BigInt,
            "bool" => ColumnType::Bool,
            "date" => ColumnType::Date,
            "list" | "json" => ColumnType::Jsonb,
            _ => ColumnType::Text,
        };
        columns.push((f.clone(), ty));
    }
    TableSchema {
        item_type: s.item_type.clone(),
        columns,
    }
}

/// Refuse two outputs writing the same file or directory.
pub fn check_distinct(specs: &[SinkSpec]) -> Result<(), OpenError> {
    let mut seen = std::collections::HashSet::new();
    for s in specs {
        if let Some(p) = s.local_path()
            && p != Path::new("-")
            && !seen.insert(std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
        {
            return Err(OpenError::SameTarget(p.display().to_string()));
        }
    }
    Ok(())
}
