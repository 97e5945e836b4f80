//! Architecture specs: an [`ArchSpec`] JSON document (input shape + ops wired as a graph),
//! the built-in presets (fixed, and `mlp` read from a model's tensors), validation against a [`WeightSet`](crate::weights::WeightSet),
//! and the permutation structure derived from it.
//!
//! ```
//! use gmfuse_engine::arch::preset;
//! let spec = preset("mnist-cnn").unwrap();
//! assert_eq!(spec.tensor_names(), ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]);
//! ```

pub mod bounds;
mod diff;
mod dry;
mod error;
mod explain;
mod graph;
mod groups;
mod perm;
mod presets;
mod shape;
mod spec;
mod validate;
mod zoo;

pub use error::{ArchError, Branches};
pub use explain::GroupView;
pub use graph::{Graph, INPUT};
pub use perm::{AxisRef, GraphLayer, LayerKind, NodeGroup, PermGroup, PermStructure};
pub use presets::{SHAPE_DRIVEN, mlp, preset, preset_for, presets};
pub use spec::{ArchSpec, Node, Op, PadMode, Shape};
pub use zoo::preset_tensors;

#[cfg(test)]
mod graph_tests;
