//! [`BlobStore`] on a local directory: `blobs/<2 hex>/<sha256>` for content and `tmp/` for
//! uploads in flight. A blob is written to `tmp/`, fsynced, then renamed into place and its
//! directory fsynced, so a reader never sees a partial file and a crash leaves only `tmp/` debris,
//! which [`BlobStore::clean_staging`] removes at start.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::fs;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::blob::{BlobError, BlobStore, ByteStream, Staged, UploadStream, is_sha256};

/// Chunk size of streamed reads.
const READ_CHUNK: usize = 1 << 20;

/// Blobs in a directory.
#[derive(Clone, Debug)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Use (and create) `root/blobs` and `root/tmp`.
    ///
    /// # Errors
    /// When the directories cannot be created.
    pub async fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("blobs")).await?;
        fs::create_dir_all(root.join("tmp")).await?;
        Ok(LocalBlobStore { root })
    }

    /// Where uploads in flight are written.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where committed blobs live.
    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    fn path(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        if !is_sha256(sha256) {
            return Err(BlobError::NotFound(sha256.to_string()));
        }
        Ok(self.blob_dir().join(&sha256[..2]).join(sha256))
    }

    fn staged_path(&self, key: &str) -> PathBuf {
        self.staging_dir().join(format!("{key}.part"))
    }

    async fn write_staged(
        &self,
        path: &Path,
        mut body: UploadStream<'_>,
        limit: u64,
    ) -> Result<(String, u64), BlobError> {
        let mut file = fs::File::create(path).await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
            size = size.saturating_add(chunk.len() as u64);
            if size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok((hex::encode(hasher.finalize()), size))
    }
}

/// A staged file that is removed when dropped, unless [`TempFile::keep`] was called.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // A blocking unlink of one file: quick, and it must happen even without a runtime.
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn stage(&self, body: UploadStream<'_>, limit: u64) -> Result<Staged, BlobError> {
        let key = Uuid::new_v4().to_string();
        // Removes the file on every way out but success, including this future being dropped
        // (a request timeout or a client that went away).
        let guard = TempFile(Some(self.staged_path(&key)));
        let path = guard.0.clone().expect("set above");
        let (sha256, size) = self.write_staged(&path, body, limit).await?;
        guard.keep();
        Ok(Staged { key, sha256, size })
    }

    async fn read_staged(&self, staged: &Staged) -> Result<Vec<u8>, BlobError> {
        Ok(fs::read(self.staged_path(&staged.key)).await?)
    }

    async fn stream_staged(&self, staged: &Staged) -> Result<ByteStream, BlobError> {
        let file = fs::File::open(self.staged_path(&staged.key)).await?;
        Ok(tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).boxed())
    }

    async fn commit(&self, staged: Staged) -> Result<(), BlobError> {
        let from = self.staged_path(&staged.key);
        let to = self.path(&staged.sha256)?;
        if fs::try_exists(&to).await? {
            fs::remove_file(&from).await?;
            return Ok(());
        }
        let dir = to.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir).await?;
        fs::rename(&from, &to).await?;
        sync_dir(dir).await?;
        Ok(())
    }

    async fn discard(&self, staged: Staged) {
        let _ = fs::remove_file(self.staged_path(&staged.key)).await;
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
        match fs::read(self.path(sha256)?).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(sha256.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn stream(&self, sha256: &str) -> Result<(ByteStream, u64), BlobError> {
        let file = match fs::File::open(self.path(sha256)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(sha256.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        Ok((tokio_util::io::ReaderStream::new(file).boxed(), size))
    }

    async fn delete(&self, sha256: &str) -> Result<(), BlobError> {
        match fs::remove_file(self.path(sha256)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn clean_staging(&self) -> Result<usize, BlobError> {
        let mut removed = 0;
        let mut entries = fs::read_dir(self.staging_dir()).await?;
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_type().await?.is_file() {
                fs::remove_file(entry.path()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn ready(&self) -> bool {
        fs::metadata(self.blob_dir())
            .await
            .is_ok_and(|m| m.is_dir())
            && fs::metadata(self.staging_dir())
                .await
                .is_ok_and(|m| m.is_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &'static [&'static [u8]]) -> ByteStream {
        futures::stream::iter(parts.iter().map(|p| Ok((*p).into()))).boxed()
    }

    async fn files_in(dir: PathBuf) -> usize {
        let mut n = 0;
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let mut rd = fs::read_dir(&d).await.unwrap();
            while let Some(e) = rd.next_entry().await.unwrap() {
                if e.file_type().await.unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    n += 1;
                }
            }
        }
        n
    }

    #[tokio::test]
    async fn staged_upload_is_hashed_and_committed_under_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        let staged = store
            .stage(body(&[b"hello ", b"world"]), 100)
            .await
            .unwrap();
        // sha256("hello world"), from `printf 'hello world' | sha256sum`.
        let sha = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        assert_eq!((staged.sha256.as_str(), staged.size), (sha, 11));
        store.commit(staged).await.unwrap();
        assert_eq!(store.get(sha).await.unwrap(), b"hello world");
        assert_eq!(files_in(store.staging_dir()).await, 0);
    }

    #[tokio::test]
    async fn upload_over_the_limit_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        let err = store
            .stage(body(&[b"12345", b"67890"]), 7)
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { limit: 7 }));
        assert_eq!(files_in(dir.path().to_path_buf()).await, 0);
    }

    #[tokio::test]
    async fn an_upload_dropped_midway_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        let stalled: UploadStream<'static> =
            futures::stream::once(async { Ok(axum::body::Bytes::from_static(b"part")) })
                .chain(futures::stream::pending())
                .boxed();
        let staging = store.stage(stalled, 100);
        let cut = tokio::time::timeout(std::time::Duration::from_millis(100), staging).await;
        assert!(cut.is_err(), "the body never ends");
        assert_eq!(files_in(dir.path().to_path_buf()).await, 0);
    }

    #[tokio::test]
    async fn identical_content_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        let a = store.put(b"same".to_vec()).await.unwrap();
        let b = store.put(b"same".to_vec()).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(files_in(store.blob_dir()).await, 1);
        assert_eq!(files_in(store.staging_dir()).await, 0);
    }

    #[tokio::test]
    async fn rejects_keys_that_are_not_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        assert!(matches!(
            store.get("../../etc/passwd").await,
            Err(BlobError::NotFound(_))
        ));
    }
}
