//! Crash recovery with the real binary: a job whose server is killed with SIGKILL mid-run is
//! picked up again by the next server on the same data directory once its lease expires, and
//! completes once — with no temp files left behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::backend::{Backend, both_backends};
use crate::fixtures::{job_request, require_models};
use crate::helpers::{count_rows, files_under};

/// A `gmfuse` child process and its base URL.
struct Server {
    child: Child,
    base: String,
}

fn binary() -> String {
    std::env::var("GMFUSE_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gmfuse").to_string())
}

/// Start `gmfuse serve` on a free port over `data_dir` and the database `db`; waits for its
/// "listening" log line.
fn start(db: &Backend, data_dir: &Path, eval_limit: Option<usize>) -> Server {
    let mut cmd = Command::new(binary());
    cmd.arg("serve")
        .env("GMFUSE_ADDR", "127.0.0.1:0")
        .env("GMFUSE_DATA_DIR", data_dir)
        .env("GMFUSE_LOG_FORMAT", "json")
        .env("GMFUSE_NO_DEMO", "true")
        .env("GMFUSE_WORKERS", "1")
        .env("GMFUSE_COMPUTE_THREADS", "2")
        .env("GMFUSE_LEASE_SECS", "2")
        .env("GMFUSE_HEARTBEAT_SECS", "0.5")
        .env("GMFUSE_POLL_SECS", "0.2")
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(url) = db.database_url() {
        cmd.env("DATABASE_URL", url);
    }
    match eval_limit {
        Some(n) => cmd.env("GMFUSE_EVAL_LIMIT", n.to_string()),
        None => cmd.env_remove("GMFUSE_EVAL_LIMIT"),
    };
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

async fn get(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_job_killed_mid_run_completes_once_after_restart
);
async fn a_job_killed_mid_run_completes_once_after_restart(db: Backend) {
    let models = require_models!();
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    // First server: the whole test set, so the job is still running when it is killed.
    let mut first = start(&db, dir.path(), None);
    let mut ids = Vec::new();
    for (name, bytes) in [("a", models.a), ("b", models.b)] {
        let res = client
            .post(format!("{}/v1/models?name={name}", first.base))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let m: Value = res.json().await.unwrap();
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    let res = client
        .post(format!("{}/v1/jobs", first.base))
        .json(&job_request(&ids[0], &ids[1]))
        .send()
        .await
        .unwrap();
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job_url = |base: &str| format!("{base}/v1/jobs/{id}");
    for _ in 0..1200 {
        let job = get(&client, job_url(&first.base)).await;
        if job["progress"]["stage"]
            .as_str()
            .is_some_and(|s| s.starts_with("evaluate"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.child.kill().expect("SIGKILL");
    first.child.wait().unwrap();
    eprintln!("killed the first server mid-job");

    // Second server on the same directory: it re-queues the expired lease and runs the job.
    let mut second = start(&db, dir.path(), Some(500));
    let mut job = Value::Null;
    for _ in 0..3000 {
        job = get(&client, job_url(&second.base)).await;
        if matches!(
            job["status"].as_str(),
            Some("succeeded" | "failed" | "canceled")
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempt"], 2, "{job}");
    let attempts = get(&client, format!("{}/attempts", job_url(&second.base))).await;
    let outcomes: Vec<&str> = attempts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["expired", "succeeded"], "{attempts}");
    let workers: Vec<&str> = attempts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["worker"].as_str().unwrap())
        .collect();
    assert_ne!(workers[0], workers[1], "two different processes ran it");
    let report = get(&client, format!("{}/report", job_url(&second.base))).await;
    assert_eq!(report["samples"], 500, "the result is the second attempt's");

    // Stop the second server gracefully (SIGTERM) and look at what is on disk.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(second.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(second.child.wait().unwrap().success(), "graceful exit");
    assert_eq!(count_rows(&db, dir.path(), "jobs").await, 1);
    assert_eq!(count_rows(&db, dir.path(), "job_attempts").await, 2);
    let tmp = files_under(&dir.path().join("tmp"));
    assert!(tmp.is_empty(), "orphan temp files: {tmp:?}");
}
