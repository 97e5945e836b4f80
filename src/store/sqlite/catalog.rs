//! [`CatalogStore`] on SQLite: models, custom architectures and uploaded datasets, per tenant.

use async_trait::async_trait;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::{SqliteDb, now_ms, time};
use crate::engine::arch::ArchSpec;
use crate::store::db::{CatalogStore, StoreError, StoreResult};
use crate::store::quota::{QuotaExceeded, QuotaKind, TenantQuota};
use crate::store::records::{ArchitectureRecord, DatasetRecord, ModelRecord, NewModel};
use crate::store::rows;

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Bytes of the tenant's models and datasets, read on `conn` (inside a transaction: what it
/// will commit).
async fn stored_bytes_in(conn: &mut SqliteConnection, tenant: &str) -> StoreResult<u64> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COALESCE((SELECT SUM(size_bytes) FROM models WHERE tenant = ?1), 0)
              + COALESCE((SELECT SUM(size_bytes) FROM datasets WHERE tenant = ?1), 0)",
    )
    .bind(tenant)
    .fetch_one(conn)
    .await?;
    Ok(super::count(total))
}

#[async_trait]
impl CatalogStore for SqliteDb {
    async fn insert_model(
        &self,
        tenant: &str,
        m: NewModel,
        quota: &TenantQuota,
    ) -> StoreResult<(ModelRecord, bool)> {
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO models
                (id, tenant, name, sha256, size_bytes, architecture, format, tensors, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (tenant, sha256) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(tenant)
        .bind(&m.name)
        .bind(&m.sha256)
        .bind(big(m.size_bytes))
        .bind(&m.architecture)
        .bind(m.format.as_str())
        .bind(serde_json::to_string(&m.tensors)?)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        // The insert took the write lock: no other insert of the tenant's can land before the
        // commit, so the sum read now is the one the commit makes true.
        if inserted {
            let total = stored_bytes_in(&mut tx, tenant).await?;
            QuotaExceeded::check(QuotaKind::StoredBytes, total, quota.max_bytes)
                .map_err(StoreError::QuotaExceeded)?;
        }
        let row = sqlx::query("SELECT * FROM models WHERE tenant = ? AND sha256 = ?")
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
        sqlx::query("SELECT * FROM models WHERE tenant = ? AND id = ?")
            .bind(tenant)
            .bind(id.to_string())
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
            "SELECT * FROM models WHERE tenant = ?1 AND (?2 IS NULL OR id < ?2)
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(tenant)
        .bind(before.map(|u| u.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::model)
        .collect()
    }

    async fn delete_model(&self, tenant: &str, id: Uuid) -> StoreResult<Option<ModelRecord>> {
        sqlx::query("DELETE FROM models WHERE tenant = ? AND id = ? RETURNING *")
            .bind(tenant)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::model)
            .transpose()
    }

    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let like = format!("%\"{sha256}\"%");
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM models WHERE sha256 = ?1)
                  + (SELECT COUNT(*) FROM job_blobs WHERE sha256 = ?1)
                  + (SELECT COUNT(*) FROM job_outputs WHERE sha256 = ?1)
                  + (SELECT COUNT(*) FROM datasets WHERE blobs LIKE ?2)",
        )
        .bind(sha256)
        .bind(like)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    async fn blob_in_active_job(&self, tenant: &str, sha256: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM job_blobs b JOIN jobs j ON j.id = b.job_id
             WHERE b.sha256 = ? AND j.tenant = ? AND j.status IN ('queued', 'running')",
        )
        .bind(sha256)
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    async fn insert_architecture(
        &self,
        tenant: &str,
        spec: &ArchSpec,
    ) -> StoreResult<ArchitectureRecord> {
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO architectures (tenant, name, spec, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(tenant)
        .bind(&spec.name)
        .bind(serde_json::to_string(spec)?)
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(ArchitectureRecord {
                spec: spec.clone(),
                created_at: time(now),
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
        sqlx::query("SELECT * FROM architectures WHERE tenant = ? AND name = ?")
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
            "SELECT * FROM architectures WHERE tenant = ?1 AND (?2 IS NULL OR name > ?2)
             ORDER BY name LIMIT ?3",
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
        sqlx::query(
            "INSERT INTO datasets
                (id, tenant, name, format, blobs, samples, shape, size_bytes, label_min,
                 label_max, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(d.id.to_string())
        .bind(tenant)
        .bind(&d.name)
        .bind(d.format.as_str())
        .bind(serde_json::to_string(&d.blobs)?)
        .bind(big(d.samples))
        .bind(serde_json::to_string(&d.shape)?)
        .bind(big(d.size_bytes))
        .bind(d.labels.map(|l| i64::from(l.min)))
        .bind(d.labels.map(|l| i64::from(l.max)))
        .bind(d.created_at.timestamp_millis())
        .execute(&mut *tx)
        .await?;
        let total = stored_bytes_in(&mut tx, tenant).await?;
        QuotaExceeded::check(QuotaKind::StoredBytes, total, quota.max_bytes)
            .map_err(StoreError::QuotaExceeded)?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_dataset(&self, tenant: &str, id: Uuid) -> StoreResult<Option<DatasetRecord>> {
        sqlx::query("SELECT * FROM datasets WHERE tenant = ? AND id = ?")
            .bind(tenant)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::dataset)
            .transpose()
    }

    async fn delete_dataset(&self, tenant: &str, id: Uuid) -> StoreResult<Option<DatasetRecord>> {
        sqlx::query("DELETE FROM datasets WHERE tenant = ? AND id = ? RETURNING *")
            .bind(tenant)
            .bind(id.to_string())
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
            "SELECT * FROM datasets WHERE tenant = ?1 AND (?2 IS NULL OR id < ?2)
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(tenant)
        .bind(before.map(|u| u.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::dataset)
        .collect()
    }
}
