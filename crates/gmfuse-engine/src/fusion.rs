//! Align one model onto another by permuting its hidden channels, and interpolate weights.
//!
//! A permutation `perm` of hidden group `k` (`perm[i] = j`: model 1's channel `i` goes to
//! position `j`) is applied to every tensor axis the group owns ([`PermGroup::axes`]): the
//! producer's output axis, its bias, and the consumer's input axis — in blocks of `H·W` when a
//! flatten sits between them. Such a permutation leaves the network's function unchanged.

use crate::arch::{PermGroup, PermStructure};
use crate::weights::{Tensor, WeightSet};

/// Why permutations or an interpolation could not be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FusionError {
    #[error("expected {expected} permutations (one per hidden layer), got {got}")]
    PermCount { expected: usize, got: usize },
    #[error("permutation of hidden layer {layer} is not a permutation of 0..{size}")]
    NotAPermutation { layer: usize, size: usize },
    #[error("tensor `{0}` is missing")]
    Missing(String),
    #[error("tensor `{name}` has shape {a:?} in model 1 and {b:?} in model 2")]
    ShapeMismatch {
        name: String,
        a: Vec<usize>,
        b: Vec<usize>,
    },
    #[error("proportion {0} is outside [0, 1]")]
    Proportion(f64),
    #[error(
        "averaging {models} models needs one finite, non-negative weight each with a positive sum, got {weights:?}"
    )]
    Weights { models: usize, weights: Vec<f64> },
}

fn is_permutation(p: &[usize]) -> bool {
    let mut seen = vec![false; p.len()];
    p.iter()
        .all(|&j| j < p.len() && !std::mem::replace(&mut seen[j], true))
}

/// `weights` with hidden group `k`'s channels moved by `perms[k]` for every `k`.
///
/// # Errors
/// [`FusionError`] for a wrong count, a non-permutation or a missing tensor.
pub fn permute(
    structure: &PermStructure,
    weights: &WeightSet,
    perms: &[Vec<usize>],
) -> Result<WeightSet, FusionError> {
    if perms.len() != structure.hidden.len() {
        return Err(FusionError::PermCount {
            expected: structure.hidden.len(),
            got: perms.len(),
        });
    }
    let mut out = weights.clone();
    for (layer, (group, perm)) in structure.hidden.iter().zip(perms).enumerate() {
        if perm.len() != group.size || !is_permutation(perm) {
            return Err(FusionError::NotAPermutation {
                layer,
                size: group.size,
            });
        }
        permute_group(&mut out, group, perm)?;
    }
    Ok(out)
}

/// Apply `perm` to every axis of `group` in `w`, in place (`perm` must be a permutation of
/// `0..group.size`).
pub(crate) fn permute_group(
    w: &mut WeightSet,
    group: &PermGroup,
    perm: &[usize],
) -> Result<(), FusionError> {
    for axis in &group.axes {
        let t = w
            .tensors
            .get_mut(&axis.tensor)
            .ok_or_else(|| FusionError::Missing(axis.tensor.clone()))?;
        // Destination index → source index along the axis.
        let mut src = vec![0; perm.len() * axis.block];
        for (i, &j) in perm.iter().enumerate() {
            for k in 0..axis.block {
                src[j * axis.block + k] = i * axis.block + k;
            }
        }
        t.data = gather(&t.data, axis.axis, &src);
    }
    Ok(())
}

/// `data` with index `d` along `axis` taken from index `src[d]`: `select` written as slice
/// copies (ndarray's generic `select` on dynamic-rank arrays dominated weight matching).
fn gather(data: &ndarray::ArrayD<f64>, axis: usize, src: &[usize]) -> ndarray::ArrayD<f64> {
    let shape = data.shape().to_vec();
    let pre: usize = shape[..axis].iter().product();
    let post: usize = shape[axis + 1..].iter().product();
    let len = shape[axis];
    debug_assert_eq!(src.len(), len);
    let std = data.as_standard_layout();
    let from = std.as_slice().expect("standard layout is contiguous");
    let mut out = vec![0.0; from.len()];
    for p in 0..pre {
        let (plane_in, plane_out) = (&from[p * len * post..], &mut out[p * len * post..]);
        for (d, &s) in src.iter().enumerate() {
            plane_out[d * post..(d + 1) * post]
                .copy_from_slice(&plane_in[s * post..(s + 1) * post]);
        }
    }
    ndarray::ArrayD::from_shape_vec(shape, out).expect("same shape")
}

/// `(1 − α)·a + α·b` tensor by tensor, with `b`'s names and dtypes (computed in `f64`).
///
/// # Errors
/// [`FusionError::Proportion`] for α outside [0, 1]; [`FusionError::Missing`] or
/// [`FusionError::ShapeMismatch`] when the models differ in tensors.
pub fn interpolate(a: &WeightSet, b: &WeightSet, alpha: f64) -> Result<WeightSet, FusionError> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(FusionError::Proportion(alpha));
    }
    let mut out = WeightSet {
        tensors: Default::default(),
        metadata: Default::default(),
    };
    for (name, tb) in &b.tensors {
        let ta = a
            .tensors
            .get(name)
            .ok_or_else(|| FusionError::Missing(name.clone()))?;
        if ta.data.shape() != tb.data.shape() {
            return Err(FusionError::ShapeMismatch {
                name: name.clone(),
                a: ta.data.shape().to_vec(),
                b: tb.data.shape().to_vec(),
            });
        }
        let data = &ta.data * (1.0 - alpha) + &tb.data * alpha;
        out.tensors.insert(
            name.clone(),
            Tensor {
                dtype: tb.dtype,
                data,
            },
        );
    }
    if let Some(extra) = a.tensors.keys().find(|k| !b.tensors.contains_key(*k)) {
        return Err(FusionError::Missing(extra.clone()));
    }
    Ok(out)
}

/// `Σ wᵢ·modelᵢ / Σ wᵢ` tensor by tensor, with the last model's names and dtypes (computed in
/// `f64`). The k-model counterpart of [`interpolate`].
///
/// # Errors
/// [`FusionError::Weights`] unless there is one finite, non-negative weight per model with a
/// positive sum; [`FusionError::Missing`] or [`FusionError::ShapeMismatch`] when the models
/// differ in tensors.
pub fn average(models: &[&WeightSet], weights: &[f64]) -> Result<WeightSet, FusionError> {
    let total: f64 = weights.iter().sum();
    if models.is_empty()
        || weights.len() != models.len()
        || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
        || !(total > 0.0 && total.is_finite())
    {
        return Err(FusionError::Weights {
            models: models.len(),
            weights: weights.to_vec(),
        });
    }
    let last = models[models.len() - 1];
    let mut out = WeightSet {
        tensors: Default::default(),
        metadata: Default::default(),
    };
    for (name, tl) in &last.tensors {
        let mut data = ndarray::ArrayD::<f64>::zeros(tl.data.raw_dim());
        for (m, &w) in models.iter().zip(weights) {
            let t = m
                .tensors
                .get(name)
                .ok_or_else(|| FusionError::Missing(name.clone()))?;
            if t.data.shape() != tl.data.shape() {
                return Err(FusionError::ShapeMismatch {
                    name: name.clone(),
                    a: t.data.shape().to_vec(),
                    b: tl.data.shape().to_vec(),
                });
            }
            data.scaled_add(w / total, &t.data);
        }
        out.tensors.insert(
            name.clone(),
            Tensor {
                dtype: tl.dtype,
                data,
            },
        );
    }
    for m in models {
        if let Some(extra) = m.tensors.keys().find(|k| !last.tensors.contains_key(*k)) {
            return Err(FusionError::Missing(extra.clone()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::affinity::tests::tiny;
    use ndarray::Axis;

    #[test]
    fn permutation_moves_producer_rows_bias_and_consumer_blocks() {
        let (spec, m, _) = tiny();
        let s = spec.validate(&m).unwrap();
        // Hidden 0: conv `c` (3 channels) → flatten (2x2 blocks) → `l1`; hidden 1: `l1` (4) → `l2`.
        let perms = vec![vec![2, 0, 1], vec![1, 0, 3, 2]];
        let p = permute(&s, &m, &perms).unwrap();
        let t = |w: &WeightSet, n: &str| w.tensors[n].data.clone();
        // conv channel 0 moved to position 2.
        assert_eq!(
            t(&p, "c.w").index_axis(Axis(0), 2),
            t(&m, "c.w").index_axis(Axis(0), 0)
        );
        assert_eq!(t(&p, "c.b")[[2]], t(&m, "c.b")[[0]]);
        // l1 input columns 0..4 (channel 0's 2x2 block) moved to columns 8..12.
        for k in 0..4 {
            assert_eq!(t(&p, "l1.w")[[1, 8 + k]], t(&m, "l1.w")[[0, k]]);
        }
        // l1 row 0 → row 1 (after its columns were permuted), l2 column 0 → column 1.
        assert_eq!(t(&p, "l1.b")[[1]], t(&m, "l1.b")[[0]]);
        assert_eq!(t(&p, "l2.w")[[1, 1]], t(&m, "l2.w")[[1, 0]]);
        assert_eq!(t(&p, "l2.w")[[0, 3]], t(&m, "l2.w")[[0, 2]]);
    }

    #[test]
    fn bad_permutations_are_rejected() {
        let (spec, m, _) = tiny();
        let s = spec.validate(&m).unwrap();
        assert_eq!(
            permute(&s, &m, &[vec![0, 1, 2]]),
            Err(FusionError::PermCount {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            permute(&s, &m, &[vec![0, 0, 1], vec![0, 1, 2, 3]]),
            Err(FusionError::NotAPermutation { layer: 0, size: 3 })
        );
    }

    #[test]
    fn interpolation_endpoints_are_exact_and_midpoint_averages() {
        let (_, a, b) = tiny();
        assert_eq!(interpolate(&a, &b, 0.0).unwrap(), a);
        assert_eq!(interpolate(&a, &b, 1.0).unwrap(), b);
        let mid = interpolate(&a, &b, 0.5).unwrap();
        let want = (&a.tensors["l1.w"].data + &b.tensors["l1.w"].data) / 2.0;
        assert_eq!(mid.tensors["l1.w"].data, want);
        assert_eq!(interpolate(&a, &b, 1.5), Err(FusionError::Proportion(1.5)));
    }

    #[test]
    fn weighted_average_of_two_equals_the_interpolation() {
        let (_, a, b) = tiny();
        let avg = average(&[&a, &b], &[3.0, 1.0]).unwrap();
        let want = interpolate(&a, &b, 0.25).unwrap();
        for (name, t) in &want.tensors {
            for (x, y) in t.data.iter().zip(&avg.tensors[name].data) {
                approx::assert_relative_eq!(*x, *y, max_relative = 1e-12);
            }
        }
        assert!(matches!(
            average(&[&a, &b], &[1.0, -1.0]),
            Err(FusionError::Weights { .. })
        ));
        assert!(matches!(
            average(&[&a], &[]),
            Err(FusionError::Weights { .. })
        ));
    }
}
