//! Blob locks on PostgreSQL: session advisory locks (`pg_advisory_lock`) on a connection kept
//! out of the pool while the [`BlobLock`] lives, so every process sharing the database takes
//! turns. A process-wide semaphore caps the connections parked this way (the holder needs
//! another one from the pool for its statements). Dropping the lock unlocks on a task; when
//! that cannot run, the connection is closed, which ends its locks too.

use std::sync::Arc;

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::PgDb;
use crate::store::db::StoreResult;
use crate::store::lock::{BlobLock, lock_keys};

/// How many blob locks one process holds at once (each parks a connection).
pub(super) const MAX_HELD: usize = 3;

/// The semaphore of [`MAX_HELD`] permits.
pub(super) fn holders() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_HELD))
}

struct Held {
    conn: Option<PoolConnection<Postgres>>,
    /// A lock statement was sent and its answer not read (the caller gave up waiting): the
    /// lock may still be granted, so the connection must not go back to the pool.
    pending: bool,
    keys: Vec<i64>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let (Some(mut conn), permit) = (self.conn.take(), self.permit.take()) else {
            return;
        };
        let keys = std::mem::take(&mut self.keys);
        if self.pending {
            conn.close_on_drop();
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            conn.close_on_drop();
            return;
        };
        runtime.spawn(async move {
            for k in keys {
                let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(k)
                    .execute(&mut *conn)
                    .await;
                if unlocked.is_err() {
                    conn.close_on_drop();
                    break;
                }
            }
            drop(conn);
            drop(permit);
        });
    }
}

impl PgDb {
    /// Take the advisory locks of `sha256s`, in key order.
    pub(super) async fn advisory_lock(&self, sha256s: &[&str]) -> StoreResult<BlobLock> {
        let permit = self
            .lock_holders
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let conn = self.pool.acquire().await?;
        let mut held = Held {
            conn: Some(conn),
            pending: false,
            keys: Vec::new(),
            permit: Some(permit),
        };
        for k in lock_keys(sha256s) {
            let conn = held.conn.as_mut().expect("held until drop");
            held.pending = true;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(k)
                .execute(&mut **conn)
                .await?;
            held.pending = false;
            held.keys.push(k);
        }
        Ok(BlobLock::new(held))
    }
}
