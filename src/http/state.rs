//! The state every handler shares: one cheap-to-clone [`AppState`].

use std::ops::Deref;
use std::sync::Arc;

use super::auth::AuthSettings;
use crate::jobs::Jobs;
use crate::store::{BlobStore, Db};

/// What the handlers can reach.
pub struct App {
    /// Catalog and job queue.
    pub db: Arc<dyn Db>,
    /// Model, dataset and output bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Submission, cancel, fused weights and the workers' shared state.
    pub jobs: Jobs,
    /// How callers are authenticated.
    pub auth: AuthSettings,
    /// Per-tenant request rate and quotas.
    pub limits: super::limits::TenantLimits,
    /// How long a served `Idempotency-Key` is remembered.
    pub idempotency_retention: std::time::Duration,
    /// After how long a key whose first request never finished is given up.
    pub idempotency_stale: std::time::Duration,
    /// The data directory (its free space decides readiness).
    pub data_dir: std::path::PathBuf,
    /// Free bytes under which the service is not ready.
    pub min_free_bytes: u64,
    /// Largest accepted upload, bytes.
    pub max_upload_bytes: u64,
    /// Uploads received at once.
    pub upload_slots: super::slots::UploadSlots,
    /// Fires when the service shuts down (event streams end then).
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Shared handle to [`App`].
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
