//! A [`Net`]'s parameters out of the trainer: as the engine's [`WeightSet`] and as a
//! safetensors file with its provenance.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use safetensors::{Dtype, tensor::TensorView};

use crate::engine::weights::{DType, Tensor as EngineTensor, WeightSet};
use crate::train::data::TrainError;
use crate::train::graph::Net;

impl Net {
    /// The parameters `data` as the engine's [`WeightSet`] (F32 tensors by name), to run them
    /// through the engine's inference.
    pub fn to_weight_set(&self, data: &[f32]) -> WeightSet {
        let tensors = self
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let values = self.slice(data, i).iter().map(|&v| f64::from(v)).collect();
                let data = ArrayD::from_shape_vec(t.shape.clone(), values).expect("shape fits");
                let tensor = EngineTensor {
                    dtype: DType::F32,
                    data,
                };
                (t.name.clone(), tensor)
            })
            .collect();
        WeightSet {
            tensors,
            metadata: BTreeMap::new(),
        }
    }
}

/// Tensors `(name, shape, values)` as a safetensors file: F32 little-endian and one
/// `__metadata__` entry `provenance` (one entry only: the crate writes metadata in hash-map
/// order, so several entries would make the bytes vary from run to run).
///
/// # Errors
/// [`TrainError::Safetensors`] if serialisation fails.
pub fn write_safetensors<S: AsRef<str>>(
    tensors: &[(S, Vec<usize>, &[f32])],
    provenance: &str,
) -> Result<Vec<u8>, TrainError> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, t)| t.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            Ok((
                name.as_ref(),
                TensorView::new(Dtype::F32, shape.clone(), b)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let meta = [("provenance".to_string(), provenance.to_string())].into();
    Ok(safetensors::tensor::serialize(views, Some(meta))?)
}
