//! A multi-layer perceptron with biases (`784 → 128 → 128 → 10` for the demo pair): ReLU
//! between the linear layers, none after the last, trained with mini-batch SGD with momentum.
//!
//! Tensors are named `fc1.weight`, `fc1.bias`, `fc2.*`, … in PyTorch layouts (`[out, in]`), the
//! names the `mlp` preset reads. The layers reuse [`dense`](crate::train::dense) and
//! [`pool`](crate::train::pool)'s ReLU, the safetensors writer [`net`](crate::train::net);
//! [`mlp_trainer`](crate::train::mlp_trainer) trains it.

use crate::train::data::TrainError;
use crate::train::dense::{linear_backward, linear_forward};
use crate::train::net::write_safetensors;
use crate::train::pool::{relu_backward, relu_forward};
use crate::train::rng::SplitMix64;

/// The demo pair's layer widths: input, hidden…, output.
pub const DEMO_SIZES: [usize; 4] = [784, 128, 128, 10];

/// All weights and biases (or their gradients) in one flat buffer: per layer `l`, the weight
/// `[sizes[l + 1], sizes[l]]` then the bias `[sizes[l + 1]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub sizes: Vec<usize>,
    pub data: Vec<f32>,
}

impl Mlp {
    /// All zeros. `sizes` needs at least an input and an output width.
    ///
    /// # Panics
    /// When `sizes` has fewer than two entries.
    pub fn zeros(sizes: &[usize]) -> Self {
        assert!(
            sizes.len() >= 2,
            "an MLP needs an input and an output width"
        );
        let n = sizes.windows(2).map(|w| w[1] * w[0] + w[1]).sum();
        Mlp {
            sizes: sizes.to_vec(),
            data: vec![0.0; n],
        }
    }

    /// PyTorch-style init: weights uniform in `±gain·√(3/fan_in)` (see
    /// [`Params::kaiming_uniform`](crate::train::Params::kaiming_uniform)), biases uniform in
    /// `±1/√fan_in` (`nn.Linear`'s default), drawn layer after layer, weight before bias.
    pub fn kaiming_uniform(sizes: &[usize], rng: &mut SplitMix64, gain: f32) -> Self {
        let mut m = Mlp::zeros(sizes);
        for (l, (w, b)) in m.layers_mut().into_iter().enumerate() {
            let fan_in = sizes[l] as f32;
            let bound = gain * (3.0 / fan_in).sqrt();
            for v in w {
                *v = (2.0 * rng.next_f32() - 1.0) * bound;
            }
            for v in b {
                *v = (2.0 * rng.next_f32() - 1.0) / fan_in.sqrt();
            }
        }
        m
    }

    /// `(weight, bias)` per layer.
    pub fn layers(&self) -> Vec<(&[f32], &[f32])> {
        let mut rest = self.data.as_slice();
        self.sizes
            .windows(2)
            .map(|s| {
                let (w, r) = rest.split_at(s[1] * s[0]);
                let (b, r) = r.split_at(s[1]);
                rest = r;
                (w, b)
            })
            .collect()
    }

    pub fn layers_mut(&mut self) -> Vec<(&mut [f32], &mut [f32])> {
        let mut rest = self.data.as_mut_slice();
        self.sizes
            .windows(2)
            .map(|s| {
                let (w, r) = std::mem::take(&mut rest).split_at_mut(s[1] * s[0]);
                let (b, r) = r.split_at_mut(s[1]);
                rest = r;
                (w, b)
            })
            .collect()
    }

    /// The model as safetensors (F32, `fc{l}.weight` `[out, in]` and `fc{l}.bias` `[out]`,
    /// 1-based) with one `provenance` metadata entry.
    ///
    /// # Errors
    /// [`TrainError::Safetensors`] if serialisation fails.
    pub fn to_safetensors(&self, provenance: &str) -> Result<Vec<u8>, TrainError> {
        let mut tensors = Vec::new();
        for (l, ((w, b), s)) in self
            .layers()
            .into_iter()
            .zip(self.sizes.windows(2))
            .enumerate()
        {
            tensors.push((format!("fc{}.weight", l + 1), vec![s[1], s[0]], w));
            tensors.push((format!("fc{}.bias", l + 1), vec![s[1]], b));
        }
        write_safetensors(&tensors, provenance)
    }
}

/// Activations of one batch, kept from the forward pass for the backward pass.
pub struct MlpWorkspace {
    sizes: Vec<usize>,
    cap: usize,
    n: usize,
    /// `acts[0]` is the input; `acts[l + 1]` the output of layer `l` (ReLU'd except the last).
    acts: Vec<Vec<f32>>,
    /// Gradients with respect to `acts[1..]`.
    deltas: Vec<Vec<f32>>,
}

impl MlpWorkspace {
    /// Buffers for up to `cap` samples.
    pub fn new(sizes: &[usize], cap: usize) -> Self {
        MlpWorkspace {
            sizes: sizes.to_vec(),
            cap,
            n: cap,
            acts: sizes.iter().map(|&s| vec![0.0; cap * s]).collect(),
            deltas: sizes[1..].iter().map(|&s| vec![0.0; cap * s]).collect(),
        }
    }

    /// The input buffer for `n` samples, to be filled before [`mlp_forward`].
    ///
    /// # Panics
    /// When `n` exceeds the capacity.
    pub fn input_mut(&mut self, n: usize) -> &mut [f32] {
        assert!(n <= self.cap, "workspace holds fewer than {n} samples");
        self.n = n;
        &mut self.acts[0][..n * self.sizes[0]]
    }

    /// The outputs of the last [`mlp_forward`], `(n, sizes.last())`.
    pub fn logits(&self) -> &[f32] {
        let last = self.sizes.len() - 1;
        &self.acts[last][..self.n * self.sizes[last]]
    }
}

/// Forward pass over the samples in `ws`'s input.
pub fn mlp_forward(m: &Mlp, ws: &mut MlpWorkspace) {
    let n = ws.n;
    let layers = m.layers();
    let last = layers.len() - 1;
    for (l, (w, b)) in layers.into_iter().enumerate() {
        let (inp, out) = (m.sizes[l], m.sizes[l + 1]);
        let (before, after) = ws.acts.split_at_mut(l + 1);
        let y = &mut after[0][..n * out];
        linear_forward(&before[l][..n * inp], w, inp, out, y);
        for row in y.chunks_exact_mut(out) {
            row.iter_mut().zip(b).for_each(|(v, c)| *v += c);
        }
        if l < last {
            relu_forward(y);
        }
    }
}

/// Backward pass from `dlogits` after [`mlp_forward`] on the same workspace; adds the weight
/// and bias gradients to `grads` (the bias gradient is the sum of the output gradient over the
/// batch).
pub fn mlp_backward(m: &Mlp, ws: &mut MlpWorkspace, dlogits: &[f32], grads: &mut Mlp) {
    let n = ws.n;
    let layers = m.layers();
    let last = layers.len() - 1;
    ws.deltas[last][..dlogits.len()].copy_from_slice(dlogits);
    for (l, ((w, _), (gw, gb))) in layers.into_iter().zip(grads.layers_mut()).enumerate().rev() {
        let (inp, out) = (m.sizes[l], m.sizes[l + 1]);
        let (below, here) = ws.deltas.split_at_mut(l);
        let dy = &here[0][..n * out];
        for row in dy.chunks_exact(out) {
            gb.iter_mut().zip(row).for_each(|(g, d)| *g += d);
        }
        // The input needs no gradient.
        let dx = below.last_mut().map(|d| &mut d[..n * inp]);
        let has_dx = dx.is_some();
        linear_backward(&ws.acts[l][..n * inp], w, dy, inp, out, gw, dx);
        if has_dx {
            relu_backward(&ws.acts[l][..n * inp], &mut below[l - 1][..n * inp]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{check_gradient, random_vec};
    use crate::train::net::CLASSES;

    const SIZES: [usize; 4] = [6, 5, 4, CLASSES];

    /// A direct re-implementation of the forward pass (nested loops): the logits, the smallest
    /// |pre-activation| of any hidden unit, and the fewest active units of a hidden layer.
    fn reference(m: &Mlp, x: &[f32]) -> (Vec<f32>, f32, usize) {
        let (mut out, mut margin, mut active) = (Vec::new(), f32::INFINITY, usize::MAX);
        for sample in x.chunks_exact(m.sizes[0]) {
            let mut a = sample.to_vec();
            let layers = m.layers();
            for (l, (w, b)) in layers.iter().enumerate() {
                let inp = a.len();
                a = b
                    .iter()
                    .enumerate()
                    .map(|(o, &bo)| bo + (0..inp).map(|i| w[o * inp + i] * a[i]).sum::<f32>())
                    .collect();
                if l + 1 < layers.len() {
                    margin = a.iter().fold(margin, |mm, v| mm.min(v.abs()));
                    active = active.min(a.iter().filter(|v| **v > 0.0).count());
                    a.iter_mut().for_each(|v| *v = v.max(0.0));
                }
            }
            out.extend(a);
        }
        (out, margin, active)
    }

    #[test]
    fn mlp_gradients_including_the_biases_match_finite_differences() {
        let n = 3;
        let x = random_vec(n * SIZES[0], 12);
        // The check steps one parameter by ±1e-2; inputs and weights are below 1 in magnitude,
        // so no hidden pre-activation moves by more than 1e-2. Take the first seed whose hidden
        // units all lie farther than 0.03 from ReLU's kink (the loss is linear in every step)
        // and whose hidden layers all have active units (no gradient is trivially zero).
        let params = (11..200)
            .map(|seed| Mlp::kaiming_uniform(&SIZES, &mut SplitMix64::new(seed), 1.0))
            .find(|m| {
                let (_, margin, active) = reference(m, &x);
                margin > 0.03 && active > 0
            })
            .expect("a seed without near-kink units");
        let r = random_vec(n * CLASSES, 13); // loss = Σ r ⊙ logits
        let loss = |p: &[f32]| {
            let m = Mlp {
                sizes: SIZES.to_vec(),
                data: p.to_vec(),
            };
            let mut ws = MlpWorkspace::new(&SIZES, n);
            ws.input_mut(n).copy_from_slice(&x);
            mlp_forward(&m, &mut ws);
            ws.logits()
                .iter()
                .zip(&r)
                .map(|(a, b)| f64::from(a * b))
                .sum::<f64>()
        };
        let mut ws = MlpWorkspace::new(&SIZES, n);
        ws.input_mut(n).copy_from_slice(&x);
        mlp_forward(&params, &mut ws);
        for (a, b) in ws.logits().iter().zip(reference(&params, &x).0) {
            assert!((a - b).abs() < 1e-5, "logit {a} vs reference {b}");
        }
        let mut grads = Mlp::zeros(&SIZES);
        mlp_backward(&params, &mut ws, &r, &mut grads);
        check_gradient(&params.data, &grads.data, loss);
        // The check covers the biases: every layer's bias gradient is non-zero.
        for (l, (_, gb)) in grads.layers().into_iter().enumerate() {
            assert!(
                gb.iter().any(|g| *g != 0.0),
                "layer {l}: bias gradient is zero"
            );
        }
    }

    #[test]
    fn the_safetensors_file_names_every_layer_in_pytorch_layout_for_the_mlp_preset() {
        let m = Mlp::kaiming_uniform(&SIZES, &mut SplitMix64::new(1), 1.0);
        let bytes = m.to_safetensors("test").unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let shapes: std::collections::BTreeMap<String, Vec<usize>> = st
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, v.shape().to_vec()))
            .collect();
        assert_eq!(shapes["fc1.weight"], [5, 6]);
        assert_eq!(shapes["fc1.bias"], [5]);
        assert_eq!(shapes["fc3.weight"], [CLASSES, 4]);
        assert_eq!(shapes.len(), 6);
        let bias = st.tensor("fc2.bias").unwrap();
        let first = f32::from_le_bytes(bias.data()[..4].try_into().unwrap());
        assert_eq!(first, m.layers()[1].1[0]);
        let spec = crate::engine::arch::preset_for("mlp", &shapes).unwrap();
        assert!(format!("{spec:?}").contains("fc3"), "{spec:?}");
    }
}
