//! The malformed corpus, against the real binary: hundreds of broken safetensors bodies,
//! architecture, job and dataset documents (see `corpus.rs`) are posted to a live `gmfuse
//! serve`; every answer must be a 4xx `application/problem+json`, nothing may be stored (no new
//! row, no blob, no temp file), the server must stay alive, and its peak resident memory
//! (`VmHWM` of the child process) must stay under 200 MB — also across a valid 96 MiB model
//! upload and one with a NaN in its last weight.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gmfuse::engine::weights::WeightSet;
use serde_json::Value;

use crate::backend::{Backend, both_backends};
use crate::corpus;
use crate::fixtures::{mnist_cnn_model, safetensors};
use crate::helpers::{count_rows, files_under};

/// Peak memory the server may reach during the corpus.
const MAX_RSS_BYTES: u64 = 200 * 1000 * 1000;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &Backend, dir: &Path) -> Server {
    let bin = std::env::var("GMFUSE_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_gmfuse").to_string());
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .env("GMFUSE_ADDR", "127.0.0.1:0")
        .env("GMFUSE_DATA_DIR", dir)
        .env("GMFUSE_LOG_FORMAT", "json")
        .env("GMFUSE_NO_DEMO", "true")
        .env("GMFUSE_WORKERS", "0")
        .env("GMFUSE_COMPUTE_THREADS", "2")
        .env("RUST_LOG", "warn,gmfuse=info")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(url) = db.database_url() {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("starting gmfuse");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "gmfuse listening"
            {
                let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("gmfuse did not start");
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

/// `VmHWM` (peak resident set) of a process, bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Assert a 4xx problem+json answer; returns the status.
async fn assert_refused(label: &str, res: reqwest::Response) -> u16 {
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = res.bytes().await.unwrap_or_default();
    assert!(
        (400..500).contains(&status),
        "{label}: status {status}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(ct, "application/problem+json", "{label}: content type");
    let problem: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(problem["status"], status, "{label}: {problem}");
    assert!(
        problem["code"].is_string() && problem["detail"].is_string(),
        "{label}: {problem}"
    );
    status
}

const TABLES: [&str; 4] = ["models", "datasets", "jobs", "architectures"];

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    every_malformed_input_is_a_4xx_problem_and_stores_nothing
);
async fn every_malformed_input_is_a_4xx_problem_and_stores_nothing(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&db, dir.path());
    let pid = server.child.id();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = |p: &str| format!("{}{p}", server.base);
    // Two valid models, so that job documents reach job validation.
    let mut ids = Vec::new();
    for seed in [1, 2] {
        let res = client
            .post(url("/v1/models"))
            .body(mnist_cnn_model(3136, seed))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        ids.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut before = Vec::new();
    for t in TABLES {
        before.push(count_rows(&db, dir.path(), t).await);
    }
    let blobs_before = files_under(&dir.path().join("blobs"));
    let started = Instant::now();
    let (mut n_st, mut n_arch, mut n_job, mut n_data) = (0, 0, 0, 0);

    let mut bodies = corpus::safetensors_cases();
    bodies.extend(
        corpus::safetensors_mutations(0x5eed, 400)
            .into_iter()
            .filter(|(_, b)| WeightSet::from_bytes(b).is_err()),
    );
    for (label, body) in bodies {
        for query in ["", "?architecture=mnist-cnn"] {
            let res = client
                .post(url(&format!("/v1/models{query}")))
                .header("content-type", "application/octet-stream")
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_refused(&label, res).await;
            n_st += 1;
        }
    }
    for (label, text) in corpus::architecture_cases() {
        let res = client
            .post(url("/v1/architectures"))
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .unwrap();
        assert_refused(&label, res).await;
        n_arch += 1;
    }
    for (label, text) in corpus::job_cases(&ids[0], &ids[1]) {
        let res = client
            .post(url("/v1/jobs"))
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .unwrap();
        assert_refused(&label, res).await;
        n_job += 1;
    }
    for (label, images, labels) in corpus::idx_cases() {
        let form = reqwest::multipart::Form::new()
            .part(
                "images",
                reqwest::multipart::Part::bytes(images).file_name("i"),
            )
            .part(
                "labels",
                reqwest::multipart::Part::bytes(labels).file_name("l"),
            );
        let res = client
            .post(url("/v1/datasets?name=bad"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_refused(&label, res).await;
        n_data += 1;
    }
    let total = n_st + n_arch + n_job + n_data;
    eprintln!(
        "malformed corpus: {total} requests ({n_st} safetensors, {n_arch} architectures, \
         {n_job} jobs, {n_data} datasets) in {:.1?}",
        started.elapsed()
    );
    assert!(
        n_st >= 400 && n_arch >= 80 && n_job >= 50,
        "{n_st} {n_arch} {n_job}"
    );
    for (t, b) in TABLES.iter().zip(&before) {
        assert_eq!(count_rows(&db, dir.path(), t).await, *b, "new rows in {t}");
    }
    assert_eq!(
        files_under(&dir.path().join("blobs")),
        blobs_before,
        "new blobs"
    );
    assert_eq!(
        files_under(&dir.path().join("tmp")),
        Vec::<std::path::PathBuf>::new(),
        "temp files"
    );
    let corpus_peak = peak_rss(pid);

    // A 96 MiB model with a NaN as its very last weight, then the same model valid.
    let n = 24 << 20;
    let mut values = vec![0.25f32; n];
    values[n - 1] = f32::NAN;
    let nan_model = safetensors(&[("w", vec![n], values.clone())]);
    let res = client
        .post(url("/v1/models"))
        .body(nan_model)
        .send()
        .await
        .unwrap();
    let status = assert_refused("96 MiB model with a NaN", res).await;
    assert_eq!(status, 422);
    values[n - 1] = 0.5;
    let res = client
        .post(url("/v1/models"))
        .body(safetensors(&[("w", vec![n], values)]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let peak = peak_rss(pid);
    eprintln!(
        "server peak RSS (VmHWM): {:.1} MB after the corpus, {:.1} MB after two 96 MiB uploads",
        corpus_peak as f64 / 1e6,
        peak as f64 / 1e6
    );
    assert!(peak < MAX_RSS_BYTES, "peak RSS {peak} bytes");
    let res = client.get(url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the server is alive");
}
