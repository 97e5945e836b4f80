//! Matrix products on strided `f32` slices (the `gemm` crate, single-threaded) and the
//! bias-free linear layer built on them.
//!
//! Every product runs with `Parallelism::None`: the trainer parallelises over fixed chunks of the
//! batch instead, so a product's summation order never depends on the thread count.

/// A strided matrix view: element `(i, j)` is at `i * rs + j * cs`.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl Layout {
    /// A dense row-major `rows × cols` matrix.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Layout {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a dense row-major `cols × rows` matrix, seen as `rows × cols`.
    pub fn transposed(rows: usize, cols: usize) -> Self {
        Layout {
            rows,
            cols,
            rs: 1,
            cs: rows,
        }
    }

    /// One past the largest index the view touches (0 when empty).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// `c = a · b`, or `c += a · b` when `accumulate`.
///
/// # Panics
/// When the shapes disagree or a view reaches past its slice.
pub fn matmul(
    c: &mut [f32],
    lc: Layout,
    accumulate: bool,
    a: &[f32],
    la: Layout,
    b: &[f32],
    lb: Layout,
) {
    assert!(la.rows == lc.rows && lb.cols == lc.cols && la.cols == lb.rows);
    assert!(lc.extent() <= c.len() && la.extent() <= a.len() && lb.extent() <= b.len());
    if lc.rows == 0 || lc.cols == 0 {
        return;
    }
    if la.cols == 0 {
        if !accumulate {
            for i in 0..lc.rows {
                for j in 0..lc.cols {
                    c[i * lc.rs + j * lc.cs] = 0.0;
                }
            }
        }
        return;
    }
    let s = |x: usize| x as isize;
    // SAFETY: the asserts above keep every index the product touches inside its slice; `c` is
    // borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            lc.rows,
            lc.cols,
            la.cols,
            c.as_mut_ptr(),
            s(lc.cs),
            s(lc.rs),
            accumulate,
            a.as_ptr(),
            s(la.cs),
            s(la.rs),
            b.as_ptr(),
            s(lb.cs),
            s(lb.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `y = x Wᵀ`. `x`: `(n, inp)`, `w`: `(out, inp)` → `y`: `(n, out)`, all row-major.
pub fn linear_forward(x: &[f32], w: &[f32], inp: usize, out: usize, y: &mut [f32]) {
    let n = x.len() / inp;
    matmul(
        y,
        Layout::row_major(n, out),
        false,
        x,
        Layout::row_major(n, inp),
        w,
        Layout::transposed(inp, out),
    );
}

/// Gradients of [`linear_forward`]: `dw += dyᵀ x` and, when asked, `dx = dy W`.
pub fn linear_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    inp: usize,
    out: usize,
    dw: &mut [f32],
    dx: Option<&mut [f32]>,
) {
    let n = x.len() / inp;
    matmul(
        dw,
        Layout::row_major(out, inp),
        true,
        dy,
        Layout::transposed(out, n),
        x,
        Layout::row_major(n, inp),
    );
    if let Some(dx) = dx {
        matmul(
            dx,
            Layout::row_major(n, inp),
            false,
            dy,
            Layout::row_major(n, out),
            w,
            Layout::row_major(out, inp),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{check_gradient, random_vec};

    #[test]
    fn matmul_of_two_small_matrices_matches_the_hand_computed_product() {
        // [[1, 2, 3], [4, 5, 6]] · [[7, 8], [9, 10], [11, 12]] = [[58, 64], [139, 154]].
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
        let mut c = [1.0; 4];
        matmul(
            &mut c,
            Layout::row_major(2, 2),
            false,
            &a,
            Layout::row_major(2, 3),
            &b,
            Layout::row_major(3, 2),
        );
        assert_eq!(c, [58.0, 64.0, 139.0, 154.0]);
        // Accumulating adds the product again; a transposed view of `a` reads its columns.
        matmul(
            &mut c,
            Layout::row_major(2, 2),
            true,
            &a,
            Layout::row_major(2, 3),
            &b,
            Layout::row_major(3, 2),
        );
        assert_eq!(c, [116.0, 128.0, 278.0, 308.0]);
        let mut ct = [0.0; 9];
        // aᵀ (3×2) · a (2×3): entry (0, 0) = 1·1 + 4·4 = 17, (2, 1) = 3·2 + 6·5 = 36.
        matmul(
            &mut ct,
            Layout::row_major(3, 3),
            false,
            &a,
            Layout::transposed(3, 2),
            &a,
            Layout::row_major(2, 3),
        );
        assert_eq!(ct[0], 17.0);
        assert_eq!(ct[2 * 3 + 1], 36.0);
    }

    #[test]
    fn linear_gradients_match_finite_differences() {
        let (n, inp, out) = (3, 5, 4);
        let x = random_vec(n * inp, 1);
        let w = random_vec(out * inp, 2);
        let r = random_vec(n * out, 3); // loss = Σ r ⊙ y
        let loss = |x: &[f32], w: &[f32]| {
            let mut y = vec![0.0; n * out];
            linear_forward(x, w, inp, out, &mut y);
            y.iter().zip(&r).map(|(a, b)| f64::from(a * b)).sum::<f64>()
        };
        let mut dw = vec![0.0; out * inp];
        let mut dx = vec![0.0; n * inp];
        linear_backward(&x, &w, &r, inp, out, &mut dw, Some(&mut dx));
        check_gradient(&x, &dx, |x| loss(x, &w));
        check_gradient(&w, &dw, |w| loss(&x, w));
    }
}
