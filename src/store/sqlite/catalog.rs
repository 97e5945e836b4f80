//! [`CatalogStore`] on SQLite: models, custom architectures and uploaded datasets.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::{SqliteDb, count, now_ms, time, uuid};
use crate::engine::arch::ArchSpec;
use crate::store::db::{CatalogStore, StoreError, StoreResult};
use crate::store::records::{
    ArchitectureRecord, DatasetFormat, DatasetRecord, ModelRecord, NewModel,
};

fn model(row: &SqliteRow) -> StoreResult<ModelRecord> {
    Ok(ModelRecord {
        id: uuid(row.try_get("id")?)?,
        name: row.try_get("name")?,
        sha256: row.try_get("sha256")?,
        size_bytes: count(row.try_get("size_bytes")?),
        architecture: row.try_get("architecture")?,
        tensors: serde_json::from_str(row.try_get("tensors")?)?,
        created_at: time(row.try_get("created_at")?),
    })
}

fn architecture(row: &SqliteRow) -> StoreResult<ArchitectureRecord> {
    Ok(ArchitectureRecord {
        spec: serde_json::from_str(row.try_get("spec")?)?,
        created_at: time(row.try_get("created_at")?),
    })
}

fn dataset(row: &SqliteRow) -> StoreResult<DatasetRecord> {
    let format = match row.try_get::<&str, _>("format")? {
        "idx" => DatasetFormat::Idx,
        "safetensors" => DatasetFormat::Safetensors,
        other => return Err(StoreError::Corrupt(format!("dataset format `{other}`"))),
    };
    Ok(DatasetRecord {
        id: uuid(row.try_get("id")?)?,
        name: row.try_get("name")?,
        format,
        blobs: serde_json::from_str(row.try_get("blobs")?)?,
        samples: count(row.try_get("samples")?),
        shape: serde_json::from_str(row.try_get("shape")?)?,
        size_bytes: count(row.try_get("size_bytes")?),
        created_at: time(row.try_get("created_at")?),
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl CatalogStore for SqliteDb {
    async fn insert_model(&self, m: NewModel) -> StoreResult<(ModelRecord, bool)> {
        let id = Uuid::now_v7();
        let inserted = sqlx::query(
            "INSERT INTO models (id, name, sha256, size_bytes, architecture, tensors, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&m.name)
        .bind(&m.sha256)
        .bind(i64::try_from(m.size_bytes).unwrap_or(i64::MAX))
        .bind(&m.architecture)
        .bind(serde_json::to_string(&m.tensors)?)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query("SELECT * FROM models WHERE sha256 = ?")
            .bind(&m.sha256)
            .fetch_one(&self.pool)
            .await?;
        Ok((model(&row)?, inserted))
    }

    async fn get_model(&self, id: Uuid) -> StoreResult<Option<ModelRecord>> {
        sqlx::query("SELECT * FROM models WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(model)
            .transpose()
    }

    async fn list_models(&self) -> StoreResult<Vec<ModelRecord>> {
        sqlx::query("SELECT * FROM models ORDER BY created_at DESC, id DESC")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(model)
            .collect()
    }

    async fn delete_model(&self, id: Uuid) -> StoreResult<Option<ModelRecord>> {
        sqlx::query("DELETE FROM models WHERE id = ? RETURNING *")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(model)
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

    async fn blob_in_active_job(&self, sha256: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM job_blobs b JOIN jobs j ON j.id = b.job_id
             WHERE b.sha256 = ? AND j.status IN ('queued', 'running')",
        )
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    async fn insert_architecture(&self, spec: &ArchSpec) -> StoreResult<ArchitectureRecord> {
        let now = now_ms();
        let result =
            sqlx::query("INSERT INTO architectures (name, spec, created_at) VALUES (?, ?, ?)")
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

    async fn get_architecture(&self, name: &str) -> StoreResult<Option<ArchitectureRecord>> {
        sqlx::query("SELECT * FROM architectures WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(architecture)
            .transpose()
    }

    async fn list_architectures(&self) -> StoreResult<Vec<ArchitectureRecord>> {
        sqlx::query("SELECT * FROM architectures ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(architecture)
            .collect()
    }

    async fn insert_dataset(&self, d: &DatasetRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO datasets (id, name, format, blobs, samples, shape, size_bytes, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(d.id.to_string())
        .bind(&d.name)
        .bind(d.format.as_str())
        .bind(serde_json::to_string(&d.blobs)?)
        .bind(i64::try_from(d.samples).unwrap_or(i64::MAX))
        .bind(serde_json::to_string(&d.shape)?)
        .bind(i64::try_from(d.size_bytes).unwrap_or(i64::MAX))
        .bind(d.created_at.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_dataset(&self, id: Uuid) -> StoreResult<Option<DatasetRecord>> {
        sqlx::query("SELECT * FROM datasets WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(dataset)
            .transpose()
    }

    async fn list_datasets(&self) -> StoreResult<Vec<DatasetRecord>> {
        sqlx::query("SELECT * FROM datasets ORDER BY created_at DESC, id DESC")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(dataset)
            .collect()
    }
}
