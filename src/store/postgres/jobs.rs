//! [`JobStore`] on PostgreSQL: enqueue (with a notification), claim with
//! `FOR UPDATE SKIP LOCKED` and a lease, heartbeat, fenced progress and completion, cancel,
//! and the rescue of expired leases — each one statement, so no half-done state is visible.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::{PgDb, big, count, int, notify};
use crate::engine::pipeline::{FusionReport, MethodId};
use crate::store::db::{JobStore, StoreError, StoreResult};
use crate::store::quota::{PG_QUOTA_LOCK, QuotaExceeded, QuotaKind, TenantQuota};
use crate::store::records::{
    AttemptRecord, DatasetSource, Fence, JobRecord, JobSpec, JobStatus, Lease, Outcome,
    OutputRecord, Progress, Rescued, Timing,
};
use crate::store::rows;

/// The condition every fenced write carries (`$1..$3` = id, attempt, owner).
const FENCE: &str = "id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'running'";

fn fence(row: Option<PgRow>) -> StoreResult<Fence> {
    Ok(match row {
        Some(r) => Fence::Held {
            cancel_requested: r.try_get(0)?,
        },
        None => Fence::Lost,
    })
}

/// Seconds of a lease, as `make_interval` takes them.
fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[async_trait]
impl JobStore for PgDb {
    async fn enqueue(
        &self,
        tenant: &str,
        spec: &JobSpec,
        max_attempts: u32,
        quota: &TenantQuota,
    ) -> StoreResult<JobRecord> {
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        // One tenant's quota checks take turns, in every process sharing the database: the
        // count below stays true until this transaction commits.
        sqlx::query(PG_QUOTA_LOCK)
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE tenant = $1 AND status IN ('queued', 'running')",
        )
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
        QuotaExceeded::check(
            QuotaKind::ActiveJobs,
            count(active).saturating_add(1),
            quota.max_active_jobs,
        )
        .map_err(StoreError::QuotaExceeded)?;
        let found: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM models WHERE id = ANY($1) AND tenant = $2")
                .bind(spec.models.as_slice())
                .bind(tenant)
                .fetch_all(&mut *tx)
                .await?;
        let dataset_found = match &spec.dataset {
            DatasetSource::Uploaded(d) => {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM datasets WHERE id = $1 AND tenant = $2)",
                )
                .bind(d.id)
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
            }
            DatasetSource::Builtin { .. } => true,
        };
        spec.check_inputs(&found, dataset_found)?;
        let row = sqlx::query(
            "INSERT INTO jobs (id, tenant, status, max_attempts, spec, created_at, updated_at)
             VALUES ($1, $4, 'queued', $2, $3, now(), now()) RETURNING *",
        )
        .bind(id)
        .bind(int(max_attempts))
        .bind(Json(spec))
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO job_blobs (job_id, sha256) SELECT $1, unnest($2::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(spec.input_blobs())
        .execute(&mut *tx)
        .await?;
        notify(&mut *tx).await?;
        tx.commit().await?;
        rows::job(&row)
    }

    async fn get_job(&self, tenant: &str, id: Uuid) -> StoreResult<Option<JobRecord>> {
        sqlx::query("SELECT * FROM jobs WHERE id = $1 AND tenant = $2")
            .bind(id)
            .bind(tenant)
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
            "SELECT * FROM jobs WHERE tenant = $3 AND ($1::uuid IS NULL OR id < $1)
             ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::job)
        .collect()
    }

    async fn claim(&self, owner: &str, lease: Duration) -> StoreResult<Option<JobRecord>> {
        // The oldest queued row nobody else has locked; a concurrent claimer skips it instead
        // of waiting, and the attempt log row is written by the same statement.
        let row = sqlx::query(
            "WITH next AS (
                 SELECT id FROM jobs WHERE status = 'queued'
                 ORDER BY created_at, id LIMIT 1
                 FOR UPDATE SKIP LOCKED
             ), claimed AS (
                 UPDATE jobs j SET status = 'running', attempt = j.attempt + 1,
                        lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
                        started_at = COALESCE(j.started_at, now()), updated_at = now(),
                        progress_stage = NULL, progress_fraction = NULL, timings = '[]'
                 FROM next WHERE j.id = next.id AND j.status = 'queued'
                 RETURNING j.*
             ), logged AS (
                 INSERT INTO job_attempts (job_id, attempt, worker, started_at)
                 SELECT id, attempt, $1, now() FROM claimed
             )
             SELECT * FROM claimed",
        )
        .bind(owner)
        .bind(secs(lease))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::job).transpose()
    }

    async fn heartbeat(&self, lease: &Lease, duration: Duration) -> StoreResult<Fence> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $4),
                    updated_at = now()
             WHERE {FENCE} RETURNING cancel_requested"
        ))
        .bind(lease.job_id)
        .bind(int(lease.attempt))
        .bind(&lease.owner)
        .bind(secs(duration))
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
            "UPDATE jobs SET progress_stage = $4, progress_fraction = $5, timings = $6,
                    updated_at = now()
             WHERE {FENCE} RETURNING cancel_requested"
        ))
        .bind(lease.job_id)
        .bind(int(lease.attempt))
        .bind(&lease.owner)
        .bind(progress.stage.to_string())
        .bind(progress.fraction)
        .bind(Json(timings))
        .fetch_optional(&self.pool)
        .await?;
        fence(row)
    }

    async fn finish(&self, lease: &Lease, outcome: Outcome) -> StoreResult<bool> {
        let (status, report, failure): (&str, Option<&FusionReport>, _) = match &outcome {
            Outcome::Succeeded(r) => ("succeeded", Some(r), None),
            Outcome::Failed(f) => ("failed", None, Some(f)),
            Outcome::Canceled => ("canceled", None, None),
            Outcome::Requeue(f) => ("queued", None, Some(f)),
        };
        // A re-queue past the last attempt fails the job instead.
        let mut tx = self.pool.begin().await?;
        let ended: Option<String> = sqlx::query_scalar(&format!(
            "WITH done AS (
                 UPDATE jobs SET
                     status = CASE WHEN $4 = 'queued' AND attempt >= max_attempts
                                   THEN 'failed' ELSE $4 END,
                     report = $5, error_code = $6, error_message = $7,
                     finished_at = CASE WHEN $4 = 'queued' AND attempt < max_attempts
                                        THEN NULL ELSE now() END,
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
                 WHERE {FENCE}
                 RETURNING id, attempt, status
             ), logged AS (
                 UPDATE job_attempts a SET finished_at = now(), outcome = $8
                 FROM done WHERE a.job_id = done.id AND a.attempt = done.attempt
             )
             SELECT status FROM done"
        ))
        .bind(lease.job_id)
        .bind(int(lease.attempt))
        .bind(&lease.owner)
        .bind(status)
        .bind(report.map(Json))
        .bind(failure.map(|f| f.code.clone()))
        .bind(failure.map(|f| f.message.clone()))
        .bind(outcome.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if ended.as_deref() == Some("queued") {
            notify(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(ended.is_some())
    }

    async fn request_cancel(&self, tenant: &str, id: Uuid) -> StoreResult<Option<JobRecord>> {
        sqlx::query(
            "UPDATE jobs SET cancel_requested = TRUE, updated_at = now(),
                    status = CASE WHEN status = 'queued' THEN 'canceled' ELSE status END,
                    finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
             WHERE id = $1 AND tenant = $2 AND status IN ('queued', 'running')",
        )
        .bind(id)
        .bind(tenant)
        .execute(&self.pool)
        .await?;
        self.get_job(tenant, id).await
    }

    async fn rescue_expired(&self) -> StoreResult<Rescued> {
        // Rows a heartbeat or a finish is writing right now are skipped, not waited for; the
        // rest are re-read after locking, so a lease renewed meanwhile is left alone.
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "WITH expired AS (
                 SELECT id FROM jobs
                 WHERE status = 'running' AND lease_expires_at < now()
                 FOR UPDATE SKIP LOCKED
             ), rescued AS (
                 UPDATE jobs j SET
                     status = CASE WHEN j.cancel_requested THEN 'canceled'
                                   WHEN j.attempt >= j.max_attempts THEN 'failed'
                                   ELSE 'queued' END,
                     finished_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts
                                        THEN now() ELSE j.finished_at END,
                     error_code = CASE WHEN NOT j.cancel_requested AND j.attempt >= j.max_attempts
                                       THEN 'attempts_exhausted' ELSE j.error_code END,
                     error_message =
                         CASE WHEN NOT j.cancel_requested AND j.attempt >= j.max_attempts
                              THEN 'the job lost its worker ' || j.attempt || ' times'
                              ELSE j.error_message END,
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
                 FROM expired WHERE j.id = expired.id
                 RETURNING j.id, j.attempt, j.status
             ), closed AS (
                 UPDATE job_attempts a SET finished_at = now(), outcome = 'expired'
                 FROM rescued r
                 WHERE a.job_id = r.id AND a.attempt = r.attempt AND a.finished_at IS NULL
             )
             SELECT COUNT(*) FILTER (WHERE status = 'queued') AS requeued,
                    COUNT(*) FILTER (WHERE status = 'failed') AS failed
             FROM rescued",
        )
        .fetch_one(&mut *tx)
        .await?;
        let rescued = Rescued {
            requeued: count(row.try_get("requeued")?),
            failed: count(row.try_get("failed")?),
        };
        if rescued.requeued > 0 {
            notify(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(rescued)
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
        sqlx::query("SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt")
            .bind(id)
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
             WHERE job_id = $1 AND method = $2 AND proportion = $3",
        )
        .bind(job_id)
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
            "INSERT INTO job_outputs (job_id, method, proportion, sha256, size_bytes, created_at)
             VALUES ($1, $2, $3, $4, $5, now())
             ON CONFLICT DO NOTHING",
        )
        .bind(o.job_id)
        .bind(o.method.as_str())
        .bind(o.proportion)
        .bind(&o.sha256)
        .bind(big(o.size_bytes))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
