//! The matrices weight matching multiplies: a tensor seen with one group's axis as rows
//! ([`rows`]), and the cross-Gram product `S += A·Bᵀ` ([`add_abt`]).

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayD, ArrayView2, LinalgScalar};

/// `t` with `axis` (of length `n·block`) split into `n` rows: row `i` holds every entry whose
/// index along `axis` lies in `order[i]·block .. (order[i]+1)·block` (`order` `None`: `i`), in
/// the tensor's order, as `f32` (the precision [`add_abt`] multiplies in). Shape
/// `(n, t.len() / n)`, standard layout.
///
/// Written as slice copies: ndarray's generic `assign` on dynamic-rank views took a third of
/// weight matching's time.
///
/// # Panics
/// If `axis` is out of range or its length is not `n·block`.
pub fn rows(
    t: &ArrayD<f64>,
    axis: usize,
    block: usize,
    n: usize,
    order: Option<&[usize]>,
) -> Array2<f32> {
    let shape = t.shape();
    assert!(
        axis < shape.len() && shape[axis] == n * block,
        "axis {axis} of {shape:?} is not {n} blocks of {block}"
    );
    let pre: usize = shape[..axis].iter().product();
    let post: usize = shape[axis + 1..].iter().product::<usize>() * block;
    let t = t.as_standard_layout();
    let src = t.as_slice().expect("standard layout is contiguous");
    let width = pre * post;
    let mut out = vec![0f32; n * width];
    // Tiles of TILE values of `pre`: each output row gets TILE·post contiguous values, and a
    // tile's source (TILE·n·post values) stays in cache while its rows are written — the
    // plain loop wrote one value per row for `post = 1` (a transpose), a cache miss each.
    for p0 in (0..pre).step_by(TILE) {
        let tile = TILE.min(pre - p0);
        for i in 0..n {
            let k = order.map_or(i, |o| o[i]);
            let to = &mut out[i * width + p0 * post..][..tile * post];
            for (q, chunk) in to.chunks_exact_mut(post).enumerate() {
                let from = &src[((p0 + q) * n + k) * post..][..post];
                for (d, s) in chunk.iter_mut().zip(from) {
                    *d = *s as f32;
                }
            }
        }
    }
    Array2::from_shape_vec((n, width), out).expect("n · width entries")
}

/// Values of the leading axes [`rows`] copies per pass.
const TILE: usize = 32;

/// `s (n, m) += a (n, d) · b (m, d)ᵀ`, in `f32` or `f64`.
///
/// Through ndarray's `general_mat_mul` (the `matrixmultiply` kernels, which pack strided
/// operands): on this project's 2-core machine it beat the `gemm` crate for these shapes
/// (1024³ in f64: 0.072 s vs 0.09–0.11 s with two threads; in f32: 0.03 s).
///
/// # Panics
/// If the shapes disagree.
pub fn add_abt<T: LinalgScalar>(s: &mut Array2<T>, a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) {
    let (n, d) = a.dim();
    let (m, d2) = b.dim();
    assert_eq!(d, d2, "a and b have the same number of columns");
    assert_eq!(s.dim(), (n, m), "s is n × m");
    general_mat_mul(T::one(), &a, &b.t(), T::one(), s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, IxDyn, array};

    #[test]
    fn rows_split_an_axis_into_blocks() {
        // A linear weight [out = 2, in = 3·2] after a flatten of 3 channels of 2 positions.
        let t = Array::from_shape_vec(IxDyn(&[2, 6]), (0..12).map(f64::from).collect()).unwrap();
        let r = rows(&t, 1, 2, 3, None);
        assert_eq!(
            r,
            array![[0., 1., 6., 7.], [2., 3., 8., 9.], [4., 5., 10., 11.]]
        );
        assert_eq!(
            rows(&t, 0, 1, 2, None),
            t.mapv(|x| x as f32).into_shape_with_order((2, 6)).unwrap()
        );
        assert_eq!(
            rows(&t, 1, 2, 3, Some(&[2, 0, 1])),
            array![[4., 5., 10., 11.], [0., 1., 6., 7.], [2., 3., 8., 9.]]
        );
    }

    #[test]
    fn add_abt_accumulates_the_cross_gram() {
        let a = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let b = array![[1.0, 0.0], [0.0, 1.0]];
        let mut s = Array2::ones((3, 2));
        add_abt(&mut s, a.view(), b.view());
        assert_eq!(s, &a.dot(&b.t()) + 1.0);
        // Transposed (non-contiguous) operands give the same product.
        let mut t = Array2::zeros((2, 3));
        add_abt(&mut t, b.view(), a.view());
        assert_eq!(t, b.dot(&a.t()));
    }
}
