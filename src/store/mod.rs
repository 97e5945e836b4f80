//! Persistence: the database ([`Db`]: catalog + job queue) and the blob store ([`BlobStore`]),
//! each one trait behind an `Arc<dyn …>` so that the API and the workers never know which
//! backend runs. Built in: SQLite ([`sqlite`], the default) or PostgreSQL ([`postgres`]) for
//! the database; a local directory ([`local`], the default) or an S3-compatible object store
//! ([`s3`]) for blobs.

pub mod blob;
pub mod db;
pub mod disk;
pub mod local;
pub mod lock;
pub mod postgres;
pub mod quota;
pub mod records;
pub mod rows;
pub mod s3;
pub mod sqlite;

#[cfg(test)]
mod conformance;

use std::sync::Arc;

use anyhow::Context;

pub use blob::{BlobError, BlobStore, ByteStream, Staged, UploadStream};
pub use db::{CatalogStore, Db, IdempotencyStore, JobStore, KeyStore, StoreError, StoreResult};
pub use lock::BlobLock;
pub use quota::{QuotaExceeded, QuotaKind, TenantQuota};
pub use records::*;

use crate::config::Config;

/// Open the database named by the configuration (without migrating).
///
/// # Errors
/// An unsupported URL or a database that cannot be opened.
pub async fn open_db(config: &Config) -> anyhow::Result<Arc<dyn Db>> {
    let url = config.database_url();
    if url.expose().starts_with("sqlite:") {
        tokio::fs::create_dir_all(&config.data_dir)
            .await
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let db = sqlite::SqliteDb::connect(url.expose())
            .await
            .with_context(|| format!("opening {}", url.redacted()))?;
        Ok(Arc::new(db))
    } else if url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://") {
        let db = postgres::PgDb::connect(url.expose())
            .await
            .with_context(|| format!("connecting to {}", url.redacted()))?;
        Ok(Arc::new(db))
    } else {
        Err(StoreError::Unsupported(url.redacted()).into())
    }
}

/// Open the blob store of the configuration: `GMFUSE_BLOB_URL` `s3://bucket/prefix` (with the
/// `AWS_*` settings), `file:///dir`, or by default the data directory.
///
/// # Errors
/// An unsupported URL, invalid S3 settings, or a blob directory that cannot be created.
pub async fn open_blobs(config: &Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    let dir = match config.blob_url.as_deref() {
        Some(url) if url.starts_with("s3://") => {
            let settings = s3::S3Settings {
                url: url.to_string(),
                endpoint: config.aws_endpoint_url.clone(),
                region: config.aws_region.clone(),
                access_key_id: config.aws_access_key_id.clone(),
                secret_access_key: config.aws_secret_access_key.clone(),
                allow_http: config.aws_allow_http,
            };
            let store = s3::S3BlobStore::open(&settings)
                .with_context(|| format!("opening the blob store {url}"))?;
            return Ok(Arc::new(store));
        }
        Some(url) if url.starts_with("file://") => {
            std::path::PathBuf::from(url.trim_start_matches("file://"))
        }
        Some(url) => anyhow::bail!("unsupported blob URL {url:?} (expected s3:// or file://)"),
        None => config.data_dir.clone(),
    };
    let store = local::LocalBlobStore::open(&dir)
        .await
        .with_context(|| format!("opening the blob store in {}", dir.display()))?;
    Ok(Arc::new(store))
}
