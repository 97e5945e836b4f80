//! The job queue at the store level, on both backends: claims (oldest first, each job to one
//! claimer however many race), leases renewed by heartbeats, fencing by attempt and owner (a
//! stale worker changes nothing), the rescue of expired leases up to the attempt limit, cancel,
//! and re-queue outcomes. The API and the workers rely on exactly these answers.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use gmfuse::engine::arch::preset;
use gmfuse::engine::eval::EvalResult;
use gmfuse::engine::pipeline::{Best, FusionParams, FusionReport, MethodId, Stage};
use gmfuse::store::{
    DEFAULT_TENANT, DatasetSource, Db, Fence, JobFailure, JobSpec, JobStatus, Lease, ModelFormat,
    NewModel, Outcome, Progress, Rescued, TenantQuota, Timing,
};
use uuid::Uuid;

use crate::backend::{Backend, both_backends};
use crate::helpers::test_config;

mod outcomes;

/// A long lease: it cannot expire during a test.
const LONG: Duration = Duration::from_secs(600);
/// A lease that has expired by the time [`expire`] returns.
const SHORT: Duration = Duration::from_millis(20);

/// The database of `backend`, migrated, in `dir`.
async fn open(backend: &Backend, dir: &std::path::Path) -> Arc<dyn Db> {
    let config = test_config(dir, backend);
    let db = gmfuse::store::open_db(&config)
        .await
        .expect("open the database");
    db.migrate().await.expect("migrate");
    db
}

/// A job spec; `n` tells jobs apart (it is the request body).
fn spec(n: u32) -> JobSpec {
    JobSpec {
        models: vec![Uuid::now_v7(), Uuid::now_v7()],
        inputs: vec![format!("{:064x}", 2 * n), format!("{:064x}", 2 * n + 1)],
        formats: Vec::new(),
        architecture: preset("mnist-cnn").unwrap(),
        dataset: DatasetSource::Builtin {
            name: "mnist-test".into(),
        },
        calibration: None,
        params: FusionParams::default(),
        request: serde_json::json!({ "n": n }),
    }
}

/// Queue `spec` as the default tenant, recording its two models first (the queue checks that
/// a job's models exist).
async fn enqueue(
    store: &Arc<dyn Db>,
    spec: &JobSpec,
    max_attempts: u32,
) -> gmfuse::store::StoreResult<gmfuse::store::JobRecord> {
    let mut spec = spec.clone();
    for (i, sha) in spec.inputs.clone().iter().enumerate() {
        let model = NewModel {
            name: format!("m{i}"),
            sha256: sha.clone(),
            size_bytes: 1,
            architecture: None,
            format: ModelFormat::Safetensors,
            tensors: Vec::new(),
        };
        spec.models[i] = store
            .insert_model(DEFAULT_TENANT, model, &TenantQuota::UNLIMITED)
            .await?
            .0
            .id;
    }
    store
        .enqueue(DEFAULT_TENANT, &spec, max_attempts, &TenantQuota::UNLIMITED)
        .await
}

/// A report whose `samples` marks which attempt wrote it.
fn report(samples: usize) -> Box<FusionReport> {
    let eval = EvalResult {
        accuracy: 0.5,
        loss: 1.0,
        samples,
    };
    Box::new(FusionReport {
        architecture: "mnist-cnn".into(),
        dataset: "mnist-test".into(),
        params: FusionParams::default(),
        samples,
        inputs: vec![eval, eval],
        alphas: vec![0.0, 1.0],
        curves: Vec::new(),
        merged: Vec::new(),
        anchor: None,
        weights: Vec::new(),
        best: Best {
            method: MethodId::None,
            solver: None,
            proportion: Some(0.0),
            accuracy: 0.5,
            repair: Default::default(),
        },
        matchings: Vec::new(),
        timings: BTreeMap::from([(Stage::Validate, 0.25)]),
    })
}

fn lease_of(job: &gmfuse::store::JobRecord, owner: &str) -> Lease {
    Lease {
        job_id: job.id,
        attempt: job.attempt,
        owner: owner.into(),
    }
}

/// Wait until a lease of [`SHORT`] taken before the call has expired (by the database clock
/// too: SQLite compares with this process's clock, PostgreSQL with its own `now()`).
async fn expire() {
    tokio::time::sleep(SHORT * 5).await;
}

both_backends!(claims_take_the_oldest_job_and_mark_the_lease_and_the_attempt_log);
async fn claims_take_the_oldest_job_and_mark_the_lease_and_the_attempt_log(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    let first = enqueue(&store, &spec(1), 3).await.unwrap();
    let second = enqueue(&store, &spec(2), 3).await.unwrap();
    assert_eq!(
        (first.status, first.attempt, first.max_attempts),
        (JobStatus::Queued, 0, 3)
    );

    let claimed = store.claim("w1", LONG).await.unwrap().expect("a job");
    assert_eq!(claimed.id, first.id, "oldest first");
    assert_eq!(claimed.status, JobStatus::Running);
    assert_eq!(claimed.attempt, 1);
    assert_eq!(claimed.lease_owner.as_deref(), Some("w1"));
    let expires = claimed.lease_expires_at.expect("a lease expiry");
    let left = expires - chrono::Utc::now();
    assert!(
        left > chrono::TimeDelta::seconds(500),
        "lease of 600 s, {left} left"
    );
    assert!(claimed.started_at.is_some());
    assert_eq!(claimed.spec, first.spec);

    let next = store.claim("w2", LONG).await.unwrap().expect("a job");
    assert_eq!(next.id, second.id);
    assert!(
        store.claim("w3", LONG).await.unwrap().is_none(),
        "the queue is empty"
    );

    let log = store.attempts(first.id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].attempt, log[0].worker.as_str()), (1, "w1"));
    assert_eq!(
        (log[0].outcome.as_deref(), log[0].finished_at),
        (None, None)
    );
    let counts: BTreeMap<&str, u64> = store
        .job_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(s, n)| (s.as_str(), n))
        .collect();
    assert_eq!(counts["running"], 2);
    assert_eq!(counts["queued"], 0);
    store.close().await;
}

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    racing_claimers_never_take_the_same_job
);
async fn racing_claimers_never_take_the_same_job(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    let mut queued = HashSet::new();
    for n in 0..24 {
        queued.insert(enqueue(&store, &spec(n), 3).await.unwrap().id);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..6 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut got = Vec::new();
            while let Some(job) = store.claim(&format!("w{w}"), LONG).await.unwrap() {
                got.push(job.id);
            }
            got
        });
    }
    let mut claimed = Vec::new();
    while let Some(got) = tasks.join_next().await {
        claimed.extend(got.unwrap());
    }
    let distinct: HashSet<Uuid> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), 24, "every job claimed once: {claimed:?}");
    assert_eq!(distinct, queued);
    for id in queued {
        assert_eq!(
            store.attempts(id).await.unwrap().len(),
            1,
            "one attempt of {id}"
        );
    }
    store.close().await;
}

both_backends!(a_stale_worker_cannot_mark_the_job_succeeded);
async fn a_stale_worker_cannot_mark_the_job_succeeded(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    let job = enqueue(&store, &spec(1), 3).await.unwrap();

    // Worker 1 claims, then stalls past its lease; the rescue gives the job to worker 2.
    let first = store.claim("w1", SHORT).await.unwrap().unwrap();
    let stale = lease_of(&first, "w1");
    expire().await;
    assert_eq!(
        store.rescue_expired().await.unwrap(),
        Rescued {
            requeued: 1,
            failed: 0
        }
    );
    let second = store.claim("w2", LONG).await.unwrap().unwrap();
    assert_eq!((second.id, second.attempt), (job.id, 2));
    let current = lease_of(&second, "w2");

    // Worker 1 wakes up: every write it tries is refused and changes nothing.
    assert_eq!(store.heartbeat(&stale, LONG).await.unwrap(), Fence::Lost);
    let progress = Progress {
        stage: Stage::Evaluate(MethodId::Gamf),
        fraction: 0.9,
    };
    let timings = [Timing {
        stage: Stage::Validate,
        seconds: 1.0,
    }];
    assert_eq!(
        store
            .record_progress(&stale, progress, &timings)
            .await
            .unwrap(),
        Fence::Lost
    );
    assert!(
        !store
            .finish(&stale, Outcome::Succeeded(report(111)))
            .await
            .unwrap()
    );
    let now = store
        .get_job(DEFAULT_TENANT, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.status, JobStatus::Running);
    assert_eq!((now.attempt, now.lease_owner.as_deref()), (2, Some("w2")));
    assert_eq!((now.report, now.progress), (None, None));

    // The current attempt's writes are accepted, and its result is the one kept.
    assert_eq!(
        store
            .record_progress(&current, progress, &timings)
            .await
            .unwrap(),
        Fence::Held {
            cancel_requested: false
        }
    );
    assert!(
        store
            .finish(&current, Outcome::Succeeded(report(222)))
            .await
            .unwrap()
    );
    // A stale failure after the success changes nothing either.
    let failure = JobFailure {
        code: "late".into(),
        message: "too late".into(),
    };
    assert!(
        !store
            .finish(&stale, Outcome::Failed(failure))
            .await
            .unwrap()
    );
    let done = store
        .get_job(DEFAULT_TENANT, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.report.expect("a report").samples, 222);
    assert_eq!((done.error, done.lease_owner), (None, None));
    assert!(done.finished_at.is_some());

    let log = store.attempts(job.id).await.unwrap();
    let log: Vec<(u32, &str, Option<&str>)> = log
        .iter()
        .map(|a| (a.attempt, a.worker.as_str(), a.outcome.as_deref()))
        .collect();
    assert_eq!(
        log,
        [(1, "w1", Some("expired")), (2, "w2", Some("succeeded"))]
    );
    store.close().await;
}

both_backends!(a_lease_with_the_right_attempt_but_another_owner_is_refused);
async fn a_lease_with_the_right_attempt_but_another_owner_is_refused(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    enqueue(&store, &spec(1), 3).await.unwrap();
    let job = store.claim("w1", LONG).await.unwrap().unwrap();
    let impostor = lease_of(&job, "w9");
    assert_eq!(store.heartbeat(&impostor, LONG).await.unwrap(), Fence::Lost);
    assert!(!store.finish(&impostor, Outcome::Canceled).await.unwrap());
    assert_eq!(
        store
            .get_job(DEFAULT_TENANT, job.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        JobStatus::Running
    );
    store.close().await;
}

both_backends!(a_heartbeat_keeps_the_job_from_being_rescued);
async fn a_heartbeat_keeps_the_job_from_being_rescued(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    enqueue(&store, &spec(1), 3).await.unwrap();
    let job = store.claim("w1", SHORT).await.unwrap().unwrap();
    let lease = lease_of(&job, "w1");
    assert_eq!(
        store.heartbeat(&lease, LONG).await.unwrap(),
        Fence::Held {
            cancel_requested: false
        }
    );
    expire().await;
    assert_eq!(store.rescue_expired().await.unwrap(), Rescued::default());
    let now = store
        .get_job(DEFAULT_TENANT, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.status, now.attempt), (JobStatus::Running, 1));
    assert!(
        now.lease_expires_at.unwrap() > job.lease_expires_at.unwrap(),
        "the lease moved"
    );
    store.close().await;
}
