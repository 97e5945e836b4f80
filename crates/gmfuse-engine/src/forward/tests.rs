//! Tests: both convolution paths against a naive direct implementation written from PyTorch's
//! definitions (channel-major, `f64`, plain loops), plus shared helpers for the seed models.

use std::path::PathBuf;

use ndarray::{Array2, ArrayD, IxDyn};

use super::*;
use crate::arch::{Op, preset};
use crate::weights::{DType, Tensor};

mod reference;

use reference::reference;

/// A small deterministic generator (xorshift64*), uniform in `[-1, 1)`.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        v as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Random weights for `spec` with the shapes given, scaled by 1/√fan-in.
pub(crate) fn random_weights(shapes: &[(&str, Vec<usize>)], rng: &mut Rng) -> WeightSet {
    let mut ws = WeightSet::default();
    for (name, shape) in shapes {
        let fan_in = shape[1..].iter().product::<usize>().max(1) as f64;
        let data = ArrayD::from_shape_fn(IxDyn(shape), |_| rng.next() / fan_in.sqrt());
        ws.tensors.insert(
            name.to_string(),
            Tensor {
                dtype: DType::F32,
                data,
            },
        );
    }
    ws
}

/// Largest |logit − reference| over `n` random samples, on both convolution paths.
fn max_diff(spec: &ArchSpec, ws: &WeightSet, n: usize, rng: &mut Rng) -> [f64; 2] {
    let len = spec.input.iter().product::<usize>();
    let x = Array2::from_shape_fn((n, len), |_| (rng.next() as f32 + 1.0) / 2.0);
    let want: Vec<Vec<f64>> = x
        .rows()
        .into_iter()
        .map(|r| reference(spec, ws, r.as_slice().unwrap()))
        .collect();
    let mut net = Network::new(spec, ws).unwrap();
    let mut out = [0.0; 2];
    for (slot, direct) in [(0, false), (1, true)] {
        if direct && !direct::available() {
            eprintln!("SKIPPED: no AVX-512 on this CPU, direct convolution not tested");
            continue;
        }
        net.direct = direct;
        let got = net.logits(x.view());
        assert_eq!(got.dim(), (n, want[0].len()));
        for (g, w) in got.rows().into_iter().zip(&want) {
            for (a, b) in g.iter().zip(w) {
                out[slot] = f64::max(out[slot], (f64::from(*a) - b).abs());
            }
        }
    }
    out
}

fn spec(json: &str) -> ArchSpec {
    serde_json::from_str(json).unwrap()
}

#[test]
fn every_op_matches_the_direct_definition_on_both_paths() {
    // Strides, conv padding, both pad modes, both pools with padding, biases, odd channel
    // counts (masked stores), narrow outputs (1-pixel tiles) and several channel blocks.
    let s = spec(
        r#"{"name":"all","input":[3,11,30],"ops":[
          {"op":"pad2d","mode":"replicate","padding":1},
          {"op":"conv2d","weight":"c1.w","bias":"c1.b","stride":2,"padding":1},
          {"op":"relu"},
          {"op":"maxpool2d","kernel":3,"stride":1,"padding":1},
          {"op":"pad2d","mode":"zero","padding":2},
          {"op":"conv2d","weight":"c2.w","bias":"c2.b"},
          {"op":"avgpool2d","kernel":2,"padding":1},
          {"op":"relu"},
          {"op":"conv2d","weight":"c3.w","padding":1},
          {"op":"flatten"},
          {"op":"linear","weight":"l1.w","bias":"l1.b"},
          {"op":"relu"},
          {"op":"linear","weight":"l2.w"}]}"#,
    );
    let shapes = [
        ("c1.w", vec![17, 3, 3, 3]),
        ("c1.b", vec![17]),
        ("c2.w", vec![48, 17, 2, 3]),
        ("c2.b", vec![48]),
        ("c3.w", vec![64, 48, 3, 3]),
        ("l1.w", vec![9, 64 * 6 * 10]),
        ("l1.b", vec![9]),
        ("l2.w", vec![4, 9]),
    ];
    let mut rng = Rng::new(7);
    let ws = random_weights(&shapes, &mut rng);
    let [gemm, direct] = max_diff(&s, &ws, 70, &mut rng);
    assert!(gemm <= 1e-4, "im2col + GEMM off by {gemm}");
    assert!(direct <= 1e-4, "direct convolution off by {direct}");
}

#[test]
fn images_narrower_than_a_tile_match_the_direct_definition() {
    let s = spec(
        r#"{"name":"narrow","input":[2,5,4],"ops":[
          {"op":"conv2d","weight":"c.w","bias":"c.b"},{"op":"relu"},
          {"op":"conv2d","weight":"d.w","padding":1},
          {"op":"flatten"},{"op":"linear","weight":"l.w"}]}"#,
    );
    let shapes = [
        ("c.w", vec![20, 2, 3, 3]),
        ("c.b", vec![20]),
        ("d.w", vec![64, 20, 2, 2]),
        ("l.w", vec![3, 64 * 4 * 3]),
    ];
    let mut rng = Rng::new(3);
    let ws = random_weights(&shapes, &mut rng);
    let [gemm, direct] = max_diff(&s, &ws, 5, &mut rng);
    assert!(gemm <= 1e-4 && direct <= 1e-4, "off by {gemm} / {direct}");
}

#[test]
fn mnist_cnn_with_random_weights_matches_the_direct_definition() {
    let s = preset("mnist-cnn").unwrap();
    let shapes = [
        ("conv1.weight", vec![32, 1, 5, 5]),
        ("conv2.weight", vec![64, 32, 5, 5]),
        ("fc1.weight", vec![32, 3136]),
        ("fc2.weight", vec![10, 32]),
    ];
    let mut rng = Rng::new(11);
    let ws = random_weights(&shapes, &mut rng);
    let [gemm, direct] = max_diff(&s, &ws, 9, &mut rng);
    assert!(gemm <= 1e-4 && direct <= 1e-4, "off by {gemm} / {direct}");
}

#[test]
fn a_flattened_feature_map_comes_out_channel_major() {
    // A 1x1 identity-like conv on a 2-channel 2x3 image: the output must be x's own order.
    let s = spec(
        r#"{"name":"id","input":[2,2,3],"ops":[
          {"op":"conv2d","weight":"c.w"},{"op":"flatten"}]}"#,
    );
    let mut ws = WeightSet::default();
    let eye = ArrayD::from_shape_fn(IxDyn(&[2, 2, 1, 1]), |i| f64::from(u8::from(i[0] == i[1])));
    ws.tensors.insert(
        "c.w".into(),
        Tensor {
            dtype: DType::F32,
            data: eye,
        },
    );
    let x = Array2::from_shape_fn((2, 12), |(n, i)| (n * 100 + i) as f32);
    let net = Network::new(&s, &ws).unwrap();
    assert_eq!(net.logits(x.view()), x);
    assert_eq!((net.classes(), net.input_shape()), (12, [2, 2, 3]));
}

#[test]
fn invalid_weights_are_rejected_with_the_arch_error() {
    let s = preset("mnist-cnn").unwrap();
    let ws = random_weights(&[("conv1.weight", vec![32, 1, 5, 5])], &mut Rng::new(1));
    assert!(matches!(
        Network::new(&s, &ws),
        Err(ArchError::MissingTensor { .. })
    ));
}

/// The directory of the example's seed models, if present: `GMFUSE_SEED_MODELS`, else
/// `../shared/data/seed-models` or `../../shared/data/seed-models` from the workspace root;
/// panics instead of returning `None` when `GMFUSE_REQUIRE_SEED=1`.
pub(crate) fn seed_models_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("GMFUSE_SEED_MODELS")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            root.join("../../../shared/data/seed-models"),
            root.join("../../../../shared/data/seed-models"),
        ])
        .find(|d| d.join("model1.safetensors").is_file())
        .or_else(|| {
            assert!(
                std::env::var_os("GMFUSE_REQUIRE_SEED").is_none_or(|v| v != "1"),
                "GMFUSE_REQUIRE_SEED=1 but the seed models were not found (set GMFUSE_SEED_MODELS)"
            );
            None
        })
}

/// Read a seed model (F32 safetensors) into a [`WeightSet`] with the `safetensors` crate.
pub(crate) fn load_seed_model(path: &std::path::Path) -> WeightSet {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut ws = WeightSet::default();
    for (name, view) in st.tensors() {
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
        let vals: Vec<f64> = view
            .data()
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
            .collect();
        let data = ArrayD::from_shape_vec(IxDyn(view.shape()), vals).unwrap();
        ws.tensors.insert(
            name,
            Tensor {
                dtype: DType::F32,
                data,
            },
        );
    }
    ws
}

/// `Network::activations` against the direct definition run on the spec cut after each op (and
/// the ReLU right after it): same values, NHWC rows, on both convolution paths.
#[test]
fn activations_are_each_ops_output_after_its_relu_one_row_per_position() {
    let s = spec(
        r#"{"name":"taps","input":[2,9,8],"ops":[
          {"op":"conv2d","weight":"c1.w","bias":"c1.b","padding":1},
          {"op":"relu"},
          {"op":"maxpool2d","kernel":2},
          {"op":"conv2d","weight":"c2.w"},
          {"op":"flatten"},
          {"op":"linear","weight":"l1.w","bias":"l1.b"},
          {"op":"relu"},
          {"op":"linear","weight":"l2.w"}]}"#,
    );
    let shapes = [
        ("c1.w", vec![5, 2, 3, 3]),
        ("c1.b", vec![5]),
        ("c2.w", vec![17, 5, 2, 2]),
        ("l1.w", vec![7, 17 * 3 * 3]),
        ("l1.b", vec![7]),
        ("l2.w", vec![3, 7]),
    ];
    let mut rng = Rng::new(3);
    let ws = random_weights(&shapes, &mut rng);
    let n = 23;
    let x = Array2::from_shape_simple_fn((n, 2 * 9 * 8), || rng.next() as f32);
    // (op tapped, ops the reference runs, channels, positions)
    let taps = [
        (0, 2, 5, 72),
        (2, 3, 5, 16),
        (3, 4, 17, 9),
        (5, 7, 7, 1),
        (7, 8, 3, 1),
    ];
    for net in [
        Network::new(&s, &ws).unwrap(),
        Network::new(&s, &ws).unwrap().portable(),
    ] {
        let ops: Vec<usize> = taps.iter().map(|t| t.0).collect();
        let acts = net.activations(x.view(), &ops);
        for (&(op, upto, c, hw), a) in taps.iter().zip(&acts) {
            assert_eq!(a.dim(), (n * hw, c), "op {op}");
            let cut = ArchSpec {
                ops: s.ops[..upto].to_vec(),
                ..s.clone()
            };
            for i in 0..n {
                let want = reference(&cut, &ws, x.row(i).as_slice().unwrap());
                for p in 0..hw {
                    for ch in 0..c {
                        let got = f64::from(a[[i * hw + p, ch]]);
                        let d = (got - want[ch * hw + p]).abs();
                        assert!(d <= 1e-4, "op {op} sample {i} pos {p} ch {ch}: off by {d}");
                    }
                }
            }
        }
    }
}

/// Random weights for `spec` (shapes by name) with batchnorm statistics a trained network
/// could have: γ in [0.5, 1.5], β and the running mean in ±0.5, the running variance in
/// [0.25, 1.75]; every other tensor as [`random_weights`].
pub(crate) fn random_model(
    spec: &ArchSpec,
    shapes: &std::collections::BTreeMap<String, Vec<usize>>,
    seed: u64,
) -> WeightSet {
    let mut rng = Rng::new(seed);
    let list: Vec<(&str, Vec<usize>)> = shapes
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let mut ws = random_weights(&list, &mut rng);
    for op in spec.op_list() {
        if let Op::Batchnorm2d { .. } | Op::Batchnorm1d { .. } = op {
            let names = op.tensors();
            let ranges = [(1.0, 0.5), (0.0, 0.5), (0.0, 0.5), (1.0, 0.75)];
            for (name, (mid, half)) in names.iter().zip(ranges) {
                let t = ws.tensors.get_mut(*name).unwrap();
                t.data.mapv_inplace(|_| mid + half * rng.next());
            }
        }
    }
    ws
}

#[test]
fn the_bn_and_residual_presets_match_the_direct_definition() {
    // Batchnorms folded into convolutions and linear layers, identity and projection
    // shortcuts (saved, loaded and added values), global average pooling.
    for (name, seed) in [("cnn-bn", 5), ("resnet-mini", 6)] {
        let s = preset(name).unwrap();
        let ws = random_model(&s, &crate::arch::preset_tensors(name).unwrap(), seed);
        let [gemm, direct] = max_diff(&s, &ws, 6, &mut Rng::new(seed));
        assert!(
            gemm <= 1e-4 && direct <= 1e-4,
            "{name}: off by {gemm} / {direct}"
        );
    }
}

#[test]
fn batchnorms_that_cannot_be_folded_and_adds_of_saved_values_match_the_definition() {
    // A batchnorm on the input, one after an add, one after a flatten (per feature), one
    // after a conv whose output is also read by an add; an add whose inputs are both saved
    // (the current value is neither), and an add of a value to itself.
    let s = spec(
        r#"{"name":"g","input":[2,6,6],"ops":[
          {"op":"batchnorm2d","weight":"b0.w","bias":"b0.b","running_mean":"b0.m","running_var":"b0.v","name":"in"},
          {"op":"conv2d","weight":"c1.w","padding":1,"name":"c1"},
          {"op":"batchnorm2d","weight":"b1.w","bias":"b1.b","running_mean":"b1.m","running_var":"b1.v","name":"n1"},
          {"op":"conv2d","weight":"c2.w","input":"in","name":"c2"},
          {"op":"add","inputs":["n1","c1"],"name":"s1"},
          {"op":"add","inputs":["c2","s1"]},
          {"op":"batchnorm2d","weight":"b2.w","bias":"b2.b","running_mean":"b2.m","running_var":"b2.v"},
          {"op":"relu","name":"r"},
          {"op":"add","inputs":["r","r"]},
          {"op":"flatten"},
          {"op":"batchnorm1d","weight":"b3.w","bias":"b3.b","running_mean":"b3.m","running_var":"b3.v","eps":0.01},
          {"op":"linear","weight":"l.w","bias":"l.b"}]}"#,
    );
    let bn = |p: &str, n: usize| ["w", "b", "m", "v"].map(|k| (format!("{p}.{k}"), vec![n]));
    let mut shapes: std::collections::BTreeMap<String, Vec<usize>> = [
        ("c1.w".to_string(), vec![5, 2, 3, 3]),
        ("c2.w".to_string(), vec![5, 2, 1, 1]),
        ("l.w".to_string(), vec![3, 180]),
        ("l.b".to_string(), vec![3]),
    ]
    .into_iter()
    .collect();
    for (p, n) in [("b0", 2), ("b1", 5), ("b2", 5), ("b3", 180)] {
        shapes.extend(bn(p, n));
    }
    let ws = random_model(&s, &shapes, 9);
    let [gemm, direct] = max_diff(&s, &ws, 7, &mut Rng::new(9));
    assert!(gemm <= 1e-4 && direct <= 1e-4, "off by {gemm} / {direct}");
    // A negative running variance is refused before anything runs.
    let mut bad = ws.clone();
    bad.tensors.get_mut("b2.v").unwrap().data[[1]] = -2.0;
    assert!(matches!(
        Network::new(&s, &bad),
        Err(ArchError::BadTensor { name, .. }) if name == "b2.v"
    ));
}
