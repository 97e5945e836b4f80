//! The element-wise and pooling layers: replication and zero padding, ReLU, max and average
//! pooling.
//!
//! They act on stacks of planes: `[planes, H, W]` with `planes = n · C`.

/// `x`: `[planes, h, w]` → `y`: `[planes, h + 2p, w + 2p]`, repeating the edge values
/// (PyTorch `ReplicationPad2d(p)`).
pub fn replicate_pad_forward(x: &[f32], h: usize, w: usize, p: usize, y: &mut [f32]) {
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    for (xs, ys) in x.chunks_exact(h * w).zip(y.chunks_exact_mut(ph * pw)) {
        for i in 0..ph {
            let src = &xs[i.saturating_sub(p).min(h - 1) * w..][..w];
            let row = &mut ys[i * pw..][..pw];
            row[..p].fill(src[0]);
            row[p..p + w].copy_from_slice(src);
            row[p + w..].fill(src[w - 1]);
        }
    }
}

/// Gradient of [`replicate_pad_forward`]: each padded cell's gradient goes to the cell it copied.
pub fn replicate_pad_backward(dy: &[f32], h: usize, w: usize, p: usize, dx: &mut [f32]) {
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    for (dys, dxs) in dy.chunks_exact(ph * pw).zip(dx.chunks_exact_mut(h * w)) {
        dxs.fill(0.0);
        for i in 0..ph {
            let dst = &mut dxs[i.saturating_sub(p).min(h - 1) * w..][..w];
            for (j, &g) in dys[i * pw..][..pw].iter().enumerate() {
                dst[j.saturating_sub(p).min(w - 1)] += g;
            }
        }
    }
}

/// `x`: `[planes, h, w]` → `y`: `[planes, h + 2p, w + 2p]` with a border of zeros
/// (PyTorch `ZeroPad2d(p)`).
pub fn zero_pad_forward(x: &[f32], h: usize, w: usize, p: usize, y: &mut [f32]) {
    let pw = w + 2 * p;
    for (xs, ys) in x
        .chunks_exact(h * w)
        .zip(y.chunks_exact_mut((h + 2 * p) * pw))
    {
        ys.fill(0.0);
        for (i, src) in xs.chunks_exact(w).enumerate() {
            ys[(i + p) * pw + p..][..w].copy_from_slice(src);
        }
    }
}

/// Gradient of [`zero_pad_forward`]: the inner cells' gradients.
pub fn zero_pad_backward(dy: &[f32], h: usize, w: usize, p: usize, dx: &mut [f32]) {
    let pw = w + 2 * p;
    for (dys, dxs) in dy
        .chunks_exact((h + 2 * p) * pw)
        .zip(dx.chunks_exact_mut(h * w))
    {
        for (i, dst) in dxs.chunks_exact_mut(w).enumerate() {
            dst.copy_from_slice(&dys[(i + p) * pw + p..][..w]);
        }
    }
}

/// `x = max(x, 0)` in place.
pub fn relu_forward(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// Gradient of ReLU given its output `y`: zero `dy` where `y ≤ 0`.
pub fn relu_backward(y: &[f32], dy: &mut [f32]) {
    for (g, &v) in dy.iter_mut().zip(y) {
        if v <= 0.0 {
            *g = 0.0;
        }
    }
}

/// The geometry of a max pooling: square window `kernel`, `stride`, `padding` cells of −∞
/// on every side (PyTorch semantics, floor mode).
#[derive(Clone, Copy, Debug)]
pub struct PoolShape {
    pub h: usize,
    pub w: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl PoolShape {
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.padding - self.kernel) / self.stride + 1
    }
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.padding - self.kernel) / self.stride + 1
    }
}

/// `x`: `[planes, H, W]` → `y`: `[planes, OH, OW]`; `argmax` gets, for each output, the index
/// into `x` of the (first) maximum. Requires `2·padding ≤ kernel` so every window holds a cell.
pub fn maxpool_forward(x: &[f32], s: &PoolShape, y: &mut [f32], argmax: &mut [u32]) {
    let (oh, ow) = (s.oh(), s.ow());
    let plane = s.h * s.w;
    for (pi, xs) in x.chunks_exact(plane).enumerate() {
        for r in 0..oh {
            let r0 = (r * s.stride).saturating_sub(s.padding);
            let r1 = (r * s.stride + s.kernel - s.padding).min(s.h);
            for q in 0..ow {
                let q0 = (q * s.stride).saturating_sub(s.padding);
                let q1 = (q * s.stride + s.kernel - s.padding).min(s.w);
                let (mut best, mut at) = (f32::NEG_INFINITY, r0 * s.w + q0);
                for i in r0..r1 {
                    for j in q0..q1 {
                        let v = xs[i * s.w + j];
                        if v > best {
                            best = v;
                            at = i * s.w + j;
                        }
                    }
                }
                let o = (pi * oh + r) * ow + q;
                y[o] = best;
                argmax[o] = (pi * plane + at) as u32;
            }
        }
    }
}

/// Gradient of [`maxpool_forward`]: route each output's gradient to its argmax.
pub fn maxpool_backward(dy: &[f32], argmax: &[u32], dx: &mut [f32]) {
    dx.fill(0.0);
    for (&g, &at) in dy.iter().zip(argmax) {
        dx[at as usize] += g;
    }
}

/// The rows (or columns) of the input in output cell `r`'s window, clipped to the plane.
fn window(s: &PoolShape, r: usize, size: usize) -> std::ops::Range<usize> {
    (r * s.stride).saturating_sub(s.padding)..(r * s.stride + s.kernel - s.padding).min(size)
}

/// Average pooling, `x`: `[planes, H, W]` → `y`: `[planes, OH, OW]`. Padding cells count as
/// zeros and the divisor is always `kernel²` (PyTorch's `count_include_pad=True`).
pub fn avgpool_forward(x: &[f32], s: &PoolShape, y: &mut [f32]) {
    let (oh, ow) = (s.oh(), s.ow());
    let scale = 1.0 / (s.kernel * s.kernel) as f32;
    for (xs, ys) in x.chunks_exact(s.h * s.w).zip(y.chunks_exact_mut(oh * ow)) {
        for r in 0..oh {
            for q in 0..ow {
                let mut sum = 0.0f32;
                for i in window(s, r, s.h) {
                    for j in window(s, q, s.w) {
                        sum += xs[i * s.w + j];
                    }
                }
                ys[r * ow + q] = sum * scale;
            }
        }
    }
}

/// Gradient of [`avgpool_forward`]: each output's gradient spread over its window.
pub fn avgpool_backward(dy: &[f32], s: &PoolShape, dx: &mut [f32]) {
    let (oh, ow) = (s.oh(), s.ow());
    let scale = 1.0 / (s.kernel * s.kernel) as f32;
    for (dys, dxs) in dy.chunks_exact(oh * ow).zip(dx.chunks_exact_mut(s.h * s.w)) {
        dxs.fill(0.0);
        for r in 0..oh {
            for q in 0..ow {
                let g = dys[r * ow + q] * scale;
                for i in window(s, r, s.h) {
                    for j in window(s, q, s.w) {
                        dxs[i * s.w + j] += g;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{check_gradient, random_vec};
    use crate::train::rng::SplitMix64;

    fn weighted_sum(y: &[f32], r: &[f32]) -> f64 {
        y.iter().zip(r).map(|(a, b)| f64::from(a * b)).sum()
    }

    #[test]
    fn replicate_padding_repeats_the_edge_values() {
        // ReplicationPad2d(1) of [[1, 2], [3, 4]]: every border cell copies its nearest cell.
        let mut y = vec![0.0; 16];
        replicate_pad_forward(&[1.0, 2.0, 3.0, 4.0], 2, 2, 1, &mut y);
        #[rustfmt::skip]
        let expected = [
            1.0, 1.0, 2.0, 2.0,
            1.0, 1.0, 2.0, 2.0,
            3.0, 3.0, 4.0, 4.0,
            3.0, 3.0, 4.0, 4.0,
        ];
        assert_eq!(y, expected);
    }

    #[test]
    fn replicate_padding_gradients_match_finite_differences() {
        let (planes, h, w, p) = (3, 4, 5, 2);
        let x = random_vec(planes * h * w, 31);
        let r = random_vec(planes * (h + 2 * p) * (w + 2 * p), 32);
        let loss = |x: &[f32]| {
            let mut y = vec![0.0; r.len()];
            replicate_pad_forward(x, h, w, p, &mut y);
            weighted_sum(&y, &r)
        };
        let mut dx = vec![0.0; x.len()];
        replicate_pad_backward(&r, h, w, p, &mut dx);
        check_gradient(&x, &dx, loss);
    }

    #[test]
    fn maxpool_with_padding_takes_the_maximum_over_windows_clipped_to_the_plane() {
        // MaxPool2d(2, stride=2, padding=1) on arange(16).view(4, 4): the windows cover rows
        // (and columns) {0}, {1, 2}, {3}, so the maxima are [[0, 2, 3], [8, 10, 11], [12, 14, 15]].
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let s = PoolShape {
            h: 4,
            w: 4,
            kernel: 2,
            stride: 2,
            padding: 1,
        };
        let mut y = vec![0.0; 9];
        let mut idx = vec![0; 9];
        maxpool_forward(&x, &s, &mut y, &mut idx);
        assert_eq!(y, [0.0, 2.0, 3.0, 8.0, 10.0, 11.0, 12.0, 14.0, 15.0]);
        assert_eq!(idx, [0, 2, 3, 8, 10, 11, 12, 14, 15]);
    }

    #[test]
    fn maxpool_gradients_match_finite_differences() {
        // Distinct values 0.05 apart, shuffled, so a ±0.01 step never changes an argmax.
        let s = PoolShape {
            h: 6,
            w: 7,
            kernel: 2,
            stride: 2,
            padding: 1,
        };
        let planes = 2;
        let mut x: Vec<f32> = (0..planes * s.h * s.w)
            .map(|v| v as f32 * 0.05 - 2.0)
            .collect();
        SplitMix64::new(41).shuffle(&mut x);
        let out = planes * s.oh() * s.ow();
        let r = random_vec(out, 42);
        let loss = |x: &[f32]| {
            let mut y = vec![0.0; out];
            let mut idx = vec![0; out];
            maxpool_forward(x, &s, &mut y, &mut idx);
            weighted_sum(&y, &r)
        };
        let mut y = vec![0.0; out];
        let mut idx = vec![0; out];
        maxpool_forward(&x, &s, &mut y, &mut idx);
        let mut dx = vec![0.0; x.len()];
        maxpool_backward(&r, &idx, &mut dx);
        check_gradient(&x, &dx, loss);
    }

    #[test]
    fn zero_padding_and_average_pooling_match_hand_computed_values() {
        // ZeroPad2d(1) of [[1, 2], [3, 4]].
        let mut y = vec![9.0; 16];
        zero_pad_forward(&[1.0, 2.0, 3.0, 4.0], 2, 2, 1, &mut y);
        #[rustfmt::skip]
        let padded = [
            0.0, 0.0, 0.0, 0.0,
            0.0, 1.0, 2.0, 0.0,
            0.0, 3.0, 4.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(y, padded);
        // AvgPool2d(2, stride=2, padding=1) on arange(16).view(4, 4): windows {0}, {1, 2}, {3}
        // per axis, divisor 4 always: [0/4, (1+2)/4, 3/4; (4+8)/4, (5+6+9+10)/4, …].
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let s = PoolShape {
            h: 4,
            w: 4,
            kernel: 2,
            stride: 2,
            padding: 1,
        };
        let mut a = vec![0.0; 9];
        avgpool_forward(&x, &s, &mut a);
        assert_eq!(a, [0.0, 0.75, 0.75, 3.0, 7.5, 4.5, 3.0, 6.75, 3.75]);
    }

    #[test]
    fn zero_padding_and_average_pooling_gradients_match_finite_differences() {
        let (planes, h, w, p) = (2, 4, 5, 2);
        let x = random_vec(planes * h * w, 33);
        let r = random_vec(planes * (h + 2 * p) * (w + 2 * p), 34);
        let loss = |x: &[f32]| {
            let mut y = vec![0.0; r.len()];
            zero_pad_forward(x, h, w, p, &mut y);
            weighted_sum(&y, &r)
        };
        let mut dx = vec![0.0; x.len()];
        zero_pad_backward(&r, h, w, p, &mut dx);
        check_gradient(&x, &dx, loss);

        let s = PoolShape {
            h: 6,
            w: 7,
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        let x = random_vec(planes * s.h * s.w, 35);
        let r = random_vec(planes * s.oh() * s.ow(), 36);
        let loss = |x: &[f32]| {
            let mut y = vec![0.0; r.len()];
            avgpool_forward(x, &s, &mut y);
            weighted_sum(&y, &r)
        };
        let mut dx = vec![0.0; x.len()];
        avgpool_backward(&r, &s, &mut dx);
        check_gradient(&x, &dx, loss);
    }

    #[test]
    fn relu_gradient_is_zero_where_the_output_is_clamped() {
        let mut x = vec![-1.0, 0.5, 0.0, 2.0];
        relu_forward(&mut x);
        assert_eq!(x, [0.0, 0.5, 0.0, 2.0]);
        let mut dy = vec![1.0; 4];
        relu_backward(&x, &mut dy);
        assert_eq!(dy, [0.0, 1.0, 0.0, 1.0]);
    }
}
