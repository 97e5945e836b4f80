//! The layout of a compact pair vector: one `s × s` row-major block per node group (input,
//! hidden…, output), pairs across groups left out. The first and last groups are fixed (the
//! identity); every other group is one assignment problem.

use ndarray::ArrayView2;

use super::{Operator, SolveError, hungarian};

/// Node groups of a matching problem: their sizes and block offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Groups {
    sizes: Vec<usize>,
    offsets: Vec<usize>,
}

impl Groups {
    /// Groups of `sizes` nodes (input first, output last; at least two groups).
    pub fn new(sizes: &[usize]) -> Self {
        assert!(sizes.len() >= 2, "an input and an output group");
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut total = 0;
        for s in sizes {
            offsets.push(total);
            total += s * s;
        }
        Groups {
            sizes: sizes.to_vec(),
            offsets,
        }
    }

    /// Length of a compact pair vector.
    pub fn dim(&self) -> usize {
        self.sizes.iter().map(|s| s * s).sum()
    }

    /// Node count per group.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Group `g`'s block of `v`, `X[i, j] = v[offset_g + i·s_g + j]`.
    pub fn block<'a>(&self, v: &'a [f64], g: usize) -> &'a [f64] {
        &v[self.offsets[g]..][..self.sizes[g] * self.sizes[g]]
    }

    /// Group `g`'s block of `v`, mutable.
    pub fn block_mut<'a>(&self, v: &'a mut [f64], g: usize) -> &'a mut [f64] {
        &mut v[self.offsets[g]..][..self.sizes[g] * self.sizes[g]]
    }

    /// The hidden (permutable) groups' indices.
    pub fn hidden(&self) -> std::ops::Range<usize> {
        1..self.sizes.len() - 1
    }

    /// One maximising assignment per hidden group of `v`'s blocks, read with `X[i, j] = v[(i,
    /// j)]`, or `X[i, j] = v[(j, i)]` when `transposed`.
    ///
    /// # Errors
    /// [`SolveError::NonFinite`] for a NaN or ±∞ entry.
    pub fn assign(&self, v: &[f64], transposed: bool) -> Result<Vec<Vec<usize>>, SolveError> {
        self.hidden()
            .map(|g| {
                let s = self.sizes[g];
                let block = ArrayView2::from_shape((s, s), self.block(v, g))
                    .expect("a group block has s² entries");
                let x = if transposed {
                    block.reversed_axes()
                } else {
                    block
                };
                Ok(hungarian(x)?.1)
            })
            .collect()
    }

    /// The 0/1 pair vector of an assignment: the identity on the fixed groups, `perms[k]` on
    /// hidden group `k + 1` (entry `(i, perms[k][i])`, or `(perms[k][i], i)` when `transposed`).
    pub fn indicator(&self, perms: &[Vec<usize>], transposed: bool) -> Vec<f64> {
        let mut x = vec![0.0; self.dim()];
        let last = self.sizes.len() - 1;
        for g in [0, last] {
            let s = self.sizes[g];
            let block = self.block_mut(&mut x, g);
            (0..s).for_each(|i| block[i * s + i] = 1.0);
        }
        for (g, perm) in self.hidden().zip(perms) {
            let s = self.sizes[g];
            let block = self.block_mut(&mut x, g);
            for (i, &j) in perm.iter().enumerate() {
                let (r, c) = if transposed { (j, i) } else { (i, j) };
                block[r * s + c] = 1.0;
            }
        }
        x
    }
}

/// `xᵀ K x`.
pub fn quadratic(k: &dyn Operator, x: &[f64]) -> f64 {
    let mut kx = vec![0.0; x.len()];
    k.apply(x, &mut kx);
    dot(x, &kx)
}

/// `Σ a_i b_i`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicator_and_assignment_read_blocks_row_major_or_transposed() {
        let g = Groups::new(&[1, 3, 2]);
        assert_eq!(g.dim(), 1 + 9 + 4);
        let x = g.indicator(&[vec![2, 0, 1]], false);
        // Input (0,0); hidden (0,2), (1,0), (2,1); output (0,0), (1,1).
        let ones: Vec<usize> = (0..x.len()).filter(|&i| x[i] == 1.0).collect();
        assert_eq!(ones, [0, 1 + 2, 1 + 3, 1 + 7, 10, 13]);
        assert_eq!(g.assign(&x, false).unwrap(), [vec![2, 0, 1]]);
        // Read transposed, the same vector is the inverse permutation.
        assert_eq!(g.assign(&x, true).unwrap(), [vec![1, 2, 0]]);
        let t = g.indicator(&[vec![1, 2, 0]], true);
        assert_eq!(t, x);
    }
}
