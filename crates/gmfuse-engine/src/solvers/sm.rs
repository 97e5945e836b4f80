//! Spectral matching (Leordeanu & Hebert 2005) with pygmtools' exact semantics: start from
//! the uniform vector `1/(n1·n2)`, repeat `v ← Kv / ‖Kv‖₂`, stop after `max_iter` steps or when
//! `‖v − v_last‖₂ < tol`. The read-back of `v` into a matrix is the caller's (it is where the
//! pygmtools example and gmfuse differ).

use super::SolveError;

/// A linear operator `y = K x` on vectors of length `dim()`.
pub trait Operator: Sync {
    fn dim(&self) -> usize;
    fn apply(&self, x: &[f64], y: &mut [f64]);
}

impl Operator for crate::affinity::Affinity {
    fn dim(&self) -> usize {
        Self::dim(self)
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        Self::apply(self, x, y);
    }
}

const RESCALE_ABOVE: f64 = 1e100; // ≈ 2^332
const RESCALE_BELOW: f64 = 1e-100;
const RESCALE_DOWN: f64 = 1.0 / 1_267_650_600_228_229_401_496_703_205_376.0; // 2^-100
const RESCALE_UP: f64 = 1_267_650_600_228_229_401_496_703_205_376.0; // 2^100

/// Power-iteration settings (pygmtools' defaults: 50 steps, tolerance 1e-5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmParams {
    pub max_iter: usize,
    pub tol: f64,
}

impl Default for SmParams {
    fn default() -> Self {
        SmParams {
            max_iter: 50,
            tol: 1e-5,
        }
    }
}

/// The leading-eigenvector estimate and how it was reached.
#[derive(Clone, Debug, PartialEq)]
pub struct SmResult {
    /// Unit-norm vector on the operator's support.
    pub v: Vec<f64>,
    /// Steps taken.
    pub iterations: usize,
    /// `vᵀ K v`.
    pub objective: f64,
    /// `vᵀ K v` of the normalised iterate each step started from (free: `K v` is the step).
    pub objectives: Vec<f64>,
}

/// Power iteration on `k`. The full pair space has `full_dim ≥ k.dim()` entries: those outside
/// the operator's support start at `1/full_dim` like the others and are zero after the first
/// step, which matters only for the first convergence test (kept exact). `stop` is polled
/// every step.
///
/// # Errors
/// [`SolveError::ZeroVector`] if `K v` vanishes; [`SolveError::Canceled`] when `stop()`.
pub fn sm(
    k: &dyn Operator,
    full_dim: usize,
    params: SmParams,
    stop: &dyn Fn() -> bool,
) -> Result<SmResult, SolveError> {
    let n = k.dim();
    assert!(
        full_dim >= n && n > 0,
        "the support lies inside the pair space"
    );
    let start = 1.0 / full_dim as f64;
    // `u` is the unnormalised iterate Kᵏ·v₀, rescaled only by exact powers of two against
    // overflow; `v = u / ‖u‖` equals pygmtools' step-by-step normalised vector in exact
    // arithmetic. Keeping `u` unnormalised lets an operator reuse products of blocks that did
    // not change (the example's one-directional affinity settles after a few steps).
    let mut u = vec![start; n];
    let mut last = vec![start; n];
    // Squared distance contributed by entries outside the support after the first step.
    let mut outside = (full_dim - n) as f64 * start * start;
    let mut ku = vec![0.0; n];
    let mut v = vec![0.0; n];
    let mut iterations = 0;
    let mut objectives = Vec::with_capacity(params.max_iter);
    for it in 1..=params.max_iter {
        if stop() {
            return Err(SolveError::Canceled);
        }
        iterations = it;
        k.apply(&u, &mut ku);
        let norm = ku.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return Err(SolveError::ZeroVector);
        }
        let uu: f64 = u.iter().map(|x| x * x).sum();
        objectives.push(u.iter().zip(&ku).map(|(a, b)| a * b).sum::<f64>() / uu);
        let inv = 1.0 / norm;
        for (vi, x) in v.iter_mut().zip(&ku) {
            *vi = x * inv;
        }
        let diff = v
            .iter()
            .zip(&last)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            + outside;
        outside = 0.0;
        std::mem::swap(&mut v, &mut last);
        std::mem::swap(&mut u, &mut ku);
        let scale = if norm > RESCALE_ABOVE {
            RESCALE_DOWN
        } else if norm < RESCALE_BELOW {
            RESCALE_UP
        } else {
            1.0
        };
        if scale != 1.0 {
            u.iter_mut().for_each(|x| *x *= scale);
        }
        if diff.sqrt() < params.tol {
            break;
        }
    }
    let mut kv = vec![0.0; n];
    k.apply(&last, &mut kv);
    let objective = last.iter().zip(&kv).map(|(a, b)| a * b).sum();
    Ok(SmResult {
        v: last,
        iterations,
        objective,
        objectives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dense(Vec<Vec<f64>>);
    impl Operator for Dense {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn apply(&self, x: &[f64], y: &mut [f64]) {
            for (yi, row) in y.iter_mut().zip(&self.0) {
                *yi = row.iter().zip(x).map(|(a, b)| a * b).sum();
            }
        }
    }

    #[test]
    fn power_iteration_finds_the_leading_eigenvector() {
        // [[2,1],[1,2]] has eigenvalues 3 (vector [1,1]/√2) and 1.
        let k = Dense(vec![vec![2.0, 1.0], vec![1.0, 2.0]]);
        let r = sm(&k, 2, SmParams::default(), &|| false).unwrap();
        approx::assert_abs_diff_eq!(r.v[0], std::f64::consts::FRAC_1_SQRT_2, epsilon = 1e-12);
        approx::assert_abs_diff_eq!(r.objective, 3.0, epsilon = 1e-12);
        // The uniform start [1/2, 1/2] points along the eigenvector but is not unit-norm, so
        // step 1 moves by ‖[.707, .707] − [.5, .5]‖ = 0.29 and step 2 converges (pygmtools
        // compares against the unnormalised start, as here).
        assert_eq!(r.iterations, 2);
    }

    #[test]
    fn stops_at_max_iter_and_matches_the_numpy_replica() {
        // [[1,1],[0,1]] (a Jordan block) never converges: v_k ∝ [1 + k·…]; after 3 steps from
        // [1/2, 1/2] the unnormalised vector is [2, 1/2]... computed by hand as in
        // reference/gamf_np.py `sm_sparse`: K³·[.5,.5] = [2, .5], normalised [0.9701425, 0.2425356].
        let k = Dense(vec![vec![1.0, 1.0], vec![0.0, 1.0]]);
        let r = sm(
            &k,
            2,
            SmParams {
                max_iter: 3,
                tol: 1e-5,
            },
            &|| false,
        )
        .unwrap();
        assert_eq!(r.iterations, 3);
        approx::assert_abs_diff_eq!(r.v[0], 2.0 / 4.25f64.sqrt(), epsilon = 1e-12);
        approx::assert_abs_diff_eq!(r.v[1], 0.5 / 4.25f64.sqrt(), epsilon = 1e-12);
    }

    #[test]
    fn zero_operator_and_cancellation_are_errors() {
        let k = Dense(vec![vec![0.0; 2]; 2]);
        assert_eq!(
            sm(&k, 2, SmParams::default(), &|| false),
            Err(SolveError::ZeroVector)
        );
        let k = Dense(vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(
            sm(&k, 2, SmParams::default(), &|| true),
            Err(SolveError::Canceled)
        );
    }
}
