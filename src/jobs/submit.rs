//! Submitting a job: a [`JobRequest`] is checked against the catalog synchronously (models
//! exist, share one architecture, fit its shapes, the dataset fits its input, parameters are in
//! range) and becomes a [`JobSpec`] in the queue — or a [`SubmitError`] that the API reports
//! as 404/422 before anything is stored.

use uuid::Uuid;

use super::catalog;
use crate::engine::arch::ArchError;
use crate::engine::pipeline::{FusionParams, ParamError};
use crate::store::{Db, JobRecord, JobSpec, ModelRecord, StoreError};

/// A job as a client asks for it, already decoded.
#[derive(Clone, Debug)]
pub struct JobRequest {
    pub models: Vec<Uuid>,
    /// Defaults to the architecture recorded for the models.
    pub architecture: Option<String>,
    pub dataset: String,
    pub params: FusionParams,
    /// The body as received.
    pub raw: serde_json::Value,
}

/// Why a job was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("a job fuses exactly 2 models, got {0}")]
    ModelCount(usize),
    #[error("model {0} does not exist")]
    ModelNotFound(Uuid),
    #[error("architecture `{0}` does not exist")]
    ArchitectureNotFound(String),
    #[error("dataset `{0}` does not exist")]
    DatasetNotFound(String),
    #[error("the models do not share one architecture: {0}")]
    ArchitectureMismatch(String),
    #[error("model {model} does not fit architecture `{architecture}`: {source}")]
    Shapes {
        model: Uuid,
        architecture: String,
        source: ArchError,
    },
    #[error("dataset samples are {got:?}, architecture `{architecture}` takes {expected:?}")]
    DatasetShape {
        architecture: String,
        expected: [usize; 3],
        got: [usize; 3],
    },
    #[error(transparent)]
    Params(#[from] ParamError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validate `req` and queue it.
///
/// # Errors
/// Any [`SubmitError`]; nothing is stored then.
pub async fn submit(
    db: &dyn Db,
    req: JobRequest,
    max_attempts: u32,
) -> Result<JobRecord, SubmitError> {
    let spec = validate(db, req).await?;
    // Under the inputs' locks a model delete is either done (the enqueue sees the model gone:
    // 404) or waits and then finds the blob in use by this job (409): an accepted job always
    // finds its inputs.
    let _lock = db.lock_blobs(&spec.input_blobs()).await?;
    match db.enqueue(&spec, max_attempts).await {
        Ok(job) => Ok(job),
        Err(StoreError::Missing { what: "model", id }) => Err(SubmitError::ModelNotFound(
            Uuid::parse_str(&id).unwrap_or_default(),
        )),
        Err(StoreError::Missing { id, .. }) => Err(SubmitError::DatasetNotFound(id)),
        Err(e) => Err(e.into()),
    }
}

/// Turn a request into a job spec without storing anything.
///
/// # Errors
/// Any [`SubmitError`].
pub async fn validate(db: &dyn Db, req: JobRequest) -> Result<JobSpec, SubmitError> {
    req.params.check()?;
    let [id1, id2] = <[Uuid; 2]>::try_from(req.models.as_slice())
        .map_err(|_| SubmitError::ModelCount(req.models.len()))?;
    let m1 = model(db, id1).await?;
    let m2 = model(db, id2).await?;
    let name = match (&req.architecture, &m1.architecture, &m2.architecture) {
        (Some(a), _, _) => a.clone(),
        (None, Some(a), Some(b)) if a == b => a.clone(),
        (None, a, b) => {
            return Err(SubmitError::ArchitectureMismatch(format!(
                "model {id1} is {}, model {id2} is {}",
                a.as_deref().unwrap_or("of no known architecture"),
                b.as_deref().unwrap_or("of no known architecture"),
            )));
        }
    };
    let spec = catalog::architecture(db, &name)
        .await?
        .ok_or_else(|| SubmitError::ArchitectureNotFound(name.clone()))?;
    for m in [&m1, &m2] {
        spec.check_shapes(&catalog::shapes_of(&m.tensors))
            .map_err(|source| SubmitError::Shapes {
                model: m.id,
                architecture: name.clone(),
                source,
            })?;
    }
    let (dataset, shape) = catalog::dataset_source(db, &req.dataset)
        .await?
        .ok_or_else(|| SubmitError::DatasetNotFound(req.dataset.clone()))?;
    if shape != spec.input {
        return Err(SubmitError::DatasetShape {
            architecture: name,
            expected: spec.input,
            got: shape,
        });
    }
    Ok(JobSpec {
        models: [id1, id2],
        inputs: [m1.sha256, m2.sha256],
        architecture: spec,
        dataset,
        params: req.params,
        request: req.raw,
    })
}

async fn model(db: &dyn Db, id: Uuid) -> Result<ModelRecord, SubmitError> {
    db.get_model(id)
        .await?
        .ok_or(SubmitError::ModelNotFound(id))
}
