//! Scale-out with the real binary on PostgreSQL: one `gmfuse serve --workers 0` (API only) and
//! two `gmfuse worker` processes share one database and one data directory.
//!
//! - 20 small jobs all succeed, each is run once (its attempt log has one attempt, succeeded),
//!   and both workers run some of them.
//! - A worker killed with SIGKILL in the middle of a job: the job's lease expires, the other
//!   worker's rescue re-queues it, and it completes there with exactly one result; the time
//!   from the kill to completion is printed.
//!
//! The PostgreSQL server is the one of [`crate::backend`]; the tests say SKIPPED without it,
//! and without trained models.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend::Backend;
use crate::fixtures::{job_request, require_models};

/// Seconds of a lease in the kill test: short, so a dead worker's job comes back quickly.
const LEASE_SECS: &str = "3";
/// Seconds of a lease where no worker dies: long enough that a slow heartbeat on a busy
/// machine never loses one.
const SAFE_LEASE_SECS: &str = "30";

fn binary() -> String {
    std::env::var("GMFUSE_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gmfuse").to_string())
}

/// A `gmfuse` child process, its JSON log lines, and what it said when it was ready. Dropping
/// it kills the process (SIGKILL), so a failing test leaves nothing running.
struct Proc {
    name: String,
    child: Child,
    logs: Arc<Mutex<Vec<Value>>>,
    ready: Value,
}

impl Proc {
    /// Start `gmfuse <args>` over `data_dir` and `db` with `env`, and wait (up to a minute) for
    /// the log line whose message is `ready`.
    fn start(
        name: &str,
        args: &[&str],
        db: &Backend,
        data_dir: &Path,
        env: &[(&str, &str)],
        ready: &str,
    ) -> Proc {
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .env_clear()
            .env(
                "DATABASE_URL",
                db.database_url().expect("a PostgreSQL backend"),
            )
            .env("GMFUSE_DATA_DIR", data_dir)
            .env("GMFUSE_ADDR", "127.0.0.1:0")
            .env("GMFUSE_LOG_FORMAT", "json")
            .env("GMFUSE_NO_DEMO", "true")
            .env("GMFUSE_COMPUTE_THREADS", "1")
            .env("GMFUSE_LEASE_SECS", LEASE_SECS)
            .env("GMFUSE_HEARTBEAT_SECS", "0.5")
            .env("GMFUSE_POLL_SECS", "0.5")
            .env("GMFUSE_SHUTDOWN_GRACE_SECS", "5")
            .env("RUST_LOG", "info,sqlx=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let start = Instant::now();
        loop {
            let found = logs
                .lock()
                .unwrap()
                .iter()
                .find(|v| v["message"] == ready)
                .cloned();
            if let Some(ready) = found {
                return Proc {
                    name: name.to_string(),
                    child,
                    logs,
                    ready,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited before it was ready: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{name} was not ready in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `gmfuse serve --workers 0`: the API alone.
    fn api(db: &Backend, data_dir: &Path) -> Proc {
        Proc::start(
            "api",
            &["serve", "--workers", "0"],
            db,
            data_dir,
            &[],
            "gmfuse listening",
        )
    }

    /// `gmfuse worker` with one job slot and a lease of `lease` seconds, evaluating on the
    /// first `eval_limit` samples.
    fn worker(
        name: &str,
        db: &Backend,
        data_dir: &Path,
        (lease, eval_limit): (&str, usize),
        health: bool,
    ) -> Proc {
        let limit = eval_limit.to_string();
        let mut env = vec![
            ("GMFUSE_EVAL_LIMIT", limit.as_str()),
            ("GMFUSE_LEASE_SECS", lease),
        ];
        if health {
            env.push(("GMFUSE_WORKER_HEALTH_ADDR", "127.0.0.1:0"));
        }
        Proc::start(
            name,
            &["worker"],
            db,
            data_dir,
            &env,
            "gmfuse worker running",
        )
    }

    /// The API's base URL.
    fn base(&self) -> String {
        format!("http://{}", self.ready["addr"].as_str().unwrap())
    }

    /// A worker's process id, the prefix of the lease owners it writes (`<id>/<slot>`).
    fn process(&self) -> String {
        self.ready["process"].as_str().unwrap().to_string()
    }

    /// Send SIGTERM and wait for the exit; true when it exited with status 0.
    fn terminate(mut self) -> bool {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        sent && self.child.wait().is_ok_and(|s| s.success())
    }

    /// How many log lines have this message.
    fn count_logs(&self, message: &str) -> usize {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["message"] == message)
            .count()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!("killing {}", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A reqwest client on the API.
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.unwrap()
    }

    async fn upload(&self, bytes: Vec<u8>, name: &str) -> String {
        let res = self
            .http
            .post(format!("{}/v1/models?name={name}", self.base))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["id"].as_str().expect("a model id").to_string()
    }

    async fn submit(&self, body: &Value) -> String {
        let res = self
            .http
            .post(format!("{}/v1/jobs", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 202);
        let job: Value = res.json().await.unwrap();
        job["id"].as_str().unwrap().to_string()
    }

    /// Poll a job until `done(job)` holds; panics after `limit`.
    async fn wait(&self, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let job = self.get(&format!("/v1/jobs/{id}")).await;
            if done(&job) {
                return job;
            }
            assert!(
                start.elapsed() < limit,
                "job {id} not there in {limit:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The attempt log of a job as `(worker process, outcome)`.
    async fn attempts(&self, id: &str) -> Vec<(String, Option<String>)> {
        let log = self.get(&format!("/v1/jobs/{id}/attempts")).await;
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let worker = a["worker"].as_str().unwrap();
                let process = worker.split('/').next().unwrap().to_string();
                (process, a["outcome"].as_str().map(String::from))
            })
            .collect()
    }
}

fn terminal(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("succeeded" | "failed" | "canceled")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_an_api_process_run_twenty_jobs_each_once() {
    let models = require_models!();
    let Some(db) = Backend::postgres(module_path!()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let api = Proc::api(&db, dir.path());
    let w1 = Proc::worker("worker 1", &db, dir.path(), (SAFE_LEASE_SECS, 200), true);
    let w2 = Proc::worker("worker 2", &db, dir.path(), (SAFE_LEASE_SECS, 200), false);
    let client = Client {
        http: reqwest::Client::new(),
        base: api.base(),
    };

    // The health listener of worker 1 answers; worker 2 has none.
    let health = w1.ready["health"].as_str().expect("a health address");
    let res = client
        .http
        .get(format!("http://{health}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(w2.ready["health"].is_null());

    let a = client.upload(models.a, "a").await;
    let b = client.upload(models.b, "b").await;
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let mut body = job_request(&a, &b);
        body["proportions"] = json!([0.0, 0.5, 1.0]);
        ids.push(client.submit(&body).await);
    }
    let mut per_worker: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let job = client.wait(id, Duration::from_secs(600), terminal).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempt"], 1, "{job}");
        let attempts = client.attempts(id).await;
        assert_eq!(attempts.len(), 1, "job {id} ran once: {attempts:?}");
        assert_eq!(attempts[0].1.as_deref(), Some("succeeded"));
        *per_worker.entry(attempts[0].0.clone()).or_default() += 1;
        let report = client.get(&format!("/v1/jobs/{id}/report")).await;
        assert_eq!(report["samples"], 200);
    }
    eprintln!(
        "20 jobs on 2 worker processes in {:.1} s: {per_worker:?}",
        started.elapsed().as_secs_f64()
    );
    let workers: Vec<String> = per_worker.keys().cloned().collect();
    let mut expected = vec![w1.process(), w2.process()];
    expected.sort();
    assert_eq!(
        workers, expected,
        "both workers, and only they, ran jobs: {per_worker:?}"
    );
    assert_eq!(
        w1.count_logs("job ended") + w2.count_logs("job ended"),
        20,
        "20 attempts ended in the workers' logs"
    );

    // SIGTERM stops every process cleanly.
    assert!(w1.terminate(), "worker 1 exits 0 on SIGTERM");
    assert!(w2.terminate(), "worker 2 exits 0 on SIGTERM");
    assert!(api.terminate(), "the API exits 0 on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_worker_killed_mid_run_completes_once_on_the_other() {
    let models = require_models!();
    let Some(db) = Backend::postgres(module_path!()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let api = Proc::api(&db, dir.path());
    // 2,000 samples and 11 proportions on one thread: seconds of evaluation to be killed in.
    let w1 = Proc::worker("worker 1", &db, dir.path(), (LEASE_SECS, 2000), false);
    let w2 = Proc::worker("worker 2", &db, dir.path(), (LEASE_SECS, 2000), false);
    let client = Client {
        http: reqwest::Client::new(),
        base: api.base(),
    };
    let a = client.upload(models.a, "a").await;
    let b = client.upload(models.b, "b").await;
    let id = client.submit(&job_request(&a, &b)).await;
    client
        .wait(&id, Duration::from_secs(300), |j| {
            j["progress"]["stage"]
                .as_str()
                .is_some_and(|s| s.starts_with("evaluate"))
        })
        .await;
    let owner = client.attempts(&id).await[0].0.clone();
    let (victim, survivor) = if owner == w1.process() {
        (w1, w2)
    } else {
        assert_eq!(owner, w2.process(), "a worker process holds the job");
        (w2, w1)
    };
    let victim_process = victim.process();
    let killed = Instant::now();
    drop(victim); // SIGKILL
    eprintln!("killed the worker running job {id} with SIGKILL");

    let retried = client
        .wait(&id, Duration::from_secs(60), |j| j["attempt"] == 2)
        .await;
    let reclaimed = killed.elapsed();
    let job = client.wait(&id, Duration::from_secs(600), terminal).await;
    let took = killed.elapsed();
    eprintln!(
        "kill -9 to completion on the other worker: {:.2} s (re-claimed after {:.2} s with a \
         lease of {LEASE_SECS} s, then the whole job ran again)",
        took.as_secs_f64(),
        reclaimed.as_secs_f64()
    );
    assert_eq!(retried["attempt"], 2);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempt"], 2, "{job}");
    let attempts = client.attempts(&id).await;
    assert_eq!(
        attempts,
        [
            (victim_process, Some("expired".to_string())),
            (survivor.process(), Some("succeeded".to_string())),
        ],
        "the dead worker's attempt expired, the other one's succeeded"
    );
    let report = client.get(&format!("/v1/jobs/{id}/report")).await;
    assert_eq!(report["samples"], 2000);
    assert_eq!(survivor.count_logs("job ended"), 1, "one result");
    assert_eq!(db.count_rows(dir.path(), "jobs").await, 1);
    assert_eq!(db.count_rows(dir.path(), "job_attempts").await, 2);
    assert!(survivor.terminate());
    assert!(api.terminate());
}
