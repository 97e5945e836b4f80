//! The records of jobs: the validated spec, status, progress, leases and attempts, outputs,
//! and the API keys and idempotency slots the API keeps beside them. Backend-neutral plain
//! data, re-exported by [`super::records`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::engine::arch::ArchSpec;
use crate::engine::pipeline::{FusionParams, FusionReport, MethodId, Stage};

use super::{DatasetSource, ModelFormat};

/// A validated job: everything a worker needs, resolved at submission so that later changes
/// (a deleted model, a new architecture) cannot change what the job computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Model ids, 2 to `MAX_MODELS` of them: with two, model 1 is aligned onto model 2.
    pub models: Vec<Uuid>,
    /// The models' blob hashes, same order.
    pub inputs: Vec<String>,
    /// The models' file formats, same order; empty in rows written before ONNX was read
    /// (every model safetensors then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<ModelFormat>,
    pub architecture: ArchSpec,
    pub dataset: DatasetSource,
    /// Samples for the methods that run the models (`activation_matching`); never the scored
    /// `dataset`. Absent in rows written before it existed, and for jobs that need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<DatasetSource>,
    pub params: FusionParams,
    /// The request body as received, echoed in the report.
    pub request: serde_json::Value,
}

impl JobSpec {
    /// The file format of model `index` (0-based).
    pub fn format(&self, index: usize) -> ModelFormat {
        self.formats.get(index).copied().unwrap_or_default()
    }

    /// Every blob the job reads: its models, then its uploaded dataset's parts, then its
    /// uploaded calibration set's.
    pub fn input_blobs(&self) -> Vec<&str> {
        let mut blobs: Vec<&str> = self.inputs.iter().map(String::as_str).collect();
        for source in std::iter::once(&self.dataset).chain(&self.calibration) {
            if let DatasetSource::Uploaded(d) = source {
                blobs.extend(d.blobs.iter().map(String::as_str));
            }
        }
        blobs
    }

    /// [`crate::store::StoreError::Missing`] for the first model not in `models_found`, or
    /// the uploaded dataset when `dataset_found` is false.
    ///
    /// # Errors
    /// As described.
    pub fn check_inputs(
        &self,
        models_found: &[Uuid],
        dataset_found: bool,
    ) -> Result<(), crate::store::StoreError> {
        if let Some(id) = self.models.iter().find(|m| !models_found.contains(m)) {
            return Err(crate::store::StoreError::Missing {
                what: "model",
                id: id.to_string(),
            });
        }
        match &self.dataset {
            DatasetSource::Uploaded(d) if !dataset_found => {
                Err(crate::store::StoreError::Missing {
                    what: "dataset",
                    id: d.id.to_string(),
                })
            }
            DatasetSource::Uploaded(_) | DatasetSource::Builtin { .. } => Ok(()),
        }
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl JobStatus {
    /// Every status, in life order.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Canceled,
    ];

    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True once the job can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled
        )
    }
}

/// The stage a running job is in and how much of it is done.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: Stage,
    /// 0..=1.
    pub fraction: f64,
}

/// Seconds one finished stage of a running job took.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub stage: Stage,
    pub seconds: f64,
}

/// Why a job failed: a stable code and a message for people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobFailure {
    pub code: String,
    pub message: String,
}

/// A job row.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub id: Uuid,
    pub status: JobStatus,
    /// Claims so far; the fencing token of the current one.
    pub attempt: u32,
    pub max_attempts: u32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    pub progress: Option<Progress>,
    /// Seconds per finished stage of the current attempt.
    pub timings: Vec<Timing>,
    pub spec: JobSpec,
    pub report: Option<FusionReport>,
    pub error: Option<JobFailure>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// What a worker holds while it runs a job: every write it makes names this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub job_id: Uuid,
    pub attempt: u32,
    pub owner: String,
}

/// Whether a worker still holds its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fence {
    /// The write was accepted; `cancel_requested` tells whether someone asked to stop.
    Held { cancel_requested: bool },
    /// Another attempt owns the job now, or it is no longer running: stop, write nothing.
    Lost,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Succeeded(Box<FusionReport>),
    Failed(JobFailure),
    Canceled,
    /// Give the job back to the queue (shutdown, or a retryable failure with attempts left).
    Requeue(JobFailure),
}

impl Outcome {
    /// The name written to the attempt log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Succeeded(_) => "succeeded",
            Outcome::Failed(_) => "failed",
            Outcome::Canceled => "canceled",
            Outcome::Requeue(_) => "requeued",
        }
    }
}

/// One claim of a job, from the attempt log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `succeeded | failed | canceled | requeued | expired`, or none while it runs.
    pub outcome: Option<String>,
}

/// What a rescue pass did to jobs whose lease expired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rescued {
    pub requeued: u64,
    pub failed: u64,
}

/// Fused weights computed for a job and kept as a blob.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputRecord {
    pub job_id: Uuid,
    pub method: MethodId,
    pub proportion: f64,
    pub sha256: String,
    pub size_bytes: u64,
}

/// The tenant of rows created without a key (open mode) and of rows from before tenants.
pub const DEFAULT_TENANT: &str = "default";

/// An API key: only the sha256 of its secret is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub tenant: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    /// Lower-case hex sha256 of the whole key.
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The first response to a POST with an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub location: Option<String>,
    /// The JSON body.
    pub body: String,
}

/// What an idempotency key holds when a request claims it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdemSlot {
    /// The key was free: this request serves it, then completes or releases it.
    Claimed,
    /// Another request with the key is being served.
    InFlight,
    /// The key was served: the request it saw and the response it got.
    Done {
        request_hash: String,
        response: StoredResponse,
    },
}
