//! MergeMany (Ainsworth, Hayase & Srinivasa, ICLR 2023, algorithm 3): weight matching of k ≥ 3
//! models into one common frame.
//!
//! Every model starts unpermuted. A round visits the models (in order, or a seeded random order
//! each round); model `i` is weight-matched onto the uniform mean of the *other* models as
//! currently aligned, starting from its current permutations. The rounds stop after one in
//! which no model's permutations changed, or after `max_sweeps` rounds. Each inner step only
//! takes a permutation that raises `⟨π_i(W_i), Σ_{j≠i} π_j(W_j)⟩`, so the reported objective
//! `Σ_{i<j} ⟨π_i(W_i), π_j(W_j)⟩` (every tensor) never decreases and the rounds end.

use super::weight_matching::{Lcg, WmParams, weight_matching_from};
use super::{ManyAlignment, MethodError};
use crate::arch::PermStructure;
use crate::fusion::{average, permute};
use crate::weights::WeightSet;

/// Align `models` (k ≥ 2) jointly. `before_round(r)` is called before round `r` (and between
/// the inner sweeps) and answers whether to stop.
///
/// # Errors
/// [`MethodError::Fusion`] for models that do not fit `structure`; [`MethodError::Canceled`].
pub fn merge_many(
    structure: &PermStructure,
    models: &[&WeightSet],
    params: &WmParams,
    before_round: &dyn Fn(usize) -> bool,
) -> Result<ManyAlignment, MethodError> {
    let identity: Vec<Vec<usize>> = structure
        .hidden
        .iter()
        .map(|g| (0..g.size).collect())
        .collect();
    let mut perms = vec![identity; models.len()];
    let mut aligned: Vec<WeightSet> = models.iter().map(|m| (*m).clone()).collect();
    let mut rng = params.seed.map(Lcg);
    let mut objectives = Vec::new();
    let inner = WmParams {
        max_sweeps: params.max_sweeps,
        seed: None,
    };
    for round in 0..params.max_sweeps {
        if before_round(round) {
            return Err(MethodError::Canceled);
        }
        let mut order: Vec<usize> = (0..models.len()).collect();
        if let Some(r) = rng.as_mut() {
            r.shuffle(&mut order);
        }
        let mut changed = false;
        for &i in &order {
            let others: Vec<&WeightSet> = (0..models.len())
                .filter(|&j| j != i)
                .map(|j| &aligned[j])
                .collect();
            let uniform = vec![1.0; others.len()];
            let mean = average(&others, &uniform)?;
            let r =
                weight_matching_from(structure, [models[i], &mean], &inner, &perms[i], &|_| {
                    before_round(round)
                })?;
            if r.perms != perms[i] {
                aligned[i] = permute(structure, models[i], &r.perms)?;
                perms[i] = r.perms;
                changed = true;
            }
        }
        objectives.push(pairwise_objective(&aligned));
        if !changed {
            break;
        }
    }
    Ok(ManyAlignment {
        objective: objectives.last().copied().unwrap_or(0.0),
        iterations: objectives.len(),
        objectives,
        perms,
    })
}

/// `Σ_{i<j} ⟨W_i, W_j⟩` over every tensor.
fn pairwise_objective(models: &[WeightSet]) -> f64 {
    let mut total = 0.0;
    for (i, a) in models.iter().enumerate() {
        for b in &models[i + 1..] {
            for (name, ta) in &a.tensors {
                if let Some(tb) = b.tensors.get(name) {
                    total += ta
                        .data
                        .iter()
                        .zip(&tb.data)
                        .map(|(x, y)| x * y)
                        .sum::<f64>();
                }
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::weight_matching::tests::{mlp, shuffle};

    #[test]
    fn three_permuted_copies_land_in_one_frame() {
        // Three channel-shuffled copies of one model: MergeMany must put all three in one
        // frame, where they are equal, and the objective then is 3 · ⟨W, W⟩.
        let (s, m) = mlp(&[12, 16, 10, 4], 7);
        let copies: Vec<WeightSet> = (0..3u64)
            .map(|c| {
                let p: Vec<Vec<usize>> = s
                    .hidden
                    .iter()
                    .enumerate()
                    .map(|(k, g)| shuffle(g.size, 31 * c + k as u64))
                    .collect();
                permute(&s, &m, &p).unwrap()
            })
            .collect();
        let refs: Vec<&WeightSet> = copies.iter().collect();
        let r = merge_many(&s, &refs, &WmParams::default(), &|_| false).unwrap();
        let aligned: Vec<WeightSet> = (0..3)
            .map(|i| permute(&s, &copies[i], &r.perms[i]).unwrap())
            .collect();
        assert_eq!(aligned[0], aligned[1]);
        assert_eq!(aligned[1], aligned[2]);
        let norm2: f64 = m
            .tensors
            .values()
            .map(|t| t.data.iter().map(|x| x * x).sum::<f64>())
            .sum();
        approx::assert_relative_eq!(r.objective, 3.0 * norm2, max_relative = 1e-12);
        assert!(r.objectives.windows(2).all(|w| w[1] >= w[0] - 1e-9));
    }

    #[test]
    fn canceling_stops_before_the_first_round() {
        let (s, m) = mlp(&[6, 5, 3], 1);
        let r = merge_many(&s, &[&m, &m, &m], &WmParams::default(), &|_| true);
        assert_eq!(r, Err(MethodError::Canceled));
    }
}
