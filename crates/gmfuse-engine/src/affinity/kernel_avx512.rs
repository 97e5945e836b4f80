//! The default layout's symmetric product (`f32` entries) on AVX-512: [`super::kernel`]'s loop
//! with a chunk written in intrinsics, because the compiler's vectorisation of the portable
//! chunk splits its 8-lane products into 4-lane halves to form the 4-lane partial sums of
//! `to_cur`. Here each 16-entry block is two 8-lane conversions and products, and the partial
//! sums are the products' four 4-lane quarters added left to right — the portable chunk's
//! order, so the result is bit-identical to it (the portable chunk starts its partial sums
//! from `0.0`, which differs from starting at the first quarter only in the sign of an exact
//! zero, and `dots` starts at `+0.0`, so no sign of zero reaches a result).

use std::arch::x86_64::{
    __m512d, _mm256_add_pd, _mm256_loadu_pd, _mm256_loadu_ps, _mm256_storeu_pd, _mm512_add_pd,
    _mm512_castpd512_pd256, _mm512_cvtps_pd, _mm512_extractf64x4_pd, _mm512_loadu_pd,
    _mm512_mul_pd, _mm512_set1_pd, _mm512_setzero_pd, _mm512_storeu_pd,
};

use super::kernel::{self, Chunks, DOT_LANES, LANES, Node, Portable, Rows};

/// [`super::block::Entry::block_apply`] for `f32` entries (a product that is not symmetric
/// takes the portable chunk).
#[target_feature(enable = "avx512f")]
pub(super) fn apply(node: Node<'_, f32>, to_pre: &mut [f64], to_cur: &mut [f64]) {
    kernel::apply::<f32, Avx512, 4>(node, to_pre, to_cur);
}

struct Avx512;

impl Chunks<f32> for Avx512 {
    #[inline(always)]
    fn chunk<const B: usize, const SYMMETRIC: bool>(
        rows: &Rows<'_, f32>,
        c0: usize,
        to: &mut [f64],
        dots: &mut [[f64; DOT_LANES]],
    ) {
        if SYMMETRIC {
            // SAFETY: only `apply` calls this, and it is compiled for AVX-512F.
            unsafe { symmetric_chunk::<B>(rows, c0, to, dots) }
        } else {
            Portable::chunk::<B, false>(rows, c0, to, dots);
        }
    }
}

/// 8 `f64` lanes from `s[at..at + 8]` (bounds checked).
#[target_feature(enable = "avx512f")]
#[inline]
fn load8(s: &[f64], at: usize) -> __m512d {
    let s = &s[at..at + 8];
    // SAFETY: `s` holds 8 `f64`; the load is unaligned.
    unsafe { _mm512_loadu_pd(s.as_ptr()) }
}

#[target_feature(enable = "avx512f")]
fn symmetric_chunk<const B: usize>(
    rows: &Rows<'_, f32>,
    c0: usize,
    to: &mut [f64],
    dots: &mut [[f64; DOT_LANES]],
) {
    let xp = &rows.x_pre_a[c0..][..B * LANES];
    let x: [[__m512d; 2]; B] =
        std::array::from_fn(|j| [load8(xp, j * LANES), load8(xp, j * LANES + 8)]);
    let mut acc = [[_mm512_setzero_pd(); 2]; B];
    for (d, &xv) in rows.x_cur_b.iter().enumerate() {
        let seg = &rows.row[d * rows.np + c0..][..B * LANES];
        kernel::prefetch(seg, B);
        let xv = _mm512_set1_pd(xv);
        let dd = &mut dots[d];
        // SAFETY: `dd` holds 4 `f64`.
        let mut sum = unsafe { _mm256_loadu_pd(dd.as_ptr()) };
        for j in 0..B {
            let s = &seg[j * LANES..][..LANES];
            // SAFETY: `s` holds 16 `f32`: two unaligned loads of 8.
            let (m1, m2) = unsafe {
                (
                    _mm512_cvtps_pd(_mm256_loadu_ps(s.as_ptr())),
                    _mm512_cvtps_pd(_mm256_loadu_ps(s.as_ptr().add(8))),
                )
            };
            acc[j][0] = _mm512_add_pd(acc[j][0], _mm512_mul_pd(xv, m1));
            acc[j][1] = _mm512_add_pd(acc[j][1], _mm512_mul_pd(xv, m2));
            let (p1, p2) = (_mm512_mul_pd(m1, x[j][0]), _mm512_mul_pd(m2, x[j][1]));
            let part = _mm256_add_pd(_mm512_castpd512_pd256(p1), _mm512_extractf64x4_pd::<1>(p1));
            let part = _mm256_add_pd(part, _mm512_castpd512_pd256(p2));
            let part = _mm256_add_pd(part, _mm512_extractf64x4_pd::<1>(p2));
            sum = _mm256_add_pd(sum, part);
        }
        // SAFETY: as the load above.
        unsafe { _mm256_storeu_pd(dd.as_mut_ptr(), sum) };
    }
    for (j, acc) in acc.iter().enumerate() {
        for (h, acc) in acc.iter().enumerate() {
            let o = &mut to[c0 + j * LANES + h * 8..][..8];
            // SAFETY: `o` holds 8 `f64`.
            unsafe { _mm512_storeu_pd(o.as_mut_ptr(), _mm512_add_pd(load8(o, 0), *acc)) };
        }
    }
}
