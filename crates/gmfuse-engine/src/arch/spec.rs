//! The [`ArchSpec`] document: its ops, the [`Node`] that places an op in the graph, and the
//! [`Shape`] of a value between two ops. Shape inference is in [`super::shape`], the input
//! wiring in [`super::graph`].
//!
//! An op reads the previous op's output unless it names its input(s): `"input": "<name>"` for
//! a one-input op, `"inputs": ["<a>", "<b>"]` for `add`, where a name is another op's `"name"`
//! (earlier in the list) or `"input"`, the network's input. A spec without names is the chain
//! it always was.

use serde::{Deserialize, Serialize};

/// How `pad2d` fills the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PadMode {
    /// Repeat the edge value (PyTorch `ReplicationPad2d`).
    Replicate,
    /// Fill with zeros (PyTorch `ZeroPad2d`).
    Zero,
}

fn one() -> usize {
    1
}

fn bn_eps() -> f64 {
    1e-5
}

/// One operation of a network. Tensors are named by their safetensors keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Op {
    /// Pad height and width by `padding` on every side.
    Pad2d { mode: PadMode, padding: usize },
    /// 2-D cross-correlation; `weight` is `[out, in, kh, kw]`, `bias` is `[out]`.
    Conv2d {
        weight: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias: Option<String>,
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding on every side.
        #[serde(default)]
        padding: usize,
    },
    /// `y = x Wᵀ + b`; `weight` is `[out, in]`, `bias` is `[out]`.
    Linear {
        weight: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias: Option<String>,
    },
    /// Batch normalisation of a `[C, H, W]` value with running statistics (inference):
    /// `y = (x − running_mean) / √(running_var + eps) · weight + bias` per channel; every
    /// tensor is `[C]`.
    Batchnorm2d {
        weight: String,
        bias: String,
        running_mean: String,
        running_var: String,
        #[serde(default = "bn_eps")]
        eps: f64,
    },
    /// [`Op::Batchnorm2d`] on a flat value of `n` features; every tensor is `[n]`.
    Batchnorm1d {
        weight: String,
        bias: String,
        running_mean: String,
        running_var: String,
        #[serde(default = "bn_eps")]
        eps: f64,
    },
    /// `max(x, 0)`. An empty struct variant, so that unknown fields are refused like any other op's.
    Relu {},
    /// The element-wise sum of two values of one shape (a residual connection); its node names
    /// both with `"inputs"`.
    Add {},
    /// Max pooling; padding counts as −∞ (PyTorch semantics, floor mode).
    Maxpool2d {
        kernel: usize,
        /// Defaults to `kernel`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// Average pooling; padding counts as zeros and is included in the divisor (PyTorch default).
    Avgpool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// `(C, H, W)` → `C`: the mean of each channel over its `H·W` positions.
    #[serde(rename = "global_avgpool")]
    GlobalAvgpool {},
    /// `(C, H, W)` → `C·H·W`, channel-major.
    Flatten {},
}

/// An op placed in the graph: its optional name and the values it reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// How later ops refer to this op's output (unique; not `"input"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A one-input op's input, when it is not the previous op's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// An `add`'s two inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
    #[serde(flatten)]
    pub op: Op,
}

impl From<Op> for Node {
    /// An unnamed op reading the previous op's output.
    fn from(op: Op) -> Self {
        Node {
            name: None,
            input: None,
            inputs: None,
            op,
        }
    }
}

impl Node {
    /// Name this node.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Read `input` instead of the previous op's output.
    pub fn reading(mut self, input: &str) -> Self {
        self.input = Some(input.to_string());
        self
    }

    /// An `add` of the values named `a` and `b`.
    pub fn add(a: &str, b: &str) -> Self {
        Node {
            inputs: Some(vec![a.to_string(), b.to_string()]),
            ..Node::from(Op::Add {})
        }
    }

    /// How the node is referred to in errors: its name, else its op.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{} `{n}`", self.op.kind()),
            None => self.op.kind().to_string(),
        }
    }
}

/// A network: the shape of one input sample `[C, H, W]` and its ops in a topological order
/// (every op after the ops it reads). The last op's output is the network's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSpec {
    pub name: String,
    /// One sample's shape, `[channels, height, width]`.
    pub input: [usize; 3],
    pub ops: Vec<Node>,
}

/// The shape of one sample between two ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Channels, height, width.
    Chw(usize, usize, usize),
    /// A flat feature vector.
    Flat(usize),
}

impl Shape {
    /// Channels of a `[C, H, W]` value, features of a flat one.
    pub fn units(self) -> usize {
        match self {
            Shape::Chw(c, ..) | Shape::Flat(c) => c,
        }
    }
}

impl Op {
    /// The op's name as written in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Pad2d { .. } => "pad2d",
            Op::Conv2d { .. } => "conv2d",
            Op::Linear { .. } => "linear",
            Op::Batchnorm2d { .. } => "batchnorm2d",
            Op::Batchnorm1d { .. } => "batchnorm1d",
            Op::Relu {} => "relu",
            Op::Add {} => "add",
            Op::Maxpool2d { .. } => "maxpool2d",
            Op::Avgpool2d { .. } => "avgpool2d",
            Op::GlobalAvgpool {} => "global_avgpool",
            Op::Flatten {} => "flatten",
        }
    }

    /// How many values the op reads.
    pub fn arity(&self) -> usize {
        match self {
            Op::Add {} => 2,
            _ => 1,
        }
    }

    /// The tensors the op uses: weight then bias for conv2d and linear; weight, bias,
    /// running_mean, running_var for a batchnorm.
    pub fn tensors(&self) -> Vec<&str> {
        match self {
            Op::Conv2d { weight, bias, .. } | Op::Linear { weight, bias } => {
                std::iter::once(weight.as_str())
                    .chain(bias.as_deref())
                    .collect()
            }
            op => op.batchnorm_tensors().map(Vec::from).unwrap_or_default(),
        }
    }

    /// A batch norm's `(weight, bias, running_mean, running_var)` tensor names; `None` for
    /// any other op.
    pub fn batchnorm_tensors(&self) -> Option<[&str; 4]> {
        match self {
            Op::Batchnorm2d {
                weight,
                bias,
                running_mean,
                running_var,
                ..
            }
            | Op::Batchnorm1d {
                weight,
                bias,
                running_mean,
                running_var,
                ..
            } => Some([weight, bias, running_mean, running_var]),
            _ => None,
        }
    }
}

impl ArchSpec {
    /// A chain of unnamed ops, each reading the previous one's output.
    pub fn chain(name: &str, input: [usize; 3], ops: Vec<Op>) -> Self {
        ArchSpec {
            name: name.to_string(),
            input,
            ops: ops.into_iter().map(Node::from).collect(),
        }
    }

    /// The ops alone, in order.
    pub fn op_list(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter().map(|n| &n.op)
    }

    /// Names of the tensors the ops use, in op order (see [`Op::tensors`]).
    pub fn tensor_names(&self) -> Vec<&str> {
        self.op_list().flat_map(Op::tensors).collect()
    }
}
