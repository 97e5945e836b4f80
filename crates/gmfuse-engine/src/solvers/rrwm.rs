//! Reweighted random walks for graph matching (Cho, Lee & Lee, ECCV 2010) with pygmtools'
//! semantics (`pygmtools.classic_solvers.rrwm`, numpy backend) on a compact pair space:
//!
//! `K ← K / (max row sum + 1e-5 · min row sum)`; from the uniform start `1/(n1·n2)`, up to
//! `max_iter` times: `v ← K v` (kept as `last`), L1-normalise; the reweighted jump
//! `s = β · X(v) / max X(v)`, Sinkhorn on `s` (`sk_iter` alternating row/column normalisations
//! in log space, rows first); `v ← α · vec(sinkhorn) + (1 − α) · v`, L1-normalise; stop when
//! `‖v − last‖₂ < tol`.
//!
//! Where gmfuse differs from a dense pygmtools call: pairs of nodes of different groups are
//! not candidates (they have no affinity), so Sinkhorn runs on each group's block, not on
//! one matrix over all nodes; the maximum `max X(v)` is still taken over all groups.

use super::groups::{self, Groups, dot};
use super::{Operator, QapResult, SmParams, SolveError};

/// RRWM's settings (pygmtools' defaults: 50 steps, 20 Sinkhorn iterations, α = 0.2, β = 30,
/// tolerance 1e-5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RrwmParams {
    pub max_iter: usize,
    pub tol: f64,
    pub sk_iter: usize,
    pub alpha: f64,
    pub beta: f64,
}

impl Default for RrwmParams {
    fn default() -> Self {
        RrwmParams::with(SmParams::default())
    }
}

impl RrwmParams {
    /// pygmtools' defaults with the job's iteration limit and tolerance.
    pub fn with(p: SmParams) -> Self {
        RrwmParams {
            max_iter: p.max_iter,
            tol: p.tol,
            sk_iter: 20,
            alpha: 0.2,
            beta: 30.0,
        }
    }
}

/// RRWM on `k` (non-negative, laid out as `groups`).
///
/// # Errors
/// [`SolveError::ZeroVector`] when `K v` vanishes; [`SolveError::Canceled`] on `stop()`.
pub fn rrwm(
    k: &dyn Operator,
    groups: &Groups,
    params: RrwmParams,
    stop: &dyn Fn() -> bool,
) -> Result<QapResult, SolveError> {
    let n = k.dim();
    assert_eq!(
        n,
        groups.dim(),
        "the operator lives on the groups' pair space"
    );
    let mut d = vec![0.0; n];
    k.apply(&vec![1.0; n], &mut d);
    let (dmax, dmin) = d
        .iter()
        .fold((f64::NEG_INFINITY, f64::INFINITY), |(a, b), &x| {
            (a.max(x), b.min(x))
        });
    let scale = 1.0 / (dmax + dmin * 1e-5);
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(SolveError::ZeroVector);
    }
    let nodes: usize = groups.sizes().iter().sum();
    let mut v = vec![1.0 / (nodes * nodes) as f64; n];
    let mut last = vec![0.0; n];
    let mut objectives = Vec::with_capacity(params.max_iter);
    let mut iterations = 0;
    for it in 1..=params.max_iter {
        if stop() {
            return Err(SolveError::Canceled);
        }
        iterations = it;
        k.apply(&v, &mut last);
        objectives.push(dot(&v, &last) / dot(&v, &v));
        last.iter_mut().for_each(|x| *x *= scale);
        let walk = l1_normalised(&last)?;
        let top = walk.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x));
        v.copy_from_slice(&walk);
        for g in 0..groups.sizes().len() {
            let s = groups.sizes()[g];
            let block = groups.block_mut(&mut v, g);
            let mut log_s: Vec<f64> = block.iter().map(|x| params.beta * x / top).collect();
            sinkhorn_log(&mut log_s, s, params.sk_iter);
            for (b, ls) in block.iter_mut().zip(&log_s) {
                *b = params.alpha * ls.exp() + (1.0 - params.alpha) * *b;
            }
        }
        v = l1_normalised(&v)?;
        let moved = v
            .iter()
            .zip(&last)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        if moved < params.tol {
            break;
        }
    }
    let objective = groups::quadratic(k, &v) / dot(&v, &v);
    Ok(QapResult {
        v,
        objective,
        iterations,
        objectives,
    })
}

fn l1_normalised(x: &[f64]) -> Result<Vec<f64>, SolveError> {
    let norm: f64 = x.iter().map(|v| v.abs()).sum();
    if !(norm > 0.0 && norm.is_finite()) {
        return Err(SolveError::ZeroVector);
    }
    Ok(x.iter().map(|v| v / norm).collect())
}

/// `iters` Sinkhorn normalisations of the `s × s` row-major log-matrix `log_s`, rows on even
/// iterations, columns on odd ones (pygmtools' order); `exp(log_s)` is then (nearly) doubly
/// stochastic.
pub(crate) fn sinkhorn_log(log_s: &mut [f64], s: usize, iters: usize) {
    let lse = |xs: &mut dyn Iterator<Item = f64>| {
        let xs: Vec<f64> = xs.collect();
        let m = xs.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x));
        m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
    };
    for i in 0..iters {
        for line in 0..s {
            let at = |t: usize| {
                if i % 2 == 0 {
                    line * s + t
                } else {
                    t * s + line
                }
            };
            let l = lse(&mut (0..s).map(|t| log_s[at(t)]));
            (0..s).for_each(|t| log_s[at(t)] -= l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solvers::qap_tests::Dense;

    #[test]
    fn one_step_equals_the_hand_computation() {
        // Groups [1, 2, 1]: pairs input (0,0); hidden (0,0), (0,1), (1,0), (1,1); output (0,0).
        // K = diag(1, 3, 1, 1, 3, 1): row sums = the diagonal, so K ← K / (3 + 1e-5).
        // v0 = 1/16 (4 nodes); K v0 ∝ k, L1-normalised w = k / 10 = [.1, .3, .1, .1, .3, .1];
        // s = 30 · w / 0.3 = 100 w: the 1×1 blocks give Sinkhorn 1; the hidden block
        // [[30, 10], [10, 30]] is doubly stochastic after its first row normalisation:
        // [[σ, 1−σ], [1−σ, σ]], σ = 1 / (1 + e^-20). v = 0.2·sinkhorn + 0.8·w sums to 1.6.
        let k = Dense::diag(&[1.0, 3.0, 1.0, 1.0, 3.0, 1.0]);
        let g = Groups::new(&[1, 2, 1]);
        let p = RrwmParams {
            max_iter: 1,
            ..RrwmParams::default()
        };
        let r = rrwm(&k, &g, p, &|| false).unwrap();
        let sigma = 1.0 / (1.0 + (-20.0f64).exp());
        let want = [
            (0.2 + 0.08) / 1.6,
            (0.2 * sigma + 0.24) / 1.6,
            (0.2 * (1.0 - sigma) + 0.08) / 1.6,
            (0.2 * (1.0 - sigma) + 0.08) / 1.6,
            (0.2 * sigma + 0.24) / 1.6,
            (0.2 + 0.08) / 1.6,
        ];
        for (got, want) in r.v.iter().zip(want) {
            approx::assert_abs_diff_eq!(*got, want, epsilon = 1e-12);
        }
        assert_eq!(r.iterations, 1);
        // vᵀKv / vᵀv of the uniform start: Σk / 6.
        approx::assert_abs_diff_eq!(r.objectives[0], 10.0 / 6.0, epsilon = 1e-12);
    }

    #[test]
    fn sinkhorn_makes_rows_and_columns_sum_to_one() {
        let mut ls = vec![0.3, -1.0, 2.0, 0.5, 0.1, -0.2, 1.5, 0.0, 0.7];
        sinkhorn_log(&mut ls, 3, 200);
        for i in 0..3 {
            let row: f64 = (0..3).map(|j| ls[i * 3 + j].exp()).sum();
            let col: f64 = (0..3).map(|j| ls[j * 3 + i].exp()).sum();
            approx::assert_abs_diff_eq!(row, 1.0, epsilon = 1e-9);
            approx::assert_abs_diff_eq!(col, 1.0, epsilon = 1e-9);
        }
    }
}
