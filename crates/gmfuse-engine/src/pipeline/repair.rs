//! Repair after fusion (REPAIR, Jordan et al., ICLR 2023): correct the statistics a fused
//! model's hidden units lost by averaging, on calibration samples (never the scored set).
//!
//! - [`Repair::ResetBn`]: recompute every batch norm's running mean and variance of the fused
//!   model from the calibration samples, batch norm after batch norm in op order (each sees the
//!   ones before it already reset). The statistics are those of all the samples used at once —
//!   what PyTorch's cumulative average (`momentum=None`) gives for one batch: the mean, and the
//!   unbiased variance.
//! - [`Repair::Repair`]: for every hidden conv/linear layer (all but the last), measure each
//!   unit's mean and standard deviation in aligned model A, in B and in the fused model, and
//!   rescale and shift the fused unit so they become `(1 − α)·A + α·B`. The unit is measured
//!   where its values leave the layer's affine part: after the batch norm that alone reads the
//!   layer, when there is one (the correction is folded into its weight and bias), else at the
//!   layer's output (folded into the weight row and the bias; a layer without a bias gets the
//!   rescale only). Layers are repaired in op order, each measured after the ones before it
//!   were repaired.
//!
//! A unit's values are read by running the spec cut after the op that produces them
//! ([`prefix`]) through the engine's inference, on the first [`REPAIR_SAMPLES`] calibration
//! samples, in batches. The fused models at α = 0 and α = 1 are the inputs themselves and
//! are left as they are.

use std::collections::BTreeSet;

use ndarray::{Axis, s};
use serde::{Deserialize, Serialize};

use crate::arch::{ArchError, ArchSpec, Node, Op};
use crate::eval::Dataset;
use crate::forward::Network;
use crate::weights::WeightSet;

/// Calibration samples repair reads at most.
pub const REPAIR_SAMPLES: usize = 2_000;
/// Samples per inference batch while measuring.
const BATCH: usize = 250;

/// What to do to each fused model before it is scored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "clap", value(rename_all = "snake_case"))]
pub enum Repair {
    /// Score the fused models as they are.
    #[default]
    None,
    /// Recompute every batch norm's running statistics (needs batch norms).
    ResetBn,
    /// REPAIR's rescale and shift of every hidden unit (any architecture).
    Repair,
}

impl Repair {
    /// The canonical string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::None => "none",
            Repair::ResetBn => "reset_bn",
            Repair::Repair => "repair",
        }
    }

    /// Whether this is [`Repair::None`].
    pub fn is_none(&self) -> bool {
        *self == Repair::None
    }
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a repair could not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RepairError {
    #[error(
        "repair `reset_bn` needs batchnorm layers and architecture `{0}` has none: use \
         `repair` (works without batch norm) or `none`"
    )]
    NoBatchNorm(String),
    #[error("repair `{0}` needs calibration samples")]
    NoCalibration(Repair),
    #[error("repair: {0}")]
    Arch(#[from] ArchError),
    #[error("canceled")]
    Canceled,
}

/// Whether any op of `spec` is a batch norm.
pub fn has_batch_norm(spec: &ArchSpec) -> bool {
    spec.ops.iter().any(|n| is_bn(&n.op))
}

fn is_bn(op: &Op) -> bool {
    matches!(op, Op::Batchnorm2d { .. } | Op::Batchnorm1d { .. })
}

/// Check that `kind` can run on `spec`.
///
/// # Errors
/// [`RepairError::NoBatchNorm`] for `reset_bn` on a spec without batch norm.
pub fn check(kind: Repair, spec: &ArchSpec) -> Result<(), RepairError> {
    if kind == Repair::ResetBn && !has_batch_norm(spec) {
        return Err(RepairError::NoBatchNorm(spec.name.clone()));
    }
    Ok(())
}

/// The fused model `fused = (1 − α)·a + α·b` (with `a` already aligned onto `b`) after
/// `kind`, measured on `calibration`.
///
/// # Errors
/// [`RepairError`]; [`RepairError::Canceled`] when `stop()` turns true between measurements.
pub fn repaired(
    kind: Repair,
    spec: &ArchSpec,
    [a, b]: [&WeightSet; 2],
    fused: &WeightSet,
    alpha: f64,
    calibration: &Dataset,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<WeightSet, RepairError> {
    check(kind, spec)?;
    if kind == Repair::None || alpha == 0.0 || alpha == 1.0 {
        return Ok(fused.clone());
    }
    let data = calibration.head(REPAIR_SAMPLES);
    match kind {
        Repair::None => unreachable!("returned above"),
        Repair::ResetBn => reset_bn(spec, fused, &data, stop),
        Repair::Repair => rescale_units(spec, [a, b], fused, alpha, &data, stop),
    }
}

/// [`Repair::ResetBn`] on any weights — an input model too, which the pipeline leaves as it is
/// (resetting an input's statistics must keep its accuracy: a check that the recomputation
/// follows the graph).
///
/// # Errors
/// As [`repaired`].
pub fn reset_batch_norms(
    spec: &ArchSpec,
    weights: &WeightSet,
    calibration: &Dataset,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<WeightSet, RepairError> {
    check(Repair::ResetBn, spec)?;
    reset_bn(spec, weights, &calibration.head(REPAIR_SAMPLES), stop)
}

/// The ops value `end + 1` (op `end`'s output) depends on, then a flatten: a spec whose output
/// is that value, one row of `C·H·W` (or `n`) values per sample.
///
/// # Errors
/// [`ArchError`] of the spec's wiring.
pub fn prefix(spec: &ArchSpec, end: usize) -> Result<ArchSpec, ArchError> {
    let inputs = spec.op_inputs()?;
    let mut keep = BTreeSet::from([end]);
    for i in (0..=end).rev() {
        if keep.contains(&i) {
            keep.extend(inputs[i].iter().filter(|&&v| v > 0).map(|v| v - 1));
        }
    }
    // Dropping ops that `end` does not depend on never separates an op from the previous op
    // it reads implicitly: that op is kept too, and directly before it.
    let mut ops: Vec<Node> = keep.iter().map(|&i| spec.ops[i].clone()).collect();
    ops.push(Node::from(Op::Flatten {}));
    Ok(ArchSpec {
        name: format!("{}[..={end}]", spec.name),
        input: spec.input,
        ops,
    })
}

/// `weights` restricted to the tensors `spec` uses.
fn used_tensors(spec: &ArchSpec, weights: &WeightSet) -> WeightSet {
    let names: BTreeSet<&str> = spec.ops.iter().flat_map(|n| n.op.tensors()).collect();
    WeightSet {
        tensors: weights
            .tensors
            .iter()
            .filter(|(k, _)| names.contains(k.as_str()))
            .map(|(k, t)| (k.clone(), t.clone()))
            .collect(),
        metadata: Default::default(),
    }
}

/// Per-unit `(mean, biased variance, count)` of op `end`'s output over `data`: a channel's
/// values at every position of every sample, or a feature's over the samples.
fn unit_stats(
    spec: &ArchSpec,
    weights: &WeightSet,
    end: usize,
    data: &Dataset,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<(Vec<f64>, Vec<f64>, usize), RepairError> {
    let cut = prefix(spec, end)?;
    let net = Network::new(&cut, &used_tensors(&cut, weights))?;
    let graph = spec.graph_with(|n| weights.tensors.get(n).map(|t| t.data.shape().to_vec()))?;
    let units = graph.output_shape(end).units();
    let (mut sum, mut sq) = (vec![0.0f64; units], vec![0.0f64; units]);
    let mut count = 0;
    for start in (0..data.labels.len()).step_by(BATCH) {
        if stop() {
            return Err(RepairError::Canceled);
        }
        let end_row = (start + BATCH).min(data.labels.len());
        let out = net.logits(data.images.slice(s![start..end_row, ..]));
        let per_unit = out.ncols() / units;
        for row in out.axis_iter(Axis(0)) {
            let row = row.as_slice().expect("standard layout");
            for (u, values) in row.chunks_exact(per_unit).enumerate() {
                for &v in values {
                    let v = f64::from(v);
                    sum[u] += v;
                    sq[u] += v * v;
                }
            }
        }
        count += (end_row - start) * per_unit;
    }
    let n = count.max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let var = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| (q / n - m * m).max(0.0))
        .collect();
    Ok((mean, var, count))
}

/// Overwrite the 1-D tensor `name` with `values`.
fn set_vector(w: &mut WeightSet, name: &str, values: &[f64]) {
    let t = w.tensors.get_mut(name).expect("validated tensor");
    for (d, &v) in t.data.iter_mut().zip(values) {
        *d = v;
    }
}

/// [`Repair::ResetBn`] (see the module doc).
fn reset_bn(
    spec: &ArchSpec,
    fused: &WeightSet,
    data: &Dataset,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<WeightSet, RepairError> {
    let inputs = spec.op_inputs()?;
    let mut w = fused.clone();
    for (i, node) in spec.ops.iter().enumerate() {
        let Some([_, _, mean_name, var_name]) = node.op.batchnorm_tensors() else {
            continue;
        };
        let v = inputs[i][0];
        let (mean, var, count) = match v {
            0 => input_stats(data, spec.input[0]),
            v => unit_stats(spec, &w, v - 1, data, stop)?,
        };
        let unbias = count as f64 / (count.max(2) - 1) as f64;
        let var: Vec<f64> = var.iter().map(|x| x * unbias).collect();
        set_vector(&mut w, mean_name, &mean);
        set_vector(&mut w, var_name, &var);
    }
    Ok(w)
}

/// Per-channel statistics of the input samples themselves.
fn input_stats(data: &Dataset, channels: usize) -> (Vec<f64>, Vec<f64>, usize) {
    let per = data.images.ncols() / channels;
    let (mut sum, mut sq) = (vec![0.0f64; channels], vec![0.0f64; channels]);
    for row in data.images.axis_iter(Axis(0)) {
        for (i, &v) in row.iter().enumerate() {
            let u = i / per;
            sum[u] += f64::from(v);
            sq[u] += f64::from(v) * f64::from(v);
        }
    }
    let n = (data.labels.len() * per).max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let var = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| (q / n - m * m).max(0.0))
        .collect();
    (mean, var, data.labels.len() * per)
}

/// Where a hidden layer's units are measured and corrected.
struct Site {
    /// The op whose output is measured.
    measured: usize,
    /// Row `u` of this tensor (axis 0) is scaled by unit `u`'s factor.
    scale: String,
    /// This vector is shifted, when there is one.
    shift: Option<String>,
}

/// The hidden layers' sites, in op order: every conv/linear but the last.
fn sites(spec: &ArchSpec) -> Result<Vec<Site>, ArchError> {
    let inputs = spec.op_inputs()?;
    let mut readers = vec![Vec::new(); spec.ops.len() + 1];
    for (i, ins) in inputs.iter().enumerate() {
        for &v in ins {
            readers[v].push(i);
        }
    }
    let layers: Vec<usize> = (0..spec.ops.len())
        .filter(|&i| matches!(spec.ops[i].op, Op::Conv2d { .. } | Op::Linear { .. }))
        .collect();
    let hidden = &layers[..layers.len().saturating_sub(1)];
    Ok(hidden
        .iter()
        .map(|&i| {
            let bn = match readers[i + 1].as_slice() {
                [r] => spec.ops[*r].op.batchnorm_tensors().map(|t| (*r, t)),
                _ => None,
            };
            match (bn, &spec.ops[i].op) {
                (Some((r, [weight, bias, ..])), _) => Site {
                    measured: r,
                    scale: weight.to_string(),
                    shift: Some(bias.to_string()),
                },
                (None, Op::Conv2d { weight, bias, .. } | Op::Linear { weight, bias }) => Site {
                    measured: i,
                    scale: weight.clone(),
                    shift: bias.clone(),
                },
                _ => unreachable!("layers are conv2d or linear"),
            }
        })
        .collect())
}

/// [`Repair::Repair`] (see the module doc).
fn rescale_units(
    spec: &ArchSpec,
    [a, b]: [&WeightSet; 2],
    fused: &WeightSet,
    alpha: f64,
    data: &Dataset,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<WeightSet, RepairError> {
    let mut w = fused.clone();
    for site in sites(spec)? {
        let (ma, va, _) = unit_stats(spec, a, site.measured, data, stop)?;
        let (mb, vb, _) = unit_stats(spec, b, site.measured, data, stop)?;
        let (mf, vf, _) = unit_stats(spec, &w, site.measured, data, stop)?;
        let mut factors = Vec::with_capacity(mf.len());
        let mut shifts = Vec::with_capacity(mf.len());
        for u in 0..mf.len() {
            let target_mean = (1.0 - alpha) * ma[u] + alpha * mb[u];
            let target_std = (1.0 - alpha) * va[u].sqrt() + alpha * vb[u].sqrt();
            let std = vf[u].sqrt();
            let f = if std > 1e-12 { target_std / std } else { 1.0 };
            factors.push(f);
            shifts.push((mf[u], target_mean));
        }
        let t = w.tensors.get_mut(&site.scale).expect("validated tensor");
        for (mut row, &f) in t.data.axis_iter_mut(Axis(0)).zip(&factors) {
            row.mapv_inplace(|v| v * f);
        }
        if let Some(name) = &site.shift {
            let t = w.tensors.get_mut(name).expect("validated tensor");
            for ((v, &f), &(mean, target)) in t.data.iter_mut().zip(&factors).zip(&shifts) {
                *v = f * (*v - mean) + target;
            }
        }
    }
    Ok(w)
}
