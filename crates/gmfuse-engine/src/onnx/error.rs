//! [`OnnxError`]: why an ONNX file was refused, as one line naming what is at fault.

use crate::arch::ArchError;

/// The ops [`super::read`] maps onto an [`ArchSpec`](crate::arch::ArchSpec), for error messages
/// and docs.
pub const SUPPORTED_OPS: &str = "Conv (group 1), Gemm, MatMul (with an initializer), Add, Sum, \
BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape as a flatten \
((N, -1), (N, C·H·W), (-1, C·H·W); its shape constant or computed by Shape, Gather, Unsqueeze, \
Squeeze, Concat, Slice, Cast to int64, Mul, Div), Pad, Identity, Dropout, Constant, \
ConstantOfShape, and a final Softmax";

/// Why an ONNX file was refused or could not be written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OnnxError {
    /// The bytes are not a protobuf `ModelProto`.
    #[error("not a valid ONNX file: {0}")]
    Malformed(String),
    /// A node gmfuse cannot map onto its architecture graph.
    #[error("node `{node}` ({op_type}) is not supported: {reason}; supported: {SUPPORTED_OPS}")]
    Unsupported {
        node: String,
        op_type: String,
        reason: String,
    },
    /// A tensor whose data lives in another file that was not inlined (see
    /// [`super::inline_external`]).
    #[error(
        "tensor `{tensor}` stores its data in the external file `{location}`: give the file with \
         the model (the CLI reads it from the model file's directory; `POST /v1/models` takes it \
         as a multipart/form-data part named by that location) or save the model with its \
         weights inside"
    )]
    ExternalData { tensor: String, location: String },
    /// A tensor's external data that cannot be inlined: a malformed `external_data`, a missing
    /// file, bytes past its end or not what the dims call for.
    #[error("tensor `{tensor}`: external data `{location}`: {reason}")]
    External {
        tensor: String,
        location: String,
        reason: String,
    },
    /// A file given with the model that none of its tensors references.
    #[error("external data file `{location}` is not referenced by any tensor of the model")]
    UnusedExternalFile { location: String },
    /// A tensor whose element type gmfuse does not read as a weight.
    #[error(
        "tensor `{tensor}` has ONNX data type {data_type}; weights must be float, float16, bfloat16 or double"
    )]
    Dtype { tensor: String, data_type: i32 },
    /// A tensor whose stored bytes or values disagree with its dims, or that is malformed.
    #[error("tensor `{tensor}`: {reason}")]
    BadTensor { tensor: String, reason: String },
    /// A size over one of the limits of [`super::limits`].
    #[error("{what} {value} is over the limit of {max}")]
    TooLarge {
        what: &'static str,
        value: u128,
        max: u128,
    },
    /// The derived architecture does not fit its own weights or breaks a spec rule.
    #[error("the derived architecture is invalid: {0}")]
    Shape(#[from] ArchError),
    /// `write_fused` was given a tensor the model does not have, or of another shape.
    #[error("fused tensor `{tensor}`: {reason}")]
    Fused { tensor: String, reason: String },
}

impl OnnxError {
    /// True when the file is a valid ONNX model that gmfuse cannot handle (an op or a feature it
    /// does not map: HTTP 422), false when the file itself is at fault (HTTP 400).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            OnnxError::Unsupported { .. }
                | OnnxError::ExternalData { .. }
                | OnnxError::Dtype { .. }
                | OnnxError::Shape(_)
        )
    }

    pub(crate) fn unsupported(node: &str, op_type: &str, reason: impl Into<String>) -> Self {
        OnnxError::Unsupported {
            node: node.to_string(),
            op_type: op_type.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn external(tensor: &str, location: &str, reason: impl Into<String>) -> Self {
        OnnxError::External {
            tensor: tensor.to_string(),
            location: location.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_tensor(tensor: &str, reason: impl Into<String>) -> Self {
        OnnxError::BadTensor {
            tensor: tensor.to_string(),
            reason: reason.into(),
        }
    }
}
