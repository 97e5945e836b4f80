//! The PostgreSQL backend: migrations from `migrations/postgres/` (UUID, JSONB, TIMESTAMPTZ),
//! for several API and worker processes sharing one database.
//!
//! Every time is written by the database clock (`now()`), so a lease means the same instant to
//! every process. The queue claims with `FOR UPDATE SKIP LOCKED` (two workers never wait on or
//! take the same row), fences every worker write by `(attempt, lease_owner)` like the SQLite
//! backend, rescues expired leases in one statement, and wakes idle workers of every process
//! with `LISTEN/NOTIFY` on [`CHANNEL`] (workers still poll, so a lost notification only costs
//! a poll period).

mod catalog;
mod delete;
mod idempotency;
mod jobs;
mod keys;
mod lock;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor, Postgres, Row};
use tokio::sync::{Notify, Semaphore};
use tracing::{debug, warn};

use super::db::{Db, StoreResult};
use super::lock::BlobLock;
use super::rows::Columns;

/// The migrations compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The `LISTEN/NOTIFY` channel a job is announced on when it is queued or re-queued.
pub const CHANNEL: &str = "gmfuse_jobs";

/// Connections per process: the API's requests, the workers' claims and heartbeats, and one
/// listener connection for the wake-ups.
const MAX_CONNECTIONS: u32 = 10;

/// A PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgDb {
    pool: PgPool,
    /// Fired once per notification on [`CHANNEL`].
    wake: Arc<Notify>,
    /// Whether the listener task was started (on the first [`Db::wait_for_work`]).
    listening: Arc<AtomicBool>,
    /// Caps the connections parked by blob locks.
    lock_holders: Arc<Semaphore>,
}

impl PgDb {
    /// Connect (without migrating).
    ///
    /// # Errors
    /// [`StoreError::Database`](super::db::StoreError::Database) when the URL is malformed or the server cannot be reached.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("gmfuse");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(PgDb {
            pool,
            wake: Arc::new(Notify::new()),
            listening: Arc::new(AtomicBool::new(false)),
            lock_holders: lock::holders(),
        })
    }

    /// The connection pool (tests count rows with it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Start the task that turns notifications on [`CHANNEL`] into wake-ups, once.
    fn listen(&self) {
        if self.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool = self.pool.clone();
        let wake = self.wake.clone();
        tokio::spawn(async move {
            loop {
                match listen_until_error(&pool, &wake).await {
                    sqlx::Error::PoolClosed => return,
                    e => warn!(error = %e, "job notifications lost; polling until reconnected"),
                }
                if pool.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Listen on [`CHANNEL`] and fire `wake` per notification until the connection fails.
async fn listen_until_error(pool: &PgPool, wake: &Notify) -> sqlx::Error {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(e) => return e,
    };
    if let Err(e) = listener.listen(CHANNEL).await {
        return e;
    }
    debug!(channel = CHANNEL, "listening for queued jobs");
    loop {
        match listener.recv().await {
            Ok(_) => wake.notify_one(),
            Err(e) => return e,
        }
    }
}

/// Announce queued work to every listening process (delivered when the transaction commits).
pub(crate) async fn notify<'c, E: Executor<'c, Database = Postgres>>(
    executor: E,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(executor)
        .await?;
    Ok(())
}

#[async_trait]
impl Db for PgDb {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        // sqlx holds an advisory lock while it migrates: processes starting together take turns.
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ready(&self) -> StoreResult<bool> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        if !exists {
            return Ok(false);
        }
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await?;
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    async fn wait_for_work(&self) {
        self.listen();
        self.wake.notified().await;
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn lock_blobs(&self, sha256s: &[&str]) -> StoreResult<BlobLock> {
        self.advisory_lock(sha256s).await
    }
}

/// A stored non-negative count.
pub(crate) fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A count to store.
pub(crate) fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An attempt number to store.
pub(crate) fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl Columns for PgRow {
    fn text(&self, col: &str) -> StoreResult<String> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(col)?)
    }
    fn id(&self, col: &str) -> StoreResult<uuid::Uuid> {
        Ok(self.try_get(col)?)
    }
    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        Ok(self.try_get(col)?)
    }
    fn opt_time(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.try_get(col)?)
    }
    fn count(&self, col: &str) -> StoreResult<u64> {
        // BIGINT columns (sizes) and INTEGER ones (attempts).
        let v = match self.try_get::<i64, _>(col) {
            Ok(v) => v,
            Err(_) => i64::from(self.try_get::<i32, _>(col)?),
        };
        Ok(count(v))
    }
    fn flag(&self, col: &str) -> StoreResult<bool> {
        Ok(self.try_get(col)?)
    }
    fn opt_count(&self, col: &str) -> StoreResult<Option<u64>> {
        Ok(self.try_get::<Option<i64>, _>(col)?.map(count))
    }
    fn opt_float(&self, col: &str) -> StoreResult<Option<f64>> {
        Ok(self.try_get(col)?)
    }
    fn opt_json_value(&self, col: &str) -> StoreResult<Option<serde_json::Value>> {
        Ok(self.try_get(col)?)
    }
}
