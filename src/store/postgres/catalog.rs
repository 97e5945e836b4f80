//! [`CatalogStore`] on PostgreSQL: models, custom architectures and uploaded datasets, per
//! tenant.

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{PgDb, big};
use crate::engine::arch::ArchSpec;
use crate::store::db::{CatalogStore, StoreError, StoreResult};
use crate::store::quota::{PG_QUOTA_LOCK, QuotaExceeded, QuotaKind, TenantQuota};
use crate::store::records::{ArchitectureRecord, DatasetRecord, ModelRecord, NewModel};
use crate::store::rows;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Bytes of the tenant's models and datasets, read on `conn` (inside a transaction that holds
/// the tenant's quota lock: nothing of the tenant's commits meanwhile).
async fn stored_bytes_in(conn: &mut PgConnection, tenant: &str) -> StoreResult<u64> {
    let total: i64 = sqlx::query_scalar(
        "SELECT (COALESCE((SELECT SUM(size_bytes) FROM models WHERE tenant = $1), 0)
               + COALESCE((SELECT SUM(size_bytes) FROM datasets WHERE tenant = $1), 0))::BIGINT",
    )
    .bind(tenant)
    .fetch_one(conn)
    .await?;
    Ok(super::count(total))
}

#[async_trait]
impl CatalogStore for PgDb {
    async fn insert_model(
        &self,
        tenant: &str,
        m: NewModel,
        quota: &TenantQuota,
    ) -> StoreResult<(ModelRecord, bool)> {
        let mut tx = self.pool.begin().await?;
        // One tenant's quota checks take turns, in every process sharing the database.
        sqlx::query(PG_QUOTA_LOCK)
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO models
                (id, tenant, name, sha256, size_bytes, architecture, format, tensors, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
             ON CONFLICT (tenant, sha256) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(tenant)
        .bind(&m.name)
        .bind(&m.sha256)
        .bind(big(m.size_bytes))
        .bind(&m.architecture)
        .bind(m.format.as_str())
        .bind(Json(&m.tensors))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            let total = stored_bytes_in(&mut tx, tenant).await?;
            QuotaExceeded::check(QuotaKind::StoredBytes, total, quota.max_bytes)
                .map_err(StoreError::QuotaExceeded)?;
        }
        let row = sqlx::query("SELECT * FROM models WHERE tenant = $1 AND sha256 = $2")
            .bind(tenant)
            .bind(&m.sha256)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((rows::model(&row)?, inserted))
    }

    async fn stored_bytes(&self, tenant: &str) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await?;
        stored_bytes_in(&mut conn, tenant).await
    }

    async fn get_model(&self, tenant: &str, id: Uuid) -> StoreResult<Option<ModelRecord>> {
        sqlx::query("SELECT * FROM models WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::model)
            .transpose()
    }

    async fn list_models(
        &self,
        tenant: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ModelRecord>> {
        sqlx::query(
            "SELECT * FROM models WHERE tenant = $1 AND ($2::uuid IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::model)
        .collect()
    }

    async fn delete_model(&self, tenant: &str, id: Uuid) -> StoreResult<Option<ModelRecord>> {
        sqlx::query("DELETE FROM models WHERE tenant = $1 AND id = $2 RETURNING *")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::model)
            .transpose()
    }

    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM models WHERE sha256 = $1)
                 OR EXISTS (SELECT 1 FROM job_blobs WHERE sha256 = $1)
                 OR EXISTS (SELECT 1 FROM job_outputs WHERE sha256 = $1)
                 OR EXISTS (SELECT 1 FROM datasets WHERE blobs @> jsonb_build_array($1::text))",
        )
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?;
        Ok(used)
    }

    async fn blob_in_active_job(&self, tenant: &str, sha256: &str) -> StoreResult<bool> {
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM job_blobs b JOIN jobs j ON j.id = b.job_id
                            WHERE b.sha256 = $1 AND j.tenant = $2
                              AND j.status IN ('queued', 'running'))",
        )
        .bind(sha256)
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?;
        Ok(used)
    }

    async fn insert_architecture(
        &self,
        tenant: &str,
        spec: &ArchSpec,
    ) -> StoreResult<ArchitectureRecord> {
        let result = sqlx::query(
            "INSERT INTO architectures (tenant, name, spec, created_at) VALUES ($1, $2, $3, now())
             RETURNING created_at",
        )
        .bind(tenant)
        .bind(&spec.name)
        .bind(Json(spec))
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => Ok(ArchitectureRecord {
                spec: spec.clone(),
                created_at: row.try_get("created_at")?,
            }),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "architecture `{}`",
                spec.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_architecture(
        &self,
        tenant: &str,
        name: &str,
    ) -> StoreResult<Option<ArchitectureRecord>> {
        sqlx::query("SELECT * FROM architectures WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::architecture)
            .transpose()
    }

    async fn list_architectures(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ArchitectureRecord>> {
        sqlx::query(
            "SELECT * FROM architectures WHERE tenant = $1 AND ($2::TEXT IS NULL OR name > $2)
             ORDER BY name LIMIT $3",
        )
        .bind(tenant)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::architecture)
        .collect()
    }

    async fn insert_dataset(
        &self,
        tenant: &str,
        d: &DatasetRecord,
        quota: &TenantQuota,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(PG_QUOTA_LOCK)
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO datasets
                (id, tenant, name, format, blobs, samples, shape, size_bytes, label_min,
                 label_max, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(d.id)
        .bind(tenant)
        .bind(&d.name)
        .bind(d.format.as_str())
        .bind(Json(&d.blobs))
        .bind(big(d.samples))
        .bind(Json(&d.shape))
        .bind(big(d.size_bytes))
        .bind(d.labels.map(|l| i64::from(l.min)))
        .bind(d.labels.map(|l| i64::from(l.max)))
        .bind(d.created_at)
        .execute(&mut *tx)
        .await?;
        let total = stored_bytes_in(&mut tx, tenant).await?;
        QuotaExceeded::check(QuotaKind::StoredBytes, total, quota.max_bytes)
            .map_err(StoreError::QuotaExceeded)?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_dataset(&self, tenant: &str, id: Uuid) -> StoreResult<Option<DatasetRecord>> {
        sqlx::query("SELECT * FROM datasets WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::dataset)
            .transpose()
    }

    async fn delete_dataset(&self, tenant: &str, id: Uuid) -> StoreResult<Option<DatasetRecord>> {
        sqlx::query("DELETE FROM datasets WHERE tenant = $1 AND id = $2 RETURNING *")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::dataset)
            .transpose()
    }

    async fn list_datasets(
        &self,
        tenant: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<DatasetRecord>> {
        sqlx::query(
            "SELECT * FROM datasets WHERE tenant = $1 AND ($2::UUID IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::dataset)
        .collect()
    }
}
