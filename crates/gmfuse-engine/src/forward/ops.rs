//! The cheap, memory-bound steps on one NHWC sample: layout changes, padding, ReLU, pooling,
//! unfolded batchnorms, residual adds.

use super::plan::Pool;
use crate::arch::PadMode;

/// Channel-major `(c, h, w)` → NHWC `(h, w, c)`.
pub(super) fn chw_to_hwc(src: &[f32], dst: &mut [f32], c: usize, hw: usize) {
    debug_assert_eq!(src.len(), c * hw);
    debug_assert_eq!(dst.len(), c * hw);
    if c == 1 {
        dst.copy_from_slice(src);
        return;
    }
    for (p, px) in dst.chunks_exact_mut(c).enumerate() {
        for (ch, v) in px.iter_mut().enumerate() {
            *v = src[ch * hw + p];
        }
    }
}

/// NHWC `(h, w, c)` → channel-major `(c, h, w)`, the order of PyTorch's `flatten`.
pub(super) fn hwc_to_chw(src: &[f32], dst: &mut [f32], c: usize, hw: usize) {
    debug_assert_eq!(src.len(), c * hw);
    debug_assert_eq!(dst.len(), c * hw);
    for (p, px) in src.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            dst[ch * hw + p] = v;
        }
    }
}

/// Pad `(h, w, c)` by `p` on every side: `Replicate` repeats the edge (`ReplicationPad2d`),
/// `Zero` fills zeros (`ZeroPad2d`, or a convolution's own padding).
pub(super) fn pad(
    src: &[f32],
    dst: &mut [f32],
    mode: PadMode,
    p: usize,
    h: usize,
    w: usize,
    c: usize,
) {
    let (pw, row) = (w + 2 * p, w * c);
    debug_assert_eq!(src.len(), h * row);
    debug_assert_eq!(dst.len(), (h + 2 * p) * pw * c);
    for (y, out) in dst.chunks_exact_mut(pw * c).enumerate() {
        let sy = match mode {
            PadMode::Replicate => y.saturating_sub(p).min(h - 1),
            PadMode::Zero if y < p || y >= h + p => {
                out.fill(0.0);
                continue;
            }
            PadMode::Zero => y - p,
        };
        let s = &src[sy * row..(sy + 1) * row];
        let (left, rest) = out.split_at_mut(p * c);
        let (mid, right) = rest.split_at_mut(row);
        mid.copy_from_slice(s);
        match mode {
            PadMode::Replicate => {
                for px in left.chunks_exact_mut(c) {
                    px.copy_from_slice(&s[..c]);
                }
                for px in right.chunks_exact_mut(c) {
                    px.copy_from_slice(&s[row - c..]);
                }
            }
            PadMode::Zero => {
                left.fill(0.0);
                right.fill(0.0);
            }
        }
    }
}

/// `max(x, 0)` in place.
pub(super) fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// The rows (or columns) `[start, end)` of the input that window `o` covers, clipped to the input.
fn window(o: usize, p: &Pool, size: usize) -> (usize, usize) {
    let start = (o * p.stride).saturating_sub(p.padding);
    let end = (o * p.stride + p.kernel)
        .saturating_sub(p.padding)
        .min(size);
    (start, end)
}

/// Max pooling; padding is −∞ (PyTorch `MaxPool2d`, floor mode).
pub(super) fn maxpool(src: &[f32], dst: &mut [f32], p: &Pool) {
    debug_assert_eq!(src.len(), p.h * p.w * p.c);
    debug_assert_eq!(dst.len(), p.oh * p.ow * p.c);
    let c = p.c;
    for oy in 0..p.oh {
        let (y0, y1) = window(oy, p, p.h);
        for ox in 0..p.ow {
            let (x0, x1) = window(ox, p, p.w);
            let out = &mut dst[(oy * p.ow + ox) * c..][..c];
            out.fill(f32::NEG_INFINITY);
            for y in y0..y1 {
                for x in x0..x1 {
                    let s = &src[(y * p.w + x) * c..][..c];
                    for (o, &v) in out.iter_mut().zip(s) {
                        // A select, not a branch, so that it vectorises; NaN propagates like
                        // torch's max pooling.
                        *o = if v > *o || v.is_nan() { v } else { *o };
                    }
                }
            }
        }
    }
}

/// Average pooling; zero padding counts in the divisor, which is therefore always
/// `kernel²` in floor mode (PyTorch `AvgPool2d` defaults, `count_include_pad=True`).
pub(super) fn avgpool(src: &[f32], dst: &mut [f32], p: &Pool) {
    debug_assert_eq!(src.len(), p.h * p.w * p.c);
    debug_assert_eq!(dst.len(), p.oh * p.ow * p.c);
    let c = p.c;
    let divisor = (p.kernel * p.kernel) as f32;
    for oy in 0..p.oh {
        let (y0, y1) = window(oy, p, p.h);
        for ox in 0..p.ow {
            let (x0, x1) = window(ox, p, p.w);
            let out = &mut dst[(oy * p.ow + ox) * c..][..c];
            out.fill(0.0);
            for y in y0..y1 {
                for x in x0..x1 {
                    let s = &src[(y * p.w + x) * c..][..c];
                    for (o, &v) in out.iter_mut().zip(s) {
                        *o += v;
                    }
                }
            }
            for o in out.iter_mut() {
                *o /= divisor;
            }
        }
    }
}

/// `x[i] = x[i]·scale[i mod c] + shift[i mod c]` in place: a batchnorm that could not be folded
/// into a convolution or linear layer (NHWC, or a flat vector with `c` its length).
pub(super) fn affine(x: &mut [f32], scale: &[f32], shift: &[f32]) {
    let c = scale.len();
    debug_assert_eq!(x.len() % c, 0);
    for px in x.chunks_exact_mut(c) {
        for ((v, &s), &t) in px.iter_mut().zip(scale).zip(shift) {
            *v = *v * s + t;
        }
    }
}

/// `x += y` element-wise (a residual `add`).
pub(super) fn add(x: &mut [f32], y: &[f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (v, &w) in x.iter_mut().zip(y) {
        *v += w;
    }
}

/// The mean of each channel of an NHWC sample `(hw, c)` → `c` values (global average pooling).
pub(super) fn global_avgpool(src: &[f32], dst: &mut [f32], c: usize) {
    debug_assert_eq!(dst.len(), c);
    debug_assert_eq!(src.len() % c, 0);
    let hw = src.len() / c;
    dst.fill(0.0);
    for px in src.chunks_exact(c) {
        for (o, &v) in dst.iter_mut().zip(px) {
            *o += v;
        }
    }
    for o in dst.iter_mut() {
        *o /= hw as f32;
    }
}
