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
//!   cheapest; the others are left free.
//! - Then JV's augmenting row reduction assigns most free rows at the price of one pass over
//!   a row each ([`State::reduce_rows`]; on the 4 × 1024 weight-matching benchmark it cut the
//!   Dijkstra row scans from 456 k to 124 k), and the Dijkstra search ([`search`]) the rest.
//!
//! Costs are the negated scores, read in place (`−s − v`, bit for bit what a negated copy
//! gave, without an 8 MB copy per 1024² solve).
//!
//! Either way the result is an optimal assignment; where the optimum is unique (any real-valued
//! score matrix, in practice) it is the one `lsap` returns. Ties may break differently, so the
//! GAMF read-back, which must break ties as scipy does, keeps [`super::hungarian`].

use ndarray::ArrayView2;

use super::SolveError;

mod search;

use search::Search;

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
        let mut state = if self.v.len() == n {
            State::warm(flat, n, std::mem::take(&mut self.v), &self.row_col)
        } else {
            State::cold(flat, n)
        };
        state.complete(flat);
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
    fn cold(scores: &[f64], n: usize) -> Self {
        let mut v = vec![f64::INFINITY; n];
        for row in scores.chunks_exact(n) {
            for (vj, &s) in v.iter_mut().zip(row) {
                *vj = vj.min(-s);
            }
        }
        State::from_prices(scores, n, v, None)
    }

    /// The last prices `v`, and the last assignment where it is still tight.
    fn warm(scores: &[f64], n: usize, v: Vec<f64>, last: &[usize]) -> Self {
        State::from_prices(scores, n, v, Some(last))
    }

    /// `u[i] = min_j c[i, j] − v[j]`; row `i` keeps `prefer[i]` if that column attains the
    /// minimum (else its first cheapest column) unless the column is taken. A preferred
    /// column short of the minimum by `slack` is kept too when raising its price by `slack`
    /// leaves every other row's reduced cost on it non-negative (the optimal prices of the
    /// last matrix are degenerate, so after a small change many rows miss their column by a
    /// hair; each kept row is an augmentation saved).
    fn from_prices(scores: &[f64], n: usize, mut v: Vec<f64>, prefer: Option<&[usize]>) -> Self {
        let mut u = vec![0.0; n];
        let mut row_col = vec![NONE; n];
        let mut col_row = vec![NONE; n];
        let mut short = Vec::new();
        for (i, row) in scores.chunks_exact(n).enumerate() {
            let (mut best, mut arg) = (f64::INFINITY, 0);
            for (j, (&s, &vj)) in row.iter().zip(&v).enumerate() {
                let r = -s - vj;
                if r < best {
                    best = r;
                    arg = j;
                }
            }
            u[i] = best;
            let want = match prefer {
                Some(p) if -row[p[i]] - v[p[i]] == best => p[i],
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
        // Many rows to check: the two least reduced costs of every column in one pass over
        // the rows instead of a strided pass down a column per row (a column's price moves
        // only when a row takes it, and then no later row asks about it).
        let columns = (short.len() > COLUMN_PASS_ABOVE).then(|| least_two(scores, n, &u, &v));
        for (i, j) in short {
            if col_row[j] != NONE {
                continue;
            }
            let slack = (-scores[i * n + j] - v[j]) - u[i];
            let room = match &columns {
                // The least reduced cost on column j of a row other than i.
                Some((least, arg, second)) => {
                    (if arg[j] == i { second[j] } else { least[j] }) >= slack
                }
                None => (0..n)
                    .filter(|&k| k != i)
                    .all(|k| (-scores[k * n + j] - v[j]) - u[k] >= slack),
            };
            if room {
                v[j] = -scores[i * n + j] - u[i];
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

    /// JV's augmenting row reduction, then a shortest augmenting path for every row still
    /// free.
    fn complete(&mut self, scores: &[f64]) {
        let free = self.reduce_rows(scores);
        let mut search = Search::new(self.n);
        for i in free {
            search.augment(self, scores, i);
        }
    }

    /// Jonker & Volgenant's augmenting row reduction, two rounds: a free row takes the column
    /// of its least reduced cost `c − v`; when that beats its second least, the column's
    /// price is raised by the difference (`v` lowered: no other row's minimum moves onto it,
    /// and this row stays tight) and the row it takes the column from is reduced at once;
    /// on a tie the row takes the second column if the first is held, and the displaced row
    /// waits for the next round. Each step costs one pass over a row — a Dijkstra search
    /// scans tens of rows — and leaves every `u` feasible. Returns the rows still free.
    fn reduce_rows(&mut self, scores: &[f64]) -> Vec<usize> {
        let n = self.n;
        let mut free: Vec<usize> = (0..n).filter(|&i| self.row_col[i] == NONE).collect();
        if n < 2 {
            return free;
        }
        for _ in 0..ROW_REDUCTION_ROUNDS {
            let mut left = Vec::new();
            // A bound on the steps of a round (each strictly lowers a price; floating-point
            // decrements could be tiny): whatever is free then goes to the Dijkstra phase.
            let mut steps = 0;
            for &first in &free {
                let mut i = first;
                loop {
                    steps += 1;
                    let row = &scores[i * n..][..n];
                    let (least, j1, second, j2) = two_least(row, &self.v);
                    let strict = least < second;
                    let j = if strict || self.col_row[j1] == NONE {
                        j1
                    } else {
                        j2
                    };
                    if strict {
                        self.v[j] -= second - least;
                    }
                    self.u[i] = second.min(-row[j] - self.v[j]);
                    let displaced = std::mem::replace(&mut self.col_row[j], i);
                    self.row_col[i] = j;
                    if displaced == NONE {
                        break;
                    }
                    self.row_col[displaced] = NONE;
                    if strict && steps < ROW_REDUCTION_STEPS * n {
                        i = displaced;
                    } else {
                        left.push(displaced);
                        break;
                    }
                }
            }
            free = left;
        }
        free
    }
}

/// Rows of [`State::from_prices`] short of their column above which the kept-column checks
/// read the whole matrix once ([`least_two`]) rather than one column per row.
const COLUMN_PASS_ABOVE: usize = 16;

/// Per column `j`, the least reduced cost `(−s[k, j] − v[j]) − u[k]` over the rows `k`, a row
/// attaining it, and the least over the other rows.
fn least_two(scores: &[f64], n: usize, u: &[f64], v: &[f64]) -> (Vec<f64>, Vec<usize>, Vec<f64>) {
    let mut least = vec![f64::INFINITY; n];
    let mut arg = vec![NONE; n];
    let mut second = vec![f64::INFINITY; n];
    for (k, row) in scores.chunks_exact(n).enumerate() {
        let columns = least.iter_mut().zip(&mut arg).zip(&mut second);
        for (((l, a), s), (&x, &vj)) in columns.zip(row.iter().zip(v)) {
            // Selects, not branches, so that the pass vectorises.
            let r = (-x - vj) - u[k];
            let lower = r < *l;
            *s = if lower { *l } else { s.min(r) };
            *a = if lower { k } else { *a };
            *l = if lower { r } else { *l };
        }
    }
    (least, arg, second)
}

/// Rounds of augmenting row reduction (JV's choice).
const ROW_REDUCTION_ROUNDS: usize = 2;
/// Steps of one round, per row of the matrix, at most.
const ROW_REDUCTION_STEPS: usize = 2;

/// The least and second least of `row[j] − v[j]` and their columns (the first of equals).
/// `row.len() ≥ 2`. A scalar loop: its branches are rarely taken, so they predict well,
/// and it measured faster here than a branch-free four-lane version.
fn two_least(row: &[f64], v: &[f64]) -> (f64, usize, f64, usize) {
    let (mut least, mut j1) = (-row[0] - v[0], 0);
    let (mut second, mut j2) = (f64::INFINITY, 1);
    for (j, (&s, &vj)) in row.iter().zip(v).enumerate().skip(1) {
        let h = -s - vj;
        if h < second {
            if h >= least {
                (second, j2) = (h, j);
            } else {
                (second, j2) = (least, j1);
                (least, j1) = (h, j);
            }
        }
    }
    (least, j1, second, j2)
}

#[cfg(test)]
mod tests;
