//! The blob interface: content-addressed bytes (model weights, datasets, fused outputs) keyed
//! by their sha256, behind one `Arc<dyn BlobStore>`.
//!
//! Uploads go through a staging step so that validation happens before anything is visible:
//! [`BlobStore::stage`] streams a body into a private staging object while hashing and counting,
//! then the caller validates the staged bytes and either [`BlobStore::commit`]s (the blob becomes
//! visible under its hash, atomically; identical content is stored once) or
//! [`BlobStore::discard`]s. The local directory implements this with temp files and `rename`;
//! an S3 backend can use a multipart upload under a staging prefix and a copy.

use std::io;

use async_trait::async_trait;
use axum::body::Bytes;
use futures::stream::BoxStream;

/// A body being downloaded.
pub type ByteStream = BoxStream<'static, Result<Bytes, io::Error>>;

/// A body being uploaded (it may borrow the request, as a multipart field does).
pub type UploadStream<'a> = BoxStream<'a, Result<Bytes, io::Error>>;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The upload passed the size cap (the staged part was removed).
    #[error("upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The client's body failed midway (the staged part was removed).
    #[error("upload interrupted: {0}")]
    Body(String),
    #[error("blob {0} not found")]
    NotFound(String),
    /// The store itself failed.
    #[error("blob storage: {0}")]
    Io(#[from] io::Error),
}

/// An upload held in staging: not visible to readers until committed.
#[derive(Debug, PartialEq, Eq)]
pub struct Staged {
    /// The backend's handle of the staging object.
    pub key: String,
    /// Lower-case hex sha256 of the content.
    pub sha256: String,
    pub size: u64,
}

/// Content-addressed blob storage.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// `local` or `s3`.
    fn backend(&self) -> &'static str;
    /// Stream `body` into staging, hashing as it goes; fails with [`BlobError::TooLarge`] as
    /// soon as more than `limit` bytes arrive.
    async fn stage(&self, body: UploadStream<'_>, limit: u64) -> Result<Staged, BlobError>;
    /// The staged bytes, for validation.
    async fn read_staged(&self, staged: &Staged) -> Result<Vec<u8>, BlobError>;
    /// The staged bytes as a stream of chunks (validation in bounded memory).
    async fn stream_staged(&self, staged: &Staged) -> Result<ByteStream, BlobError>;
    /// Make the staged content visible under its sha256 (a no-op copy when it exists already).
    async fn commit(&self, staged: Staged) -> Result<(), BlobError>;
    /// Drop a staged upload.
    async fn discard(&self, staged: Staged);
    /// Store bytes produced by the service; returns their sha256.
    async fn put(&self, bytes: Vec<u8>) -> Result<String, BlobError>;
    /// The whole blob.
    async fn get(&self, sha256: &str) -> Result<Vec<u8>, BlobError>;
    /// The blob as a stream, with its size.
    async fn stream(&self, sha256: &str) -> Result<(ByteStream, u64), BlobError>;
    /// Remove a blob (no error when it is already gone).
    async fn delete(&self, sha256: &str) -> Result<(), BlobError>;
    /// Remove staged uploads left by a process that died; returns how many.
    async fn clean_staging(&self) -> Result<usize, BlobError>;
    /// True when the store can be written.
    async fn ready(&self) -> bool;
}

/// True for a lower-case hex sha256 (the only keys a store accepts).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
