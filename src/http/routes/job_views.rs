//! The job resources' types as the API shows them (with their OpenAPI schemas): the request
//! ([`NewJob`]), the status ([`JobView`]) and the attempt log ([`AttemptView`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::engine::pipeline::{Compat, FusionParams, MethodId, Repair, Stage};
use crate::engine::solvers::SolverId;
use crate::jobs::JobRequest;
use crate::store::{AttemptRecord, JobRecord, JobStatus};

/// Spectral matching options.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SolverOptions {
    /// Power iterations at most (1..=10000, default 50).
    #[schema(example = 50, minimum = 1, maximum = 10000)]
    pub max_iter: Option<usize>,
    /// Stop when the eigenvector moves less than this (default 1e-5).
    #[schema(example = 1e-5, exclusive_minimum = 0.0)]
    pub tol: Option<f64>,
}

/// Weight matching options.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightMatchingOptions {
    /// Sweeps over the groups at most (1..=10000, default 100); it stops earlier after a sweep
    /// that changed no permutation.
    #[schema(example = 100, minimum = 1, maximum = 10000)]
    pub max_sweeps: Option<usize>,
    /// Visit the groups in a random order drawn from this seed each sweep (default: layer
    /// order).
    pub seed: Option<u64>,
}

/// Model 2's share α of a two-model fusion, a number in [0, 1] (documentation only).
pub struct Proportion;

impl utoipa::PartialSchema for Proportion {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .description(Some("Model 2's share α of a two-model fusion, in [0, 1]."))
            .minimum(Some(0.0))
            .maximum(Some(1.0))
            .into()
    }
}

impl ToSchema for Proportion {}

/// A fusion job to run.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "models": ["0192d4e2-7a4b-7cc1-8e0c-3f5a1b2c3d4e", "0192d4e2-7b10-7f00-9a11-22b3c4d5e6f7"],
    "architecture": "mnist-cnn",
    "dataset": "mnist-test",
    "methods": ["gamf", "weight_matching"],
    "proportions": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
}))]
pub struct NewJob {
    /// 2 to 8 model ids. Two: model 1 is aligned onto model 2, and proportion α is model 2's
    /// share. Three or more: every model is aligned into one frame (onto `anchor`, or by
    /// weight matching's MergeMany) and averaged with `weights`; the report has `merged`
    /// instead of `curves`.
    #[schema(min_items = 2, max_items = 8)]
    pub models: Vec<Uuid>,
    /// Defaults to the architecture recorded for both models.
    pub architecture: Option<String>,
    /// `mnist-test` (default) or an uploaded dataset's id.
    pub dataset: Option<String>,
    /// Calibration samples for the methods that run the models (`activation_matching`): a
    /// built-in dataset or an uploaded dataset's id, never the scored `dataset`; at most 5,000
    /// samples are used. Default `mnist-train-5k` (the first 5,000 MNIST training images) when
    /// such a method is asked for.
    #[schema(example = "mnist-train-5k")]
    pub calibration: Option<String>,
    /// The methods to run, in order (default `["gamf"]`). Every report also has the `none`
    /// curve (plain averaging) as the baseline.
    #[schema(min_items = 1)]
    pub methods: Option<Vec<MethodId>>,
    /// One method: the older spelling of `methods: [method]` (ignored when `methods` is given).
    pub method: Option<MethodId>,
    /// GAMF only.
    pub compat: Option<Compat>,
    /// Proportions α in [0, 1] to evaluate (1 to 101 of them; default 0, 0.1, …, 1).
    #[schema(min_items = 1, max_items = 101, value_type = Option<Vec<Proportion>>)]
    pub proportions: Option<Vec<f64>>,
    /// GAMF's QAP solvers, in order (default `["sm"]`): one curve each. `compat` accepts
    /// only `sm`.
    #[schema(min_items = 1)]
    pub solvers: Option<Vec<SolverId>>,
    /// GAMF's solver iterations (every solver's limit; `tol` is SM's and RRWM's).
    #[serde(default)]
    pub solver: SolverOptions,
    #[serde(default)]
    pub weight_matching: WeightMatchingOptions,
    /// Three or more models: the index of the model every other one is aligned onto, by every
    /// method (default: the most accurate input, and MergeMany for weight matching).
    #[schema(minimum = 0, maximum = 7)]
    pub anchor: Option<usize>,
    /// Three or more models: one averaging weight per model, finite and non-negative
    /// (normalised by their sum; default uniform).
    #[schema(min_items = 3, max_items = 8)]
    pub weights: Option<Vec<f64>>,
    /// Two models: repair every fused model on the calibration samples before scoring it
    /// (default `none`); each curve then also has its `repaired` points. `reset_bn`
    /// recomputes the batch norms' running statistics (the architecture must have batch
    /// norms); `repair` rescales and shifts every hidden unit to the interpolated statistics
    /// of the two inputs (REPAIR). Calibration defaults to `mnist-train-5k`.
    pub repair: Option<Repair>,
}

impl NewJob {
    pub(crate) fn into_request(self, raw: serde_json::Value) -> JobRequest {
        let defaults = FusionParams::default();
        JobRequest {
            models: self.models,
            architecture: self.architecture,
            dataset: self.dataset.unwrap_or_else(|| "mnist-test".into()),
            calibration: self.calibration,
            params: FusionParams {
                methods: self
                    .methods
                    .or(self.method.map(|m| vec![m]))
                    .unwrap_or(defaults.methods),
                compat: self.compat,
                proportions: self.proportions.unwrap_or(defaults.proportions),
                max_iter: self.solver.max_iter.unwrap_or(defaults.max_iter),
                tol: self.solver.tol.unwrap_or(defaults.tol),
                max_sweeps: self
                    .weight_matching
                    .max_sweeps
                    .unwrap_or(defaults.max_sweeps),
                seed: self.weight_matching.seed,
                anchor: self.anchor,
                weights: self.weights,
                solvers: self.solvers.unwrap_or(defaults.solvers),
                auto: None,
                repair: self.repair.unwrap_or_default(),
            },
            raw,
        }
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatusDoc {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl From<JobStatus> for JobStatusDoc {
    fn from(s: JobStatus) -> Self {
        match s {
            JobStatus::Queued => JobStatusDoc::Queued,
            JobStatus::Running => JobStatusDoc::Running,
            JobStatus::Succeeded => JobStatusDoc::Succeeded,
            JobStatus::Failed => JobStatusDoc::Failed,
            JobStatus::Canceled => JobStatusDoc::Canceled,
        }
    }
}

/// The stage a running job is in.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct ProgressView {
    /// `validate`, GAMF's `affinity`, `matching` and `assignment`, `align_<method>` for the
    /// other methods, `evaluate_inputs`, `evaluate_<method>`.
    #[schema(example = "matching")]
    pub stage: String,
    /// Share of the stage done, 0..=1.
    #[schema(example = 0.4)]
    pub fraction: f64,
}

/// Seconds one stage took.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TimingView {
    #[schema(example = "affinity")]
    pub stage: String,
    #[schema(example = 0.42)]
    pub seconds: f64,
}

/// Why a job failed.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobErrorView {
    #[schema(example = "invalid_model")]
    pub code: String,
    pub message: String,
}

/// URLs of a job's resources.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobLinks {
    #[serde(rename = "self")]
    pub self_: String,
    pub events: String,
    pub cancel: String,
    pub report: String,
    pub report_svg: String,
    pub matching_svg: String,
    pub fused: String,
}

/// A job's status and progress.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: Uuid,
    pub status: JobStatusDoc,
    /// Claims so far (a job left running by a dead worker is claimed again).
    pub attempt: u32,
    pub max_attempts: u32,
    pub cancel_requested: bool,
    pub progress: Option<ProgressView>,
    /// Seconds per stage: the stages finished so far while running, the engine's figures once
    /// succeeded.
    pub timings: Vec<TimingView>,
    pub error: Option<JobErrorView>,
    pub models: Vec<Uuid>,
    #[schema(example = "mnist-cnn")]
    pub architecture: String,
    #[schema(example = "mnist-test")]
    pub dataset: String,
    /// The first method asked for.
    pub method: MethodId,
    /// Every method asked for, in order.
    pub methods: Vec<MethodId>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub links: JobLinks,
}

/// The name the API shows for an engine stage.
pub fn stage_name(stage: Stage) -> String {
    stage.to_string()
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        let base = format!("/v1/jobs/{}", j.id);
        JobView {
            id: j.id,
            status: j.status.into(),
            attempt: j.attempt,
            max_attempts: j.max_attempts,
            cancel_requested: j.cancel_requested,
            progress: j.progress.map(|p| ProgressView {
                stage: stage_name(p.stage),
                fraction: p.fraction,
            }),
            // While running: the stages finished so far; once done, the engine's own laps.
            timings: match &j.report {
                Some(r) => r
                    .timings
                    .iter()
                    .map(|(&stage, &seconds)| TimingView {
                        stage: stage_name(stage),
                        seconds,
                    })
                    .collect(),
                None => j
                    .timings
                    .iter()
                    .map(|t| TimingView {
                        stage: stage_name(t.stage),
                        seconds: t.seconds,
                    })
                    .collect(),
            },
            error: j.error.map(|e| JobErrorView {
                code: e.code,
                message: e.message,
            }),
            models: j.spec.models,
            architecture: j.spec.architecture.name.clone(),
            dataset: j.spec.dataset.id(),
            method: j.spec.params.primary(),
            methods: j.spec.params.methods.clone(),
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            links: JobLinks {
                events: format!("{base}/events"),
                cancel: format!("{base}/cancel"),
                report: format!("{base}/report"),
                report_svg: format!("{base}/report.svg"),
                matching_svg: format!("{base}/matching.svg"),
                fused: format!("{base}/fused"),
                self_: base,
            },
        }
    }
}

/// One claim of a job.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    /// Worker that claimed it: `<pid>-<random>/<slot>`.
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `succeeded`, `failed`, `canceled`, `requeued`, `expired`, or absent while it runs.
    pub outcome: Option<String>,
}

/// A job's claims, oldest first (at most the job's `max_attempts`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AttemptList {
    pub items: Vec<AttemptView>,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> Self {
        AttemptView {
            attempt: a.attempt,
            worker: a.worker,
            started_at: a.started_at,
            finished_at: a.finished_at,
            outcome: a.outcome,
        }
    }
}
