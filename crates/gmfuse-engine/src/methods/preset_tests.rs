//! Every preset (`mnist-cnn`, `mlp`, `cnn-bn`, `resnet-mini`) and two graph shapes no preset
//! has — a self-tied group (`x + bn(conv(x))`: the conv's input and output channels and the
//! add's are one group) and a `batchnorm1d` after `flatten` (its tensors move in blocks of
//! H·W) — with random weights and non-trivial batchnorm statistics: permuting every
//! permutation group with random permutations leaves the logits equal (proptest), and every
//! method recovers a randomly permuted copy exactly — the permutations, and the fused weights
//! at every α.

use std::collections::BTreeMap;

use ndarray::Array2;
use proptest::prelude::*;

use super::*;
use crate::arch::{PermStructure, preset_for, preset_tensors};
use crate::eval::Dataset;
use crate::forward::Network;
use crate::forward::tests::{Rng, random_model};
use crate::fusion::{interpolate, permute};
use crate::pipeline::{FusionParams, Quiet};
use crate::solvers::SolverId;

const PRESETS: [&str; 4] = ["mnist-cnn", "mlp", "cnn-bn", "resnet-mini"];
/// The presets and the two extra shapes of [`extra_graph`].
const GRAPHS: [&str; 6] = [
    "mnist-cnn",
    "mlp",
    "cnn-bn",
    "resnet-mini",
    "self-tied",
    "bn1d-after-flatten",
];

/// A batch norm's op named `p` over the tensors `{p}.weight`, `.bias`, `.running_mean`,
/// `.running_var`.
fn bn(kind: &str, p: &str) -> serde_json::Value {
    serde_json::json!({"op": kind, "name": p, "weight": format!("{p}.weight"), "bias": format!("{p}.bias"),
        "running_mean": format!("{p}.running_mean"), "running_var": format!("{p}.running_var")})
}

/// The graph shapes of the module doc, with their tensor shapes.
fn extra_graph(name: &str) -> (ArchSpec, BTreeMap<String, Vec<usize>>) {
    use serde_json::json;
    let (ops, shapes) = match name {
        // stem → x; x + bn(conv(x)): `self.weight` is [8, 8, 3, 3] with both axes in x's group.
        "self-tied" => (
            json!([
                {"op": "conv2d", "weight": "stem.weight", "bias": "stem.bias", "padding": 1},
                {"op": "relu", "name": "x"},
                {"op": "conv2d", "weight": "self.weight", "padding": 1},
                bn("batchnorm2d", "bn"),
                {"op": "add", "inputs": ["x", "bn"]},
                {"op": "relu"},
                {"op": "maxpool2d", "kernel": 4},
                {"op": "flatten"},
                {"op": "linear", "weight": "fc.weight", "bias": "fc.bias"}
            ]),
            vec![
                ("stem.weight", vec![8, 1, 3, 3]),
                ("stem.bias", vec![8]),
                ("self.weight", vec![8, 8, 3, 3]),
                ("bn.weight", vec![8]),
                ("bn.bias", vec![8]),
                ("bn.running_mean", vec![8]),
                ("bn.running_var", vec![8]),
                ("fc.weight", vec![10, 8 * 49]),
                ("fc.bias", vec![10]),
            ],
        ),
        // conv (6) → 7×7 → flatten → batchnorm1d over the 294 features → fc1 → bn → fc2.
        "bn1d-after-flatten" => (
            json!([
                {"op": "conv2d", "weight": "conv.weight", "bias": "conv.bias", "padding": 1},
                {"op": "relu"},
                {"op": "maxpool2d", "kernel": 4},
                {"op": "flatten"},
                bn("batchnorm1d", "flat"),
                {"op": "linear", "weight": "fc1.weight", "bias": "fc1.bias"},
                bn("batchnorm1d", "bn1"),
                {"op": "relu"},
                {"op": "linear", "weight": "fc2.weight"}
            ]),
            vec![
                ("conv.weight", vec![6, 1, 3, 3]),
                ("conv.bias", vec![6]),
                ("flat.weight", vec![294]),
                ("flat.bias", vec![294]),
                ("flat.running_mean", vec![294]),
                ("flat.running_var", vec![294]),
                ("fc1.weight", vec![12, 294]),
                ("fc1.bias", vec![12]),
                ("bn1.weight", vec![12]),
                ("bn1.bias", vec![12]),
                ("bn1.running_mean", vec![12]),
                ("bn1.running_var", vec![12]),
                ("fc2.weight", vec![10, 12]),
            ],
        ),
        other => unreachable!("no extra graph `{other}`"),
    };
    let spec = serde_json::from_value(json!({"name": name, "input": [1, 28, 28], "ops": ops}))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let shapes = shapes
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    (spec, shapes)
}

/// A graph's spec, structure and random weights; `mlp` as 784-24-16-10 with biases.
fn setup(name: &str, seed: u64) -> (ArchSpec, PermStructure, WeightSet) {
    if !PRESETS.contains(&name) {
        let (spec, shapes) = extra_graph(name);
        let w = random_model(&spec, &shapes, seed);
        let s = spec.validate(&w).unwrap();
        return (spec, s, w);
    }
    let shapes: BTreeMap<String, Vec<usize>> = if name == "mlp" {
        [
            ("fc1.weight", vec![24, 784]),
            ("fc1.bias", vec![24]),
            ("fc2.weight", vec![16, 24]),
            ("fc2.bias", vec![16]),
            ("fc3.weight", vec![10, 16]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    } else {
        preset_tensors(name).unwrap()
    };
    let spec = preset_for(name, &shapes).unwrap();
    let w = random_model(&spec, &shapes, seed);
    let s = spec.validate(&w).unwrap();
    (spec, s, w)
}

fn random_perm(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = ((rng.next() + 1.0) / 2.0 * (i + 1) as f64) as usize;
        p.swap(i, j.min(i));
    }
    p
}

/// `n` samples of 28×28 pixels uniform in [0, 1).
fn pixels(n: usize, seed: u64) -> Array2<f32> {
    let mut rng = Rng::new(seed);
    Array2::from_shape_simple_fn((n, 784), || (rng.next() as f32 + 1.0) / 2.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn permuting_every_group_of_every_preset_leaves_the_logits_equal(seed in any::<u64>()) {
        for name in GRAPHS {
            let (spec, s, w) = setup(name, seed);
            let mut rng = Rng::new(seed ^ 0xABCD);
            let perms: Vec<Vec<usize>> =
                s.hidden.iter().map(|g| random_perm(g.size, &mut rng)).collect();
            let p = permute(&s, &w, &perms).unwrap();
            prop_assert_ne!(&p, &w, "{} was not permuted", name);
            let x = pixels(6, seed);
            let a = Network::new(&spec, &w).unwrap().logits(x.view());
            let b = Network::new(&spec, &p).unwrap().logits(x.view());
            let d = a.iter().zip(&b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
            prop_assert!(d <= 1e-4, "{}: logits moved by {}", name, d);
        }
    }
}

/// Align `models` with method `id` (GAMF: every solver), one alignment per run.
fn align_all(
    id: MethodId,
    spec: &ArchSpec,
    s: &PermStructure,
    models: [&WeightSet; 2],
    data: &Dataset,
) -> Vec<Alignment> {
    let params = FusionParams {
        solvers: vec![SolverId::Sm, SolverId::Rrwm, SolverId::Ipfp],
        ..FusionParams::default()
    };
    let input = MethodInput {
        spec,
        structure: s,
        models,
        calibration: Some(data),
        params: &params,
        observer: &Quiet,
    };
    method(id)
        .align_runs(&input)
        .unwrap_or_else(|e| panic!("{id} on {}: {e}", spec.name))
        .into_iter()
        .map(|r| r.alignment)
        .collect()
}

#[test]
fn every_method_recovers_a_permuted_copy_of_every_preset_exactly() {
    let data = Dataset {
        name: "noise".into(),
        shape: [1, 28, 28],
        images: pixels(400, 3),
        labels: vec![0; 400],
    };
    for (k, name) in GRAPHS.into_iter().enumerate() {
        let (spec, s, w) = setup(name, 40 + k as u64);
        let mut rng = Rng::new(k as u64);
        let shuffle: Vec<Vec<usize>> = s
            .hidden
            .iter()
            .map(|g| random_perm(g.size, &mut rng))
            .collect();
        let copy = permute(&s, &w, &shuffle).unwrap();
        for id in [
            MethodId::Gamf,
            MethodId::WeightMatching,
            MethodId::ActivationMatching,
        ] {
            for a in align_all(id, &spec, &s, [&w, &copy], &data) {
                assert_eq!(a.perms, shuffle, "{id} on {name}");
                let aligned = permute(&s, &w, &a.perms).unwrap();
                assert_eq!(aligned, copy, "{id} on {name}");
                for step in 0..=10 {
                    let fused = interpolate(&aligned, &copy, f64::from(step) / 10.0).unwrap();
                    for (n, t) in &fused.tensors {
                        let d = t.data.iter().zip(&copy.tensors[n].data);
                        assert!(
                            d.into_iter()
                                .all(|(x, y)| (x - y).abs() <= 1e-12 * y.abs().max(1.0))
                        );
                    }
                }
            }
        }
        // `none` keeps every group in place: fusion is plain averaging.
        let none = align_all(MethodId::None, &spec, &s, [&w, &copy], &data);
        let identity: Vec<Vec<usize>> = s.hidden.iter().map(|g| (0..g.size).collect()).collect();
        assert_eq!(none[0].perms, identity, "{name}");
    }
}

#[test]
fn the_residual_stream_is_one_group_with_every_tensor_it_touches() {
    let (_, s, _) = setup("resnet-mini", 1);
    // Groups: the stream of stem + layer1 (16), layer1's inner (16), layer2's inner (32),
    // the stream of layer2 + layer3 (32), layer3's inner (32).
    let sizes: Vec<usize> = s.hidden.iter().map(|g| g.size).collect();
    assert_eq!(sizes, [16, 16, 32, 32, 32]);
    assert!(!s.is_chain());
    let stream = &s.hidden[0];
    let weights: Vec<&str> = s.layers.iter().map(|l| l.weight.as_str()).collect();
    let producers: Vec<&str> = stream.producers.iter().map(|&l| weights[l]).collect();
    assert_eq!(producers, ["stem.conv.weight", "layer1.conv2.weight"]);
    let consumers: Vec<&str> = stream.consumers.iter().map(|&l| weights[l]).collect();
    assert_eq!(
        consumers,
        [
            "layer1.conv1.weight",
            "layer2.conv1.weight",
            "layer2.shortcut.conv.weight"
        ]
    );
    // 2 producer weights, 2 batchnorms of 4 tensors, 3 consumer input axes.
    assert_eq!(stream.axes.len(), 2 + 8 + 3);
    let out_stream = &s.hidden[3];
    let producers: Vec<&str> = out_stream.producers.iter().map(|&l| weights[l]).collect();
    assert_eq!(
        producers,
        [
            "layer2.conv2.weight",
            "layer2.shortcut.conv.weight",
            "layer3.conv2.weight"
        ]
    );
    // Its units are observed after layer2's and layer3's final ReLU.
    assert_eq!(out_stream.taps.len(), 2);
}

#[test]
fn a_self_tied_group_and_a_flat_batch_norm_move_every_axis_they_touch() {
    let axes = |s: &PermStructure, g: usize| -> Vec<(String, usize, usize)> {
        let a = &s.hidden[g].axes;
        a.iter()
            .map(|x| (x.tensor.clone(), x.axis, x.block))
            .collect()
    };
    // x + bn(conv(x)): one group of 8 produced by the stem and the self conv, which it
    // permutes on both axes.
    let (_, s, _) = setup("self-tied", 1);
    assert_eq!(s.hidden.len(), 1);
    let got = axes(&s, 0);
    for want in [
        ("self.weight", 0, 1),
        ("self.weight", 1, 1),
        ("bn.running_var", 0, 1),
    ] {
        assert!(
            got.contains(&(want.0.to_string(), want.1, want.2)),
            "{want:?} not in {got:?}"
        );
    }
    assert!(got.contains(&("fc.weight".into(), 1, 49)), "{got:?}");
    // batchnorm1d after flatten: its four tensors move with the conv's channels, in blocks
    // of 7·7 = 49 features.
    let (_, s, _) = setup("bn1d-after-flatten", 1);
    let sizes: Vec<usize> = s.hidden.iter().map(|g| g.size).collect();
    assert_eq!(sizes, [6, 12]);
    let got = axes(&s, 0);
    for t in [
        "flat.weight",
        "flat.bias",
        "flat.running_mean",
        "flat.running_var",
    ] {
        assert!(got.contains(&(t.to_string(), 0, 49)), "{t} not in {got:?}");
    }
    assert!(got.contains(&("fc1.weight".into(), 1, 49)), "{got:?}");
}
