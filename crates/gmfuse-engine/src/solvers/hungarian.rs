//! Optimal linear assignment (maximising), through the `lsap` crate — a port of scipy's
//! `linear_sum_assignment`, so ties break as they do in the pygmtools example (which calls
//! scipy on `-X`).

use ndarray::ArrayView2;

use super::SolveError;

/// The permutation `perm` maximising `Σ_i scores[i, perm[i]]`, and that sum.
///
/// Complexity `O(n³)`. `scores` must be square (`n × n`, `n` may be 0) and finite.
///
/// ```
/// use gmfuse_engine::solvers::hungarian;
/// let s = ndarray::array![[1.0, 5.0], [4.0, 1.0]];
/// assert_eq!(hungarian(s.view()).unwrap(), (9.0, vec![1, 0]));
/// ```
///
/// # Errors
/// [`SolveError::NotSquare`], or [`SolveError::NonFinite`] for a NaN or ±∞ entry.
pub fn hungarian(scores: ArrayView2<'_, f64>) -> Result<(f64, Vec<usize>), SolveError> {
    let (rows, cols) = scores.dim();
    if rows != cols {
        return Err(SolveError::NotSquare { rows, cols });
    }
    if let Some(((row, col), _)) = scores.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(SolveError::NonFinite { row, col });
    }
    if rows == 0 {
        return Ok((0.0, Vec::new()));
    }
    // scipy (and the example) minimise -X; lsap's `maximize` negates internally the same way.
    let cost: Vec<f64> = scores.iter().map(|v| -v).collect();
    let (r, c) = lsap::solve(rows, cols, &cost, false)
        .expect("a finite square cost matrix always has an assignment");
    let mut perm = vec![0; rows];
    for (i, j) in r.into_iter().zip(c) {
        perm[i] = j;
    }
    let total = perm.iter().enumerate().map(|(i, &j)| scores[[i, j]]).sum();
    Ok((total, perm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use proptest::prelude::*;

    /// Best assignment by trying all n! permutations (Heap's algorithm).
    fn brute_force(s: &Array2<f64>) -> f64 {
        let n = s.nrows();
        let mut p: Vec<usize> = (0..n).collect();
        let score = |p: &[usize]| p.iter().enumerate().map(|(i, &j)| s[[i, j]]).sum::<f64>();
        let mut best = score(&p);
        let mut c = vec![0; n];
        let mut i = 0;
        while i < n {
            if c[i] < i {
                if i % 2 == 0 {
                    p.swap(0, i)
                } else {
                    p.swap(c[i], i)
                }
                best = best.max(score(&p));
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        best
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn hungarian_is_optimal_against_brute_force_up_to_n_8(
            n in 1usize..=8,
            vals in proptest::collection::vec(-100i32..100, 64),
        ) {
            // Integer scores make the optimum exact, and ties frequent.
            let s = Array2::from_shape_fn((n, n), |(i, j)| f64::from(vals[i * 8 + j]));
            let (total, perm) = hungarian(s.view()).unwrap();
            let mut seen = perm.clone();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
            prop_assert_eq!(total, brute_force(&s));
        }
    }

    #[test]
    fn non_finite_and_non_square_scores_are_rejected() {
        let mut s = Array2::<f64>::zeros((3, 3));
        s[[1, 2]] = f64::NAN;
        assert_eq!(
            hungarian(s.view()),
            Err(SolveError::NonFinite { row: 1, col: 2 })
        );
        s[[1, 2]] = f64::INFINITY;
        assert_eq!(
            hungarian(s.view()),
            Err(SolveError::NonFinite { row: 1, col: 2 })
        );
        let r = Array2::<f64>::zeros((2, 3));
        assert_eq!(
            hungarian(r.view()),
            Err(SolveError::NotSquare { rows: 2, cols: 3 })
        );
    }
}
