//! The same blob-store cases against every backend: each case is one `async fn` over a
//! [`Harness`] (a `&dyn BlobStore` plus a way to look inside the backend), instantiated once
//! for the local directory (`store::conformance::local::…`) and once for S3
//! (`store::conformance::s3::…`).
//!
//! The S3 cases run against a moto server ([`crate::store::s3::moto::test_endpoint`]): the one
//! named by `GMFUSE_TEST_S3_ENDPOINT`, or one started from `moto_server` on `PATH`. Each test
//! gets its own key prefix in one bucket; without a server they print SKIPPED and pass.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Bytes;
use futures::StreamExt;
use object_store::ObjectStore;
use sha2::{Digest, Sha256};
use tokio::fs;

use super::blob::{BlobError, BlobStore, UploadStream};
use super::local::LocalBlobStore;
use super::s3::{DEFAULT_STAGING_GRACE, S3BlobStore, moto};

const MIB: usize = 1024 * 1024;
const BUCKET: &str = "gmfuse-test";

/// A backend under test and what the cases inspect in it.
enum Harness {
    Local {
        store: LocalBlobStore,
        _dir: tempfile::TempDir,
    },
    S3 {
        store: S3BlobStore,
        endpoint: String,
    },
}

impl Harness {
    async fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        Harness::Local { store, _dir: dir }
    }

    /// A store under a fresh prefix of the test bucket; `None` when there is no test server.
    async fn s3(test: &str) -> Option<Self> {
        let endpoint = moto::test_endpoint(test)?;
        moto::create_bucket(&endpoint, BUCKET).await.unwrap();
        let prefix = format!("{test}-{}", uuid::Uuid::new_v4().simple());
        let store = S3BlobStore::open(&moto::settings(
            &endpoint,
            format!("s3://{BUCKET}/{prefix}"),
        ))
        .unwrap()
        .with_staging_grace(Duration::ZERO);
        Some(Harness::S3 { store, endpoint })
    }

    fn store(&self) -> &dyn BlobStore {
        match self {
            Harness::Local { store, .. } => store,
            Harness::S3 { store, .. } => store,
        }
    }

    /// Uploads in staging (files in `tmp/`, objects under `staging/`).
    async fn staged_count(&self) -> usize {
        match self {
            Harness::Local { store, .. } => files_in(store.staging_dir()).await,
            Harness::S3 { store, .. } => objects_under(store, &store.staging_prefix()).await,
        }
    }

    /// Committed blobs.
    async fn blob_count(&self) -> usize {
        match self {
            Harness::Local { store, .. } => files_in(store.blob_dir()).await,
            Harness::S3 { store, .. } => objects_under(store, &store.blob_prefix()).await,
        }
    }

    /// Multipart uploads neither completed nor aborted (the local store has none).
    async fn open_uploads(&self) -> usize {
        match self {
            Harness::Local { .. } => 0,
            Harness::S3 { store, endpoint } => {
                let prefix = format!("{}/", store.staging_prefix());
                moto::open_multipart_uploads(endpoint, store.bucket(), &prefix)
                    .await
                    .unwrap()
            }
        }
    }

    /// Staging, blobs and open multipart uploads are all empty.
    async fn assert_empty(&self) {
        assert_eq!(
            (
                self.staged_count().await,
                self.blob_count().await,
                self.open_uploads().await
            ),
            (0, 0, 0),
            "(staged, blobs, open multipart uploads)"
        );
    }
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

async fn objects_under(store: &S3BlobStore, prefix: &object_store::path::Path) -> usize {
    store.object_store().list(Some(prefix)).count().await
}

/// A body of the given chunks.
fn body(chunks: Vec<Bytes>) -> UploadStream<'static> {
    futures::stream::iter(chunks.into_iter().map(Ok)).boxed()
}

/// `n` bytes of a fixed pseudo-random sequence (xorshift32 from `seed`).
fn data(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn chunks(bytes: &[u8], size: usize) -> Vec<Bytes> {
    bytes.chunks(size).map(Bytes::copy_from_slice).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---- the cases ----

async fn staged_upload_is_invisible_until_committed_under_its_sha256(h: &Harness) {
    let store = h.store();
    let staged = store
        .stage(body(vec!["hello ".into(), "world".into()]), 100)
        .await
        .unwrap();
    // sha256("hello world"), from `printf 'hello world' | sha256sum`.
    let sha = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    assert_eq!((staged.sha256.as_str(), staged.size), (sha, 11));
    assert_eq!(store.read_staged(&staged).await.unwrap(), b"hello world");
    let mut chunks = store.stream_staged(&staged).await.unwrap();
    let mut streamed = Vec::new();
    while let Some(chunk) = chunks.next().await {
        streamed.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(streamed, b"hello world");
    assert!(matches!(store.get(sha).await, Err(BlobError::NotFound(_))));
    assert_eq!((h.staged_count().await, h.blob_count().await), (1, 0));
    store.commit(staged).await.unwrap();
    assert_eq!(store.get(sha).await.unwrap(), b"hello world");
    assert_eq!((h.staged_count().await, h.blob_count().await), (0, 1));
}

async fn a_body_of_several_parts_round_trips(h: &Harness) {
    // 12 MiB + 3 bytes: three parts of 5 MiB, 5 MiB and 2 MiB + 3 on S3.
    let bytes = data(12 * MIB + 3, 7);
    let store = h.store();
    let staged = store
        .stage(body(chunks(&bytes, 64 * 1024)), 16 * MIB as u64)
        .await
        .unwrap();
    assert_eq!(staged.sha256, sha256_hex(&bytes));
    assert_eq!(staged.size, bytes.len() as u64);
    let sha = staged.sha256.clone();
    store.commit(staged).await.unwrap();
    assert!(store.get(&sha).await.unwrap() == bytes);
    assert_eq!((h.staged_count().await, h.blob_count().await), (0, 1));
    assert_eq!(h.open_uploads().await, 0);
}

async fn a_body_of_exactly_the_limit_is_accepted(h: &Harness) {
    let staged = h
        .store()
        .stage(body(vec!["1234".into(), "567".into()]), 7)
        .await
        .unwrap();
    assert_eq!(staged.size, 7);
    h.store().discard(staged).await;
}

async fn identical_content_is_stored_once(h: &Harness) {
    let store = h.store();
    let a = store.put(b"same".to_vec()).await.unwrap();
    let b = store.put(b"same".to_vec()).await.unwrap();
    let staged = store
        .stage(body(vec!["sa".into(), "me".into()]), 10)
        .await
        .unwrap();
    assert_eq!(staged.sha256, a);
    store.commit(staged).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(store.get(&a).await.unwrap(), b"same");
    assert_eq!((h.staged_count().await, h.blob_count().await), (0, 1));
}

async fn an_upload_over_the_limit_leaves_nothing(h: &Harness) {
    let store = h.store();
    let err = store
        .stage(body(vec!["12345".into(), "67890".into()]), 7)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { limit: 7 }), "{err}");
    h.assert_empty().await;

    // 8 MiB against a 6 MiB cap, in 1 MiB chunks: on S3 the multipart upload has started
    // (after 6 MiB) and one 5 MiB part is on its way when the cap is passed.
    let bytes = data(8 * MIB, 3);
    let limit = 6 * MIB as u64;
    let err = store
        .stage(body(chunks(&bytes, MIB)), limit)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlobError::TooLarge { limit: l } if l == limit),
        "{err}"
    );
    h.assert_empty().await;
}

/// A body that yields `good` bytes in 1 MiB chunks, then fails.
fn failing_body(good: usize) -> UploadStream<'static> {
    let bytes = data(good, 11);
    let ok = chunks(&bytes, MIB).into_iter().map(Ok);
    let broken = std::iter::once(Err(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "client went away",
    )));
    futures::stream::iter(ok.chain(broken)).boxed()
}

async fn an_upload_aborted_midway_leaves_no_object(h: &Harness) {
    let store = h.store();
    // Small: nothing has been sent yet on S3.
    let err = store
        .stage(failing_body(1000), 100 * MIB as u64)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BlobError::Body(m) if m.contains("client went away")),
        "{err}"
    );
    h.assert_empty().await;
    // 7 MiB: on S3 the multipart upload has started and its first part is sent or in flight.
    let err = store
        .stage(failing_body(7 * MIB), 100 * MIB as u64)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BlobError::Body(m) if m.contains("client went away")),
        "{err}"
    );
    h.assert_empty().await;
}

async fn a_discarded_upload_leaves_nothing(h: &Harness) {
    let store = h.store();
    let staged = store.stage(body(vec!["draft".into()]), 100).await.unwrap();
    let sha = staged.sha256.clone();
    assert_eq!(h.staged_count().await, 1);
    store.discard(staged).await;
    h.assert_empty().await;
    assert!(matches!(store.get(&sha).await, Err(BlobError::NotFound(_))));
}

async fn delete_is_idempotent(h: &Harness) {
    let store = h.store();
    let sha = store.put(b"short-lived".to_vec()).await.unwrap();
    store.delete(&sha).await.unwrap();
    assert!(matches!(store.get(&sha).await, Err(BlobError::NotFound(s)) if s == sha));
    store.delete(&sha).await.unwrap();
    // A well-formed hash that was never stored.
    store.delete(&"0".repeat(64)).await.unwrap();
    h.assert_empty().await;
}

async fn stream_gives_the_size_and_the_bytes(h: &Harness) {
    let store = h.store();
    let bytes = data(300_001, 5);
    let sha = store.put(bytes.clone()).await.unwrap();
    let (stream, size) = store.stream(&sha).await.unwrap();
    assert_eq!(size, 300_001);
    let parts: Vec<Bytes> = stream.map(Result::unwrap).collect().await;
    assert!(parts.concat() == bytes);
    assert!(matches!(
        store.stream(&"f".repeat(64)).await,
        Err(BlobError::NotFound(_))
    ));
}

async fn missing_and_malformed_keys_are_not_found(h: &Harness) {
    let store = h.store();
    assert!(matches!(
        store.get(&"a".repeat(64)).await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(
        store.get("../../etc/passwd").await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(
        store.stream("BLOBS").await,
        Err(BlobError::NotFound(_))
    ));
}

async fn clean_staging_removes_leftover_uploads_only(h: &Harness) {
    let store = h.store();
    let kept = store.put(b"committed".to_vec()).await.unwrap();
    let _a = store.stage(body(vec!["left".into()]), 100).await.unwrap();
    let _b = store.stage(body(vec!["behind".into()]), 100).await.unwrap();
    assert_eq!(h.staged_count().await, 2);
    assert_eq!(store.clean_staging().await.unwrap(), 2);
    assert_eq!((h.staged_count().await, h.blob_count().await), (0, 1));
    assert_eq!(store.get(&kept).await.unwrap(), b"committed");
    assert_eq!(store.clean_staging().await.unwrap(), 0);
}

async fn a_new_store_is_ready(h: &Harness) {
    assert!(h.store().ready().await);
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::Harness::local().await).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(h) = super::Harness::s3(stringify!($case)).await {
                        super::$case(&h).await;
                    }
                }
            )*
        }
    };
}

cases!(
    staged_upload_is_invisible_until_committed_under_its_sha256,
    a_body_of_several_parts_round_trips,
    a_body_of_exactly_the_limit_is_accepted,
    identical_content_is_stored_once,
    an_upload_over_the_limit_leaves_nothing,
    an_upload_aborted_midway_leaves_no_object,
    a_discarded_upload_leaves_nothing,
    delete_is_idempotent,
    stream_gives_the_size_and_the_bytes,
    missing_and_malformed_keys_are_not_found,
    clean_staging_removes_leftover_uploads_only,
    a_new_store_is_ready,
);

mod s3_only;
