use super::*;
use crate::affinity::{Affinity, Direction, tests::tiny};
use crate::arch::preset;
use crate::solvers::SolverId;

fn mnist_shapes() -> BTreeMap<String, Vec<usize>> {
    [
        ("conv1.weight", vec![32, 1, 5, 5]),
        ("conv2.weight", vec![64, 32, 5, 5]),
        ("fc1.weight", vec![32, 3136]),
        ("fc2.weight", vec![10, 32]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn work<'a>(
    spec: &'a ArchSpec,
    tensors: &'a BTreeMap<String, Vec<usize>>,
    params: &'a FusionParams,
) -> Workload<'a> {
    Workload {
        spec,
        tensors,
        file_bytes: &[0, 0],
        params,
        dataset_samples: 10_000,
        eval_samples: 10_000,
        calibration_samples: 0,
        threads: 2,
    }
}

#[test]
fn affinity_entries_and_bytes_equal_what_the_affinity_stores() {
    let (spec, a, b) = tiny();
    let tensors = a.shapes();
    let params = FusionParams::default();
    let e = estimate(&work(&spec, &tensors, &params)).unwrap();
    let structure = spec.validate(&a).unwrap();
    let k = Affinity::build(&structure, [&a, &b], Direction::Symmetric).unwrap();
    assert_eq!(e.affinity_entries, k.nnz() as u64);
    assert_eq!(e.affinity_bytes, k.bytes() as u64);
}

#[test]
fn the_mnist_cnn_affinity_has_the_design_cards_8_492_043_entries() {
    let spec = preset("mnist-cnn").unwrap();
    let tensors = mnist_shapes();
    let params = FusionParams::default();
    let e = estimate(&work(&spec, &tensors, &params)).unwrap();
    assert_eq!(e.affinity_entries, 8_492_043);
    // 8,492,032 block entries × 4 bytes (f32 in the default symmetric layout) + 11 diagonal
    // pairs × 16 bytes; the example's layout keeps f64.
    assert_eq!(e.affinity_bytes, 8_492_032 * 4 + 11 * 16);
    let compat = FusionParams {
        compat: Some(crate::pipeline::Compat::PygmtoolsExample),
        ..FusionParams::default()
    };
    let c = estimate(&work(&spec, &tensors, &compat)).unwrap();
    assert_eq!(c.affinity_bytes, 8_492_032 * 8 + 11 * 16);
    // conv 540,800 + 7,372,800, linear 100,352 + 320, pads/relus/pools/flatten 80,708.
    assert_eq!(e.macs_per_sample, 8_094_980);
    // Two inputs, eleven proportions on the GAMF and on the vanilla curve.
    assert_eq!(e.evaluations, 24);
    assert_eq!(e.eval_macs, 8_094_980 * 10_000 * 24);
    assert_eq!(e.weight_elems, 800 + 51_200 + 100_352 + 320);
    // Longest sample: conv1's output 32·26·26 = 21,632 floats → chunks of 12 samples; two
    // buffers, the 1 MiB im2col budget and 128 × 10 logits per thread, for 2 threads.
    let per_thread = 2 * 12 * 21_632 * 4 + (256 * 1024) * 4 + 128 * 10 * 4;
    assert_eq!(e.activation_bytes, 2 * per_thread);
    // 10,000 MNIST images in f32 plus their labels.
    assert_eq!(e.dataset_bytes, 10_000 * 784 * 4 + 10_000 * 4);
    assert!(
        e.peak_bytes > 68_000_000 && e.peak_bytes < 200_000_000,
        "{e:?}"
    );
}

#[test]
fn every_gamf_solver_adds_a_curve_and_its_iterations() {
    let spec = preset("mnist-cnn").unwrap();
    let tensors = mnist_shapes();
    let one = estimate(&work(&spec, &tensors, &FusionParams::default())).unwrap();
    let params = FusionParams {
        solvers: SolverId::ALL.to_vec(),
        ..FusionParams::default()
    };
    let three = estimate(&work(&spec, &tensors, &params)).unwrap();
    // Two inputs, then eleven proportions for sm, rrwm, ipfp and the vanilla curve.
    assert_eq!(three.evaluations, 2 + 11 * 4);
    assert_eq!(three.affinity_bytes, one.affinity_bytes);
    // The build once, 51 products of 2 × 8,492,032 MACs per solver.
    let per_solver = 51 * 2 * 8_492_032;
    assert_eq!(three.matching_macs - one.matching_macs, 2 * per_solver);
}

#[test]
fn method_none_has_no_affinity_and_half_the_evaluations() {
    let spec = preset("mnist-cnn").unwrap();
    let tensors = mnist_shapes();
    let params = FusionParams {
        methods: vec![MethodId::None],
        ..FusionParams::default()
    };
    let e = estimate(&work(&spec, &tensors, &params)).unwrap();
    assert_eq!(
        (e.affinity_entries, e.matching_bytes, e.matching_macs),
        (0, 0, 0)
    );
    assert_eq!(e.evaluations, 13);
}

#[test]
fn a_wide_hidden_layer_makes_the_affinity_gigabytes() {
    let spec: ArchSpec = serde_json::from_value(serde_json::json!({
        "name": "wide", "input": [1, 28, 28],
        "ops": [{"op": "flatten"}, {"op": "linear", "weight": "a"}, {"op": "relu"},
                {"op": "linear", "weight": "b"}]
    }))
    .unwrap();
    let tensors: BTreeMap<String, Vec<usize>> = [
        ("a".to_string(), vec![4096, 784]),
        ("b".to_string(), vec![10, 4096]),
    ]
    .into();
    let params = FusionParams::default();
    let e = estimate(&work(&spec, &tensors, &params)).unwrap();
    // After a flatten the input is one node with 784-long edge features: layer 1 has
    // 1·4096 edges, layer 2 4096·10; each stores (edges)² entries, plus 1 + 10 fixed pairs.
    assert_eq!(e.affinity_entries, 4096 * 4096 + 40_960 * 40_960 + 11);
    // 1.69e9 entries × 4 bytes (f32).
    assert!(e.peak_bytes > 6_700_000_000, "{}", e.peak_bytes);
    let none = FusionParams {
        methods: vec![MethodId::None],
        ..FusionParams::default()
    };
    let e = estimate(&work(&spec, &tensors, &none)).unwrap();
    assert!(e.peak_bytes < 1_000_000_000, "{}", e.peak_bytes);
}

#[test]
fn an_evaluation_limit_counts_the_copy_and_only_the_evaluated_samples() {
    let spec = preset("mnist-cnn").unwrap();
    let tensors = mnist_shapes();
    let params = FusionParams::default();
    let mut w = work(&spec, &tensors, &params);
    w.eval_samples = 1000;
    let e = estimate(&w).unwrap();
    assert_eq!(e.eval_macs, 8_094_980 * 1000 * 24);
    assert_eq!(e.dataset_bytes, 11_000 * (784 * 4 + 4));
}

#[test]
fn tensors_that_do_not_fit_are_an_arch_error() {
    let spec = preset("mnist-cnn").unwrap();
    let mut tensors = mnist_shapes();
    tensors.insert("fc1.weight".into(), vec![32, 100]);
    let params = FusionParams::default();
    assert!(matches!(
        estimate(&work(&spec, &tensors, &params)),
        Err(ArchError::ShapeMismatch { .. })
    ));
}

#[test]
fn activation_matching_counts_its_calibration_set_bounded_to_the_samples_it_uses() {
    let spec = preset("mnist-cnn").unwrap();
    let tensors = mnist_shapes();
    let wm = FusionParams::with_methods(&[MethodId::WeightMatching]);
    let am = FusionParams::with_methods(&[MethodId::ActivationMatching]);
    let with = |params, calibration_samples| {
        estimate(&Workload {
            calibration_samples,
            ..work(&spec, &tensors, params)
        })
        .unwrap()
    };
    let (base, am5k, am7k) = (with(&wm, 0), with(&am, 5_000), with(&am, 7_000));
    // The calibration set is held like the dataset: 784 f32 pixels and one label per sample.
    assert_eq!(
        am5k.dataset_bytes - base.dataset_bytes,
        5_000 * (784 * 4 + 4)
    );
    // Two forward passes per sample used, plus the cross moments of each group at the output
    // of its ReLU (mnist-cnn: pad 1 + 5×5 conv): conv1 32 units × 26·26 positions, conv2
    // 64 × 12·12, fc1 32 × 1.
    let cross = 676 * 32 * 32 + 144 * 64 * 64 + 32 * 32;
    assert_eq!(base.matching_macs, 0);
    assert_eq!(
        am5k.matching_macs,
        5_000 * (2 * am5k.macs_per_sample + cross)
    );
    // At most MAX_CALIBRATION_SAMPLES are used: more samples cost memory, not compute.
    assert_eq!(am7k.matching_macs, am5k.matching_macs);
    // Its working set: a batch of both models' activations (135 samples = 2^22 / 30,880
    // values per sample) in f32, the f64 copies of the largest group's (conv1, 676 · 32 per
    // sample), the moments and two networks.
    let batch = 2 * 135 * 30_880 * 4 + 2 * 135 * 676 * 32 * 8;
    assert!(am5k.matching_bytes > batch, "{am5k:?}");
    assert!(am5k.matching_bytes < batch + (16 << 20), "{am5k:?}");
}

#[test]
fn the_saved_residual_buffers_bound_what_the_forward_pass_allocates() {
    use crate::forward::tests::random_model;
    use crate::forward::{MAX_CHUNK, Network, Scratch};
    let spec = preset("resnet-mini").unwrap();
    let tensors = crate::arch::preset_tensors("resnet-mini").unwrap();
    let params = FusionParams::default();
    let e = estimate(&work(&spec, &tensors, &params)).unwrap();
    // resnet-mini keeps four values aside: the stem's pooled output, `layer1`'s and
    // `layer2`'s (each read by a block's first conv and by its add or shortcut), and
    // `layer2.bn2` (its add reads it after the projection shortcut has run).
    let graph = spec.graph_with(|n| tensors.get(n).cloned()).unwrap();
    assert_eq!(graph.saved_values().len(), 4);
    // What one thread's save slots actually hold after a full chunk of samples.
    let w = random_model(&spec, &tensors, 7);
    let net = Network::new(&spec, &w).unwrap();
    let n = MAX_CHUNK;
    let images = vec![0.5f32; n * 784];
    let mut out = vec![0.0f32; n * 10];
    let mut scratch = Scratch::default();
    net.logits_serial(&images, &mut out, &mut scratch);
    let held = (scratch.saved_floats() * 4) as u64;
    assert!(held > 0);
    assert_eq!(e.saved_bytes, 2 * held, "two threads, each a full chunk");
    assert!(e.activation_bytes > e.saved_bytes);
    // A chain keeps nothing aside.
    let cnn = preset("mnist-cnn").unwrap();
    let chain = estimate(&work(&cnn, &mnist_shapes(), &params)).unwrap();
    assert_eq!(chain.saved_bytes, 0);
}
