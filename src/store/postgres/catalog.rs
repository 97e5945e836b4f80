//! [`CatalogStore`] on PostgreSQL: models, custom architectures and uploaded datasets.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::{PgDb, big, count, json};
use crate::engine::arch::ArchSpec;
use crate::store::db::{CatalogStore, StoreError, StoreResult};
use crate::store::records::{
    ArchitectureRecord, DatasetFormat, DatasetRecord, ModelRecord, NewModel,
};

fn model(row: &PgRow) -> StoreResult<ModelRecord> {
    Ok(ModelRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        sha256: row.try_get("sha256")?,
        size_bytes: count(row.try_get("size_bytes")?),
        architecture: row.try_get("architecture")?,
        tensors: json(row, "tensors")?,
        created_at: row.try_get("created_at")?,
    })
}

fn architecture(row: &PgRow) -> StoreResult<ArchitectureRecord> {
    Ok(ArchitectureRecord {
        spec: json(row, "spec")?,
        created_at: row.try_get("created_at")?,
    })
}

fn dataset(row: &PgRow) -> StoreResult<DatasetRecord> {
    let format = match row.try_get::<&str, _>("format")? {
        "idx" => DatasetFormat::Idx,
        "safetensors" => DatasetFormat::Safetensors,
        other => return Err(StoreError::Corrupt(format!("dataset format `{other}`"))),
    };
    Ok(DatasetRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        format,
        blobs: json(row, "blobs")?,
        samples: count(row.try_get("samples")?),
        shape: json(row, "shape")?,
        size_bytes: count(row.try_get("size_bytes")?),
        created_at: row.try_get("created_at")?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl CatalogStore for PgDb {
    async fn insert_model(&self, m: NewModel) -> StoreResult<(ModelRecord, bool)> {
        let inserted = sqlx::query(
            "INSERT INTO models (id, name, sha256, size_bytes, architecture, tensors, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, now())
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(&m.name)
        .bind(&m.sha256)
        .bind(big(m.size_bytes))
        .bind(&m.architecture)
        .bind(Json(&m.tensors))
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query("SELECT * FROM models WHERE sha256 = $1")
            .bind(&m.sha256)
            .fetch_one(&self.pool)
            .await?;
        Ok((model(&row)?, inserted))
    }

    async fn get_model(&self, id: Uuid) -> StoreResult<Option<ModelRecord>> {
        sqlx::query("SELECT * FROM models WHERE id = $1")
            .bind(id)
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
        sqlx::query("DELETE FROM models WHERE id = $1 RETURNING *")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(model)
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

    async fn blob_in_active_job(&self, sha256: &str) -> StoreResult<bool> {
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM job_blobs b JOIN jobs j ON j.id = b.job_id
                            WHERE b.sha256 = $1 AND j.status IN ('queued', 'running'))",
        )
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?;
        Ok(used)
    }

    async fn insert_architecture(&self, spec: &ArchSpec) -> StoreResult<ArchitectureRecord> {
        let result = sqlx::query(
            "INSERT INTO architectures (name, spec, created_at) VALUES ($1, $2, now())
             RETURNING created_at",
        )
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

    async fn get_architecture(&self, name: &str) -> StoreResult<Option<ArchitectureRecord>> {
        sqlx::query("SELECT * FROM architectures WHERE name = $1")
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(d.id)
        .bind(&d.name)
        .bind(d.format.as_str())
        .bind(Json(&d.blobs))
        .bind(big(d.samples))
        .bind(Json(&d.shape))
        .bind(big(d.size_bytes))
        .bind(d.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_dataset(&self, id: Uuid) -> StoreResult<Option<DatasetRecord>> {
        sqlx::query("SELECT * FROM datasets WHERE id = $1")
            .bind(id)
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
