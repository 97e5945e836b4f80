//! Validation of staged uploads as streams, so that an upload's memory does not grow with its
//! size: a model is checked chunk by chunk by the engine's [`StreamCheck`] (header, layout and
//! every weight finite), a dataset by the engine's streaming IDX / safetensors scans on the
//! blocking pool, reading the staged bytes through a bridge from the blob store's stream.

use futures::StreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::ingest::IngestError;
use crate::engine::eval::{self, DatasetInfo};
use crate::engine::weights::{StreamCheck, TensorInfo};
use crate::store::{BlobError, BlobStore, DatasetFormat, Staged};

/// Check a staged safetensors model; returns its tensors by name.
///
/// # Errors
/// [`IngestError::Safetensors`] with the engine's reason; blob store errors.
pub async fn scan_model(
    blobs: &dyn BlobStore,
    staged: &Staged,
) -> Result<Vec<TensorInfo>, IngestError> {
    let mut stream = blobs.stream_staged(staged).await?;
    let mut check = StreamCheck::new(staged.size);
    let mut fed = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BlobError::Io)?;
        fed += chunk.len() as u64;
        if fed > staged.size {
            return Err(BlobError::Io(std::io::Error::other("the staged blob grew")).into());
        }
        check
            .feed(&chunk)
            .map_err(|e| IngestError::Safetensors(e.to_string()))?;
    }
    if fed != staged.size {
        return Err(BlobError::Io(std::io::Error::other("the staged blob is short")).into());
    }
    check
        .finish()
        .map_err(|e| IngestError::Safetensors(e.to_string()))
}

/// Check a staged dataset (`[images, labels]` IDX or `[file]` safetensors).
///
/// # Errors
/// [`IngestError::Dataset`] with the engine's reason; blob store errors.
pub async fn scan_dataset(
    blobs: &dyn BlobStore,
    format: DatasetFormat,
    staged: &[Staged],
) -> Result<DatasetInfo, IngestError> {
    let mut readers = Vec::with_capacity(staged.len());
    for s in staged {
        let stream = blobs.stream_staged(s).await?;
        readers.push(SyncIoBridge::new(StreamReader::new(stream)));
    }
    let sizes: Vec<u64> = staged.iter().map(|s| s.size).collect();
    let scanned = tokio::task::spawn_blocking(move || {
        let mut readers = readers.into_iter();
        match (format, readers.next(), readers.next(), readers.next()) {
            (DatasetFormat::Idx, Some(images), Some(labels), None) => {
                eval::scan_idx(images, labels).map_err(reason)
            }
            (DatasetFormat::Safetensors, Some(file), None, None) => {
                eval::scan_safetensors(file, sizes[0]).map_err(reason)
            }
            _ => Err(format!(
                "a {} dataset has the wrong number of parts ({})",
                format.as_str(),
                sizes.len()
            )),
        }
    })
    .await
    .map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
    scanned.map_err(IngestError::Dataset)
}

fn reason(e: eval::EvalError) -> String {
    match e {
        eval::EvalError::Invalid(r) => r,
        other => other.to_string(),
    }
}
