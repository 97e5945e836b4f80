//! A job's calibration set (for `activation_matching`) is checked like its dataset — shape,
//! existence — and is never the scored one; by default it is the built-in `mnist-train-5k`.

use std::time::Duration;

use reqwest::multipart::Form;
use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::datasets::{idx, part, post_form};
use crate::fixtures::{job_request, mnist_cnn_model};
use crate::helpers::{assert_problem, curve, spawn_app};

both_backends!(activation_matching_calibrates_on_the_training_slice_and_never_on_the_scored_set);
async fn activation_matching_calibrates_on_the_training_slice_and_never_on_the_scored_set(
    db: Backend,
) {
    let app = spawn_app(&db).await;
    let listed = app.get_json("/v1/datasets/mnist-train-5k").await;
    assert_eq!(listed["samples"], 5000, "{listed}");
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    let mut req = job_request(&a, &b);
    req["methods"] = json!(["activation_matching"]);
    // The scored set as calibration: 422, whether named or implied by the default.
    req["calibration"] = json!("mnist-test");
    let body = assert_problem(
        app.post_json("/v1/jobs", &req).await,
        422,
        "invalid_parameters",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("scored"),
        "{body}"
    );
    let mut scored_default = req.clone();
    scored_default["dataset"] = json!("mnist-train-5k");
    scored_default
        .as_object_mut()
        .unwrap()
        .remove("calibration");
    assert_problem(
        app.post_json("/v1/jobs", &scored_default).await,
        422,
        "invalid_parameters",
    )
    .await;
    // Another input shape: 422; an unknown id: 404.
    let (images, labels) = idx(6, 20, 20);
    let res = post_form(
        &app,
        Form::new()
            .part("images", part(images))
            .part("labels", part(labels)),
    )
    .await;
    let small: Value = res.json().await.unwrap();
    req["calibration"] = small["id"].clone();
    let body = assert_problem(
        app.post_json("/v1/jobs", &req).await,
        422,
        "dataset_shape_mismatch",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("calibration"),
        "{body}"
    );
    req["calibration"] = json!("mnist-nope");
    assert_problem(
        app.post_json("/v1/jobs", &req).await,
        404,
        "dataset_not_found",
    )
    .await;
    assert_eq!(app.count("jobs").await, 0);

    // By default it calibrates on mnist-train-5k and runs (untrained weights, 20 samples).
    let (images, labels) = idx(20, 28, 28);
    let res = post_form(
        &app,
        Form::new()
            .part("images", part(images))
            .part("labels", part(labels)),
    )
    .await;
    let scored: Value = res.json().await.unwrap();
    req.as_object_mut().unwrap().remove("calibration");
    req["dataset"] = scored["id"].clone();
    req["proportions"] = json!([0.0, 0.5, 1.0]);
    let job = app.job_id(&req).await;
    let done = app.wait_finished(&job, Duration::from_secs(300)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let report = app.get_json(&format!("/v1/jobs/{job}/report")).await;
    assert_eq!(
        curve(&report, "activation_matching")
            .as_array()
            .unwrap()
            .len(),
        3
    );
    app.stop().await;
}
