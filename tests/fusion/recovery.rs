//! Self-recovery: every method fed a model and a channel-permuted copy of it finds the
//! permutation exactly (mnist-cnn and the mlp preset).

use super::*;

/// A deterministic shuffle of 0..n (LCG), different for each `seed`.
pub(super) fn shuffle(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        p.swap(i, (s >> 33) as usize % (i + 1));
    }
    p
}

/// `m` fused with a randomly channel-permuted copy of itself by every method: each aligning
/// method finds the permutation exactly, and every fused model scores as the original.
fn self_recovery(spec: &gmfuse::engine::arch::ArchSpec, m: &WeightSet, data: &Dataset) {
    let s = spec.validate(m).unwrap();
    let perms: Vec<Vec<usize>> = s
        .hidden
        .iter()
        .enumerate()
        .map(|(k, g)| shuffle(g.size, k as u64 + 1))
        .collect();
    let copy = permute(&s, m, &perms).unwrap();
    let aligning: Vec<MethodId> = MethodId::ALL
        .iter()
        .copied()
        .filter(|m| m.aligns())
        .collect();
    let params = FusionParams {
        solvers: SolverId::ALL.to_vec(),
        ..FusionParams::with_methods(&aligning)
    };
    // Activation matching's calibration samples: training images, never the scored ones.
    let calibration = gmfuse::builtin::mnist_train_5k().head(1000);
    let r = pipeline::run_calibrated(spec, [m, &copy], data, Some(&calibration), &params, &Quiet)
        .unwrap();
    let original = r.inputs[0].accuracy;
    assert_eq!(r.inputs[1].accuracy, original);
    // One matching and one curve per method, and per solver for GAMF.
    assert_eq!(r.matchings.len(), aligning.len() + SolverId::ALL.len() - 1);
    for (m, curve) in r.matchings.iter().zip(&r.curves) {
        let (method, solver) = (m.method, m.solver);
        assert_eq!((curve.method, curve.solver), (method, solver));
        let found: Vec<Vec<usize>> = m.permutations.iter().map(|p| p.perm.clone()).collect();
        assert_eq!(found, perms, "{method} ({solver:?}) on {}", spec.name);
        assert!(m.max_abs_logit_delta.unwrap() <= 1e-4, "{m:?}");
        for p in &curve.points {
            assert_eq!(
                p.accuracy, original,
                "{method} ({solver:?}) on {}, α = {}",
                spec.name, p.proportion
            );
        }
    }
}

#[test]
fn every_method_recovers_a_channel_permuted_copy_of_a_mnist_cnn_exactly() {
    let [m, _] = any_models();
    let data = gmfuse::builtin::mnist_test().head(2000);
    self_recovery(&preset("mnist-cnn").unwrap(), &m, &data);
}

/// A random `784 → 8 → 6 → 10` MLP named like PyTorch's `nn.Sequential` (`layers.0`, `layers.2`,
/// `layers.4`, biases on the first two), small enough for GAMF's affinity (its input block has
/// (784·8)² entries).
fn random_mlp() -> WeightSet {
    let mut state = 42u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut w = WeightSet::default();
    for (name, shape) in [
        ("layers.0.weight", vec![8, 784]),
        ("layers.0.bias", vec![8]),
        ("layers.2.weight", vec![6, 8]),
        ("layers.2.bias", vec![6]),
        ("layers.4.weight", vec![10, 6]),
    ] {
        let data = ndarray::ArrayD::from_shape_simple_fn(shape, || f64::from(next() as f32));
        w.tensors.insert(
            name.to_string(),
            gmfuse::engine::weights::Tensor {
                dtype: gmfuse::engine::weights::DType::F32,
                data,
            },
        );
    }
    w
}

#[test]
fn every_method_recovers_a_channel_permuted_copy_of_an_mlp_preset_model_exactly() {
    let m = random_mlp();
    let shapes = m
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.data.shape().to_vec()))
        .collect();
    let spec = gmfuse::engine::arch::preset_for("mlp", &shapes).unwrap();
    assert_eq!(spec.input, [1, 28, 28]);
    let data = gmfuse::builtin::mnist_test().head(500);
    self_recovery(&spec, &m, &data);
}
