//! The GEMM-based steps: linear layers, and convolutions as im2col + GEMM (the portable path; the
//! AVX-512 direct kernel in [`super::direct`] replaces it where the CPU allows).
//!
//! Every product is single-threaded (`Parallelism::None`): parallelism comes from rayon over
//! chunks of samples, one level up.

use super::ops::relu;
use super::plan::{Conv, Linear};

/// Largest im2col buffer built at once, in `f32`s (1 MiB), so that it stays in L2.
pub(crate) const COLS_BUDGET: usize = 256 * 1024;

/// `dst (m, n) ← [dst +] lhs (m, k) · rhs (k, n)`, all row-major with the given row strides.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
) {
    if m == 0 {
        return;
    }
    assert!(
        n <= rhs_rs && n <= dst_rs && k <= lhs_rs,
        "row strides too short"
    );
    assert!(lhs.len() >= (m - 1) * lhs_rs + k, "lhs too short");
    assert!(rhs.len() >= (k - 1) * rhs_rs + n, "rhs too short");
    assert!(dst.len() >= (m - 1) * dst_rs + n, "dst too short");
    // SAFETY: the assertions above keep every element gemm touches inside the three slices,
    // and `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Fill each `width`-long row of `dst` with `bias` (or zeros) before an accumulating product.
fn fill_rows(dst: &mut [f32], width: usize, bias: Option<&[f32]>) -> bool {
    match bias {
        Some(b) => {
            for row in dst.chunks_exact_mut(width) {
                row.copy_from_slice(&b[..width]);
            }
            true
        }
        None => false,
    }
}

/// A linear layer on `b` flat samples: `src (b, inputs)` → `dst (b, outputs)`.
pub(super) fn linear(l: &Linear, src: &[f32], dst: &mut [f32]) {
    let b = src.len() / l.inputs;
    debug_assert_eq!(dst.len(), b * l.outputs);
    let acc = fill_rows(dst, l.outputs, l.bias.as_deref());
    matmul(
        b, l.outputs, l.inputs, src, l.inputs, &l.weight, l.outputs, dst, l.outputs, acc,
    );
    if l.relu {
        relu(dst);
    }
}

/// A valid convolution on `b` NHWC samples by im2col + GEMM: `src (b, h, w, cin)` →
/// `dst (b, oh, ow, cout)`. `cols` is scratch space, reused between calls.
pub(super) fn conv(k: &Conv, src: &[f32], dst: &mut [f32], cols: &mut Vec<f32>) {
    let (in_len, pixels) = (k.h * k.w * k.cin, k.oh * k.ow);
    let (row_len, depth) = (k.kw * k.cin, k.kh * k.kw * k.cin);
    let b = src.len() / in_len;
    debug_assert_eq!(dst.len(), b * pixels * k.cout);
    let per_pass = (COLS_BUDGET / (pixels * depth)).max(1);
    let mut first = 0;
    while first < b {
        let count = per_pass.min(b - first);
        cols.resize(count * pixels * depth, 0.0);
        for (s, sample_cols) in cols.chunks_exact_mut(pixels * depth).enumerate() {
            let x = &src[(first + s) * in_len..][..in_len];
            for (p, row) in sample_cols.chunks_exact_mut(depth).enumerate() {
                let (oy, ox) = (p / k.ow, p % k.ow);
                for (ky, part) in row.chunks_exact_mut(row_len).enumerate() {
                    let at = ((oy * k.stride + ky) * k.w + ox * k.stride) * k.cin;
                    part.copy_from_slice(&x[at..at + row_len]);
                }
            }
        }
        let out = &mut dst[first * pixels * k.cout..(first + count) * pixels * k.cout];
        let acc = fill_rows(out, k.cout, k.bias.as_deref());
        matmul(
            count * pixels,
            k.cout,
            depth,
            cols,
            depth,
            &k.weight,
            k.cout_pad,
            out,
            k.cout,
            acc,
        );
        if k.relu {
            relu(out);
        }
        first += count;
    }
}
