//! The records the stores keep: models, architectures, datasets, jobs and their attempts.
//! Backend-neutral plain data; each backend maps its rows to these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::engine::arch::ArchSpec;
use crate::engine::weights::TensorInfo;

mod jobs;

pub use jobs::*;

/// An uploaded model (its bytes are the blob `sha256`).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRecord {
    pub id: Uuid,
    pub name: String,
    pub sha256: String,
    pub size_bytes: u64,
    /// The architecture the tensors fit (given at upload or detected; derived from the graph
    /// for ONNX), if any.
    pub architecture: Option<String>,
    pub format: ModelFormat,
    pub tensors: Vec<TensorInfo>,
    pub created_at: DateTime<Utc>,
}

/// A model to insert.
#[derive(Clone, Debug)]
pub struct NewModel {
    pub name: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub architecture: Option<String>,
    pub format: ModelFormat,
    pub tensors: Vec<TensorInfo>,
}

/// How an uploaded model's file is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// Tensors only; the architecture is named or detected from their shapes.
    #[default]
    Safetensors,
    /// An ONNX model: the graph gives the architecture, its initializers the tensors.
    Onnx,
}

impl ModelFormat {
    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFormat::Safetensors => "safetensors",
            ModelFormat::Onnx => "onnx",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "safetensors" => Some(ModelFormat::Safetensors),
            "onnx" => Some(ModelFormat::Onnx),
            _ => None,
        }
    }

    /// The media type of a file of this format.
    pub fn media_type(self) -> &'static str {
        match self {
            ModelFormat::Safetensors => "application/octet-stream",
            ModelFormat::Onnx => "application/onnx",
        }
    }

    /// A file name's extension for this format (no dot).
    pub fn extension(self) -> &'static str {
        self.as_str()
    }
}

/// A stored custom architecture.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchitectureRecord {
    pub spec: ArchSpec,
    pub created_at: DateTime<Utc>,
}

/// How an uploaded dataset is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// Two blobs: IDX images, IDX labels (raw or gzipped).
    Idx,
    /// One blob: a safetensors file with `images` and `labels`.
    Safetensors,
}

impl DatasetFormat {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetFormat::Idx => "idx",
            DatasetFormat::Safetensors => "safetensors",
        }
    }
}

/// An uploaded evaluation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub id: Uuid,
    pub name: String,
    pub format: DatasetFormat,
    /// Blob hashes: `[images, labels]` for IDX, `[file]` for safetensors.
    pub blobs: Vec<String>,
    pub samples: u64,
    /// One sample's `[C, H, W]`.
    pub shape: [usize; 3],
    pub size_bytes: u64,
    /// The smallest and largest label, found by the scan at upload; absent in rows stored
    /// before it was recorded (the worker checks those when it loads them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelRange>,
    pub created_at: DateTime<Utc>,
}

/// The smallest and largest label of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelRange {
    pub min: u32,
    pub max: u32,
}

/// Which dataset a job evaluates on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DatasetSource {
    /// A dataset compiled into the binary, by name (`mnist-test`).
    Builtin { name: String },
    /// An uploaded dataset.
    Uploaded(DatasetRecord),
}

impl DatasetSource {
    /// The dataset's id as clients name it.
    pub fn id(&self) -> String {
        match self {
            DatasetSource::Builtin { name } => name.clone(),
            DatasetSource::Uploaded(d) => d.id.to_string(),
        }
    }
}
