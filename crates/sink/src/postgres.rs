//! PostgreSQL sink.
//!
//! Items go to one table with a typed column per configured field, the whole
//! item in `item jsonb`, and `updated_at timestamptz default now()`. The
//! table is created when missing.
//!
//! [`WriteMode::Copy`] (the default) writes a batch with binary `COPY`:
//! without a key, straight into the table (one atomic statement); with a key,
//! in one transaction (statements pipelined, about four round trips a batch)
//! into a per-connection temporary staging table followed by
//! `INSERT … SELECT DISTINCT ON (key) … ON CONFLICT (key) DO UPDATE`, so a
//! recrawl updates a row instead of adding a second one (the last item of a
//! batch wins when a key repeats within it). [`WriteMode::RowByRow`] runs one
//! prepared `INSERT` per item in one transaction; it exists to compare
//! against.
//!
//! Values come from the item's JSON by column type: a missing field or JSON
//! `null` is SQL `NULL`; a value that does not convert is also `NULL` and is
//! counted in [`PostgresSink::conversion_warnings`]. With a key, items whose
//! key is `NULL` are skipped and counted in [`PostgresSink::skipped_items`].

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures_util::pin_mut;
use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Config, NoTls};
use trawl_core::{Item, Sink, SinkError};

/// The SQL type of a configured column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `text`: strings as they are; numbers, booleans, arrays and objects as
    /// their JSON text.
    Text,
    /// `double precision`: numbers, or strings that parse as one.
    Double,
    /// `bigint`: integral numbers (a float with no fraction counts), or
    /// strings that parse as one.
    BigInt,
    /// `boolean`: booleans, or the strings `true`/`false`.
    Bool,
    /// `date`: `YYYY-MM-DD`, or the date part of an RFC 3339 timestamp.
    Date,
    /// `jsonb`: any JSON value.
    Jsonb,
}

impl ColumnType {
    fn sql(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Double => "double precision",
            ColumnType::BigInt => "bigint",
            ColumnType::Bool => "boolean",
            ColumnType::Date => "date",
            ColumnType::Jsonb => "jsonb",
        }
    }

    fn pg_type(self) -> Type {
        match self {
            ColumnType::Text => Type::TEXT,
            ColumnType::Double => Type::FLOAT8,
            ColumnType::BigInt => Type::INT8,
            ColumnType::Bool => Type::BOOL,
            ColumnType::Date => Type::DATE,
            ColumnType::Jsonb => Type::JSONB,
        }
    }
}

/// How a batch reaches the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Binary COPY (via a staging table when there is a key).
    #[default]
    Copy,
    /// One prepared `INSERT` per item, in one transaction per batch.
    RowByRow,
}

/// Names the sink reserves for its own columns.
const ITEM_COLUMN: &str = "item";
const UPDATED_COLUMN: &str = "updated_at";
const SEQ_COLUMN: &str = "trawl_seq";

/// Writes items to a PostgreSQL table (see the module docs).
pub struct PostgresSink {
    pool: Pool,
    /// `host:port/db` for messages; never the password.
    target: String,
    table: String,
    columns: Vec<(String, ColumnType)>,
    /// Index into `columns` of the key column.
    key: Option<usize>,
    mode: WriteMode,
    warnings: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
    /// Statements built once from the column list.
    sql: Statements,
    /// JSON bytes of the items written (their `item` column), for stats.
    bytes: u64,
}

struct Statements {
    /// `COPY table (cols, item) FROM STDIN BINARY` (no key).
    copy_table: String,
    /// `CREATE TEMP TABLE IF NOT EXISTS stage …; TRUNCATE stage` (key).
    create_stage: String,
    /// `COPY stage (cols, item, seq) FROM STDIN BINARY` (key).
    copy_stage: String,
    /// `INSERT INTO table … SELECT DISTINCT ON (key) … FROM stage …` (key).
    merge_stage: String,
    /// `INSERT INTO table (cols, item) VALUES ($1, …) [ON CONFLICT …]`.
    insert_row: String,
}

/// A connection pool for `conn_str` (nothing is connected yet) and the
/// `host:port/db` it reaches, for messages (never the password).
pub fn connect_pool(conn_str: &str, pool_size: usize) -> Result<(Pool, String), SinkError> {
    let config = Config::from_str(conn_str).map_err(|e| {
        // The parse error never echoes the string (it may hold a password).
        SinkError::Other(format!("invalid PostgreSQL connection string: {e}"))
    })?;
    let target = describe_target(&config);
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = Manager::from_config(config, NoTls, manager_config);
    let pool = Pool::builder(manager)
        .max_size(pool_size.max(1))
        .build()
        .map_err(|e| SinkError::Other(format!("postgres {target}: building pool: {e}")))?;
    Ok((pool, target))
}

/// Check that `name` is a plain SQL identifier and return it double-quoted.
pub fn quote_ident(name: &str) -> Result<String, SinkError> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if !ok || name.len() > 63 {
        return Err(SinkError::Other(format!(
            "invalid PostgreSQL identifier {name:?}: names must match [A-Za-z_][A-Za-z0-9_]* and be at most 63 bytes"
        )));
    }
    Ok(format!("\"{name}\""))
}

/// `host:port/db` (user included, password never) for messages.
fn describe_target(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(
            config
                .get_ports()
                .iter()
                .copied()
                .chain(std::iter::repeat(5432)),
        )
        .map(|(h, port)| match h {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => format!("{}", p.display()),
        })
        .collect();
    let host = if hosts.is_empty() {
        "localhost:5432".to_string()
    } else {
        hosts.join(",")
    };
    let user = config.get_user().unwrap_or("?");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}/{db}")
}

/// A PostgreSQL error with the server's message, code and detail when there
/// is one (`Display` of `tokio_postgres::Error` alone says only "db error").
/// A connection from `pool`, with the server's own reason when it fails.
pub async fn pool_client(pool: &Pool, target: &str) -> Result<Object, SinkError> {
    pool.get().await.map_err(|e| {
        let msg = match &e {
            deadpool_postgres::PoolError::Backend(pg) => pg_message(pg),
            other => other.to_string(),
        };
        SinkError::Other(format!("postgres {target}: connecting: {msg}"))
    })
}

fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!("; {d}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

impl PostgresSink {
    /// Connect with `conn_str` (key=value or `postgres://` URL), create
    /// `table` when missing, and return a sink writing in
    /// [`WriteMode::Copy`]. `key` must name one of `columns`; it becomes the
    /// primary key that upserts match on. `pool_size` is the most
    /// connections kept (at least 1).
    pub async fn connect(
        conn_str: &str,
        table: &str,
        columns: Vec<(String, ColumnType)>,
        key: Option<String>,
        pool_size: usize,
    ) -> Result<PostgresSink, SinkError> {
        let (pool, target) = connect_pool(conn_str, pool_size)?;
        PostgresSink::on_pool(pool, target, table, columns, key).await
    }

    /// Like [`connect`](Self::connect), sharing an existing pool (several
    /// tables of one database). `target` names the server in messages.
    pub async fn on_pool(
        pool: Pool,
        target: String,
        table: &str,
        columns: Vec<(String, ColumnType)>,
        key: Option<String>,
    ) -> Result<PostgresSink, SinkError> {
        // Validate everything before touching the network.
        let qtable = quote_ident(table)?;
        let mut seen = HashSet::new();
        let mut qcols = Vec::with_capacity(columns.len());
        for (name, _) in &columns {
            qcols.push(quote_ident(name)?);
            if [ITEM_COLUMN, UPDATED_COLUMN, SEQ_COLUMN].contains(&name.as_str()) {
                return Err(SinkError::Other(format!(
                    "column name {name:?} is reserved by the PostgreSQL sink"
                )));
            }
            if !seen.insert(name.as_str()) {
                return Err(SinkError::Other(format!("column {name:?} is listed twice")));
            }
        }
        let key_index = match &key {
            None => None,
            Some(k) => Some(columns.iter().position(|(n, _)| n == k).ok_or_else(|| {
                SinkError::Other(format!("key {k:?} is not one of the configured columns"))
            })?),
        };

        // Create the table.
        let mut defs: Vec<String> = columns
            .iter()
            .zip(&qcols)
            .enumerate()
            .map(|(i, ((_, ty), q))| {
                let pk = if Some(i) == key_index {
                    " PRIMARY KEY"
                } else {
                    ""
                };
                format!("{q} {}{pk}", ty.sql())
            })
            .collect();
        defs.push(format!("\"{ITEM_COLUMN}\" jsonb NOT NULL"));
        defs.push(format!(
            "\"{UPDATED_COLUMN}\" timestamptz NOT NULL DEFAULT now()"
        ));
        let create = format!("CREATE TABLE IF NOT EXISTS {qtable} ({})", defs.join(", "));

        let sql = build_statements(table, &qtable, &columns, &qcols, key_index);
        let sink = PostgresSink {
            pool,
            target,
            table: table.to_string(),
            columns,
            key: key_index,
            mode: WriteMode::Copy,
            warnings: Arc::new(AtomicU64::new(0)),
            skipped: Arc::new(AtomicU64::new(0)),
            sql,
            bytes: 0,
        };
        let client = sink.client().await?;
        client
            .batch_execute(&create)
            .await
            .map_err(|e| sink.err("creating table", &e))?;
        Ok(sink)
    }

    /// Switch how batches are written.
    pub fn with_mode(mut self, mode: WriteMode) -> PostgresSink {
        self.mode = mode;
        self
    }

    /// Values that were present but did not convert to their column's type
    /// (written as `NULL`).
    pub fn conversion_warnings(&self) -> u64 {
        self.warnings.load(Ordering::Relaxed)
    }

    /// Items not written because their key was missing or did not convert.
    pub fn skipped_items(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The table written to.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// A clone of the connection pool (to query the table, e.g. in tests).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    fn err(&self, what: &str, e: &tokio_postgres::Error) -> SinkError {
        SinkError::Other(format!(
            "postgres {} table {}: {what}: {}",
            self.target,
            self.table,
            pg_message(e)
        ))
    }

    async fn client(&self) -> Result<Object, SinkError> {
        pool_client(&self.pool, &self.target).await
    }

    /// Convert one item to its row (`None` for a cell means SQL NULL).
    fn row(&self, item: &Item) -> Vec<Cell> {
        self.columns
            .iter()
            .map(|(name, ty)| {
                let cell = convert(item.0.get(name), *ty);
                if matches!(cell, Converted::Failed) {
                    self.warnings.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(column = %name, table = %self.table, "value does not convert; writing NULL");
                }
                cell.into_cell(*ty)
            })
            .collect()
    }

    /// Rows of a batch, without the items whose key is NULL.
    fn rows(&self, items: &[Item]) -> Vec<(Vec<Cell>, Value)> {
        let before = self.warnings.load(Ordering::Relaxed);
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let cells = self.row(item);
            if let Some(k) = self.key
                && cells[k].is_null()
            {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            out.push((cells, Value::Object(item.0.clone())));
        }
        let failed = self.warnings.load(Ordering::Relaxed) - before;
        if failed > 0 {
            tracing::warn!(
                table = %self.table,
                values = failed,
                "values did not convert to their column types and were written as NULL"
            );
        }
        out
    }

    /// Write one batch: one COPY, or (with a key, or row by row) a
    /// transaction.
    async fn write_items(&self, items: &[Item]) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        let rows = self.rows(items);
        if rows.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        if self.mode == WriteMode::Copy && self.key.is_none() {
            // A single COPY is atomic by itself.
            return self.write_copy(&client, &rows).await;
        }
        // Statements are sent together where they can be, to save round
        // trips: BEGIN with the staging table, the merge with COMMIT.
        let (begin, commit) = match self.mode {
            WriteMode::Copy => (
                format!("BEGIN; {}", self.sql.create_stage),
                format!("{}; COMMIT", self.sql.merge_stage),
            ),
            WriteMode::RowByRow => ("BEGIN".to_string(), "COMMIT".to_string()),
        };
        client
            .batch_execute(&begin)
            .await
            .map_err(|e| self.err("BEGIN", &e))?;
        let written = match self.mode {
            WriteMode::Copy => self.write_copy(&client, &rows).await,
            WriteMode::RowByRow => self.write_rows(&client, &rows).await,
        };
        let done = match written {
            Ok(()) => client
                .batch_execute(&commit)
                .await
                .map_err(|e| self.err("merging and committing", &e)),
            Err(e) => Err(e),
        };
        if done.is_err() && client.batch_execute("ROLLBACK").await.is_err() {
            // The connection is in an unknown state: keep it out of the pool.
            drop(Object::take(client));
        }
        done
    }

    async fn write_copy(
        &self,
        client: &Object,
        rows: &[(Vec<Cell>, Value)],
    ) -> Result<(), SinkError> {
        let mut types: Vec<Type> = self.columns.iter().map(|(_, t)| t.pg_type()).collect();
        types.push(Type::JSONB);
        let keyed = self.key.is_some();
        if keyed {
            types.push(Type::INT8);
        }
        let copy = if keyed {
            &self.sql.copy_stage
        } else {
            &self.sql.copy_table
        };
        let sink = client
            .copy_in(copy.as_str())
            .await
            .map_err(|e| self.err("starting COPY", &e))?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for (seq, (cells, item)) in rows.iter().enumerate() {
            let seq = seq as i64;
            let mut values: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(cells.len() + 2);
            values.extend(cells.iter().map(Cell::as_sql));
            values.push(item);
            if keyed {
                values.push(&seq);
            }
            writer
                .as_mut()
                .write(&values)
                .await
                .map_err(|e| self.err("COPY", &e))?;
        }
        writer
            .finish()
            .await
            .map_err(|e| self.err("finishing COPY", &e))?;
        Ok(())
    }

    async fn write_rows(
        &self,
        client: &Object,
        rows: &[(Vec<Cell>, Value)],
    ) -> Result<(), SinkError> {
        let stmt = client
            .prepare_cached(&self.sql.insert_row)
            .await
            .map_err(|e| self.err("preparing INSERT", &e))?;
        for (cells, item) in rows {
            let mut values: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(cells.len() + 1);
            values.extend(cells.iter().map(Cell::as_sql));
            values.push(item);
            client
                .execute(&stmt, &values)
                .await
                .map_err(|e| self.err("INSERT", &e))?;
        }
        Ok(())
    }
}

fn build_statements(
    table: &str,
    qtable: &str,
    columns: &[(String, ColumnType)],
    qcols: &[String],
    key: Option<usize>,
) -> Statements {
    let item = format!("\"{ITEM_COLUMN}\"");
    let seq = format!("\"{SEQ_COLUMN}\"");
    let mut cols: Vec<String> = qcols.to_vec();
    cols.push(item.clone());
    let col_list = cols.join(", ");
    // `table` is a checked identifier, so the derived name is one too (the
    // prefix may push it past 63 bytes; PostgreSQL truncates consistently).
    let stage = format!("\"trawl_stage_{table}\"");
    let stage_defs: Vec<String> = columns
        .iter()
        .zip(qcols)
        .map(|((_, ty), q)| format!("{q} {}", ty.sql()))
        .chain([format!("{item} jsonb"), format!("{seq} bigint")])
        .collect();
    let (create_stage, copy_stage, merge_stage, conflict) = match key {
        None => (String::new(), String::new(), String::new(), String::new()),
        Some(k) => {
            let qkey = &qcols[k];
            let mut sets: Vec<String> = cols
                .iter()
                .filter(|c| *c != qkey)
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            sets.push(format!("\"{UPDATED_COLUMN}\" = now()"));
            let conflict = format!(" ON CONFLICT ({qkey}) DO UPDATE SET {}", sets.join(", "));
            (
                format!(
                    "CREATE TEMP TABLE IF NOT EXISTS {stage} ({}) ON COMMIT DELETE ROWS",
                    stage_defs.join(", ")
                ),
                format!("COPY {stage} ({col_list}, {seq}) FROM STDIN BINARY"),
                format!(
                    "INSERT INTO {qtable} ({col_list}) SELECT DISTINCT ON ({qkey}) {col_list} FROM {stage} ORDER BY {qkey}, {seq} DESC{conflict}"
                ),
                conflict,
            )
        }
    };
    let params: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    Statements {
        copy_table: format!("COPY {qtable} ({col_list}) FROM STDIN BINARY"),
        create_stage,
        copy_stage,
        merge_stage,
        insert_row: format!(
            "INSERT INTO {qtable} ({col_list}) VALUES ({}){conflict}",
            params.join(", ")
        ),
    }
}

/// One converted value, typed for its column.
#[derive(Debug)]
enum Cell {
    Text(Option<String>),
    Double(Option<f64>),
    BigInt(Option<i64>),
    Bool(Option<bool>),
    Date(Option<NaiveDate>),
    Jsonb(Option<Value>),
}

impl Cell {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Text(v) => v,
            Cell::Double(v) => v,
            Cell::BigInt(v) => v,
            Cell::Bool(v) => v,
            Cell::Date(v) => v,
            Cell::Jsonb(v) => v,
        }
    }

    fn is_null(&self) -> bool {
        match self {
            Cell::Text(v) => v.is_none(),
            Cell::Double(v) => v.is_none(),
            Cell::BigInt(v) => v.is_none(),
            Cell::Bool(v) => v.is_none(),
            Cell::Date(v) => v.is_none(),
            Cell::Jsonb(v) => v.is_none(),
        }
    }
}

enum Converted {
    Null,
    Failed,
    Value(Cell),
}

impl Converted {
    fn into_cell(self, ty: ColumnType) -> Cell {
        match self {
            Converted::Value(c) => c,
            Converted::Null | Converted::Failed => match ty {
                ColumnType::Text => Cell::Text(None),
                ColumnType::Double => Cell::Double(None),
                ColumnType::BigInt => Cell::BigInt(None),
                ColumnType::Bool => Cell::Bool(None),
                ColumnType::Date => Cell::Date(None),
                ColumnType::Jsonb => Cell::Jsonb(None),
            },
        }
    }
}

fn convert(value: Option<&Value>, ty: ColumnType) -> Converted {
    let v = match value {
        None | Some(Value::Null) => return Converted::Null,
        Some(v) => v,
    };
    let cell = match ty {
        ColumnType::Text => Some(Cell::Text(Some(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }))),
        ColumnType::Jsonb => Some(Cell::Jsonb(Some(v.clone()))),
        ColumnType::Double => match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .map(|f| Cell::Double(Some(f))),
        ColumnType::BigInt => match v {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
        .map(|i| Cell::BigInt(Some(i))),
        ColumnType::Bool => match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
        .map(|b| Cell::Bool(Some(b))),
        ColumnType::Date => match v {
            Value::String(s) => parse_date(s.trim()),
            _ => None,
        }
        .map(|d| Cell::Date(Some(d))),
    };
    match cell {
        Some(c) => Converted::Value(c),
        None => Converted::Failed,
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.date_naive())
    })
}

/// The length of `value` as JSON text, without building the text.
fn json_len(value: &serde_json::Map<String, Value>) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[async_trait::async_trait]
impl Sink for PostgresSink {
    fn name(&self) -> String {
        format!("postgres:{}/{}", self.target, self.table)
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        self.write_items(items).await?;
        self.bytes += items.iter().map(|item| json_len(&item.0)).sum::<u64>();
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        // Every batch is committed by `write_batch`.
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn_str() -> String {
        std::env::var("TRAWL_TEST_POSTGRES")
            .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".into())
    }

    fn table_name(test: &str) -> String {
        format!("trawl_test_{test}_{}", std::process::id())
    }

    async fn drop_table(sink: &PostgresSink) {
        let client = sink.pool().get().await.unwrap();
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS \"{}\"", sink.table()))
            .await
            .unwrap();
    }

    /// A sink on a new, empty table (any leftover of an earlier run dropped).
    async fn fresh(table: &str, key: Option<String>, mode: WriteMode) -> PostgresSink {
        let sink = PostgresSink::connect(&conn_str(), table, all_columns(), key.clone(), 2)
            .await
            .unwrap();
        drop_table(&sink).await;
        PostgresSink::connect(&conn_str(), table, all_columns(), key, 2)
            .await
            .unwrap()
            .with_mode(mode)
    }

    fn all_columns() -> Vec<(String, ColumnType)> {
        vec![
            ("url".into(), ColumnType::Text),
            ("score".into(), ColumnType::Double),
            ("bytes".into(), ColumnType::BigInt),
            ("ok".into(), ColumnType::Bool),
            ("day".into(), ColumnType::Date),
            ("meta".into(), ColumnType::Jsonb),
        ]
    }

    fn item(v: Value) -> Item {
        match v {
            Value::Object(m) => Item(m),
            _ => panic!("not an object"),
        }
    }

    fn sample(i: i64, version: i64) -> Item {
        item(json!({
            "url": format!("https://example.com/{i}"),
            "score": i as f64 / 4.0 + version as f64,
            "bytes": i * 1000 + version,
            "ok": i % 2 == 0,
            "day": format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
            "meta": {"i": i, "v": version, "tags": ["a", "b"]},
            "extra": "kept in item",
        }))
    }

    type Row = (
        Option<String>,
        Option<f64>,
        Option<i64>,
        Option<bool>,
        Option<NaiveDate>,
        Option<Value>,
        Value,
    );

    async fn read_all(sink: &PostgresSink) -> Vec<Row> {
        let client = sink.pool().get().await.unwrap();
        client
            .query(
                &format!(
                    "SELECT url, score, bytes, ok, day, meta, item FROM \"{}\" ORDER BY bytes",
                    sink.table()
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect()
    }

    fn check_row(row: &Row, i: i64, version: i64) {
        let want = sample(i, version);
        assert_eq!(
            row.0.as_deref(),
            Some(format!("https://example.com/{i}").as_str())
        );
        assert_eq!(row.1, Some(i as f64 / 4.0 + version as f64));
        assert_eq!(row.2, Some(i * 1000 + version));
        assert_eq!(row.3, Some(i % 2 == 0));
        assert_eq!(
            row.4,
            NaiveDate::from_ymd_opt(2024, (i % 12 + 1) as u32, (i % 28 + 1) as u32)
        );
        assert_eq!(row.5.as_ref(), want.0.get("meta"));
        assert_eq!(row.6, Value::Object(want.0));
    }

    async fn round_trip(mode: WriteMode, test: &str) {
        let mut sink = fresh(&table_name(test), None, mode).await;
        let items: Vec<Item> = (0..1000).map(|i| sample(i, 0)).collect();
        for batch in items.chunks(300) {
            sink.write_batch(batch).await.unwrap();
        }
        sink.close().await.unwrap();
        // The stats count the items' JSON, not zero.
        let json: usize = items
            .iter()
            .map(|i| serde_json::to_string(&i.0).unwrap().len())
            .sum();
        assert_eq!(sink.bytes_written(), json as u64);
        let rows = read_all(&sink).await;
        assert_eq!(rows.len(), 1000);
        for (i, row) in rows.iter().enumerate() {
            check_row(row, i as i64, 0);
        }
        assert_eq!(sink.conversion_warnings(), 0);
        drop_table(&sink).await;
    }

    #[tokio::test]
    async fn round_trips_every_column_type_with_copy() {
        round_trip(WriteMode::Copy, "rt_copy").await;
    }

    #[tokio::test]
    async fn round_trips_every_column_type_row_by_row() {
        round_trip(WriteMode::RowByRow, "rt_rows").await;
    }

    async fn upsert(mode: WriteMode, test: &str) {
        let mut sink = fresh(&table_name(test), Some("url".into()), mode).await;
        let first: Vec<Item> = (0..200).map(|i| sample(i, 0)).collect();
        sink.write_batch(&first).await.unwrap();
        // The second crawl: same keys, new values, and a key repeated within
        // the batch (the last one wins).
        let mut second: Vec<Item> = (0..200).map(|i| sample(i, 1)).collect();
        second.insert(0, sample(5, 0));
        sink.write_batch(&second).await.unwrap();
        // An item without its key is skipped, not written.
        sink.write_batch(&[item(json!({"score": 1.0}))])
            .await
            .unwrap();
        assert_eq!(sink.skipped_items(), 1);
        let rows = read_all(&sink).await;
        assert_eq!(rows.len(), 200);
        for (i, row) in rows.iter().enumerate() {
            check_row(row, i as i64, 1);
        }
        drop_table(&sink).await;
    }

    #[tokio::test]
    async fn same_keys_twice_updates_with_copy() {
        upsert(WriteMode::Copy, "up_copy").await;
    }

    #[tokio::test]
    async fn same_keys_twice_updates_row_by_row() {
        upsert(WriteMode::RowByRow, "up_rows").await;
    }

    #[tokio::test]
    async fn bad_values_are_null_and_counted() {
        let mut sink = fresh(&table_name("bad_values"), None, WriteMode::Copy).await;
        sink.write_batch(&[item(json!({
            "url": 42,
            "score": "not a number",
            "bytes": 1.5,
            "ok": "maybe",
            "day": "yesterday",
            "meta": null,
        }))])
        .await
        .unwrap();
        assert_eq!(sink.conversion_warnings(), 4);
        let rows = read_all(&sink).await;
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.0.as_deref(), Some("42"));
        assert_eq!((r.1, r.2, r.3, r.4), (None, None, None, None));
        assert_eq!(r.5, None);
        drop_table(&sink).await;
    }

    #[tokio::test]
    async fn names_with_quotes_are_rejected() {
        let err = PostgresSink::connect(&conn_str(), "items\"; DROP TABLE x; --", vec![], None, 1)
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("invalid PostgreSQL identifier"),
            "{err}"
        );
        let err = PostgresSink::connect(
            &conn_str(),
            "items",
            vec![("a\"b".into(), ColumnType::Text)],
            None,
            1,
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().contains("a\\\"b"), "{err}");
        for bad in ["", "1abc", "a-b", "a b", "é"] {
            assert!(quote_ident(bad).is_err(), "{bad}");
        }
        assert_eq!(quote_ident("_Ok9").unwrap(), "\"_Ok9\"");
        let err = PostgresSink::connect(
            &conn_str(),
            "items",
            vec![("a".into(), ColumnType::Text)],
            Some("b".into()),
            1,
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().contains("key \"b\""), "{err}");
    }

    #[tokio::test]
    async fn connection_errors_name_host_and_db_not_password() {
        let err = PostgresSink::connect(
            "postgres://someone:s3cret@127.0.0.1:1/nodb",
            "items",
            vec![],
            None,
            1,
        )
        .await
        .err()
        .unwrap();
        let msg = err.to_string();
        assert!(msg.contains("127.0.0.1:1/nodb"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
    }
}
