//! Queue cases after the claim, on both backends: expired leases rescued up to the attempt
//! limit, re-queue outcomes, cancel, per-attempt progress, and the paged job list.

use super::*;

both_backends!(expired_leases_are_requeued_until_the_attempts_run_out_then_failed);
async fn expired_leases_are_requeued_until_the_attempts_run_out_then_failed(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    let job = enqueue(&store, &spec(1), 2).await.unwrap();
    let other = enqueue(&store, &spec(2), 2).await.unwrap();
    let held = store.claim("w0", LONG).await.unwrap().unwrap();
    assert_eq!(held.id, job.id);
    // `job` is held on a long lease; run `other` out of attempts on short ones.
    for (round, expected) in [
        (
            1,
            Rescued {
                requeued: 1,
                failed: 0,
            },
        ),
        (
            2,
            Rescued {
                requeued: 0,
                failed: 1,
            },
        ),
    ] {
        let claimed = store
            .claim(&format!("w{round}"), SHORT)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((claimed.id, claimed.attempt), (other.id, round));
        expire().await;
        assert_eq!(
            store.rescue_expired().await.unwrap(),
            expected,
            "round {round}"
        );
    }
    let failed = store
        .get_job(DEFAULT_TENANT, other.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    let error = failed.error.expect("an error");
    assert_eq!(error.code, "attempts_exhausted");
    assert_eq!(error.message, "the job lost its worker 2 times");
    assert!(failed.finished_at.is_some() && failed.lease_owner.is_none());
    assert!(
        store.claim("w3", LONG).await.unwrap().is_none(),
        "nothing left to claim"
    );
    let outcomes: Vec<Option<String>> = store
        .attempts(other.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, [Some("expired".into()), Some("expired".into())]);
    // The held job was never touched.
    let untouched = store
        .get_job(DEFAULT_TENANT, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (untouched.status, untouched.attempt),
        (JobStatus::Running, 1)
    );
    store.close().await;
}

both_backends!(a_requeue_outcome_gives_the_job_back_until_the_last_attempt);
async fn a_requeue_outcome_gives_the_job_back_until_the_last_attempt(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    let job = enqueue(&store, &spec(1), 2).await.unwrap();
    let failure = JobFailure {
        code: "storage_error".into(),
        message: "disk hiccup".into(),
    };
    let first = store.claim("w1", LONG).await.unwrap().unwrap();
    assert!(
        store
            .finish(&lease_of(&first, "w1"), Outcome::Requeue(failure.clone()))
            .await
            .unwrap()
    );
    let queued = store
        .get_job(DEFAULT_TENANT, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (queued.status, queued.finished_at),
        (JobStatus::Queued, None)
    );
    assert_eq!(queued.lease_owner, None);

    let second = store.claim("w2", LONG).await.unwrap().unwrap();
    assert_eq!(second.attempt, 2);
    assert!(
        store
            .finish(&lease_of(&second, "w2"), Outcome::Requeue(failure.clone()))
            .await
            .unwrap()
    );
    let failed = store
        .get_job(DEFAULT_TENANT, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        failed.status,
        JobStatus::Failed,
        "the last attempt fails instead"
    );
    assert_eq!(failed.error, Some(failure));
    assert!(failed.finished_at.is_some());
    let outcomes: Vec<Option<String>> = store
        .attempts(job.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, [Some("requeued".into()), Some("requeued".into())]);
    store.close().await;
}

both_backends!(cancel_ends_a_queued_job_at_once_and_flags_a_running_one);
async fn cancel_ends_a_queued_job_at_once_and_flags_a_running_one(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    let running = enqueue(&store, &spec(1), 3).await.unwrap();
    let queued = enqueue(&store, &spec(2), 3).await.unwrap();
    let job = store.claim("w1", SHORT).await.unwrap().unwrap();
    assert_eq!(job.id, running.id);

    let canceled = store
        .request_cancel(DEFAULT_TENANT, queued.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(canceled.status, JobStatus::Canceled);
    assert!(canceled.cancel_requested && canceled.finished_at.is_some());
    assert!(
        store.claim("w2", LONG).await.unwrap().is_none(),
        "a canceled job is not claimed"
    );

    let flagged = store
        .request_cancel(DEFAULT_TENANT, running.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (flagged.status, flagged.cancel_requested),
        (JobStatus::Running, true)
    );
    // The worker learns it from its next heartbeat...
    let lease = lease_of(&job, "w1");
    assert_eq!(
        store.heartbeat(&lease, SHORT).await.unwrap(),
        Fence::Held {
            cancel_requested: true
        }
    );
    // ...and if it dies instead, the rescue cancels the job rather than re-queuing it.
    expire().await;
    assert_eq!(store.rescue_expired().await.unwrap(), Rescued::default());
    let ended = store
        .get_job(DEFAULT_TENANT, running.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, JobStatus::Canceled);
    assert!(
        store
            .request_cancel(DEFAULT_TENANT, Uuid::now_v7())
            .await
            .unwrap()
            .is_none(),
        "no such job"
    );
    store.close().await;
}

both_backends!(progress_of_the_current_attempt_is_stored_and_cleared_by_the_next_claim);
async fn progress_of_the_current_attempt_is_stored_and_cleared_by_the_next_claim(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    let job = enqueue(&store, &spec(1), 3).await.unwrap();
    let first = store.claim("w1", SHORT).await.unwrap().unwrap();
    let progress = Progress {
        stage: Stage::Matching,
        fraction: 0.375,
    };
    let timings = [
        Timing {
            stage: Stage::Validate,
            seconds: 0.5,
        },
        Timing {
            stage: Stage::Affinity,
            seconds: 2.25,
        },
    ];
    store
        .record_progress(&lease_of(&first, "w1"), progress, &timings)
        .await
        .unwrap();
    let now = store
        .get_job(DEFAULT_TENANT, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.progress, Some(progress));
    assert_eq!(now.timings, timings);
    expire().await;
    store.rescue_expired().await.unwrap();
    let again = store.claim("w2", LONG).await.unwrap().unwrap();
    assert_eq!((again.progress, again.timings.len()), (None, 0));
    store.close().await;
}

both_backends!(jobs_are_listed_newest_first_in_pages);
async fn jobs_are_listed_newest_first_in_pages(db: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db, dir.path()).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(enqueue(&store, &spec(n), 3).await.unwrap().id);
    }
    ids.reverse();
    let page1: Vec<Uuid> = store
        .list_jobs(DEFAULT_TENANT, None, 3)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(page1, ids[..3]);
    let page2: Vec<Uuid> = store
        .list_jobs(DEFAULT_TENANT, Some(page1[2]), 3)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(page2, ids[3..]);
    let job = store
        .get_job(DEFAULT_TENANT, ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.spec.request, serde_json::json!({ "n": 4 }));
    store.close().await;
}
