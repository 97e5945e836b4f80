//! The queue consumer: `n` slots, each a loop that rescues expired leases, claims the oldest
//! queued job and runs it, or sleeps until a wake-up (a submission in this process, or the
//! database's notice of one in another), the poll period or shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::JobService;
use super::tracker::StopReason;

impl JobService {
    /// Start `slots` worker loops; they stop claiming when `shutdown` fires.
    pub fn spawn_workers(
        self: &Arc<Self>,
        slots: usize,
        shutdown: CancellationToken,
    ) -> JoinSet<()> {
        let mut set = JoinSet::new();
        for slot in 0..slots {
            let this = self.clone();
            let shutdown = shutdown.clone();
            set.spawn(async move { this.worker_loop(slot, shutdown).await });
        }
        set
    }

    async fn worker_loop(self: Arc<Self>, slot: usize, shutdown: CancellationToken) {
        let owner = format!("{}/{slot}", self.process_id);
        info!(%owner, "worker started");
        while !shutdown.is_cancelled() {
            match self.claim_next(&owner).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => warn!(error = %e, "claiming a job failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wakeup.notified() => {}
                () = self.db.wait_for_work() => {}
                () = tokio::time::sleep(self.settings.poll) => {}
            }
        }
        info!(%owner, "worker stopped");
    }

    /// Rescue expired leases, then claim and run one job. `Ok(false)` when the queue is empty.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim_next(self: &Arc<Self>, owner: &str) -> crate::store::StoreResult<bool> {
        let rescued = self.db.rescue_expired().await?;
        if rescued.requeued + rescued.failed > 0 {
            info!(
                requeued = rescued.requeued,
                failed = rescued.failed,
                "rescued expired leases"
            );
        }
        match self.db.claim(owner, self.settings.lease).await? {
            Some(job) => {
                self.run_claimed(job, owner).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Run queued jobs in this task until the queue is empty (tests use it to drain the queue
    /// synchronously); returns how many ran.
    ///
    /// # Errors
    /// Database errors.
    pub async fn run_pending_jobs(self: &Arc<Self>) -> crate::store::StoreResult<usize> {
        let owner = format!("{}/inline", self.process_id);
        let mut n = 0;
        while self.claim_next(&owner).await? {
            n += 1;
        }
        Ok(n)
    }

    /// Let running jobs finish for `grace`, then stop them (they go back to the queue) and wait
    /// for the workers to write that.
    pub async fn drain(&self, workers: &mut JoinSet<()>, grace: Duration) {
        let all_done = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all_done).await.is_ok() {
            return;
        }
        warn!(
            running = self.running.len(),
            "grace period over: re-queuing running jobs"
        );
        self.running.stop_all(StopReason::Shutdown);
        let all_done = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), all_done)
            .await
            .is_err()
        {
            warn!("jobs did not stop in time; their leases will expire");
            workers.abort_all();
        }
    }
}
