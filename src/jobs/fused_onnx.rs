//! Fused models as ONNX: the graph of the job's last model (model 2 of a pair, the one model 1
//! is aligned onto) with its initializers replaced by the fused weights, every other field of
//! the file kept. It is derived from the fused safetensors file (stored or computed as for a
//! safetensors download) and not stored itself: the rewrite is cheap and deterministic, so the
//! same request always gives the same bytes and ETag, and no new blobs can pile up.

use sha2::Digest;

use super::JobService;
use super::fused::{Fused, FusedError};
use crate::engine::onnx;
use crate::engine::pipeline::{MethodId, Repair};
use crate::engine::solvers::SolverId;
use crate::engine::weights::WeightSet;
use crate::store::{JobRecord, ModelFormat};

impl JobService {
    /// The fused model of `job` as ONNX, with its sha256: see [`JobService::fused`] for
    /// `method`, `solver`, `proportion` and `repair`.
    ///
    /// # Errors
    /// [`FusedError::NotOnnx`] when the job's last model is not ONNX; any error of
    /// [`JobService::fused`].
    pub async fn fused_onnx(
        &self,
        job: &JobRecord,
        (method, solver): (MethodId, Option<SolverId>),
        proportion: f64,
        repair: Repair,
    ) -> Result<(Vec<u8>, String), FusedError> {
        let spec = &job.spec;
        let last = spec.inputs.len() - 1;
        if spec.format(last) != ModelFormat::Onnx {
            return Err(FusedError::NotOnnx(job.id));
        }
        let graph = self.blobs.get(&spec.inputs[last]).await?;
        let fused = match self
            .fused(job, (method, solver), proportion, repair)
            .await?
        {
            Fused::Stored(output) => self.blobs.get(&output.sha256).await?,
            Fused::Transient { bytes, .. } => bytes,
        };
        let bytes = self
            .compute
            .run(move || -> Result<Vec<u8>, FusedError> {
                let weights = WeightSet::from_bytes(&fused)?;
                onnx::write_fused(&graph, &weights)
                    .map_err(|e| FusedError::OnnxWrite(e.to_string()))
            })
            .await??;
        let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        Ok((bytes, sha256))
    }
}
