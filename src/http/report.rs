//! The report as the API shows it ([`ReportView`]): the engine's
//! [`FusionReport`](crate::engine::pipeline::FusionReport) plus the job's inputs and request,
//! in types that carry their OpenAPI schema.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::routes::jobs::{CompatDoc, MethodDoc, TimingView, stage_name};
use crate::engine::pipeline::{Compat, CurvePoint, FusionReport};
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

/// Accuracy and loss of the fused model at one proportion α.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CurvePointView {
    #[schema(example = 0.5)]
    pub proportion: f64,
    #[schema(example = 83.9)]
    pub accuracy: f64,
    #[schema(example = 0.55)]
    pub loss: f64,
}

fn points(c: &[CurvePoint]) -> Vec<CurvePointView> {
    c.iter()
        .map(|p| CurvePointView {
            proportion: p.proportion,
            accuracy: p.accuracy,
            loss: p.loss,
        })
        .collect()
}

/// Accuracy per proportion for each method.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CurvesView {
    /// Graph-matching fusion (absent when the job ran `none` only).
    pub gamf: Option<Vec<CurvePointView>>,
    /// Plain interpolation without alignment.
    pub none: Vec<CurvePointView>,
}

/// The best fused model found.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BestView {
    pub method: MethodDoc,
    #[schema(example = 0.2)]
    pub proportion: f64,
    #[schema(example = 85.21)]
    pub accuracy: f64,
}

/// The permutation of one hidden layer: `perm[i] = j` puts model 1's channel `i` at model 2's
/// channel `j`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PermutationView {
    #[schema(example = "conv1.weight")]
    pub layer: String,
    pub perm: Vec<usize>,
}

/// The matching's outcome.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MatchingView {
    /// `vᵀ K v` of the final normalised eigenvector estimate.
    pub objective: f64,
    pub iterations: usize,
    pub permutations: Vec<PermutationView>,
    /// Nodes per group (input, hidden…, output): the blocks of the matching matrix.
    #[schema(example = json!([1, 32, 64, 32, 10]))]
    pub group_sizes: Vec<usize>,
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
    pub method: MethodDoc,
    pub compat: Option<CompatDoc>,
    /// Model 1, then model 2.
    pub inputs: Vec<InputView>,
    pub proportions: Vec<f64>,
    pub curves: CurvesView,
    pub best: BestView,
    pub matching: Option<MatchingView>,
    /// Seconds per stage, as measured by the engine.
    pub timings: Vec<TimingView>,
    /// The request as submitted.
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
            method: report.params.method.into(),
            compat: report
                .params
                .compat
                .map(|Compat::PygmtoolsExample| CompatDoc::PygmtoolsExample),
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
            curves: CurvesView {
                gamf: report.curves.gamf.as_deref().map(points),
                none: points(&report.curves.none),
            },
            best: BestView {
                method: report.best.method.into(),
                proportion: report.best.proportion,
                accuracy: report.best.accuracy,
            },
            matching: report.matching.as_ref().map(|m| MatchingView {
                objective: m.objective,
                iterations: m.iterations,
                permutations: m
                    .permutations
                    .iter()
                    .map(|p| PermutationView {
                        layer: p.layer.clone(),
                        perm: p.perm.clone(),
                    })
                    .collect(),
                group_sizes: m.group_sizes.clone(),
            }),
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
