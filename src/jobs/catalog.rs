//! Names clients use, resolved to what the engine needs: architectures (presets, then custom
//! ones from the database), built-in and uploaded datasets, and architecture detection for an
//! uploaded model's tensor shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::engine::arch::{ArchError, ArchSpec, SHAPE_DRIVEN, preset, preset_for, presets};
use crate::engine::eval::Dataset;
use crate::engine::weights::TensorInfo;
use crate::store::{
    BlobError, BlobStore, DatasetFormat, DatasetSource, Db, LabelRange, StoreError, StoreResult,
};

/// A dataset compiled into the binary.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinDataset {
    pub name: &'static str,
    pub description: &'static str,
    pub samples: u64,
    pub shape: [usize; 3],
    /// MNIST's digits 0-9.
    pub labels: LabelRange,
}

/// The built-in datasets.
pub const BUILTIN_DATASETS: [BuiltinDataset; 2] = [
    BuiltinDataset {
        name: crate::builtin::MNIST_TEST,
        description: "MNIST test set, 10,000 handwritten digits 28x28 (Y. LeCun, C. Cortes, \
                      C. Burges; CC BY-SA 3.0)",
        samples: 10_000,
        shape: [1, 28, 28],
        labels: LabelRange { min: 0, max: 9 },
    },
    BuiltinDataset {
        name: crate::builtin::MNIST_TRAIN_5K,
        description: "The first 5,000 images of the MNIST training set, 28x28: the default \
                      calibration data of activation matching (Y. LeCun, C. Cortes, C. Burges; \
                      CC BY-SA 3.0)",
        samples: 5_000,
        shape: [1, 28, 28],
        labels: LabelRange { min: 0, max: 9 },
    },
];

/// The built-in dataset called `name`.
pub fn builtin_dataset(name: &str) -> Option<BuiltinDataset> {
    BUILTIN_DATASETS.into_iter().find(|d| d.name == name)
}

/// Tensor shapes by name.
pub fn shapes_of(tensors: &[TensorInfo]) -> BTreeMap<String, Vec<usize>> {
    tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect()
}

/// The architecture called `name`: a preset (shared by every tenant), else a custom one of
/// `tenant`.
///
/// # Errors
/// Database errors.
pub async fn architecture(db: &dyn Db, tenant: &str, name: &str) -> StoreResult<Option<ArchSpec>> {
    if let Ok(spec) = preset(name) {
        return Ok(Some(spec));
    }
    Ok(db.get_architecture(tenant, name).await?.map(|r| r.spec))
}

/// The architecture called `name` for a model with these tensor shapes: a shape-driven preset
/// (`mlp`) is built from them (or refused with the reason), anything else is [`architecture`].
///
/// # Errors
/// Database errors.
pub async fn architecture_for(
    db: &dyn Db,
    tenant: &str,
    name: &str,
    shapes: &BTreeMap<String, Vec<usize>>,
) -> StoreResult<Option<Result<ArchSpec, ArchError>>> {
    if SHAPE_DRIVEN.contains(&name) {
        return Ok(Some(preset_for(name, shapes)));
    }
    Ok(architecture(db, tenant, name).await?.map(Ok))
}

/// Every custom architecture of the tenant, by name (read a page at a time).
///
/// # Errors
/// Database errors.
pub async fn all_architectures(db: &dyn Db, tenant: &str) -> StoreResult<Vec<ArchSpec>> {
    const PAGE: u32 = 100;
    let mut out: Vec<ArchSpec> = Vec::new();
    loop {
        let after = out.last().map(|s| s.name.clone());
        let page = db
            .list_architectures(tenant, after.as_deref(), PAGE)
            .await?;
        let full = page.len() == PAGE as usize;
        out.extend(page.into_iter().map(|r| r.spec));
        if !full {
            return Ok(out);
        }
    }
}

/// The first architecture the tensors fit: fixed presets, then the tenant's custom ones by
/// name, then the generic shape-driven presets (`mlp`) as the last resort.
///
/// # Errors
/// Database errors.
pub async fn detect_architecture(
    db: &dyn Db,
    tenant: &str,
    tensors: &[TensorInfo],
) -> StoreResult<Option<String>> {
    let shapes = shapes_of(tensors);
    let custom = all_architectures(db, tenant).await?.into_iter();
    let shape_driven = SHAPE_DRIVEN
        .iter()
        .filter_map(|name| preset_for(name, &shapes).ok());
    Ok(presets()
        .into_iter()
        .chain(custom)
        .chain(shape_driven)
        .find(|spec| spec.check_shapes(&shapes).is_ok())
        .map(|spec| spec.name))
}

/// Whether an ONNX graph's architecture can be recorded under its derived name: nothing has
/// that name yet, or the architecture that has it is the same graph.
///
/// # Errors
/// Database errors.
pub async fn derived_name_free(db: &dyn Db, tenant: &str, spec: &ArchSpec) -> StoreResult<bool> {
    Ok(match db.get_architecture(tenant, &spec.name).await? {
        Some(r) => r.spec.first_difference(spec).is_none(),
        None => true,
    })
}

/// Record an ONNX graph's architecture (named by its content) unless the tenant has it; a
/// concurrent upload of the same graph recording it first is no error.
///
/// # Errors
/// Database errors.
pub async fn record_derived(db: &dyn Db, tenant: &str, spec: &ArchSpec) -> StoreResult<()> {
    if db.get_architecture(tenant, &spec.name).await?.is_some() {
        return Ok(());
    }
    match db.insert_architecture(tenant, spec).await {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The dataset a client names: a built-in name (shared) or the id of a dataset `tenant`
/// uploaded.
///
/// # Errors
/// Database errors.
pub async fn dataset_source(
    db: &dyn Db,
    tenant: &str,
    id: &str,
) -> StoreResult<Option<(DatasetSource, [usize; 3])>> {
    if let Some(b) = builtin_dataset(id) {
        return Ok(Some((
            DatasetSource::Builtin {
                name: b.name.to_string(),
            },
            b.shape,
        )));
    }
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    Ok(db.get_dataset(tenant, uuid).await?.map(|d| {
        let shape = d.shape;
        (DatasetSource::Uploaded(d), shape)
    }))
}

/// Why a dataset could not be loaded for a job.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{0}")]
    Invalid(String),
    #[error("unknown built-in dataset `{0}`")]
    UnknownBuiltin(String),
}

/// Parse uploaded dataset bytes (CPU work: call it on the compute pool).
///
/// # Errors
/// [`LoadError::Invalid`] with the engine's reason.
pub fn parse_dataset(
    name: &str,
    format: DatasetFormat,
    parts: &[Vec<u8>],
) -> Result<Dataset, LoadError> {
    match (format, parts) {
        (DatasetFormat::Idx, [images, labels]) => {
            Dataset::from_idx(name, images, labels).map_err(|e| LoadError::Invalid(e.to_string()))
        }
        (DatasetFormat::Safetensors, [file]) => {
            Dataset::from_safetensors(name, file).map_err(|e| LoadError::Invalid(e.to_string()))
        }
        _ => Err(LoadError::Invalid(format!(
            "a {} dataset has the wrong number of parts ({})",
            format.as_str(),
            parts.len()
        ))),
    }
}

/// Loaded datasets, kept in memory: each built-in one is decoded once per process.
#[derive(Default)]
pub struct DatasetCache {
    builtin: [OnceCell<Arc<Dataset>>; BUILTIN_DATASETS.len()],
}

impl DatasetCache {
    /// The dataset of a job, loading its blobs and parsing them on the blocking pool.
    ///
    /// # Errors
    /// Missing blobs, invalid content, or an unknown built-in name.
    pub async fn load(
        &self,
        blobs: &dyn BlobStore,
        source: &DatasetSource,
    ) -> Result<Arc<Dataset>, LoadError> {
        match source {
            DatasetSource::Builtin { name } => {
                let Some(k) = BUILTIN_DATASETS.iter().position(|b| b.name == name) else {
                    return Err(LoadError::UnknownBuiltin(name.clone()));
                };
                let name = BUILTIN_DATASETS[k].name;
                self.builtin[k]
                    .get_or_try_init(|| async move {
                        tokio::task::spawn_blocking(move || crate::builtin::builtin(name))
                            .await
                            .map_err(|e| LoadError::Invalid(format!("loading {name}: {e}")))?
                            .map(Arc::new)
                            .ok_or_else(|| LoadError::UnknownBuiltin(name.to_string()))
                    })
                    .await
                    .cloned()
            }
            DatasetSource::Uploaded(d) => {
                let mut parts = Vec::with_capacity(d.blobs.len());
                for sha in &d.blobs {
                    parts.push(blobs.get(sha).await?);
                }
                let (name, format) = (d.name.clone(), d.format);
                tokio::task::spawn_blocking(move || parse_dataset(&name, format, &parts))
                    .await
                    .map_err(|e| LoadError::Invalid(e.to_string()))?
                    .map(Arc::new)
            }
        }
    }
}
