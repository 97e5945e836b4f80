//! `/v1/models`: uploads that are refused store nothing; accepted ones are deduplicated,
//! listed, downloaded with an ETag and deleted.

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backend::{Backend, both_backends};
use crate::fixtures::{mnist_cnn_model, raw_safetensors, safetensors, values};
use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

both_backends!(truncated_safetensors_is_refused_with_422_and_nothing_is_stored);
async fn truncated_safetensors_is_refused_with_422_and_nothing_is_stored(db: Backend) {
    let app = spawn_app(&db).await;
    let mut bytes = mnist_cnn_model(3136, 1);
    bytes.truncate(bytes.len() - 1000);
    let body = assert_problem(
        app.upload_model(bytes, "").await,
        422,
        "invalid_safetensors",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("fc2.weight"),
        "{body}"
    );
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(a_header_whose_offsets_overlap_is_refused);
async fn a_header_whose_offsets_overlap_is_refused(db: Backend) {
    let app = spawn_app(&db).await;
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                     "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    let bytes = raw_safetensors(header, &[0u8; 12]);
    let body = assert_problem(
        app.upload_model(bytes, "").await,
        422,
        "invalid_safetensors",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("inside tensor `a`"),
        "{body}"
    );
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(a_header_with_offsets_past_the_end_is_refused);
async fn a_header_with_offsets_past_the_end_is_refused(db: Backend) {
    let app = spawn_app(&db).await;
    let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let bytes = raw_safetensors(header, &[0u8; 8]);
    assert_problem(
        app.upload_model(bytes, "").await,
        422,
        "invalid_safetensors",
    )
    .await;
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(duplicate_tensor_names_are_refused);
async fn duplicate_tensor_names_are_refused(db: Backend) {
    let app = spawn_app(&db).await;
    let header = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                     "w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let bytes = raw_safetensors(header, &[0u8; 8]);
    let body = assert_problem(
        app.upload_model(bytes, "").await,
        422,
        "invalid_safetensors",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains('w'), "{body}");
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(shapes_that_do_not_fit_the_named_architecture_are_refused);
async fn shapes_that_do_not_fit_the_named_architecture_are_refused(db: Backend) {
    let app = spawn_app(&db).await;
    // fc1 must take 64·7·7 = 3136 inputs in mnist-cnn.
    let bytes = mnist_cnn_model(3000, 1);
    let body = assert_problem(
        app.upload_model(bytes, "architecture=mnist-cnn").await,
        422,
        "shape_mismatch",
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("fc1.weight") && detail.contains("3136") && detail.contains("3000"),
        "{detail}"
    );
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(a_body_over_the_cap_gets_413_and_leaves_no_temp_file);
async fn a_body_over_the_cap_gets_413_and_leaves_no_temp_file(db: Backend) {
    let app = spawn_app_with(&db, |c| c.max_upload_bytes = 64 * 1024).await;
    let bytes = mnist_cnn_model(3136, 1);
    // Chunked (no Content-Length): refused while streaming, after the temp file was started.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    let res = app
        .client
        .post(app.url("/v1/models"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 413, "payload_too_large").await;
    assert!(body["detail"].as_str().unwrap().contains("65536"), "{body}");
    app.assert_nothing_stored().await;
    // With a Content-Length over the cap: refused before reading.
    let res = app.upload_model(bytes, "").await;
    assert_problem(res, 413, "payload_too_large").await;
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(a_json_body_is_refused_with_415);
async fn a_json_body_is_refused_with_415(db: Backend) {
    let app = spawn_app(&db).await;
    let res = app
        .client
        .post(app.url("/v1/models"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(an_upload_is_stored_once_listed_downloaded_with_an_etag_and_deleted);
async fn an_upload_is_stored_once_listed_downloaded_with_an_etag_and_deleted(db: Backend) {
    let app = spawn_app(&db).await;
    let bytes = mnist_cnn_model(3136, 7);
    let sha = hex::encode(Sha256::digest(&bytes));

    let res = app.upload_model(bytes.clone(), "name=first").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let model: Value = res.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/models/{}", model["id"].as_str().unwrap())
    );
    assert_eq!(model["sha256"], sha);
    assert_eq!(model["size_bytes"], bytes.len());
    assert_eq!(
        model["architecture"], "mnist-cnn",
        "detected from the shapes"
    );
    let tensors = model["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 4);
    assert_eq!(tensors[0]["name"], "conv1.weight");
    assert_eq!(tensors[0]["dtype"], "F32");
    assert_eq!(tensors[0]["shape"], serde_json::json!([32, 1, 5, 5]));

    // The same bytes again: the existing model, 200, one row, one blob.
    let res = app.upload_model(bytes.clone(), "name=second").await;
    assert_eq!(res.status(), StatusCode::OK);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["id"], model["id"]);
    assert_eq!(app.count("models").await, 1);
    assert_eq!(app.blob_files().len(), 1);
    assert!(app.tmp_files().is_empty());

    let list = app.get_json("/v1/models").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let res = app.get(&format!("{location}/weights")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{sha}\""));
    let mut downloaded = Vec::new();
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        downloaded.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(downloaded, bytes);
    let res = app
        .client
        .get(app.url(&format!("{location}/weights")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    let res = app.client.delete(app.url(&location)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.get(&location).await, 404, "model_not_found").await;
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(a_model_of_no_known_architecture_is_kept_without_one);
async fn a_model_of_no_known_architecture_is_kept_without_one(db: Backend) {
    let app = spawn_app(&db).await;
    let bytes = safetensors(&[("w", vec![3, 2], values(6, 1))]);
    let res = app.upload_model(bytes, "").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let model: Value = res.json().await.unwrap();
    assert_eq!(model["architecture"], Value::Null);
    assert!(model["name"].as_str().unwrap().starts_with("model-"));
    app.stop().await;
}

both_backends!(unknown_and_malformed_model_ids_are_problems);
async fn unknown_and_malformed_model_ids_are_problems(db: Backend) {
    let app = spawn_app(&db).await;
    assert_problem(
        app.get("/v1/models/0192d4e2-7a4b-7cc1-8e0c-3f5a1b2c3d4e")
            .await,
        404,
        "model_not_found",
    )
    .await;
    assert_problem(app.get("/v1/models/not-a-uuid").await, 400, "invalid_path").await;
    app.stop().await;
}

both_backends!(an_upload_cut_by_the_request_timeout_leaves_no_temp_file);
async fn an_upload_cut_by_the_request_timeout_leaves_no_temp_file(db: Backend) {
    let app = spawn_app_with(&db, |c| c.request_timeout_secs = 0.5).await;
    let first = mnist_cnn_model(3136, 1)[..4096].to_vec();
    let stalled = futures::stream::once(async move { Ok::<_, std::io::Error>(first) })
        .chain(futures::stream::pending());
    let sent = app
        .client
        .post(app.url("/v1/models"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stalled))
        .send()
        .await;
    if let Ok(res) = sent {
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
    }
    // The staged file goes with the request, not at the next restart.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        app.tmp_files(),
        Vec::<std::path::PathBuf>::new(),
        "temp files"
    );
    app.assert_nothing_stored().await;
    app.stop().await;
}
