//! A layer block's entries `exp(-‖f1[e1] − f2[e2]‖₂)` for every pair of rows of `f1`, `f2`
//! (`E × feat`, row-major), as an `E × E` row-major matrix.
//!
//! Distances are summed directly, one feature at a time in order (like scipy's `cdist`), not
//! via `‖x‖² + ‖y‖² − 2x·y`, which cancels badly for near-identical edges.
//!
//! - [`exact`] (the example's layout): `f64`, libm's `exp` — bit for bit the numpy reference.
//! - [`rounded_f32`] (the default layout): the same `f64` value rounded to `f32`, but with a
//!   vectorised `exp` ([`exp_neg`], within a few `f64` ulps of libm's). Its result is
//!   bit-identical to rounding libm's value: wherever the fast value lies within
//!   [`GUARD_ULPS`] of a point where `f32` rounding changes (a midpoint between two `f32`s),
//!   the entry is recomputed with libm — about one entry in 4·10⁶. libm's scalar `exp` was
//!   over half of the default affinity build.

use rayon::prelude::*;

/// The example's entries, in `f64` with libm's `exp`.
pub(super) fn exact(f1: &[f64], f2: &[f64], feat: usize) -> Vec<f64> {
    build(f1, f2, feat, |dist, _, out: &mut [f64]| {
        for (o, d) in out.iter_mut().zip(dist) {
            *o = libm_entry(*d);
        }
    })
}

/// The default layout's entries: [`exact`]'s values rounded to `f32`, computed faster.
pub(super) fn rounded_f32(f1: &[f64], f2: &[f64], feat: usize) -> Vec<f32> {
    build(f1, f2, feat, finish_f32)
}

/// One entry from its squared distance, as the numpy reference computes it.
fn libm_entry(dist: f64) -> f64 {
    (-dist.sqrt()).exp()
}

/// Rows of the block in parallel: squared distances of row `e1` against every `e2`, then
/// `finish(distances, scratch, out_row)`.
fn build<T, F>(f1: &[f64], f2: &[f64], feat: usize, finish: F) -> Vec<T>
where
    T: Copy + Default + Send,
    F: Fn(&[f64], &mut [f64], &mut [T]) + Sync,
{
    debug_assert_eq!(f1.len(), f2.len());
    let e = f1.len() / feat;
    // model 2's features transposed (feat × E) so the inner loop runs over contiguous e2.
    let mut f2t = vec![0.0; feat * e];
    for (e2, row) in f2.chunks_exact(feat).enumerate() {
        for (k, v) in row.iter().enumerate() {
            f2t[k * e + e2] = *v;
        }
    }
    let mut m = vec![T::default(); e * e];
    advise_huge_pages(&mut m);
    m.par_chunks_mut(e).enumerate().for_each_init(
        || (vec![0.0; e], vec![0.0; e]),
        |(dist, scratch), (e1, out)| {
            distances(&f1[e1 * feat..][..feat], &f2t, dist);
            finish(dist, scratch, out);
        },
    );
    m
}

/// Ask Linux to back `m` with 2 MiB pages where it can (the hint takes effect only on pages
/// not yet touched: a fresh zeroed allocation). In this project's VM a 4 KiB page fault or
/// TLB miss is costly, and `m` is written once and then streamed every power step: with
/// huge pages the writes fault 512× less often and the product stops waiting on page walks.
/// No crate offers the hint for a `Vec`'s memory, so the system call is made here.
fn advise_huge_pages<T>(m: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = m.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(m);
        let first = start.next_multiple_of(PAGE);
        let len = end.saturating_sub(first) / PAGE * PAGE;
        if len > 0 {
            // SAFETY: `first .. first + len` lies inside `m`'s allocation and is page-aligned;
            // MADV_HUGEPAGE changes how the pages are backed, never their contents. A failure
            // (no THP support) leaves the pages as they were, which is fine.
            unsafe {
                libc::madvise(first as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = m;
}

fn distances(x: &[f64], f2t: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the feature the function is compiled for.
            return unsafe { distances_avx512(x, f2t, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { distances_avx2(x, f2t, out) };
        }
    }
    distances_generic(x, f2t, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn distances_avx512(x: &[f64], f2t: &[f64], out: &mut [f64]) {
    distances_generic(x, f2t, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn distances_avx2(x: &[f64], f2t: &[f64], out: &mut [f64]) {
    distances_generic(x, f2t, out);
}

/// Entries of `out` whose sums stay in registers while `k` runs.
const DIST_LANES: usize = 32;

/// `out[e2] = Σ_k (x[k] − f2t[k][e2])²`, summed in `k` order from `0.0` (no fused
/// multiply-add: the example's entries are bit for bit numpy's), `DIST_LANES` entries at a
/// time so that the sums are written once instead of once per `k`.
#[inline(always)]
fn distances_generic(x: &[f64], f2t: &[f64], out: &mut [f64]) {
    let e = out.len();
    let whole = e - e % DIST_LANES;
    for e0 in (0..whole).step_by(DIST_LANES) {
        let mut acc = [0.0f64; DIST_LANES];
        for (k, xk) in x.iter().enumerate() {
            let y: &[f64; DIST_LANES] = f2t[k * e + e0..][..DIST_LANES]
                .try_into()
                .expect("lane block");
            for (a, y) in acc.iter_mut().zip(y) {
                let d = xk - y;
                *a += d * d;
            }
        }
        out[e0..e0 + DIST_LANES].copy_from_slice(&acc);
    }
    for (e2, o) in out.iter_mut().enumerate().skip(whole) {
        let mut acc = 0.0;
        for (k, xk) in x.iter().enumerate() {
            let d = xk - f2t[k * e + e2];
            acc += d * d;
        }
        *o = acc;
    }
}

fn finish_f32(dist: &[f64], scratch: &mut [f64], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the feature the function is compiled for.
        return unsafe { finish_f32_avx2(dist, scratch, out) };
    }
    finish_f32_generic(dist, scratch, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn finish_f32_avx2(dist: &[f64], scratch: &mut [f64], out: &mut [f32]) {
    finish_f32_generic(dist, scratch, out);
}

/// Two branch-free (vectorised) passes — fast values, then rounding with a flag for values
/// too near an `f32` rounding point — and a scalar repair pass only when a flag was raised.
#[inline(always)]
fn finish_f32_generic(dist: &[f64], scratch: &mut [f64], out: &mut [f32]) {
    for (v, d) in scratch.iter_mut().zip(dist) {
        *v = exp_neg(d.sqrt());
    }
    let mut unsure = false;
    for (o, &v) in out.iter_mut().zip(scratch.iter()) {
        *o = v as f32;
        unsure |= near_f32_tie(v);
    }
    if unsure {
        for ((o, &v), &d) in out.iter_mut().zip(scratch.iter()).zip(dist) {
            if near_f32_tie(v) {
                *o = libm_entry(d) as f32;
            }
        }
    }
}

/// How far (in `f64` ulps) a fast value must lie from an `f32` rounding midpoint to round as
/// libm's value does. [`exp_neg`] is within 3 ulps of libm (tested); the margin is generous,
/// and costs a libm call for one entry in ~4·10⁶.
const GUARD_ULPS: i64 = 64;
/// Below this (`2⁻¹²⁵`) the `f32` result is near or below the subnormal range, or the fast
/// path's range reduction has been clamped: libm decides.
const SMALLEST_FAST: f64 = 2.350_988_701_644_575e-38;

/// Whether `v` might round to a different `f32` than a value a few ulps away (or is out of
/// the fast path's range, or NaN).
#[inline(always)]
fn near_f32_tie(v: f64) -> bool {
    // The low 29 of the 52 mantissa bits are what `as f32` drops; 2²⁸ is the midpoint.
    let low = (v.to_bits() & ((1 << 29) - 1)) as i64;
    (low - (1 << 28)).abs() <= GUARD_ULPS || v.is_nan() || v < SMALLEST_FAST
}

const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// `1.5·2⁵²`: adding it rounds to an integer, which lands in the low mantissa bits.
const SHIFTER: f64 = 6_755_399_441_055_744.0;
/// `ln 2` split so that `n·LN2_HI` is exact for `|n| < 2²⁰` (fdlibm's constants).
const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// `1/k!` for `k = 13, 12, …, 2`: Taylor terms of `exp(r)` for `|r| ≤ ln2/2` (remainder
/// `< 5·10⁻¹⁸`).
const INV_FACT: [f64; 12] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    1.0 / 2.0,
];

/// `exp(−s)` for `s ≥ 0`, branch-free so that it vectorises: `−s = n·ln2 + r`, `exp(r)` by
/// its Taylor polynomial, times `2ⁿ` built in the exponent bits. `s > 700` is clamped (the
/// result is then below [`SMALLEST_FAST`] and libm decides).
#[inline(always)]
fn exp_neg(s: f64) -> f64 {
    let x = (-s).max(-700.0);
    let t = x * LOG2_E + SHIFTER;
    let n = t - SHIFTER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = INV_FACT[0];
    for c in &INV_FACT[1..] {
        p = p * r + c;
    }
    p = p * r + 1.0;
    p = p * r + 1.0;
    // The low bits of `t` hold n (two's complement); n + 1023 is 2ⁿ's biased exponent.
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> i64 {
        (a.to_bits() as i64 - b.to_bits() as i64).abs()
    }

    #[test]
    fn distances_are_summed_in_feature_order_bit_for_bit() {
        // Every width around the register block (32) and a few features, against the sum
        // numpy's `cdist` forms: `0.0 + d₀² + d₁² + …` from the left.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for e in [1, 31, 32, 33, 64, 95, 130] {
            for feat in [1, 3, 25] {
                let x: Vec<f64> = (0..feat).map(|_| next()).collect();
                let f2t: Vec<f64> = (0..feat * e).map(|_| next()).collect();
                let mut out = vec![f64::NAN; e];
                distances(&x, &f2t, &mut out);
                for (e2, o) in out.iter().enumerate() {
                    let want = x.iter().enumerate().fold(0.0, |s, (k, xk)| {
                        let d = xk - f2t[k * e + e2];
                        s + d * d
                    });
                    assert_eq!(o.to_bits(), want.to_bits(), "e {e} feat {feat} e2 {e2}");
                }
            }
        }
    }

    #[test]
    fn the_fast_exp_is_within_three_ulps_of_libm() {
        let mut worst = 0;
        for i in 0..400_000 {
            // Dense near 0 (most entries), then out to e⁻⁸⁰.
            let s = if i < 200_000 {
                i as f64 * 1e-5
            } else {
                (i - 200_000) as f64 * 4e-4
            };
            worst = worst.max(ulps(exp_neg(s), (-s).exp()));
        }
        assert!(worst <= 3, "worst {worst} ulps");
        assert_eq!(exp_neg(0.0), 1.0);
    }

    #[test]
    fn values_at_an_f32_midpoint_are_flagged_for_libm() {
        // 1 + 2⁻²⁴ lies halfway between the f32s 1 and 1 + 2⁻²³.
        let mid = 1.0 + f64::powi(2.0, -24);
        assert!(near_f32_tie(mid));
        assert!(near_f32_tie(f64::from_bits(mid.to_bits() + 64)));
        assert!(!near_f32_tie(f64::from_bits(mid.to_bits() + 65)));
        assert!(!near_f32_tie(0.5));
        assert!(near_f32_tie(1e-40) && near_f32_tie(f64::NAN));
    }

    #[test]
    fn rounded_entries_are_the_exact_entries_rounded_bit_for_bit() {
        // Random features (feat 9, like a 3×3 conv kernel), including far and equal rows.
        let mut seed = 5u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let feat = 9;
        let mut f1: Vec<f64> = (0..300 * feat).map(|_| next()).collect();
        let f2: Vec<f64> = (0..300 * feat).map(|_| next() * 3.0).collect();
        f1[..feat].copy_from_slice(&f2[..feat]);
        f1[feat..2 * feat].fill(400.0);
        let want: Vec<f32> = exact(&f1, &f2, feat).iter().map(|&v| v as f32).collect();
        let got = rounded_f32(&f1, &f2, feat);
        assert_eq!(got[0], 1.0);
        assert_eq!(got[300], 0.0);
        assert!(
            want.iter()
                .zip(&got)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }

    #[test]
    fn affinity_of_identical_edges_is_one_and_decays_with_distance() {
        // exp(-||f1 - f2||): features [0,0] vs [3,4] are 5 apart.
        let m = exact(&[0.0, 0.0, 3.0, 4.0], &[0.0, 0.0, 3.0, 4.0], 2);
        assert_eq!(m[0], 1.0);
        assert_eq!(m[3], 1.0);
        approx::assert_relative_eq!(m[1], (-5.0f64).exp(), max_relative = 1e-15);
        assert_eq!(m[1], m[2]);
    }
}
