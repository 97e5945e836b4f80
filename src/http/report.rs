//! The report as the API shows it ([`ReportView`]): the engine's
//! [`FusionReport`](crate::engine::pipeline::FusionReport) plus the job's inputs and request.
//! The curves, matchings and best model are the engine's own types, which carry their OpenAPI
//! schema (the engine's `utoipa` feature).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::routes::jobs::{NewJob, TimingView, stage_name};
use crate::engine::pipeline::{
    Best, Compat, Curve, FusionReport, MatchingReport, Merged, MethodId,
};
use crate::store::JobRecord;

/// One input model's accuracy and loss on the dataset.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct InputView {
    pub model_id: Uuid,
    pub sha256: String,
    /// Percent of samples classified correctly.
    #[schema(example = 84.18)]
    pub accuracy: f64,
    /// Mean negative log-likelihood.
    #[schema(example = 0.52)]
    pub loss: f64,
}

/// A succeeded job's report.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReportView {
    pub job_id: Uuid,
    #[schema(example = "mnist-cnn")]
    pub architecture: String,
    #[schema(example = "mnist-test")]
    pub dataset: String,
    /// Samples evaluated.
    #[schema(example = 10000)]
    pub samples: usize,
    /// The methods asked for, in order.
    pub methods: Vec<MethodId>,
    pub compat: Option<Compat>,
    /// Every input model, in the job's order.
    pub inputs: Vec<InputView>,
    /// Two-model jobs: the proportions evaluated (empty for three or more models).
    pub proportions: Vec<f64>,
    /// Two-model jobs: one curve per method, in the order asked, then the `none` baseline
    /// (empty for three or more models).
    pub curves: Vec<Curve>,
    /// Jobs of three or more models: each method's fused model (`Σ wᵢ·aligned(modelᵢ)`), in the
    /// order asked, then `none` (plain weighted averaging). Empty for two models.
    pub merged: Vec<Merged>,
    /// Jobs of three or more models: the model the anchor-based methods aligned onto (absent
    /// when only MergeMany ran).
    pub anchor: Option<usize>,
    /// Jobs of three or more models: the normalised averaging weights (empty for two).
    pub weights: Vec<f64>,
    pub best: Best,
    /// One entry per aligning method: its permutations, objective per iteration and time.
    pub matchings: Vec<MatchingReport>,
    /// Seconds per stage, as measured by the engine.
    pub timings: Vec<TimingView>,
    /// The request as submitted.
    #[schema(value_type = NewJob)]
    pub request: serde_json::Value,
}

impl ReportView {
    /// The view of `report`, produced by `job`.
    pub fn new(job: &JobRecord, report: &FusionReport) -> Self {
        let spec = &job.spec;
        ReportView {
            job_id: job.id,
            architecture: report.architecture.clone(),
            dataset: report.dataset.clone(),
            samples: report.inputs.first().map_or(0, |r| r.samples),
            methods: report.params.methods.clone(),
            compat: report.params.compat,
            inputs: report
                .inputs
                .iter()
                .zip(spec.models.iter().zip(&spec.inputs))
                .map(|(r, (id, sha))| InputView {
                    model_id: *id,
                    sha256: sha.clone(),
                    accuracy: r.accuracy,
                    loss: r.loss,
                })
                .collect(),
            proportions: report.alphas.clone(),
            curves: report.curves.clone(),
            merged: report.merged.clone(),
            anchor: report.anchor,
            weights: report.weights.clone(),
            best: report.best.clone(),
            matchings: report.matchings.clone(),
            timings: report
                .timings
                .iter()
                .map(|(&stage, &seconds)| TimingView {
                    stage: stage_name(stage),
                    seconds,
                })
                .collect(),
            request: spec.request.clone(),
        }
    }
}
