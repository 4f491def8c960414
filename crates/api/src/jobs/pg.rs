//! Jobs in PostgreSQL (`trawl serve --store postgres://…`): job records
//! and items live in two tables instead of `job.json` and `items.jsonl`
//! (the crawl state of a running job stays in the data directory, or in
//! Redis). Positions are item counts: a resumed job deletes the items
//! after its checkpoint, as the file store cuts the file.
//!
//! ```sql
//! trawl_api_jobs  (id text PRIMARY KEY, record jsonb)
//! trawl_api_items (job text, seq bigint, item text, PRIMARY KEY (job, seq))
//! ```

use deadpool_postgres::Pool;

use super::store::JobRecord;

/// The tables of a PostgreSQL database.
pub struct PgStore {
    pool: Pool,
    /// `host:port/db`, for messages (never the password).
    pub target: String,
}

fn failed(target: &str, e: impl std::fmt::Display) -> String {
    format!("postgres {target}: {e}")
}

impl PgStore {
    /// Connect and make the tables if they are not there.
    pub async fn connect(url: &str) -> Result<PgStore, String> {
        let (pool, target) =
            trawl_sink::postgres::connect_pool(url, 4).map_err(|e| e.to_string())?;
        let client = pool.get().await.map_err(|e| failed(&target, e))?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS trawl_api_jobs (id text PRIMARY KEY, record jsonb NOT NULL);
                 CREATE TABLE IF NOT EXISTS trawl_api_items (
                     job text NOT NULL, seq bigint NOT NULL, item text NOT NULL,
                     PRIMARY KEY (job, seq));",
            )
            .await
            .map_err(|e| failed(&target, e))?;
        Ok(PgStore { pool, target })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, String> {
        self.pool.get().await.map_err(|e| failed(&self.target, e))
    }

    /// Insert or replace a job's record.
    pub async fn save(&self, record: &JobRecord) -> Result<(), String> {
        let value = serde_json::to_value(record).map_err(|e| e.to_string())?;
        self.client()
            .await?
            .execute(
                "INSERT INTO trawl_api_jobs (id, record) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
                &[&record.id, &value],
            )
            .await
            .map_err(|e| failed(&self.target, e))?;
        Ok(())
    }

    /// Every job's record.
    pub async fn load(&self) -> Result<Vec<JobRecord>, String> {
        let rows = self
            .client()
            .await?
            .query("SELECT record FROM trawl_api_jobs ORDER BY id", &[])
            .await
            .map_err(|e| failed(&self.target, e))?;
        let mut records = Vec::new();
        for row in rows {
            let value: serde_json::Value = row.get(0);
            match serde_json::from_value(value) {
                Ok(r) => records.push(r),
                Err(error) => tracing::error!(%error, "Skipping an unreadable job record."),
            }
        }
        Ok(records)
    }

    /// Keep the first `keep` items of `job` (all: `None`); how many are
    /// kept.
    pub async fn cut(&self, job: &str, keep: Option<u64>) -> Result<u64, String> {
        let client = self.client().await?;
        if let Some(keep) = keep {
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            client
                .execute(
                    "DELETE FROM trawl_api_items WHERE job = $1 AND seq > $2",
                    &[&job, &keep],
                )
                .await
                .map_err(|e| failed(&self.target, e))?;
        }
        let row = client
            .query_one(
                "SELECT count(*) FROM trawl_api_items WHERE job = $1",
                &[&job],
            )
            .await
            .map_err(|e| failed(&self.target, e))?;
        let n: i64 = row.get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Store `lines` as items `after + 1 …` of `job`, in one statement.
    pub async fn append(&self, job: &str, after: u64, lines: Vec<String>) -> Result<(), String> {
        let first = i64::try_from(after).unwrap_or(i64::MAX) + 1;
        self.client()
            .await?
            .execute(
                "INSERT INTO trawl_api_items (job, seq, item)
                 SELECT $1, $2 + ordinality - 1, item FROM unnest($3::text[]) WITH ORDINALITY AS t(item, ordinality)",
                &[&job, &first, &lines],
            )
            .await
            .map_err(|e| failed(&self.target, e))?;
        Ok(())
    }

    /// Items `from + 1 ..= upto` of `job`, at most `limit`.
    pub async fn read(
        &self,
        job: &str,
        from: u64,
        upto: u64,
        limit: i64,
    ) -> Result<Vec<String>, String> {
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(
                "SELECT item FROM trawl_api_items WHERE job = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
                &[&job, &from, &upto, &limit],
            )
            .await
            .map_err(|e| failed(&self.target, e))?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }
}
