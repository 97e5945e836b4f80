//! How the domain's errors become [`ApiError`]s: bad input maps to a 4xx with a stable code,
//! storage failures to a 5xx whose detail stays in the log.

use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;

use super::error::ApiError;
use crate::engine::arch::ArchError;
use crate::jobs::SubmitError;
use crate::jobs::fused::FusedError;
use crate::jobs::ingest::IngestError;
use crate::jobs::remove::RemoveError;
use crate::store::{BlobError, StoreError};

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::Conflict {
                code: "already_exists",
                detail: format!("{what} already exists"),
            },
            StoreError::Missing { what, id } => ApiError::not_found(what, id),
            StoreError::InUse { .. } => ApiError::Conflict {
                code: "in_use",
                detail: e.to_string(),
            },
            StoreError::QuotaExceeded(q) => super::limits::quota_error(q),
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::Corrupt(_)
            | StoreError::Unsupported(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
            BlobError::Body(reason) => ApiError::UploadInterrupted(reason),
            BlobError::Io(ref io) if crate::store::disk::is_storage_full(io) => {
                ApiError::InsufficientStorage(e.to_string())
            }
            BlobError::NotFound(_) | BlobError::Io(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Blob(b) => b.into(),
            IngestError::Store(s) => s.into(),
            IngestError::Safetensors(reason) => ApiError::InvalidSafetensors(reason),
            IngestError::ArchitectureNotFound(_) => ApiError::InvalidArchitecture(e.to_string()),
            IngestError::Shapes {
                source: ArchError::Limit { .. },
                ..
            } => ApiError::InvalidArchitecture(e.to_string()),
            IngestError::Shapes { .. } => ApiError::ShapeMismatch(e.to_string()),
            IngestError::Dataset(reason) => ApiError::InvalidDataset(reason),
            IngestError::Onnx(ref m) if m.is_unsupported() => {
                ApiError::UnsupportedOnnx(e.to_string())
            }
            IngestError::Onnx(_) => ApiError::InvalidOnnx(e.to_string()),
            IngestError::GraphMismatch { .. } => ApiError::ArchitectureMismatch(e.to_string()),
            IngestError::DerivedNameTaken(_) => ApiError::Conflict {
                code: "already_exists",
                detail: e.to_string(),
            },
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::ModelNotFound(id) => ApiError::not_found("model", id),
            SubmitError::ArchitectureNotFound(ref name) => {
                ApiError::not_found("architecture", name)
            }
            SubmitError::DatasetNotFound(ref id) => ApiError::not_found("dataset", id),
            SubmitError::ModelCount(_) => ApiError::InvalidBody(e.to_string()),
            SubmitError::DuplicateModel(_) => ApiError::InvalidParameters(e.to_string()),
            SubmitError::ArchitectureMismatch(_) => ApiError::ArchitectureMismatch(e.to_string()),
            SubmitError::Shapes {
                source: ArchError::Limit { .. },
                ..
            } => ApiError::InvalidArchitecture(e.to_string()),
            SubmitError::Shapes { .. } => ApiError::ShapeMismatch(e.to_string()),
            SubmitError::DatasetShape { .. } => ApiError::DatasetShapeMismatch(e.to_string()),
            SubmitError::Params(p) => ApiError::InvalidParameters(p.to_string()),
            SubmitError::CalibrationIsScored(_) => ApiError::InvalidParameters(e.to_string()),
            SubmitError::Repair(_) | SubmitError::Unsupported(_) => {
                ApiError::InvalidParameters(e.to_string())
            }
            SubmitError::CalibrationShape { .. } => ApiError::DatasetShapeMismatch(e.to_string()),
            SubmitError::OverBudget(detail) => ApiError::JobOverBudget(detail),
            SubmitError::DatasetLabels(detail) => ApiError::DatasetShapeMismatch(detail),
            SubmitError::QueueFull { .. } => ApiError::Busy {
                code: "queue_full",
                detail: e.to_string(),
                retry_after: 5,
            },
            SubmitError::Store(s) => s.into(),
        }
    }
}

impl From<RemoveError> for ApiError {
    fn from(e: RemoveError) -> Self {
        match e {
            RemoveError::Store(s) => s.into(),
            RemoveError::Blob(b) => b.into(),
            RemoveError::JobActive(..) => ApiError::Conflict {
                code: "job_active",
                detail: e.to_string(),
            },
        }
    }
}

impl From<FusedError> for ApiError {
    fn from(e: FusedError) -> Self {
        match e {
            FusedError::NotSucceeded(_) => ApiError::Conflict {
                code: "job_not_succeeded",
                detail: e.to_string(),
            },
            FusedError::NoMatching { .. } => ApiError::Conflict {
                code: "no_matching",
                detail: e.to_string(),
            },
            FusedError::Store(s) => s.into(),
            FusedError::Blob(b) => b.into(),
            FusedError::NotOnnx(_) => ApiError::InvalidParameters(e.to_string()),
            FusedError::Weights(_)
            | FusedError::ModelFile(_)
            | FusedError::OnnxWrite(_)
            | FusedError::Pipeline(_)
            | FusedError::Compute(_)
            | FusedError::Calibration(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// A multipart form that could not be read (a dataset upload, a model with its external data):
/// 413 past the body limit `limit`, else the upload was cut off or malformed.
pub fn multipart_error(e: MultipartError, limit: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::UploadInterrupted(e.body_text())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn a_full_disk_is_507_insufficient_storage_and_other_io_errors_500() {
        let full = ApiError::from(BlobError::Io(std::io::Error::from_raw_os_error(28)));
        assert_eq!(
            full.status_and_code(),
            (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
        );
        let res = full.into_response();
        assert_eq!(res.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let other = ApiError::from(BlobError::Io(std::io::Error::from_raw_os_error(5)));
        assert_eq!(other.status_and_code().1, "internal_error");
        let fused = ApiError::from(FusedError::Blob(BlobError::Io(
            std::io::ErrorKind::StorageFull.into(),
        )));
        assert_eq!(fused.status_and_code().1, "insufficient_storage");
    }
}
