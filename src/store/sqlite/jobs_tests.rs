//! Tests of the SQLite job queue: fencing, attempts, rescue, cancel.

use std::time::Duration;

use super::*;
use crate::engine::arch::preset;
use crate::engine::pipeline::{FusionParams, Stage};
use crate::store::db::{CatalogStore, Db};
use crate::store::quota::TenantQuota;
use crate::store::records::{DEFAULT_TENANT, JobFailure, ModelFormat, NewModel};

async fn db() -> (tempfile::TempDir, SqliteDb) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let db = SqliteDb::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    (dir, db)
}

/// A job spec over two models inserted into `db` (the queue checks that they exist).
async fn spec(db: &SqliteDb) -> JobSpec {
    let mut models = Vec::new();
    for _ in 0..2 {
        let sha = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let new = NewModel {
            name: "m".into(),
            sha256: sha,
            size_bytes: 1,
            architecture: None,
            format: ModelFormat::Safetensors,
            tensors: Vec::new(),
        };
        models.push(
            db.insert_model(DEFAULT_TENANT, new, &TenantQuota::UNLIMITED)
                .await
                .unwrap()
                .0,
        );
    }
    JobSpec {
        models: vec![models[0].id, models[1].id],
        inputs: vec![models[0].sha256.clone(), models[1].sha256.clone()],
        formats: Vec::new(),
        architecture: preset("mnist-cnn").unwrap(),
        dataset: DatasetSource::Builtin {
            name: "mnist-test".into(),
        },
        calibration: None,
        params: FusionParams::default(),
        request: serde_json::json!({}),
    }
}

fn lease(job: &JobRecord) -> Lease {
    Lease {
        job_id: job.id,
        attempt: job.attempt,
        owner: job.lease_owner.clone().unwrap(),
    }
}

#[tokio::test]
async fn a_stale_attempt_cannot_write_once_a_newer_one_holds_the_job() {
    let (_dir, db) = db().await;
    let id = db
        .enqueue(DEFAULT_TENANT, &spec(&db).await, 3, &TenantQuota::UNLIMITED)
        .await
        .unwrap()
        .id;
    let first = db
        .claim("w1", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.id, first.attempt), (id, 1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let rescued = db.rescue_expired().await.unwrap();
    assert_eq!(
        rescued,
        Rescued {
            requeued: 1,
            failed: 0
        }
    );
    let second = db
        .claim("w2", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.attempt, 2);

    let stale = lease(&first);
    let p = Progress {
        stage: Stage::Matching,
        fraction: 0.5,
    };
    assert_eq!(
        db.heartbeat(&stale, Duration::from_secs(60)).await.unwrap(),
        Fence::Lost
    );
    assert_eq!(
        db.record_progress(&stale, p, &[]).await.unwrap(),
        Fence::Lost
    );
    assert!(!db.finish(&stale, Outcome::Canceled).await.unwrap());
    let current = lease(&second);
    assert_eq!(
        db.record_progress(&current, p, &[]).await.unwrap(),
        Fence::Held {
            cancel_requested: false
        }
    );
    let failure = JobFailure {
        code: "x".into(),
        message: "y".into(),
    };
    assert!(db.finish(&current, Outcome::Failed(failure)).await.unwrap());
    let job = db.get_job(DEFAULT_TENANT, id).await.unwrap().unwrap();
    assert_eq!((job.status, job.attempt), (JobStatus::Failed, 2));
    let outcomes: Vec<_> = db
        .attempts(id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [Some("expired".to_string()), Some("failed".to_string())]
    );
}

#[tokio::test]
async fn a_job_that_loses_its_worker_too_often_fails() {
    let (_dir, db) = db().await;
    let id = db
        .enqueue(DEFAULT_TENANT, &spec(&db).await, 2, &TenantQuota::UNLIMITED)
        .await
        .unwrap()
        .id;
    for _ in 0..2 {
        db.claim("w", Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        db.rescue_expired().await.unwrap();
    }
    let job = db.get_job(DEFAULT_TENANT, id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.unwrap().code, "attempts_exhausted");
    assert!(
        db.claim("w", Duration::from_secs(1))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn cancel_flags_a_running_job_and_ends_a_queued_one() {
    let (_dir, db) = db().await;
    let running = db
        .enqueue(DEFAULT_TENANT, &spec(&db).await, 3, &TenantQuota::UNLIMITED)
        .await
        .unwrap()
        .id;
    let queued = db
        .enqueue(DEFAULT_TENANT, &spec(&db).await, 3, &TenantQuota::UNLIMITED)
        .await
        .unwrap()
        .id;
    let job = db
        .claim("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, running, "the oldest job is claimed first");
    assert_eq!(
        db.request_cancel(DEFAULT_TENANT, queued)
            .await
            .unwrap()
            .unwrap()
            .status,
        JobStatus::Canceled
    );
    let flagged = db
        .request_cancel(DEFAULT_TENANT, running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (flagged.status, flagged.cancel_requested),
        (JobStatus::Running, true)
    );
    assert_eq!(
        db.heartbeat(&lease(&job), Duration::from_secs(60))
            .await
            .unwrap(),
        Fence::Held {
            cancel_requested: true
        }
    );
    let counts = db.job_counts().await.unwrap();
    assert!(
        counts.contains(&(JobStatus::Running, 1)) && counts.contains(&(JobStatus::Canceled, 1))
    );
}

#[tokio::test]
async fn a_requeue_after_the_last_attempt_fails_the_job() {
    let (_dir, db) = db().await;
    let id = db
        .enqueue(DEFAULT_TENANT, &spec(&db).await, 1, &TenantQuota::UNLIMITED)
        .await
        .unwrap()
        .id;
    let job = db
        .claim("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let failure = JobFailure {
        code: "storage_error".into(),
        message: "disk".into(),
    };
    assert!(
        db.finish(&lease(&job), Outcome::Requeue(failure))
            .await
            .unwrap()
    );
    let job = db.get_job(DEFAULT_TENANT, id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.finished_at.is_some());
}
