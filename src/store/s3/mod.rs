//! [`BlobStore`] on an S3-compatible object store (AWS S3, MinIO, moto, …) through
//! `object_store`.
//!
//! Layout under the configured prefix: `<prefix>/blobs/<sha256>` for content and
//! `<prefix>/staging/<uuid>` for uploads waiting for validation.
//!
//! - [`BlobStore::stage`] streams the body while hashing and counting. A body that fits in one
//!   part ([`S3BlobStore::part_size`], 5 MiB by default) is sent with one `PUT`; a larger one
//!   goes through a multipart upload, at most [`MAX_PARTS_IN_FLIGHT`] parts at a time. Over the
//!   limit, on a body error, on a store error, or when the upload future is dropped (a timeout, a
//!   disconnect), the multipart upload is aborted: S3 never shows an unfinished multipart upload
//!   as an object, so no partial object is ever visible.
//! - [`BlobStore::commit`] copies the staging object to its content key (server side) and
//!   deletes the staging object. With `AWS_COPY_IF_NOT_EXISTS` configured the copy is
//!   conditional; otherwise a `HEAD` skips the copy when the blob exists already. Two writers
//!   racing on the same key write identical bytes, and a copy replaces an object atomically, so
//!   a reader sees either nothing or the whole blob.
//! - [`BlobStore::clean_staging`] deletes staging objects older than
//!   [`S3BlobStore::staging_grace`] (one hour by default), so that one replica starting does not
//!   remove the uploads another replica is validating. `object_store` has no call to list
//!   multipart uploads, so parts left by a process killed mid-upload are not visible from here:
//!   they are never readable as objects, and a bucket lifecycle rule
//!   (`AbortIncompleteMultipartUpload`) reclaims their space.

mod abort;
pub mod moto;
mod settings;

pub use settings::{S3ConfigError, S3Settings, parse_s3_url};

use abort::AbortOnDrop;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::blob::{BlobError, BlobStore, ByteStream, Staged, UploadStream, is_sha256};

/// Bytes per multipart part (S3 requires at least 5 MiB for every part but the last).
pub const DEFAULT_PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts of one upload sent at the same time.
pub const MAX_PARTS_IN_FLIGHT: usize = 4;

/// Age under which [`BlobStore::clean_staging`] leaves a staging object alone.
pub const DEFAULT_STAGING_GRACE: Duration = Duration::from_secs(3600);

/// How long [`BlobStore::ready`] waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Blobs in an S3 bucket under a prefix.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: Path,
    part_size: usize,
    staging_grace: Duration,
}

impl S3BlobStore {
    /// A client for the bucket of `settings.url`. Settings not given fall back to the standard
    /// `AWS_*` environment (session token, web identity, instance credentials, …). Nothing is
    /// sent before the first operation.
    ///
    /// # Errors
    /// A malformed URL or an invalid client setting.
    pub fn open(settings: &S3Settings) -> Result<Self, S3ConfigError> {
        let (bucket, prefix) = parse_s3_url(&settings.url)?;
        // The whole-request timeout would cut long downloads to slow clients: bound each read
        // instead.
        let client = ClientOptions::new()
            .with_timeout_disabled()
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(Duration::from_secs(60))
            .with_allow_http(settings.allow_http);
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_client_options(client)
            .with_allow_http(settings.allow_http)
            .with_retry(RetryConfig {
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(id) = &settings.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        Ok(S3BlobStore {
            store: Arc::new(builder.build()?),
            bucket,
            prefix: Path::from(prefix.as_str()),
            part_size: DEFAULT_PART_SIZE,
            staging_grace: DEFAULT_STAGING_GRACE,
        })
    }

    /// Use parts of `bytes` (at least 5 MiB on AWS; bodies up to this size take one `PUT`).
    #[must_use]
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    /// Let [`BlobStore::clean_staging`] remove staging objects older than `grace`.
    #[must_use]
    pub fn with_staging_grace(mut self, grace: Duration) -> Self {
        self.staging_grace = grace;
        self
    }

    /// Bytes per multipart part.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// Age under which staging objects survive [`BlobStore::clean_staging`].
    pub fn staging_grace(&self) -> Duration {
        self.staging_grace
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix of committed blobs.
    pub fn blob_prefix(&self) -> Path {
        self.prefix.clone().join("blobs")
    }

    /// The key prefix of staged uploads.
    pub fn staging_prefix(&self) -> Path {
        self.prefix.clone().join("staging")
    }

    /// The `object_store` client (tests look inside the bucket with it).
    pub fn object_store(&self) -> &Arc<AmazonS3> {
        &self.store
    }

    fn blob_path(&self, sha256: &str) -> Result<Path, BlobError> {
        if !is_sha256(sha256) {
            return Err(BlobError::NotFound(sha256.to_string()));
        }
        Ok(self.blob_prefix().join(sha256))
    }

    fn staged_path(&self, key: &str) -> Path {
        self.staging_prefix().join(key)
    }

    async fn upload(
        &self,
        path: &Path,
        body: UploadStream<'_>,
        limit: u64,
    ) -> Result<(String, u64), BlobError> {
        let mut multipart = None;
        let result = self.upload_into(path, body, limit, &mut multipart).await;
        if result.is_err()
            && let Some(upload) = multipart
        {
            upload.abort().await;
        }
        result
    }

    async fn upload_into(
        &self,
        path: &Path,
        mut body: UploadStream<'_>,
        limit: u64,
        multipart: &mut Option<AbortOnDrop>,
    ) -> Result<(String, u64), BlobError> {
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        // Chunks held back until they fill one part: small bodies never start a multipart upload.
        let mut pending: Vec<Bytes> = Vec::new();
        let mut pending_len = 0usize;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
            size = size.saturating_add(chunk.len() as u64);
            if size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            if let Some(upload) = multipart.as_mut() {
                let writer = upload.writer();
                writer
                    .wait_for_capacity(MAX_PARTS_IN_FLIGHT)
                    .await
                    .map_err(store_err)?;
                writer.put(chunk);
                continue;
            }
            pending_len += chunk.len();
            pending.push(chunk);
            if pending_len > self.part_size {
                let upload = self.store.put_multipart(path).await.map_err(store_err)?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
                for chunk in pending.drain(..) {
                    writer.put(chunk);
                }
                *multipart = Some(AbortOnDrop(Some(writer)));
            }
        }
        match multipart.as_mut() {
            Some(upload) => {
                // `finish` aborts the upload itself when a part or the completion fails.
                upload.take().finish().await.map_err(store_err)?;
            }
            None => {
                let payload: PutPayload = pending.into_iter().collect();
                self.store.put(path, payload).await.map_err(store_err)?;
            }
        }
        Ok((hex::encode(hasher.finalize()), size))
    }

    async fn delete_path(&self, path: &Path) -> Result<(), BlobError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn exists(&self, path: &Path) -> Result<bool, BlobError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }
}

fn store_err(e: object_store::Error) -> BlobError {
    BlobError::Io(io::Error::other(e))
}

fn not_found_or(sha256: &str) -> impl Fn(object_store::Error) -> BlobError + '_ {
    move |e| match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound(sha256.to_string()),
        e => store_err(e),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn stage(&self, body: UploadStream<'_>, limit: u64) -> Result<Staged, BlobError> {
        let key = Uuid::new_v4().to_string();
        let path = self.staged_path(&key);
        let (sha256, size) = self.upload(&path, body, limit).await?;
        Ok(Staged { key, sha256, size })
    }

    async fn read_staged(&self, staged: &Staged) -> Result<Vec<u8>, BlobError> {
        let result = self
            .store
            .get(&self.staged_path(&staged.key))
            .await
            .map_err(not_found_or(&staged.key))?;
        Ok(result.bytes().await.map_err(store_err)?.to_vec())
    }

    async fn stream_staged(&self, staged: &Staged) -> Result<ByteStream, BlobError> {
        let result = self
            .store
            .get(&self.staged_path(&staged.key))
            .await
            .map_err(not_found_or(&staged.key))?;
        Ok(result.into_stream().map_err(io::Error::from).boxed())
    }

    async fn commit(&self, staged: Staged) -> Result<(), BlobError> {
        let from = self.staged_path(&staged.key);
        let to = self.blob_path(&staged.sha256)?;
        match self.store.copy_if_not_exists(&from, &to).await {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(object_store::Error::NotSupported { .. }) => {
                if !self.exists(&to).await? {
                    self.store
                        .copy(&from, &to)
                        .await
                        .map_err(not_found_or(&staged.key))?;
                }
            }
            Err(e) => return Err(not_found_or(&staged.key)(e)),
        }
        self.delete_path(&from).await
    }

    async fn discard(&self, staged: Staged) {
        if let Err(e) = self.delete_path(&self.staged_path(&staged.key)).await {
            tracing::warn!(key = %staged.key, error = %e, "discarding a staged upload failed");
        }
    }

    async fn put(&self, bytes: Vec<u8>) -> Result<String, BlobError> {
        let size = bytes.len() as u64;
        let body: ByteStream = futures::stream::once(async { Ok(bytes.into()) }).boxed();
        let staged = self.stage(body, size).await?;
        let sha = staged.sha256.clone();
        self.commit(staged).await?;
        Ok(sha)
    }

    async fn get(&self, sha256: &str) -> Result<Vec<u8>, BlobError> {
        let result = self
            .store
            .get(&self.blob_path(sha256)?)
            .await
            .map_err(not_found_or(sha256))?;
        Ok(result.bytes().await.map_err(store_err)?.to_vec())
    }

    async fn stream(&self, sha256: &str) -> Result<(ByteStream, u64), BlobError> {
        let result = self
            .store
            .get(&self.blob_path(sha256)?)
            .await
            .map_err(not_found_or(sha256))?;
        let size = result.meta.size;
        let stream = result.into_stream().map_err(io::Error::from).boxed();
        Ok((stream, size))
    }

    async fn delete(&self, sha256: &str) -> Result<(), BlobError> {
        self.delete_path(&self.blob_path(sha256)?).await
    }

    async fn clean_staging(&self) -> Result<usize, BlobError> {
        let grace = chrono::Duration::from_std(self.staging_grace).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = chrono::Utc::now().checked_sub_signed(grace) else {
            return Ok(0);
        };
        let old: Vec<Path> = self
            .store
            .list(Some(&self.staging_prefix()))
            .try_filter(|meta| futures::future::ready(meta.last_modified <= cutoff))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(store_err)?;
        for path in &old {
            self.delete_path(path).await?;
        }
        Ok(old.len())
    }

    async fn ready(&self) -> bool {
        // One list request of at most one page: the bucket answers and the credentials hold.
        let probe = async {
            let staging = self.staging_prefix();
            let mut listing = self.store.list(Some(&staging));
            !matches!(listing.next().await, Some(Err(_)))
        };
        tokio::time::timeout(READY_TIMEOUT, probe)
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests;
