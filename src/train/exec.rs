//! Forward and backward passes of a [`Net`] over a chunk of samples, with the activations kept
//! per node for the backward pass. Every op calls the layer kernels of
//! [`conv`](crate::train::conv), [`dense`](crate::train::dense), [`pool`](crate::train::pool)
//! and [`norm`](crate::train::norm).
//!
//! A node read by several others (a residual block's input) gets the sum of their gradients,
//! added in reader order.

use crate::engine::arch::PadMode;
use crate::train::conv::{conv_backward, conv_forward};
use crate::train::dense::{linear_backward, linear_forward};
use crate::train::graph::{Layer, Net};
use crate::train::norm::{
    BnCache, add_forward, bn_backward, bn_forward_eval, bn_forward_train, global_avgpool_backward,
    global_avgpool_forward,
};
use crate::train::pool::{
    avgpool_backward, avgpool_forward, maxpool_backward, maxpool_forward, relu_backward,
    replicate_pad_backward, replicate_pad_forward, zero_pad_backward, zero_pad_forward,
};

/// Batch norm in training mode (batch statistics) or inference mode (running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// Per-node state kept from the forward pass.
#[derive(Clone, Debug, Default)]
enum Aux {
    #[default]
    None,
    Cols(Vec<f32>),
    Argmax(Vec<u32>),
    Bn(BnCache),
}

/// One chunk's activations and gradients, for up to `cap` samples.
pub struct Workspace {
    cap: usize,
    n: usize,
    outs: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    filled: Vec<bool>,
    aux: Vec<Aux>,
    /// One image's im2col gradient, and one node's gradient before it is added to another's.
    scratch: Vec<f32>,
    tmp: Vec<f32>,
}

impl Workspace {
    pub fn new(net: &Net, cap: usize) -> Self {
        let aux = net
            .nodes
            .iter()
            .map(|node| match &node.layer {
                Layer::Conv { shape, .. } => {
                    Aux::Cols(vec![0.0; cap * shape.positions() * shape.patch()])
                }
                Layer::MaxPool(_) => Aux::Argmax(vec![0; cap * node.len]),
                Layer::BatchNorm { .. } => Aux::Bn(BnCache::default()),
                _ => Aux::None,
            })
            .collect();
        let scratch = net
            .nodes
            .iter()
            .map(|node| match &node.layer {
                Layer::Conv { shape, .. } => shape.positions() * shape.patch(),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let widest = net.nodes.iter().map(|n| n.len).max().unwrap_or(0);
        Workspace {
            cap,
            n: cap,
            outs: net.nodes.iter().map(|n| vec![0.0; cap * n.len]).collect(),
            grads: net.nodes.iter().map(|n| vec![0.0; cap * n.len]).collect(),
            filled: vec![false; net.nodes.len()],
            aux,
            scratch: vec![0.0; scratch],
            tmp: vec![0.0; cap * widest],
        }
    }

    /// The input buffer for `n` samples, to be filled before [`forward`].
    ///
    /// # Panics
    /// When `n` exceeds the capacity.
    pub fn input_mut(&mut self, n: usize) -> &mut [f32] {
        assert!(n <= self.cap, "workspace holds fewer than {n} samples");
        self.n = n;
        let len = self.outs[0].len() / self.cap;
        &mut self.outs[0][..n * len]
    }

    /// The logits of the last [`forward`], `(n, classes)`.
    pub fn logits(&self) -> &[f32] {
        let last = self.outs.last().expect("the input node");
        &last[..self.n * last.len() / self.cap]
    }

    /// The activations of node `i` after the last [`forward`], `(n, len)`.
    pub fn output(&self, i: usize) -> &[f32] {
        &self.outs[i][..self.n * self.outs[i].len() / self.cap]
    }

    /// The batch statistics of every batch norm of the last training-mode [`forward`].
    pub fn bn_caches(&self) -> impl Iterator<Item = (usize, &BnCache)> {
        self.aux.iter().enumerate().filter_map(|(i, a)| match a {
            Aux::Bn(c) => Some((i, c)),
            _ => None,
        })
    }
}

/// Forward pass over the samples in `ws`'s input with parameters `params`.
pub fn forward(net: &Net, params: &[f32], ws: &mut Workspace, mode: Mode) {
    let n = ws.n;
    for (i, node) in net.nodes.iter().enumerate().skip(1) {
        let (before, rest) = ws.outs.split_at_mut(i);
        let y = &mut rest[0][..n * node.len];
        let x = |k: usize| {
            let j = node.inputs[k];
            &before[j][..n * net.nodes[j].len]
        };
        let p = |t: usize| net.slice(params, t);
        match (&node.layer, &mut ws.aux[i]) {
            (Layer::Input, _) => unreachable!("node 0 is the only input"),
            (
                Layer::Pad {
                    mode,
                    padding,
                    h,
                    w,
                },
                _,
            ) => match mode {
                PadMode::Replicate => replicate_pad_forward(x(0), *h, *w, *padding, y),
                PadMode::Zero => zero_pad_forward(x(0), *h, *w, *padding, y),
            },
            (
                Layer::Conv {
                    weight,
                    bias,
                    shape,
                },
                Aux::Cols(cols),
            ) => {
                let cols = &mut cols[..n * shape.positions() * shape.patch()];
                conv_forward(x(0), p(*weight), shape, cols, y);
                if let Some(b) = bias {
                    add_bias(y, p(*b), shape.positions());
                }
            }
            (
                Layer::Linear {
                    weight,
                    bias,
                    inp,
                    out,
                },
                _,
            ) => {
                linear_forward(x(0), p(*weight), *inp, *out, y);
                if let Some(b) = bias {
                    add_bias(y, p(*b), 1);
                }
            }
            (Layer::Relu, _) => {
                for (o, &v) in y.iter_mut().zip(x(0)) {
                    *o = v.max(0.0);
                }
            }
            (Layer::MaxPool(s), Aux::Argmax(idx)) => {
                maxpool_forward(x(0), s, y, &mut idx[..n * node.len]);
            }
            (Layer::AvgPool(s), _) => avgpool_forward(x(0), s, y),
            (Layer::Flatten, _) => y.copy_from_slice(x(0)),
            (
                Layer::BatchNorm {
                    scale,
                    shift,
                    mean,
                    var,
                    shape,
                },
                Aux::Bn(cache),
            ) => match mode {
                Mode::Train => bn_forward_train(x(0), p(*scale), p(*shift), shape, cache, y),
                Mode::Eval => {
                    bn_forward_eval(x(0), p(*scale), p(*shift), p(*mean), p(*var), shape, y);
                }
            },
            (Layer::Add, _) => add_forward(x(0), x(1), y),
            (Layer::GlobalAvgPool { spatial }, _) => global_avgpool_forward(x(0), *spatial, y),
            (layer, _) => unreachable!("workspace built for another net: {layer:?}"),
        }
    }
}

/// `y[k, c, s] += b[c]` over `[n, C, spatial]`.
fn add_bias(y: &mut [f32], b: &[f32], spatial: usize) {
    for (k, plane) in y.chunks_exact_mut(spatial).enumerate() {
        let v = b[k % b.len()];
        plane.iter_mut().for_each(|o| *o += v);
    }
}

/// `gb[c] += Σ dy[k, c, s]` over `[n, C, spatial]`.
fn bias_grad(dy: &[f32], gb: &mut [f32], spatial: usize) {
    let channels = gb.len();
    for (k, plane) in dy.chunks_exact(spatial).enumerate() {
        gb[k % channels] += plane.iter().sum::<f32>();
    }
}

/// Backward pass from `dlogits` after a training-mode [`forward`] on the same workspace; adds
/// every parameter's gradient to `grads` (same layout as the parameters).
pub fn backward(net: &Net, params: &[f32], ws: &mut Workspace, dlogits: &[f32], grads: &mut [f32]) {
    let n = ws.n;
    let last = net.nodes.len() - 1;
    ws.filled.fill(false);
    ws.grads[last][..dlogits.len()].copy_from_slice(dlogits);
    ws.filled[last] = true;
    for i in (1..net.nodes.len()).rev() {
        if !ws.filled[i] {
            continue;
        }
        let node = &net.nodes[i];
        for k in 0..node.inputs.len() {
            let j = node.inputs[k];
            let into_tmp = ws.filled[j];
            let len = n * net.nodes[j].len;
            // The input needs no gradient; the op's parameter gradients are still taken.
            let (gbefore, grest) = ws.grads.split_at_mut(i);
            let dy = &grest[0][..n * node.len];
            let dx = match (j, into_tmp) {
                (0, _) => None,
                (_, true) => Some(&mut ws.tmp[..len]),
                (_, false) => Some(&mut gbefore[j][..len]),
            };
            op_backward(
                net,
                params,
                i,
                k,
                n,
                dy,
                &ws.outs,
                &ws.aux[i],
                &mut ws.scratch,
                dx,
                grads,
            );
            if j > 0 && into_tmp {
                for (g, t) in ws.grads[j][..len].iter_mut().zip(&ws.tmp[..len]) {
                    *g += t;
                }
            }
            ws.filled[j] = j > 0;
        }
    }
}

/// Gradient of node `i` with respect to its `k`-th input into `dx` (when given), and of its
/// parameters into `grads` (once, with the first input).
#[allow(clippy::too_many_arguments)]
fn op_backward(
    net: &Net,
    params: &[f32],
    i: usize,
    k: usize,
    n: usize,
    dy: &[f32],
    outs: &[Vec<f32>],
    aux: &Aux,
    scratch: &mut [f32],
    dx: Option<&mut [f32]>,
    grads: &mut [f32],
) {
    let node = &net.nodes[i];
    let j = node.inputs[k];
    let x = &outs[j][..n * net.nodes[j].len];
    let p = |t: usize| net.slice(params, t);
    match (&node.layer, aux) {
        (
            Layer::Conv {
                weight,
                bias,
                shape,
            },
            Aux::Cols(cols),
        ) => {
            let cols = &cols[..n * shape.positions() * shape.patch()];
            if let Some(b) = bias {
                bias_grad(dy, net.slice_mut(grads, *b), shape.positions());
            }
            let gw = net.slice_mut(grads, *weight);
            conv_backward(cols, p(*weight), dy, shape, gw, dx, scratch);
        }
        (
            Layer::Linear {
                weight,
                bias,
                inp,
                out,
            },
            _,
        ) => {
            if let Some(b) = bias {
                bias_grad(dy, net.slice_mut(grads, *b), 1);
            }
            let gw = net.slice_mut(grads, *weight);
            linear_backward(x, p(*weight), dy, *inp, *out, gw, dx);
        }
        (
            Layer::BatchNorm {
                scale,
                shift,
                shape,
                ..
            },
            Aux::Bn(cache),
        ) => {
            let (gs, gb) = net.pair_mut(grads, *scale, *shift);
            let mut sink = Vec::new();
            let dx = dx.unwrap_or_else(|| {
                sink.resize(dy.len(), 0.0);
                &mut sink
            });
            bn_backward(dy, p(*scale), shape, cache, gs, gb, dx);
        }
        (layer, aux) => {
            let Some(dx) = dx else { return };
            match (layer, aux) {
                (
                    Layer::Pad {
                        mode,
                        padding,
                        h,
                        w,
                    },
                    _,
                ) => match mode {
                    PadMode::Replicate => replicate_pad_backward(dy, *h, *w, *padding, dx),
                    PadMode::Zero => zero_pad_backward(dy, *h, *w, *padding, dx),
                },
                (Layer::Relu, _) => {
                    dx.copy_from_slice(dy);
                    relu_backward(&outs[i][..dy.len()], dx);
                }
                (Layer::MaxPool(_), Aux::Argmax(idx)) => {
                    maxpool_backward(dy, &idx[..dy.len()], dx);
                }
                (Layer::AvgPool(s), _) => avgpool_backward(dy, s, dx),
                (Layer::Flatten | Layer::Add, _) => dx.copy_from_slice(dy),
                (Layer::GlobalAvgPool { spatial }, _) => global_avgpool_backward(dy, *spatial, dx),
                (layer, _) => unreachable!("no backward for {layer:?}"),
            }
        }
    }
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
