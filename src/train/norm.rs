//! Batch normalisation (training mode with batch statistics, inference mode with running
//! statistics), residual addition and global average pooling, forward and backward.
//!
//! Layout: `[n, C, S]` with `S = H·W` for `batchnorm2d` and global pooling, `S = 1` for
//! `batchnorm1d`. Statistics are accumulated in `f64` in a fixed order, so they do not depend on
//! anything but the values.

/// PyTorch's default momentum of the running statistics.
pub const BN_MOMENTUM: f32 = 0.1;

/// Geometry of one batch norm: `channels` and `spatial` (`S`) per sample.
#[derive(Clone, Copy, Debug)]
pub struct BnShape {
    pub channels: usize,
    pub spatial: usize,
    pub eps: f32,
}

/// What the training-mode forward pass keeps for the backward pass and the running statistics.
#[derive(Clone, Debug, Default)]
pub struct BnCache {
    /// The normalised input, `[n, C, S]`.
    pub xhat: Vec<f32>,
    /// `1 / √(var + eps)` per channel.
    pub inv_std: Vec<f32>,
    /// The batch mean and the biased batch variance per channel.
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    /// Values per channel in the batch, `n·S`.
    pub count: usize,
}

/// `(mean, biased variance)` of channel `c` over the batch, two passes in `f64`.
fn channel_stats(x: &[f32], s: &BnShape, c: usize) -> (f64, f64) {
    let plane = s.channels * s.spatial;
    let values = || {
        x.chunks_exact(plane)
            .flat_map(move |img| img[c * s.spatial..][..s.spatial].iter())
            .map(|&v| f64::from(v))
    };
    let count = (x.len() / plane * s.spatial) as f64;
    let mean = values().sum::<f64>() / count;
    let var = values().map(|v| (v - mean) * (v - mean)).sum::<f64>() / count;
    (mean, var)
}

/// Training mode: normalise with the batch's statistics, `y = γ·x̂ + β`; fills `cache`.
pub fn bn_forward_train(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    s: &BnShape,
    cache: &mut BnCache,
    y: &mut [f32],
) {
    let plane = s.channels * s.spatial;
    cache.count = x.len() / plane * s.spatial;
    cache.xhat.resize(x.len(), 0.0);
    cache.mean.clear();
    cache.var.clear();
    cache.inv_std.clear();
    for c in 0..s.channels {
        let (mean, var) = channel_stats(x, s, c);
        cache.mean.push(mean as f32);
        cache.var.push(var as f32);
        cache
            .inv_std
            .push((1.0 / (var + f64::from(s.eps)).sqrt()) as f32);
    }
    for (k, ((xs, hs), ys)) in x
        .chunks_exact(s.spatial)
        .zip(cache.xhat.chunks_exact_mut(s.spatial))
        .zip(y.chunks_exact_mut(s.spatial))
        .enumerate()
    {
        let c = k % s.channels;
        let (mean, inv_std) = (cache.mean[c], cache.inv_std[c]);
        for ((&v, h), o) in xs.iter().zip(hs).zip(ys) {
            *h = (v - mean) * inv_std;
            *o = gamma[c] * *h + beta[c];
        }
    }
}

/// Inference mode: `y = γ·(x − running_mean)/√(running_var + eps) + β`.
pub fn bn_forward_eval(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    s: &BnShape,
    y: &mut [f32],
) {
    for (k, (xs, ys)) in x
        .chunks_exact(s.spatial)
        .zip(y.chunks_exact_mut(s.spatial))
        .enumerate()
    {
        let c = k % s.channels;
        let scale = gamma[c] / (var[c] + s.eps).sqrt();
        for (&v, o) in xs.iter().zip(ys) {
            *o = (v - mean[c]) * scale + beta[c];
        }
    }
}

/// Gradients of [`bn_forward_train`]: `dγ += Σ dy·x̂`, `dβ += Σ dy` and
/// `dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂))` per channel (the batch statistics depend on `x`).
pub fn bn_backward(
    dy: &[f32],
    gamma: &[f32],
    s: &BnShape,
    cache: &BnCache,
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dx: &mut [f32],
) {
    let mut sums = vec![(0.0f64, 0.0f64); s.channels];
    for (k, (ds, hs)) in dy
        .chunks_exact(s.spatial)
        .zip(cache.xhat.chunks_exact(s.spatial))
        .enumerate()
    {
        let acc = &mut sums[k % s.channels];
        for (&d, &h) in ds.iter().zip(hs) {
            acc.0 += f64::from(d);
            acc.1 += f64::from(d) * f64::from(h);
        }
    }
    let m = cache.count as f64;
    for (c, &(sum_dy, sum_dyh)) in sums.iter().enumerate() {
        dbeta[c] += sum_dy as f32;
        dgamma[c] += sum_dyh as f32;
    }
    for (k, ((ds, hs), xs)) in dy
        .chunks_exact(s.spatial)
        .zip(cache.xhat.chunks_exact(s.spatial))
        .zip(dx.chunks_exact_mut(s.spatial))
        .enumerate()
    {
        let c = k % s.channels;
        let (mean_dy, mean_dyh) = ((sums[c].0 / m) as f32, (sums[c].1 / m) as f32);
        let scale = gamma[c] * cache.inv_std[c];
        for ((&d, &h), o) in ds.iter().zip(hs).zip(xs) {
            *o = scale * (d - mean_dy - h * mean_dyh);
        }
    }
}

/// PyTorch's running-statistics update after a training step: `r ← (1 − m)·r + m·batch`, with
/// the unbiased variance (`var · count / (count − 1)`).
pub fn bn_update_running(cache: &BnCache, running_mean: &mut [f32], running_var: &mut [f32]) {
    let unbias = cache.count as f32 / (cache.count.max(2) - 1) as f32;
    for (r, &b) in running_mean.iter_mut().zip(&cache.mean) {
        *r = (1.0 - BN_MOMENTUM) * *r + BN_MOMENTUM * b;
    }
    for (r, &b) in running_var.iter_mut().zip(&cache.var) {
        *r = (1.0 - BN_MOMENTUM) * *r + BN_MOMENTUM * b * unbias;
    }
}

/// `y = a + b`.
pub fn add_forward(a: &[f32], b: &[f32], y: &mut [f32]) {
    for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
        *o = u + v;
    }
}

/// `[n, C, S]` → `[n, C]`: the mean of each plane.
pub fn global_avgpool_forward(x: &[f32], spatial: usize, y: &mut [f32]) {
    let scale = 1.0 / spatial as f32;
    for (xs, o) in x.chunks_exact(spatial).zip(y.iter_mut()) {
        *o = xs.iter().sum::<f32>() * scale;
    }
}

/// Gradient of [`global_avgpool_forward`]: `dy / S` over each plane.
pub fn global_avgpool_backward(dy: &[f32], spatial: usize, dx: &mut [f32]) {
    let scale = 1.0 / spatial as f32;
    for (xs, &g) in dx.chunks_exact_mut(spatial).zip(dy) {
        xs.fill(g * scale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{check_gradient, random_vec};

    const S: BnShape = BnShape {
        channels: 3,
        spatial: 4,
        eps: 1e-5,
    };

    fn weighted_sum(y: &[f32], r: &[f32]) -> f64 {
        y.iter().zip(r).map(|(a, b)| f64::from(a * b)).sum()
    }

    #[test]
    fn batch_norm_output_has_zero_mean_and_unit_variance_per_channel_before_the_affine() {
        let n = 5;
        let x: Vec<f32> = random_vec(n * 12, 51)
            .iter()
            .map(|v| 3.0 * v + 2.0)
            .collect();
        let (gamma, beta) = ([1.0; 3], [0.0; 3]);
        let mut cache = BnCache::default();
        let mut y = vec![0.0; x.len()];
        bn_forward_train(&x, &gamma, &beta, &S, &mut cache, &mut y);
        for c in 0..3 {
            let (mean, var) = channel_stats(&y, &S, c);
            assert!(mean.abs() < 1e-6, "channel {c}: mean {mean}");
            // var/(var + eps) with var ≈ 3 (uniform ±3 has variance 3).
            assert!((var - 1.0).abs() < 1e-4, "channel {c}: variance {var}");
        }
        // Inference with the batch's own statistics gives the same output.
        let mut z = vec![0.0; x.len()];
        bn_forward_eval(&x, &gamma, &beta, &cache.mean, &cache.var, &S, &mut z);
        for (a, b) in y.iter().zip(&z) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // Running statistics from (0, 1): 0.9·0 + 0.1·mean and 0.9·1 + 0.1·var·20/19.
        let (mut rm, mut rv) = (vec![0.0; 3], vec![1.0; 3]);
        bn_update_running(&cache, &mut rm, &mut rv);
        assert_eq!(cache.count, 20);
        assert!((rm[1] - 0.1 * cache.mean[1]).abs() < 1e-7);
        assert!((rv[2] - (0.9 + 0.1 * cache.var[2] * 20.0 / 19.0)).abs() < 1e-6);
    }

    #[test]
    fn batch_norm_gradients_match_finite_differences() {
        let n = 4;
        let x = random_vec(n * 12, 52);
        let gamma = random_vec(3, 53);
        let beta = random_vec(3, 54);
        let r = random_vec(x.len(), 55);
        let loss = |x: &[f32], g: &[f32], b: &[f32]| {
            let mut y = vec![0.0; x.len()];
            bn_forward_train(x, g, b, &S, &mut BnCache::default(), &mut y);
            weighted_sum(&y, &r)
        };
        let mut cache = BnCache::default();
        let mut y = vec![0.0; x.len()];
        bn_forward_train(&x, &gamma, &beta, &S, &mut cache, &mut y);
        let (mut dg, mut db, mut dx) = (vec![0.0; 3], vec![0.0; 3], vec![0.0; x.len()]);
        bn_backward(&r, &gamma, &S, &cache, &mut dg, &mut db, &mut dx);
        check_gradient(&x, &dx, |x| loss(x, &gamma, &beta));
        check_gradient(&gamma, &dg, |g| loss(&x, g, &beta));
        check_gradient(&beta, &db, |b| loss(&x, &gamma, b));
    }

    #[test]
    fn global_average_pooling_and_its_gradient() {
        let x: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let mut y = vec![0.0; 2];
        global_avgpool_forward(&x, 4, &mut y);
        assert_eq!(y, [1.5, 5.5]);
        let r = random_vec(2, 56);
        let mut dx = vec![0.0; 8];
        global_avgpool_backward(&r, 4, &mut dx);
        check_gradient(&x, &dx, |x| {
            let mut y = vec![0.0; 2];
            global_avgpool_forward(x, 4, &mut y);
            weighted_sum(&y, &r)
        });
        let mut s = vec![0.0; 2];
        add_forward(&[1.0, 2.0], &[0.5, -4.0], &mut s);
        assert_eq!(s, [1.5, -2.0]);
    }
}
