//! A fusion job from start to end: validate → align (every requested method) → evaluate each
//! method's curve and the `none` baseline, with progress reports, per-stage timings and
//! cancellation between (and inside) stages.

pub mod equivalence;
mod fused;
mod many;
mod params;
pub mod repair;
mod report;
mod stage;

use std::collections::BTreeMap;
use std::time::Instant;

use crate::arch::{ArchError, ArchSpec, PermStructure};
use crate::eval::{Dataset, EvalError, EvalResult, evaluate};
use crate::forward::Network;
use crate::fusion::{FusionError, interpolate, permute};
use crate::methods::{MethodError, MethodInput, method};
use crate::weights::WeightSet;

pub use crate::methods::MethodId;
pub use fused::{fused_weights, repaired_fused_weights};
pub use many::{fused_weights_many, run_many};
pub use params::{
    Compat, FusionParams, MAX_ITER, MAX_MODELS, MAX_PROPORTIONS, MAX_SWEEPS, ParamError,
};
pub use repair::{Repair, RepairError};
pub use report::{
    Best, Curve, CurvePoint, FusionReport, LayerPermutation, MatchingReport, Merged,
    ModelPermutations,
};
pub use stage::{Stage, UnknownStage};

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
    #[error("calibration samples are {got:?}, the architecture takes {expected:?}")]
    CalibrationShape {
        expected: [usize; 3],
        got: [usize; 3],
    },
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("method `{method}`: {message}")]
    Method { method: MethodId, message: String },
    #[error("method `{method}` failed the equivalence check: {source}")]
    Equivalence {
        method: MethodId,
        source: equivalence::EquivalenceError,
    },
    #[error(transparent)]
    Repair(RepairError),
    #[error(transparent)]
    Unsupported(#[from] crate::methods::Unsupported),
    #[error("canceled")]
    Canceled,
}

impl From<RepairError> for PipelineError {
    fn from(e: RepairError) -> Self {
        match e {
            RepairError::Canceled => PipelineError::Canceled,
            other => PipelineError::Repair(other),
        }
    }
}

impl From<FusionError> for PipelineError {
    fn from(e: FusionError) -> Self {
        PipelineError::Mismatch(e.to_string())
    }
}

/// Validate every model against `spec` and each other; returns their shared structure.
fn validate(spec: &ArchSpec, models: &[&WeightSet]) -> Result<PermStructure, PipelineError> {
    let mut shared: Option<PermStructure> = None;
    for (index, m) in models.iter().enumerate() {
        let s = spec
            .validate(m)
            .map_err(|source| PipelineError::Arch { index, source })?;
        match &shared {
            Some(first) if *first != s => {
                return Err(PipelineError::Mismatch(format!(
                    "model {index}'s layer sizes differ from model 0's"
                )));
            }
            Some(_) => {}
            None => shared = Some(s),
        }
    }
    shared.ok_or(PipelineError::Mismatch("no models".into()))
}

/// The checks before any compute: the parameters (for this many models, `auto` resolved), the
/// models against `spec` and each other, the dataset's and the calibration set's sample shape.
/// Returns the models' shared structure.
fn check_inputs(
    spec: &ArchSpec,
    models: &[&WeightSet],
    data: &Dataset,
    calibration: Option<&Dataset>,
    params: &FusionParams,
) -> Result<PermStructure, PipelineError> {
    params.check()?;
    params.check_models(models.len())?;
    if params.methods.contains(&MethodId::Auto) {
        return Err(ParamError::UnresolvedAuto.into());
    }
    let structure = validate(spec, models)?;
    if data.shape != spec.input {
        return Err(PipelineError::DatasetShape {
            expected: spec.input,
            got: data.shape,
        });
    }
    if let Some(c) = calibration.filter(|c| c.shape != spec.input) {
        return Err(PipelineError::CalibrationShape {
            expected: spec.input,
            got: c.shape,
        });
    }
    crate::methods::check_supported(spec, params)?;
    repair::check(params.repair, spec)?;
    if params.repair != Repair::None && calibration.is_none() {
        return Err(RepairError::NoCalibration(params.repair).into());
    }
    Ok(structure)
}

/// A method's failure as the pipeline reports it.
fn method_failed(id: MethodId) -> impl Fn(MethodError) -> PipelineError {
    move |e| match e {
        MethodError::Canceled => PipelineError::Canceled,
        other => PipelineError::Method {
            method: id,
            message: other.to_string(),
        },
    }
}

/// `perms` (one per group) as the report lists them: under each group's producing weight.
fn layer_permutations(s: &PermStructure, perms: Vec<Vec<usize>>) -> Vec<LayerPermutation> {
    s.hidden
        .iter()
        .zip(perms)
        .map(|(g, perm)| LayerPermutation {
            layer: s.layers[g.producer].weight.clone(),
            perm,
        })
        .collect()
}

/// Per-stage timings, taken as laps.
struct Stopwatch {
    clock: Instant,
    timings: BTreeMap<Stage, f64>,
}

impl Stopwatch {
    fn lap(&mut self, stage: Stage) {
        let now = Instant::now();
        *self.timings.entry(stage).or_default() += (now - self.clock).as_secs_f64();
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

/// Run a whole fusion of `models[0]` onto `models[1]` and evaluate every fused model, with no
/// calibration data (a method that needs it fails: see [`run_calibrated`]).
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
    run_calibrated(spec, models, data, None, params, observer)
}

/// [`run`], with `calibration` samples (never the scored `data`) for the methods that run the
/// models ([`MethodId::needs_calibration`]).
///
/// # Errors
/// Any [`PipelineError`]; [`PipelineError::CalibrationShape`] when the calibration samples do
/// not fit the architecture's input.
pub fn run_calibrated(
    spec: &ArchSpec,
    models: [&WeightSet; 2],
    data: &Dataset,
    calibration: Option<&Dataset>,
    params: &FusionParams,
    observer: &dyn Observer,
) -> Result<FusionReport, PipelineError> {
    let mut watch = Stopwatch {
        clock: Instant::now(),
        timings: BTreeMap::new(),
    };
    let stop = || observer.should_stop();
    observer.progress(Stage::Validate, 0.0);
    let structure = check_inputs(spec, &models, data, calibration, params)?;
    watch.lap(Stage::Validate);

    let mut matchings = Vec::new();
    let mut aligned = Vec::new();
    let probe = equivalence::Probe::new(spec, &structure, models[0], data)
        .map_err(|e| PipelineError::Mismatch(e.to_string()))?;
    for id in params.aligning() {
        let input = MethodInput {
            spec,
            structure: &structure,
            models,
            calibration,
            params,
            observer,
        };
        let runs = method(id).align_runs(&input).map_err(method_failed(id))?;
        for run in runs {
            let a = run.alignment;
            if a.stages.is_empty() {
                *watch.timings.entry(Stage::Align(id)).or_default() += run.seconds;
            }
            for &(stage, t) in &a.stages {
                *watch.timings.entry(stage).or_default() += t;
            }
            watch.clock = Instant::now();
            let permuted = permute(&structure, models[0], &a.perms)?;
            let delta = probe
                .check(&permuted, &a.perms)
                .map_err(|source| PipelineError::Equivalence { method: id, source })?;
            aligned.push((id, run.solver, permuted));
            matchings.push(MatchingReport {
                method: id,
                solver: run.solver,
                objective: a.objective,
                objectives: a.objectives,
                iterations: a.iterations,
                seconds: run.seconds,
                permutations: layer_permutations(&structure, a.perms),
                models: Vec::new(),
                group_sizes: group_sizes(&structure),
                picked_by_auto: params.picked_by_auto(id),
                max_abs_logit_delta: Some(delta),
            });
        }
    }

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

    aligned.push((MethodId::None, None, models[0].clone()));
    let mut curves = Vec::with_capacity(aligned.len());
    for (id, solver, a) in &aligned {
        let stage = Stage::Evaluate(*id);
        let (mut points, mut repaired) = (Vec::new(), Vec::new());
        for (k, &alpha) in params.proportions.iter().enumerate() {
            observer.progress(stage, k as f64 / params.proportions.len() as f64);
            let fused = interpolate(a, models[1], alpha)?;
            let r = cache.eval(&fused, &stop)?;
            points.push(CurvePoint {
                proportion: alpha,
                accuracy: r.accuracy,
                loss: r.loss,
            });
            if let (Repair::ResetBn | Repair::Repair, Some(cal)) = (params.repair, calibration) {
                let ends = [a, models[1]];
                let fixed = repair::repaired(params.repair, spec, ends, &fused, alpha, cal, &stop)?;
                let r = cache.eval(&fixed, &stop)?;
                repaired.push(CurvePoint {
                    proportion: alpha,
                    accuracy: r.accuracy,
                    loss: r.loss,
                });
            }
        }
        watch.lap(stage);
        curves.push(Curve {
            method: *id,
            solver: *solver,
            points,
            repaired,
        });
    }

    let best = Best::of(&curves, params.repair).expect("at least one proportion");
    Ok(FusionReport {
        architecture: spec.name.clone(),
        dataset: data.name.clone(),
        params: params.clone(),
        samples: data.labels.len(),
        inputs,
        alphas: params.proportions.clone(),
        curves,
        merged: Vec::new(),
        anchor: None,
        weights: Vec::new(),
        best,
        matchings,
        timings: watch.timings,
    })
}

/// Node count per group: input channels, each hidden group, the outputs.
fn group_sizes(s: &PermStructure) -> Vec<usize> {
    std::iter::once(s.n_input)
        .chain(s.hidden.iter().map(|g| g.size))
        .chain(s.layers.last().map(|l| l.n_out))
        .collect()
}
