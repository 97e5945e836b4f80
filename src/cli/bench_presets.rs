//! `gmfuse bench`'s evaluation speed per preset: one 10k-image evaluation of each of
//! `mnist-cnn`, `mlp` (784-128-128-10 with biases), `cnn-bn` and `resnet-mini`, with random
//! weights (speed does not depend on the values; batchnorm statistics are kept positive).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::engine::arch::{Op, preset_for, preset_tensors};
use crate::engine::eval::{Dataset, evaluate};
use crate::engine::forward::Network;
use crate::engine::weights::{DType, Tensor, WeightSet};

/// The benchmarked presets.
pub const PRESETS: [&str; 4] = ["mnist-cnn", "mlp", "cnn-bn", "resnet-mini"];

fn mlp_shapes() -> BTreeMap<String, Vec<usize>> {
    [
        ("fc1.weight", vec![128, 784]),
        ("fc1.bias", vec![128]),
        ("fc2.weight", vec![128, 128]),
        ("fc2.bias", vec![128]),
        ("fc3.weight", vec![10, 128]),
        ("fc3.bias", vec![10]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Uniform weights in ±1/√fan-in from an LCG seeded with `seed`; a batchnorm's running
/// variance and scale in [0.5, 1.5].
fn random_model(shapes: &BTreeMap<String, Vec<usize>>, positive: &[&str], seed: u64) -> WeightSet {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    };
    let mut w = WeightSet::default();
    for (name, shape) in shapes {
        let fan_in = shape[1..].iter().product::<usize>().max(1) as f64;
        let positive = positive.contains(&name.as_str());
        let data = ndarray::ArrayD::from_shape_simple_fn(shape.clone(), || {
            if positive {
                1.0 + next() / 2.0
            } else {
                next() / fan_in.sqrt()
            }
        });
        w.tensors.insert(
            name.clone(),
            Tensor {
                dtype: DType::F32,
                data,
            },
        );
    }
    w
}

/// Median seconds of one evaluation of `data` by each preset, with its images/s.
///
/// # Errors
/// None in practice: the presets fit their own tensors.
pub fn time_presets(data: &Dataset, repeat: usize) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let mut out = Vec::new();
    for name in PRESETS {
        let shapes = match name {
            "mlp" => mlp_shapes(),
            _ => preset_tensors(name)?,
        };
        let spec = preset_for(name, &shapes)?;
        let positive: Vec<&str> = spec
            .op_list()
            .filter_map(|op| match op {
                Op::Batchnorm2d {
                    weight,
                    running_var,
                    ..
                }
                | Op::Batchnorm1d {
                    weight,
                    running_var,
                    ..
                } => Some([weight.as_str(), running_var.as_str()]),
                _ => None,
            })
            .flatten()
            .collect();
        let net = Network::new(&spec, &random_model(&shapes, &positive, 1))?;
        let mut times = Vec::new();
        for _ in 0..repeat {
            let t = Instant::now();
            evaluate(&net, data, &|| false)?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        out.push((name, times[times.len() / 2]));
    }
    Ok(out)
}
