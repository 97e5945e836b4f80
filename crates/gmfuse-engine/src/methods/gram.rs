//! The matrices weight matching multiplies: a tensor seen with one group's axis as rows
//! ([`rows`]), and the cross-Gram product `S += A·Bᵀ` ([`add_abt`]) through `gemm`, parallel
//! on the current rayon pool.

use ndarray::{Array2, ArrayD, ArrayView2, Axis};

/// `t` with `axis` (of length `n·block`) split into `n` rows: row `i` holds every entry whose
/// index along `axis` lies in `i·block .. (i+1)·block`, in the tensor's order. Shape
/// `(n, t.len() / n)`, standard layout.
///
/// # Panics
/// If `axis` is out of range or its length is not `n·block`.
pub fn rows(t: &ArrayD<f64>, axis: usize, block: usize, n: usize) -> Array2<f64> {
    let shape = t.shape();
    assert!(
        axis < shape.len() && shape[axis] == n * block,
        "axis {axis} of {shape:?} is not {n} blocks of {block}"
    );
    let pre: usize = shape[..axis].iter().product();
    let post: usize = shape[axis + 1..].iter().product::<usize>() * block;
    let t = t.as_standard_layout();
    let cube = t
        .view()
        .into_shape_with_order((pre, n, post))
        .expect("standard layout reshapes");
    let mut out = Array2::zeros((n, pre * post));
    for (p, plane) in cube.axis_iter(Axis(0)).enumerate() {
        out.slice_mut(ndarray::s![.., p * post..(p + 1) * post])
            .assign(&plane);
    }
    out
}

/// `s (n, m) += a (n, d) · b (m, d)ᵀ`.
///
/// # Panics
/// If the shapes disagree.
pub fn add_abt(s: &mut Array2<f64>, a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) {
    let (n, d) = a.dim();
    let (m, d2) = b.dim();
    assert_eq!(d, d2, "a and b have the same number of columns");
    assert_eq!(s.dim(), (n, m), "s is n × m");
    if n == 0 || m == 0 || d == 0 {
        return;
    }
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (s_rs, s_cs) = (s.strides()[0], s.strides()[1]);
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 && n * m * d >= 1 << 18 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the three views are valid for their shapes and strides (ndarray guarantees it),
    // gemm reads only inside them, and `s` is borrowed mutably so it aliases neither input.
    unsafe {
        gemm::gemm(
            n,
            m,
            d,
            s.as_mut_ptr(),
            s_cs,
            s_rs,
            true,
            a.as_ptr(),
            a_cs,
            a_rs,
            // bᵀ (d, m): element (k, j) is b[j, k].
            b.as_ptr(),
            b_rs,
            b_cs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, IxDyn, array};

    #[test]
    fn rows_split_an_axis_into_blocks() {
        // A linear weight [out = 2, in = 3·2] after a flatten of 3 channels of 2 positions.
        let t = Array::from_shape_vec(IxDyn(&[2, 6]), (0..12).map(f64::from).collect()).unwrap();
        let r = rows(&t, 1, 2, 3);
        assert_eq!(
            r,
            array![[0., 1., 6., 7.], [2., 3., 8., 9.], [4., 5., 10., 11.]]
        );
        assert_eq!(rows(&t, 0, 1, 2), t.into_shape_with_order((2, 6)).unwrap());
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
