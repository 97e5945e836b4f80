//! Weight matching (Git Re-Basin: Ainsworth, Hayase & Srinivasa, ICLR 2023), as DESIGN.md
//! specifies it.
//!
//! Coordinate ascent on `J(π) = Σ_T ⟨W_B[T], π(W_A)[T]⟩` over every tensor `T` a group's
//! permutation touches. Start from the identity; sweep the groups in layer order (or a seeded
//! random order); for group `g` build
//! `S[a, b] = Σ_{axes of g} ⟨A's unit a, B's unit b⟩` with every other group's current
//! permutation applied to A (a tensor seen with `g`'s axis as rows: biases are one column, conv
//! kernels and the `H·W` blocks after a flatten are flattened into the columns); solve the LAP
//! maximising `Σ S[a, π(a)]`; stop after a sweep in which no group changed, or after
//! `max_sweeps`. A group is re-solved only when a group it shares a tensor with changed since
//! its last solve (otherwise its `S`, and so its answer, is the same). A new permutation is
//! taken only when it raises the group's score, so `J` never decreases and the sweeps end.
//!
//! Each group keeps its own [`Lap`], so every solve after the group's first starts from the
//! last one's assignment and prices (a few augmentations instead of a cold 1024² solve).

use std::collections::BTreeSet;

use ndarray::Array2;

use super::MethodId;
use super::gram::{add_abt, rows};
use super::merge_many::merge_many;
use super::{Alignment, ManyAlignment, ManyInput, Method, MethodError, MethodInput};
use crate::arch::PermStructure;
use crate::fusion::{FusionError, permute_group};
use crate::pipeline::Stage;
use crate::solvers::Lap;
use crate::weights::WeightSet;

/// Weight matching as a [`Method`].
pub struct WeightMatching;

impl Method for WeightMatching {
    fn align(&self, input: &MethodInput<'_>) -> Result<Alignment, MethodError> {
        let stage = Stage::Align(MethodId::WeightMatching);
        let params = WmParams {
            max_sweeps: input.params.max_sweeps,
            seed: input.params.seed,
        };
        let observer = input.observer;
        let r = weight_matching(input.structure, input.models, &params, &|sweep| {
            observer.progress(stage, sweep as f64 / params.max_sweeps as f64);
            observer.should_stop()
        })?;
        Ok(Alignment {
            objective: r.objectives.last().copied().unwrap_or(r.initial),
            iterations: r.objectives.len(),
            objectives: r.objectives,
            perms: r.perms,
            stages: Vec::new(),
        })
    }

    fn align_many(&self, input: &ManyInput<'_>) -> Option<Result<ManyAlignment, MethodError>> {
        let stage = Stage::Align(MethodId::WeightMatching);
        let params = WmParams {
            max_sweeps: input.params.max_sweeps,
            seed: input.params.seed,
        };
        let observer = input.observer;
        Some(merge_many(
            input.structure,
            input.models,
            &params,
            &|round| {
                observer.progress(stage, round as f64 / params.max_sweeps as f64);
                observer.should_stop()
            },
        ))
    }
}

/// Sweeps at most, and the group order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WmParams {
    /// At least 1.
    pub max_sweeps: usize,
    /// `None`: layer order; `Some(seed)`: a fresh random order each sweep from this seed.
    pub seed: Option<u64>,
}

impl Default for WmParams {
    fn default() -> Self {
        WmParams {
            max_sweeps: 100,
            seed: None,
        }
    }
}

/// The permutations found and the objective `J` along the way.
#[derive(Clone, Debug, PartialEq)]
pub struct WmResult {
    /// One per group: `perm[i] = j` puts model 1's unit `i` at model 2's unit `j`.
    pub perms: Vec<Vec<usize>>,
    /// `J` at the start (the identity, or `init`).
    pub initial: f64,
    /// `J` after each sweep.
    pub objectives: Vec<f64>,
}

/// One axis a group acts on, with model 2's rows for it and its last product.
///
/// `S` is built in `f32` (the models' own precision; `f64` for the LAP and the objective): the
/// products are 2.5× faster on this machine, and the inputs were `f32` to begin with. A term
/// keeps A's rows (in A's unit order, so only the *other* groups' permutations move them: they
/// move its columns) and its product; when few columns moved since, the product is updated by
/// the difference on those columns instead of recomputed — late sweeps change a handful of
/// units, and this turns most of their `n²·d` products into `n²·k` ones (up to half the
/// columns: the skinny product is still cheaper). Every [`FULL_EVERY`]-th update is a full
/// product, so rounding does not drift.
struct Term {
    tensor: String,
    axis: usize,
    block: usize,
    b_rows: Array2<f32>,
    /// A's rows as last multiplied, their product with `b_rows`, updates since a full product.
    last: Option<(Array2<f32>, Array2<f32>, usize)>,
}

/// Incremental updates of a term's product between two full ones (a term whose rows did not
/// change keeps its product as it is, and that is no update).
const FULL_EVERY: usize = 16;

impl Term {
    /// `a · b_rowsᵀ` for A's rows `a` (`n × d`), from the last product when at most a quarter
    /// of the columns changed.
    fn product(&mut self, a: Array2<f32>) -> &Array2<f32> {
        let (n, d) = a.dim();
        let m = self.b_rows.nrows();
        let full = |a: &Array2<f32>, b: &Array2<f32>| {
            let mut s = Array2::<f32>::zeros((n, m));
            add_abt(&mut s, a.view(), b.view());
            s
        };
        let next = match self.last.take() {
            Some((prev, s, updates)) if a == prev => (prev, s, updates),
            Some((prev, mut s, updates)) if updates + 1 < FULL_EVERY => {
                let moved = changed_columns(&prev, &a);
                if moved.len() * 2 <= d {
                    let diff = Array2::from_shape_fn((n, moved.len()), |(i, k)| {
                        a[[i, moved[k]]] - prev[[i, moved[k]]]
                    });
                    let b = self.b_rows.select(ndarray::Axis(1), &moved);
                    add_abt(&mut s, diff.view(), b.view());
                    (a, s, updates + 1)
                } else {
                    let s = full(&a, &self.b_rows);
                    (a, s, 0)
                }
            }
            _ => {
                let s = full(&a, &self.b_rows);
                (a, s, 0)
            }
        };
        &self.last.insert(next).1
    }
}

/// The columns where `a` and `b` (same shape) differ, in order.
fn changed_columns(a: &Array2<f32>, b: &Array2<f32>) -> Vec<usize> {
    let mut moved = vec![false; a.ncols()];
    for (ra, rb) in a.rows().into_iter().zip(b.rows()) {
        for ((m, x), y) in moved.iter_mut().zip(ra).zip(rb) {
            *m |= x != y;
        }
    }
    (0..moved.len()).filter(|&c| moved[c]).collect()
}

/// Run weight matching of `models[0]` onto `models[1]`, both valid for `structure`.
/// `before_sweep(k)` is called before sweep `k` (0-based) and answers whether to stop.
///
/// # Errors
/// [`MethodError::Fusion`] for a missing tensor or different shapes; [`MethodError::Canceled`].
pub fn weight_matching(
    structure: &PermStructure,
    models: [&WeightSet; 2],
    params: &WmParams,
    before_sweep: &dyn Fn(usize) -> bool,
) -> Result<WmResult, MethodError> {
    let identity: Vec<Vec<usize>> = structure
        .hidden
        .iter()
        .map(|g| (0..g.size).collect())
        .collect();
    weight_matching_from(structure, models, params, &identity, before_sweep)
}

/// [`weight_matching`] started from the permutations `init` (one per group) instead of the
/// identity — MergeMany's inner step, which refines each model's current alignment.
///
/// # Errors
/// As [`weight_matching`]; [`MethodError::Fusion`] when `init` does not fit `structure`.
pub fn weight_matching_from(
    structure: &PermStructure,
    models: [&WeightSet; 2],
    params: &WmParams,
    init: &[Vec<usize>],
    before_sweep: &dyn Fn(usize) -> bool,
) -> Result<WmResult, MethodError> {
    assert!(params.max_sweeps >= 1, "at least one sweep");
    let groups = &structure.hidden;
    let tensor = |w: &WeightSet, name: &str| {
        w.tensors
            .get(name)
            .map(|t| t.data.clone())
            .ok_or_else(|| FusionError::Missing(name.to_string()))
    };
    let mut terms: Vec<Vec<Term>> = Vec::with_capacity(groups.len());
    let mut touched = BTreeSet::new();
    for g in groups {
        let mut ts = Vec::with_capacity(g.axes.len());
        for ax in &g.axes {
            let (a, b) = (
                tensor(models[0], &ax.tensor)?,
                tensor(models[1], &ax.tensor)?,
            );
            if a.shape() != b.shape() {
                return Err(FusionError::ShapeMismatch {
                    name: ax.tensor.clone(),
                    a: a.shape().to_vec(),
                    b: b.shape().to_vec(),
                }
                .into());
            }
            touched.insert(ax.tensor.clone());
            ts.push(Term {
                tensor: ax.tensor.clone(),
                axis: ax.axis,
                block: ax.block,
                b_rows: rows(&b, ax.axis, ax.block, g.size, None),
                last: None,
            });
        }
        terms.push(ts);
    }
    // Groups that share a tensor with group g: a change of theirs changes g's S.
    let neighbours: Vec<Vec<usize>> = (0..groups.len())
        .map(|g| {
            (0..groups.len())
                .filter(|&h| {
                    h != g
                        && terms[h]
                            .iter()
                            .any(|t| terms[g].iter().any(|u| u.tensor == t.tensor))
                })
                .collect()
        })
        .collect();
    let objective = |cur: &WeightSet| -> f64 {
        touched
            .iter()
            .map(|n| {
                let (a, b) = (&cur.tensors[n].data, &models[1].tensors[n].data);
                match (a.as_slice(), b.as_slice()) {
                    // The same sum in the same order, without ndarray's iterator.
                    (Some(a), Some(b)) => a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>(),
                    _ => a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>(),
                }
            })
            .sum()
    };

    let mut cur = crate::fusion::permute(structure, models[0], init)?;
    let mut perms: Vec<Vec<usize>> = init.to_vec();
    let mut stale = vec![true; groups.len()];
    // One LAP solver per group, warm-started from that group's last solve.
    let mut laps = vec![Lap::new(); groups.len()];
    let initial = objective(&cur);
    let mut objectives = Vec::new();
    let mut rng = params.seed.map(Lcg);
    for sweep in 0..params.max_sweeps {
        if before_sweep(sweep) {
            return Err(MethodError::Canceled);
        }
        let mut order: Vec<usize> = (0..groups.len()).collect();
        if let Some(r) = rng.as_mut() {
            r.shuffle(&mut order);
        }
        let mut changed = false;
        for &g in &order {
            if !std::mem::replace(&mut stale[g], false) {
                continue;
            }
            let n = groups[g].size;
            // S[a, b]: A's unit a (at position perms[g][a] in the current A) against B's unit b.
            let mut s = Array2::<f64>::zeros((n, n));
            for t in &mut terms[g] {
                let a_rows = rows(
                    &cur.tensors[&t.tensor].data,
                    t.axis,
                    t.block,
                    n,
                    Some(&perms[g]),
                );
                s.zip_mut_with(t.product(a_rows), |x, &y| *x += f64::from(y));
            }
            let old: f64 = perms[g].iter().enumerate().map(|(a, &b)| s[[a, b]]).sum();
            let (new_score, new) = laps[g].solve(s.view())?;
            if new != perms[g] && new_score > old + 1e-12 * old.abs().max(1.0) {
                // Move unit a from position perms[g][a] to new[a].
                let mut delta = vec![0; n];
                for (a, &p) in perms[g].iter().enumerate() {
                    delta[p] = new[a];
                }
                permute_group(&mut cur, &groups[g], &delta)?;
                perms[g] = new;
                changed = true;
                for &h in &neighbours[g] {
                    stale[h] = true;
                }
            }
        }
        objectives.push(objective(&cur));
        if !changed {
            break;
        }
    }
    Ok(WmResult {
        perms,
        initial,
        objectives,
    })
}

/// A small deterministic generator for the optional random group order.
pub(super) struct Lcg(pub(super) u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub(super) fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
#[path = "weight_matching_tests.rs"]
pub(crate) mod tests;
