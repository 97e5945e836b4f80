//! Graph matching of two networks: affinity → a QAP solver → per-layer Hungarian.
//!
//! The solver's vector `v` on the affinity's compact pair space ([`SolverId::Sm`]'s
//! eigenvector, [`SolverId::Rrwm`]'s walk, [`SolverId::Ipfp`]'s best discrete point) is read
//! back into a node-to-node score matrix `X` block by block (one block per node group), and
//! each hidden block is turned into a permutation by [`hungarian`]. The input and output
//! groups stay fixed. Every solver reports the discrete objective `vec(P)ᵀ K vec(P)` of the
//! assignment it ends with; several solvers share one affinity build.
//!
//! Two conventions:
//! - [`Convention::Consistent`] (default): a symmetric affinity and `X[i, j] = v[(i, j)]`, the
//!   pair order the affinity was built with.
//! - [`Convention::PygmtoolsExample`]: the example's one-directional affinity, and pygmtools'
//!   column-major read-back `X[i, j] = v[(j, i)]` of a row-major vector — so the permutation
//!   applied is the inverse of the one meant.
//!
//! [`hungarian`]: crate::solvers::hungarian

use std::time::Instant;

use crate::affinity::{Affinity, Direction};
use crate::arch::PermStructure;
use crate::solvers::groups::quadratic;
use crate::solvers::{Groups, SmParams, SolveError, SolverId, solve};
use crate::weights::{WeightSet, WeightsError};

/// How the affinity is laid out and the eigenvector read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    Consistent,
    PygmtoolsExample,
}

/// The matching of model 1's hidden channels onto model 2's by one solver.
#[derive(Clone, Debug, PartialEq)]
pub struct Matching {
    pub solver: SolverId,
    /// One permutation per hidden group: `perms[k][i] = j`.
    pub perms: Vec<Vec<usize>>,
    /// `vᵀKv / vᵀv` of the solver's final vector (SM: of the unit eigenvector estimate).
    pub objective: f64,
    /// `vec(P)ᵀ K vec(P)` of the final assignment (identity on the fixed groups), in the pair
    /// order the read-back used.
    pub discrete_objective: f64,
    /// The solver's objective per iteration (see [`crate::solvers::QapResult`]).
    pub objectives: Vec<f64>,
    pub iterations: usize,
    /// Node count per group (input, hidden…, output).
    pub group_sizes: Vec<usize>,
    /// Stored nonzeros and bytes of the affinity operator.
    pub affinity_nnz: usize,
    pub affinity_bytes: usize,
    /// Seconds in the affinity build (shared by every solver of one call), the solver and the
    /// assignments.
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

/// Match `models[0]` onto `models[1]` by spectral matching; both must be valid for
/// `structure`.
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
    let mut all = match_with(structure, models, convention, &[SolverId::Sm], params, stop)?;
    Ok(all.remove(0))
}

/// Match `models[0]` onto `models[1]` once per solver of `solvers` (in that order), on one
/// affinity. `params` are the iteration limit and tolerance of every solver.
///
/// # Errors
/// [`MatchError`]; [`SolveError::Canceled`] when `stop()` turns true.
pub fn match_with(
    structure: &PermStructure,
    models: [&WeightSet; 2],
    convention: Convention,
    solvers: &[SolverId],
    params: SmParams,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<Matching>, MatchError> {
    let t0 = Instant::now();
    let direction = match convention {
        Convention::Consistent => Direction::Symmetric,
        Convention::PygmtoolsExample => Direction::PreFromCur,
    };
    let k = Affinity::build(structure, models, direction)?;
    let built = t0.elapsed().as_secs_f64();
    let n = structure.n_nodes();
    let groups = Groups::new(k.group_sizes());
    let transposed = convention == Convention::PygmtoolsExample;
    let mut out = Vec::with_capacity(solvers.len());
    for &solver in solvers {
        let t1 = Instant::now();
        let r = solve(solver, &k, &groups, n * n, params, stop)?;
        let t2 = Instant::now();
        let perms = groups.assign(&r.v, transposed)?;
        let discrete_objective = quadratic(&k, &groups.indicator(&perms, transposed));
        let t3 = Instant::now();
        out.push(Matching {
            solver,
            perms,
            objective: r.objective,
            discrete_objective,
            objectives: r.objectives,
            iterations: r.iterations,
            group_sizes: k.group_sizes().to_vec(),
            affinity_nnz: k.nnz(),
            affinity_bytes: k.bytes(),
            seconds: [built, (t2 - t1).as_secs_f64(), (t3 - t2).as_secs_f64()],
        });
    }
    Ok(out)
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
