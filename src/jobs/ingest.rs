//! Uploads into the catalog: a body is staged in the blob store (hashed, size-capped), validated
//! by the engine's rules, and only then committed and recorded — so a refused upload leaves no
//! blob, no temp file and no row.

use chrono::Utc;
use futures::StreamExt;
use uuid::Uuid;

use super::catalog;
use super::model_file::{self, ModelFileError};
use crate::engine::arch::{ArchError, ArchSpec};
use crate::engine::weights::{self, TensorInfo};
use crate::store::{
    BlobError, BlobStore, DatasetFormat, DatasetRecord, Db, LabelRange, ModelFormat, ModelRecord,
    NewModel, Staged, StoreError, TenantQuota, UploadStream,
};

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Safetensors(String),
    #[error("architecture `{0}` does not exist")]
    ArchitectureNotFound(String),
    #[error("the tensors do not fit architecture `{architecture}`: {source}")]
    Shapes {
        architecture: String,
        source: ArchError,
    },
    #[error("{0}")]
    Dataset(String),
    /// An ONNX model gmfuse cannot read: malformed (400) or unsupported (422).
    #[error(transparent)]
    Onnx(ModelFileError),
    /// An ONNX graph that is not the architecture named at upload.
    #[error(
        "the ONNX graph differs from architecture `{architecture}` (the first below; the graph \
         is the second): {difference}"
    )]
    GraphMismatch {
        architecture: String,
        difference: String,
    },
    /// The derived name of an ONNX graph's architecture is taken by another architecture.
    #[error(
        "architecture `{0}` exists with another graph: delete it or upload with \
         `architecture=<name>`"
    )]
    DerivedNameTaken(String),
}

/// What one upload may take: its own size, and the tenant's storage quota.
#[derive(Clone, Copy, Debug)]
pub struct UploadLimits {
    /// Largest body, bytes (`GMFUSE_MAX_UPLOAD_BYTES`).
    pub max_bytes: u64,
    pub quota: TenantQuota,
}

/// Read and validate a safetensors header (the tensors' names, dtypes and shapes), with the
/// engine's rules: offsets in bounds, no overlaps or holes, distinct names, known dtypes.
///
/// # Errors
/// The engine's reason, as text.
pub fn read_header(bytes: &[u8]) -> Result<Vec<TensorInfo>, String> {
    weights::inspect(bytes).map_err(|e| e.to_string())
}

/// What an upload says about its model: a name, the architecture to check it against, and
/// its format (`None`: told from the bytes).
#[derive(Clone, Debug, Default)]
pub struct ModelUpload {
    pub name: Option<String>,
    pub architecture: Option<String>,
    pub format: Option<ModelFormat>,
}

/// A staged model that passed the checks.
struct Checked {
    format: ModelFormat,
    tensors: Vec<TensorInfo>,
    architecture: Option<String>,
    /// An ONNX graph's architecture, to record under its derived name.
    derived: Option<ArchSpec>,
}

/// Stage, validate, commit and record a model. Returns the row and whether it is new (an
/// identical upload returns the existing row). An ONNX model's architecture is recorded as a
/// custom architecture of the tenant under its content-addressed name (see
/// [`model_file::derived_name`]), once the model is.
///
/// # Errors
/// Any [`IngestError`]; nothing is kept then.
pub async fn ingest_model(
    db: &dyn Db,
    blobs: &dyn BlobStore,
    tenant: &str,
    body: UploadStream<'_>,
    limits: UploadLimits,
    upload: ModelUpload,
) -> Result<(ModelRecord, bool), IngestError> {
    let staged = blobs.stage(body, limits.max_bytes).await?;
    let checked = match check_model(db, blobs, tenant, &staged, &upload).await {
        Ok(c) => c,
        Err(e) => {
            blobs.discard(staged).await;
            return Err(e);
        }
    };
    let new = NewModel {
        name: upload
            .name
            .unwrap_or_else(|| format!("model-{}", &staged.sha256[..12])),
        sha256: staged.sha256.clone(),
        size_bytes: staged.size,
        architecture: checked.architecture,
        format: checked.format,
        tensors: checked.tensors,
    };
    // Commit and record under the blob's lock: a delete of a model with the same bytes cannot
    // remove the blob between the two.
    let _lock = db.lock_blobs(&[&new.sha256]).await?;
    let sha256 = new.sha256.clone();
    blobs.commit(staged).await?;
    let inserted = match db.insert_model(tenant, new, &limits.quota).await {
        Ok(inserted) => inserted,
        Err(e) => {
            forget_unused(db, blobs, &[sha256]).await;
            return Err(e.into());
        }
    };
    if let Some(spec) = checked.derived {
        // Also when the model existed: an earlier upload that failed here is mended.
        catalog::record_derived(db, tenant, &spec).await?;
    }
    Ok(inserted)
}

async fn check_model(
    db: &dyn Db,
    blobs: &dyn BlobStore,
    tenant: &str,
    staged: &Staged,
    upload: &ModelUpload,
) -> Result<Checked, IngestError> {
    let format = match upload.format {
        Some(f) => f,
        None => sniff(blobs, staged).await?,
    };
    if format == ModelFormat::Onnx {
        return check_onnx(db, blobs, tenant, staged, upload.architecture.as_deref()).await;
    }
    let tensors = super::scan::scan_model(blobs, staged).await?;
    let architecture = match &upload.architecture {
        Some(name) => {
            let shapes = catalog::shapes_of(&tensors);
            catalog::architecture_for(db, tenant, name, &shapes)
                .await?
                .ok_or_else(|| IngestError::ArchitectureNotFound(name.clone()))?
                .and_then(|spec| spec.check_shapes(&shapes))
                .map_err(|source| IngestError::Shapes {
                    architecture: name.clone(),
                    source,
                })?;
            Some(name.clone())
        }
        None => catalog::detect_architecture(db, tenant, &tensors).await?,
    };
    Ok(Checked {
        format,
        tensors,
        architecture,
        derived: None,
    })
}

/// The format of a staged upload sent as `application/octet-stream`, from its first bytes.
async fn sniff(blobs: &dyn BlobStore, staged: &Staged) -> Result<ModelFormat, IngestError> {
    let mut stream = blobs.stream_staged(staged).await?;
    let mut head = Vec::new();
    while head.len() < SNIFF_BYTES {
        match stream.next().await {
            Some(chunk) => head.extend_from_slice(&chunk.map_err(BlobError::Io)?),
            None => break,
        }
    }
    Ok(model_file::detect(&head))
}

/// Bytes enough to tell the formats apart.
const SNIFF_BYTES: usize = 64;

/// Read a staged ONNX model (in memory: the upload cap bounds it) on the blocking pool; its
/// architecture is the graph's, or the one named at upload when the graph is that one.
async fn check_onnx(
    db: &dyn Db,
    blobs: &dyn BlobStore,
    tenant: &str,
    staged: &Staged,
    named: Option<&str>,
) -> Result<Checked, IngestError> {
    let bytes = blobs.read_staged(staged).await?;
    let model = tokio::task::spawn_blocking(move || model_file::read(ModelFormat::Onnx, &bytes))
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
        .map_err(IngestError::Onnx)?;
    let derived = model
        .architecture
        .expect("an ONNX model has an architecture");
    let tensors = model.weights.infos();
    let Some(name) = named else {
        if !catalog::derived_name_free(db, tenant, &derived).await? {
            return Err(IngestError::DerivedNameTaken(derived.name));
        }
        return Ok(Checked {
            format: ModelFormat::Onnx,
            tensors,
            architecture: Some(derived.name.clone()),
            derived: Some(derived),
        });
    };
    let spec = catalog::architecture_for(db, tenant, name, &model.weights.shapes())
        .await?
        .ok_or_else(|| IngestError::ArchitectureNotFound(name.to_string()))?
        .map_err(|source| IngestError::Shapes {
            architecture: name.to_string(),
            source,
        })?;
    if let Some(diff) = spec.first_difference(&derived) {
        return Err(IngestError::GraphMismatch {
            architecture: name.to_string(),
            difference: diff,
        });
    }
    Ok(Checked {
        format: ModelFormat::Onnx,
        tensors,
        architecture: Some(name.to_string()),
        derived: None,
    })
}

/// Stage, validate, commit and record a dataset from its parts (`[images, labels]` IDX or
/// `[file]` safetensors).
///
/// # Errors
/// Any [`IngestError`]; nothing is kept then.
pub async fn ingest_dataset(
    db: &dyn Db,
    blobs: &dyn BlobStore,
    tenant: &str,
    name: String,
    format: DatasetFormat,
    staged: Vec<Staged>,
    quota: &TenantQuota,
) -> Result<DatasetRecord, IngestError> {
    let data = match super::scan::scan_dataset(blobs, format, &staged).await {
        Ok(d) => d,
        Err(e) => {
            discard_all(blobs, staged).await;
            return Err(e);
        }
    };
    let record = DatasetRecord {
        id: Uuid::now_v7(),
        name,
        format,
        blobs: staged.iter().map(|s| s.sha256.clone()).collect(),
        samples: data.samples,
        shape: data.shape,
        size_bytes: staged.iter().map(|s| s.size).sum(),
        labels: Some(LabelRange {
            min: data.min_label,
            max: data.max_label,
        }),
        created_at: Utc::now(),
    };
    let shas: Vec<&str> = record.blobs.iter().map(String::as_str).collect();
    let _lock = db.lock_blobs(&shas).await?;
    for s in staged {
        blobs.commit(s).await?;
    }
    if let Err(e) = db.insert_dataset(tenant, &record, quota).await {
        forget_unused(db, blobs, &record.blobs).await;
        return Err(e.into());
    }
    Ok(record)
}

/// After a refused insert (a quota, a database error), remove the blobs just committed that no
/// row names. Called under the blobs' lock; a failure only leaves an unreferenced blob.
async fn forget_unused(db: &dyn Db, blobs: &dyn BlobStore, sha256s: &[String]) {
    for sha in sha256s {
        if matches!(db.blob_in_use(sha).await, Ok(false)) {
            let _ = blobs.delete(sha).await;
        }
    }
}

async fn discard_all(blobs: &dyn BlobStore, staged: Vec<Staged>) {
    for s in staged {
        blobs.discard(s).await;
    }
}

/// Check a custom architecture without weights: a usable name, then
/// [`ArchSpec::check_without_weights`] (wiring, distinct tensor names, a weighted layer, ops in
/// an order that can work).
///
/// # Errors
/// The reason, as text.
pub fn check_architecture(spec: &ArchSpec) -> Result<(), String> {
    let name_ok = !spec.name.is_empty()
        && spec.name.len() <= 64
        && spec
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if !name_ok {
        return Err(format!(
            "name `{}` must be 1-64 characters of a-z, 0-9, `-`, `_` or `.`",
            spec.name
        ));
    }
    spec.check_without_weights()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::arch::{Op, preset};

    #[test]
    fn the_preset_passes_the_weightless_check() {
        assert_eq!(check_architecture(&preset("mnist-cnn").unwrap()), Ok(()));
    }

    #[test]
    fn a_linear_before_flatten_is_refused() {
        let mut spec = preset("mnist-cnn").unwrap();
        spec.name = "broken".into();
        spec.ops.retain(|n| !matches!(n.op, Op::Flatten {}));
        let err = check_architecture(&spec).unwrap_err();
        assert!(err.contains("flatten"), "{err}");
    }

    #[test]
    fn a_name_with_spaces_is_refused() {
        let mut spec = preset("mnist-cnn").unwrap();
        spec.name = "my net".into();
        assert!(check_architecture(&spec).unwrap_err().contains("name"));
    }

    #[test]
    fn a_tensor_used_twice_is_refused() {
        let mut spec = preset("mnist-cnn").unwrap();
        spec.name = "twice".into();
        if let Op::Linear { weight, .. } = &mut spec.ops[10].op {
            *weight = "fc1.weight".into();
        }
        let err = check_architecture(&spec).unwrap_err();
        assert!(err.contains("fc1.weight"), "{err}");
    }
}
