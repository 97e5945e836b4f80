//! A fusion job from start to end: validate → affinity → matching → align → evaluate, with
//! progress reports, per-stage timings and cancellation between (and inside) stages.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::arch::{ArchError, ArchSpec, PermStructure};
use crate::eval::{Dataset, EvalError, EvalResult, evaluate};
use crate::forward::Network;
use crate::fusion::{FusionError, interpolate, permute};
use crate::matching::{Convention, MatchError, match_models};
use crate::solvers::{SmParams, SolveError};
use crate::weights::WeightSet;

/// Most proportions one job may ask for.
pub const MAX_PROPORTIONS: usize = 101;
/// Most power iterations one job may ask for.
pub const MAX_ITER: usize = 10_000;

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

impl FusionParams {
    /// Check the ranges: 1..=[`MAX_PROPORTIONS`] proportions in [0, 1], 1..=[`MAX_ITER`]
    /// iterations, a positive finite tolerance.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check(&self) -> Result<(), ParamError> {
        if self.proportions.is_empty() {
            return Err(ParamError::NoProportions);
        }
        if self.proportions.len() > MAX_PROPORTIONS {
            return Err(ParamError::TooManyProportions {
                max: MAX_PROPORTIONS,
                got: self.proportions.len(),
            });
        }
        if let Some(&p) = self.proportions.iter().find(|p| !(0.0..=1.0).contains(*p)) {
            return Err(ParamError::ProportionOutOfRange(p));
        }
        if !(1..=MAX_ITER).contains(&self.max_iter) {
            return Err(ParamError::MaxIter {
                max: MAX_ITER,
                got: self.max_iter,
            });
        }
        if !(self.tol > 0.0 && self.tol.is_finite()) {
            return Err(ParamError::Tol(self.tol));
        }
        Ok(())
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
    /// Building the affinity operator.
    Affinity,
    /// The power iteration (spectral matching).
    Matching,
    /// Per-layer Hungarian assignments.
    Assignment,
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
    /// Evaluation samples used.
    pub samples: usize,
    pub inputs: Vec<EvalResult>,
    pub alphas: Vec<f64>,
    pub curves: Curves,
    pub best: Best,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matching: Option<MatchingReport>,
    /// Seconds per stage.
    pub timings: BTreeMap<Stage, f64>,
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

impl From<FusionError> for PipelineError {
    fn from(e: FusionError) -> Self {
        PipelineError::Mismatch(e.to_string())
    }
}

impl From<MatchError> for PipelineError {
    fn from(e: MatchError) -> Self {
        match e {
            MatchError::Solve(SolveError::Canceled) => PipelineError::Canceled,
            other => PipelineError::Mismatch(other.to_string()),
        }
    }
}

/// Validate both models against `spec` and each other; returns their shared structure.
fn validate(spec: &ArchSpec, models: [&WeightSet; 2]) -> Result<PermStructure, PipelineError> {
    let s0 = spec
        .validate(models[0])
        .map_err(|source| PipelineError::Arch { index: 0, source })?;
    let s1 = spec
        .validate(models[1])
        .map_err(|source| PipelineError::Arch { index: 1, source })?;
    if s0 != s1 {
        return Err(PipelineError::Mismatch(
            "the two models' layer sizes differ".into(),
        ));
    }
    Ok(s0)
}

/// Per-stage timings, taken as laps.
struct Stopwatch {
    clock: Instant,
    timings: BTreeMap<Stage, f64>,
}

impl Stopwatch {
    fn lap(&mut self, stage: Stage) {
        let now = Instant::now();
        self.timings.insert(stage, (now - self.clock).as_secs_f64());
        self.clock = now;
    }
}

/// Evaluations already done, so that bit-identical fused models (α = 0 and 1 of the vanilla
/// curve, α = 1 of the GAMF curve) are not evaluated twice.
struct EvalCache<'a> {
    spec: &'a ArchSpec,
    data: &'a Dataset,
    done: Vec<(WeightSet, EvalResult)>,
}

impl EvalCache<'_> {
    fn eval(
        &mut self,
        w: &WeightSet,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<EvalResult, PipelineError> {
        if let Some((_, r)) = self.done.iter().find(|(d, _)| d.tensors == w.tensors) {
            return Ok(*r);
        }
        let net = Network::new(self.spec, w)
            .map_err(|source| PipelineError::Arch { index: 0, source })?;
        let r = evaluate(&net, self.data, stop).map_err(|e| match e {
            EvalError::Canceled => PipelineError::Canceled,
            other => PipelineError::Eval(other),
        })?;
        self.done.push((w.clone(), r));
        Ok(r)
    }
}

/// Run a whole fusion of `models[0]` onto `models[1]` and evaluate every fused model.
///
/// # Errors
/// Any [`PipelineError`]; [`PipelineError::Canceled`] when `observer.should_stop()`.
pub fn run(
    spec: &ArchSpec,
    models: [&WeightSet; 2],
    data: &Dataset,
    params: &FusionParams,
    observer: &dyn Observer,
) -> Result<FusionReport, PipelineError> {
    let mut watch = Stopwatch {
        clock: Instant::now(),
        timings: BTreeMap::new(),
    };
    let stop = || observer.should_stop();
    observer.progress(Stage::Validate, 0.0);
    params.check()?;
    let structure = validate(spec, models)?;
    if data.shape != spec.input {
        return Err(PipelineError::DatasetShape {
            expected: spec.input,
            got: data.shape,
        });
    }
    watch.lap(Stage::Validate);

    let matching = match params.method {
        Method::None => None,
        Method::Gamf => {
            observer.progress(Stage::Affinity, 0.0);
            let convention = match params.compat {
                None => Convention::Consistent,
                Some(Compat::PygmtoolsExample) => Convention::PygmtoolsExample,
            };
            let sm = SmParams {
                max_iter: params.max_iter,
                tol: params.tol,
            };
            let m = match_models(&structure, models, convention, sm, &stop)?;
            for (stage, seconds) in [Stage::Affinity, Stage::Matching, Stage::Assignment]
                .into_iter()
                .zip(m.seconds)
            {
                watch.timings.insert(stage, seconds);
            }
            watch.clock = Instant::now();
            Some(MatchingReport {
                objective: m.objective,
                iterations: m.iterations,
                permutations: structure
                    .hidden
                    .iter()
                    .zip(m.perms)
                    .map(|(g, perm)| LayerPermutation {
                        layer: structure.layers[g.producer].weight.clone(),
                        perm,
                    })
                    .collect(),
                group_sizes: m.group_sizes,
            })
        }
    };

    let mut cache = EvalCache {
        spec,
        data,
        done: Vec::new(),
    };
    let mut inputs = Vec::new();
    for (i, m) in models.iter().enumerate() {
        observer.progress(Stage::EvaluateInputs, i as f64 / 2.0);
        inputs.push(cache.eval(m, &stop)?);
    }
    watch.lap(Stage::EvaluateInputs);

    let curve = |stage: Stage, aligned: &WeightSet, cache: &mut EvalCache<'_>| {
        let mut points = Vec::new();
        for (k, &alpha) in params.proportions.iter().enumerate() {
            observer.progress(stage, k as f64 / params.proportions.len() as f64);
            let fused = interpolate(aligned, models[1], alpha)?;
            let r = cache.eval(&fused, &stop)?;
            points.push(CurvePoint {
                proportion: alpha,
                accuracy: r.accuracy,
                loss: r.loss,
            });
        }
        Ok::<_, PipelineError>(points)
    };
    let gamf = match &matching {
        None => None,
        Some(m) => {
            let perms: Vec<Vec<usize>> = m.permutations.iter().map(|p| p.perm.clone()).collect();
            let aligned = permute(&structure, models[0], &perms)?;
            let points = curve(Stage::EvaluateGamf, &aligned, &mut cache)?;
            watch.lap(Stage::EvaluateGamf);
            Some(points)
        }
    };
    let none = curve(Stage::EvaluateNone, models[0], &mut cache)?;
    watch.lap(Stage::EvaluateNone);

    let best = [
        (Method::Gamf, gamf.as_deref()),
        (Method::None, Some(&none[..])),
    ]
    .into_iter()
    .flat_map(|(method, pts)| pts.unwrap_or_default().iter().map(move |p| (method, p)))
    .fold(None::<Best>, |best, (method, p)| match best {
        Some(b) if b.accuracy >= p.accuracy => Some(b),
        _ => Some(Best {
            method,
            proportion: p.proportion,
            accuracy: p.accuracy,
        }),
    })
    .expect("at least one proportion");
    Ok(FusionReport {
        architecture: spec.name.clone(),
        dataset: data.name.clone(),
        params: params.clone(),
        samples: data.labels.len(),
        inputs,
        alphas: params.proportions.clone(),
        curves: Curves { gamf, none },
        best,
        matching,
        timings: watch.timings,
    })
}

/// The fused weights for one proportion, given a report's permutations (identity for `none`).
/// Names and dtypes are those of model 2.
///
/// # Errors
/// [`PipelineError::Arch`] when the models do not fit `spec`; [`PipelineError::Mismatch`] for
/// permutations that do not fit its hidden layers or a proportion outside [0, 1].
pub fn fused_weights(
    spec: &ArchSpec,
    models: [&WeightSet; 2],
    permutations: Option<&[LayerPermutation]>,
    proportion: f64,
) -> Result<WeightSet, PipelineError> {
    let structure = validate(spec, models)?;
    let aligned = match permutations {
        None => models[0].clone(),
        Some(p) => {
            let perms: Vec<Vec<usize>> = p.iter().map(|l| l.perm.clone()).collect();
            permute(&structure, models[0], &perms)?
        }
    };
    Ok(interpolate(&aligned, models[1], proportion)?)
}
