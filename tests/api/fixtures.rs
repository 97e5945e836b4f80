//! Test inputs: the demo models (or the seed models when the demo ones are absent), and
//! hand-built safetensors files — valid ones for other architectures and broken ones.

use std::path::PathBuf;

use serde_json::{Value, json};

/// Two models of the `mnist-cnn` architecture.
pub struct Pair {
    pub a: Vec<u8>,
    pub b: Vec<u8>,
    pub source: String,
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo models (`assets/demo/model-{a,b}.safetensors`), else the seed models
/// (`$GMFUSE_SEED_MODELS` or `../shared/data/seed-models`), else `None`.
pub fn model_pair() -> Option<Pair> {
    let demo = manifest().join("assets/demo");
    let mut candidates = vec![(
        demo.join("model-a.safetensors"),
        demo.join("model-b.safetensors"),
    )];
    let mut seed_dirs: Vec<PathBuf> = std::env::var_os("GMFUSE_SEED_MODELS")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    seed_dirs.push(manifest().join("../shared/data/seed-models"));
    seed_dirs.push(manifest().join("../../shared/data/seed-models"));
    for d in seed_dirs {
        candidates.push((d.join("model1.safetensors"), d.join("model2.safetensors")));
    }
    candidates.into_iter().find_map(|(a, b)| {
        Some(Pair {
            a: std::fs::read(&a).ok()?,
            b: std::fs::read(&b).ok()?,
            source: a.parent()?.display().to_string(),
        })
    })
}

/// The model pair, or return from the test after saying loudly that it was skipped.
macro_rules! require_models {
    () => {
        match $crate::fixtures::model_pair() {
            Some(p) => {
                eprintln!("using the models in {}", p.source);
                p
            }
            None => {
                eprintln!(
                    "SKIPPED {}: no demo models (assets/demo) and no seed models \
                     ($GMFUSE_SEED_MODELS or ../shared/data/seed-models)",
                    module_path!()
                );
                return;
            }
        }
    };
}
pub(crate) use require_models;

/// A safetensors file from a header written out by hand and the data bytes after it.
pub fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A valid F32 safetensors file with the given tensors, in order.
pub fn safetensors(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "{name}");
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            (*name).to_string(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    raw_safetensors(&Value::Object(header).to_string(), &data)
}

/// Deterministic small values (a linear congruential sequence in [-0.5, 0.5)).
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

/// An `mnist-cnn`-named file whose `fc1.weight` is `[32, fc1_in]` (3136 fits the preset).
pub fn mnist_cnn_model(fc1_in: usize, seed: u32) -> Vec<u8> {
    mnist_cnn_with_classes(fc1_in, 10, seed)
}

/// [`mnist_cnn_model`] with `classes` outputs (fc2 is `[classes, 32]`).
pub fn mnist_cnn_with_classes(fc1_in: usize, classes: usize, seed: u32) -> Vec<u8> {
    safetensors(&[
        ("conv1.weight", vec![32, 1, 5, 5], values(800, seed)),
        ("conv2.weight", vec![64, 32, 5, 5], values(51_200, seed + 1)),
        (
            "fc1.weight",
            vec![32, fc1_in],
            values(32 * fc1_in, seed + 2),
        ),
        (
            "fc2.weight",
            vec![classes, 32],
            values(classes * 32, seed + 3),
        ),
    ])
}

/// A custom architecture: flatten → linear 784→16 (+bias) → relu → linear 16→10.
pub fn tiny_mlp_spec() -> Value {
    json!({
        "name": "tiny-mlp",
        "input": [1, 28, 28],
        "ops": [
            {"op": "flatten"},
            {"op": "linear", "weight": "fc1.weight", "bias": "fc1.bias"},
            {"op": "relu"},
            {"op": "linear", "weight": "fc2.weight"}
        ]
    })
}

/// A model of [`tiny_mlp_spec`].
pub fn tiny_mlp_model(seed: u32) -> Vec<u8> {
    safetensors(&[
        ("fc1.weight", vec![16, 784], values(16 * 784, seed)),
        ("fc1.bias", vec![16], values(16, seed + 1)),
        ("fc2.weight", vec![10, 16], values(160, seed + 2)),
    ])
}

/// A job request for two model ids with the default parameters.
pub fn job_request(a: &str, b: &str) -> Value {
    json!({"models": [a, b], "architecture": "mnist-cnn", "dataset": "mnist-test"})
}
