//! The service on an S3 blob store (`GMFUSE_BLOB_URL=s3://…`) against a local moto server:
//! an upload lands in the bucket under its sha256 and nothing in the data directory, is served
//! back byte for byte, and is gone from the bucket once deleted. SKIPPED without a server (see
//! `gmfuse::store::s3::moto`).

use futures::StreamExt;
use gmfuse::store::BlobStore;
use gmfuse::store::s3::{S3BlobStore, moto};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backend::{Backend, both_backends};
use crate::fixtures::mnist_cnn_model;
use crate::helpers::{assert_problem, spawn_app_with};

const BUCKET: &str = "gmfuse-api-test";

both_backends!(a_model_uploaded_to_an_s3_blob_store_is_served_back_and_deleted);
async fn a_model_uploaded_to_an_s3_blob_store_is_served_back_and_deleted(db: Backend) {
    let Some(endpoint) =
        moto::test_endpoint("a_model_uploaded_to_an_s3_blob_store_is_served_back_and_deleted")
    else {
        return;
    };
    moto::create_bucket(&endpoint, BUCKET).await.unwrap();
    let url = format!("s3://{BUCKET}/api-{}", uuid::Uuid::new_v4().simple());
    let settings = moto::settings(&endpoint, url);
    let app = spawn_app_with(&db, |c| {
        c.blob_url = Some(settings.url.clone());
        c.aws_endpoint_url = settings.endpoint.clone();
        c.aws_region = settings.region.clone();
        c.aws_access_key_id = settings.access_key_id.clone();
        c.aws_secret_access_key = settings.secret_access_key.clone();
        c.aws_allow_http = true;
    })
    .await;
    // A second client on the same prefix, to look inside the bucket.
    let bucket = S3BlobStore::open(&settings).unwrap();

    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    let bytes = mnist_cnn_model(3136, 3);
    let sha = hex::encode(Sha256::digest(&bytes));
    let res = app.upload_model(bytes.clone(), "name=on-s3").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let model: Value = res.json().await.unwrap();
    assert_eq!(model["sha256"], sha);
    let location = format!("/v1/models/{}", model["id"].as_str().unwrap());

    assert!(
        bucket.get(&sha).await.unwrap() == bytes,
        "the blob is in the bucket"
    );
    assert!(
        app.blob_files().is_empty() && app.tmp_files().is_empty(),
        "nothing on local disk"
    );
    assert_eq!(
        bucket.clean_staging().await.unwrap(),
        0,
        "no staging object left"
    );

    let res = app.get(&format!("{location}/weights")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["etag"].to_str().unwrap(),
        format!("\"{sha}\"")
    );
    let mut downloaded = Vec::new();
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        downloaded.extend_from_slice(&chunk.unwrap());
    }
    assert!(downloaded == bytes, "served back byte for byte");

    let res = app.client.delete(app.url(&location)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.get(&location).await, 404, "model_not_found").await;
    assert!(matches!(
        bucket.get(&sha).await,
        Err(gmfuse::store::BlobError::NotFound(_))
    ));
    app.stop().await;
}
