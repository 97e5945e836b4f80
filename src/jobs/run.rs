//! Running one claimed job: load its inputs, run the pipeline on the compute pool while a
//! supervisor task writes progress and renews the lease, then write the outcome — fenced by the
//! attempt, so a worker that lost its lease changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;
use tracing::{Instrument, info, warn};

use super::JobService;
use super::catalog::LoadError;
use super::compute::ComputeError;
use super::model_file;
use super::preflight::{self, PreflightError};
use super::tracker::{StopReason, Tracker};
use crate::engine::pipeline::{self, FusionReport, Observer, PipelineError};
use crate::engine::weights::WeightSet;
use crate::store::{BlobError, Fence, JobFailure, JobRecord, JobSpec, Lease, ModelFormat, Outcome};

/// Why an attempt ended without a report.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("input model {index}: {message}")]
    Model { index: usize, message: String },
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Compute(#[from] ComputeError),
    /// The pre-flight estimate is over this process's budget (checked again before running:
    /// the job may have been accepted under a larger one).
    #[error("{0}")]
    OverBudget(String),
}

impl RunError {
    /// A stable code for the job's `error.code`.
    fn code(&self) -> &'static str {
        match self {
            RunError::Load(LoadError::Blob(BlobError::NotFound(_))) => "input_missing",
            RunError::Load(LoadError::Blob(_)) => "storage_error",
            RunError::Load(_) => "invalid_dataset",
            RunError::Model { .. } => "invalid_model",
            RunError::Pipeline(PipelineError::Params(_) | PipelineError::Unsupported(_)) => {
                "invalid_parameters"
            }
            RunError::Pipeline(PipelineError::Arch { .. } | PipelineError::Mismatch(_)) => {
                "shape_mismatch"
            }
            RunError::Pipeline(
                PipelineError::DatasetShape { .. } | PipelineError::CalibrationShape { .. },
            ) => "dataset_shape_mismatch",
            RunError::Pipeline(PipelineError::Eval(_)) => "evaluation_failed",
            RunError::Pipeline(PipelineError::Method { .. }) => "method_failed",
            RunError::Pipeline(PipelineError::Equivalence { .. }) => "equivalence_failed",
            RunError::Pipeline(PipelineError::Repair(_)) => "repair_failed",
            RunError::Pipeline(PipelineError::Canceled) => "canceled",
            RunError::Compute(ComputeError::Panicked(_)) => "internal_panic",
            RunError::OverBudget(_) => "job_over_budget",
            RunError::Compute(ComputeError::WorkerGone) => "compute_unavailable",
        }
    }

    /// Storage blips are worth another attempt; bad inputs, engine errors, a caught panic and
    /// an over-budget job are not (running them again would fail, or crash, the same way).
    fn retryable(&self) -> bool {
        matches!(
            self,
            RunError::Load(LoadError::Blob(BlobError::Io(_)))
                | RunError::Compute(ComputeError::WorkerGone)
        )
    }
}

impl JobService {
    /// Run a job this process has just claimed, to the end of the attempt.
    pub async fn run_claimed(self: &Arc<Self>, job: JobRecord, owner: &str) {
        let span = tracing::info_span!("job", id = %job.id, attempt = job.attempt);
        self.run_attempt(job, owner).instrument(span).await;
    }

    async fn run_attempt(self: &Arc<Self>, job: JobRecord, owner: &str) {
        let lease = Lease {
            job_id: job.id,
            attempt: job.attempt,
            owner: owner.to_string(),
        };
        let started = Instant::now();
        let guard = self.running.register(job.id);
        let tracker = guard.tracker.clone();
        if job.cancel_requested {
            tracker.stop(StopReason::Cancel);
        }
        info!("job started");

        let (done_tx, done_rx) = oneshot::channel();
        let supervisor = tokio::spawn(self.clone().supervise(
            lease.clone(),
            tracker.clone(),
            done_rx,
        ));
        let result = if tracker.should_stop() {
            Err(RunError::Pipeline(PipelineError::Canceled))
        } else {
            self.execute(&job, tracker.clone()).await
        };
        let _ = done_tx.send(());
        let _ = supervisor.await;

        let outcome = match result {
            Ok(report) => Outcome::Succeeded(Box::new(report)),
            Err(RunError::Pipeline(PipelineError::Canceled)) => match tracker.stop_reason() {
                Some(StopReason::Shutdown) => Outcome::Requeue(JobFailure {
                    code: "shutdown".into(),
                    message: "the worker shut down; the job was re-queued".into(),
                }),
                _ => Outcome::Canceled,
            },
            Err(e) => {
                let failure = JobFailure {
                    code: e.code().into(),
                    message: e.to_string(),
                };
                if e.retryable() {
                    Outcome::Requeue(failure)
                } else {
                    Outcome::Failed(failure)
                }
            }
        };
        let name = outcome.as_str();
        let lost = tracker.stop_reason() == Some(StopReason::LeaseLost);
        match self.db.finish(&lease, outcome).await {
            Ok(true) => info!(
                outcome = name,
                seconds = started.elapsed().as_secs_f64(),
                "job ended"
            ),
            Ok(false) => warn!(lost, "lease lost: the outcome `{name}` was discarded"),
            Err(e) => warn!(error = %e, "could not record the outcome; the lease will expire"),
        }
        self.metrics
            .observe_job(name, started.elapsed().as_secs_f64());
        drop(guard);
        if name == "requeued" {
            self.wakeup.notify_one();
        }
    }

    async fn execute(
        &self,
        job: &JobRecord,
        tracker: Arc<Tracker>,
    ) -> Result<FusionReport, RunError> {
        let spec = &job.spec;
        let mut bytes = Vec::with_capacity(spec.inputs.len());
        for sha in &spec.inputs {
            bytes.push(self.blobs.get(sha).await.map_err(LoadError::from)?);
        }
        // Model 1's tensors, read on the compute pool (an ONNX file is read whole).
        let format = spec.format(0);
        let (bytes, header) = self
            .compute
            .run(move || {
                let header = model_file::tensors(format, &bytes[0]);
                (bytes, header)
            })
            .await?;
        let tensors = super::catalog::shapes_of(&header.map_err(|e| RunError::Model {
            index: 1,
            message: e.to_string(),
        })?);
        self.preflight(spec, &bytes, &tensors)?;
        let data = self
            .datasets
            .load(self.blobs.as_ref(), &spec.dataset)
            .await?;
        // Labels the architecture cannot output fail the job before any compute.
        if let Some(&max_label) = data.labels.iter().max() {
            preflight::check_labels(&spec.architecture, &tensors, &data.name, max_label)
                .map_err(|m| RunError::Load(LoadError::Invalid(m)))?;
        }
        let calibration = match &spec.calibration {
            Some(source) => Some(self.datasets.load(self.blobs.as_ref(), source).await?),
            None => None,
        };
        let arch = spec.architecture.clone();
        let params = spec.params.clone();
        let limit = self.settings.eval_limit;
        let formats: Vec<ModelFormat> = (0..bytes.len()).map(|i| spec.format(i)).collect();
        self.compute
            .run(move || -> Result<FusionReport, RunError> {
                let models = bytes
                    .iter()
                    .zip(formats)
                    .enumerate()
                    .map(|(index, (b, format))| {
                        model_file::read_weights(format, b).map_err(|e| RunError::Model {
                            index: index + 1,
                            message: e.to_string(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let subset;
                let data = match limit {
                    Some(n) if n < data.labels.len() => {
                        subset = data.head(n);
                        &subset
                    }
                    _ => data.as_ref(),
                };
                let refs: Vec<&WeightSet> = models.iter().collect();
                Ok(pipeline::run_many(
                    &arch,
                    &refs,
                    data,
                    calibration.as_deref(),
                    &params,
                    tracker.as_ref(),
                )?)
            })
            .await?
    }

    /// The submission's pre-flight check, again, with this process's budgets.
    fn preflight(
        &self,
        spec: &JobSpec,
        bytes: &[Vec<u8>],
        tensors: &BTreeMap<String, Vec<usize>>,
    ) -> Result<(), RunError> {
        let file_bytes: Vec<u64> = bytes.iter().map(|b| b.len() as u64).collect();
        let inputs = preflight::Inputs {
            tensors,
            file_bytes: &file_bytes,
            dataset_samples: preflight::dataset_samples(&spec.dataset),
            calibration_samples: spec
                .calibration
                .as_ref()
                .map_or(0, preflight::dataset_samples),
            eval_limit: self.settings.eval_limit,
            threads: self.compute.threads(),
        };
        match preflight::check(
            &spec.architecture,
            &spec.params,
            inputs,
            self.settings.budgets,
        ) {
            Ok(_) => Ok(()),
            Err(PreflightError::OverBudget(d)) => Err(RunError::OverBudget(d)),
            Err(PreflightError::Unsupported(u)) => Err(PipelineError::from(u).into()),
            Err(PreflightError::Arch(source)) => {
                Err(RunError::Pipeline(PipelineError::Arch { index: 0, source }))
            }
        }
    }

    /// Write progress every `flush` and renew the lease every `heartbeat` until `done` fires;
    /// stop the job when the lease is lost or a cancel is flagged in the database.
    async fn supervise(
        self: Arc<Self>,
        lease: Lease,
        tracker: Arc<Tracker>,
        mut done: oneshot::Receiver<()>,
    ) {
        let mut flush = tokio::time::interval(self.settings.flush);
        let mut beat = tokio::time::interval(self.settings.heartbeat);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await; // the claim itself set the first lease
        loop {
            let fence = tokio::select! {
                _ = &mut done => {
                    if let Some((p, t)) = tracker.take_update() {
                        let _ = self.db.record_progress(&lease, p, &t).await;
                    }
                    return;
                }
                _ = flush.tick() => match tracker.take_update() {
                    Some((p, t)) => self.db.record_progress(&lease, p, &t).await,
                    None => continue,
                },
                _ = beat.tick() => self.db.heartbeat(&lease, self.settings.lease).await,
            };
            match fence {
                Ok(Fence::Held {
                    cancel_requested: true,
                }) => tracker.stop(StopReason::Cancel),
                Ok(Fence::Held { .. }) => {}
                Ok(Fence::Lost) => {
                    warn!("lease lost to another attempt; stopping");
                    tracker.stop(StopReason::LeaseLost);
                }
                Err(e) => warn!(error = %e, "progress or heartbeat write failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_and_an_over_budget_job_fail_for_good_with_their_codes() {
        let panicked = RunError::Compute(ComputeError::Panicked("index out of bounds".into()));
        assert_eq!(
            (panicked.code(), panicked.retryable()),
            ("internal_panic", false)
        );
        let over = RunError::OverBudget("the job needs 160 GiB".into());
        assert_eq!((over.code(), over.retryable()), ("job_over_budget", false));
        let blip = RunError::Load(LoadError::Blob(BlobError::Io(std::io::Error::other("x"))));
        assert_eq!((blip.code(), blip.retryable()), ("storage_error", true));
        let labels = RunError::Load(LoadError::Invalid("labels up to 9".into()));
        assert_eq!(
            (labels.code(), labels.retryable()),
            ("invalid_dataset", false)
        );
    }
}
