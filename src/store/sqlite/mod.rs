//! The SQLite backend: one database file in WAL mode, migrations from `migrations/sqlite/`.
//!
//! Times are stored as Unix milliseconds and JSON as text ([`Columns`] reads them for the
//! shared row mapping of [`super::rows`]). The queue claims with a single
//! `UPDATE … WHERE id IN (SELECT … LIMIT 1) RETURNING`, which SQLite runs atomically.

mod catalog;
mod delete;
mod idempotency;
mod jobs;
mod keys;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use uuid::Uuid;

use super::db::{Db, StoreError, StoreResult};
use super::lock::{BlobLock, StripedLocks};
use super::rows::Columns;

/// The migrations compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// A SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    pool: SqlitePool,
    /// Blob locks (one process owns a SQLite file).
    locks: Arc<StripedLocks>,
}

impl SqliteDb {
    /// Open (creating the file if needed) without migrating.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the file cannot be opened.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(SqliteDb {
            pool,
            locks: Arc::default(),
        })
    }

    /// The connection pool (tests count rows with it).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Db for SqliteDb {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ready(&self) -> StoreResult<bool> {
        let applied: Vec<i64> =
            match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => rows.iter().map(|r| r.get::<i64, _>(0)).collect(),
                Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => {
                    Vec::new()
                }
                Err(e) => return Err(e.into()),
            };
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn lock_blobs(&self, sha256s: &[&str]) -> StoreResult<BlobLock> {
        Ok(self.locks.lock(sha256s).await)
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Unix milliseconds to a time.
pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Milliseconds of a duration, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Parse a stored id.
pub(crate) fn uuid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("id `{s}`: {e}")))
}

/// A stored non-negative count.
pub(crate) fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Columns for SqliteRow {
    fn text(&self, col: &str) -> StoreResult<String> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(col)?)
    }
    fn id(&self, col: &str) -> StoreResult<Uuid> {
        uuid(self.try_get(col)?)
    }
    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        Ok(time(self.try_get(col)?))
    }
    fn opt_time(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.try_get::<Option<i64>, _>(col)?.map(time))
    }
    fn count(&self, col: &str) -> StoreResult<u64> {
        Ok(count(self.try_get(col)?))
    }
    fn flag(&self, col: &str) -> StoreResult<bool> {
        Ok(self.try_get::<i64, _>(col)? != 0)
    }
    fn opt_count(&self, col: &str) -> StoreResult<Option<u64>> {
        Ok(self.try_get::<Option<i64>, _>(col)?.map(count))
    }
    fn opt_float(&self, col: &str) -> StoreResult<Option<f64>> {
        Ok(self.try_get(col)?)
    }
    fn opt_json_value(&self, col: &str) -> StoreResult<Option<serde_json::Value>> {
        let text: Option<&str> = self.try_get(col)?;
        Ok(text.map(serde_json::from_str).transpose()?)
    }
}
