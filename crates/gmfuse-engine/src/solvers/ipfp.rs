//! Integer projected fixed point (Leordeanu, Hebert & Sukthankar, NeurIPS 2009) with
//! pygmtools' semantics (`pygmtools.classic_solvers.ipfp`, numpy backend) on a compact pair
//! space:
//!
//! from the uniform start `1/(n1·n2)`, up to `max_iter` times: `b` = Hungarian of `X(K v)` per
//! hidden group (the fixed groups stay the identity); line search on `v + t(b − v)` with
//! `t = −vᵀK(b − v) / (b − v)ᵀK(b − v)`, taking `b` itself when that curvature term is ≥ 0 or
//! `t ≥ 1`; keep the best discrete `b` by `bᵀKb`; stop when `|vᵀKv − bᵀKb| / vᵀKv < 1e-3`
//! (`v` the iterate the step started from). The result is the best `b`.
//!
//! `K` is symmetric in gmfuse's default mode, and one product per step suffices: `K b` is
//! computed, `K v` carried along the line search (`K(v + t(b − v)) = Kv + t(Kb − Kv)`).

use super::groups::{Groups, dot};
use super::{Operator, QapResult, SolveError};

/// pygmtools' stopping threshold on the relative change of the objective.
const REL_TOL: f64 = 1e-3;

/// IPFP on `k` (laid out as `groups`), at most `max_iter` steps.
///
/// # Errors
/// [`SolveError::NonFinite`] when `K v` has a non-finite entry; [`SolveError::Canceled`] on
/// `stop()`.
pub fn ipfp(
    k: &dyn Operator,
    groups: &Groups,
    max_iter: usize,
    stop: &dyn Fn() -> bool,
) -> Result<QapResult, SolveError> {
    let n = k.dim();
    assert_eq!(
        n,
        groups.dim(),
        "the operator lives on the groups' pair space"
    );
    let nodes: usize = groups.sizes().iter().sum();
    let mut v = vec![1.0 / (nodes * nodes) as f64; n];
    let mut kv = vec![0.0; n];
    k.apply(&v, &mut kv);
    let mut kb = vec![0.0; n];
    let mut best = v.clone();
    let mut best_obj = f64::NEG_INFINITY;
    let mut objectives = Vec::with_capacity(max_iter);
    let mut iterations = 0;
    for it in 1..=max_iter {
        if stop() {
            return Err(SolveError::Canceled);
        }
        iterations = it;
        let b = groups.indicator(&groups.assign(&kv, false)?, false);
        k.apply(&b, &mut kb);
        // d = K(b − v); α = vᵀd, β = (b − v)ᵀd.
        let d: Vec<f64> = kb.iter().zip(&kv).map(|(x, y)| x - y).collect();
        let alpha = dot(&v, &d);
        let beta: f64 = b
            .iter()
            .zip(&v)
            .zip(&d)
            .map(|((x, y), z)| (x - y) * z)
            .sum();
        let start_obj = dot(&v, &kv);
        let current = dot(&b, &kb);
        objectives.push(current);
        let t = -alpha / beta;
        if beta >= 0.0 || t >= 1.0 {
            v.copy_from_slice(&b);
            kv.copy_from_slice(&kb);
        } else {
            for ((vi, bi), (kvi, di)) in v.iter_mut().zip(&b).zip(kv.iter_mut().zip(&d)) {
                *vi += t * (bi - *vi);
                *kvi += t * di;
            }
        }
        if current > best_obj {
            best_obj = current;
            best.copy_from_slice(&b);
        }
        if ((start_obj - current) / start_obj).abs() < REL_TOL {
            break;
        }
    }
    let objective = best_obj / dot(&best, &best);
    Ok(QapResult {
        v: best,
        objective,
        iterations,
        objectives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solvers::qap_tests::Dense;

    #[test]
    fn a_two_by_two_problem_takes_the_better_assignment_in_one_step() {
        // Groups [1, 2, 1]; K = diag(1, 5, 0, 0, 4, 1) plus 2 between (0,0) and (1,1) of the
        // hidden group: the identity scores 1 + 5 + 4 + 2·2 + 1 = 15, the swap 1 + 0 + 0 + 1 = 2.
        let mut k = Dense::diag(&[1.0, 5.0, 0.0, 0.0, 4.0, 1.0]);
        k.0[1][4] = 2.0;
        k.0[4][1] = 2.0;
        let g = Groups::new(&[1, 2, 1]);
        let r = ipfp(&k, &g, 50, &|| false).unwrap();
        assert_eq!(g.assign(&r.v, false).unwrap(), [vec![0, 1]]);
        assert_eq!(r.objectives[0], 15.0);
        // Step 2 starts from b (β = (b−v)ᵀK(b−v) > 0 here) and finds b again: no change.
        assert_eq!(r.iterations, 2);
    }
}
