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

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::MethodId;
use super::merge_many::merge_many;
use super::{Alignment, ManyAlignment, ManyInput, Method, MethodError, MethodInput};
use crate::arch::PermStructure;
use crate::fusion::FusionError;
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
    for g in groups {
        for ax in &g.axes {
            let (a, b) = (
                models[0]
                    .tensor(&ax.tensor)
                    .map_err(|_| missing(&ax.tensor))?,
                models[1]
                    .tensor(&ax.tensor)
                    .map_err(|_| missing(&ax.tensor))?,
            );
            if a.data.shape() != b.data.shape() {
                return Err(FusionError::ShapeMismatch {
                    name: ax.tensor.clone(),
                    a: a.data.shape().to_vec(),
                    b: b.data.shape().to_vec(),
                }
                .into());
            }
        }
    }
    // A as `init` leaves it (this also checks `init`), read once for the terms' first rows.
    let start = crate::fusion::permute(structure, models[0], init)?;
    let mut terms = term::terms(structure, [&start, models[1]], init);
    drop(start);
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
    let objective = Objective::new(structure, models);

    let mut perms: Vec<Vec<usize>> = init.to_vec();
    let mut stale = vec![true; groups.len()];
    // One LAP solver per group, warm-started from that group's last solve.
    let mut laps = vec![Lap::new(); groups.len()];
    // The scores of the group being solved (one buffer, reused).
    let mut buffer = Vec::new();
    let initial = objective.value(&perms);
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
            let s = scores(&mut terms[g], &mut buffer, n);
            let old: f64 = perms[g].iter().enumerate().map(|(a, &b)| s[[a, b]]).sum();
            let (new_score, new) = laps[g].solve(s)?;
            if new != perms[g] && new_score > old + 1e-12 * old.abs().max(1.0) {
                // Move unit a from position perms[g][a] to new[a].
                let mut delta = vec![0; n];
                for (a, &p) in perms[g].iter().enumerate() {
                    delta[p] = new[a];
                }
                for t in terms.iter_mut().flatten() {
                    t.shift(g, &delta);
                }
                perms[g] = new;
                changed = true;
                for &h in &neighbours[g] {
                    stale[h] = true;
                }
            }
        }
        objectives.push(objective.value(&perms));
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

/// Scores per task of the parallel sum in [`scores`].
const SUM_CHUNK: usize = 1 << 16;

fn missing(name: &str) -> MethodError {
    FusionError::Missing(name.to_string()).into()
}

/// `S = Σ_terms A_t·B_tᵀ` in `f64` (`n × n`, in `buffer`), each term's product brought up to
/// date first (in parallel); summed entry by entry from `0.0` in term order.
fn scores<'b>(terms: &mut [Term], buffer: &'b mut Vec<f64>, n: usize) -> ArrayView2<'b, f64> {
    buffer.resize(n * n, 0.0);
    let buffer = &mut buffer[..n * n];
    if terms.is_empty() {
        buffer.fill(0.0);
    }
    // The products first, side by side (a group's incoming and outgoing weights: the sgemm
    // kernels are single-threaded); each is computed as it would be alone, so the sum below,
    // in term order, is bit for bit what a sequential loop gives.
    terms.par_iter_mut().for_each(|t| {
        t.product();
    });
    for (k, t) in terms.iter_mut().enumerate() {
        let p = t.product();
        let p = p.as_slice().expect("a fresh product is contiguous");
        let chunks = buffer
            .par_chunks_mut(SUM_CHUNK)
            .zip(p.par_chunks(SUM_CHUNK));
        if k == 0 {
            // What `0.0 + y` gives, without clearing the buffer first.
            chunks.for_each(|(x, y)| {
                x.iter_mut()
                    .zip(y)
                    .for_each(|(x, &y)| *x = 0.0 + f64::from(y));
            });
        } else {
            chunks.for_each(|(x, y)| {
                x.iter_mut().zip(y).for_each(|(x, &y)| *x += f64::from(y));
            });
        }
    }
    ArrayView2::from_shape((n, n), &*buffer).expect("n² scores")
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

#[path = "weight_matching_objective.rs"]
mod objective;
#[path = "weight_matching_term.rs"]
mod term;

use objective::Objective;
use term::Term;
#[cfg(test)]
use term::terms;

#[cfg(test)]
#[path = "weight_matching_tests.rs"]
pub(crate) mod tests;
