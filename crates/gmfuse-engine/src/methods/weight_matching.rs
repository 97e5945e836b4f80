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

use std::collections::BTreeSet;

use ndarray::Array2;

use super::MethodId;
use super::gram::{add_abt, rows};
use super::{Alignment, Method, MethodError, MethodInput};
use crate::arch::PermStructure;
use crate::fusion::{FusionError, permute_group};
use crate::pipeline::Stage;
use crate::solvers::hungarian;
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
    /// `J` at the identity.
    pub initial: f64,
    /// `J` after each sweep.
    pub objectives: Vec<f64>,
}

/// One axis a group acts on, with model 2's rows for it.
struct Term {
    tensor: String,
    axis: usize,
    block: usize,
    b_rows: Array2<f64>,
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
                b_rows: rows(&b, ax.axis, ax.block, g.size),
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
                a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>()
            })
            .sum()
    };

    let mut cur = models[0].clone();
    let mut perms: Vec<Vec<usize>> = groups.iter().map(|g| (0..g.size).collect()).collect();
    let mut stale = vec![true; groups.len()];
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
            // S over positions of the current (permuted) A, then re-indexed by A's units.
            let mut s_pos = Array2::zeros((n, n));
            for t in &terms[g] {
                let a_rows = rows(&cur.tensors[&t.tensor].data, t.axis, t.block, n);
                add_abt(&mut s_pos, a_rows.view(), t.b_rows.view());
            }
            let s = s_pos.select(ndarray::Axis(0), &perms[g]);
            let old: f64 = perms[g].iter().enumerate().map(|(a, &b)| s[[a, b]]).sum();
            let (new_score, new) = hungarian(s.view())?;
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
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
#[path = "weight_matching_tests.rs"]
pub(crate) mod tests;
