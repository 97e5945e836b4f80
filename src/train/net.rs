//! The `mnist-cnn` network (the pygmtools example's SimpleNet): its parameters, initialisation,
//! forward pass with the activations kept for the backward pass, softmax cross-entropy, and the
//! backward pass. Shapes per image:
//!
//! ```text
//! [1,28,28] pad→ [1,30,30] conv1→ [32,26,26] relu, maxpool(2,2,1)→ [32,14,14]
//!           pad→ [32,16,16] conv2→ [64,12,12] relu, maxpool(2,2,1)→ [64,7,7] = 3136
//!           fc1→ 32 fc2→ 10 (no biases, no ReLU between fc1 and fc2)
//! ```

use safetensors::{Dtype, tensor::TensorView};

use crate::train::conv::{ConvShape, conv_backward, conv_forward};
use crate::train::data::TrainError;
use crate::train::dense::{linear_backward, linear_forward};
use crate::train::pool::{
    PoolShape, maxpool_backward, maxpool_forward, relu_backward, relu_forward,
    replicate_pad_backward, replicate_pad_forward,
};
use crate::train::rng::SplitMix64;

/// Pixels per input image (`1·28·28`).
pub const INPUT: usize = 28 * 28;
/// Output classes.
pub const CLASSES: usize = 10;

const CONV1: ConvShape = ConvShape {
    c: 1,
    h: 30,
    w: 30,
    o: 32,
    k: 5,
};
const POOL1: PoolShape = PoolShape {
    h: 26,
    w: 26,
    kernel: 2,
    stride: 2,
    padding: 1,
};
const CONV2: ConvShape = ConvShape {
    c: 32,
    h: 16,
    w: 16,
    o: 64,
    k: 5,
};
const POOL2: PoolShape = PoolShape {
    h: 12,
    w: 12,
    kernel: 2,
    stride: 2,
    padding: 1,
};
const FLAT: usize = 64 * 7 * 7;
const HIDDEN: usize = 32;

/// The init gain of PyTorch's conv and linear layers, `1/√3` (see [`Params::kaiming_uniform`]).
pub const TORCH_DEFAULT_GAIN: f32 = 0.577_350_26;

/// The tensors, in storage order: safetensors name and PyTorch shape.
pub const TENSORS: [(&str, &[usize]); 4] = [
    ("conv1.weight", &[32, 1, 5, 5]),
    ("conv2.weight", &[64, 32, 5, 5]),
    ("fc1.weight", &[HIDDEN, FLAT]),
    ("fc2.weight", &[CLASSES, HIDDEN]),
];

/// All weights (or all gradients) of the network in one flat buffer, tensor after tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub data: Vec<f32>,
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Params {
    pub fn zeros() -> Self {
        let n = TENSORS.iter().map(|(_, s)| numel(s)).sum();
        Params { data: vec![0.0; n] }
    }

    /// Kaiming-uniform init: uniform in `±gain·√(3/fan_in)`, drawn tensor after tensor in
    /// storage order. `gain = 1/√3` is PyTorch's default for conv and linear layers
    /// (`kaiming_uniform_(a = √5)`, bound `1/√fan_in`); `gain = √2` is He init for ReLU
    /// (`kaiming_uniform_(nonlinearity = "relu")`, bound `√(6/fan_in)`).
    pub fn kaiming_uniform(rng: &mut SplitMix64, gain: f32) -> Self {
        let mut p = Params::zeros();
        for (t, (_, shape)) in p.tensors_mut().into_iter().zip(TENSORS) {
            let fan_in: usize = shape[1..].iter().product();
            let bound = gain * (3.0 / fan_in as f32).sqrt();
            for v in t {
                *v = (2.0 * rng.next_f32() - 1.0) * bound;
            }
        }
        p
    }

    /// The four tensors, in [`TENSORS`] order.
    pub fn tensors(&self) -> [&[f32]; 4] {
        let mut rest = self.data.as_slice();
        TENSORS.map(|(_, s)| {
            let (t, r) = rest.split_at(numel(s));
            rest = r;
            t
        })
    }

    pub fn tensors_mut(&mut self) -> [&mut [f32]; 4] {
        let mut rest = self.data.as_mut_slice();
        TENSORS.map(|(_, s)| {
            let (t, r) = std::mem::take(&mut rest).split_at_mut(numel(s));
            rest = r;
            t
        })
    }

    /// The weights as a safetensors file: F32 little-endian, PyTorch shapes, and one
    /// `__metadata__` entry `provenance` (one entry only: the crate writes metadata in hash-map
    /// order, so several entries would make the bytes vary from run to run).
    ///
    /// # Errors
    /// [`TrainError::Safetensors`] if serialisation fails.
    pub fn to_safetensors(&self, provenance: &str) -> Result<Vec<u8>, TrainError> {
        let tensors: Vec<_> = TENSORS
            .iter()
            .zip(self.tensors())
            .map(|((name, shape), t)| (*name, shape.to_vec(), t))
            .collect();
        write_safetensors(&tensors, provenance)
    }
}

/// Tensors `(name, shape, values)` as a safetensors file: F32 little-endian and one
/// `__metadata__` entry `provenance` (see [`Params::to_safetensors`]).
///
/// # Errors
/// [`TrainError::Safetensors`] if serialisation fails.
pub fn write_safetensors<S: AsRef<str>>(
    tensors: &[(S, Vec<usize>, &[f32])],
    provenance: &str,
) -> Result<Vec<u8>, TrainError> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, t)| t.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            Ok((
                name.as_ref(),
                TensorView::new(Dtype::F32, shape.clone(), b)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let meta = [("provenance".to_string(), provenance.to_string())].into();
    Ok(safetensors::tensor::serialize(views, Some(meta))?)
}

/// One chunk's activations, kept from the forward pass for the backward pass, plus scratch.
pub struct Workspace {
    n: usize,
    x: Vec<f32>,
    p1: Vec<f32>,
    cols1: Vec<f32>,
    a1: Vec<f32>,
    m1: Vec<f32>,
    idx1: Vec<u32>,
    p2: Vec<f32>,
    cols2: Vec<f32>,
    a2: Vec<f32>,
    m2: Vec<f32>,
    idx2: Vec<u32>,
    h: Vec<f32>,
    z: Vec<f32>,
    // gradients with respect to the activations above
    dh: Vec<f32>,
    dm2: Vec<f32>,
    da2: Vec<f32>,
    dp2: Vec<f32>,
    dcols2: Vec<f32>,
    dm1: Vec<f32>,
    da1: Vec<f32>,
}

impl Workspace {
    /// Buffers for up to `n` images.
    pub fn new(n: usize) -> Self {
        Workspace {
            n,
            x: vec![0.0; n * INPUT],
            p1: vec![0.0; n * CONV1.in_len()],
            cols1: vec![0.0; n * CONV1.positions() * CONV1.patch()],
            a1: vec![0.0; n * CONV1.out_len()],
            m1: vec![0.0; n * 32 * POOL1.oh() * POOL1.ow()],
            idx1: vec![0; n * 32 * POOL1.oh() * POOL1.ow()],
            p2: vec![0.0; n * CONV2.in_len()],
            cols2: vec![0.0; n * CONV2.positions() * CONV2.patch()],
            a2: vec![0.0; n * CONV2.out_len()],
            m2: vec![0.0; n * FLAT],
            idx2: vec![0; n * FLAT],
            h: vec![0.0; n * HIDDEN],
            z: vec![0.0; n * CLASSES],
            dh: vec![0.0; n * HIDDEN],
            dm2: vec![0.0; n * FLAT],
            da2: vec![0.0; n * CONV2.out_len()],
            dp2: vec![0.0; n * CONV2.in_len()],
            dcols2: vec![0.0; CONV2.positions() * CONV2.patch()],
            dm1: vec![0.0; n * 32 * POOL1.oh() * POOL1.ow()],
            da1: vec![0.0; n * CONV1.out_len()],
        }
    }

    /// The input buffer for `n` images (`n · 784` pixels), to be filled before [`forward`].
    ///
    /// # Panics
    /// When `n` exceeds the workspace's capacity.
    pub fn input_mut(&mut self, n: usize) -> &mut [f32] {
        assert!(
            n <= self.x.len() / INPUT,
            "workspace holds fewer than {n} images"
        );
        self.n = n;
        &mut self.x[..n * INPUT]
    }

    /// The logits of the last [`forward`], `(n, 10)`.
    pub fn logits(&self) -> &[f32] {
        &self.z[..self.n * CLASSES]
    }
}

/// Forward pass over the images in `ws`'s input; the logits end up in [`Workspace::logits`].
pub fn forward(params: &Params, ws: &mut Workspace) {
    let n = ws.n;
    let [w1, w2, f1, f2] = params.tensors();
    let m1_len = 32 * POOL1.oh() * POOL1.ow();
    replicate_pad_forward(
        &ws.x[..n * INPUT],
        28,
        28,
        1,
        &mut ws.p1[..n * CONV1.in_len()],
    );
    conv_forward(
        &ws.p1[..n * CONV1.in_len()],
        w1,
        &CONV1,
        &mut ws.cols1[..n * CONV1.positions() * CONV1.patch()],
        &mut ws.a1[..n * CONV1.out_len()],
    );
    relu_forward(&mut ws.a1[..n * CONV1.out_len()]);
    maxpool_forward(
        &ws.a1[..n * CONV1.out_len()],
        &POOL1,
        &mut ws.m1[..n * m1_len],
        &mut ws.idx1[..n * m1_len],
    );
    replicate_pad_forward(
        &ws.m1[..n * m1_len],
        14,
        14,
        1,
        &mut ws.p2[..n * CONV2.in_len()],
    );
    conv_forward(
        &ws.p2[..n * CONV2.in_len()],
        w2,
        &CONV2,
        &mut ws.cols2[..n * CONV2.positions() * CONV2.patch()],
        &mut ws.a2[..n * CONV2.out_len()],
    );
    relu_forward(&mut ws.a2[..n * CONV2.out_len()]);
    maxpool_forward(
        &ws.a2[..n * CONV2.out_len()],
        &POOL2,
        &mut ws.m2[..n * FLAT],
        &mut ws.idx2[..n * FLAT],
    );
    linear_forward(
        &ws.m2[..n * FLAT],
        f1,
        FLAT,
        HIDDEN,
        &mut ws.h[..n * HIDDEN],
    );
    linear_forward(
        &ws.h[..n * HIDDEN],
        f2,
        HIDDEN,
        CLASSES,
        &mut ws.z[..n * CLASSES],
    );
}

/// Softmax cross-entropy of `logits` `(n, 10)` against `labels`. Returns the summed loss
/// (natural log), the number of correct arg-max predictions, and writes
/// `dlogits = (softmax − onehot) · scale`.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[u8],
    scale: f32,
    dlogits: &mut [f32],
) -> (f64, usize) {
    let mut loss = 0.0f64;
    let mut correct = 0;
    for ((z, &y), dz) in logits
        .chunks_exact(CLASSES)
        .zip(labels)
        .zip(dlogits.chunks_exact_mut(CLASSES))
    {
        let y = usize::from(y);
        let (arg, max) = z
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, v)| if v > b.1 { (i, v) } else { b },
            );
        correct += usize::from(arg == y);
        let mut sum = 0.0f32;
        for (d, &v) in dz.iter_mut().zip(z) {
            *d = (v - max).exp();
            sum += *d;
        }
        loss += f64::from(sum.ln() - (z[y] - max));
        for d in dz.iter_mut() {
            *d = *d / sum * scale;
        }
        dz[y] -= scale;
    }
    (loss, correct)
}

/// Backward pass from `dlogits` `(n, 10)`, after [`forward`] on the same workspace;
/// adds the weight gradients to `grads`.
pub fn backward(params: &Params, ws: &mut Workspace, dlogits: &[f32], grads: &mut Params) {
    let n = ws.n;
    let [w1, w2, f1, f2] = params.tensors();
    let [g1, g2, gf1, gf2] = grads.tensors_mut();
    let m1_len = 32 * POOL1.oh() * POOL1.ow();
    let (a1, a2) = (&ws.a1[..n * CONV1.out_len()], &ws.a2[..n * CONV2.out_len()]);
    let (da1, da2) = (&mut ws.da1[..a1.len()], &mut ws.da2[..a2.len()]);
    let (dm1, dm2) = (&mut ws.dm1[..n * m1_len], &mut ws.dm2[..n * FLAT]);
    let dh = &mut ws.dh[..n * HIDDEN];
    let dp2 = &mut ws.dp2[..n * CONV2.in_len()];

    linear_backward(
        &ws.h[..n * HIDDEN],
        f2,
        dlogits,
        HIDDEN,
        CLASSES,
        gf2,
        Some(&mut *dh),
    );
    linear_backward(
        &ws.m2[..n * FLAT],
        f1,
        dh,
        FLAT,
        HIDDEN,
        gf1,
        Some(&mut *dm2),
    );
    maxpool_backward(dm2, &ws.idx2[..n * FLAT], da2);
    relu_backward(a2, da2);
    conv_backward(
        &ws.cols2[..n * CONV2.positions() * CONV2.patch()],
        w2,
        da2,
        &CONV2,
        g2,
        Some(&mut *dp2),
        &mut ws.dcols2,
    );
    replicate_pad_backward(dp2, 14, 14, 1, dm1);
    maxpool_backward(dm1, &ws.idx1[..n * m1_len], da1);
    relu_backward(a1, da1);
    // The input needs no gradient.
    conv_backward(
        &ws.cols1[..n * CONV1.positions() * CONV1.patch()],
        w1,
        da1,
        &CONV1,
        g1,
        None,
        &mut [],
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::arch::preset;
    use crate::train::gradcheck::random_vec;

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
        let params = Params::kaiming_uniform(&mut rng, TORCH_DEFAULT_GAIN);
        let x: Vec<f32> = random_vec(3 * INPUT, 6).iter().map(|v| v.abs()).collect();
        let labels = [3u8, 7, 0];
        let mut ws = Workspace::new(3);
        ws.input_mut(3).copy_from_slice(&x);
        forward(&params, &mut ws);
        let w64: Vec<f64> = params.data.iter().map(|&v| f64::from(v)).collect();
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
        let mut grads = Params::zeros();
        backward(&params, &mut ws, &dz, &mut grads);

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
            let analytic: f64 = grads.data[offset..offset + len]
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
    fn softmax_cross_entropy_of_uniform_logits_is_ln_10() {
        let z = [0.5f32; 20];
        let mut dz = [0.0; 20];
        let (loss, _) = softmax_cross_entropy(&z, &[2, 9], 0.5, &mut dz);
        assert!((loss - 2.0 * 10f64.ln()).abs() < 1e-5, "{loss}");
        // (0.1 − onehot) · 0.5
        assert!((dz[2] - -0.45).abs() < 1e-6 && (dz[3] - 0.05).abs() < 1e-6);
    }

    #[test]
    fn written_safetensors_fit_the_mnist_cnn_preset_and_round_trip() {
        let params = Params::kaiming_uniform(&mut SplitMix64::new(1), TORCH_DEFAULT_GAIN);
        let bytes = params.to_safetensors("test").unwrap();
        assert_eq!(bytes, params.to_safetensors("test").unwrap());
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let shapes: BTreeMap<String, Vec<usize>> = st
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect();
        preset("mnist-cnn").unwrap().check_shapes(&shapes).unwrap();
        for ((name, _), t) in TENSORS.iter().zip(params.tensors()) {
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
        assert_eq!(params.data.len(), 152_672);
    }

    #[test]
    fn torch_default_init_stays_within_one_over_root_fan_in() {
        let params = Params::kaiming_uniform(&mut SplitMix64::new(2), TORCH_DEFAULT_GAIN);
        for (t, (name, shape)) in params.tensors().iter().zip(TENSORS) {
            let bound = 1.0 / (shape[1..].iter().product::<usize>() as f32).sqrt();
            let max = t.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            // The largest of n uniform draws is within a few 1/n of the bound.
            assert!(
                max <= bound * 1.000_001 && max > 0.9 * bound,
                "{name}: max {max}, bound {bound}"
            );
        }
    }
}
