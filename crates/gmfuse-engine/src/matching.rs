//! Graph matching of two networks: affinity → spectral matching → per-layer Hungarian.
//!
//! The eigenvector `v` of the affinity is read back into a node-to-node score matrix `X`
//! block by block (one block per node group), and each hidden block is turned into a
//! permutation by [`hungarian`]. The input and output groups stay fixed.
//!
//! Two conventions:
//! - [`Convention::Consistent`] (default): a symmetric affinity and `X[i, j] = v[(i, j)]`, the
//!   pair order the affinity was built with.
//! - [`Convention::PygmtoolsExample`]: the example's one-directional affinity, and pygmtools'
//!   column-major read-back `X[i, j] = v[(j, i)]` of a row-major vector — so the permutation
//!   applied is the inverse of the one meant.

use std::time::Instant;

use ndarray::ArrayView2;

use crate::affinity::{Affinity, Direction};
use crate::arch::PermStructure;
use crate::solvers::{SmParams, SolveError, hungarian, sm};
use crate::weights::{WeightSet, WeightsError};

/// How the affinity is laid out and the eigenvector read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    Consistent,
    PygmtoolsExample,
}

/// The matching of model 1's hidden channels onto model 2's.
#[derive(Clone, Debug, PartialEq)]
pub struct Matching {
    /// One permutation per hidden group: `perms[k][i] = j`.
    pub perms: Vec<Vec<usize>>,
    /// `vᵀKv` of the final eigenvector estimate.
    pub objective: f64,
    /// `vᵀKv` of the iterate each power step started from.
    pub objectives: Vec<f64>,
    pub iterations: usize,
    /// Node count per group (input, hidden…, output).
    pub group_sizes: Vec<usize>,
    /// Stored nonzeros and bytes of the affinity operator.
    pub affinity_nnz: usize,
    pub affinity_bytes: usize,
    /// Seconds in the affinity build, the power iteration and the assignments.
    pub seconds: [f64; 3],
}

/// Why a matching failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MatchError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Solve(#[from] SolveError),
}

/// Match `models[0]` onto `models[1]`; both must be valid for `structure`.
///
/// # Errors
/// [`MatchError`]; [`SolveError::Canceled`] when `stop()` turns true.
pub fn match_models(
    structure: &PermStructure,
    models: [&WeightSet; 2],
    convention: Convention,
    params: SmParams,
    stop: &dyn Fn() -> bool,
) -> Result<Matching, MatchError> {
    let t0 = Instant::now();
    let direction = match convention {
        Convention::Consistent => Direction::Symmetric,
        Convention::PygmtoolsExample => Direction::PreFromCur,
    };
    let k = Affinity::build(structure, models, direction)?;
    let t1 = Instant::now();
    let n = structure.n_nodes();
    let result = sm(&k, n * n, params, stop)?;
    let t2 = Instant::now();
    let sizes = k.group_sizes().to_vec();
    let mut perms = Vec::with_capacity(structure.hidden.len());
    for (g, &s) in sizes.iter().enumerate().take(sizes.len() - 1).skip(1) {
        let block = ArrayView2::from_shape((s, s), &result.v[k.group_offset(g)..][..s * s])
            .expect("group block has s² entries");
        let x = match convention {
            Convention::Consistent => block,
            Convention::PygmtoolsExample => block.reversed_axes(),
        };
        perms.push(hungarian(x)?.1);
    }
    let t3 = Instant::now();
    Ok(Matching {
        perms,
        objective: result.objective,
        objectives: result.objectives,
        iterations: result.iterations,
        group_sizes: sizes,
        affinity_nnz: k.nnz(),
        affinity_bytes: k.bytes(),
        seconds: [
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::affinity::tests::tiny;
    use crate::fusion::permute;

    #[test]
    fn a_permuted_copy_is_matched_back_exactly() {
        let (spec, m, _) = tiny();
        let s = spec.validate(&m).unwrap();
        let shuffle = vec![vec![1, 2, 0], vec![3, 0, 2, 1]];
        let copy = permute(&s, &m, &shuffle).unwrap();
        let r = match_models(
            &s,
            [&m, &copy],
            Convention::Consistent,
            SmParams::default(),
            &|| false,
        )
        .unwrap();
        assert_eq!(r.perms, shuffle);
        // Applying the found permutations to model 1 reproduces the copy exactly.
        assert_eq!(permute(&s, &m, &r.perms).unwrap(), copy);
        assert_eq!(r.group_sizes, [2, 3, 4, 2]);
    }
}
