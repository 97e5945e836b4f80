//! The pre-flight check of a job against this process's budgets: the engine's
//! [`estimate`] of peak memory and compute, compared with `GMFUSE_MAX_JOB_BYTES` and
//! `GMFUSE_MAX_EVAL_MACS`, at submission (422 `job_over_budget`, before anything is stored)
//! and again by the worker before it loads the weights (a job accepted under a larger budget
//! fails for good with the same code instead of exhausting the machine).

use std::collections::BTreeMap;

use super::catalog::builtin_dataset;
use crate::engine::arch::{ArchError, ArchSpec};
use crate::engine::estimate::{Estimate, Workload, estimate};
use crate::engine::methods::{MethodId, Unsupported, check_supported};
use crate::engine::pipeline::FusionParams;
use crate::store::DatasetSource;

/// The budgets one job must fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// Peak memory, bytes.
    pub max_job_bytes: u64,
    /// Multiply-accumulates: evaluation plus matching.
    pub max_eval_macs: u64,
}

/// Why a job does not fit.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(transparent)]
    Arch(#[from] ArchError),
    #[error("{0}")]
    OverBudget(String),
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
}

/// What the check needs besides the spec and the parameters.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub tensors: &'a BTreeMap<String, Vec<usize>>,
    pub file_bytes: &'a [u64],
    pub dataset_samples: u64,
    /// Samples of the job's calibration set (0: none).
    pub calibration_samples: u64,
    /// The process's evaluation limit (`GMFUSE_EVAL_LIMIT`).
    pub eval_limit: Option<usize>,
    pub threads: usize,
}

/// Samples of a job's dataset as the worker will load it.
pub fn dataset_samples(source: &DatasetSource) -> u64 {
    match source {
        DatasetSource::Builtin { name } => builtin_dataset(name).map_or(0, |b| b.samples),
        DatasetSource::Uploaded(d) => d.samples,
    }
}

/// The largest label of a dataset when it is known without reading it: the built-in ones,
/// and uploads whose range the scan at upload recorded (not rows stored before it did).
pub fn known_max_label(source: &DatasetSource) -> Option<u32> {
    match source {
        DatasetSource::Builtin { name } => builtin_dataset(name).map(|b| b.labels.max),
        DatasetSource::Uploaded(d) => d.labels.map(|l| l.max),
    }
}

/// Labels up to `max_label` need at least `max_label + 1` outputs of `spec`.
///
/// # Errors
/// The reason, naming both numbers.
pub fn check_labels(
    spec: &ArchSpec,
    tensors: &BTreeMap<String, Vec<usize>>,
    dataset: &str,
    max_label: u32,
) -> Result<(), String> {
    let classes = match spec.shapes_with(|n| tensors.get(n).cloned()) {
        Ok(shapes) => match shapes.last() {
            Some(crate::engine::arch::Shape::Flat(n)) => *n,
            _ => return Ok(()),
        },
        Err(_) => return Ok(()),
    };
    if max_label as usize >= classes {
        return Err(format!(
            "dataset `{dataset}` has labels up to {max_label}, but architecture `{}` outputs \
             {classes} classes",
            spec.name
        ));
    }
    Ok(())
}

/// Bytes for people: `1.50 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// A count for people: `3.20e14`.
fn human_count(n: u64) -> String {
    if n < 100_000 {
        n.to_string()
    } else {
        format!("{:.2e}", n as f64)
    }
}

/// Estimate `spec` + `params` on `inputs` and compare with `budgets`.
///
/// # Errors
/// [`PreflightError::OverBudget`] with a detail that names the estimate, the budget and what to
/// change; [`PreflightError::Arch`] when the tensors do not fit the spec.
pub fn check(
    spec: &ArchSpec,
    params: &FusionParams,
    inputs: Inputs<'_>,
    budgets: Budgets,
) -> Result<Estimate, PreflightError> {
    check_supported(spec, params)?;
    let eval_samples = inputs.eval_limit.map_or(inputs.dataset_samples, |n| {
        inputs.dataset_samples.min(n as u64)
    });
    let e = estimate(&Workload {
        spec,
        tensors: inputs.tensors,
        file_bytes: inputs.file_bytes,
        params,
        dataset_samples: inputs.dataset_samples,
        eval_samples,
        calibration_samples: inputs.calibration_samples,
        threads: inputs.threads,
    })?;
    if e.peak_bytes > budgets.max_job_bytes {
        return Err(PreflightError::OverBudget(memory_detail(
            &e,
            params,
            budgets.max_job_bytes,
        )));
    }
    if e.total_macs > budgets.max_eval_macs {
        return Err(PreflightError::OverBudget(compute_detail(
            &e,
            params,
            eval_samples,
            budgets.max_eval_macs,
        )));
    }
    Ok(e)
}

/// `params` with `auto` resolved against `budgets`: `gamf` when the job with GAMF passes
/// [`check`], `weight_matching` otherwise, the reason recorded in [`FusionParams::auto`]
/// (and so in the report's `picked_by_auto`).
///
/// # Errors
/// [`PreflightError::Arch`] when the tensors do not fit the spec.
pub fn resolve_auto(
    spec: &ArchSpec,
    params: &FusionParams,
    inputs: Inputs<'_>,
    budgets: Budgets,
) -> Result<FusionParams, PreflightError> {
    let mut arch = None;
    let resolved =
        crate::engine::methods::resolve_auto(params, |p| match check(spec, p, inputs, budgets) {
            Ok(e) => Ok(format!(
                "its estimated peak of {} (affinity {}) is within the budget of {} and its {} \
                 multiply-accumulates within {}",
                human_bytes(e.peak_bytes),
                human_bytes(e.affinity_bytes),
                human_bytes(budgets.max_job_bytes),
                human_count(e.total_macs),
                human_count(budgets.max_eval_macs),
            )),
            Err(PreflightError::OverBudget(detail)) => Err(detail),
            Err(PreflightError::Unsupported(u)) => Err(u.to_string()),
            Err(PreflightError::Arch(e)) => {
                arch = Some(e);
                Err(String::new())
            }
        });
    match arch {
        Some(e) => Err(e.into()),
        None => Ok(resolved),
    }
}

fn memory_detail(e: &Estimate, params: &FusionParams, budget: u64) -> String {
    let affinity_dominates = e.matching_bytes >= e.evaluation_bytes;
    let advice = if params.methods.contains(&MethodId::Gamf) && affinity_dominates {
        format!(
            "the GAMF affinity alone stores {} entries ({}): use method `weight_matching` or \
             `none` (no affinity), `auto` (picks one that fits), or a narrower architecture (the affinity grows with the \
             square of each layer's in × out channels)",
            human_count(e.affinity_entries),
            human_bytes(e.affinity_bytes)
        )
    } else {
        format!(
            "activations take {} and weight copies the rest of the evaluation's {}: use a \
             smaller architecture (narrower layers, smaller inputs), fewer proportions, or \
             fewer compute threads (GMFUSE_COMPUTE_THREADS)",
            human_bytes(e.activation_bytes),
            human_bytes(e.evaluation_bytes)
        )
    };
    format!(
        "the job needs an estimated {} of memory at its peak (models and dataset {}, matching {}, \
         evaluation {}), over the budget of {} (GMFUSE_MAX_JOB_BYTES); {advice}",
        human_bytes(e.peak_bytes),
        human_bytes(e.common_bytes),
        human_bytes(e.matching_bytes),
        human_bytes(e.evaluation_bytes),
        human_bytes(budget),
    )
}

fn compute_detail(e: &Estimate, params: &FusionParams, samples: u64, budget: u64) -> String {
    let gamf = if params.methods.contains(&MethodId::Gamf) && e.matching_macs >= e.eval_macs {
        "; GAMF's matching dominates: use method `weight_matching` (or `auto`)"
    } else {
        ""
    };
    format!(
        "the job needs an estimated {} multiply-accumulates ({} per sample × {samples} samples × \
         {} evaluated models, plus {} for the matching), over the budget of {} \
         (GMFUSE_MAX_EVAL_MACS); ask for fewer proportions ({} now), evaluate on a smaller \
         dataset (or set GMFUSE_EVAL_LIMIT), use a smaller architecture, or fewer solver \
         iterations (max_iter {} now){gamf}",
        human_count(e.total_macs),
        human_count(e.macs_per_sample),
        e.evaluations,
        human_count(e.matching_macs),
        human_count(budget),
        params.proportions.len(),
        params.max_iter,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::arch::preset;

    fn mnist() -> BTreeMap<String, Vec<usize>> {
        [
            ("conv1.weight", vec![32, 1, 5, 5]),
            ("conv2.weight", vec![64, 32, 5, 5]),
            ("fc1.weight", vec![32, 3136]),
            ("fc2.weight", vec![10, 32]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn inputs(t: &BTreeMap<String, Vec<usize>>) -> Inputs<'_> {
        Inputs {
            tensors: t,
            file_bytes: &[611_000, 611_000],
            dataset_samples: 10_000,
            calibration_samples: 0,
            eval_limit: None,
            threads: 2,
        }
    }

    #[test]
    fn the_default_mnist_job_fits_the_default_budgets() {
        let t = mnist();
        let budgets = Budgets {
            max_job_bytes: 256 << 20,
            max_eval_macs: 50_000_000_000_000,
        };
        let spec = preset("mnist-cnn").unwrap();
        let e = check(&spec, &FusionParams::default(), inputs(&t), budgets).unwrap();
        assert_eq!(e.total_macs, e.eval_macs + e.matching_macs);
    }

    #[test]
    fn over_budget_details_name_estimate_budget_and_advice() {
        let t = mnist();
        let spec = preset("mnist-cnn").unwrap();
        let tight = Budgets {
            max_job_bytes: 10 << 20,
            max_eval_macs: u64::MAX,
        };
        // Compat mode keeps the affinity in f64 (68 MB): it dominates, and the advice names
        // weight matching. The default layout's f32 affinity (34.7 MiB) is below the
        // evaluation's 37.6 MiB, so there the advice is the evaluation's.
        let compat = FusionParams {
            compat: Some(crate::engine::pipeline::Compat::PygmtoolsExample),
            ..FusionParams::default()
        };
        let err = check(&spec, &compat, inputs(&t), tight).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("over the budget of 10.00 MiB (GMFUSE_MAX_JOB_BYTES)"),
            "{msg}"
        );
        assert!(msg.contains("method `weight_matching`"), "{msg}");
        let msg = check(&spec, &FusionParams::default(), inputs(&t), tight)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("matching 34.74 MiB, evaluation 37.60 MiB"),
            "{msg}"
        );
        let slow = Budgets {
            max_job_bytes: u64::MAX,
            max_eval_macs: 1_000_000_000,
        };
        let msg = check(&spec, &FusionParams::default(), inputs(&t), slow)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("1.94e12 multiply-accumulates"), "{msg}");
        assert!(msg.contains("fewer proportions (11 now)"), "{msg}");
        let mut limited = inputs(&t);
        limited.eval_limit = Some(100);
        let msg = check(&spec, &FusionParams::default(), limited, slow)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("× 100 samples ×"), "{msg}");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(3 << 29), "1.50 GiB");
        assert_eq!(human_count(42), "42");
    }
}
