//! The Dijkstra search of one augmentation: from a free row to the nearest free column over
//! reduced costs, then the price update and the flip of the path.

use super::{NONE, State};

/// Scratch space of the Dijkstra search, reused across augmentations.
///
/// The scan of a row runs over every column in index order, branch-free, so that it
/// vectorises: a scanned column's key is `−∞`, which no distance improves and the minimum
/// skips.
pub(super) struct Search {
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
    pub(super) fn new(n: usize) -> Self {
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
    pub(super) fn augment(&mut self, s: &mut State, scores: &[f64], start: usize) {
        let n = s.n;
        self.key.fill(f64::INFINITY);
        self.rows.clear();
        self.cols.clear();
        let mut i = start;
        let mut reached;
        let sink = loop {
            self.rows.push(i);
            let (best, at) = scan(
                &scores[i * n..][..n],
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

/// Relax every unscanned column from row `i` of the scores (`base − row[j] − v[j]`: costs are
/// negated scores) and return the least key of an unscanned column and the first column
/// holding it.
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
    scan_lanes(row, v, base, i, key, pred)
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
    scan_lanes(row, v, base, i, key, pred)
}

/// Columns per step of [`scan_lanes`]: one AVX2 vector of `f64`.
pub(super) const LANES: usize = 4;

/// [`scan`] in blocks of [`LANES`] columns, every lane branch-free (selects, which compile to
/// vector blends), keeping per lane the least key and the first column holding it; then the
/// lanes are reduced (ties to the lower column) and the last `n % LANES` columns are scanned
/// one at a time.
#[inline(always)]
fn scan_lanes(
    row: &[f64],
    v: &[f64],
    base: f64,
    i: usize,
    key: &mut [f64],
    pred: &mut [usize],
) -> (f64, usize) {
    let n = row.len();
    let (v, key, pred) = (&v[..n], &mut key[..n], &mut pred[..n]);
    let mut min = [f64::INFINITY; LANES];
    let mut arg = [NONE; LANES];
    let whole = n - n % LANES;
    for c in (0..whole).step_by(LANES) {
        for l in 0..LANES {
            let j = c + l;
            let d = base - row[j] - v[j];
            let better = d < key[j];
            key[j] = if better { d } else { key[j] };
            pred[j] = if better { i } else { pred[j] };
            let open = if key[j] != f64::NEG_INFINITY {
                key[j]
            } else {
                f64::INFINITY
            };
            let lower = open < min[l];
            min[l] = if lower { open } else { min[l] };
            arg[l] = if lower { j } else { arg[l] };
        }
    }
    let (mut best, mut at) = (f64::INFINITY, NONE);
    for (m, a) in min.into_iter().zip(arg) {
        if m < best || (m == best && a < at) {
            (best, at) = (m, a);
        }
    }
    for j in whole..n {
        let d = base - row[j] - v[j];
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
