//! Deleting from the catalog: a model row goes, and its blob with it unless another row (a
//! model, a dataset, a job, a fused output) still names the bytes. The check and the removal
//! run under the blob's lock, so an upload of the same bytes or a job submission that races
//! the delete never ends with a row whose blob is gone. A model that a queued or running job
//! reads is not deleted ([`StoreError::InUse`]).
//!
//! Blobs are shared by content across tenants; a blob goes only when no row of any tenant
//! names it.
//!
//! A dataset is deleted like a model: not while a queued or running job reads one of its
//! blobs (409 `in_use`), its blobs with it when nothing else names them.
//!
//! A job is deleted only once it has ended (a queued or running job is refused with
//! [`RemoveError::JobActive`]: cancel it first); its report, attempts and fused outputs go
//! with it, and so do the blobs of its outputs and inputs that nothing else names.

use uuid::Uuid;

use crate::store::{BlobError, BlobStore, DatasetRecord, Db, JobRecord, ModelRecord, StoreError};

/// Why a delete did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The job is queued or running.
    #[error("job {0} is {1}; cancel it first, then delete it")]
    JobActive(Uuid, &'static str),
}

/// Delete `tenant`'s model `id` (and its blob when nothing else names it); `None` when the
/// tenant has no such model.
///
/// # Errors
/// [`StoreError::InUse`] when a queued or running job reads the model; storage failures.
pub async fn delete_model(
    db: &dyn Db,
    blobs: &dyn BlobStore,
    tenant: &str,
    id: Uuid,
) -> Result<Option<ModelRecord>, RemoveError> {
    let Some(model) = db.get_model(tenant, id).await? else {
        return Ok(None);
    };
    let _lock = db.lock_blobs(&[&model.sha256]).await?;
    if db.blob_in_active_job(tenant, &model.sha256).await? {
        return Err(StoreError::InUse {
            what: "model",
            id: id.to_string(),
        }
        .into());
    }
    let Some(model) = db.delete_model(tenant, id).await? else {
        return Ok(None);
    };
    if !db.blob_in_use(&model.sha256).await? {
        blobs.delete(&model.sha256).await?;
    }
    Ok(Some(model))
}

/// Delete `tenant`'s ended job `id`, then the blobs its rows named that no row names any more;
/// `None` when the tenant has no such job.
///
/// # Errors
/// [`RemoveError::JobActive`] for a queued or running job; storage failures.
pub async fn delete_job(
    db: &dyn Db,
    blobs: &dyn BlobStore,
    tenant: &str,
    id: Uuid,
) -> Result<Option<JobRecord>, RemoveError> {
    let Some(job) = db.get_job(tenant, id).await? else {
        return Ok(None);
    };
    // An ended job never runs again, so only a job that was active when read can be refused.
    let Some(named) = db.delete_ended_job(tenant, id).await? else {
        return Err(RemoveError::JobActive(id, job.status.as_str()));
    };
    let shas: Vec<&str> = named.iter().map(String::as_str).collect();
    let _lock = db.lock_blobs(&shas).await?;
    for sha in shas {
        if !db.blob_in_use(sha).await? {
            blobs.delete(sha).await?;
        }
    }
    Ok(Some(job))
}

/// Delete `tenant`'s uploaded dataset `id` (and its blobs that nothing else names); `None`
/// when the tenant has no such dataset.
///
/// # Errors
/// [`StoreError::InUse`] when a queued or running job reads it; storage failures.
pub async fn delete_dataset(
    db: &dyn Db,
    blobs: &dyn BlobStore,
    tenant: &str,
    id: Uuid,
) -> Result<Option<DatasetRecord>, RemoveError> {
    let Some(dataset) = db.get_dataset(tenant, id).await? else {
        return Ok(None);
    };
    let shas: Vec<&str> = dataset.blobs.iter().map(String::as_str).collect();
    let _lock = db.lock_blobs(&shas).await?;
    for sha in &shas {
        if db.blob_in_active_job(tenant, sha).await? {
            return Err(StoreError::InUse {
                what: "dataset",
                id: id.to_string(),
            }
            .into());
        }
    }
    let Some(dataset) = db.delete_dataset(tenant, id).await? else {
        return Ok(None);
    };
    for sha in &dataset.blobs {
        if !db.blob_in_use(sha).await? {
            blobs.delete(sha).await?;
        }
    }
    Ok(Some(dataset))
}
