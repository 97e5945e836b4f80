//! [`Lap`] against [`hungarian`] (lsap's port): optimal values on tie-heavy integer
//! matrices, identical assignments on drifting real-valued ones.

use super::*;
use crate::solvers::hungarian;
use ndarray::Array2;
use proptest::prelude::*;

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Integer scores make ties frequent: the optimum value must still be lsap's.
    #[test]
    fn cold_and_warm_solves_reach_lsaps_optimum(
        n in 1usize..=9,
        vals in proptest::collection::vec(-20i32..20, 81),
        bump in proptest::collection::vec(-3i32..3, 81),
    ) {
        let s = Array2::from_shape_fn((n, n), |(i, j)| f64::from(vals[i * 9 + j]));
        let mut lap = Lap::new();
        let (total, perm) = lap.solve(s.view()).unwrap();
        let mut seen = perm.clone();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
        prop_assert_eq!(total, hungarian(s.view()).unwrap().0);
        let t = Array2::from_shape_fn((n, n), |(i, j)| s[[i, j]] + f64::from(bump[i * 9 + j]));
        let (total, perm) = lap.solve(t.view()).unwrap();
        let mut seen = perm.clone();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
        prop_assert_eq!(total, hungarian(t.view()).unwrap().0);
    }
}

/// A chain of slowly drifting real-valued matrices, as weight matching produces: every
/// solve, cold or warm, returns lsap's (unique) assignment.
#[test]
fn warm_solves_of_drifting_matrices_equal_lsap() {
    let mut seed = 11;
    let n = 150;
    let mut s = Array2::from_shape_fn((n, n), |_| lcg(&mut seed));
    let mut lap = Lap::new();
    for step in 0..12 {
        let want = hungarian(s.view()).unwrap();
        assert_eq!(lap.solve(s.view()).unwrap(), want, "step {step}");
        // Move a few columns' worth of score, as when a neighbour group swaps units.
        for _ in 0..5 {
            let j = (lcg(&mut seed) * n as f64) as usize;
            for i in 0..n {
                s[[i, j]] += 0.05 * (lcg(&mut seed) - 0.5);
            }
        }
    }
    // A different size starts cold again.
    let t = Array2::from_shape_fn((7, 7), |_| lcg(&mut seed));
    assert_eq!(lap.solve(t.view()).unwrap(), hungarian(t.view()).unwrap());
}

/// Larger matrices with many equal entries: the row reduction's tie rule (take the second
/// column, the displaced row waits) and its step bound are exercised, and the optimum is
/// still lsap's, cold and warm.
#[test]
fn tie_heavy_matrices_reach_lsaps_optimum() {
    let mut seed = 3;
    for n in [2, 17, 64, 120] {
        let mut lap = Lap::new();
        for _ in 0..3 {
            let s = Array2::from_shape_fn((n, n), |_| (lcg(&mut seed) * 4.0).floor());
            let (total, perm) = lap.solve(s.view()).unwrap();
            let mut seen = perm.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
            assert_eq!(total, hungarian(s.view()).unwrap().0, "n {n}");
        }
    }
}

#[test]
fn bad_scores_are_rejected_and_empty_is_empty() {
    let mut lap = Lap::new();
    let s = Array2::from_shape_fn((2, 2), |(i, j)| if i + j == 2 { f64::NAN } else { 0.0 });
    assert_eq!(
        lap.solve(s.view()),
        Err(SolveError::NonFinite { row: 1, col: 1 })
    );
    assert_eq!(
        lap.solve(Array2::<f64>::zeros((2, 3)).view()),
        Err(SolveError::NotSquare { rows: 2, cols: 3 })
    );
    assert_eq!(
        lap.solve(Array2::<f64>::zeros((0, 0)).view()),
        Ok((0.0, vec![]))
    );
}

/// The one-pass column minima answer every kept-column check as the strided scan does,
/// ties included: `min over k ≠ i of r[k][j] ≥ slack` for every row `i`, column `j`, slack.
#[test]
fn the_column_pass_answers_every_check_like_the_scan() {
    let mut seed = 5;
    let n = 40;
    // Scores on a coarse grid, so that columns have tied minima.
    let s: Vec<f64> = (0..n * n).map(|_| (lcg(&mut seed) * 6.0).floor()).collect();
    let u: Vec<f64> = (0..n).map(|_| (lcg(&mut seed) * 3.0).floor()).collect();
    let v: Vec<f64> = (0..n).map(|_| (lcg(&mut seed) * 3.0).floor()).collect();
    let (least, arg, second) = super::least_two(&s, n, &u, &v);
    for j in 0..n {
        for i in 0..n {
            for slack in [-9.0, -7.0, -5.0, -3.0, -1.0, 0.0] {
                let scan = (0..n)
                    .filter(|&k| k != i)
                    .all(|k| (-s[k * n + j] - v[j]) - u[k] >= slack);
                let pass = (if arg[j] == i { second[j] } else { least[j] }) >= slack;
                assert_eq!(pass, scan, "row {i}, column {j}, slack {slack}");
            }
        }
    }
}
