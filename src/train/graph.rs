//! A trainable network built from any [`ArchSpec`]: one node per op (node 0 is the input), its
//! input nodes and geometry, and the table of tensors (name, shape, offset into one flat
//! buffer, how it is initialised). [`exec`](crate::train::exec) runs it forward and backward.
//!
//! The flat buffer holds the tensors in the spec's order ([`ArchSpec::tensor_names`]), running
//! statistics included: they take no gradient, so the SGD step leaves them as they are and the
//! training loop updates them from the batch statistics.

use std::collections::BTreeMap;

use crate::engine::arch::{ArchError, ArchSpec, Op, PadMode, Shape};
use crate::train::conv::ConvShape;
use crate::train::data::TrainError;
use crate::train::norm::BnShape;
use crate::train::pool::PoolShape;
use crate::train::rng::SplitMix64;
use crate::train::weights_out::write_safetensors;

/// How a tensor starts and whether it learns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Role {
    /// A conv/linear weight: uniform in `±gain·√(3/fan_in)`.
    Weight {
        fan_in: usize,
    },
    /// A conv/linear bias: uniform in `±1/√fan_in` (PyTorch's default).
    Bias {
        fan_in: usize,
    },
    /// A batch norm's scale (starts at 1) or shift (starts at 0).
    BnScale,
    BnShift,
    /// A batch norm's running mean (starts at 0) or variance (starts at 1); no gradient.
    RunningMean,
    RunningVar,
}

/// One tensor of the flat parameter buffer.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
    pub role: Role,
}

/// What a node computes; tensors are indices into [`Net::tensors`].
#[derive(Clone, Debug)]
pub enum Layer {
    Input,
    Pad {
        mode: PadMode,
        padding: usize,
        h: usize,
        w: usize,
    },
    Conv {
        weight: usize,
        bias: Option<usize>,
        shape: ConvShape,
    },
    Linear {
        weight: usize,
        bias: Option<usize>,
        inp: usize,
        out: usize,
    },
    Relu,
    MaxPool(PoolShape),
    AvgPool(PoolShape),
    Flatten,
    BatchNorm {
        scale: usize,
        shift: usize,
        mean: usize,
        var: usize,
        shape: BnShape,
    },
    Add,
    GlobalAvgPool {
        spatial: usize,
    },
}

/// One node: its layer, the nodes it reads, and the values per sample it produces.
#[derive(Clone, Debug)]
pub struct Node {
    pub layer: Layer,
    pub inputs: Vec<usize>,
    pub len: usize,
}

/// The network: nodes in execution order (inputs before their readers) and the tensor table.
#[derive(Clone, Debug)]
pub struct Net {
    pub nodes: Vec<Node>,
    pub tensors: Vec<Tensor>,
    /// Length of the flat parameter buffer.
    pub n_params: usize,
}

fn len_of(s: Shape) -> usize {
    match s {
        Shape::Chw(c, h, w) => c * h * w,
        Shape::Flat(n) => n,
    }
}

impl Net {
    /// Build the network of `spec` with the tensor shapes `shapes` (by name).
    ///
    /// # Errors
    /// Any [`ArchError`] of [`ArchSpec::check_shapes`].
    pub fn new(spec: &ArchSpec, shapes: &BTreeMap<String, Vec<usize>>) -> Result<Net, ArchError> {
        spec.check_shapes(shapes)?;
        let graph = spec.graph_with(|n| shapes.get(n).cloned())?;
        let mut net = Net {
            nodes: vec![Node {
                layer: Layer::Input,
                inputs: vec![],
                len: len_of(graph.shapes[0]),
            }],
            tensors: Vec::new(),
            n_params: 0,
        };
        for (index, node) in spec.ops.iter().enumerate() {
            let (input, output) = (graph.input_shape(index), graph.output_shape(index));
            let layer = net.layer(&node.op, input, output, shapes);
            net.nodes.push(Node {
                layer,
                inputs: graph.inputs[index].clone(),
                len: len_of(output),
            });
        }
        Ok(net)
    }

    fn tensor(&mut self, name: &str, shape: &[usize], role: Role) -> usize {
        let len = shape.iter().product();
        self.tensors.push(Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            offset: self.n_params,
            len,
            role,
        });
        self.n_params += len;
        self.tensors.len() - 1
    }

    fn layer(
        &mut self,
        op: &Op,
        input: Shape,
        output: Shape,
        shapes: &BTreeMap<String, Vec<usize>>,
    ) -> Layer {
        let chw = |s: Shape| match s {
            Shape::Chw(c, h, w) => (c, h, w),
            Shape::Flat(n) => (n, 1, 1),
        };
        let (c, h, w) = chw(input);
        let pool = |kernel: usize, stride: Option<usize>, padding: usize| PoolShape {
            h,
            w,
            kernel,
            stride: stride.unwrap_or(kernel),
            padding,
        };
        match op {
            Op::Pad2d { mode, padding } => Layer::Pad {
                mode: *mode,
                padding: *padding,
                h,
                w,
            },
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
            } => {
                let ws = &shapes[weight];
                let fan_in = ws[1] * ws[2] * ws[3];
                let weight = self.tensor(weight, ws, Role::Weight { fan_in });
                let bias = bias
                    .as_ref()
                    .map(|b| self.tensor(b, &[ws[0]], Role::Bias { fan_in }));
                let shape = ConvShape {
                    c,
                    h,
                    w,
                    o: ws[0],
                    kh: ws[2],
                    kw: ws[3],
                    stride: *stride,
                    padding: *padding,
                };
                Layer::Conv {
                    weight,
                    bias,
                    shape,
                }
            }
            Op::Linear { weight, bias } => {
                let ws = &shapes[weight];
                let fan_in = ws[1];
                let weight = self.tensor(weight, ws, Role::Weight { fan_in });
                let bias = bias
                    .as_ref()
                    .map(|b| self.tensor(b, &[ws[0]], Role::Bias { fan_in }));
                Layer::Linear {
                    weight,
                    bias,
                    inp: ws[1],
                    out: ws[0],
                }
            }
            Op::Relu {} => Layer::Relu,
            Op::Maxpool2d {
                kernel,
                stride,
                padding,
            } => Layer::MaxPool(pool(*kernel, *stride, *padding)),
            Op::Avgpool2d {
                kernel,
                stride,
                padding,
            } => Layer::AvgPool(pool(*kernel, *stride, *padding)),
            Op::Flatten {} => {
                debug_assert_eq!(len_of(input), len_of(output));
                Layer::Flatten
            }
            Op::Batchnorm2d {
                weight,
                bias,
                running_mean,
                running_var,
                eps,
            }
            | Op::Batchnorm1d {
                weight,
                bias,
                running_mean,
                running_var,
                eps,
            } => {
                let shape = BnShape {
                    channels: c,
                    spatial: h * w,
                    eps: *eps as f32,
                };
                Layer::BatchNorm {
                    scale: self.tensor(weight, &[c], Role::BnScale),
                    shift: self.tensor(bias, &[c], Role::BnShift),
                    mean: self.tensor(running_mean, &[c], Role::RunningMean),
                    var: self.tensor(running_var, &[c], Role::RunningVar),
                    shape,
                }
            }
            Op::Add {} => Layer::Add,
            Op::GlobalAvgpool {} => Layer::GlobalAvgPool { spatial: h * w },
        }
    }

    /// Values per input sample.
    pub fn input_len(&self) -> usize {
        self.nodes[0].len
    }

    /// Values per output sample (the classes).
    pub fn output_len(&self) -> usize {
        self.nodes.last().expect("the input node").len
    }

    /// Whether a node normalises with batch statistics in training.
    pub fn has_batch_norm(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(n.layer, Layer::BatchNorm { .. }))
    }

    /// Tensor `t` of the flat buffer `data`.
    pub fn slice<'a>(&self, data: &'a [f32], t: usize) -> &'a [f32] {
        let t = &self.tensors[t];
        &data[t.offset..t.offset + t.len]
    }

    /// Tensor `t` of the flat buffer `data`, mutably.
    pub fn slice_mut<'a>(&self, data: &'a mut [f32], t: usize) -> &'a mut [f32] {
        let t = &self.tensors[t];
        &mut data[t.offset..t.offset + t.len]
    }

    /// Two distinct tensors `a` and `b` of the flat buffer `data`, mutably.
    ///
    /// # Panics
    /// When `a == b`.
    pub fn pair_mut<'a>(
        &self,
        data: &'a mut [f32],
        a: usize,
        b: usize,
    ) -> (&'a mut [f32], &'a mut [f32]) {
        assert_ne!(a, b, "two distinct tensors");
        let (ta, tb) = (&self.tensors[a], &self.tensors[b]);
        if ta.offset < tb.offset {
            let (lo, hi) = data.split_at_mut(tb.offset);
            (&mut lo[ta.offset..ta.offset + ta.len], &mut hi[..tb.len])
        } else {
            let (lo, hi) = data.split_at_mut(ta.offset);
            (&mut hi[..ta.len], &mut lo[tb.offset..tb.offset + tb.len])
        }
    }

    /// Fresh parameters, drawn tensor after tensor in storage order (see [`Role`]).
    pub fn init(&self, rng: &mut SplitMix64, gain: f32) -> Vec<f32> {
        let mut data = vec![0.0; self.n_params];
        for t in &self.tensors {
            let values = &mut data[t.offset..t.offset + t.len];
            match t.role {
                Role::Weight { fan_in } => {
                    let bound = gain * (3.0 / fan_in as f32).sqrt();
                    values
                        .iter_mut()
                        .for_each(|v| *v = (2.0 * rng.next_f32() - 1.0) * bound);
                }
                Role::Bias { fan_in } => {
                    let bound = (fan_in as f32).sqrt();
                    values
                        .iter_mut()
                        .for_each(|v| *v = (2.0 * rng.next_f32() - 1.0) / bound);
                }
                Role::BnScale | Role::RunningVar => values.fill(1.0),
                Role::BnShift | Role::RunningMean => values.fill(0.0),
            }
        }
        data
    }

    /// The parameters `data` as a safetensors file (F32, the spec's names and PyTorch shapes)
    /// with one `provenance` metadata entry.
    ///
    /// # Errors
    /// [`TrainError::Safetensors`] if serialisation fails.
    pub fn to_safetensors(&self, data: &[f32], provenance: &str) -> Result<Vec<u8>, TrainError> {
        let tensors: Vec<_> = self
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), t.shape.clone(), self.slice(data, i)))
            .collect();
        write_safetensors(&tensors, provenance)
    }
}
