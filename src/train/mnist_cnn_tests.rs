//! The `mnist-cnn` network as [`Net`] builds it from the preset (the pygmtools example's
//! SimpleNet): logits and gradients against a direct `f64` re-implementation, the safetensors
//! it writes, and its init.
//!
//! ```text
//! [1,28,28] pad→ [1,30,30] conv1→ [32,26,26] relu, maxpool(2,2,1)→ [32,14,14]
//!           pad→ [32,16,16] conv2→ [64,12,12] relu, maxpool(2,2,1)→ [64,7,7] = 3136
//!           fc1→ 32 fc2→ 10 (no biases, no ReLU between fc1 and fc2)
//! ```

use std::collections::BTreeMap;

use safetensors::Dtype;

use crate::engine::arch::preset;
use crate::train::exec::{Mode, Workspace, backward, forward};
use crate::train::gradcheck::random_vec;
use crate::train::graph::Net;
use crate::train::loss::{CLASSES, softmax_cross_entropy};
use crate::train::rng::SplitMix64;

const INPUT: usize = 28 * 28;
const FLAT: usize = 64 * 7 * 7;
const HIDDEN: usize = 32;
/// The init gain of PyTorch's conv and linear layers, `1/√3`.
const TORCH_DEFAULT_GAIN: f32 = 0.577_350_26;

/// The tensors, in storage order: safetensors name and PyTorch shape.
const TENSORS: [(&str, &[usize]); 4] = [
    ("conv1.weight", &[32, 1, 5, 5]),
    ("conv2.weight", &[64, 32, 5, 5]),
    ("fc1.weight", &[HIDDEN, FLAT]),
    ("fc2.weight", &[CLASSES, HIDDEN]),
];

/// The mnist-cnn preset with [`TENSORS`].
pub(crate) fn mnist_cnn() -> Net {
    let shapes: BTreeMap<String, Vec<usize>> = TENSORS
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect();
    Net::new(&preset("mnist-cnn").unwrap(), &shapes).unwrap()
}

/// A direct f64 re-implementation of the network (nested loops, no im2col, no GEMM):
/// the logits of image `x` (28×28) under weights `w` (in [`TENSORS`] order).
fn reference_logits(w: &[f64], x: &[f64]) -> Vec<f64> {
    let (w1, rest) = w.split_at(32 * 25);
    let (w2, rest) = rest.split_at(64 * 32 * 25);
    let (f1, f2) = rest.split_at(HIDDEN * FLAT);
    // [c, h, w] → replicate-pad 1 → conv k×k → ReLU → max-pool(2, 2, pad 1)
    let block = |x: &[f64], c: usize, h: usize, wt: &[f64], o: usize| -> Vec<f64> {
        let at = |ch: usize, i: isize, j: isize| {
            let i = i.clamp(0, h as isize - 1) as usize;
            let j = j.clamp(0, h as isize - 1) as usize;
            x[(ch * h + i) * h + j]
        };
        let oh = h + 2 - 4;
        let mut y = vec![0.0; o * oh * oh];
        for oc in 0..o {
            for i in 0..oh {
                for j in 0..oh {
                    let mut acc = 0.0;
                    for ic in 0..c {
                        for di in 0..5 {
                            for dj in 0..5 {
                                let v = at(ic, (i + di) as isize - 1, (j + dj) as isize - 1);
                                acc += v * wt[((oc * c + ic) * 5 + di) * 5 + dj];
                            }
                        }
                    }
                    y[(oc * oh + i) * oh + j] = acc.max(0.0);
                }
            }
        }
        let ph = oh / 2 + 1;
        let mut p = vec![f64::NEG_INFINITY; o * ph * ph];
        for oc in 0..o {
            for i in 0..oh {
                for j in 0..oh {
                    // Input row i lies in the windows of output rows ⌈i/2⌉ (rows 2r − 1 and 2r).
                    let q = &mut p[(oc * ph + i.div_ceil(2)) * ph + j.div_ceil(2)];
                    *q = q.max(y[(oc * oh + i) * oh + j]);
                }
            }
        }
        p
    };
    let flat = block(&block(x, 1, 28, w1, 32), 32, 14, w2, 64);
    let hidden: Vec<f64> = (0..HIDDEN)
        .map(|u| (0..FLAT).map(|k| f1[u * FLAT + k] * flat[k]).sum())
        .collect();
    (0..CLASSES)
        .map(|c| (0..HIDDEN).map(|u| f2[c * HIDDEN + u] * hidden[u]).sum())
        .collect()
}

fn reference_loss(w: &[f64], x: &[f32], labels: &[u8]) -> f64 {
    let mut loss = 0.0;
    for (img, &y) in x.chunks_exact(INPUT).zip(labels) {
        let img: Vec<f64> = img.iter().map(|&v| f64::from(v)).collect();
        let z = reference_logits(w, &img);
        let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        loss += lse - z[usize::from(y)];
    }
    loss
}

#[test]
fn network_matches_a_direct_f64_reference_in_logits_and_gradients() {
    // Logits: the im2col/GEMM forward against reference_logits. Gradients: for each tensor
    // t, g·d against the f64 central difference (ε = 1e-8) of the reference loss along a
    // random direction d that moves only t's weights. ε must be tiny: at ε = 1e-6 one of the
    // 27,648 conv2 units of the 3 images switches (ReLU or max-pool) within ±ε and moves the
    // difference by 6 %; at 1e-8 the rounding noise is ~1e-7 relative. What is left is the
    // f32 rounding of the analytic gradient (measured: ≤ 3e-6 relative).
    let mut rng = SplitMix64::new(5);
    let net = mnist_cnn();
    let params = net.init(&mut rng, TORCH_DEFAULT_GAIN);
    let x: Vec<f32> = random_vec(3 * INPUT, 6).iter().map(|v| v.abs()).collect();
    let labels = [3u8, 7, 0];
    let mut ws = Workspace::new(&net, 3);
    ws.input_mut(3).copy_from_slice(&x);
    forward(&net, &params, &mut ws, Mode::Train);
    let w64: Vec<f64> = params.iter().map(|&v| f64::from(v)).collect();
    for (img, z) in x.chunks_exact(INPUT).zip(ws.logits().chunks_exact(CLASSES)) {
        let img: Vec<f64> = img.iter().map(|&v| f64::from(v)).collect();
        for (a, b) in z.iter().zip(reference_logits(&w64, &img)) {
            assert!(
                (f64::from(*a) - b).abs() < 1e-5,
                "logit {a} vs reference {b}"
            );
        }
    }
    let mut dz = vec![0.0; 3 * CLASSES];
    softmax_cross_entropy(ws.logits(), &labels, 1.0, &mut dz);
    let mut grads = vec![0.0; net.n_params];
    backward(&net, &params, &mut ws, &dz, &mut grads);

    let mut offset = 0;
    for (name, shape) in TENSORS {
        let len: usize = shape.iter().product();
        let dir: Vec<f64> = (0..len).map(|_| 2.0 * rng.next_f64() - 1.0).collect();
        let eps = 1e-8;
        let moved = |sign: f64| {
            let mut w = w64.clone();
            for (v, d) in w[offset..offset + len].iter_mut().zip(&dir) {
                *v += sign * eps * d;
            }
            w
        };
        let numeric = (reference_loss(&moved(1.0), &x, &labels)
            - reference_loss(&moved(-1.0), &x, &labels))
            / (2.0 * eps);
        let analytic: f64 = grads[offset..offset + len]
            .iter()
            .zip(&dir)
            .map(|(&g, d)| f64::from(g) * d)
            .sum();
        let rel = (numeric - analytic).abs() / numeric.abs();
        assert!(
            numeric.abs() > 1e-2,
            "{name}: derivative {numeric} too small to check"
        );
        assert!(
            rel < 1e-3,
            "{name}: numeric {numeric}, analytic {analytic}, rel {rel:.2e}"
        );
        offset += len;
    }
}

#[test]
fn written_safetensors_fit_the_mnist_cnn_preset_and_round_trip() {
    let net = mnist_cnn();
    let params = net.init(&mut SplitMix64::new(1), TORCH_DEFAULT_GAIN);
    let bytes = net.to_safetensors(&params, "test").unwrap();
    assert_eq!(bytes, net.to_safetensors(&params, "test").unwrap());
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shapes: BTreeMap<String, Vec<usize>> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect();
    preset("mnist-cnn").unwrap().check_shapes(&shapes).unwrap();
    for (i, (name, _)) in TENSORS.iter().enumerate() {
        let t = net.slice(&params, i);
        let view = st.tensor(name).unwrap();
        assert_eq!(view.dtype(), Dtype::F32);
        let back: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(back, t);
    }
    // 152,672 weights: 610,688 bytes of data plus the header.
    assert_eq!(params.len(), 152_672);
}

#[test]
fn torch_default_init_stays_within_one_over_root_fan_in() {
    let net = mnist_cnn();
    let params = net.init(&mut SplitMix64::new(2), TORCH_DEFAULT_GAIN);
    for (i, (name, shape)) in TENSORS.iter().enumerate() {
        let t = net.slice(&params, i);
        let bound = 1.0 / (shape[1..].iter().product::<usize>() as f32).sqrt();
        let max = t.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // The largest of n uniform draws is within a few 1/n of the bound.
        assert!(
            max <= bound * 1.000_001 && max > 0.9 * bound,
            "{name}: max {max}, bound {bound}"
        );
    }
}
