//! The permutation structure of a network: its permutation groups, the tensor axes each one
//! acts on, and its weighted layers seen as edges between groups of nodes (channels).
//!
//! A *group* is a set of hidden channels that may be permuted together. Groups are derived
//! from the graph by union-find over the channel axes of its values ([`super::groups`]): a
//! conv2d/linear output starts a new set, an op that keeps channels in place (batchnorm,
//! ReLU, pooling, padding) keeps its input's, an `add` ties its inputs' and output's sets into
//! one, and `flatten` maps a channel to its block of `H·W` features. The network's input
//! channels and output classes are fixed, as is every set tied to them. Each group acts on
//! (Git Re-Basin's `axes_to_perm`): its producers' weight output axes and biases, every
//! batchnorm tensor of its channels, and its consumers' weight input axes (in blocks of `H·W`
//! after a flatten). Applying any permutation per group leaves the logits unchanged.

use serde::{Deserialize, Serialize};

/// A layer of nodes of the network graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum NodeGroup {
    /// The input channels (fixed), and every set tied to them.
    Input,
    /// The `k`-th permutation group (index into [`PermStructure::hidden`]).
    Hidden(usize),
    /// The network's outputs (fixed), and every set tied to them.
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
    /// Index of the op in [`ArchSpec::ops`](super::ArchSpec::ops).
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct AxisRef {
    pub tensor: String,
    pub axis: usize,
    pub block: usize,
}

/// A permutation group: a set of hidden channels permuted together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PermGroup {
    /// Number of nodes.
    pub size: usize,
    /// The first graph layer (index into [`PermStructure::layers`]) that produces these
    /// nodes; it names the group.
    pub producer: usize,
    /// The first graph layer that consumes them.
    pub consumer: usize,
    /// Every producing layer (more than one when an `add` ties groups), in order.
    pub producers: Vec<usize>,
    /// Every consuming layer, in order.
    pub consumers: Vec<usize>,
    /// The values (as numbered by [`super::Graph`]) whose channels are this group's.
    pub values: Vec<usize>,
    /// Where the group's units are observed (activation matching): each producing layer's
    /// output after the batchnorms, `add`s and ReLUs that follow it alone — the values of the
    /// group not read by exactly one such op, excluding pooled, padded and flattened ones and
    /// those after a flatten (a batchnorm over flattened features: a unit there is a block of
    /// H·W features).
    pub taps: Vec<usize>,
    /// Every tensor axis a permutation of this group must be applied to, in op order.
    pub axes: Vec<AxisRef>,
}

/// The graph view of a validated network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PermStructure {
    /// Channels of the input group.
    pub n_input: usize,
    /// The weighted ops in order.
    pub layers: Vec<GraphLayer>,
    /// The permutation groups, in the order of their first producer.
    pub hidden: Vec<PermGroup>,
}

impl PermStructure {
    /// Width of the output group (the last layer's outputs).
    pub fn n_output(&self) -> usize {
        self.layers.last().map_or(0, |l| l.n_out)
    }

    /// Total number of nodes: input channels, every group, the outputs.
    pub fn n_nodes(&self) -> usize {
        self.n_input + self.hidden.iter().map(|g| g.size).sum::<usize>() + self.n_output()
    }

    /// True for a chain: layer `l` reads group `l − 1` (the input for `l = 0`) and writes
    /// group `l` (the output for the last layer), as in a network without `add`.
    pub fn is_chain(&self) -> bool {
        let last = self.layers.len().saturating_sub(1);
        self.hidden.len() == last
            && self.layers.iter().enumerate().all(|(l, layer)| {
                let input = if l == 0 {
                    NodeGroup::Input
                } else {
                    NodeGroup::Hidden(l - 1)
                };
                let output = if l == last {
                    NodeGroup::Output
                } else {
                    NodeGroup::Hidden(l)
                };
                layer.input == input && layer.output == output
            })
    }

    /// Index of a node group in the node numbering input, groups…, output (the order of
    /// [`PermStructure::group_sizes`]).
    pub fn group_index(&self, group: NodeGroup) -> usize {
        match group {
            NodeGroup::Input => 0,
            NodeGroup::Hidden(k) => k + 1,
            NodeGroup::Output => self.hidden.len() + 1,
        }
    }

    /// Node count per group: input, every permutation group, output.
    pub fn group_sizes(&self) -> Vec<usize> {
        std::iter::once(self.n_input)
            .chain(self.hidden.iter().map(|g| g.size))
            .chain(std::iter::once(self.n_output()))
            .collect()
    }

    /// Offset of a group's first node in the node numbering (input first, then each group,
    /// then the outputs) — for a chain, the numbering the pygmtools example uses.
    pub fn group_offset(&self, group: NodeGroup) -> usize {
        self.group_sizes()[..self.group_index(group)].iter().sum()
    }
}
