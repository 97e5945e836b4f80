//! `spawn_app(&db)`: the real service on port 0 with a fresh temp data directory, on the
//! test's database backend (see [`crate::backend`]), and a typed HTTP client for it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use gmfuse::config::Config;
use gmfuse::http::Application;
use gmfuse::jobs::Jobs;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A running service and what a test needs to look inside it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub jobs: Jobs,
    /// The database the service runs on (kept alive, for PostgreSQL, as long as the app).
    pub backend: Backend,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The test defaults: one job slot, two compute threads, the first 1,000 test images, on
/// the database `db`.
pub fn test_config(dir: &Path, db: &Backend) -> Config {
    let mut c = Config::for_tests(dir);
    c.database_url = db.database_url();
    c.workers = 1;
    c.compute_threads = Some(2);
    c.eval_limit = Some(1000);
    c.poll_secs = 0.2;
    c
}

/// Start the service on `db` with the test defaults.
pub async fn spawn_app(db: &Backend) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// Start the service on `db` with the test defaults changed by `f`.
pub async fn spawn_app_with(db: &Backend, f: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path(), db);
    f(&mut config);
    let app = Application::build(config).await.expect("building the app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let jobs = app.jobs();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::new(),
        dir,
        jobs,
        backend: db.clone(),
        shutdown,
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("JSON body")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// POST a raw safetensors body to `/v1/models?<query>`.
    pub async fn upload_model(&self, bytes: Vec<u8>, query: &str) -> Response {
        self.client
            .post(self.url(&format!("/v1/models?{query}")))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .expect("upload")
    }

    /// Upload a model that must be accepted; returns its id.
    pub async fn model_id(&self, bytes: Vec<u8>, name: &str) -> String {
        let res = self.upload_model(bytes, &format!("name={name}")).await;
        let status = res.status();
        let body: Value = res.json().await.expect("JSON");
        assert!(status.is_success(), "upload of {name}: {status} {body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Submit a job that must be accepted; returns its id.
    pub async fn job_id(&self, body: &Value) -> String {
        let res = self.post_json("/v1/jobs", body).await;
        let status = res.status();
        let json: Value = res.json().await.expect("JSON");
        assert_eq!(status, StatusCode::ACCEPTED, "{json}");
        json["id"].as_str().expect("id").to_string()
    }

    /// Poll `GET /v1/jobs/{id}` until `done(job)` holds; panics after `limit`.
    pub async fn wait_job(
        &self,
        id: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let job = self.get_json(&format!("/v1/jobs/{id}")).await;
            if done(&job) {
                return job;
            }
            assert!(
                start.elapsed() < limit,
                "job {id} did not get there in {limit:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Poll until the job reaches a terminal status.
    pub async fn wait_finished(&self, id: &str, limit: Duration) -> Value {
        self.wait_job(id, limit, |j| {
            matches!(
                j["status"].as_str(),
                Some("succeeded" | "failed" | "canceled")
            )
        })
        .await
    }

    /// Files under the committed-blob directory.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        files_under(&self.dir.path().join("blobs"))
    }

    /// Files under the upload staging directory.
    pub fn tmp_files(&self) -> Vec<PathBuf> {
        files_under(&self.dir.path().join("tmp"))
    }

    /// Rows in a table, read straight from the database.
    pub async fn count(&self, table: &str) -> i64 {
        self.backend.count_rows(self.dir.path(), table).await
    }

    /// Assert that no model, dataset or job row, no blob and no temp file exists.
    pub async fn assert_nothing_stored(&self) {
        for table in ["models", "datasets", "jobs", "architectures"] {
            assert_eq!(self.count(table).await, 0, "rows in {table}");
        }
        assert_eq!(self.blob_files(), Vec::<PathBuf>::new(), "blobs");
        assert_eq!(self.tmp_files(), Vec::<PathBuf>::new(), "temp files");
    }

    /// Stop the service (as SIGTERM would) and wait for it; returns the data directory.
    pub async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.server).await;
        self.dir
    }
}

/// Rows in `table` of the database of a service on `db` over `data_dir`.
pub async fn count_rows(db: &Backend, data_dir: &Path, table: &str) -> i64 {
    db.count_rows(data_dir, table).await
}

/// Every file below `dir` (recursively), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Assert a problem+json response with `status` and `code`; returns the body.
pub async fn assert_problem(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(ct, "application/problem+json", "content type");
    let body: Value = res.json().await.expect("problem JSON");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:gmfuse:problem:{code}"), "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// The points of `method`'s curve in a report (`curves: [{method, points}, …]`); panics
/// naming the methods present when it is missing.
pub fn curve<'a>(report: &'a Value, method: &str) -> &'a Value {
    let curves = report["curves"].as_array().expect("curves is a list");
    &curves
        .iter()
        .find(|c| c["method"] == method)
        .unwrap_or_else(|| panic!("no `{method}` curve in {curves:?}"))["points"]
}

/// `method`'s entry of a report's `matchings`.
pub fn matching<'a>(report: &'a Value, method: &str) -> &'a Value {
    let all = report["matchings"].as_array().expect("matchings is a list");
    all.iter()
        .find(|m| m["method"] == method)
        .unwrap_or_else(|| panic!("no `{method}` matching in {all:?}"))
}
