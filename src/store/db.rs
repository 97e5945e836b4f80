//! The database interface: [`CatalogStore`] (models, architectures, datasets), [`JobStore`]
//! (the queue with leases and fencing) and [`Db`], both behind one `Arc<dyn Db>`.
//!
//! The API and the workers see only these traits; SQLite ([`super::sqlite`]) and PostgreSQL
//! ([`super::postgres`]) implement them with the same semantics.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::records::{
    ArchitectureRecord, AttemptRecord, DatasetRecord, Fence, JobRecord, JobSpec, JobStatus, Lease,
    ModelRecord, NewModel, Outcome, OutputRecord, Progress, Rescued, Timing,
};
use crate::engine::arch::ArchSpec;
use crate::engine::pipeline::MethodId;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (`what` names it).
    #[error("{0} already exists")]
    Conflict(String),
    /// The database is unreachable or refused the statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row could not be read back (bad JSON, unknown enum value).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The URL names a backend this build does not have.
    #[error("unsupported database URL `{0}`: use sqlite:// or postgres://")]
    Unsupported(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Models, architectures and datasets.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Insert a model, or return the existing row with the same sha256 (`false`: not created).
    async fn insert_model(&self, model: NewModel) -> StoreResult<(ModelRecord, bool)>;
    async fn get_model(&self, id: Uuid) -> StoreResult<Option<ModelRecord>>;
    /// All models, newest first.
    async fn list_models(&self) -> StoreResult<Vec<ModelRecord>>;
    /// Delete a model row; returns it when it existed.
    async fn delete_model(&self, id: Uuid) -> StoreResult<Option<ModelRecord>>;
    /// True when a model, a dataset, a job or a fused output still refers to the blob.
    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool>;

    /// Store a custom architecture; [`StoreError::Conflict`] when the name is taken.
    async fn insert_architecture(&self, spec: &ArchSpec) -> StoreResult<ArchitectureRecord>;
    async fn get_architecture(&self, name: &str) -> StoreResult<Option<ArchitectureRecord>>;
    /// Custom architectures by name.
    async fn list_architectures(&self) -> StoreResult<Vec<ArchitectureRecord>>;

    async fn insert_dataset(&self, dataset: &DatasetRecord) -> StoreResult<()>;
    async fn get_dataset(&self, id: Uuid) -> StoreResult<Option<DatasetRecord>>;
    /// Uploaded datasets, newest first.
    async fn list_datasets(&self) -> StoreResult<Vec<DatasetRecord>>;
}

/// The job queue. Every write a worker makes names its [`Lease`]; a write from an attempt that
/// is no longer current changes nothing and answers [`Fence::Lost`] / `false`.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Queue a job (status `queued`, attempt 0).
    async fn enqueue(&self, spec: &JobSpec, max_attempts: u32) -> StoreResult<JobRecord>;
    async fn get_job(&self, id: Uuid) -> StoreResult<Option<JobRecord>>;
    /// Jobs newest first, starting after the cursor `before` (a job id).
    async fn list_jobs(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<JobRecord>>;

    /// Claim the oldest queued job for `owner` for `lease`: status `running`, attempt + 1.
    async fn claim(&self, owner: &str, lease: Duration) -> StoreResult<Option<JobRecord>>;
    /// Extend the lease; tells whether it is still held and whether cancel was asked.
    async fn heartbeat(&self, lease: &Lease, duration: Duration) -> StoreResult<Fence>;
    /// Write progress and stage timings of the current attempt.
    async fn record_progress(
        &self,
        lease: &Lease,
        progress: Progress,
        timings: &[Timing],
    ) -> StoreResult<Fence>;
    /// End the attempt; `false` when the lease was lost (nothing written).
    async fn finish(&self, lease: &Lease, outcome: Outcome) -> StoreResult<bool>;
    /// Ask a job to stop: a queued job is canceled at once, a running one is flagged.
    /// `None` when there is no such job.
    async fn request_cancel(&self, id: Uuid) -> StoreResult<Option<JobRecord>>;
    /// Re-queue running jobs whose lease expired (fail them once out of attempts).
    async fn rescue_expired(&self) -> StoreResult<Rescued>;
    /// Number of jobs per status.
    async fn job_counts(&self) -> StoreResult<Vec<(JobStatus, u64)>>;
    /// The attempt log of a job.
    async fn attempts(&self, id: Uuid) -> StoreResult<Vec<AttemptRecord>>;

    async fn get_output(
        &self,
        job_id: Uuid,
        method: MethodId,
        proportion: f64,
    ) -> StoreResult<Option<OutputRecord>>;
    async fn put_output(&self, output: &OutputRecord) -> StoreResult<()>;
}

/// A whole database backend.
#[async_trait]
pub trait Db: CatalogStore + JobStore {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Apply pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// True when the database answers and every migration of this build is applied.
    async fn ready(&self) -> StoreResult<bool>;
    /// Resolves when another process may have queued work (PostgreSQL: `LISTEN/NOTIFY`).
    /// The default never resolves: idle workers wake on their own process's submissions and
    /// on the poll period.
    async fn wait_for_work(&self) {
        std::future::pending::<()>().await;
    }
    /// Close the connections.
    async fn close(&self);
}
