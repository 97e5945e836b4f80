//! Direct convolution with AVX-512 (x86-64 only, detected at run time): an implicit GEMM that
//! reads the NHWC input in place, with no im2col copy.
//!
//! A tile holds `R` neighbouring output pixels of one row × `NB` blocks of 16 output channels in
//! `R·NB` zmm accumulators. For each kernel row `ky`, the `kw·cin` inputs a pixel needs are
//! contiguous in NHWC, so the inner loop walks them with one broadcast per pixel and one
//! 16-channel weight load per block — `R·NB` FMAs per `R + NB` loads. ReLU and bias are fused.
//! The sums run in the same `(ky, kx, c)` order for every pixel; results equal im2col + GEMM up
//! to float rounding.

use super::plan::{Conv, LANES};

/// Whether [`conv`] can run on this CPU.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A valid convolution of one NHWC sample: `src (h, w, cin)` → `dst (oh, ow, cout)`.
///
/// # Panics
/// If [`available`] is false, or the slices do not have the sample lengths of `k`.
pub(super) fn conv(k: &Conv, src: &[f32], dst: &mut [f32]) {
    assert!(available(), "the direct convolution needs AVX-512");
    assert_eq!(src.len(), k.h * k.w * k.cin, "input length");
    assert_eq!(dst.len(), k.oh * k.ow * k.cout, "output length");
    assert_eq!(
        k.weight.len(),
        k.kh * k.kw * k.cin * k.cout_pad,
        "weight length"
    );
    assert!((k.ow - 1) * k.stride + k.kw <= k.w && (k.oh - 1) * k.stride + k.kh <= k.h);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present (asserted above) and the shapes were checked, which keeps
    // every pointer the kernels form inside `src`, `dst` and the weights.
    unsafe {
        x86::conv(k, src, dst);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Conv, LANES};

    /// Pick the tile for the channel count and run every row.
    ///
    /// # Safety
    /// AVX-512F must be available and the lengths must match `k` (see [`super::conv`]).
    pub(super) unsafe fn conv(k: &Conv, src: &[f32], dst: &mut [f32]) {
        let blocks = k.cout_pad / LANES;
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        // SAFETY: forwarded from the caller.
        unsafe {
            match (blocks % 4, blocks % 2) {
                (0, _) if k.ow >= 6 => rows::<6, 4>(k, s, d),
                (0, _) => rows::<1, 4>(k, s, d),
                (_, 0) if k.ow >= 12 => rows::<12, 2>(k, s, d),
                (_, 0) => rows::<1, 2>(k, s, d),
                _ if k.ow >= 12 => rows::<12, 1>(k, s, d),
                _ => rows::<1, 1>(k, s, d),
            }
        }
    }

    /// All output rows with tiles of `R` pixels (`R <= ow`); the last tile of a row is moved
    /// left to end at the row's end, recomputing a few pixels rather than running a short tile.
    #[target_feature(enable = "avx512f")]
    unsafe fn rows<const R: usize, const NB: usize>(k: &Conv, src: *const f32, dst: *mut f32) {
        debug_assert!(R <= k.ow);
        let blocks = k.cout_pad / LANES;
        let bias = k.bias.as_ref().map_or(std::ptr::null(), |b| b.as_ptr());
        for oy in 0..k.oh {
            let mut ox = 0;
            while ox < k.ow {
                let x = ox.min(k.ow - R);
                for blk in (0..blocks).step_by(NB) {
                    // SAFETY: pixel (oy, x..x+R) and its window lie inside the sample (the
                    // window fits: checked by the caller); channel blocks stay below cout_pad.
                    unsafe {
                        tile::<R, NB>(
                            k,
                            src.add(((oy * k.stride) * k.w + x * k.stride) * k.cin),
                            bias,
                            dst.add((oy * k.ow + x) * k.cout),
                            blk,
                        );
                    }
                }
                ox += R;
            }
        }
    }

    /// One tile: pixels `src`, `src + stride·cin`, … × channel blocks `blk..blk + NB`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const R: usize, const NB: usize>(
        k: &Conv,
        src: *const f32,
        bias: *const f32,
        dst: *mut f32,
        blk: usize,
    ) {
        let (step, row_len, cout_pad) = (k.stride * k.cin, k.kw * k.cin, k.cout_pad);
        let mut acc = [[_mm512_setzero_ps(); NB]; R];
        if !bias.is_null() {
            for i in 0..NB {
                // SAFETY: the bias holds cout_pad values.
                let b = unsafe { _mm512_loadu_ps(bias.add((blk + i) * LANES)) };
                for a in &mut acc {
                    a[i] = b;
                }
            }
        }
        for ky in 0..k.kh {
            // SAFETY (whole block): rows ky < kh of the window, inputs j < kw·cin of pixel
            // r < R are inside the sample; weight rows (ky·kw·cin + j) < kh·kw·cin.
            unsafe {
                let x = src.add(ky * k.w * k.cin);
                let w = k.weight.as_ptr().add(ky * row_len * cout_pad + blk * LANES);
                for j in 0..row_len {
                    let wr = w.add(j * cout_pad);
                    let mut wv = [_mm512_setzero_ps(); NB];
                    for (i, v) in wv.iter_mut().enumerate() {
                        *v = _mm512_loadu_ps(wr.add(i * LANES));
                    }
                    for (r, a) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(*x.add(r * step + j));
                        for i in 0..NB {
                            a[i] = _mm512_fmadd_ps(xv, wv[i], a[i]);
                        }
                    }
                }
            }
        }
        let zero = _mm512_setzero_ps();
        for (r, a) in acc.iter().enumerate() {
            for (i, &v) in a.iter().enumerate() {
                let v = if k.relu { _mm512_max_ps(v, zero) } else { v };
                let c = (blk + i) * LANES;
                let left = k.cout - c.min(k.cout);
                // SAFETY: pixel r of the tile is inside the output row; the mask stops the
                // store at channel cout.
                unsafe {
                    let p = dst.add(r * k.cout + c);
                    if left >= LANES {
                        _mm512_storeu_ps(p, v);
                    } else if left > 0 {
                        _mm512_mask_storeu_ps(p, ((1u32 << left) - 1) as __mmask16, v);
                    }
                }
            }
        }
    }
}
