//! The cases only S3 has: a cancelled upload aborted, the staging grace, an unreachable
//! endpoint.

use super::*;

async fn s3_harness(test: &str) -> Option<(S3BlobStore, String)> {
    match Harness::s3(test).await? {
        Harness::S3 { store, endpoint } => Some((store, endpoint)),
        Harness::Local { .. } => unreachable!(),
    }
}

#[tokio::test]
async fn s3_a_cancelled_upload_is_aborted() {
    let Some((store, endpoint)) = s3_harness("s3_a_cancelled_upload_is_aborted").await else {
        return;
    };
    let h = Harness::S3 {
        store: store.clone(),
        endpoint,
    };
    // 6 MiB, then the body never ends: the multipart upload has started when the body stalls.
    let (stalled_tx, stalled_rx) = tokio::sync::oneshot::channel::<()>();
    let first = futures::stream::iter(chunks(&data(6 * MIB, 13), MIB).into_iter().map(Ok));
    let stall = futures::stream::once(async move {
        let _ = stalled_tx.send(());
        futures::future::pending::<Result<Bytes, io::Error>>().await
    });
    let mut upload = Box::pin(store.stage(first.chain(stall).boxed(), 100 * MIB as u64));
    tokio::select! {
        r = &mut upload => panic!("the upload finished: {r:?}"),
        _ = stalled_rx => {}
    }
    // Still in flight: the listing sees it (which also shows that the probe works).
    assert_eq!(h.open_uploads().await, 1);
    // Dropped as a request timeout would drop it; the abort runs in the background, so wait
    // for it (bounded).
    drop(upload);
    for _ in 0..100 {
        if h.open_uploads().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.assert_empty().await;
}

#[tokio::test]
async fn s3_clean_staging_spares_uploads_younger_than_the_grace() {
    let Some((store, _)) =
        s3_harness("s3_clean_staging_spares_uploads_younger_than_the_grace").await
    else {
        return;
    };
    let store = store.with_staging_grace(DEFAULT_STAGING_GRACE);
    let staged = store
        .stage(body(vec!["in flight".into()]), 100)
        .await
        .unwrap();
    assert_eq!(store.clean_staging().await.unwrap(), 0);
    assert_eq!(store.read_staged(&staged).await.unwrap(), b"in flight");
    store.discard(staged).await;
}

#[tokio::test]
async fn s3_an_unreachable_store_is_not_ready() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let store = S3BlobStore::open(&moto::settings(
        "http://127.0.0.1:1",
        "s3://nowhere/x".into(),
    ))
    .unwrap();
    assert!(!store.ready().await);
}
