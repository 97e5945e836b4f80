//! `Idempotency-Key` on `POST /v1/jobs` and `POST /v1/models`: a retried request gets the
//! first response, a key reused for another request is 422, and 50 identical submissions at
//! once create exactly one job.

use reqwest::StatusCode;
use serde_json::Value;

use crate::backend::{Backend, both_backends};
use crate::fixtures::{job_request, mnist_cnn_model};
use crate::helpers::{TestApp, assert_problem, spawn_app_with};

async fn post_job(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/jobs"))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    fifty_identical_job_submissions_with_one_key_create_one_job
);
async fn fifty_identical_job_submissions_with_one_key_create_one_job(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    let body = job_request(&a, &b);
    let sends = (0..50).map(|_| post_job(&app, "retry-1", &body));
    let answers = futures::future::join_all(sends).await;
    let (mut accepted, mut in_flight, mut ids) = (0, 0, std::collections::BTreeSet::new());
    for res in answers {
        match res.status().as_u16() {
            202 => {
                accepted += 1;
                let job: Value = res.json().await.unwrap();
                ids.insert(job["id"].as_str().unwrap().to_string());
            }
            409 => {
                assert_problem(res, 409, "idempotency_in_flight").await;
                in_flight += 1;
            }
            other => panic!("answered {other}: {}", res.text().await.unwrap()),
        }
    }
    eprintln!(
        "{}: 50 concurrent POST /v1/jobs, one key: {accepted} × 202 (ids {ids:?}), \
         {in_flight} × 409, job rows {}",
        db.name(),
        app.count("jobs").await
    );
    assert_eq!(app.count("jobs").await, 1);
    assert_eq!(ids.len(), 1, "every 202 names the one job");
    // A retry after the first finished gets its response again.
    let res = post_job(&app, "retry-1", &body).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert!(res.headers().contains_key("location"));
    let again: Value = res.json().await.unwrap();
    assert!(ids.contains(again["id"].as_str().unwrap()));
    // The same key for another request is refused; another key is another job.
    let mut other = body.clone();
    other["proportions"] = serde_json::json!([0.5]);
    assert_problem(
        post_job(&app, "retry-1", &other).await,
        422,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(
        post_job(&app, "retry-2", &other).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(app.count("jobs").await, 2);
    app.stop().await;
}

both_backends!(a_model_upload_retried_with_its_key_gets_the_first_response);
async fn a_model_upload_retried_with_its_key_gets_the_first_response(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    let upload = |bytes: Vec<u8>| {
        app.client
            .post(app.url("/v1/models?name=m"))
            .header("idempotency-key", "upload-1")
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
    };
    let first = upload(mnist_cnn_model(3136, 1)).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = upload(mnist_cnn_model(3136, 1)).await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "the first response, again"
    );
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    let other = upload(mnist_cnn_model(3136, 2)).await.unwrap();
    assert_problem(other, 422, "idempotency_key_reused").await;
    assert_eq!(app.count("models").await, 1);
    assert!(app.tmp_files().is_empty());
    let bad = app
        .client
        .post(app.url("/v1/jobs"))
        .header("idempotency-key", "")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(bad, 400, "invalid_idempotency_key").await;
    app.stop().await;
}
