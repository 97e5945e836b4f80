//! A job's life seen from outside: cancel (queued and running), the SSE event stream, and
//! status polls that stay fast while a job keeps the compute threads busy.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::backend::{Backend, both_backends};
use crate::fixtures::{job_request, mnist_cnn_model, require_models};
use crate::helpers::{assert_problem, spawn_app_with, test_config};

both_backends!(a_queued_job_is_canceled_at_once);
async fn a_queued_job_is_canceled_at_once(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    let id = app.job_id(&job_request(&a, &b)).await;
    let res = app
        .client
        .post(app.url(&format!("/v1/jobs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["status"], "canceled");
    assert_eq!(job["cancel_requested"], true);
    // Nothing is left for a worker to claim.
    assert_eq!(app.jobs.run_pending_jobs().await.unwrap(), 0);
    assert_problem(
        app.get(&format!("/v1/jobs/{id}/report")).await,
        409,
        "job_not_succeeded",
    )
    .await;
    let missing = "0192d4e2-7a4b-7cc1-8e0c-3f5a1b2c3d4e";
    assert_problem(
        app.client
            .post(app.url(&format!("/v1/jobs/{missing}/cancel")))
            .send()
            .await
            .unwrap(),
        404,
        "job_not_found",
    )
    .await;
    app.stop().await;
}

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_running_job_stops_soon_after_cancel
);
async fn a_running_job_stops_soon_after_cancel(db: Backend) {
    let models = require_models!();
    // The whole test set, so that the job is still evaluating when the cancel arrives.
    let app = spawn_app_with(&db, |c| c.eval_limit = None).await;
    let a = app.model_id(models.a, "a").await;
    let b = app.model_id(models.b, "b").await;
    let id = app.job_id(&job_request(&a, &b)).await;
    app.wait_job(&id, Duration::from_secs(120), |j| {
        j["progress"]["stage"]
            .as_str()
            .is_some_and(|s| s.starts_with("evaluate"))
    })
    .await;
    let asked = Instant::now();
    let res = app
        .client
        .post(app.url(&format!("/v1/jobs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job = app.wait_finished(&id, Duration::from_secs(30)).await;
    let took = asked.elapsed();
    eprintln!("cancel of a running job: canceled after {took:?}");
    assert_eq!(job["status"], "canceled", "{job}");
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    let attempts = app.get_json(&format!("/v1/jobs/{id}/attempts")).await;
    assert_eq!(attempts["items"][0]["outcome"], "canceled");
    assert_eq!(app.jobs.running.len(), 0);
    app.stop().await;
}

/// One parsed SSE event.
#[derive(Debug)]
struct Sse {
    kind: String,
    id: u64,
    data: Value,
}

fn parse_events(text: &str) -> Vec<Sse> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut kind = None;
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    kind = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).ok();
                }
            }
            Some(Sse {
                kind: kind?,
                id: id?,
                data: data?,
            })
        })
        .collect()
}

const STAGES: [&str; 7] = [
    "validate",
    "affinity",
    "matching",
    "assignment",
    "evaluate_inputs",
    "evaluate_gamf",
    "evaluate_none",
];

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    events_arrive_in_order_and_the_stream_ends_at_the_terminal_status
);
async fn events_arrive_in_order_and_the_stream_ends_at_the_terminal_status(db: Backend) {
    let models = require_models!();
    let app = spawn_app_with(&db, |c| c.eval_limit = Some(300)).await;
    let a = app.model_id(models.a, "a").await;
    let b = app.model_id(models.b, "b").await;
    let id = app.job_id(&job_request(&a, &b)).await;
    let res = app.get(&format!("/v1/jobs/{id}/events")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = String::new();
    let mut stream = res.bytes_stream();
    let read = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(chunk) = stream.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    })
    .await;
    assert!(read.is_ok(), "the stream did not end: {body}");
    let events = parse_events(&body);
    eprintln!("{} events", events.len());
    assert!(events.len() >= 4, "{body}");
    assert_eq!(events[0].kind, "status");
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), &last.data["status"]),
        ("status", &Value::from("succeeded"))
    );
    let status_rank = |s: &Value| {
        ["queued", "running", "succeeded"]
            .iter()
            .position(|x| s == x)
            .unwrap()
    };
    let mut prev: Option<(usize, usize, f64)> = None;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1, "ids count up from 1");
        let status = status_rank(&e.data["status"]);
        let (stage, fraction) = match e.data["progress"]["stage"].as_str() {
            Some(s) => (
                STAGES.iter().position(|x| *x == s).unwrap(),
                e.data["progress"]["fraction"].as_f64().unwrap(),
            ),
            None => (0, 0.0),
        };
        if let Some((ps, pst, pf)) = prev {
            assert!(status >= ps, "status went back at event {i}: {body}");
            assert!(
                stage > pst || (stage == pst && fraction >= pf),
                "progress went back at event {i}: {body}"
            );
        }
        prev = Some((status, stage, fraction));
    }
    assert!(events.iter().any(|e| e.kind == "progress"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_polls_stay_fast_while_a_job_keeps_the_cores_busy() {
    let models = require_models!();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.eval_limit = None;
        c.compute_threads = Some(threads);
    })
    .await;
    let a = app.model_id(models.a, "a").await;
    let b = app.model_id(models.b, "b").await;
    let id = app.job_id(&job_request(&a, &b)).await;
    app.wait_job(&id, Duration::from_secs(120), |j| {
        j["progress"]["stage"]
            .as_str()
            .is_some_and(|s| s.starts_with("evaluate"))
    })
    .await;
    let mut ms = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let res = app.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(res.status(), StatusCode::OK);
        let job: Value = res.json().await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        if job["status"] != "running" {
            break;
        }
    }
    let still_running = app.get_json(&format!("/v1/jobs/{id}")).await["status"] == "running";
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    eprintln!(
        "GET /v1/jobs/{{id}} during a job on {threads} compute threads: {} requests, \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (job still running after: {still_running})",
        ms.len(),
        pct(0.5),
        pct(0.99),
        ms[ms.len() - 1]
    );
    assert!(ms.len() >= 100, "the job ended before 100 polls");
    // The target is p99 < 50 ms; asserted loosely because CI machines are shared.
    assert!(pct(0.99) < 250.0, "p99 {:.1} ms", pct(0.99));
    app.jobs
        .cancel(gmfuse::store::DEFAULT_TENANT, id.parse().unwrap())
        .await
        .unwrap();
    app.stop().await;
}

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    shutdown_puts_a_running_job_back_in_the_queue_after_the_grace_period
);
async fn shutdown_puts_a_running_job_back_in_the_queue_after_the_grace_period(db: Backend) {
    let models = require_models!();
    let app = spawn_app_with(&db, |c| {
        c.eval_limit = None;
        c.shutdown_grace_secs = 0.2;
    })
    .await;
    let a = app.model_id(models.a, "a").await;
    let b = app.model_id(models.b, "b").await;
    let id = app.job_id(&job_request(&a, &b)).await;
    app.wait_job(&id, Duration::from_secs(120), |j| j["status"] == "running")
        .await;
    let dir = app.stop().await;
    let store = gmfuse::store::open_db(&test_config(dir.path(), &db))
        .await
        .unwrap();
    let id = id.parse().unwrap();
    let job = store
        .get_job(gmfuse::store::DEFAULT_TENANT, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.status.as_str(), job.attempt), ("queued", 1));
    let attempts = store.attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome.as_deref(), Some("requeued"));
    store.close().await;
}
