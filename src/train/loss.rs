//! Softmax cross-entropy over [`CLASSES`] outputs, the loss every trainer minimises.

/// Output classes (MNIST digits).
pub const CLASSES: usize = 10;

/// Softmax cross-entropy of `logits` `(n, 10)` against `labels`. Returns the summed loss
/// (natural log), the number of correct arg-max predictions, and writes
/// `dlogits = (softmax − onehot) · scale`.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[u8],
    scale: f32,
    dlogits: &mut [f32],
) -> (f64, usize) {
    let mut loss = 0.0f64;
    let mut correct = 0;
    for ((z, &y), dz) in logits
        .chunks_exact(CLASSES)
        .zip(labels)
        .zip(dlogits.chunks_exact_mut(CLASSES))
    {
        let y = usize::from(y);
        let (arg, max) = z
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, v)| if v > b.1 { (i, v) } else { b },
            );
        correct += usize::from(arg == y);
        let mut sum = 0.0f32;
        for (d, &v) in dz.iter_mut().zip(z) {
            *d = (v - max).exp();
            sum += *d;
        }
        loss += f64::from(sum.ln() - (z[y] - max));
        for d in dz.iter_mut() {
            *d = *d / sum * scale;
        }
        dz[y] -= scale;
    }
    (loss, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_cross_entropy_of_uniform_logits_is_ln_10() {
        let z = [0.5f32; 20];
        let mut dz = [0.0; 20];
        let (loss, _) = softmax_cross_entropy(&z, &[2, 9], 0.5, &mut dz);
        assert!((loss - 2.0 * 10f64.ln()).abs() < 1e-5, "{loss}");
        // (0.1 − onehot) · 0.5
        assert!((dz[2] - -0.45).abs() < 1e-6 && (dz[3] - 0.05).abs() < 1e-6);
    }
}
