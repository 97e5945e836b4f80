//! A dense linear assignment solver (maximising) that can be warm-started from its own last
//! solution: [`Lap`] keeps the assignment and the dual prices of its last solve, and the next
//! solve of a similar matrix starts from them.
//!
//! Weight matching solves the LAP of each group again and again, and after its first sweep a
//! group's score matrix moves only a little between solves (a few units of a neighbouring
//! group moved). A cold solve of a 1024² matrix costs ~50–100 ms here (`lsap`, a port of
//! scipy's solver); from the last prices it is a few augmentations. No crate on crates.io
//! offers that: `lsap` and `lapjv` take a matrix and return an assignment, and neither accepts
//! or returns dual prices, so this one is written here.
//!
//! The method is the shortest augmenting path of Jonker & Volgenant (1987) on costs
//! `c = −S`, in the form scipy uses (Crouse 2016): dual prices `u` (rows) and `v` (columns)
//! with `c[i, j] − u[i] − v[j] ≥ 0` and equality on assigned pairs; each free row is joined to
//! a free column by a Dijkstra search over reduced costs and the prices are moved so that the
//! invariant holds again. A perfect assignment with that invariant is optimal.
//!
//! - Cold start: JV's column reduction (`v[j] = min_i c[i, j]`, `u[i] = min_j c[i, j] − v[j]`)
//!   and every row whose best column is still free takes it.
//! - Warm start: the last `v` is kept, `u[i] = min_j c[i, j] − v[j]` makes the prices feasible
//!   for the new matrix, and a row keeps its last column when that column is still one of its
//!   cheapest; the others are augmented.
//!
//! Either way the result is an optimal assignment; where the optimum is unique (any real-valued
//! score matrix, in practice) it is the one `lsap` returns. Ties may break differently, so the
//! GAMF read-back, which must break ties as scipy does, keeps [`super::hungarian`].

use ndarray::ArrayView2;

use super::SolveError;

/// A LAP solver with the state of its last solve.
#[derive(Clone, Debug, Default)]
pub struct Lap {
    /// Column prices of the last solve (empty before the first).
    v: Vec<f64>,
    /// `row_col[i]`: the column assigned to row `i` by the last solve.
    row_col: Vec<usize>,
}

/// No row or column.
const NONE: usize = usize::MAX;

impl Lap {
    /// A solver with no history: its first solve starts cold.
    pub fn new() -> Self {
        Lap::default()
    }

    /// The permutation `perm` maximising `Σ_i scores[i, perm[i]]` and that sum, started from
    /// the last solve when it had the same size.
    ///
    /// # Errors
    /// [`SolveError::NotSquare`], or [`SolveError::NonFinite`] for a NaN or ±∞ entry.
    pub fn solve(&mut self, scores: ArrayView2<'_, f64>) -> Result<(f64, Vec<usize>), SolveError> {
        let (n, cols) = scores.dim();
        if n != cols {
            return Err(SolveError::NotSquare { rows: n, cols });
        }
        if n == 0 {
            return Ok((0.0, Vec::new()));
        }
        let scores = scores.as_standard_layout();
        let flat = scores.as_slice().expect("standard layout is contiguous");
        if let Some(k) = flat.iter().position(|v| !v.is_finite()) {
            return Err(SolveError::NonFinite {
                row: k / n,
                col: k % n,
            });
        }
        let cost: Vec<f64> = flat.iter().map(|s| -s).collect();
        let mut state = if self.v.len() == n {
            State::warm(&cost, n, std::mem::take(&mut self.v), &self.row_col)
        } else {
            State::cold(&cost, n)
        };
        state.complete(&cost);
        let perm = state.row_col.clone();
        let total = perm.iter().enumerate().map(|(i, &j)| scores[[i, j]]).sum();
        self.v = state.v;
        self.row_col = state.row_col;
        Ok((total, perm))
    }
}

/// Prices and a partial assignment satisfying the invariant.
struct State {
    n: usize,
    u: Vec<f64>,
    v: Vec<f64>,
    row_col: Vec<usize>,
    col_row: Vec<usize>,
}

impl State {
    /// JV's column reduction, then each row takes its cheapest column if that is free.
    fn cold(cost: &[f64], n: usize) -> Self {
        let mut v = vec![f64::INFINITY; n];
        for row in cost.chunks_exact(n) {
            for (vj, &c) in v.iter_mut().zip(row) {
                *vj = vj.min(c);
            }
        }
        State::from_prices(cost, n, v, None)
    }

    /// The last prices `v`, and the last assignment where it is still tight.
    fn warm(cost: &[f64], n: usize, v: Vec<f64>, last: &[usize]) -> Self {
        State::from_prices(cost, n, v, Some(last))
    }

    /// `u[i] = min_j c[i, j] − v[j]`; row `i` keeps `prefer[i]` if that column attains the
    /// minimum (else its first cheapest column) unless the column is taken. A preferred
    /// column short of the minimum by `slack` is kept too when raising its price by `slack`
    /// leaves every other row's reduced cost on it non-negative (the optimal prices of the
    /// last matrix are degenerate, so after a small change many rows miss their column by a
    /// hair; each kept row is an augmentation saved).
    fn from_prices(cost: &[f64], n: usize, mut v: Vec<f64>, prefer: Option<&[usize]>) -> Self {
        let mut u = vec![0.0; n];
        let mut row_col = vec![NONE; n];
        let mut col_row = vec![NONE; n];
        let mut short = Vec::new();
        for (i, row) in cost.chunks_exact(n).enumerate() {
            let (mut best, mut arg) = (f64::INFINITY, 0);
            for (j, (&c, &vj)) in row.iter().zip(&v).enumerate() {
                let r = c - vj;
                if r < best {
                    best = r;
                    arg = j;
                }
            }
            u[i] = best;
            let want = match prefer {
                Some(p) if row[p[i]] - v[p[i]] == best => p[i],
                Some(p) => {
                    short.push((i, p[i]));
                    continue;
                }
                None => arg,
            };
            if col_row[want] == NONE {
                col_row[want] = i;
                row_col[i] = want;
            }
        }
        for (i, j) in short {
            let slack = (cost[i * n + j] - v[j]) - u[i];
            let room = (0..n)
                .filter(|&k| k != i)
                .all(|k| (cost[k * n + j] - v[j]) - u[k] >= slack);
            if room && col_row[j] == NONE {
                v[j] = cost[i * n + j] - u[i];
                col_row[j] = i;
                row_col[i] = j;
            }
        }
        State {
            n,
            u,
            v,
            row_col,
            col_row,
        }
    }

    /// Augment every free row.
    fn complete(&mut self, cost: &[f64]) {
        let free: Vec<usize> = (0..self.n).filter(|&i| self.row_col[i] == NONE).collect();
        let mut search = Search::new(self.n);
        for i in free {
            search.augment(self, cost, i);
        }
    }
}

/// Scratch space of the Dijkstra search, reused across augmentations.
///
/// The scan of a row runs over every column in index order, branch-free, so that it
/// vectorises: a scanned column's key is `−∞`, which no distance improves and the minimum
/// skips.
struct Search {
    /// Shortest known reduced distance to each unscanned column (`−∞` once scanned), and the
    /// row it was reached from.
    key: Vec<f64>,
    pred: Vec<usize>,
    /// A scanned column's distance.
    dist: Vec<f64>,
    /// Rows and columns reached in this search.
    rows: Vec<usize>,
    cols: Vec<usize>,
}

impl Search {
    fn new(n: usize) -> Self {
        Search {
            key: vec![f64::INFINITY; n],
            pred: vec![NONE; n],
            dist: vec![0.0; n],
            rows: Vec::new(),
            cols: Vec::new(),
        }
    }

    /// Join free row `start` to a free column by a shortest path of reduced costs, move the
    /// prices and flip the path.
    fn augment(&mut self, s: &mut State, cost: &[f64], start: usize) {
        let n = s.n;
        self.key.fill(f64::INFINITY);
        self.rows.clear();
        self.cols.clear();
        let mut i = start;
        let mut reached;
        let sink = loop {
            self.rows.push(i);
            let (best, at) = scan(
                &cost[i * n..][..n],
                &s.v,
                reached_base(self, s, i),
                i,
                &mut self.key,
                &mut self.pred,
            );
            debug_assert!(at != NONE, "a finite matrix always has a reachable column");
            reached = best;
            self.dist[at] = best;
            self.key[at] = f64::NEG_INFINITY;
            self.cols.push(at);
            if s.col_row[at] == NONE {
                break at;
            }
            i = s.col_row[at];
        };
        // Prices: every reached row and scanned column moves by how much nearer than the
        // sink it was, which keeps reduced costs non-negative and makes the path tight.
        s.u[start] += reached;
        for &r in &self.rows[1..] {
            s.u[r] += reached - self.dist[s.row_col[r]];
        }
        for &j in &self.cols {
            s.v[j] -= reached - self.dist[j];
        }
        let mut j = sink;
        loop {
            let i = self.pred[j];
            s.col_row[j] = i;
            let next = std::mem::replace(&mut s.row_col[i], j);
            if i == start {
                break;
            }
            j = next;
        }
    }
}

/// `reached − u[i]`: the distance of row `i` (0 for the start row) less its price.
fn reached_base(search: &Search, s: &State, i: usize) -> f64 {
    match search.cols.last() {
        Some(&j) => search.dist[j] - s.u[i],
        None => -s.u[i],
    }
}

/// Relax every unscanned column from row `i` (`base + row[j] − v[j]`) and return the least
/// key of an unscanned column and the first column holding it.
fn scan(
    row: &[f64],
    v: &[f64],
    base: f64,
    i: usize,
    key: &mut [f64],
    pred: &mut [usize],
) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the feature the function is compiled for.
        return unsafe { scan_avx2(row, v, base, i, key, pred) };
    }
    scan_generic(row, v, base, i, key, pred)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2(
    row: &[f64],
    v: &[f64],
    base: f64,
    i: usize,
    key: &mut [f64],
    pred: &mut [usize],
) -> (f64, usize) {
    use std::arch::x86_64::*;
    let n = row.len();
    assert!(v.len() >= n && key.len() >= n && pred.len() >= n);
    let whole = n - n % 4;
    let base4 = _mm256_set1_pd(base);
    let row4 = _mm256_set1_epi64x(i as i64);
    let inf4 = _mm256_set1_pd(f64::INFINITY);
    let scanned4 = _mm256_set1_pd(f64::NEG_INFINITY);
    let four = _mm256_set1_epi64x(4);
    let mut min4 = inf4;
    // Per lane, the first column holding its minimum; the columns of this step.
    let mut arg4 = _mm256_set1_epi64x(0);
    let mut col4 = _mm256_setr_epi64x(0, 1, 2, 3);
    for c in (0..whole).step_by(4) {
        // SAFETY: c + 4 ≤ n ≤ the length of every slice (asserted above); unaligned loads
        // and stores; `usize` is 64 bits on x86_64.
        unsafe {
            let k = _mm256_loadu_pd(key.as_ptr().add(c));
            let d = _mm256_sub_pd(
                _mm256_add_pd(base4, _mm256_loadu_pd(row.as_ptr().add(c))),
                _mm256_loadu_pd(v.as_ptr().add(c)),
            );
            let better = _mm256_cmp_pd::<_CMP_LT_OQ>(d, k);
            let k = _mm256_blendv_pd(k, d, better);
            _mm256_storeu_pd(key.as_mut_ptr().add(c), k);
            let p = pred.as_mut_ptr().add(c).cast::<__m256i>();
            let old = _mm256_loadu_si256(p);
            let new = _mm256_castpd_si256(_mm256_blendv_pd(
                _mm256_castsi256_pd(old),
                _mm256_castsi256_pd(row4),
                better,
            ));
            _mm256_storeu_si256(p, new);
            let open = _mm256_cmp_pd::<_CMP_NEQ_OQ>(k, scanned4);
            let cand = _mm256_blendv_pd(inf4, k, open);
            let lower = _mm256_cmp_pd::<_CMP_LT_OQ>(cand, min4);
            min4 = _mm256_blendv_pd(min4, cand, lower);
            arg4 = _mm256_castpd_si256(_mm256_blendv_pd(
                _mm256_castsi256_pd(arg4),
                _mm256_castsi256_pd(col4),
                lower,
            ));
            col4 = _mm256_add_epi64(col4, four);
        }
    }
    let (mut mins, mut args) = ([0.0; 4], [0i64; 4]);
    // SAFETY: four f64 / i64 into four-element arrays.
    unsafe {
        _mm256_storeu_pd(mins.as_mut_ptr(), min4);
        _mm256_storeu_si256(args.as_mut_ptr().cast::<__m256i>(), arg4);
    }
    let (mut best, mut at) = (f64::INFINITY, NONE);
    for (m, a) in mins.into_iter().zip(args) {
        if m < best || (m == best && (a as usize) < at) {
            (best, at) = (m, a as usize);
        }
    }
    scan_tail(row, v, base, i, key, pred, whole, (best, at))
}

fn scan_generic(
    row: &[f64],
    v: &[f64],
    base: f64,
    i: usize,
    key: &mut [f64],
    pred: &mut [usize],
) -> (f64, usize) {
    scan_tail(row, v, base, i, key, pred, 0, (f64::INFINITY, NONE))
}

/// [`scan`] from column `from` on, one column at a time; `best` is the minimum so far and
/// its column.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scan_tail(
    row: &[f64],
    v: &[f64],
    base: f64,
    i: usize,
    key: &mut [f64],
    pred: &mut [usize],
    from: usize,
    (mut best, mut at): (f64, usize),
) -> (f64, usize) {
    for j in from..row.len() {
        let d = base + row[j] - v[j];
        if d < key[j] {
            key[j] = d;
            pred[j] = i;
        }
        if key[j] < best && key[j] != f64::NEG_INFINITY {
            (best, at) = (key[j], j);
        }
    }
    (best, at)
}

#[cfg(test)]
mod tests {
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
}
