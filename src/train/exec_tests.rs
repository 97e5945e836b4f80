//! Whole-network checks of [`forward`] and [`backward`]: every parameter's gradient against
//! central finite differences of `Σ r ⊙ logits`, on small specs built from JSON.

use std::collections::BTreeMap;

use super::*;
use crate::engine::arch::ArchSpec;
use crate::train::gradcheck::{check_gradient, random_vec};
use crate::train::rng::SplitMix64;

fn shapes(v: &[(&str, &[usize])]) -> BTreeMap<String, Vec<usize>> {
    v.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
}

/// `Σ r ⊙ logits` of `n` samples `x` under `params`, batch norm in training mode.
fn weighted_logits(net: &Net, params: &[f32], x: &[f32], r: &[f32], n: usize) -> f64 {
    let mut ws = Workspace::new(net, n);
    ws.input_mut(n).copy_from_slice(x);
    forward(net, params, &mut ws, Mode::Train);
    ws.logits()
        .iter()
        .zip(r)
        .map(|(a, b)| f64::from(a * b))
        .sum()
}

/// The analytic gradient of [`weighted_logits`] with respect to every parameter.
fn analytic(net: &Net, params: &[f32], x: &[f32], r: &[f32], n: usize) -> Vec<f32> {
    let mut ws = Workspace::new(net, n);
    ws.input_mut(n).copy_from_slice(x);
    forward(net, params, &mut ws, Mode::Train);
    let mut grads = vec![0.0; params.len()];
    backward(net, params, &mut ws, r, &mut grads);
    grads
}

/// Check every parameter of `spec` (tensor shapes `t`) on `n` random samples.
fn check_net(spec: &str, t: &BTreeMap<String, Vec<usize>>, n: usize, seed: u64) {
    let spec: ArchSpec = serde_json::from_str(spec).unwrap();
    let net = Net::new(&spec, t).unwrap();
    let params = net.init(&mut SplitMix64::new(seed), 1.0);
    // Non-trivial batch-norm scales and shifts, so their gradients are checked off (1, 0).
    let params: Vec<f32> = params
        .iter()
        .zip(random_vec(params.len(), seed + 1))
        .map(|(p, q)| p + 0.3 * q)
        .collect();
    let x = random_vec(n * net.input_len(), seed + 2);
    let r = random_vec(n * net.output_len(), seed + 3);
    let grads = analytic(&net, &params, &x, &r, n);
    for (i, t) in net.tensors.iter().enumerate() {
        let g = net.slice(&grads, i);
        let trainable = !matches!(
            t.role,
            crate::train::graph::Role::RunningMean | crate::train::graph::Role::RunningVar
        );
        if !trainable {
            assert!(
                g.iter().all(|v| *v == 0.0),
                "{}: running statistics take no gradient",
                t.name
            );
            continue;
        }
        let own = net.slice(&params, i).to_vec();
        check_gradient(&own, g, |v| {
            let mut p = params.clone();
            net.slice_mut(&mut p, i).copy_from_slice(v);
            weighted_logits(&net, &p, &x, &r, n)
        });
    }
}

#[test]
fn a_smooth_chain_with_padding_strides_biases_and_average_pooling_has_exact_gradients() {
    // No ReLU or max pooling: the loss is smooth, so the check holds at any point.
    let spec = r#"{"name": "t", "input": [2, 6, 6], "ops": [
        {"op": "pad2d", "mode": "zero", "padding": 1},
        {"op": "conv2d", "weight": "c.weight", "bias": "c.bias", "stride": 2, "padding": 1},
        {"op": "avgpool2d", "kernel": 2, "stride": 1, "padding": 1},
        {"op": "pad2d", "mode": "replicate", "padding": 1},
        {"op": "flatten"},
        {"op": "linear", "weight": "fc.weight", "bias": "fc.bias"}]}"#;
    // [2,6,6] pad→ [2,8,8] conv 3×3 s2 p1→ [3,4,4] avg(2,1,1)→ [3,5,5] pad→ [3,7,7] = 147
    let t = shapes(&[
        ("c.weight", &[3, 2, 3, 3]),
        ("c.bias", &[3]),
        ("fc.weight", &[4, 147]),
        ("fc.bias", &[4]),
    ]);
    check_net(spec, &t, 3, 61);
}

/// The eval-mode logits of `net` against the engine's inference (an independent
/// implementation: NHWC, its own kernels) on random samples.
fn assert_matches_engine(spec: &ArchSpec, net: &Net, params: &[f32], n: usize, seed: u64) {
    let x = random_vec(n * net.input_len(), seed);
    let mut ws = Workspace::new(net, n);
    ws.input_mut(n).copy_from_slice(&x);
    forward(net, params, &mut ws, Mode::Eval);
    let engine = crate::engine::forward::Network::new(spec, &net.to_weight_set(params)).unwrap();
    let images = ndarray::Array2::from_shape_vec((n, net.input_len()), x).unwrap();
    let theirs = engine.logits(images.view());
    for (a, b) in ws.logits().iter().zip(theirs.iter()) {
        assert!(
            (a - b).abs() < 1e-4 * (1.0 + b.abs()),
            "{}: {a} vs engine {b}",
            spec.name
        );
    }
}

#[test]
fn the_mnist_cnn_forward_pass_matches_the_engines_inference() {
    let spec = crate::engine::arch::preset("mnist-cnn").unwrap();
    let t = shapes(&[
        ("conv1.weight", &[32, 1, 5, 5]),
        ("conv2.weight", &[64, 32, 5, 5]),
        ("fc1.weight", &[32, 3136]),
        ("fc2.weight", &[10, 32]),
    ]);
    let net = Net::new(&spec, &t).unwrap();
    let params = net.init(&mut SplitMix64::new(3), 1.4);
    assert_matches_engine(&spec, &net, &params, 5, 4);
}

#[test]
fn a_chain_with_relu_and_max_pooling_has_exact_gradients_away_from_the_kinks() {
    // [1,5,5] conv 3×3 → [2,3,3] relu, maxpool(2, stride 1) → [2,2,2] flatten, fc1 → 3 relu,
    // fc2 → 4.
    let spec = r#"{"name": "t", "input": [1, 5, 5], "ops": [
        {"op": "conv2d", "weight": "c.weight", "bias": "c.bias"},
        {"op": "relu"},
        {"op": "maxpool2d", "kernel": 2, "stride": 1},
        {"op": "flatten"},
        {"op": "linear", "weight": "fc1.weight", "bias": "fc1.bias"},
        {"op": "relu"},
        {"op": "linear", "weight": "fc2.weight"}]}"#;
    let t = shapes(&[
        ("c.weight", &[2, 1, 3, 3]),
        ("c.bias", &[2]),
        ("fc1.weight", &[3, 8]),
        ("fc1.bias", &[3]),
        ("fc2.weight", &[4, 3]),
    ]);
    let parsed: ArchSpec = serde_json::from_str(spec).unwrap();
    let net = Net::new(&parsed, &t).unwrap();
    let n = 2;
    // Which side of every kink the point is on: the sign of each ReLU input (nodes 1 and 5)
    // and each pooling window's argmax (node 3).
    let pattern = |params: &[f32], x: &[f32]| {
        let mut ws = Workspace::new(&net, n);
        ws.input_mut(n).copy_from_slice(x);
        forward(&net, params, &mut ws, Mode::Train);
        let mut p: Vec<u32> = [1, 5]
            .iter()
            .flat_map(|&i| ws.output(i).iter().map(|v| u32::from(*v > 0.0)))
            .collect();
        if let Aux::Argmax(idx) = &ws.aux[3] {
            p.extend_from_slice(&idx[..n * 8]);
        }
        p
    };
    // The check steps one parameter at a time by ±1e-2: take the first seed at which no such
    // step crosses a kink, so the loss is linear along every step the check takes.
    let away_from_kinks = |seed: u64| {
        let params = net.init(&mut SplitMix64::new(seed), 1.0);
        let x = random_vec(n * 25, seed + 2);
        let base = pattern(&params, &x);
        let active =
            base[..n * 18].iter().sum::<u32>() > 0 && base[n * 18..n * 21].iter().sum::<u32>() > 0;
        active
            && (0..params.len()).all(|i| {
                [-1e-2f32, 1e-2].iter().all(|d| {
                    let mut p = params.clone();
                    p[i] += d;
                    pattern(&p, &x) == base
                })
            })
    };
    let seed = (100..5000)
        .find(|&s| away_from_kinks(s))
        .expect("a seed away from the kinks");
    let params = net.init(&mut SplitMix64::new(seed), 1.0);
    let x = random_vec(n * 25, seed + 2);
    let r = random_vec(n * 4, seed + 3);
    let grads = analytic(&net, &params, &x, &r, n);
    check_gradient(&params, &grads, |p| weighted_logits(&net, p, &x, &r, n));
}

#[test]
fn a_residual_graph_with_batch_norm_add_and_global_pooling_has_exact_gradients() {
    // No ReLU or max pooling, so the loss is smooth. The input feeds two branches (a conv → BN
    // and a 1×1 stride-2 projection → BN) that an `add` joins; the block's output feeds the
    // next `add` twice over (directly and through a conv): gradients from several readers sum.
    let spec = r#"{"name": "t", "input": [2, 6, 6], "ops": [
        {"op": "conv2d", "weight": "a.weight", "stride": 2, "padding": 1},
        {"op": "batchnorm2d", "weight": "bn1.weight", "bias": "bn1.bias",
         "running_mean": "bn1.running_mean", "running_var": "bn1.running_var", "name": "left"},
        {"op": "conv2d", "weight": "p.weight", "stride": 2, "input": "input"},
        {"op": "batchnorm2d", "weight": "bn2.weight", "bias": "bn2.bias",
         "running_mean": "bn2.running_mean", "running_var": "bn2.running_var", "eps": 0.01,
         "name": "right"},
        {"op": "add", "inputs": ["left", "right"], "name": "block"},
        {"op": "conv2d", "weight": "c.weight", "padding": 1, "name": "side"},
        {"op": "add", "inputs": ["block", "side"]},
        {"op": "global_avgpool"},
        {"op": "linear", "weight": "fc.weight", "bias": "fc.bias"}]}"#;
    let mut t = shapes(&[
        ("a.weight", &[3, 2, 3, 3]),
        ("p.weight", &[3, 2, 1, 1]),
        ("c.weight", &[3, 3, 3, 3]),
        ("fc.weight", &[4, 3]),
        ("fc.bias", &[4]),
    ]);
    // (No bias right before a batch norm, and no batch norm after the branches: it would
    // cancel every per-channel constant before it, so their gradients would be 0.)
    for (bn, c) in [("bn1", 3), ("bn2", 3)] {
        for part in ["weight", "bias", "running_mean", "running_var"] {
            t.insert(format!("{bn}.{part}"), vec![c]);
        }
    }
    check_net(spec, &t, 4, 71);
}

#[test]
fn a_flat_batch_norm_between_linear_layers_has_exact_gradients() {
    let spec = r#"{"name": "t", "input": [1, 3, 4], "ops": [
        {"op": "flatten"},
        {"op": "linear", "weight": "fc1.weight"},
        {"op": "batchnorm1d", "weight": "bn.weight", "bias": "bn.bias",
         "running_mean": "bn.running_mean", "running_var": "bn.running_var"},
        {"op": "linear", "weight": "fc2.weight", "bias": "fc2.bias"}]}"#;
    let mut t = shapes(&[
        ("fc1.weight", &[5, 12]),
        ("fc2.weight", &[3, 5]),
        ("fc2.bias", &[3]),
    ]);
    for part in ["weight", "bias", "running_mean", "running_var"] {
        t.insert(format!("bn.{part}"), vec![5]);
    }
    check_net(spec, &t, 6, 81);
}

#[test]
fn the_batch_norm_and_residual_presets_forward_passes_match_the_engines_inference() {
    for name in ["cnn-bn", "resnet-mini"] {
        let spec = crate::engine::arch::preset(name).unwrap();
        let net = Net::new(&spec, &crate::engine::arch::preset_tensors(name).unwrap()).unwrap();
        // Running statistics and affine parameters away from their (0, 1) start, so that
        // inference-mode batch norm does something.
        let mut params = net.init(&mut SplitMix64::new(5), 1.4);
        let mut rng = SplitMix64::new(6);
        for (i, t) in net.tensors.iter().enumerate() {
            let shift = match t.role {
                crate::train::graph::Role::RunningVar => 0.5,
                crate::train::graph::Role::Weight { .. }
                | crate::train::graph::Role::Bias { .. } => continue,
                _ => -0.5,
            };
            for v in net.slice_mut(&mut params, i) {
                *v += shift + rng.next_f32();
            }
        }
        assert_matches_engine(&spec, &net, &params, 4, 7);
    }
}
