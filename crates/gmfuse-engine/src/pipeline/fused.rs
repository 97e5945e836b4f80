//! A two-model job's fused weights, rebuilt after the job from the inputs and the report's
//! permutations: as the curve scored them ([`fused_weights`]) or after the job's repair
//! ([`repaired_fused_weights`]), so that every point of a report — its `best` included, which
//! may be a repaired point — can be downloaded.

use super::repair::{self, Repair};
use super::{LayerPermutation, PipelineError, validate};
use crate::arch::ArchSpec;
use crate::eval::Dataset;
use crate::fusion::{interpolate, permute};
use crate::weights::WeightSet;

/// Model 1 aligned onto model 2 by `permutations` (identity for `none`).
fn aligned(
    spec: &ArchSpec,
    models: [&WeightSet; 2],
    permutations: Option<&[LayerPermutation]>,
) -> Result<WeightSet, PipelineError> {
    let structure = validate(spec, &models)?;
    Ok(match permutations {
        None => models[0].clone(),
        Some(p) => {
            let perms: Vec<Vec<usize>> = p.iter().map(|l| l.perm.clone()).collect();
            permute(&structure, models[0], &perms)?
        }
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
    let a = aligned(spec, models, permutations)?;
    Ok(interpolate(&a, models[1], proportion)?)
}

/// [`fused_weights`] after `repair` on `calibration` — the model a curve's `repaired` point
/// scored, when `repair` and `calibration` are the job's (the repair is deterministic).
///
/// # Errors
/// As [`fused_weights`]; [`PipelineError::Repair`] when `repair` cannot run on `spec`;
/// [`PipelineError::Canceled`] when `stop()` turns true.
pub fn repaired_fused_weights(
    spec: &ArchSpec,
    models: [&WeightSet; 2],
    permutations: Option<&[LayerPermutation]>,
    proportion: f64,
    (kind, calibration): (Repair, &Dataset),
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<WeightSet, PipelineError> {
    let a = aligned(spec, models, permutations)?;
    let fused = interpolate(&a, models[1], proportion)?;
    let ends = [&a, models[1]];
    Ok(repair::repaired(
        kind,
        spec,
        ends,
        &fused,
        proportion,
        calibration,
        stop,
    )?)
}
