//! What a job leaves on disk (issue 7, part 5), on both databases: fused weights for 50
//! proportions outside the job's list are computed per request and stored nowhere, while the
//! job's own proportion is kept once; `DELETE /v1/jobs/{id}` refuses a queued job (409
//! `job_active`), answers 404 to another tenant, and deletes an ended job with its report,
//! attempts, outputs and the blobs nothing else names.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::fixtures::{tiny_mlp_model, tiny_mlp_spec};
use crate::helpers::{TestApp, assert_problem, spawn_app_with};

async fn key(app: &TestApp, tenant: &str) -> String {
    let k = gmfuse::auth::generate().unwrap();
    app.jobs
        .db
        .insert_key(tenant, &k.prefix, &k.sha256)
        .await
        .unwrap();
    k.secret
}

async fn call(app: &TestApp, method: Method, path: &str, key: &str) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn upload(app: &TestApp, key: &str, seed: u32) -> String {
    let res = app
        .client
        .post(app.url("/v1/models"))
        .bearer_auth(key)
        .header("content-type", "application/octet-stream")
        .body(tiny_mlp_model(seed))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    fused_outputs_stay_bounded_and_an_ended_job_is_deleted_with_what_only_it_names
);
async fn fused_outputs_stay_bounded_and_an_ended_job_is_deleted_with_what_only_it_names(
    db: Backend,
) {
    let app = spawn_app_with(&db, |c| {
        c.workers = 0;
        c.eval_limit = Some(50);
    })
    .await;
    let (a, b) = (key(&app, "team-a").await, key(&app, "team-b").await);
    let res = app
        .client
        .post(app.url("/v1/architectures"))
        .bearer_auth(&a)
        .json(&tiny_mlp_spec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (m1, m2) = (upload(&app, &a, 1).await, upload(&app, &a, 2).await);
    let job = json!({"models": [m1, m2], "architecture": "tiny-mlp", "dataset": "mnist-test",
                     "proportions": [0.5]});
    let res = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&a)
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/jobs/{id}");
    assert_problem(
        call(&app, Method::DELETE, &path, &a).await,
        409,
        "job_active",
    )
    .await;
    app.jobs.run_pending_jobs().await.unwrap();
    let done: Value = call(&app, Method::GET, &path, &a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");

    // The job's own proportion is stored once; 50 others are served and not stored.
    let fused = |p: f64| {
        let url = app.url(&format!("{path}/fused?proportion={p}"));
        app.client.get(url).bearer_auth(a.clone()).send()
    };
    assert_eq!(fused(0.5).await.unwrap().status(), StatusCode::OK);
    let stored = app.blob_files().len();
    assert_eq!(stored, 3, "two models and the job's output");
    let mut etags = std::collections::BTreeSet::new();
    for i in 1..=50 {
        let res = fused(f64::from(i) / 101.0).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        etags.insert(res.headers()["etag"].to_str().unwrap().to_string());
        assert!(res.bytes().await.unwrap().len() > 100);
    }
    assert_eq!(etags.len(), 50, "50 different files");
    assert_eq!(app.blob_files().len(), stored, "nothing stored for them");
    assert_eq!(app.count("job_outputs").await, 1);
    // Served again: the same bytes (the ETag is their sha256).
    let again = fused(1.0 / 101.0).await.unwrap();
    assert!(etags.contains(again.headers()["etag"].to_str().unwrap()));

    // Model 1 goes; its blob stays while the job names it.
    assert_eq!(
        call(&app, Method::DELETE, &format!("/v1/models/{m1}"), &a)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.blob_files().len(), stored);
    // Another tenant's delete is a 404, as for a job that does not exist.
    assert_problem(
        call(&app, Method::DELETE, &path, &b).await,
        404,
        "job_not_found",
    )
    .await;
    assert_eq!(
        call(&app, Method::DELETE, &path, &a).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        call(&app, Method::GET, &path, &a).await,
        404,
        "job_not_found",
    )
    .await;
    assert_problem(
        call(&app, Method::DELETE, &path, &a).await,
        404,
        "job_not_found",
    )
    .await;
    for table in ["jobs", "job_outputs", "job_blobs", "job_attempts"] {
        assert_eq!(app.count(table).await, 0, "rows in {table}");
    }
    // Left: model 2's blob (its row still names it).
    assert_eq!(app.blob_files().len(), 1);
    let res = call(&app, Method::GET, &format!("/v1/models/{m2}/weights"), &a).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}
