//! Batchnorm at plan time: each batchnorm becomes a per-channel affine map
//! `y = x·scale + shift` (`scale = γ/√(var + eps)`, `shift = β − mean·scale`, in `f64`), folded
//! into the convolution or linear layer right before it when that layer's output feeds the
//! batchnorm alone — then the network runs no extra step for it.

use ndarray::{ArrayD, Axis};

use crate::arch::{ArchError, ArchSpec, Graph, Op};
use crate::weights::WeightSet;

/// A batchnorm's per-channel `(scale, shift)`.
pub(super) fn bn_affine(op: &Op, weights: &WeightSet) -> (Vec<f64>, Vec<f64>) {
    let (Op::Batchnorm2d { eps, .. } | Op::Batchnorm1d { eps, .. }) = op else {
        unreachable!("called on batchnorms")
    };
    let t: Vec<&ArrayD<f64>> = op
        .tensors()
        .into_iter()
        .map(|n| &weights.tensors[n].data)
        .collect();
    let (gamma, beta, mean, var) = (t[0], t[1], t[2], t[3]);
    let scale: Vec<f64> = gamma
        .iter()
        .zip(var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    (scale, shift)
}

/// Refuse batchnorms whose statistics give no finite scale (`running_var + eps ≤ 0`).
///
/// # Errors
/// [`ArchError::BadTensor`] naming the running variance.
pub(super) fn check_bn(spec: &ArchSpec, weights: &WeightSet) -> Result<(), ArchError> {
    for op in spec.op_list() {
        if let Op::Batchnorm2d {
            running_var, eps, ..
        }
        | Op::Batchnorm1d {
            running_var, eps, ..
        } = op
        {
            let var = &weights.tensors[running_var].data;
            if !(eps.is_finite() && *eps >= 0.0) {
                return Err(ArchError::BadTensor {
                    name: running_var.clone(),
                    reason: format!("eps {eps} must be finite and non-negative"),
                });
            }
            let positive =
                |v: f64| (v + eps).partial_cmp(&0.0) == Some(std::cmp::Ordering::Greater);
            if let Some(v) = var.iter().find(|v| !positive(**v)) {
                return Err(ArchError::BadTensor {
                    name: running_var.clone(),
                    reason: format!("running_var + eps must be positive, got {v} + {eps}"),
                });
            }
        }
    }
    Ok(())
}

/// Per op: whether it is a batchnorm folded into the op before it (which it reads, and whose
/// output nothing else reads).
pub(super) fn folded(spec: &ArchSpec, graph: &Graph) -> Vec<bool> {
    let consumers = graph.consumers();
    let ops: Vec<&Op> = spec.op_list().collect();
    (0..ops.len())
        .map(|i| {
            matches!(ops[i], Op::Batchnorm2d { .. } | Op::Batchnorm1d { .. })
                && i > 0
                && matches!(ops[i - 1], Op::Conv2d { .. } | Op::Linear { .. })
                && graph.inputs[i] == [i]
                && consumers[i] == [i]
        })
        .collect()
}

/// A layer's weight (output channels on axis 0) and bias with `(scale, shift)` applied to its
/// outputs: `W'[o] = W[o]·scale[o]`, `b'[o] = b[o]·scale[o] + shift[o]`.
pub(super) fn fold_into(
    weight: &ArrayD<f64>,
    bias: Option<&ArrayD<f64>>,
    (scale, shift): &(Vec<f64>, Vec<f64>),
) -> (ArrayD<f64>, ArrayD<f64>) {
    let mut w = weight.clone();
    for (mut row, s) in w.axis_iter_mut(Axis(0)).zip(scale) {
        row.mapv_inplace(|v| v * s);
    }
    let b = (0..scale.len())
        .map(|o| bias.map_or(0.0, |b| b[[o]]) * scale[o] + shift[o])
        .collect::<Vec<_>>();
    (
        w,
        ArrayD::from_shape_vec(vec![scale.len()], b).expect("one per channel"),
    )
}
