//! The permutation structure of a sequential network: which groups of nodes (channels) each
//! weighted layer connects, and which tensor axes each hidden layer's permutation acts on.
//!
//! Every conv2d/linear output is a layer of nodes. The input channels and the last layer's
//! outputs are fixed; every other output layer is a [`PermGroup`] that may be permuted. A conv
//! output consumed by a linear after `flatten` acts on the linear's input axis in blocks of
//! `H·W` (channel-major flatten), with `H, W` taken from the spec's inferred shapes.

use serde::Serialize;

use super::spec::{ArchSpec, Op, Shape};

/// A layer of nodes of the network graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum NodeGroup {
    /// The input channels (fixed).
    Input,
    /// The outputs of the `k`-th permutable layer (index into [`PermStructure::hidden`]).
    Hidden(usize),
    /// The network's outputs (fixed).
    Output,
}

/// Whether a graph layer came from a convolution or a linear op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LayerKind {
    Conv,
    Linear,
}

/// A weighted op seen as the edges between two node groups.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GraphLayer {
    /// Index of the op in [`ArchSpec::ops`].
    pub op_index: usize,
    pub kind: LayerKind,
    pub weight: String,
    pub bias: Option<String>,
    pub input: NodeGroup,
    pub output: NodeGroup,
    /// Nodes in the input group.
    pub n_in: usize,
    /// Nodes in the output group.
    pub n_out: usize,
    /// Length of one edge's feature vector: `kh·kw` for a conv, the flatten block `H·W` for a
    /// linear after a conv, 1 for a plain linear. The weight reshapes to `[n_out, n_in, feat]`.
    pub feat: usize,
}

/// One axis of one tensor that a group's permutation acts on: node `i` owns the indices
/// `i·block .. (i+1)·block` of `axis`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AxisRef {
    pub tensor: String,
    pub axis: usize,
    pub block: usize,
}

/// A permutable layer of nodes (a hidden layer's output channels).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PermGroup {
    /// Number of nodes.
    pub size: usize,
    /// The graph layer that produces these nodes.
    pub producer: usize,
    /// The graph layer that consumes them.
    pub consumer: usize,
    /// Every tensor axis a permutation of this group must be applied to.
    pub axes: Vec<AxisRef>,
}

/// The graph view of a validated network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PermStructure {
    /// Channels of the input group.
    pub n_input: usize,
    /// The weighted ops in order; layer `l+1`'s input group is layer `l`'s output group.
    pub layers: Vec<GraphLayer>,
    /// The permutable groups, in network order.
    pub hidden: Vec<PermGroup>,
}

impl PermStructure {
    /// Derive the structure from a spec and its inferred shapes (as from
    /// [`ArchSpec::shapes_with`]). The spec must hold at least one weighted op.
    pub(crate) fn derive(
        spec: &ArchSpec,
        shapes: &[Shape],
        weight_shape: &dyn Fn(&str) -> Option<Vec<usize>>,
    ) -> Self {
        assert_eq!(
            shapes.len(),
            spec.ops.len() + 1,
            "one shape per op boundary"
        );
        let weighted: Vec<usize> = spec
            .ops
            .iter()
            .enumerate()
            .filter(|(_, op)| matches!(op, Op::Conv2d { .. } | Op::Linear { .. }))
            .map(|(i, _)| i)
            .collect();
        assert!(!weighted.is_empty(), "spec has weighted ops");
        let n_input = match shapes[0] {
            Shape::Chw(c, ..) => c,
            Shape::Flat(n) => n,
        };
        let mut layers = Vec::new();
        let mut hidden: Vec<PermGroup> = Vec::new();
        let mut group = NodeGroup::Input;
        let mut channels = n_input;
        // Block of the current group's nodes along a flat feature axis.
        let mut block = 1;
        for (i, op) in spec.ops.iter().enumerate() {
            match (op, shapes[i]) {
                (Op::Flatten {}, Shape::Chw(_, h, w)) => block *= h * w,
                (Op::Conv2d { weight, bias, .. } | Op::Linear { weight, bias }, before) => {
                    let (kind, feat) = match (op, before) {
                        (Op::Conv2d { .. }, Shape::Chw(..)) => {
                            let ws = weight_shape(weight).expect("validated conv weight");
                            (LayerKind::Conv, ws[2] * ws[3])
                        }
                        _ => (LayerKind::Linear, block),
                    };
                    let n_out = match shapes[i + 1] {
                        Shape::Chw(c, ..) => c,
                        Shape::Flat(n) => n,
                    };
                    let index = layers.len();
                    let last = Some(&i) == weighted.last();
                    let output = if last {
                        NodeGroup::Output
                    } else {
                        NodeGroup::Hidden(hidden.len())
                    };
                    if let NodeGroup::Hidden(k) = group {
                        hidden[k].consumer = index;
                        hidden[k].axes.push(AxisRef {
                            tensor: weight.clone(),
                            axis: 1,
                            block,
                        });
                    }
                    if !last {
                        let mut axes = vec![AxisRef {
                            tensor: weight.clone(),
                            axis: 0,
                            block: 1,
                        }];
                        if let Some(b) = bias {
                            axes.push(AxisRef {
                                tensor: b.clone(),
                                axis: 0,
                                block: 1,
                            });
                        }
                        hidden.push(PermGroup {
                            size: n_out,
                            producer: index,
                            consumer: usize::MAX,
                            axes,
                        });
                    }
                    layers.push(GraphLayer {
                        op_index: i,
                        kind,
                        weight: weight.clone(),
                        bias: bias.clone(),
                        input: group,
                        output,
                        n_in: channels,
                        n_out,
                        feat,
                    });
                    group = output;
                    channels = n_out;
                    block = 1;
                }
                _ => {}
            }
        }
        debug_assert!(hidden.iter().all(|g| g.consumer != usize::MAX));
        PermStructure {
            n_input,
            layers,
            hidden,
        }
    }

    /// Total number of nodes: input channels plus every layer's outputs.
    pub fn n_nodes(&self) -> usize {
        self.n_input + self.layers.iter().map(|l| l.n_out).sum::<usize>()
    }

    /// Offset of a group's first node in the node numbering (input first, then each layer's
    /// outputs in order) — the numbering the pygmtools example uses.
    pub fn group_offset(&self, group: NodeGroup) -> usize {
        match group {
            NodeGroup::Input => 0,
            NodeGroup::Hidden(k) => {
                let producer = self.hidden[k].producer;
                self.n_input
                    + self.layers[..producer]
                        .iter()
                        .map(|l| l.n_out)
                        .sum::<usize>()
            }
            NodeGroup::Output => self.n_nodes() - self.layers.last().map_or(0, |l| l.n_out),
        }
    }
}
