//! [`JobStore`] on SQLite: enqueue, claim with a lease, heartbeat, fenced progress and
//! completion, cancel, and the rescue of expired leases.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::{SqliteDb, count, millis, now_ms, time, uuid};
use crate::engine::pipeline::{MethodId, Stage};
use crate::store::db::{JobStore, StoreError, StoreResult};
use crate::store::records::{
    AttemptRecord, DatasetSource, Fence, JobFailure, JobRecord, JobSpec, JobStatus, Lease, Outcome,
    OutputRecord, Progress, Rescued, Timing,
};

/// The condition every fenced write carries.
const FENCE: &str = "id = ? AND attempt = ? AND lease_owner = ? AND status = 'running'";

fn job(row: &SqliteRow) -> StoreResult<JobRecord> {
    let status: &str = row.try_get("status")?;
    let stage: Option<String> = row.try_get("progress_stage")?;
    let progress = match stage {
        Some(s) => Some(Progress {
            stage: serde_json::from_value::<Stage>(serde_json::Value::String(s))?,
            fraction: row
                .try_get::<Option<f64>, _>("progress_fraction")?
                .unwrap_or(0.0),
        }),
        None => None,
    };
    let report: Option<String> = row.try_get("report")?;
    let error_code: Option<String> = row.try_get("error_code")?;
    let opt_time =
        |col: &str| -> StoreResult<_> { Ok(row.try_get::<Option<i64>, _>(col)?.map(time)) };
    Ok(JobRecord {
        id: uuid(row.try_get("id")?)?,
        status: JobStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("job status `{status}`")))?,
        attempt: u32::try_from(row.try_get::<i64, _>("attempt")?).unwrap_or(0),
        max_attempts: u32::try_from(row.try_get::<i64, _>("max_attempts")?).unwrap_or(0),
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: opt_time("lease_expires_at")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        progress,
        timings: serde_json::from_str(row.try_get("timings")?)?,
        spec: serde_json::from_str(row.try_get("spec")?)?,
        report: report.as_deref().map(serde_json::from_str).transpose()?,
        error: error_code.map(|code| JobFailure {
            code,
            message: row
                .try_get::<Option<String>, _>("error_message")
                .ok()
                .flatten()
                .unwrap_or_default(),
        }),
        created_at: time(row.try_get("created_at")?),
        started_at: opt_time("started_at")?,
        finished_at: opt_time("finished_at")?,
        updated_at: time(row.try_get("updated_at")?),
    })
}

fn fence(row: Option<SqliteRow>) -> StoreResult<Fence> {
    Ok(match row {
        Some(r) => Fence::Held {
            cancel_requested: r.try_get::<i64, _>(0)? != 0,
        },
        None => Fence::Lost,
    })
}

#[async_trait]
impl JobStore for SqliteDb {
    async fn enqueue(&self, spec: &JobSpec, max_attempts: u32) -> StoreResult<JobRecord> {
        let id = Uuid::now_v7();
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO jobs (id, status, max_attempts, spec, created_at, updated_at)
             VALUES (?, 'queued', ?, ?, ?, ?) RETURNING *",
        )
        .bind(id.to_string())
        .bind(i64::from(max_attempts))
        .bind(serde_json::to_string(spec)?)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let mut blobs: Vec<&str> = spec.inputs.iter().map(String::as_str).collect();
        if let DatasetSource::Uploaded(d) = &spec.dataset {
            blobs.extend(d.blobs.iter().map(String::as_str));
        }
        for sha in blobs {
            sqlx::query("INSERT OR IGNORE INTO job_blobs (job_id, sha256) VALUES (?, ?)")
                .bind(id.to_string())
                .bind(sha)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        job(&row)
    }

    async fn get_job(&self, id: Uuid) -> StoreResult<Option<JobRecord>> {
        sqlx::query("SELECT * FROM jobs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(job)
            .transpose()
    }

    async fn list_jobs(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<JobRecord>> {
        sqlx::query("SELECT * FROM jobs WHERE ?1 IS NULL OR id < ?1 ORDER BY id DESC LIMIT ?2")
            .bind(before.map(|u| u.to_string()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(job)
            .collect()
    }

    async fn claim(&self, owner: &str, lease: Duration) -> StoreResult<Option<JobRecord>> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_owner = ?1,
                    lease_expires_at = ?2, started_at = COALESCE(started_at, ?3), updated_at = ?3,
                    progress_stage = NULL, progress_fraction = NULL, timings = '[]'
             WHERE id IN (SELECT id FROM jobs WHERE status = 'queued'
                          ORDER BY created_at, id LIMIT 1)
               AND status = 'queued'
             RETURNING *",
        )
        .bind(owner)
        .bind(now.saturating_add(millis(lease)))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = job(&row)?;
        sqlx::query(
            "INSERT INTO job_attempts (job_id, attempt, worker, started_at) VALUES (?, ?, ?, ?)",
        )
        .bind(record.id.to_string())
        .bind(i64::from(record.attempt))
        .bind(owner)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    async fn heartbeat(&self, lease: &Lease, duration: Duration) -> StoreResult<Fence> {
        let now = now_ms();
        let row = sqlx::query(&format!(
            "UPDATE jobs SET lease_expires_at = ?, updated_at = ? WHERE {FENCE}
             RETURNING cancel_requested"
        ))
        .bind(now.saturating_add(millis(duration)))
        .bind(now)
        .bind(lease.job_id.to_string())
        .bind(i64::from(lease.attempt))
        .bind(&lease.owner)
        .fetch_optional(&self.pool)
        .await?;
        fence(row)
    }

    async fn record_progress(
        &self,
        lease: &Lease,
        progress: Progress,
        timings: &[Timing],
    ) -> StoreResult<Fence> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET progress_stage = ?, progress_fraction = ?, timings = ?, updated_at = ?
             WHERE {FENCE} RETURNING cancel_requested"
        ))
        .bind(progress.stage.to_string())
        .bind(progress.fraction)
        .bind(serde_json::to_string(timings)?)
        .bind(now_ms())
        .bind(lease.job_id.to_string())
        .bind(i64::from(lease.attempt))
        .bind(&lease.owner)
        .fetch_optional(&self.pool)
        .await?;
        fence(row)
    }

    async fn finish(&self, lease: &Lease, outcome: Outcome) -> StoreResult<bool> {
        let now = now_ms();
        let (status, report, failure) = match &outcome {
            Outcome::Succeeded(r) => ("succeeded", Some(serde_json::to_string(r)?), None),
            Outcome::Failed(f) => ("failed", None, Some(f)),
            Outcome::Canceled => ("canceled", None, None),
            Outcome::Requeue(f) => ("queued", None, Some(f)),
        };
        let mut tx = self.pool.begin().await?;
        // A re-queue past the last attempt fails the job instead.
        let done = sqlx::query(
            "UPDATE jobs SET
                status = CASE WHEN ?1 = 'queued' AND attempt >= max_attempts
                              THEN 'failed' ELSE ?1 END,
                report = ?2, error_code = ?3, error_message = ?4,
                finished_at = CASE WHEN ?1 = 'queued' AND attempt < max_attempts
                                   THEN NULL ELSE ?5 END,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = ?5
             WHERE id = ?6 AND attempt = ?7 AND lease_owner = ?8 AND status = 'running'",
        )
        .bind(status)
        .bind(report)
        .bind(failure.map(|f| f.code.clone()))
        .bind(failure.map(|f| f.message.clone()))
        .bind(now)
        .bind(lease.job_id.to_string())
        .bind(i64::from(lease.attempt))
        .bind(&lease.owner)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            sqlx::query(
                "UPDATE job_attempts SET finished_at = ?, outcome = ?
                 WHERE job_id = ? AND attempt = ?",
            )
            .bind(now)
            .bind(outcome.as_str())
            .bind(lease.job_id.to_string())
            .bind(i64::from(lease.attempt))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn request_cancel(&self, id: Uuid) -> StoreResult<Option<JobRecord>> {
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET cancel_requested = 1, updated_at = ?1,
                    status = CASE WHEN status = 'queued' THEN 'canceled' ELSE status END,
                    finished_at = CASE WHEN status = 'queued' THEN ?1 ELSE finished_at END
             WHERE id = ?2 AND status IN ('queued', 'running')",
        )
        .bind(now)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        self.get_job(id).await
    }

    async fn rescue_expired(&self) -> StoreResult<Rescued> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let expired = "status = 'running' AND lease_expires_at < ?1";
        sqlx::query(&format!(
            "UPDATE job_attempts SET finished_at = ?1, outcome = 'expired'
             WHERE finished_at IS NULL
               AND (job_id, attempt) IN (SELECT id, attempt FROM jobs WHERE {expired})"
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE jobs SET status = 'canceled', finished_at = ?1, updated_at = ?1,
                    lease_owner = NULL, lease_expires_at = NULL
             WHERE {expired} AND cancel_requested = 1"
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let failed = sqlx::query(&format!(
            "UPDATE jobs SET status = 'failed', finished_at = ?1, updated_at = ?1,
                    lease_owner = NULL, lease_expires_at = NULL, error_code = 'attempts_exhausted',
                    error_message = 'the job lost its worker ' || attempt || ' times'
             WHERE {expired} AND attempt >= max_attempts"
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let requeued = sqlx::query(&format!(
            "UPDATE jobs SET status = 'queued', updated_at = ?1,
                    lease_owner = NULL, lease_expires_at = NULL
             WHERE {expired}"
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Rescued { requeued, failed })
    }

    async fn job_counts(&self) -> StoreResult<Vec<(JobStatus, u64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut counts: Vec<(JobStatus, u64)> = JobStatus::ALL.iter().map(|&s| (s, 0)).collect();
        for row in rows {
            let status: &str = row.try_get(0)?;
            if let Some(entry) = counts.iter_mut().find(|(s, _)| s.as_str() == status) {
                entry.1 = count(row.try_get(1)?);
            }
        }
        Ok(counts)
    }

    async fn attempts(&self, id: Uuid) -> StoreResult<Vec<AttemptRecord>> {
        let rows = sqlx::query("SELECT * FROM job_attempts WHERE job_id = ? ORDER BY attempt")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRecord {
                    attempt: u32::try_from(r.try_get::<i64, _>("attempt")?).unwrap_or(0),
                    worker: r.try_get("worker")?,
                    started_at: time(r.try_get("started_at")?),
                    finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(time),
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }

    async fn get_output(
        &self,
        job_id: Uuid,
        method: MethodId,
        proportion: f64,
    ) -> StoreResult<Option<OutputRecord>> {
        let row = sqlx::query(
            "SELECT sha256, size_bytes FROM job_outputs
             WHERE job_id = ? AND method = ? AND proportion = ?",
        )
        .bind(job_id.to_string())
        .bind(method.as_str())
        .bind(proportion)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(OutputRecord {
                job_id,
                method,
                proportion,
                sha256: r.try_get(0)?,
                size_bytes: count(r.try_get(1)?),
            })
        })
        .transpose()
    }

    async fn put_output(&self, o: &OutputRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO job_outputs
                (job_id, method, proportion, sha256, size_bytes, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(o.job_id.to_string())
        .bind(o.method.as_str())
        .bind(o.proportion)
        .bind(&o.sha256)
        .bind(i64::try_from(o.size_bytes).unwrap_or(i64::MAX))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
