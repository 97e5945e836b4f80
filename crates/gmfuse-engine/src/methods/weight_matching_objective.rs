//! Weight matching's objective `J(π) = Σ_T ⟨W_B[T], π(W_A)[T]⟩`, read through the
//! permutations instead of from a permuted copy of A: keeping that copy up to date moved whole
//! tensors after every accepted solve, and it served nothing else.
//!
//! The sum runs over each tensor's entries in its own order, tensor by tensor in name order,
//! exactly as it did over the permuted copy, so `J` is bit for bit the same.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use rayon::prelude::*;

use crate::arch::PermStructure;
use crate::weights::WeightSet;

/// The tensors some group acts on, with the axes each group owns.
pub(super) struct Objective<'a> {
    /// Per tensor, in name order.
    tensors: BTreeMap<&'a str, Touched<'a>>,
}

/// A tensor's data in A and in B, and `(group, axis, block)` for each axis a group owns.
type Touched<'a> = (&'a ArrayD<f64>, &'a ArrayD<f64>, Vec<(usize, usize, usize)>);

impl<'a> Objective<'a> {
    /// The objective of `models` for `structure` (every tensor present, shapes equal: the
    /// caller checked).
    pub(super) fn new(structure: &'a PermStructure, models: [&'a WeightSet; 2]) -> Self {
        let mut tensors = BTreeMap::new();
        for (g, group) in structure.hidden.iter().enumerate() {
            for ax in &group.axes {
                let name = ax.tensor.as_str();
                tensors
                    .entry(name)
                    .or_insert_with(|| {
                        (
                            &models[0].tensors[name].data,
                            &models[1].tensors[name].data,
                            Vec::new(),
                        )
                    })
                    .2
                    .push((g, ax.axis, ax.block));
            }
        }
        Objective { tensors }
    }

    /// `J` with group `g`'s unit `i` of A at position `perms[g][i]`.
    pub(super) fn value(&self, perms: &[Vec<usize>]) -> f64 {
        // Tensor by tensor in parallel; the tensors' sums are added in order.
        let terms: Vec<f64> = self
            .tensors
            .values()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(a, b, axes)| tensor_term(a, b, axes, perms))
            .collect();
        terms.into_iter().sum()
    }
}

/// `⟨b, π(a)⟩` summed in `b`'s logical order.
fn tensor_term(
    a: &ArrayD<f64>,
    b: &ArrayD<f64>,
    axes: &[(usize, usize, usize)],
    perms: &[Vec<usize>],
) -> f64 {
    let shape = a.shape();
    let rank = shape.len();
    let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
    let (a, b) = (
        a.as_slice().expect("standard layout"),
        b.as_slice().expect("standard layout"),
    );
    if rank == 0 {
        return a.iter().zip(b).map(|(x, y)| x * y).sum();
    }
    // Per axis, the offset in `a` of each index of the permuted tensor.
    let mut stride = 1;
    let mut offsets = vec![Vec::new(); rank];
    for k in (0..rank).rev() {
        let mut src: Vec<usize> = (0..shape[k]).collect();
        for &(g, _, block) in axes.iter().filter(|&&(_, axis, _)| axis == k) {
            for (i, &j) in perms[g].iter().enumerate() {
                for r in 0..block {
                    src[j * block + r] = i * block + r;
                }
            }
        }
        offsets[k] = src.iter().map(|&s| s * stride).collect();
        stride *= shape[k];
    }
    let width = shape[rank - 1];
    // `Iterator::sum`'s start: the value of an empty sum.
    let mut sum = -0.0;
    if width == 0 {
        return sum;
    }
    // Along the last axis A's row is read in order and scattered into `row_a` (in cache)
    // rather than gathered: a gather missed the cache on almost every entry.
    let mut to = vec![0; width];
    for (d, &s) in offsets[rank - 1].iter().enumerate() {
        to[s] = d;
    }
    let mut row_a = vec![0.0; width];
    // An odometer over the leading axes; one `b` row of `width` entries per step.
    let mut index = vec![0; rank - 1];
    for row in b.chunks_exact(width) {
        let base: usize = index.iter().zip(&offsets).map(|(&i, o)| o[i]).sum();
        for (&x, &d) in a[base..][..width].iter().zip(&to) {
            row_a[d] = x;
        }
        for (x, y) in row_a.iter().zip(row) {
            sum += x * y;
        }
        for k in (0..rank - 1).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    sum
}
