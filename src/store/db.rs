//! The database interface: [`CatalogStore`] (models, architectures, datasets), [`JobStore`]
//! (the queue with leases and fencing), [`KeyStore`] (API keys) and [`Db`], all behind one
//! `Arc<dyn Db>`. Rows belong to tenants; every read a client can cause names its tenant.
//!
//! The API and the workers see only these traits; SQLite ([`super::sqlite`]) and PostgreSQL
//! ([`super::postgres`]) implement them with the same semantics.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::lock::BlobLock;
use super::quota::{QuotaExceeded, TenantQuota};
use super::records::{
    ApiKeyRecord, ArchitectureRecord, AttemptRecord, DatasetRecord, Fence, IdemSlot, JobRecord,
    JobSpec, JobStatus, Lease, ModelRecord, NewModel, Outcome, OutputRecord, Progress, Rescued,
    StoredResponse, Timing,
};
use crate::engine::arch::ArchSpec;
use crate::engine::pipeline::MethodId;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (`what` names it).
    #[error("{0} already exists")]
    Conflict(String),
    /// A row the statement needs is gone (deleted since the caller read it).
    #[error("{what} {id} does not exist")]
    Missing { what: &'static str, id: String },
    /// A row cannot be deleted while a queued or running job uses it.
    #[error("{what} {id} is used by a queued or running job")]
    InUse { what: &'static str, id: String },
    /// A tenant quota would be exceeded (nothing was stored).
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
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

/// Models, architectures and datasets, each owned by a tenant: a row of another tenant reads
/// exactly as a missing one.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Insert a model, or return the tenant's existing row with the same sha256 (`false`: not
    /// created). A new row that would bring the tenant's stored bytes over
    /// `quota.max_bytes` is not inserted ([`StoreError::QuotaExceeded`]).
    async fn insert_model(
        &self,
        tenant: &str,
        model: NewModel,
        quota: &TenantQuota,
    ) -> StoreResult<(ModelRecord, bool)>;
    /// Bytes of the tenant's models and datasets.
    async fn stored_bytes(&self, tenant: &str) -> StoreResult<u64>;
    async fn get_model(&self, tenant: &str, id: Uuid) -> StoreResult<Option<ModelRecord>>;
    /// The tenant's models, newest first, after the cursor `before` (a model id).
    async fn list_models(
        &self,
        tenant: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ModelRecord>>;
    /// Delete a model row; returns it when it existed.
    async fn delete_model(&self, tenant: &str, id: Uuid) -> StoreResult<Option<ModelRecord>>;
    /// True when a model, a dataset, a job or a fused output (of any tenant) still refers to
    /// the blob.
    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool>;
    /// True when a queued or running job of the tenant reads the blob.
    async fn blob_in_active_job(&self, tenant: &str, sha256: &str) -> StoreResult<bool>;

    /// Store a custom architecture; [`StoreError::Conflict`] when the tenant has the name.
    async fn insert_architecture(
        &self,
        tenant: &str,
        spec: &ArchSpec,
    ) -> StoreResult<ArchitectureRecord>;
    async fn get_architecture(
        &self,
        tenant: &str,
        name: &str,
    ) -> StoreResult<Option<ArchitectureRecord>>;
    /// The tenant's custom architectures by name, after the cursor `after` (a name).
    async fn list_architectures(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ArchitectureRecord>>;

    /// Insert a dataset, unless it would bring the tenant's stored bytes over
    /// `quota.max_bytes` ([`StoreError::QuotaExceeded`]).
    async fn insert_dataset(
        &self,
        tenant: &str,
        dataset: &DatasetRecord,
        quota: &TenantQuota,
    ) -> StoreResult<()>;
    async fn get_dataset(&self, tenant: &str, id: Uuid) -> StoreResult<Option<DatasetRecord>>;
    /// Delete a dataset row; returns it when it existed.
    async fn delete_dataset(&self, tenant: &str, id: Uuid) -> StoreResult<Option<DatasetRecord>>;
    /// The tenant's uploaded datasets, newest first, after the cursor `before` (a dataset id).
    async fn list_datasets(
        &self,
        tenant: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<DatasetRecord>>;
}

/// Idempotency keys of POST requests, per tenant and route.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claim `key` for a request whose hash is `request_hash` (it may be completed with
    /// another). Keys older than `retention`, and claims in flight for longer than `stale`
    /// (their request died), are forgotten first.
    async fn claim_idempotency(
        &self,
        tenant: &str,
        route: &str,
        key: &str,
        request_hash: &str,
        retention: Duration,
        stale: Duration,
    ) -> StoreResult<IdemSlot>;
    /// Record the response of a claimed key.
    async fn complete_idempotency(
        &self,
        tenant: &str,
        route: &str,
        key: &str,
        request_hash: &str,
        response: &StoredResponse,
    ) -> StoreResult<()>;
    /// Free a claimed key whose request failed (a retry may then run).
    async fn release_idempotency(&self, tenant: &str, route: &str, key: &str) -> StoreResult<()>;
}

/// API keys (only their hashes).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Record a new key of `tenant`.
    async fn insert_key(
        &self,
        tenant: &str,
        prefix: &str,
        secret_sha256: &str,
    ) -> StoreResult<ApiKeyRecord>;
    /// The key whose secret hashes to `secret_sha256`, revoked or not.
    async fn find_key(&self, secret_sha256: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// Every key, oldest first.
    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Revoke a key; `false` when there is no such active key.
    async fn revoke_key(&self, id: Uuid) -> StoreResult<bool>;
    /// True once any key was ever created (revoked ones count).
    async fn any_key(&self) -> StoreResult<bool>;
}

/// The job queue. Every write a worker makes names its [`Lease`]; a write from an attempt that
/// is no longer current changes nothing and answers [`Fence::Lost`] / `false`.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Queue a job (status `queued`, attempt 0), in one transaction that checks that its
    /// models and uploaded dataset still exist ([`StoreError::Missing`] otherwise) and that
    /// the tenant stays within `quota.max_active_jobs` queued + running jobs
    /// ([`StoreError::QuotaExceeded`]). Call it holding the [`Db::lock_blobs`] of the job's
    /// inputs.
    async fn enqueue(
        &self,
        tenant: &str,
        spec: &JobSpec,
        max_attempts: u32,
        quota: &TenantQuota,
    ) -> StoreResult<JobRecord>;
    async fn get_job(&self, tenant: &str, id: Uuid) -> StoreResult<Option<JobRecord>>;
    /// The tenant's jobs newest first, starting after the cursor `before` (a job id).
    async fn list_jobs(
        &self,
        tenant: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<JobRecord>>;

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
    /// `None` when the tenant has no such job.
    async fn request_cancel(&self, tenant: &str, id: Uuid) -> StoreResult<Option<JobRecord>>;
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
    /// Delete the tenant's job `id` if it has ended (succeeded, failed or canceled), with its
    /// report, attempts, input references and fused-output rows; returns the blobs those rows
    /// named (the caller removes the ones nothing else names), or `None` when the tenant has
    /// no such ended job.
    async fn delete_ended_job(&self, tenant: &str, id: Uuid) -> StoreResult<Option<Vec<String>>>;
}

/// A whole database backend.
#[async_trait]
pub trait Db: CatalogStore + JobStore + KeyStore + IdempotencyStore {
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
    /// Serialize the changes to the references of these blobs: while the returned lock lives,
    /// no other holder in any process of the deployment runs its "check, then change"
    /// sequence on them (commit a blob and record its row; check that nothing names a blob,
    /// then delete it; check a job's inputs, then queue it).
    async fn lock_blobs(&self, sha256s: &[&str]) -> StoreResult<BlobLock>;
}
