//! Architecture specs: an [`ArchSpec`] JSON document (input shape + a sequential list of ops),
//! the built-in presets (fixed, and `mlp` read from a model's tensors), validation against a [`WeightSet`](crate::weights::WeightSet),
//! and the permutation structure derived from it.
//!
//! ```
//! use gmfuse_engine::arch::preset;
//! let spec = preset("mnist-cnn").unwrap();
//! assert_eq!(spec.tensor_names(), ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]);
//! ```

pub mod bounds;
mod perm;
mod presets;
mod spec;
mod validate;

pub use perm::{AxisRef, GraphLayer, LayerKind, NodeGroup, PermGroup, PermStructure};
pub use presets::{SHAPE_DRIVEN, mlp, preset, preset_for, presets};
pub use spec::{ArchError, ArchSpec, Op, PadMode, Shape};
