//! ONNX in and out: the architecture and weights of an ONNX model ([`read`]), the same file
//! with fused weights ([`write_fused`]), and a new ONNX file from an [`ArchSpec`] ([`export`]).
//!
//! Reading maps each node onto the [`ArchSpec`] graph (see [`SUPPORTED_OPS`]); anything else is
//! refused with [`OnnxError::Unsupported`] naming the node. Initializers, `Constant` nodes and
//! `ConstantOfShape` fills of a constant shape are the weights, named as in the file. Gemm's
//! `transB = 0`, `alpha`, `beta` and MatMul's `[in, out]` weights are transposed and scaled into
//! gmfuse's `[out, in]` on read and back on write. The derived spec goes through the normal
//! [`ArchSpec::validate`], so its permutation groups are the ones an ArchSpec upload gives.
//!
//! A model whose tensors live in external files is made self-contained first
//! ([`inline_external`], given the files); the reader refuses external data left outside.
//!
//! Protobuf is decoded by `prost` from types generated off the vendored `proto/onnx.proto`
//! (see [`proto`]'s header); every size is bounded by [`limits`] before it is allocated.

mod attrs;
mod error;
mod export;
mod external;
mod externalize;
mod import;
mod import_layers;
mod import_ops;
mod import_shapes;
mod layout;
pub mod limits;
#[allow(missing_docs)]
pub mod proto;
mod shapes;
mod spec;
mod tensor;
#[cfg(test)]
mod tests;
mod values;
mod walk;

use std::collections::BTreeMap;

use prost::Message;

pub use error::{OnnxError, SUPPORTED_OPS};
pub use export::export;
pub use external::{ExternalFiles, ExternalRef, external_refs, inline_external};
pub use externalize::{EXTERNAL_ALIGN, externalize};

use crate::arch::ArchSpec;
use crate::weights::WeightSet;
use layout::Layout;
use proto::ModelProto;

/// An ONNX model read as gmfuse's architecture and weights (tensor names = the file's
/// initializer or constant names).
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxModel {
    pub spec: ArchSpec,
    pub weights: WeightSet,
    /// How each weight was read from the file.
    layouts: BTreeMap<String, Layout>,
}

/// Decode `bytes` as a `ModelProto`, bounded by [`limits::MAX_FILE_BYTES`].
fn decode(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
    limits::at_most("file size (bytes)", bytes.len(), limits::MAX_FILE_BYTES)?;
    ModelProto::decode(bytes).map_err(|e| OnnxError::Malformed(e.to_string()))
}

/// ONNX bytes → the architecture they describe and its weights.
///
/// # Errors
/// [`OnnxError::Malformed`] for bytes that are not a model, [`OnnxError::Unsupported`] naming
/// the first node gmfuse cannot map, [`OnnxError::Shape`] when the derived spec is invalid, and
/// the tensor errors ([`OnnxError::ExternalData`], [`OnnxError::BadTensor`], limits).
pub fn read(bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
    read_within(bytes, limits::MAX_TOTAL_ELEMS)
}

/// [`read`] with the weights held to `max_elems` elements in all (at most
/// [`limits::MAX_TOTAL_ELEMS`]), checked before each is allocated: a service passes a budget
/// in proportion to the upload, since a few bytes of `ConstantOfShape` can declare millions of
/// weights.
///
/// # Errors
/// As [`read`]; [`OnnxError::TooLarge`] past the budget.
pub fn read_within(bytes: &[u8], max_elems: usize) -> Result<OnnxModel, OnnxError> {
    let model = decode(bytes)?;
    read_model(&model, max_elems)
}

fn read_model(model: &ModelProto, max_elems: usize) -> Result<OnnxModel, OnnxError> {
    let imported = import::import(model, max_elems)?;
    let name = model
        .graph
        .as_ref()
        .and_then(|g| g.name.as_deref())
        .unwrap_or("");
    let spec = spec::to_spec(name, &imported);
    spec.validate(&imported.weights)?;
    Ok(OnnxModel {
        spec,
        weights: imported.weights,
        layouts: imported.layouts,
    })
}

/// Model `original`'s bytes with every weight that `fused` names replaced (same names, dtype
/// and layout as in `original`: transposes and scales applied on read are undone); every other
/// field kept. A `ConstantOfShape` weight becomes a `Constant` node of the same output.
///
/// # Errors
/// Any error of [`read`] on `original`; [`OnnxError::Fused`] for a tensor the model does not
/// have as a weight, of another shape, or not finite.
pub fn write_fused(original: &[u8], fused: &WeightSet) -> Result<Vec<u8>, OnnxError> {
    let mut model = decode(original)?;
    let read = read_model(&model, limits::MAX_TOTAL_ELEMS)?;
    let graph = model.graph.as_mut().expect("read checked the graph");
    layout::replace(graph, &read.layouts, &read.weights, fused)?;
    Ok(model.encode_to_vec())
}

/// A cheap format sniff: `bytes` start like a serialized `ModelProto` as exporters write it:
/// `ir_version` (field 1, a small varint) followed by another top-level field's tag. A
/// safetensors file (a little-endian `u64` header length) never passes: its third byte is 0.
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    // Tags are (field << 3) | wire type: ir_version 0x08; producer_name 0x12, producer_version
    // 0x1a, domain 0x22, model_version 0x28, doc_string 0x32, graph 0x3a, opset_import 0x42.
    matches!(bytes, [0x08, v, t, ..] if (1..=32).contains(v)
        && matches!(t, 0x12 | 0x1a | 0x22 | 0x28 | 0x32 | 0x3a | 0x42))
}
