//! Every preset (`mnist-cnn`, `mlp`, `cnn-bn`, `resnet-mini`) with random weights and
//! non-trivial batchnorm statistics: permuting every permutation group with random
//! permutations leaves the logits equal (proptest), and every method recovers a randomly
//! permuted copy exactly — the permutations, and the fused weights at every α.

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

/// A preset's spec, structure and random weights; `mlp` as 784-24-16-10 with biases.
fn setup(name: &str, seed: u64) -> (ArchSpec, PermStructure, WeightSet) {
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
        for name in PRESETS {
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
    for (k, name) in PRESETS.into_iter().enumerate() {
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
