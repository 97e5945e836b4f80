//! Health, readiness, metrics, the docs UI, request ids, and problem+json for the router's own
//! refusals (unknown route, wrong method).

use reqwest::StatusCode;

use crate::backend::{Backend, both_backends};
use crate::helpers::{assert_problem, spawn_app};

both_backends!(healthz_and_readyz_answer_ok_when_the_database_is_migrated);
async fn healthz_and_readyz_answer_ok_when_the_database_is_migrated(db: Backend) {
    let app = spawn_app(&db).await;
    let health = app.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
    let ready = app.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], db.name());
    assert_eq!(ready["blobs"], "local");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem_and_a_wrong_method_a_405_problem() {
    let app = spawn_app(&Backend::Sqlite).await;
    assert_problem(app.get("/v1/nothing-here").await, 404, "route_not_found").await;
    let res = app.client.put(app.url("/v1/jobs")).send().await.unwrap();
    let allow = res.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("POST") && allow.contains("GET"), "{allow}");
    assert_problem(res, 405, "method_not_allowed").await;
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_a_given_one() {
    let app = spawn_app(&Backend::Sqlite).await;
    let res = app.get("/healthz").await;
    assert_eq!(res.headers()["x-request-id"].to_str().unwrap().len(), 36);
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "test-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "test-123");
    app.stop().await;
}

both_backends!(metrics_count_requests_by_route_and_jobs_by_status);
async fn metrics_count_requests_by_route_and_jobs_by_status(db: Backend) {
    let app = spawn_app(&db).await;
    app.get("/v1/models").await;
    app.get("/v1/models").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"gmfuse_http_requests_total{method="GET",route="/v1/models",status="200"} 2"#
        ),
        "{text}"
    );
    for status in ["queued", "running", "succeeded", "failed", "canceled"] {
        assert!(
            text.contains(&format!("gmfuse_jobs{{status=\"{status}\"}} 0")),
            "{text}"
        );
    }
    assert!(text.contains("gmfuse_queue_depth 0"));
    assert!(text.contains("# TYPE gmfuse_job_duration_seconds histogram"));
    app.stop().await;
}

#[tokio::test]
async fn the_docs_ui_is_served_from_the_binary() {
    let app = spawn_app(&Backend::Sqlite).await;
    let res = app.get("/docs/").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "no CDN links: {html}");
    let res = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.bytes().await.unwrap().len() > 100_000);
    app.stop().await;
}

both_backends!(the_builtin_dataset_and_preset_are_listed);
async fn the_builtin_dataset_and_preset_are_listed(db: Backend) {
    let app = spawn_app(&db).await;
    let ds = app.get_json("/v1/datasets/mnist-test").await;
    assert_eq!(ds["samples"], 10_000);
    assert_eq!(ds["shape"], serde_json::json!([1, 28, 28]));
    let arch = app.get_json("/v1/architectures/mnist-cnn").await;
    assert_eq!(arch["builtin"], true);
    assert_problem(
        app.get("/v1/architectures/nope").await,
        404,
        "architecture_not_found",
    )
    .await;
    assert_problem(app.get("/v1/datasets/nope").await, 404, "dataset_not_found").await;
    app.stop().await;
}
