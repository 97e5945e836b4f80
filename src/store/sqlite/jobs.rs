//! [`JobStore`] on SQLite: enqueue, claim with a lease, heartbeat, fenced progress and
//! completion, cancel, and the rescue of expired leases.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::{SqliteDb, count, millis, now_ms};
use crate::engine::pipeline::MethodId;
use crate::store::db::{JobStore, StoreError, StoreResult};
use crate::store::quota::{QuotaExceeded, QuotaKind, TenantQuota};
use crate::store::records::{
    AttemptRecord, DatasetSource, Fence, JobRecord, JobSpec, JobStatus, Lease, Outcome,
    OutputRecord, Progress, Rescued, Timing,
};
use crate::store::rows;

/// The condition every fenced write carries.
const FENCE: &str = "id = ? AND attempt = ? AND lease_owner = ? AND status = 'running'";

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
    async fn enqueue(
        &self,
        tenant: &str,
        spec: &JobSpec,
        max_attempts: u32,
        quota: &TenantQuota,
    ) -> StoreResult<JobRecord> {
        let id = Uuid::now_v7();
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO jobs (id, tenant, status, max_attempts, spec, created_at, updated_at)
             VALUES (?, ?, 'queued', ?, ?, ?, ?) RETURNING *",
        )
        .bind(id.to_string())
        .bind(tenant)
        .bind(i64::from(max_attempts))
        .bind(serde_json::to_string(spec)?)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        // The insert took the write lock: what is read now stays true until the commit.
        let mut found = Vec::new();
        for m in &spec.models {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM models WHERE id = ? AND tenant = ?")
                    .bind(m.to_string())
                    .bind(tenant)
                    .fetch_one(&mut *tx)
                    .await?;
            if n > 0 {
                found.push(*m);
            }
        }
        let dataset_found = match &spec.dataset {
            DatasetSource::Uploaded(d) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM datasets WHERE id = ? AND tenant = ?",
                )
                .bind(d.id.to_string())
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                    > 0
            }
            DatasetSource::Builtin { .. } => true,
        };
        spec.check_inputs(&found, dataset_found)?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE tenant = ? AND status IN ('queued', 'running')",
        )
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
        QuotaExceeded::check(QuotaKind::ActiveJobs, count(active), quota.max_active_jobs)
            .map_err(StoreError::QuotaExceeded)?;
        for sha in spec.input_blobs() {
            sqlx::query("INSERT OR IGNORE INTO job_blobs (job_id, sha256) VALUES (?, ?)")
                .bind(id.to_string())
                .bind(sha)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        rows::job(&row)
    }

    async fn get_job(&self, tenant: &str, id: Uuid) -> StoreResult<Option<JobRecord>> {
        sqlx::query("SELECT * FROM jobs WHERE tenant = ? AND id = ?")
            .bind(tenant)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::job)
            .transpose()
    }

    async fn list_jobs(
        &self,
        tenant: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<JobRecord>> {
        sqlx::query(
            "SELECT * FROM jobs WHERE tenant = ?3 AND (?1 IS NULL OR id < ?1)
             ORDER BY id DESC LIMIT ?2",
        )
        .bind(before.map(|u| u.to_string()))
        .bind(i64::from(limit))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::job)
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
        let record = rows::job(&row)?;
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

    async fn request_cancel(&self, tenant: &str, id: Uuid) -> StoreResult<Option<JobRecord>> {
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET cancel_requested = 1, updated_at = ?1,
                    status = CASE WHEN status = 'queued' THEN 'canceled' ELSE status END,
                    finished_at = CASE WHEN status = 'queued' THEN ?1 ELSE finished_at END
             WHERE id = ?2 AND tenant = ?3 AND status IN ('queued', 'running')",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(tenant)
        .execute(&self.pool)
        .await?;
        self.get_job(tenant, id).await
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
        let found = sqlx::query("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut counts: Vec<(JobStatus, u64)> = JobStatus::ALL.iter().map(|&s| (s, 0)).collect();
        for row in found {
            let status: &str = row.try_get(0)?;
            if let Some(entry) = counts.iter_mut().find(|(s, _)| s.as_str() == status) {
                entry.1 = count(row.try_get(1)?);
            }
        }
        Ok(counts)
    }

    async fn attempts(&self, id: Uuid) -> StoreResult<Vec<AttemptRecord>> {
        sqlx::query("SELECT * FROM job_attempts WHERE job_id = ? ORDER BY attempt")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::attempt)
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

    async fn delete_ended_job(&self, tenant: &str, id: Uuid) -> StoreResult<Option<Vec<String>>> {
        super::delete::delete_ended_job(&self.pool, tenant, id).await
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
