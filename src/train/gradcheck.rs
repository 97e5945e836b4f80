//! Test helpers: seeded random inputs and a central finite-difference gradient check.

use crate::train::rng::SplitMix64;

/// `n` values uniform in `[-1, 1)`.
pub fn random_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut g = SplitMix64::new(seed);
    (0..n).map(|_| 2.0 * g.next_f32() - 1.0).collect()
}

/// Compare `analytic` with central differences of the scalar `loss` at `x` (step 1e-2; the
/// layers checked are piecewise linear, so the only error is `f32` rounding). Asserts that the
/// norm-wise relative error `‖num − analytic‖ / max(‖num‖, ‖analytic‖)` is below 1e-3.
pub fn check_gradient(x: &[f32], analytic: &[f32], loss: impl Fn(&[f32]) -> f64) {
    assert_eq!(x.len(), analytic.len());
    let eps = 1e-2_f32;
    let mut xp = x.to_vec();
    let mut num = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        xp[i] = x[i] + eps;
        let up = loss(&xp);
        xp[i] = x[i] - eps;
        let down = loss(&xp);
        xp[i] = x[i];
        num.push((up - down) / (2.0 * f64::from(eps)));
    }
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|a| a * a).sum::<f64>().sqrt();
    let diff = norm(&mut num.iter().zip(analytic).map(|(a, &b)| a - f64::from(b)));
    let scale =
        norm(&mut num.iter().copied()).max(norm(&mut analytic.iter().map(|&b| f64::from(b))));
    assert!(scale > 1e-3, "gradient is (almost) zero: nothing checked");
    let rel = diff / scale;
    assert!(
        rel < 1e-3,
        "relative gradient error {rel:.2e} (‖diff‖ {diff:.2e}, scale {scale:.2e})"
    );
}
