//! Fused weights on demand: recomputed from a succeeded job's inputs and permutations for one
//! method and proportion, written as safetensors with provenance in `__metadata__`. A
//! proportion of the job's own list is kept as a content-addressed blob (so at most
//! methods × proportions files per job); any other proportion is computed for the request and
//! not stored, so arbitrary `proportion=` values cannot fill the disk. Repaired weights (the
//! job's `repair` redone on its calibration set, as its `repaired` points were scored) are
//! computed for the request and not stored either.

use sha2::Digest;
use uuid::Uuid;

use super::JobService;
use super::compute::ComputeError;
use super::model_file::{self, ModelFileError};
use crate::engine::pipeline::{self, MethodId, PipelineError, Repair};
use crate::engine::solvers::SolverId;
use crate::engine::weights::{WeightSet, WeightsError};
use crate::store::{BlobError, JobRecord, ModelFormat, OutputRecord, StoreError};

/// Why fused weights could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum FusedError {
    /// The job has no report (not succeeded).
    #[error("job {0} has not succeeded")]
    NotSucceeded(Uuid),
    /// Weights of an aligning method (or GAMF solver) the job did not run.
    #[error("job {id} did not run {}", run_name(*method, *solver))]
    NoMatching {
        id: Uuid,
        method: MethodId,
        solver: Option<SolverId>,
    },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("input model: {0}")]
    Weights(#[from] WeightsError),
    #[error("input model: {0}")]
    ModelFile(#[from] ModelFileError),
    /// `format=onnx` for a job whose graph model is not ONNX.
    #[error(
        "job {0} fused safetensors models: its fused model exists as safetensors only \
         (`format=safetensors`); upload ONNX models to get ONNX back"
    )]
    NotOnnx(Uuid),
    /// The engine could not write the fused weights into the ONNX graph (a broken invariant:
    /// the graph was read at upload).
    #[error("writing the fused ONNX model: {0}")]
    OnnxWrite(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Compute(#[from] ComputeError),
    /// The calibration set a repair needs could not be loaded.
    #[error("calibration set: {0}")]
    Calibration(String),
}

/// "method `gamf` with solver `rrwm`".
fn run_name(method: MethodId, solver: Option<SolverId>) -> String {
    match solver {
        Some(s) => format!("method `{method}` with solver `{s}`"),
        None => format!("method `{method}`"),
    }
}

/// The `__metadata__` keys of a fused file.
pub mod keys {
    pub const JOB_ID: &str = "gmfuse.job_id";
    pub const METHOD: &str = "gmfuse.method";
    /// GAMF's QAP solver (GAMF files only).
    pub const SOLVER: &str = "gmfuse.solver";
    pub const PROPORTION: &str = "gmfuse.proportion";
    /// The repair applied after fusion (repaired files only).
    pub const REPAIR: &str = "gmfuse.repair";
    /// `<sha256 of model 1>,<sha256 of model 2>[,…]`.
    pub const INPUT_SHA256: &str = "gmfuse.input_sha256";
    /// Jobs of three or more models: the normalised averaging weights, comma-separated.
    pub const WEIGHTS: &str = "gmfuse.weights";
}

/// The `proportion` under which the fused model of a job of three or more models (a weighted
/// average, which has no proportion) is cached in `job_outputs`.
pub const WEIGHTED_AVERAGE: f64 = -1.0;

/// Fused weights to serve.
#[derive(Debug)]
pub enum Fused {
    /// Kept in the blob store (a proportion of the job's list, or the weighted average of a
    /// job of three or more models).
    Stored(OutputRecord),
    /// Computed for this request only (any other proportion).
    Transient { bytes: Vec<u8>, sha256: String },
}

impl JobService {
    /// The fused weights of `job` for `method` at `proportion` (two-model jobs) or as the
    /// weighted average of a job of three or more models ([`WEIGHTED_AVERAGE`]): for a
    /// proportion of the job's list and for the average, computed once and then served from the
    /// blob store; for any other proportion, computed and returned without being stored.
    /// `solver` picks one of GAMF's matchings (`None`: the first); only the first solver's
    /// files are stored. `repair` other than `none` (the job's own, checked by the caller;
    /// two-model jobs) gives the repaired weights, computed for the request.
    ///
    /// # Errors
    /// Any [`FusedError`].
    pub async fn fused(
        &self,
        job: &JobRecord,
        (method, solver): (MethodId, Option<SolverId>),
        proportion: f64,
        repair: Repair,
    ) -> Result<Fused, FusedError> {
        let report = job
            .report
            .as_ref()
            .ok_or(FusedError::NotSucceeded(job.id))?;
        let matching = match method {
            MethodId::None => None,
            m => Some(
                report
                    .matching_by(m, solver)
                    .ok_or(FusedError::NoMatching {
                        id: job.id,
                        method: m,
                        solver,
                    })?
                    .clone(),
            ),
        };
        let first_solver = report.matching(method).and_then(|m| m.solver);
        let default_matching = matching.as_ref().is_none_or(|m| m.solver == first_solver);
        let stored = default_matching && repair.is_none();
        if stored && let Some(o) = self.db.get_output(job.id, method, proportion).await? {
            return Ok(Fused::Stored(o));
        }
        let calibration = match (&job.spec.calibration, repair) {
            (Some(source), Repair::ResetBn | Repair::Repair) => Some(
                self.datasets
                    .load(self.blobs.as_ref(), source)
                    .await
                    .map_err(|e| FusedError::Calibration(e.to_string()))?,
            ),
            (None, Repair::ResetBn | Repair::Repair) => {
                return Err(FusedError::Calibration(format!(
                    "job {} has none, so it cannot be repaired",
                    job.id
                )));
            }
            (_, Repair::None) => None,
        };
        let spec = &job.spec;
        let mut inputs = Vec::with_capacity(spec.inputs.len());
        for sha in &spec.inputs {
            inputs.push(self.blobs.get(sha).await?);
        }
        let formats: Vec<ModelFormat> = (0..inputs.len()).map(|i| spec.format(i)).collect();
        let arch = spec.architecture.clone();
        let weights = report.weights.clone();
        let mut metadata = vec![
            (keys::JOB_ID, job.id.to_string()),
            (keys::METHOD, method.to_string()),
            (keys::INPUT_SHA256, spec.inputs.join(",")),
        ];
        if let Some(s) = matching.as_ref().and_then(|m| m.solver) {
            metadata.push((keys::SOLVER, s.to_string()));
        }
        if !repair.is_none() {
            metadata.push((keys::REPAIR, repair.to_string()));
        }
        if weights.is_empty() {
            metadata.push((keys::PROPORTION, proportion.to_string()));
        } else {
            let w: Vec<String> = weights.iter().map(f64::to_string).collect();
            metadata.push((keys::WEIGHTS, w.join(",")));
        }
        let bytes = self
            .compute
            .run(move || -> Result<Vec<u8>, FusedError> {
                let models = inputs
                    .iter()
                    .zip(formats)
                    .map(|(b, format)| model_file::read_weights(format, b))
                    .collect::<Result<Vec<_>, _>>()?;
                let perms = matching.as_ref().map(|m| &m.permutations[..]);
                let mut fused = match (&models[..], &calibration) {
                    ([m1, m2], Some(cal)) => pipeline::repaired_fused_weights(
                        &arch,
                        [m1, m2],
                        perms,
                        proportion,
                        (repair, cal),
                        &|| false,
                    )?,
                    ([m1, m2], None) => {
                        pipeline::fused_weights(&arch, [m1, m2], perms, proportion)?
                    }
                    _ => {
                        let refs: Vec<&WeightSet> = models.iter().collect();
                        pipeline::fused_weights_many(
                            &arch,
                            &refs,
                            matching.as_ref().map(|m| &m.models[..]),
                            &weights,
                        )?
                    }
                };
                fused.metadata = metadata
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                Ok(fused.to_bytes()?)
            })
            .await??;
        let own = if report.weights.is_empty() {
            job.spec.params.proportions.contains(&proportion)
        } else {
            proportion == WEIGHTED_AVERAGE
        };
        if !(stored && own) {
            let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
            return Ok(Fused::Transient { bytes, sha256 });
        }
        let size_bytes = bytes.len() as u64;
        let sha256 = self.blobs.put(bytes).await?;
        let output = OutputRecord {
            job_id: job.id,
            method,
            proportion,
            sha256,
            size_bytes,
        };
        self.db.put_output(&output).await?;
        Ok(Fused::Stored(output))
    }
}
