//! `POST /v1/jobs` refuses bad requests synchronously with problem+json and queues nothing;
//! custom architectures are validated when posted.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::fixtures::{job_request, mnist_cnn_model, tiny_mlp_model, tiny_mlp_spec};
use crate::helpers::{TestApp, assert_problem, spawn_app_with};

/// An app without workers, so accepted jobs stay queued, and two mnist-cnn models.
async fn app_with_models(db: &Backend) -> (TestApp, String, String) {
    let app = spawn_app_with(db, |c| c.workers = 0).await;
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    (app, a, b)
}

async fn assert_no_job(app: &TestApp) {
    assert_eq!(app.count("jobs").await, 0, "job rows");
    assert_eq!(app.count("job_blobs").await, 0, "job blob rows");
}

both_backends!(a_valid_job_is_accepted_with_202_location_and_retry_after);
async fn a_valid_job_is_accepted_with_202_location_and_retry_after(db: Backend) {
    let (app, a, b) = app_with_models(&db).await;
    let res = app.post_json("/v1/jobs", &job_request(&a, &b)).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(res.headers()["retry-after"], "1");
    let job: Value = res.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/jobs/{}", job["id"].as_str().unwrap())
    );
    assert_eq!(job["status"], "queued");
    assert_eq!(job["attempt"], 0);
    assert_eq!(job["models"], json!([a, b]));
    assert_eq!(job["architecture"], "mnist-cnn");
    assert_eq!(job["links"]["report"], format!("{location}/report"));
    assert_eq!(app.get_json(&location).await["status"], "queued");
    app.stop().await;
}

both_backends!(an_unknown_model_id_is_404);
async fn an_unknown_model_id_is_404(db: Backend) {
    let (app, a, _) = app_with_models(&db).await;
    let missing = "0192d4e2-7a4b-7cc1-8e0c-3f5a1b2c3d4e";
    let body = assert_problem(
        app.post_json("/v1/jobs", &job_request(&a, missing)).await,
        404,
        "model_not_found",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains(missing));
    assert_no_job(&app).await;
    app.stop().await;
}

both_backends!(models_of_different_architectures_are_422);
async fn models_of_different_architectures_are_422(db: Backend) {
    let (app, a, _) = app_with_models(&db).await;
    let res = app.post_json("/v1/architectures", &tiny_mlp_spec()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mlp = app.model_id(tiny_mlp_model(5), "mlp").await;
    let mlp_model = app.get_json(&format!("/v1/models/{mlp}")).await;
    assert_eq!(mlp_model["architecture"], "tiny-mlp");

    let mut req = job_request(&a, &mlp);
    req.as_object_mut().unwrap().remove("architecture");
    let body = assert_problem(
        app.post_json("/v1/jobs", &req).await,
        422,
        "architecture_mismatch",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("tiny-mlp"),
        "{body}"
    );
    // Naming one architecture explicitly: the other model does not fit its shapes.
    assert_problem(
        app.post_json("/v1/jobs", &job_request(&a, &mlp)).await,
        422,
        "shape_mismatch",
    )
    .await;
    assert_no_job(&app).await;
    app.stop().await;
}

both_backends!(a_proportion_outside_zero_to_one_is_422);
async fn a_proportion_outside_zero_to_one_is_422(db: Backend) {
    let (app, a, b) = app_with_models(&db).await;
    for bad in [json!([0.0, 1.5]), json!([-0.1]), json!([])] {
        let mut req = job_request(&a, &b);
        req["proportions"] = bad.clone();
        let body = assert_problem(
            app.post_json("/v1/jobs", &req).await,
            422,
            "invalid_parameters",
        )
        .await;
        assert!(
            body["detail"].as_str().unwrap().contains("proportion"),
            "{bad}: {body}"
        );
    }
    assert_no_job(&app).await;
    app.stop().await;
}

both_backends!(an_unknown_method_or_field_is_422);
async fn an_unknown_method_or_field_is_422(db: Backend) {
    let (app, a, b) = app_with_models(&db).await;
    let mut req = job_request(&a, &b);
    req["method"] = json!("magic");
    assert_problem(app.post_json("/v1/jobs", &req).await, 422, "invalid_body").await;
    let mut req = job_request(&a, &b);
    req["alpha"] = json!(0.5);
    assert_problem(app.post_json("/v1/jobs", &req).await, 422, "invalid_body").await;
    let mut req = job_request(&a, &b);
    req["solver"] = json!({"max_iter": 0});
    assert_problem(
        app.post_json("/v1/jobs", &req).await,
        422,
        "invalid_parameters",
    )
    .await;
    assert_no_job(&app).await;
    app.stop().await;
}

both_backends!(malformed_json_is_400);
async fn malformed_json_is_400(db: Backend) {
    let (app, _, _) = app_with_models(&db).await;
    let res = app
        .client
        .post(app.url("/v1/jobs"))
        .header("content-type", "application/json")
        .body(r#"{"models": ["#)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed_json").await;
    assert_no_job(&app).await;
    app.stop().await;
}

both_backends!(a_wrong_content_type_is_415);
async fn a_wrong_content_type_is_415(db: Backend) {
    let (app, a, b) = app_with_models(&db).await;
    let res = app
        .client
        .post(app.url("/v1/jobs"))
        .header("content-type", "text/plain")
        .body(job_request(&a, &b).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
    assert_no_job(&app).await;
    app.stop().await;
}

both_backends!(an_unknown_dataset_or_architecture_is_404);
async fn an_unknown_dataset_or_architecture_is_404(db: Backend) {
    let (app, a, b) = app_with_models(&db).await;
    let mut req = job_request(&a, &b);
    req["dataset"] = json!("imagenet");
    assert_problem(
        app.post_json("/v1/jobs", &req).await,
        404,
        "dataset_not_found",
    )
    .await;
    let mut req = job_request(&a, &b);
    req["architecture"] = json!("resnet-50");
    assert_problem(
        app.post_json("/v1/jobs", &req).await,
        404,
        "architecture_not_found",
    )
    .await;
    assert_no_job(&app).await;
    app.stop().await;
}

both_backends!(custom_architectures_are_validated_and_names_are_unique);
async fn custom_architectures_are_validated_and_names_are_unique(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    let mut bad = tiny_mlp_spec();
    bad["ops"].as_array_mut().unwrap().remove(0); // linear before flatten
    let body = assert_problem(
        app.post_json("/v1/architectures", &bad).await,
        422,
        "invalid_architecture",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("flatten"),
        "{body}"
    );
    let mut unknown_op = tiny_mlp_spec();
    unknown_op["ops"][2] = json!({"op": "gelu"});
    assert_problem(
        app.post_json("/v1/architectures", &unknown_op).await,
        422,
        "invalid_body",
    )
    .await;
    let mut preset = tiny_mlp_spec();
    preset["name"] = json!("mnist-cnn");
    assert_problem(
        app.post_json("/v1/architectures", &preset).await,
        409,
        "already_exists",
    )
    .await;
    assert_eq!(app.count("architectures").await, 0);

    let res = app.post_json("/v1/architectures", &tiny_mlp_spec()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["location"], "/v1/architectures/tiny-mlp");
    assert_problem(
        app.post_json("/v1/architectures", &tiny_mlp_spec()).await,
        409,
        "already_exists",
    )
    .await;
    let got = app.get_json("/v1/architectures/tiny-mlp").await;
    assert_eq!(
        got["tensors"],
        json!(["fc1.weight", "fc1.bias", "fc2.weight"])
    );
    let list = app.get_json("/v1/architectures").await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    // The presets (fixed, then shape-driven), then the custom ones.
    assert_eq!(
        names,
        ["mnist-cnn", "cnn-bn", "resnet-mini", "mlp", "tiny-mlp"]
    );
    app.stop().await;
}
