//! [`KeyStore`] on PostgreSQL.

use async_trait::async_trait;
use uuid::Uuid;

use super::PgDb;
use crate::store::db::{KeyStore, StoreResult};
use crate::store::records::ApiKeyRecord;
use crate::store::rows;

#[async_trait]
impl KeyStore for PgDb {
    async fn insert_key(
        &self,
        tenant: &str,
        prefix: &str,
        secret_sha256: &str,
    ) -> StoreResult<ApiKeyRecord> {
        let row = sqlx::query(
            "INSERT INTO api_keys (id, tenant, prefix, secret_sha256, created_at)
             VALUES ($1, $2, $3, $4, now()) RETURNING *",
        )
        .bind(Uuid::now_v7())
        .bind(tenant)
        .bind(prefix)
        .bind(secret_sha256)
        .fetch_one(&self.pool)
        .await?;
        rows::api_key(&row)
    }

    async fn find_key(&self, secret_sha256: &str) -> StoreResult<Option<ApiKeyRecord>> {
        sqlx::query("SELECT * FROM api_keys WHERE secret_sha256 = $1")
            .bind(secret_sha256)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::api_key)
            .transpose()
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::api_key)
            .collect()
    }

    async fn revoke_key(&self, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn any_key(&self) -> StoreResult<bool> {
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api_keys)")
            .fetch_one(&self.pool)
            .await?;
        Ok(any)
    }
}
