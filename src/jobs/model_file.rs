//! A model file in either format gmfuse reads — safetensors (tensors only) or ONNX (a graph and
//! its initializers) — turned into what the engine works on: the weights and, for ONNX, the
//! architecture the graph describes. The upload, the worker, the fused download and the CLI
//! all read model files here, so a format is told apart and read one way everywhere.

use sha2::Digest;

use crate::engine::arch::ArchSpec;
use crate::engine::onnx::{self, OnnxError};
use crate::engine::weights::{self, TensorInfo, WeightSet, WeightsError};
use crate::store::ModelFormat;

/// Why a model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("invalid safetensors file: {0}")]
    Safetensors(#[from] WeightsError),
    #[error("ONNX model: {0}")]
    Onnx(#[from] OnnxError),
    #[error("ONNX initializer `{name}` has a non-finite value at flat index {index}")]
    NonFinite { name: String, index: usize },
}

impl ModelFileError {
    /// A well-formed ONNX model that uses what gmfuse does not support (an op, a grouped conv):
    /// 422 on the API, where a malformed file is 400.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, ModelFileError::Onnx(e) if e.is_unsupported())
    }
}

/// A model file, read.
#[derive(Debug)]
pub struct ModelFile {
    pub format: ModelFormat,
    pub weights: WeightSet,
    /// The architecture of an ONNX graph, named [`derived_name`]; `None` for safetensors.
    pub architecture: Option<ArchSpec>,
}

/// The format of `bytes`: ONNX when they start like an ONNX model, else safetensors (whose
/// reader then says what is wrong with them).
pub fn detect(bytes: &[u8]) -> ModelFormat {
    if onnx::looks_like_onnx(bytes) {
        ModelFormat::Onnx
    } else {
        ModelFormat::Safetensors
    }
}

/// Read and validate a model file of `format`: every weight finite, and for ONNX the graph's
/// architecture (checked against its weights by the engine) under its content-addressed name.
///
/// # Errors
/// Any [`ModelFileError`].
pub fn read(format: ModelFormat, bytes: &[u8]) -> Result<ModelFile, ModelFileError> {
    match format {
        ModelFormat::Safetensors => Ok(ModelFile {
            format,
            weights: WeightSet::from_bytes(bytes)?,
            architecture: None,
        }),
        ModelFormat::Onnx => {
            let model = onnx::read_within(bytes, onnx_weight_budget(bytes.len()))?;
            check_finite(&model.weights)?;
            let mut spec = model.spec;
            spec.name = derived_name(&spec);
            Ok(ModelFile {
                format,
                weights: model.weights,
                architecture: Some(spec),
            })
        }
    }
}

/// The most weight elements an ONNX file of `len` bytes may declare: what a safetensors file of
/// that size holds at the least (f16, 2 bytes an element), and never less than 2^20. Stored
/// weights always fit; only `ConstantOfShape` placeholders can declare more (a 200-byte file
/// could otherwise make the server hold 2^28 f64 weights — 2 GiB), and they are refused with
/// 400 before anything is allocated.
pub fn onnx_weight_budget(len: usize) -> usize {
    (len / 2).max(1 << 20)
}

/// The weights of a model file of `format`.
///
/// # Errors
/// As [`read`].
pub fn read_weights(format: ModelFormat, bytes: &[u8]) -> Result<WeightSet, ModelFileError> {
    read(format, bytes).map(|m| m.weights)
}

/// The tensors (name, dtype, shape) of a model file: from the header alone for safetensors,
/// by reading the whole graph for ONNX.
///
/// # Errors
/// As [`read`].
pub fn tensors(format: ModelFormat, bytes: &[u8]) -> Result<Vec<TensorInfo>, ModelFileError> {
    match format {
        ModelFormat::Safetensors => Ok(weights::inspect(bytes)?),
        ModelFormat::Onnx => Ok(read(format, bytes)?.weights.infos()),
    }
}

/// The name an ONNX graph's architecture is recorded under: `onnx-` and the first 12 hex digits
/// of the sha256 of the spec's JSON without its name, so two exports of one architecture (other
/// weights, other graph names) share it and any difference in the graph gives another.
pub fn derived_name(spec: &ArchSpec) -> String {
    let unnamed = ArchSpec {
        name: String::new(),
        ..spec.clone()
    };
    // Serialising a spec cannot fail (strings, numbers and enums only); an empty JSON would
    // still give a stable name.
    let json = serde_json::to_vec(&unnamed).unwrap_or_default();
    let digest = hex::encode(sha2::Sha256::digest(&json));
    format!("onnx-{}", &digest[..12])
}

/// The ONNX reader keeps whatever numbers the file holds; the engine's rule for uploads is that
/// every weight is finite (as the safetensors reader checks).
fn check_finite(w: &WeightSet) -> Result<(), ModelFileError> {
    for (name, t) in &w.tensors {
        if let Some(index) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(ModelFileError::NonFinite {
                name: name.clone(),
                index,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::arch::preset;

    #[test]
    fn the_derived_name_ignores_the_spec_name_and_follows_the_graph() {
        let a = preset("cnn-bn").unwrap();
        let mut renamed = a.clone();
        renamed.name = "torch-jit-export".into();
        assert_eq!(derived_name(&a), derived_name(&renamed));
        assert!(derived_name(&a).starts_with("onnx-"));
        assert_eq!(derived_name(&a).len(), "onnx-".len() + 12);
        let mut other = a.clone();
        other.input = [1, 32, 32];
        assert_ne!(derived_name(&a), derived_name(&other));
    }

    #[test]
    fn safetensors_bytes_are_not_taken_for_onnx() {
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("assets/demo/model-a.safetensors"),
        )
        .unwrap();
        assert_eq!(detect(&bytes), ModelFormat::Safetensors);
        let model = read(ModelFormat::Safetensors, &bytes).unwrap();
        assert!(model.architecture.is_none());
        assert_eq!(
            tensors(ModelFormat::Safetensors, &bytes).unwrap(),
            model.weights.infos()
        );
    }
}
