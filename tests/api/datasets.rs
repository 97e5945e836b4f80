//! `/v1/datasets`: IDX-pair and safetensors uploads are validated before they are stored, and
//! a job can evaluate on an uploaded set.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::fixtures::{job_request, mnist_cnn_model, raw_safetensors, values};
use crate::helpers::{TestApp, assert_problem, curve, spawn_app, spawn_app_with};

/// IDX images `[n, h, w]` (magic 2051) and labels (magic 2049), raw.
pub(crate) fn idx(n: usize, h: usize, w: usize) -> (Vec<u8>, Vec<u8>) {
    let mut images = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        images.extend_from_slice(&(d as u32).to_be_bytes());
    }
    images.extend(
        values(n * h * w, 3)
            .iter()
            .map(|v| ((v + 0.5) * 255.0) as u8),
    );
    let mut labels = vec![0, 0, 8, 1];
    labels.extend_from_slice(&(n as u32).to_be_bytes());
    labels.extend((0..n).map(|i| (i % 10) as u8));
    (images, labels)
}

pub(crate) async fn post_form(app: &TestApp, form: Form) -> reqwest::Response {
    app.client
        .post(app.url("/v1/datasets?name=digits"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

pub(crate) fn part(bytes: Vec<u8>) -> Part {
    Part::bytes(bytes).file_name("part.bin")
}

both_backends!(an_idx_pair_is_stored_and_a_job_evaluates_on_it);
async fn an_idx_pair_is_stored_and_a_job_evaluates_on_it(db: Backend) {
    let app = spawn_app(&db).await;
    let (images, labels) = idx(20, 28, 28);
    let res = post_form(
        &app,
        Form::new()
            .part("images", part(images))
            .part("labels", part(labels)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let ds: Value = res.json().await.unwrap();
    assert_eq!(ds["samples"], 20);
    assert_eq!(ds["shape"], json!([1, 28, 28]));
    assert_eq!(ds["format"], "idx");
    let id = ds["id"].as_str().unwrap();
    assert_eq!(
        app.get_json(&format!("/v1/datasets/{id}")).await["name"],
        "digits"
    );
    let listed = app.get_json("/v1/datasets").await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        3,
        "mnist-test, mnist-train-5k and the upload"
    );

    // Untrained weights are enough to run the whole pipeline on 20 samples.
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    let mut req = job_request(&a, &b);
    req["dataset"] = json!(id);
    req["proportions"] = json!([0.0, 0.5, 1.0]);
    let job = app.job_id(&req).await;
    let done = app.wait_finished(&job, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["dataset"], id);
    let report = app.get_json(&format!("/v1/jobs/{job}/report")).await;
    assert_eq!(report["samples"], 20);
    assert_eq!(curve(&report, "none").as_array().unwrap().len(), 3);
    app.stop().await;
}

both_backends!(a_safetensors_dataset_is_stored);
async fn a_safetensors_dataset_is_stored(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    let n = 4;
    let header = format!(
        r#"{{"images":{{"dtype":"U8","shape":[{n},28,28],"data_offsets":[0,{}]}},
             "labels":{{"dtype":"I64","shape":[{n}],"data_offsets":[{},{}]}}}}"#,
        n * 784,
        n * 784,
        n * 784 + n * 8
    );
    let mut data = vec![7u8; n * 784];
    for l in [3i64, 1, 4, 1] {
        data.extend_from_slice(&l.to_le_bytes());
    }
    let res = post_form(
        &app,
        Form::new().part("file", part(raw_safetensors(&header, &data))),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let ds: Value = res.json().await.unwrap();
    assert_eq!(
        (ds["samples"].as_u64(), ds["format"].as_str()),
        (Some(4), Some("safetensors"))
    );
    assert_eq!(app.blob_files().len(), 1);
    app.stop().await;
}

both_backends!(a_bad_idx_magic_is_422_and_nothing_is_stored);
async fn a_bad_idx_magic_is_422_and_nothing_is_stored(db: Backend) {
    let app = spawn_app(&db).await;
    let (mut images, labels) = idx(5, 28, 28);
    images[3] = 9;
    let res = post_form(
        &app,
        Form::new()
            .part("images", part(images))
            .part("labels", part(labels)),
    )
    .await;
    assert_problem(res, 422, "invalid_dataset").await;
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(a_missing_labels_part_is_422_and_nothing_is_stored);
async fn a_missing_labels_part_is_422_and_nothing_is_stored(db: Backend) {
    let app = spawn_app(&db).await;
    let (images, _) = idx(5, 28, 28);
    let res = post_form(&app, Form::new().part("images", part(images))).await;
    let body = assert_problem(res, 422, "invalid_dataset").await;
    assert!(
        body["detail"].as_str().unwrap().contains("labels"),
        "{body}"
    );
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(a_dataset_of_another_input_shape_is_refused_by_a_job);
async fn a_dataset_of_another_input_shape_is_refused_by_a_job(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    let (images, labels) = idx(6, 20, 20);
    let res = post_form(
        &app,
        Form::new()
            .part("images", part(images))
            .part("labels", part(labels)),
    )
    .await;
    let ds: Value = res.json().await.unwrap();
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    let mut req = job_request(&a, &b);
    req["dataset"] = ds["id"].clone();
    let body = assert_problem(
        app.post_json("/v1/jobs", &req).await,
        422,
        "dataset_shape_mismatch",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("[1, 20, 20]"),
        "{body}"
    );
    assert_eq!(app.count("jobs").await, 0);
    app.stop().await;
}

both_backends!(a_json_body_is_not_a_dataset_upload);
async fn a_json_body_is_not_a_dataset_upload(db: Backend) {
    let app = spawn_app(&db).await;
    let res = app.post_json("/v1/datasets", &json!({"images": []})).await;
    assert_problem(res, 415, "unsupported_media_type").await;
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(a_dataset_in_use_is_not_deleted_and_an_unused_one_goes_with_its_blobs);
async fn a_dataset_in_use_is_not_deleted_and_an_unused_one_goes_with_its_blobs(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    let (images, labels) = idx(20, 28, 28);
    let form = Form::new()
        .part("images", part(images))
        .part("labels", part(labels));
    let res = post_form(&app, form).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    let blobs_with_models = app.blob_files().len();
    assert_eq!(blobs_with_models, 4, "images, labels and two models");
    let mut req = job_request(&a, &b);
    req["dataset"] = json!(id);
    let job = app.job_id(&req).await;
    let delete = || {
        app.client
            .delete(app.url(&format!("/v1/datasets/{id}")))
            .send()
    };
    // Queued job reads it: 409, and it stays.
    assert_problem(delete().await.unwrap(), 409, "in_use").await;
    assert_eq!(
        app.get(&format!("/v1/datasets/{id}")).await.status(),
        StatusCode::OK
    );
    let res = app
        .client
        .post(app.url(&format!("/v1/jobs/{job}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    // The canceled job no longer holds it.
    assert_eq!(delete().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get(&format!("/v1/datasets/{id}")).await,
        404,
        "dataset_not_found",
    )
    .await;
    assert_problem(delete().await.unwrap(), 404, "dataset_not_found").await;
    // Its two blobs stay while the canceled job's row names them, and go with the job.
    assert_eq!(app.blob_files().len(), blobs_with_models);
    let res = app
        .client
        .delete(app.url(&format!("/v1/jobs/{job}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.blob_files().len(), 2, "the two models are left");
    assert_eq!(app.count("datasets").await, 0);
    let res = app
        .client
        .delete(app.url("/v1/datasets/mnist-test"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "builtin").await;
    app.stop().await;
}

/// A `mlp` model with `classes` outputs (784 → 16 → classes).
fn mlp_model(classes: usize, seed: u32) -> Vec<u8> {
    crate::fixtures::safetensors(&[
        ("fc1.weight", vec![16, 784], values(16 * 784, seed)),
        ("fc1.bias", vec![16], values(16, seed + 1)),
        (
            "fc2.weight",
            vec![classes, 16],
            values(classes * 16, seed + 2),
        ),
    ])
}

/// Upload `n` 28×28 images whose labels are `label(i)`; returns the dataset's JSON.
async fn upload_labelled(app: &TestApp, n: usize, label: impl Fn(usize) -> u8) -> Value {
    let (images, mut labels) = idx(n, 28, 28);
    for (i, l) in labels[8..].iter_mut().enumerate() {
        *l = label(i);
    }
    let form = Form::new()
        .part("images", part(images))
        .part("labels", part(labels));
    let res = post_form(app, form).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

both_backends!(uploaded_labels_are_checked_against_the_model_classes_at_submission);
async fn uploaded_labels_are_checked_against_the_model_classes_at_submission(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    // Labels 0..=9 (i % 10) and 2..=4 (2 + i % 3): the scan at upload records the range.
    let digits = upload_labelled(&app, 20, |i| (i % 10) as u8).await;
    assert_eq!(digits["labels"], json!({"min": 0, "max": 9}));
    let few = upload_labelled(&app, 20, |i| 2 + (i % 3) as u8).await;
    assert_eq!(few["labels"], json!({"min": 2, "max": 4}));
    assert_eq!(
        app.get_json(&format!("/v1/datasets/{}", few["id"].as_str().unwrap()))
            .await["labels"],
        json!({"min": 2, "max": 4})
    );

    // Five classes: labels up to 9 are refused before the job is queued, up to 4 accepted.
    let a = app.model_id(mlp_model(5, 1), "a").await;
    let b = app.model_id(mlp_model(5, 4), "b").await;
    let job = |dataset: &Value| json!({"models": [a, b], "architecture": "mlp", "dataset": dataset["id"]});
    let res = app.post_json("/v1/jobs", &job(&digits)).await;
    let problem = assert_problem(res, 422, "dataset_shape_mismatch").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("labels up to 9") && detail.contains("5 classes"),
        "{detail}"
    );
    assert_eq!(app.count("jobs").await, 0);
    assert_eq!(app.post_json("/v1/jobs", &job(&few)).await.status(), 202);
    app.stop().await;
}

both_backends!(a_dataset_stored_before_label_ranges_is_still_accepted_and_checked_by_the_worker);
async fn a_dataset_stored_before_label_ranges_is_still_accepted_and_checked_by_the_worker(
    db: Backend,
) {
    let app = spawn_app(&db).await;
    let digits = upload_labelled(&app, 20, |i| (i % 10) as u8).await;
    // What a row written before the migration holds: no range.
    db.execute(
        app.dir.path(),
        "UPDATE datasets SET label_min = NULL, label_max = NULL",
    )
    .await;
    let id = digits["id"].as_str().unwrap();
    let listed = app.get_json(&format!("/v1/datasets/{id}")).await;
    assert!(listed["labels"].is_null(), "{listed}");
    let a = app.model_id(mlp_model(5, 1), "a").await;
    let b = app.model_id(mlp_model(5, 4), "b").await;
    let req = json!({"models": [a, b], "architecture": "mlp", "dataset": id});
    let job = app.job_id(&req).await;
    let done = app.wait_finished(&job, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "failed", "{done}");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("labels up to 9"), "{done}");
    app.stop().await;
}
