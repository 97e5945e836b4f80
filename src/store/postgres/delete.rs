//! Deleting a finished job on PostgreSQL: its fused outputs, its input references and its row
//! (report, attempts) in one transaction.

use sqlx::PgPool;
use uuid::Uuid;

use crate::store::db::StoreResult;

/// Statuses a job can be deleted in.
const ENDED: &str = "status IN ('succeeded', 'failed', 'canceled')";

/// Delete the tenant's ended job `id`; the blobs its rows named, or `None` when the tenant
/// has no such ended job.
pub(super) async fn delete_ended_job(
    pool: &PgPool,
    tenant: &str,
    id: Uuid,
) -> StoreResult<Option<Vec<String>>> {
    let mut tx = pool.begin().await?;
    let mine = format!("SELECT id FROM jobs WHERE tenant = $1 AND id = $2 AND {ENDED}");
    let mut blobs: Vec<String> = sqlx::query_scalar(&format!(
        "DELETE FROM job_outputs WHERE job_id IN ({mine}) RETURNING sha256"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let inputs: Vec<String> = sqlx::query_scalar(&format!(
        "DELETE FROM job_blobs WHERE job_id IN ({mine}) RETURNING sha256"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let deleted = sqlx::query(&format!(
        "DELETE FROM jobs WHERE tenant = $1 AND id = $2 AND {ENDED}"
    ))
    .bind(tenant)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    blobs.extend(inputs);
    blobs.sort_unstable();
    blobs.dedup();
    Ok((deleted == 1).then_some(blobs))
}
