//! gmfuse's own ONNX: every preset's demo pair exported and read back, fused weights written
//! into an existing file, and a permuted copy recovered by weight matching.

use std::path::PathBuf;

use ndarray::Array2;
use prost::Message;

use crate::arch::{ArchSpec, Op, preset_for};
use crate::forward::Network;
use crate::forward::tests::Rng;
use crate::fusion::permute;
use crate::methods::{MethodId, MethodInput, method};
use crate::onnx::proto::ModelProto;
use crate::onnx::{export, read, write_fused};
use crate::pipeline::{FusionParams, Quiet};
use crate::weights::WeightSet;

/// `(preset, assets dir)` of every preset's demo pair.
pub(super) const DEMOS: [(&str, &str); 4] = [
    ("mnist-cnn", "demo"),
    ("mlp", "demo-mlp"),
    ("cnn-bn", "demo-cnn-bn"),
    ("resnet-mini", "demo-resnet-mini"),
];

pub(super) fn demo(dir: &str, file: &str) -> WeightSet {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets")
        .join(dir)
        .join(file);
    WeightSet::from_bytes(&std::fs::read(path).unwrap()).unwrap()
}

/// `spec` with pool strides equal to the kernel written as the default (`None`), the one
/// form ONNX can carry (its strides are always explicit).
fn canonical(mut spec: ArchSpec) -> ArchSpec {
    for n in &mut spec.ops {
        if let Op::Maxpool2d { kernel, stride, .. } | Op::Avgpool2d { kernel, stride, .. } =
            &mut n.op
            && *stride == Some(*kernel)
        {
            *stride = None;
        }
    }
    spec
}

pub(super) fn pixels(n: usize, len: usize, seed: u64) -> Array2<f32> {
    let mut rng = Rng::new(seed);
    Array2::from_shape_simple_fn((n, len), || (rng.next() as f32 + 1.0) / 2.0)
}

#[test]
fn every_demo_pair_exports_and_reads_back_the_same_spec_weights_and_logits() {
    for (preset, dir) in DEMOS {
        let spec = preset_for(preset, &demo(dir, "model-a.safetensors").shapes()).unwrap();
        let mut specs = Vec::new();
        for file in ["model-a.safetensors", "model-b.safetensors"] {
            let w = demo(dir, file);
            let bytes = export(&spec, &w).unwrap();
            let m = read(&bytes).unwrap_or_else(|e| panic!("{dir}/{file}: {e}"));
            let json = |s: &ArchSpec| serde_json::to_string_pretty(s).unwrap();
            assert_eq!(
                json(&m.spec),
                json(&canonical(spec.clone())),
                "{dir}/{file}"
            );
            assert!(
                m.weights.tensors == w.tensors,
                "{dir}/{file}: weights differ"
            );
            let x = pixels(8, spec.input.iter().product(), 7);
            let a = Network::new(&spec, &w).unwrap().logits(x.view());
            let b = Network::new(&m.spec, &m.weights).unwrap().logits(x.view());
            assert_eq!(a, b, "{dir}/{file}");
            specs.push(m.spec);
        }
        assert_eq!(specs[0], specs[1], "{dir}: the two exports derive one spec");
    }
}

#[test]
fn write_fused_replaces_the_weights_and_keeps_everything_else() {
    let (preset, dir) = DEMOS[2];
    let w = demo(dir, "model-a.safetensors");
    let spec = preset_for(preset, &w.shapes()).unwrap();
    let original = export(&spec, &w).unwrap();
    let mut fused = w.clone();
    for t in fused.tensors.values_mut() {
        t.data.mapv_inplace(|x| (x * 0.5 + 0.25).abs());
    }
    let bytes = write_fused(&original, &fused).unwrap();
    assert!(read(&bytes).unwrap().weights.tensors == round_f32(&fused).tensors);
    let strip = |b: &[u8]| {
        let mut m = ModelProto::decode(b).unwrap();
        m.graph
            .as_mut()
            .unwrap()
            .initializer
            .retain(|t| t.data_type == Some(7));
        m
    };
    assert!(
        strip(&bytes) == strip(&original),
        "fields besides the weights changed"
    );
    // Writing the weights read gives the same bytes back.
    assert!(write_fused(&original, &read(&original).unwrap().weights).unwrap() == original);
}

/// `w` with every value rounded through `f32` (the dtype the file stores).
fn round_f32(w: &WeightSet) -> WeightSet {
    let mut r = w.clone();
    for t in r.tensors.values_mut() {
        t.data.mapv_inplace(|x| f64::from(x as f32));
    }
    r
}

#[test]
fn a_permuted_onnx_copy_is_recovered_exactly_by_weight_matching() {
    let (preset, dir) = DEMOS[3];
    let w = demo(dir, "model-a.safetensors");
    let spec = preset_for(preset, &w.shapes()).unwrap();
    let original = export(&spec, &w).unwrap();
    let m = read(&original).unwrap();
    let s = m.spec.validate(&m.weights).unwrap();
    let mut rng = Rng::new(5);
    let shuffle: Vec<Vec<usize>> = s
        .hidden
        .iter()
        .map(|g| {
            let mut p: Vec<usize> = (0..g.size).collect();
            for i in (1..g.size).rev() {
                let j = (((rng.next() + 1.0) / 2.0) * (i + 1) as f64) as usize;
                p.swap(i, j.min(i));
            }
            p
        })
        .collect();
    let permuted = permute(&s, &m.weights, &shuffle).unwrap();
    let copy = read(&write_fused(&original, &permuted).unwrap()).unwrap();
    assert_eq!(copy.spec, m.spec);
    let params = FusionParams::default();
    let input = MethodInput {
        spec: &m.spec,
        structure: &s,
        models: [&m.weights, &copy.weights],
        calibration: None,
        params: &params,
        observer: &Quiet,
    };
    let a = method(MethodId::WeightMatching).align(&input).unwrap();
    assert_eq!(a.perms, shuffle);
    assert!(permute(&s, &m.weights, &a.perms).unwrap().tensors == copy.weights.tensors);
}
