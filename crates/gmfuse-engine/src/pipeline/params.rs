//! What a caller asks a job for ([`FusionParams`]), its ranges ([`FusionParams::check`]), and
//! how rows written before `methods` existed still read (`method: "gamf"` → `methods: [gamf]`,
//! defaults for every newer field).

use serde::{Deserialize, Serialize};

use super::repair::Repair;
use crate::methods::{AutoPick, MethodId};
use crate::solvers::SolverId;

/// Most proportions one job may ask for.
pub const MAX_PROPORTIONS: usize = 101;
/// Most power iterations one job may ask for.
pub const MAX_ITER: usize = 10_000;
/// Most weight-matching sweeps one job may ask for.
pub const MAX_SWEEPS: usize = 10_000;
/// Most models one job may fuse.
pub const MAX_MODELS: usize = 8;

/// Reproduce a known implementation's conventions instead of gmfuse's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Compat {
    /// pygmtools' "Model Fusion by Graph Matching" example, bug included: row-major affinity,
    /// column-major read-back (so the inverse permutation is applied), one-directional affinity.
    PygmtoolsExample,
}

/// What a caller asks for. Check it with [`FusionParams::check`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "ParamsWire")]
pub struct FusionParams {
    /// The methods to run, in order. `none` (plain averaging) is evaluated in every job as the
    /// baseline, whether listed or not.
    pub methods: Vec<MethodId>,
    /// GAMF's QAP solvers, in order: one curve per solver (default `[sm]`).
    pub solvers: Vec<SolverId>,
    /// GAMF only; accepts only the `sm` solver.
    pub compat: Option<Compat>,
    /// Interpolation weights α of model 2: fused = (1-α)·aligned(model 1) + α·model 2.
    pub proportions: Vec<f64>,
    /// GAMF's spectral matching: maximum power iterations.
    pub max_iter: usize,
    /// GAMF's spectral matching: stop when `||v - v_last||₂ < tol`.
    pub tol: f64,
    /// Weight matching: sweeps at most.
    pub max_sweeps: usize,
    /// Weight matching: visit the groups in a random order drawn from this seed (default:
    /// layer order).
    pub seed: Option<u64>,
    /// k ≥ 3 models: the model (index into the job's models) every other one is aligned onto,
    /// by every method; default: the most accurate input, with weight matching's MergeMany
    /// (every model into one common frame) instead.
    pub anchor: Option<usize>,
    /// k ≥ 3 models: the averaging weight of each model (normalised by their sum; default
    /// uniform).
    pub weights: Option<Vec<f64>>,
    /// What `auto` was resolved to, and why (set by [`crate::methods::resolve_auto`], never
    /// by a caller; absent unless a job asked for `auto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto: Option<AutoPick>,
    /// Repair each fused model on the calibration samples before scoring it (two-model jobs);
    /// every curve then has its repaired twin ([`super::repair`]).
    pub repair: Repair,
}

fn default_solvers() -> Vec<SolverId> {
    vec![SolverId::Sm]
}

fn default_max_iter() -> usize {
    50
}
fn default_tol() -> f64 {
    1e-5
}
fn default_max_sweeps() -> usize {
    100
}
fn default_proportions() -> Vec<f64> {
    (0..=10).map(|k| f64::from(k) / 10.0).collect()
}

/// The stored form, old and new: `method` (one name, rows written before `methods`) or
/// `methods`; every field added since has a default.
#[derive(Deserialize)]
struct ParamsWire {
    #[serde(default)]
    method: Option<MethodId>,
    #[serde(default)]
    methods: Option<Vec<MethodId>>,
    #[serde(default = "default_solvers")]
    solvers: Vec<SolverId>,
    #[serde(default)]
    compat: Option<Compat>,
    #[serde(default = "default_proportions")]
    proportions: Vec<f64>,
    #[serde(default = "default_max_iter")]
    max_iter: usize,
    #[serde(default = "default_tol")]
    tol: f64,
    #[serde(default = "default_max_sweeps")]
    max_sweeps: usize,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    anchor: Option<usize>,
    #[serde(default)]
    weights: Option<Vec<f64>>,
    #[serde(default)]
    auto: Option<AutoPick>,
    #[serde(default)]
    repair: Repair,
}

impl From<ParamsWire> for FusionParams {
    fn from(w: ParamsWire) -> Self {
        FusionParams {
            methods: w
                .methods
                .or(w.method.map(|m| vec![m]))
                .unwrap_or_else(|| vec![MethodId::Gamf]),
            solvers: w.solvers,
            compat: w.compat,
            proportions: w.proportions,
            max_iter: w.max_iter,
            tol: w.tol,
            max_sweeps: w.max_sweeps,
            seed: w.seed,
            anchor: w.anchor,
            weights: w.weights,
            auto: w.auto,
            repair: w.repair,
        }
    }
}

impl Default for FusionParams {
    fn default() -> Self {
        FusionParams {
            methods: vec![MethodId::Gamf],
            solvers: default_solvers(),
            compat: None,
            proportions: default_proportions(),
            max_iter: default_max_iter(),
            tol: default_tol(),
            max_sweeps: default_max_sweeps(),
            seed: None,
            anchor: None,
            weights: None,
            auto: None,
            repair: Repair::None,
        }
    }
}

impl FusionParams {
    /// The default parameters with `methods` instead of `[gamf]`.
    pub fn with_methods(methods: &[MethodId]) -> Self {
        FusionParams {
            methods: methods.to_vec(),
            ..FusionParams::default()
        }
    }

    /// The methods that align (all but `none`), in the order asked, each once.
    pub fn aligning(&self) -> Vec<MethodId> {
        let mut out: Vec<MethodId> = Vec::new();
        for &m in &self.methods {
            if m.aligns() && !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    /// GAMF's solvers in the order asked, each once.
    pub fn solvers(&self) -> Vec<SolverId> {
        let mut out: Vec<SolverId> = Vec::new();
        for &s in &self.solvers {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// Why `auto` picked `method`, when it did.
    pub fn picked_by_auto(&self, method: MethodId) -> Option<String> {
        self.auto
            .as_ref()
            .filter(|a| a.method == method)
            .map(|a| a.reason.clone())
    }

    /// The method a job is known by: the first one asked for.
    pub fn primary(&self) -> MethodId {
        self.methods.first().copied().unwrap_or(MethodId::None)
    }

    /// Check the ranges: at least one method, 1..=[`MAX_PROPORTIONS`] proportions in [0, 1],
    /// 1..=[`MAX_ITER`] iterations, a positive finite tolerance, 1..=[`MAX_SWEEPS`] sweeps, at
    /// least one solver, and only `sm` in compat mode.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check(&self) -> Result<(), ParamError> {
        if self.methods.is_empty() {
            return Err(ParamError::NoMethods);
        }
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
        if !(1..=MAX_SWEEPS).contains(&self.max_sweeps) {
            return Err(ParamError::MaxSweeps {
                max: MAX_SWEEPS,
                got: self.max_sweeps,
            });
        }
        if let Some(w) = &self.weights {
            let sum: f64 = w.iter().sum();
            if w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) || !(sum > 0.0 && sum.is_finite()) {
                return Err(ParamError::Weights(w.clone()));
            }
        }
        if self.solvers.is_empty() {
            return Err(ParamError::NoSolvers);
        }
        if let (Some(compat), Some(&s)) = (
            self.compat,
            self.solvers.iter().find(|s| **s != SolverId::Sm),
        ) {
            return Err(ParamError::CompatSolver { compat, solver: s });
        }
        Ok(())
    }

    /// Check the parameters that depend on the number of models `k`: at most [`MAX_MODELS`],
    /// `anchor < k`, one weight per model; `anchor` and `weights` only when `k ≥ 3`.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check_models(&self, k: usize) -> Result<(), ParamError> {
        if !(2..=MAX_MODELS).contains(&k) {
            return Err(ParamError::ModelCount {
                max: MAX_MODELS,
                got: k,
            });
        }
        if k == 2 && (self.anchor.is_some() || self.weights.is_some()) {
            return Err(ParamError::PairOnly);
        }
        if k > 2 && self.repair != Repair::None {
            return Err(ParamError::RepairPairOnly(self.repair));
        }
        if let Some(a) = self.anchor.filter(|&a| a >= k) {
            return Err(ParamError::Anchor {
                anchor: a,
                models: k,
            });
        }
        match &self.weights {
            Some(w) if w.len() != k => Err(ParamError::WeightCount {
                models: k,
                got: w.len(),
            }),
            _ => Ok(()),
        }
    }
}

/// Why parameters were refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    #[error("methods must not be empty")]
    NoMethods,
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
    #[error("max_sweeps must be between 1 and {max}, got {got}")]
    MaxSweeps { max: usize, got: usize },
    #[error("weights must be finite, non-negative and sum to more than 0, got {0:?}")]
    Weights(Vec<f64>),
    #[error("a job fuses 2 to {max} models, got {got}")]
    ModelCount { max: usize, got: usize },
    #[error("anchor and weights apply to jobs of 3 or more models; 2 models use proportions")]
    PairOnly,
    #[error("repair `{0}` applies to jobs of 2 models")]
    RepairPairOnly(Repair),
    #[error("anchor {anchor} is not a model index (the job has {models} models)")]
    Anchor { anchor: usize, models: usize },
    #[error("weights must have one entry per model ({models}), got {got}")]
    WeightCount { models: usize, got: usize },
    #[error("solvers must not be empty")]
    NoSolvers,
    #[error("method `auto` must be resolved against the job's budget before the job runs")]
    UnresolvedAuto,
    #[error(
        "compat `{compat}` reproduces spectral matching only: solver `{solver}` is not \
         available there (drop `compat` or use solver `sm`)"
    )]
    CompatSolver { compat: Compat, solver: SolverId },
}

impl std::fmt::Display for Compat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compat::PygmtoolsExample => f.write_str("pygmtools-example"),
        }
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
