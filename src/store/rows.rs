//! The row mapping both database backends share: [`Columns`] reads one column in the
//! backend's own types (SQLite: ids and JSON as text, times as Unix milliseconds, flags as
//! integers; PostgreSQL: UUID, JSONB, TIMESTAMPTZ, BOOLEAN), and the functions here build every
//! record from it, so a new column is mapped once.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::db::{StoreError, StoreResult};
use super::records::{
    ApiKeyRecord, ArchitectureRecord, AttemptRecord, DatasetFormat, DatasetRecord, JobFailure,
    JobRecord, JobStatus, LabelRange, ModelFormat, ModelRecord, Progress,
};
use crate::engine::pipeline::Stage;

/// One column of a row, in the record's types.
pub trait Columns {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn id(&self, col: &str) -> StoreResult<Uuid>;
    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>>;
    fn opt_time(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>>;
    /// A non-negative count (negative reads as 0).
    fn count(&self, col: &str) -> StoreResult<u64>;
    fn flag(&self, col: &str) -> StoreResult<bool>;
    fn opt_float(&self, col: &str) -> StoreResult<Option<f64>>;
    /// A non-negative count or NULL.
    fn opt_count(&self, col: &str) -> StoreResult<Option<u64>>;
    /// A JSON document; `None` for SQL NULL.
    fn opt_json_value(&self, col: &str) -> StoreResult<Option<serde_json::Value>>;

    /// A JSON document that must be there, decoded.
    fn json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<T> {
        let value = self
            .opt_json_value(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("{col} is NULL")))?;
        serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
    }

    /// A small non-negative number (attempts).
    fn small(&self, col: &str) -> StoreResult<u32> {
        Ok(u32::try_from(self.count(col)?).unwrap_or(u32::MAX))
    }
}

pub fn model(row: &impl Columns) -> StoreResult<ModelRecord> {
    Ok(ModelRecord {
        id: row.id("id")?,
        name: row.text("name")?,
        sha256: row.text("sha256")?,
        size_bytes: row.count("size_bytes")?,
        architecture: row.opt_text("architecture")?,
        format: {
            let text = row.text("format")?;
            ModelFormat::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("model format `{text}`")))?
        },
        tensors: row.json("tensors")?,
        created_at: row.time("created_at")?,
    })
}

pub fn architecture(row: &impl Columns) -> StoreResult<ArchitectureRecord> {
    Ok(ArchitectureRecord {
        spec: row.json("spec")?,
        created_at: row.time("created_at")?,
    })
}

pub fn dataset(row: &impl Columns) -> StoreResult<DatasetRecord> {
    let format = match row.text("format")?.as_str() {
        "idx" => DatasetFormat::Idx,
        "safetensors" => DatasetFormat::Safetensors,
        other => return Err(StoreError::Corrupt(format!("dataset format `{other}`"))),
    };
    Ok(DatasetRecord {
        id: row.id("id")?,
        name: row.text("name")?,
        format,
        blobs: row.json("blobs")?,
        samples: row.count("samples")?,
        shape: row.json("shape")?,
        size_bytes: row.count("size_bytes")?,
        labels: match (row.opt_count("label_min")?, row.opt_count("label_max")?) {
            (Some(min), Some(max)) => Some(LabelRange {
                min: u32::try_from(min).unwrap_or(u32::MAX),
                max: u32::try_from(max).unwrap_or(u32::MAX),
            }),
            _ => None,
        },
        created_at: row.time("created_at")?,
    })
}

pub fn job(row: &impl Columns) -> StoreResult<JobRecord> {
    let status = row.text("status")?;
    let progress = match row.opt_text("progress_stage")? {
        Some(s) => Some(Progress {
            stage: serde_json::from_value::<Stage>(serde_json::Value::String(s))?,
            fraction: row.opt_float("progress_fraction")?.unwrap_or(0.0),
        }),
        None => None,
    };
    Ok(JobRecord {
        id: row.id("id")?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("job status `{status}`")))?,
        attempt: row.small("attempt")?,
        max_attempts: row.small("max_attempts")?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_expires_at: row.opt_time("lease_expires_at")?,
        cancel_requested: row.flag("cancel_requested")?,
        progress,
        timings: row.json("timings")?,
        spec: row.json("spec")?,
        report: row
            .opt_json_value("report")?
            .map(serde_json::from_value)
            .transpose()?,
        error: row.opt_text("error_code")?.map(|code| JobFailure {
            code,
            message: row
                .opt_text("error_message")
                .ok()
                .flatten()
                .unwrap_or_default(),
        }),
        created_at: row.time("created_at")?,
        started_at: row.opt_time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub fn attempt(row: &impl Columns) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        attempt: row.small("attempt")?,
        worker: row.text("worker")?,
        started_at: row.time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        outcome: row.opt_text("outcome")?,
    })
}

pub fn api_key(row: &impl Columns) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: row.id("id")?,
        tenant: row.text("tenant")?,
        prefix: row.text("prefix")?,
        secret_sha256: row.text("secret_sha256")?,
        created_at: row.time("created_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}
