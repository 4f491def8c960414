//! PostgreSQL, one table per item type.
//!
//! A spider's items carry their item rule in `_rule`; each rule gets its own
//! table, `<prefix><rule>`, with a typed column per field of the rule (the
//! [`TableSchema`]s) plus the whole item as `jsonb`. Items without `_rule`
//! (page records of a plain crawl) go to `<prefix>pages` with `url` and the
//! item. All tables share one connection pool. Tables are created when the
//! sink opens (known schemas) or when their first item arrives.
//!
//! A batch is written table by table; if one table fails the batch is
//! retried whole, which is harmless with an upsert key (the default, `url`):
//! rows already written are updated to the same values.

use std::collections::HashMap;

use deadpool_postgres::Pool;
use trawl_core::{Item, Sink, SinkError};

use crate::postgres::{
    ColumnType, PostgresSink, WriteMode, connect_pool, pool_client, quote_ident,
};

/// The typed columns of one item type.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// The item type (a spider's item rule name).
    pub item_type: String,
    pub columns: Vec<(String, ColumnType)>,
}

/// Where items go.
#[derive(Debug, Clone)]
pub enum Tables {
    /// Every item to this table.
    One(String),
    /// `<prefix><item type>` per item type.
    PerType { prefix: String },
}

/// Writes items to PostgreSQL tables by item type (see the module docs).
pub struct PostgresTables {
    pool: Pool,
    target: String,
    tables: Tables,
    schemas: HashMap<String, TableSchema>,
    key: Option<String>,
    mode: WriteMode,
    jsonb_only: bool,
    open: HashMap<String, PostgresSink>,
}

/// The item type of an item: its `_rule`, else "pages".
fn item_type(item: &Item) -> &str {
    item.0
        .get("_rule")
        .and_then(|v| v.as_str())
        .unwrap_or("pages")
}

impl PostgresTables {
    /// Connect and create the tables of the known `schemas`. `key` is the
    /// upsert column (`None` appends); it is added as a text column to a
    /// schema lacking it. With `jsonb_only`, tables hold only the key (or
    /// `url`) and the item.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect(
        conn_str: &str,
        pool_size: usize,
        tables: Tables,
        schemas: Vec<TableSchema>,
        key: Option<String>,
        mode: WriteMode,
        jsonb_only: bool,
    ) -> Result<PostgresTables, SinkError> {
        let (pool, target) = connect_pool(conn_str, pool_size)?;
        if let Tables::PerType { prefix } = &tables {
            quote_ident(&format!("{prefix}x"))?;
        }
        let mut sink = PostgresTables {
            pool,
            target,
            tables,
            schemas: schemas
                .into_iter()
                .map(|s| (s.item_type.clone(), s))
                .collect(),
            key,
            mode,
            jsonb_only,
            open: HashMap::new(),
        };
        // Fail now, not at the first batch, when the server is unreachable.
        drop(pool_client(&sink.pool, &sink.target).await?);
        let known: Vec<String> = match &sink.tables {
            Tables::One(_) => vec![String::new()],
            Tables::PerType { .. } => sink.schemas.keys().cloned().collect(),
        };
        for t in known {
            sink.table_for(&t).await?;
        }
        Ok(sink)
    }

    /// The table name for an item type.
    pub fn table_name(&self, item_type: &str) -> String {
        match &self.tables {
            Tables::One(t) => t.clone(),
            Tables::PerType { prefix } => format!("{prefix}{item_type}"),
        }
    }

    /// The pool (to query the tables, e.g. in tests).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    fn columns_for(&self, item_type: &str) -> Vec<(String, ColumnType)> {
        let key_col = self.key.clone().unwrap_or_else(|| "url".to_string());
        let mut columns = match (&self.tables, self.jsonb_only) {
            (_, true) => Vec::new(),
            (Tables::One(_), false) if self.schemas.len() == 1 => self
                .schemas
                .values()
                .next()
                .map(|s| s.columns.clone())
                .unwrap_or_default(),
            (Tables::One(_), false) => Vec::new(),
            (Tables::PerType { .. }, false) => self
                .schemas
                .get(item_type)
                .map(|s| s.columns.clone())
                .unwrap_or_default(),
        };
        if !columns.iter().any(|(n, _)| *n == key_col) {
            columns.insert(0, (key_col, ColumnType::Text));
        }
        columns
    }

    async fn table_for(&mut self, item_type: &str) -> Result<&mut PostgresSink, SinkError> {
        let slot = match &self.tables {
            Tables::One(_) => String::new(),
            Tables::PerType { .. } => item_type.to_string(),
        };
        if !self.open.contains_key(&slot) {
            let table = self.table_name(item_type);
            let sink = PostgresSink::on_pool(
                self.pool.clone(),
                self.target.clone(),
                &table,
                self.columns_for(item_type),
                self.key.clone(),
            )
            .await?
            .with_mode(self.mode);
            self.open.insert(slot.clone(), sink);
        }
        self.open
            .get_mut(&slot)
            .ok_or_else(|| SinkError::Other("table vanished".into()))
    }
}

#[async_trait::async_trait]
impl Sink for PostgresTables {
    fn name(&self) -> String {
        match &self.tables {
            Tables::One(t) => format!("postgres:{}/{t}", self.target),
            Tables::PerType { prefix } => format!("postgres:{}/{prefix}*", self.target),
        }
    }

    async fn write_batch(&mut self, items: &[Item]) -> Result<(), SinkError> {
        // The common case, one table for the whole batch: no copies.
        let single = match &self.tables {
            Tables::One(_) => Some(""),
            Tables::PerType { .. } => items
                .first()
                .map(item_type)
                .filter(|t| items.iter().all(|i| item_type(i) == *t)),
        };
        if let Some(t) = single {
            let t = t.to_string();
            return self.table_for(&t).await?.write_batch(items).await;
        }
        // Group by table, keeping each table's items in order.
        let mut groups: Vec<(String, Vec<Item>)> = Vec::new();
        for item in items {
            let t = match &self.tables {
                Tables::One(_) => "",
                Tables::PerType { .. } => item_type(item),
            };
            match groups.iter_mut().find(|(k, _)| k == t) {
                Some((_, g)) => g.push(item.clone()),
                None => groups.push((t.to_string(), vec![item.clone()])),
            }
        }
        for (t, group) in groups {
            self.table_for(&t).await?.write_batch(&group).await?;
        }
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.open.values().map(Sink::bytes_written).sum()
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
