//! Activation matching on tiny nets: the streamed correlation equals Pearson's on hand-checked
//! columns, a permuted copy comes back exactly (conv → flatten → linear, and a wide MLP),
//! it refuses to run without calibration data, stops when asked and uses at most
//! [`MAX_CALIBRATION_SAMPLES`] samples.

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::array;

use super::*;
use crate::affinity::tests::tiny;
use crate::forward::tests::Rng;
use crate::fusion::permute;
use crate::methods::weight_matching::tests::{mlp, shuffle};
use crate::pipeline::{FusionParams, Observer, Quiet};

/// `n` random samples of `shape`, uniform in [0, 1) like pixels.
fn noise(shape: [usize; 3], n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let len = shape.iter().product();
    Dataset {
        name: "noise".into(),
        shape,
        images: Array2::from_shape_simple_fn((n, len), || (rng.next() as f32 + 1.0) / 2.0),
        labels: vec![0; n],
    }
}

fn align(
    spec: &ArchSpec,
    s: &PermStructure,
    models: [&WeightSet; 2],
    data: Option<&Dataset>,
    observer: &dyn Observer,
) -> Result<Alignment, MethodError> {
    ActivationMatching.align(&MethodInput {
        spec,
        structure: s,
        models,
        calibration: data,
        params: &FusionParams::default(),
        observer,
    })
}

#[test]
fn streamed_moments_give_pearsons_correlation() {
    // Model 1's units: x, constant, x²; model 2's: 2x + 1, −x, x. Two batches.
    let mut m = Moments::new(3);
    let (a1, b1) = (
        array![[1.0f32, 5.0, 1.0], [2.0, 5.0, 4.0]],
        array![[3.0f32, -1.0, 1.0], [5.0, -2.0, 2.0]],
    );
    let (a2, b2) = (array![[3.0f32, 5.0, 9.0]], array![[7.0f32, -3.0, 3.0]]);
    m.add(a1.view(), b1.view());
    m.add(a2.view(), b2.view());
    let g = m.correlation();
    assert_eq!(g.constant, [vec![false, true, false], vec![false; 3]]);
    let c = g.corr;
    // corr(x, 2x + 1) = corr(x, x) = 1, corr(x, −x) = −1; a constant unit correlates with
    // nothing; x² on {1, 2, 3} = {1, 4, 9} against x: cov 8/3 over σ √(2/3)·√(98/9).
    let r = (8.0 / 3.0) / ((2.0f64 / 3.0).sqrt() * (98.0f64 / 9.0).sqrt());
    let want = array![[1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [r, -r, r]];
    for (g, w) in c.iter().zip(&want) {
        approx::assert_abs_diff_eq!(g, w, epsilon = 1e-12);
    }
}

#[test]
fn a_permuted_copy_is_recovered_exactly_on_conv_flatten_linear() {
    let (spec, m, _) = tiny();
    let s = spec.validate(&m).unwrap();
    let shuffle = vec![vec![1, 2, 0], vec![3, 0, 2, 1]];
    let copy = permute(&s, &m, &shuffle).unwrap();
    let data = noise(spec.input, 300, 1);
    let a = align(&spec, &s, [&m, &copy], Some(&data), &Quiet).unwrap();
    assert_eq!(a.perms, shuffle);
    // Every matched live pair is the same unit (correlation 1); one of the 4 + 3 units never
    // fires on this data (correlation 0, matched by its incoming weights): 6/7.
    let c = correlations(&spec, &s, [&m, &copy], &data, &|_| false).unwrap();
    let dead: usize = c
        .iter()
        .map(|g| g.constant[0].iter().filter(|&&d| d).count())
        .sum();
    assert_eq!(dead, 1);
    approx::assert_abs_diff_eq!(a.objective, 6.0 / 7.0, epsilon = 1e-9);
    assert_eq!((a.iterations, a.objectives.len()), (1, 1));
}

#[test]
fn a_permuted_copy_of_a_wide_mlp_is_recovered_exactly() {
    let (s, m) = mlp(&[20, 64, 48, 32, 5], 3);
    let spec: ArchSpec = serde_json::from_value(serde_json::json!({
        "name": "mlp", "input": [1, 1, 20], "ops": [
            {"op": "flatten"},
            {"op": "linear", "weight": "fc1.weight", "bias": "fc1.bias"}, {"op": "relu"},
            {"op": "linear", "weight": "fc2.weight", "bias": "fc2.bias"}, {"op": "relu"},
            {"op": "linear", "weight": "fc3.weight", "bias": "fc3.bias"}, {"op": "relu"},
            {"op": "linear", "weight": "fc4.weight", "bias": "fc4.bias"}]
    }))
    .unwrap();
    assert_eq!(spec.validate(&m).unwrap(), s);
    let perms: Vec<Vec<usize>> = s
        .hidden
        .iter()
        .enumerate()
        .map(|(k, g)| shuffle(g.size, k as u64 + 11))
        .collect();
    let copy = permute(&s, &m, &perms).unwrap();
    let data = noise(spec.input, 2000, 2);
    let a = align(&spec, &s, [&m, &copy], Some(&data), &Quiet).unwrap();
    assert_eq!(a.perms, perms);
}

#[test]
fn it_needs_calibration_data_and_stops_when_asked() {
    let (spec, a, b) = tiny();
    let s = spec.validate(&a).unwrap();
    let none = align(&spec, &s, [&a, &b], None, &Quiet);
    assert_eq!(
        none,
        Err(MethodError::NeedsCalibration(MethodId::ActivationMatching))
    );
    let empty = noise(spec.input, 0, 1);
    assert!(align(&spec, &s, [&a, &b], Some(&empty), &Quiet).is_err());
    assert!(MethodId::ActivationMatching.needs_calibration());
    assert!(!MethodId::WeightMatching.needs_calibration());

    struct StopAfter(AtomicUsize);
    impl Observer for StopAfter {
        fn should_stop(&self) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst) >= 1
        }
    }
    let data = noise(spec.input, 1000, 3);
    let stop = StopAfter(AtomicUsize::new(0));
    assert_eq!(
        align(&spec, &s, [&a, &b], Some(&data), &stop),
        Err(MethodError::Canceled)
    );
}

#[test]
fn at_most_max_calibration_samples_are_used() {
    let (spec, a, b) = tiny();
    let s = spec.validate(&a).unwrap();
    let data = noise(spec.input, MAX_CALIBRATION_SAMPLES + 700, 4);
    let seen = AtomicUsize::new(0);
    let all = correlations(&spec, &s, [&a, &b], &data, &|_| {
        seen.fetch_add(1, Ordering::SeqCst);
        false
    })
    .unwrap();
    let head = correlations(
        &spec,
        &s,
        [&a, &b],
        &data.head(MAX_CALIBRATION_SAMPLES),
        &|_| false,
    )
    .unwrap();
    assert_eq!(all, head);
    // tiny: 3·16 + 4 values per sample → batches of MAX_BATCH samples.
    assert_eq!(
        seen.into_inner(),
        MAX_CALIBRATION_SAMPLES.div_ceil(MAX_BATCH)
    );
}
