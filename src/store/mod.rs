//! Persistence: the database ([`Db`]: catalog + job queue) and the blob store ([`BlobStore`]),
//! each one trait behind an `Arc<dyn …>` so that the API and the workers never know which
//! backend runs. Built in: SQLite ([`sqlite`], the default) or PostgreSQL ([`postgres`]), and
//! a local directory ([`local`]).

pub mod blob;
pub mod db;
pub mod local;
pub mod postgres;
pub mod records;
pub mod sqlite;

use std::sync::Arc;

use anyhow::Context;

pub use blob::{BlobError, BlobStore, ByteStream, Staged, UploadStream};
pub use db::{CatalogStore, Db, JobStore, StoreError, StoreResult};
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

/// Open the blob store of the configuration.
///
/// # Errors
/// When the blob directory cannot be created.
pub async fn open_blobs(config: &Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    let store = local::LocalBlobStore::open(&config.data_dir)
        .await
        .with_context(|| format!("opening the blob store in {}", config.data_dir.display()))?;
    Ok(Arc::new(store))
}
