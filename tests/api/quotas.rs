//! Per-tenant quotas and the request rate (issue 7, part 3), on both databases: N concurrent
//! job submissions or uploads of one tenant never get past its quota together (the stores
//! check it in the inserting transaction), the refused ones answer 429 problem+json
//! `quota_exceeded` with `Retry-After` and leave no row, blob or temp file, another tenant is
//! not affected; a tenant past its token bucket gets 429 `rate_limited`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::fixtures::{tiny_mlp_model, tiny_mlp_spec};
use crate::helpers::{TestApp, assert_problem, spawn_app_with};

/// A new key of `tenant`, straight into the app's database (as `gmfuse keys create` does).
async fn key(app: &TestApp, tenant: &str) -> String {
    let k = gmfuse::auth::generate().unwrap();
    app.jobs
        .db
        .insert_key(tenant, &k.prefix, &k.sha256)
        .await
        .unwrap();
    k.secret
}

async fn upload(app: &TestApp, key: &str, bytes: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/v1/models"))
        .bearer_auth(key)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn submit(app: &TestApp, key: &str, job: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/jobs"))
        .bearer_auth(key)
        .json(job)
        .send()
        .await
        .unwrap()
}

/// Two models and the tiny-mlp architecture of the tenant of `key`; a job over them.
async fn job_of(app: &TestApp, key: &str) -> Value {
    let res = app
        .client
        .post(app.url("/v1/architectures"))
        .bearer_auth(key)
        .json(&tiny_mlp_spec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut ids = Vec::new();
    for seed in [1, 2] {
        let res = upload(app, key, tiny_mlp_model(seed)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        ids.push(res.json::<Value>().await.unwrap()["id"].clone());
    }
    json!({"models": ids, "architecture": "tiny-mlp", "dataset": "mnist-test",
           "proportions": [0.5]})
}

/// The quota under test: 3 queued + running jobs per tenant.
const MAX_JOBS: usize = 3;
/// Concurrent submissions racing for it.
const SUBMISSIONS: usize = 24;

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_submissions_never_exceed_the_tenants_job_quota
);
async fn concurrent_submissions_never_exceed_the_tenants_job_quota(db: Backend) {
    let app = spawn_app_with(&db, |c| {
        c.workers = 0;
        c.tenant_max_active_jobs = MAX_JOBS as u64;
    })
    .await;
    let (a, b) = (key(&app, "team-a").await, key(&app, "team-b").await);
    let job = job_of(&app, &a).await;
    let sends = (0..SUBMISSIONS).map(|_| submit(&app, &a, &job));
    let answers = futures::future::join_all(sends).await;
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for res in answers {
        match res.status() {
            StatusCode::ACCEPTED => accepted.push(res.json::<Value>().await.unwrap()["id"].clone()),
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(res.headers()["retry-after"], "10");
                let body = assert_problem(res, 429, "quota_exceeded").await;
                assert!(
                    body["detail"]
                        .as_str()
                        .unwrap()
                        .contains("3 queued or running jobs"),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("submission answered {other}"),
        }
    }
    eprintln!(
        "{}: {SUBMISSIONS} concurrent submissions, quota {MAX_JOBS}: {} accepted, {refused} refused",
        db.name(),
        accepted.len()
    );
    assert_eq!(accepted.len(), MAX_JOBS, "exactly the quota is accepted");
    assert_eq!(
        app.count("jobs").await,
        MAX_JOBS as i64,
        "no row for a refused job"
    );

    // Another tenant has a quota of its own.
    let job_b = job_of(&app, &b).await;
    assert_eq!(
        submit(&app, &b, &job_b).await.status(),
        StatusCode::ACCEPTED
    );
    // A job that ends frees its place.
    let id = accepted[0].as_str().unwrap();
    let res = app
        .client
        .post(app.url(&format!("/v1/jobs/{id}/cancel")))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(submit(&app, &a, &job).await.status(), StatusCode::ACCEPTED);
    let res = submit(&app, &a, &job).await;
    assert_problem(res, 429, "quota_exceeded").await;
    app.stop().await;
}

/// Distinct models racing for a storage quota of two and a half of them.
const UPLOADS: u32 = 12;

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_uploads_never_exceed_the_tenants_storage_quota_and_leave_no_blob
);
async fn concurrent_uploads_never_exceed_the_tenants_storage_quota_and_leave_no_blob(db: Backend) {
    let size = tiny_mlp_model(0).len() as u64;
    let app = spawn_app_with(&db, |c| {
        c.workers = 0;
        c.max_concurrent_uploads = UPLOADS as usize;
        c.tenant_max_bytes = size * 5 / 2;
    })
    .await;
    let (a, b) = (key(&app, "team-a").await, key(&app, "team-b").await);
    let sends = (0..UPLOADS).map(|seed| upload(&app, &a, tiny_mlp_model(100 + seed)));
    let answers = futures::future::join_all(sends).await;
    let (mut created, mut refused) = (0, 0);
    for res in answers {
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(res.headers()["retry-after"], "60");
                assert_problem(res, 429, "quota_exceeded").await;
                refused += 1;
            }
            other => panic!("upload answered {other}"),
        }
    }
    eprintln!(
        "{}: {UPLOADS} concurrent uploads of {size} bytes, quota {}: {created} stored, \
         {refused} refused",
        db.name(),
        size * 5 / 2
    );
    assert_eq!(created, 2, "two models fit in 2.5 models' bytes");
    assert_eq!(app.count("models").await, 2);
    assert_eq!(app.blob_files().len(), 2, "a refused upload leaves no blob");
    assert!(app.tmp_files().is_empty(), "no temp file");
    // Full: refused before the body is read; the same bytes again are the existing model.
    assert_problem(
        upload(&app, &a, tiny_mlp_model(999)).await,
        429,
        "quota_exceeded",
    )
    .await;
    // Another tenant stores its own bytes.
    assert_eq!(
        upload(&app, &b, tiny_mlp_model(100)).await.status(),
        StatusCode::CREATED
    );
    app.stop().await;
}

both_backends!(requests_past_a_tenants_burst_are_rate_limited_and_other_tenants_are_not);
async fn requests_past_a_tenants_burst_are_rate_limited_and_other_tenants_are_not(db: Backend) {
    // 1 request a second, bursts of 5: the 6th request in a row is refused.
    let app = spawn_app_with(&db, |c| {
        c.workers = 0;
        c.tenant_rate_per_sec = 1;
        c.tenant_rate_burst = 5;
    })
    .await;
    let (a, b) = (key(&app, "team-a").await, key(&app, "team-b").await);
    let get = |k: &str| {
        app.client
            .get(app.url("/v1/models"))
            .bearer_auth(k.to_string())
            .send()
    };
    for _ in 0..5 {
        assert_eq!(get(&a).await.unwrap().status(), StatusCode::OK);
    }
    let res = get(&a).await.unwrap();
    let retry: u32 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, 1, "one token a second");
    assert_problem(res, 429, "rate_limited").await;
    assert_eq!(get(&b).await.unwrap().status(), StatusCode::OK);
    // Health and readiness are not rate limited.
    for _ in 0..10 {
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }
    // A token is back a second later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(get(&a).await.unwrap().status(), StatusCode::OK);
    app.stop().await;
}
