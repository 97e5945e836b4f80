//! [`IdempotencyStore`] on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;

use super::PgDb;
use crate::store::db::{IdempotencyStore, StoreResult};
use crate::store::records::{IdemSlot, StoredResponse};

#[async_trait]
impl IdempotencyStore for PgDb {
    async fn claim_idempotency(
        &self,
        tenant: &str,
        route: &str,
        key: &str,
        request_hash: &str,
        retention: Duration,
        stale: Duration,
    ) -> StoreResult<IdemSlot> {
        sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE created_at < now() - $1 OR (status IS NULL AND created_at < now() - $2)",
        )
        .bind(retention)
        .bind(stale)
        .execute(&self.pool)
        .await?;
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (tenant, route, key, request_hash, created_at)
             VALUES ($1, $2, $3, $4, now()) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(route)
        .bind(key)
        .bind(request_hash)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            return Ok(IdemSlot::Claimed);
        }
        let row = sqlx::query(
            "SELECT request_hash, status, location, body FROM idempotency_keys
             WHERE tenant = $1 AND route = $2 AND key = $3",
        )
        .bind(tenant)
        .bind(route)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            // Completed and expired in between: the caller may retry.
            return Ok(IdemSlot::InFlight);
        };
        Ok(match row.try_get::<Option<i32>, _>("status")? {
            None => IdemSlot::InFlight,
            Some(status) => IdemSlot::Done {
                request_hash: row.try_get("request_hash")?,
                response: StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    location: row.try_get("location")?,
                    body: row
                        .try_get::<Option<String>, _>("body")?
                        .unwrap_or_default(),
                },
            },
        })
    }

    async fn complete_idempotency(
        &self,
        tenant: &str,
        route: &str,
        key: &str,
        request_hash: &str,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET request_hash = $1, status = $2, location = $3, body = $4
             WHERE tenant = $5 AND route = $6 AND key = $7",
        )
        .bind(request_hash)
        .bind(i32::from(response.status))
        .bind(&response.location)
        .bind(&response.body)
        .bind(tenant)
        .bind(route)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn release_idempotency(&self, tenant: &str, route: &str, key: &str) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE tenant = $1 AND route = $2 AND key = $3 AND status IS NULL",
        )
        .bind(tenant)
        .bind(route)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
