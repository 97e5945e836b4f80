//! Tenants and API keys: another tenant's ids answer 404 exactly as missing ones, lists show
//! only the caller's rows, no weights leak; a missing, malformed or revoked key is 401 with
//! `WWW-Authenticate: Bearer`; with no key in the database the service runs open.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::backend::{Backend, both_backends};
use crate::fixtures::{tiny_mlp_model, tiny_mlp_spec};
use crate::helpers::{TestApp, assert_problem, spawn_app_with};

/// A new key of `tenant`, straight into the app's database (as `gmfuse keys create` does).
async fn key(app: &TestApp, tenant: &str) -> (String, uuid::Uuid) {
    let k = gmfuse::auth::generate().unwrap();
    let rec = app
        .jobs
        .db
        .insert_key(tenant, &k.prefix, &k.sha256)
        .await
        .unwrap();
    (k.secret, rec.id)
}

async fn call(app: &TestApp, method: Method, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

async fn upload(app: &TestApp, key: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url("/v1/models?name=m"))
        .bearer_auth(key)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

both_backends!(another_tenants_ids_answer_404_everywhere_and_none_of_its_weights);
async fn another_tenants_ids_answer_404_everywhere_and_none_of_its_weights(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    let (a, _) = key(&app, "team-a").await;
    let (b, _) = key(&app, "team-b").await;
    let res = app
        .client
        .post(app.url("/v1/architectures"))
        .bearer_auth(&a)
        .json(&tiny_mlp_spec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let weights = tiny_mlp_model(3);
    let (status, m1) = upload(&app, &a, weights.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{m1}");
    let (_, m2) = upload(&app, &a, tiny_mlp_model(4)).await;
    let (m1, m2) = (m1["id"].as_str().unwrap(), m2["id"].as_str().unwrap());
    let job = serde_json::json!({"models": [m1, m2], "architecture": "tiny-mlp"});
    let res = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&a)
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let j: Value = res.json().await.unwrap();
    let j = j["id"].as_str().unwrap();

    let missing = uuid::Uuid::now_v7().to_string();
    let probes = [
        (Method::GET, format!("/v1/models/{m1}"), "model_not_found"),
        (
            Method::GET,
            format!("/v1/models/{m1}/weights"),
            "model_not_found",
        ),
        (
            Method::DELETE,
            format!("/v1/models/{m1}"),
            "model_not_found",
        ),
        (Method::GET, format!("/v1/jobs/{j}"), "job_not_found"),
        (
            Method::GET,
            format!("/v1/jobs/{j}/attempts"),
            "job_not_found",
        ),
        (Method::GET, format!("/v1/jobs/{j}/events"), "job_not_found"),
        (
            Method::POST,
            format!("/v1/jobs/{j}/cancel"),
            "job_not_found",
        ),
        (Method::GET, format!("/v1/jobs/{j}/report"), "job_not_found"),
        (
            Method::GET,
            format!("/v1/jobs/{j}/report.svg"),
            "job_not_found",
        ),
        (
            Method::GET,
            format!("/v1/jobs/{j}/matching.svg"),
            "job_not_found",
        ),
        (Method::GET, format!("/v1/jobs/{j}/fused"), "job_not_found"),
        (
            Method::GET,
            "/v1/architectures/tiny-mlp".into(),
            "architecture_not_found",
        ),
    ];
    for (method, path, code) in &probes {
        let theirs = call(&app, method.clone(), path, Some(b.as_str())).await;
        let body = assert_problem(theirs, 404, code).await;
        // A problem document of a few hundred bytes: none of A's weights.
        assert!(body.to_string().len() < 512, "{body}");
        // Exactly what an id that does not exist gets, but for the id itself.
        let absent = path.replace(m1, &missing).replace(j, &missing);
        if absent != *path {
            let res = call(&app, method.clone(), &absent, Some(b.as_str())).await;
            let other = assert_problem(res, 404, code).await;
            assert_eq!(
                body["detail"]
                    .as_str()
                    .unwrap()
                    .replace(m1, &missing)
                    .replace(j, &missing),
                other["detail"],
                "{path}"
            );
        }
    }
    // Submitting with another tenant's models is a 404 too, and queues nothing.
    let res = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&b)
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "model_not_found").await;
    // Lists show only the caller's rows; presets and built-in datasets are shared.
    for (path, expected) in [("/v1/models", 0), ("/v1/jobs", 0)] {
        let list: Value = call(&app, Method::GET, path, Some(b.as_str()))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["items"].as_array().unwrap().len(), expected, "{path}");
    }
    let archs: Value = call(&app, Method::GET, "/v1/architectures", Some(b.as_str()))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        archs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["builtin"] == true)
    );
    let mine: Value = call(&app, Method::GET, "/v1/models", Some(a.as_str()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);
    // The same bytes uploaded by B are B's own model.
    let (status, theirs) = upload(&app, &b, weights.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(theirs["id"], m1);
    // A's model and job are untouched.
    let res = call(
        &app,
        Method::GET,
        &format!("/v1/models/{m1}/weights"),
        Some(a.as_str()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().to_vec(), weights);
    assert_eq!(app.count("jobs").await, 1);
    app.stop().await;
}

both_backends!(missing_malformed_and_revoked_keys_are_401_once_a_key_exists);
async fn missing_malformed_and_revoked_keys_are_401_once_a_key_exists(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    // Open mode: no key in the database, requests act as the default tenant.
    assert_eq!(app.get("/v1/models").await.status(), StatusCode::OK);
    let (k, id) = key(&app, "team-a").await;
    assert_eq!(
        call(&app, Method::GET, "/v1/models", Some(k.as_str()))
            .await
            .status(),
        StatusCode::OK
    );
    let malformed = "gmf_not-a-key".to_string();
    let unknown = gmfuse::auth::generate().unwrap().secret;
    for key in [None, Some(malformed.as_str()), Some(unknown.as_str())] {
        let res = call(&app, Method::GET, "/v1/models", key).await;
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"gmfuse\"");
        assert_problem(res, 401, "unauthorized").await;
    }
    let res = app
        .client
        .get(app.url("/v1/models"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    assert!(app.jobs.db.revoke_key(id).await.unwrap());
    let res = call(&app, Method::GET, "/v1/models", Some(k.as_str())).await;
    assert_problem(res, 401, "unauthorized").await;
    // Health and readiness stay open.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    app.stop().await;
}

both_backends!(require_auth_refuses_requests_before_any_key_exists);
async fn require_auth_refuses_requests_before_any_key_exists(db: Backend) {
    let app = spawn_app_with(&db, |c| c.require_auth = true).await;
    assert_problem(app.get("/v1/jobs").await, 401, "unauthorized").await;
    app.stop().await;
}

both_backends!(metrics_want_their_key_when_one_is_set);
async fn metrics_want_their_key_when_one_is_set(db: Backend) {
    let app = spawn_app_with(&db, |c| c.metrics_key = Some("scrape-secret".into())).await;
    assert_problem(app.get("/metrics").await, 401, "unauthorized").await;
    let res = call(&app, Method::GET, "/metrics", Some("scrape-secret")).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}
