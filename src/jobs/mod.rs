//! Jobs: submission ([`submit`]), the in-process queue consumer ([`worker`]) that claims jobs
//! with a lease, runs them on the compute pool ([`compute`]) and reports progress ([`tracker`]),
//! and fused weights on demand ([`fused`]). [`JobService`] holds what they share; [`process`]
//! runs the consumer alone (`gmfuse worker`).

pub mod catalog;
pub mod compute;
pub mod fused;
pub mod fused_onnx;
pub mod ingest;
pub mod model_file;
pub mod preflight;
pub mod process;
pub mod remove;
pub mod run;
pub mod scan;
pub mod submit;
pub mod tracker;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::Config;
use crate::store::{BlobStore, Db};
pub use compute::{ComputeError, ComputePool};
pub use submit::{JobRequest, SubmitError};
pub use tracker::{Running, StopReason};

/// Timing and limits of the queue consumer.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub lease: Duration,
    pub heartbeat: Duration,
    pub poll: Duration,
    /// How often progress is written while a job runs.
    pub flush: Duration,
    pub eval_limit: Option<usize>,
    pub max_attempts: u32,
    /// What one job may need by its pre-flight estimate.
    pub budgets: preflight::Budgets,
    /// Jobs queued or running past which submissions are refused.
    pub max_queued_jobs: u64,
    /// What one tenant may have queued or running (and store).
    pub tenant_quota: crate::store::TenantQuota,
}

impl WorkerSettings {
    /// The settings of a configuration.
    pub fn from_config(config: &Config) -> Self {
        WorkerSettings {
            lease: config.lease(),
            heartbeat: config.heartbeat(),
            poll: config.poll(),
            flush: Duration::from_millis(200),
            eval_limit: config.eval_limit,
            max_attempts: config.max_attempts,
            budgets: preflight::Budgets {
                max_job_bytes: config.max_job_bytes(),
                max_eval_macs: config.max_eval_macs,
            },
            max_queued_jobs: config.max_queued_jobs,
            tenant_quota: config.tenant_quota(),
        }
    }
}

/// Everything jobs need: stores, the compute pool, the running registry and the wake-up signal.
pub struct JobService {
    pub db: Arc<dyn Db>,
    pub blobs: Arc<dyn BlobStore>,
    pub compute: ComputePool,
    /// Jobs running in this process (for cancel and shutdown).
    pub running: Running,
    /// Wakes idle workers when a job is queued here.
    pub wakeup: Notify,
    pub datasets: catalog::DatasetCache,
    /// This process's Prometheus metrics (job durations here; the API's requests too).
    pub metrics: crate::telemetry::Metrics,
    pub settings: WorkerSettings,
    /// Identifies this process in lease owners: `<pid>-<random>`.
    pub process_id: String,
}

impl JobService {
    /// A service over the given stores.
    pub fn new(
        db: Arc<dyn Db>,
        blobs: Arc<dyn BlobStore>,
        compute: ComputePool,
        settings: WorkerSettings,
    ) -> Self {
        let random = uuid::Uuid::new_v4().simple().to_string();
        JobService {
            db,
            blobs,
            compute,
            running: Running::default(),
            wakeup: Notify::new(),
            datasets: catalog::DatasetCache::default(),
            metrics: crate::telemetry::Metrics::new(),
            settings,
            process_id: format!("{}-{}", std::process::id(), &random[..8]),
        }
    }

    /// Validate and queue a job, then wake a worker.
    ///
    /// # Errors
    /// Any [`SubmitError`].
    pub async fn submit(
        &self,
        tenant: &str,
        req: JobRequest,
    ) -> Result<crate::store::JobRecord, SubmitError> {
        let job = submit::submit(
            self.db.as_ref(),
            tenant,
            req,
            self.settings.max_attempts,
            &self.admission(),
        )
        .await?;
        self.wakeup.notify_one();
        Ok(job)
    }

    /// The budgets and limits submissions are checked against.
    pub fn admission(&self) -> submit::Admission {
        submit::Admission {
            budgets: self.settings.budgets,
            eval_limit: self.settings.eval_limit,
            threads: self.compute.threads(),
            max_queued_jobs: self.settings.max_queued_jobs,
            tenant_quota: self.settings.tenant_quota,
        }
    }

    /// Ask a job to stop: flags it in the database and, when it runs here, stops it now.
    ///
    /// # Errors
    /// Database errors.
    pub async fn cancel(
        &self,
        tenant: &str,
        id: uuid::Uuid,
    ) -> crate::store::StoreResult<Option<crate::store::JobRecord>> {
        let job = self.db.request_cancel(tenant, id).await?;
        if job.is_some() {
            self.running.stop(id, StopReason::Cancel);
        }
        Ok(job)
    }
}

/// Shared handle.
pub type Jobs = Arc<JobService>;
