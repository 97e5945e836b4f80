//! One term of a group's score matrix in weight matching: a tensor axis the group acts on,
//! with model 2's rows for it, model 1's rows as last multiplied, and their product.
//!
//! `S` is built in `f32` (the models' own precision; `f64` for the LAP and the objective): the
//! products are 2.5× faster on this machine, and the inputs were `f32` to begin with. A term
//! keeps A's rows in A's unit order, so only the *other* groups' permutations move them, and
//! they move its columns: the term is told of each move ([`Term::shift`]) and records it as a
//! pending column permutation (`O(d)`), instead of the rows being copied out of the permuted
//! model again before every solve. The next product then knows which columns can have changed
//! and compares only those. When few columns moved, the product is updated by the difference
//! on those columns instead of recomputed — late sweeps change a handful of units, and this
//! turns most of their `n²·d` products into `n²·k` ones (up to half the columns: the skinny
//! product is still cheaper). Every [`FULL_EVERY`]-th update is a full product, so rounding
//! does not drift.
//!
//! The rows, the columns found changed, and so every product are the ones the extraction
//! gave (values are only copied): the scores, and the permutations, are bit for bit the same.

use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayD, Axis};

use crate::arch::{AxisRef, PermStructure};
use crate::methods::gram::{add_abt, rows};
use crate::weights::WeightSet;

/// One [`Term`] per axis of every group of `structure`, from A as permuted so far (`models[0]`,
/// group `g`'s units in the order `order[g]`) and B.
pub(super) fn terms(
    structure: &PermStructure,
    models: [&WeightSet; 2],
    order: &[Vec<usize>],
) -> Vec<Vec<Term>> {
    let groups = &structure.hidden;
    let axes = || {
        (groups.iter().enumerate()).flat_map(|(h, group)| group.axes.iter().map(move |x| (h, x)))
    };
    let term = |(g, ax): (usize, &AxisRef)| {
        // Every other group axis of the tensor moves this term's columns.
        let others: Vec<(usize, usize, usize)> = axes()
            .filter(|(h, x)| x.tensor == ax.tensor && (*h, x.axis) != (g, ax.axis))
            .map(|(h, x)| (h, x.axis, x.block))
            .collect();
        Term::new(
            &ax.tensor,
            (
                &models[0].tensors[&ax.tensor].data,
                &models[1].tensors[&ax.tensor].data,
            ),
            (ax.axis, ax.block, groups[g].size),
            &order[g],
            &others,
        )
    };
    (0..groups.len())
        .map(|g| groups[g].axes.iter().map(|ax| term((g, ax))).collect())
        .collect()
}

/// Incremental updates of a term's product between two full ones (a term whose rows did not
/// change keeps its product as it is, and that is no update).
const FULL_EVERY: usize = 16;

/// One axis a group acts on; see the module documentation.
pub(super) struct Term {
    pub(super) tensor: String,
    b_rows: Array2<f32>,
    /// A's rows (`n × d`) as last multiplied, or as extracted before the first product.
    a: Array2<f32>,
    /// The pending moves: A's rows now are `a` with column `c` taken from column `sigma[c]`.
    sigma: Vec<usize>,
    /// `a · b_rowsᵀ` and the updates since it was last computed in full.
    last: Option<(Array2<f32>, usize)>,
    /// The tensor's axes of groups other than this term's own axis.
    shifts: Vec<Shift>,
}

/// An axis of the term's tensor owned by `group` (`len` entries, a unit owns `block` of them)
/// as it indexes the term's columns: column `c` sits at `(c / stride) % len` along it.
struct Shift {
    group: usize,
    stride: usize,
    len: usize,
    block: usize,
}

impl Term {
    /// The term of axis `axis` (units of `block` entries, `n` of them) of tensor `name`, from
    /// A's tensor `a` as permuted so far (its units on this axis in the order `order`) and B's
    /// `b`. `others` lists `(group, axis, block)` for every other group axis of the tensor.
    pub(super) fn new(
        name: &str,
        (a, b): (&ArrayD<f64>, &ArrayD<f64>),
        (axis, block, n): (usize, usize, usize),
        order: &[usize],
        others: &[(usize, usize, usize)],
    ) -> Self {
        let shape = a.shape();
        let post: usize = shape[axis + 1..].iter().product::<usize>() * block;
        let shifts = others
            .iter()
            .map(|&(group, ax, block)| {
                // Columns run over the leading axes, then the unit's block and the trailing
                // axes (see `rows`).
                let stride = if ax < axis {
                    shape[ax + 1..axis].iter().product::<usize>() * post
                } else {
                    shape[ax + 1..].iter().product::<usize>()
                };
                Shift {
                    group,
                    stride,
                    len: shape[ax],
                    block,
                }
            })
            .collect();
        let a = rows(a, axis, block, n, Some(order));
        Term {
            tensor: name.to_string(),
            b_rows: rows(b, axis, block, n, None),
            sigma: (0..a.ncols()).collect(),
            a,
            last: None,
            shifts,
        }
    }

    /// Group `group`'s units moved: the one at position `p` went to `delta[p]`.
    pub(super) fn shift(&mut self, group: usize, delta: &[usize]) {
        for sh in self.shifts.iter().filter(|s| s.group == group) {
            // Index `delta[p]·block + r` along the axis now holds what `p·block + r` held.
            let mut src = vec![0; sh.len];
            for (p, &q) in delta.iter().enumerate() {
                for r in 0..sh.block {
                    src[q * sh.block + r] = p * sh.block + r;
                }
            }
            let before = self.sigma.clone();
            for (c, s) in self.sigma.iter_mut().enumerate() {
                let m = (c / sh.stride) % sh.len;
                *s = before[c - m * sh.stride + src[m] * sh.stride];
            }
        }
    }

    /// A's rows as they are now (`a` with the pending moves).
    #[cfg(test)]
    pub(super) fn current_rows(&self) -> Array2<f32> {
        self.a.select(Axis(1), &self.sigma)
    }

    /// A's current rows times `b_rowsᵀ`, from the last product when at most half of the
    /// columns changed.
    pub(super) fn product(&mut self) -> &Array2<f32> {
        let (n, d) = self.a.dim();
        let moved = self.changed_columns();
        let next = match self.last.take() {
            Some(last) if moved.is_empty() => last,
            Some((mut s, updates)) if updates + 1 < FULL_EVERY && moved.len() * 2 <= d => {
                let (diff, b) = (self.differences(&moved), gather(&self.b_rows, &moved));
                add_abt(&mut s, diff.view(), b.view());
                self.apply_moves(&moved);
                (s, updates + 1)
            }
            _ => {
                self.apply_moves(&(0..d).collect::<Vec<_>>());
                let mut s = Array2::<f32>::zeros((n, self.b_rows.nrows()));
                add_abt(&mut s, self.a.view(), self.b_rows.view());
                (s, 0)
            }
        };
        // Every column not rewritten holds the values it would have been given.
        self.sigma.iter_mut().enumerate().for_each(|(c, s)| *s = c);
        &self.last.insert(next).0
    }

    /// The columns whose values the pending moves change, in order.
    fn changed_columns(&self) -> Vec<usize> {
        let sigma = &self.sigma;
        let mut open: Vec<usize> = (0..sigma.len()).filter(|&c| sigma[c] != c).collect();
        let mut moved = Vec::new();
        for row in self.a.rows() {
            if open.is_empty() {
                break;
            }
            open.retain(|&c| {
                let differs = row[sigma[c]] != row[c];
                if differs {
                    moved.push(c);
                }
                !differs
            });
        }
        moved.sort_unstable();
        moved
    }

    /// What the pending moves add to the columns `cols` of `a` (`n × cols.len()`).
    fn differences(&self, cols: &[usize]) -> Array2<f32> {
        let mut diff = Array2::zeros((self.a.nrows(), cols.len()));
        let sigma = &self.sigma;
        diff.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(self.a.axis_iter(Axis(0)))
            .for_each(|(mut out, row)| {
                for (o, &c) in out.iter_mut().zip(cols) {
                    *o = row[sigma[c]] - row[c];
                }
            });
        diff
    }

    /// Rewrite the columns `cols` of `a` by the pending moves.
    fn apply_moves(&mut self, cols: &[usize]) {
        let sigma = &self.sigma;
        self.a.axis_iter_mut(Axis(0)).into_par_iter().for_each_init(
            || vec![0f32; cols.len()],
            |taken, mut row| {
                for (t, &c) in taken.iter_mut().zip(cols) {
                    *t = row[sigma[c]];
                }
                for (&t, &c) in taken.iter().zip(cols) {
                    row[c] = t;
                }
            },
        );
    }
}

/// The columns `cols` of `m`, row by row in parallel.
fn gather(m: &Array2<f32>, cols: &[usize]) -> Array2<f32> {
    let mut out = Array2::zeros((m.nrows(), cols.len()));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(m.axis_iter(Axis(0)))
        .for_each(|(mut o, row)| {
            for (o, &c) in o.iter_mut().zip(cols) {
                *o = row[c];
            }
        });
    out
}
