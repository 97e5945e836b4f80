//! [`ArchError`]: why a spec is invalid or does not fit a set of weights.

use super::spec::Shape;

/// The two inputs of an `add` that disagree in shape: each one's name (or `op <i>`, or
/// `input`) and shape.
#[derive(Debug, PartialEq)]
pub struct Branches {
    pub left: String,
    pub left_shape: Shape,
    pub right: String,
    pub right_shape: Shape,
}

/// Why a spec is invalid or does not fit a set of weights.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArchError {
    #[error("unknown architecture preset `{0}`")]
    UnknownPreset(String),
    #[error("preset `{0}` is read from a model's tensors: resolve it with `preset_for`")]
    ShapeDriven(String),
    #[error("preset `{preset}` does not fit these tensors: {reason}")]
    PresetMismatch { preset: String, reason: String },
    #[error("op {index} ({op}): {reason}")]
    BadOp {
        index: usize,
        op: &'static str,
        reason: String,
    },
    /// An op names an input that is not an earlier op's name (nor `input`).
    #[error("op {index} ({op}): input `{input}` is not the name of an earlier op or `input`")]
    UnknownInput {
        index: usize,
        op: &'static str,
        input: String,
    },
    #[error("op {index} ({op}): the name `{name}` is already taken")]
    DuplicateName {
        index: usize,
        op: &'static str,
        name: String,
    },
    /// An op's output that no later op reads (only the last op's output leaves the network).
    #[error("op {index} ({op}): its output is never used")]
    UnusedOutput { index: usize, op: &'static str },
    /// The two branches of an `add` have different shapes.
    #[error(
        "op {index} ({add}): its inputs disagree in shape: `{}` is {:?}, `{}` is {:?}",
        .branches.left, .branches.left_shape, .branches.right, .branches.right_shape
    )]
    BranchMismatch {
        index: usize,
        /// The add, as `add` or ``add `name` ``.
        add: String,
        branches: Box<Branches>,
    },
    #[error("architecture has no conv2d or linear layer")]
    NoLayers,
    #[error("tensor `{name}` is required by op {index} but missing from the weights")]
    MissingTensor { name: String, index: usize },
    #[error("tensor `{name}`: expected shape {expected:?}, got {got:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("tensor `{0}` is used by more than one op")]
    TensorReused(String),
    #[error("tensor `{0}` is not used by the architecture")]
    UnusedTensor(String),
    #[error("the network's output must be flat, got {0:?}")]
    OutputNotFlat(Shape),
    /// A tensor value no network can use (a negative running variance).
    #[error("tensor `{name}`: {reason}")]
    BadTensor { name: String, reason: String },
    /// The spec is valid but this part of gmfuse cannot handle it.
    #[error("{what} is not supported: {reason}")]
    Unsupported { what: String, reason: String },
    /// A size over one of the hard limits of [`super::bounds`].
    #[error("op {index} ({op}): {what} {value} is over the limit of {max}")]
    Limit {
        index: usize,
        op: &'static str,
        what: &'static str,
        value: u128,
        max: u128,
    },
}
