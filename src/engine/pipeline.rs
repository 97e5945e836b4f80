//! A fusion job from start to end: validate → affinity → matching → align → evaluate, with
//! progress reports, per-stage timings and cancellation between (and inside) stages.

use serde::{Deserialize, Serialize};

use crate::engine::arch::{ArchError, ArchSpec};
use crate::engine::eval::{Dataset, EvalError, EvalResult};
use crate::engine::weights::WeightSet;

/// Which fusion to run. The vanilla `none` curve is always reported beside `gamf`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Graph-matching fusion (align model 1 onto model 2, then interpolate).
    #[default]
    Gamf,
    /// Vanilla weight averaging, no alignment.
    None,
}

/// Reproduce a known implementation's conventions instead of gmfuse's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compat {
    /// pygmtools' "Model Fusion by Graph Matching" example, bug included: row-major affinity,
    /// column-major read-back (so the inverse permutation is applied), one-directional affinity.
    PygmtoolsExample,
}

/// What a caller asks for. Check it with [`FusionParams::check`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FusionParams {
    pub method: Method,
    pub compat: Option<Compat>,
    /// Interpolation weights α of model 2: fused = (1-α)·aligned(model 1) + α·model 2.
    pub proportions: Vec<f64>,
    /// Spectral matching: maximum power iterations.
    pub max_iter: usize,
    /// Spectral matching: stop when `||v - v_last||₂ < tol`.
    pub tol: f64,
}

impl Default for FusionParams {
    fn default() -> Self {
        FusionParams {
            method: Method::Gamf,
            compat: None,
            proportions: (0..=10).map(|k| f64::from(k) / 10.0).collect(),
            max_iter: 50,
            tol: 1e-5,
        }
    }
}

/// Why parameters were refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    #[error("proportions must not be empty")]
    NoProportions,
    #[error("at most {max} proportions are allowed, got {got}")]
    TooManyProportions { max: usize, got: usize },
    #[error("proportion {0} is outside [0, 1]")]
    ProportionOutOfRange(f64),
    #[error("max_iter must be between 1 and {max}, got {got}")]
    MaxIter { max: usize, got: usize },
    #[error("tol must be a positive finite number, got {0}")]
    Tol(f64),
}

/// The stages of a job, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Validate,
    Affinity,
    Matching,
    EvaluateInputs,
    EvaluateGamf,
    EvaluateNone,
}

/// Receives progress and answers whether to stop. Implementations must be cheap: kernels call
/// `should_stop` between batches.
pub trait Observer: Sync {
    /// `fraction` of `stage` is done (0..=1).
    fn progress(&self, _stage: Stage, _fraction: f64) {}
    /// True when the job was canceled.
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that reports nowhere and never stops.
pub struct Quiet;
impl Observer for Quiet {}

/// Seconds spent in one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub stage: Stage,
    pub seconds: f64,
}

/// The permutation found for one hidden layer: `perm[i] = j` puts model 1's channel `i` at
/// model 2's channel `j`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPermutation {
    /// The weight tensor that produces the layer's channels.
    pub layer: String,
    pub perm: Vec<usize>,
}

/// The matching's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchingReport {
    /// `vᵀ K v` of the final normalised eigenvector estimate.
    pub objective: f64,
    /// Power iterations run.
    pub iterations: usize,
    pub permutations: Vec<LayerPermutation>,
    /// Node count of each group (input, hidden…, output): the block sizes of the matching matrix.
    pub group_sizes: Vec<usize>,
}

/// One point of an accuracy curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub proportion: f64,
    pub accuracy: f64,
    pub loss: f64,
}

/// Accuracy per proportion for each method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamf: Option<Vec<CurvePoint>>,
    pub none: Vec<CurvePoint>,
}

/// The best fused model found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub method: Method,
    pub proportion: f64,
    pub accuracy: f64,
}

/// Everything a fusion job produces except the fused weights (recomputed on demand with
/// [`fused_weights`] from the permutations).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FusionReport {
    pub architecture: String,
    pub dataset: String,
    pub params: FusionParams,
    pub inputs: Vec<EvalResult>,
    pub alphas: Vec<f64>,
    pub curves: Curves,
    pub best: Best,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matching: Option<MatchingReport>,
    pub timings: Vec<Timing>,
}

/// Why a fusion failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PipelineError {
    #[error(transparent)]
    Params(#[from] ParamError),
    #[error("model {index}: {source}")]
    Arch { index: usize, source: ArchError },
    #[error("models do not share one architecture: {0}")]
    Mismatch(String),
    #[error("dataset samples are {got:?}, the architecture takes {expected:?}")]
    DatasetShape {
        expected: [usize; 3],
        got: [usize; 3],
    },
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("canceled")]
    Canceled,
}

/// Run a whole fusion of `models[0]` onto `models[1]` and evaluate every fused model.
///
/// # Errors
/// Any [`PipelineError`]; [`PipelineError::Canceled`] when `observer.should_stop()`.
pub fn run(
    _spec: &ArchSpec,
    _models: [&WeightSet; 2],
    _data: &Dataset,
    _params: &FusionParams,
    _observer: &dyn Observer,
) -> Result<FusionReport, PipelineError> {
    todo!("engine lead")
}

/// The fused weights for one proportion, given a report's permutations (identity for `none`).
/// Names and dtypes are those of model 2.
///
/// # Errors
/// [`PipelineError::Arch`] when the models do not fit `spec`.
pub fn fused_weights(
    _spec: &ArchSpec,
    _models: [&WeightSet; 2],
    _permutations: Option<&[LayerPermutation]>,
    _proportion: f64,
) -> Result<WeightSet, PipelineError> {
    todo!("engine lead")
}
