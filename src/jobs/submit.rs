//! Submitting a job: a [`JobRequest`] is checked against the catalog synchronously (models
//! exist, share one architecture, fit its shapes, the dataset fits its input, parameters are in
//! range) and becomes a [`JobSpec`] in the queue — or a [`SubmitError`] that the API reports
//! as 404/422 before anything is stored.

use uuid::Uuid;

use super::catalog;
use super::preflight::{self, Budgets, PreflightError};
use crate::engine::arch::ArchError;
use crate::engine::pipeline::{FusionParams, ParamError};
use crate::store::{Db, JobRecord, JobSpec, JobStatus, ModelRecord, StoreError};

/// What this process admits: the job budgets and the queue depth.
#[derive(Clone, Copy, Debug)]
pub struct Admission {
    pub budgets: Budgets,
    /// `GMFUSE_EVAL_LIMIT`: the samples a job evaluates at most.
    pub eval_limit: Option<usize>,
    /// Threads of the compute pool.
    pub threads: usize,
    /// Jobs queued or running past which submissions are refused.
    pub max_queued_jobs: u64,
}

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
    #[error("{0}")]
    OverBudget(String),
    #[error("{0}")]
    DatasetLabels(String),
    #[error("the queue holds {queued} jobs, the most this service accepts; retry later")]
    QueueFull { queued: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validate `req` and queue it.
///
/// # Errors
/// Any [`SubmitError`]; nothing is stored then.
pub async fn submit(
    db: &dyn Db,
    tenant: &str,
    req: JobRequest,
    max_attempts: u32,
    admission: &Admission,
) -> Result<JobRecord, SubmitError> {
    let spec = validate(db, tenant, req, admission).await?;
    let queued: u64 = db
        .job_counts()
        .await?
        .into_iter()
        .filter(|(s, _)| matches!(s, JobStatus::Queued | JobStatus::Running))
        .map(|(_, n)| n)
        .sum();
    if queued >= admission.max_queued_jobs {
        return Err(SubmitError::QueueFull { queued });
    }
    // Under the inputs' locks a model delete is either done (the enqueue sees the model gone:
    // 404) or waits and then finds the blob in use by this job (409): an accepted job always
    // finds its inputs.
    let _lock = db.lock_blobs(&spec.input_blobs()).await?;
    match db.enqueue(tenant, &spec, max_attempts).await {
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
pub async fn validate(
    db: &dyn Db,
    tenant: &str,
    req: JobRequest,
    admission: &Admission,
) -> Result<JobSpec, SubmitError> {
    req.params.check()?;
    let [id1, id2] = <[Uuid; 2]>::try_from(req.models.as_slice())
        .map_err(|_| SubmitError::ModelCount(req.models.len()))?;
    let m1 = model(db, tenant, id1).await?;
    let m2 = model(db, tenant, id2).await?;
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
    // A shape-driven preset (`mlp`) is read from model 1's tensors; model 2 must fit it too.
    let spec = catalog::architecture_for(db, tenant, &name, &catalog::shapes_of(&m1.tensors))
        .await?
        .ok_or_else(|| SubmitError::ArchitectureNotFound(name.clone()))?
        .map_err(|source| SubmitError::Shapes {
            model: m1.id,
            architecture: name.clone(),
            source,
        })?;
    for m in [&m1, &m2] {
        spec.check_shapes(&catalog::shapes_of(&m.tensors))
            .map_err(|source| SubmitError::Shapes {
                model: m.id,
                architecture: name.clone(),
                source,
            })?;
    }
    same_shapes(&m1, &m2)?;
    let (dataset, shape) = catalog::dataset_source(db, tenant, &req.dataset)
        .await?
        .ok_or_else(|| SubmitError::DatasetNotFound(req.dataset.clone()))?;
    if shape != spec.input {
        return Err(SubmitError::DatasetShape {
            architecture: name,
            expected: spec.input,
            got: shape,
        });
    }
    let tensors = catalog::shapes_of(&m1.tensors);
    if let Some(max_label) = preflight::known_max_label(&dataset) {
        preflight::check_labels(&spec, &tensors, &req.dataset, max_label)
            .map_err(SubmitError::DatasetLabels)?;
    }
    let inputs = preflight::Inputs {
        tensors: &tensors,
        file_bytes: [m1.size_bytes, m2.size_bytes],
        dataset_samples: preflight::dataset_samples(&dataset),
        eval_limit: admission.eval_limit,
        threads: admission.threads,
    };
    let refused = |e| match e {
        PreflightError::OverBudget(detail) => SubmitError::OverBudget(detail),
        PreflightError::Arch(source) => SubmitError::Shapes {
            model: m1.id,
            architecture: name.clone(),
            source,
        },
    };
    // `auto` becomes gamf or weight_matching here; the stored job runs the method picked.
    let params =
        preflight::resolve_auto(&spec, &req.params, inputs, admission.budgets).map_err(refused)?;
    preflight::check(&spec, &params, inputs, admission.budgets).map_err(refused)?;
    Ok(JobSpec {
        models: [id1, id2],
        inputs: [m1.sha256, m2.sha256],
        architecture: spec,
        dataset,
        params,
        request: req.raw,
    })
}

/// Both models must have the very same tensors: two models may each fit the architecture with
/// other widths (an 11-class and a 10-class head, say), and such a pair cannot be fused.
fn same_shapes(m1: &ModelRecord, m2: &ModelRecord) -> Result<(), SubmitError> {
    let (s1, s2) = (
        catalog::shapes_of(&m1.tensors),
        catalog::shapes_of(&m2.tensors),
    );
    for (name, a) in &s1 {
        let b = s2.get(name);
        if b != Some(a) {
            return Err(SubmitError::ArchitectureMismatch(match b {
                Some(b) => format!(
                    "tensor `{name}` is {a:?} in model {} and {b:?} in model {}",
                    m1.id, m2.id
                ),
                None => format!(
                    "tensor `{name}` of model {} is missing from model {}",
                    m1.id, m2.id
                ),
            }));
        }
    }
    if let Some(name) = s2.keys().find(|k| !s1.contains_key(*k)) {
        return Err(SubmitError::ArchitectureMismatch(format!(
            "tensor `{name}` of model {} is missing from model {}",
            m2.id, m1.id
        )));
    }
    Ok(())
}

async fn model(db: &dyn Db, tenant: &str, id: Uuid) -> Result<ModelRecord, SubmitError> {
    db.get_model(tenant, id)
        .await?
        .ok_or(SubmitError::ModelNotFound(id))
}
