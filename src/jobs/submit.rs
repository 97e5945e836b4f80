//! Submitting a job: a [`JobRequest`] is checked against the catalog synchronously (models
//! exist, share one architecture, fit its shapes, the dataset fits its input, parameters are in
//! range) and becomes a [`JobSpec`] in the queue — or a [`SubmitError`] that the API reports
//! as 404/422 before anything is stored.

use uuid::Uuid;

use super::catalog;
use super::preflight::{self, Budgets, PreflightError};
use crate::engine::arch::ArchError;
use crate::engine::pipeline::{FusionParams, MAX_MODELS, ParamError};
use crate::store::{
    DatasetSource, Db, JobRecord, JobSpec, JobStatus, ModelRecord, StoreError, TenantQuota,
};

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
    /// The tenant's queued + running jobs, checked when the job is queued.
    pub tenant_quota: TenantQuota,
}

/// A job as a client asks for it, already decoded.
#[derive(Clone, Debug)]
pub struct JobRequest {
    pub models: Vec<Uuid>,
    /// Defaults to the architecture recorded for the models.
    pub architecture: Option<String>,
    pub dataset: String,
    /// Calibration dataset id; defaults to the built-in training slice when a method needs one.
    pub calibration: Option<String>,
    pub params: FusionParams,
    /// The body as received.
    pub raw: serde_json::Value,
}

/// Why a job was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("a job fuses 2 to {max} models, got {0}", max = MAX_MODELS)]
    ModelCount(usize),
    #[error("model {0} is listed twice; give it a larger share with `weights` instead")]
    DuplicateModel(Uuid),
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
    #[error(
        "calibration dataset `{0}` is the scored dataset: calibrate on other samples \
         (default `mnist-train-5k`)"
    )]
    CalibrationIsScored(String),
    #[error(transparent)]
    Repair(#[from] crate::engine::pipeline::RepairError),
    #[error(
        "calibration samples are {got:?}, architecture `{architecture}` takes {expected:?}: \
         pass a `calibration` dataset of that shape"
    )]
    CalibrationShape {
        architecture: String,
        expected: [usize; 3],
        got: [usize; 3],
    },
    #[error(transparent)]
    Params(#[from] ParamError),
    #[error("{0}")]
    OverBudget(String),
    #[error(transparent)]
    Unsupported(#[from] crate::engine::methods::Unsupported),
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
    match db
        .enqueue(tenant, &spec, max_attempts, &admission.tenant_quota)
        .await
    {
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
    if !(2..=MAX_MODELS).contains(&req.models.len()) {
        return Err(SubmitError::ModelCount(req.models.len()));
    }
    req.params.check_models(req.models.len())?;
    if let Some(dup) = duplicate(&req.models).filter(|_| req.models.len() > 2) {
        return Err(SubmitError::DuplicateModel(dup));
    }
    let mut models = Vec::with_capacity(req.models.len());
    for &id in &req.models {
        models.push(model(db, tenant, id).await?);
    }
    let m1 = &models[0];
    let name = match &req.architecture {
        Some(a) => a.clone(),
        None => recorded_architecture(db, tenant, &models).await?,
    };
    // A shape-driven preset (`mlp`) is read from model 1's tensors; the others must fit it too.
    let spec = catalog::architecture_for(db, tenant, &name, &catalog::shapes_of(&m1.tensors))
        .await?
        .ok_or_else(|| SubmitError::ArchitectureNotFound(name.clone()))?
        .map_err(|source| SubmitError::Shapes {
            model: m1.id,
            architecture: name.clone(),
            source,
        })?;
    for m in &models {
        spec.check_shapes(&catalog::shapes_of(&m.tensors))
            .map_err(|source| SubmitError::Shapes {
                model: m.id,
                architecture: name.clone(),
                source,
            })?;
        same_shapes(m1, m)?;
    }
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
    crate::engine::methods::check_supported(&spec, &req.params)?;
    crate::engine::pipeline::repair::check(req.params.repair, &spec)?;
    let calibration = calibration(db, tenant, &req, &dataset, &name, spec.input).await?;
    let tensors = catalog::shapes_of(&m1.tensors);
    if let Some(max_label) = preflight::known_max_label(&dataset) {
        preflight::check_labels(&spec, &tensors, &req.dataset, max_label)
            .map_err(SubmitError::DatasetLabels)?;
    }
    let file_bytes: Vec<u64> = models.iter().map(|m| m.size_bytes).collect();
    let inputs = preflight::Inputs {
        tensors: &tensors,
        file_bytes: &file_bytes,
        dataset_samples: preflight::dataset_samples(&dataset),
        calibration_samples: calibration.as_ref().map_or(0, preflight::dataset_samples),
        eval_limit: admission.eval_limit,
        threads: admission.threads,
    };
    let refused = |e| match e {
        PreflightError::OverBudget(detail) => SubmitError::OverBudget(detail),
        PreflightError::Unsupported(u) => SubmitError::Unsupported(u),
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
        models: models.iter().map(|m| m.id).collect(),
        formats: models.iter().map(|m| m.format).collect(),
        inputs: models.into_iter().map(|m| m.sha256).collect(),
        architecture: spec,
        dataset,
        calibration,
        params,
        request: req.raw,
    })
}

/// The first id listed a second time.
fn duplicate(ids: &[Uuid]) -> Option<Uuid> {
    ids.iter()
        .enumerate()
        .find(|(i, m)| ids[..*i].contains(m))
        .map(|(_, m)| *m)
}

/// The architecture every model was uploaded as, when they agree; when two differ and both
/// are known (two ONNX graphs, say), the error names where the architectures first part.
async fn recorded_architecture(
    db: &dyn Db,
    tenant: &str,
    models: &[ModelRecord],
) -> Result<String, SubmitError> {
    let first = &models[0];
    let Some(m) = models
        .iter()
        .find(|m| m.architecture.is_none() || m.architecture != first.architecture)
    else {
        return Ok(first.architecture.clone().expect("checked above"));
    };
    let shown = |r: &ModelRecord| {
        r.architecture
            .clone()
            .unwrap_or_else(|| "of no known architecture".into())
    };
    let mut detail = format!(
        "model {} is {}, model {} is {}",
        first.id,
        shown(first),
        m.id,
        shown(m)
    );
    if let (Some(a), Some(b)) = (&first.architecture, &m.architecture) {
        let (sa, sb) = (
            catalog::architecture(db, tenant, a).await?,
            catalog::architecture(db, tenant, b).await?,
        );
        if let Some(diff) = sa.zip(sb).and_then(|(sa, sb)| sa.first_difference(&sb)) {
            detail.push_str(&format!(" (the first and the second below): {diff}"));
        }
    }
    Err(SubmitError::ArchitectureMismatch(detail))
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

/// The job's calibration set: the one asked for, else the built-in training slice when a
/// method needs one, else none. It must exist, differ from the scored `dataset` and fit
/// `input`.
async fn calibration(
    db: &dyn Db,
    tenant: &str,
    req: &JobRequest,
    dataset: &DatasetSource,
    architecture: &str,
    input: [usize; 3],
) -> Result<Option<DatasetSource>, SubmitError> {
    let needed = req.params.methods.iter().any(|m| m.needs_calibration())
        || req.params.repair != crate::engine::pipeline::Repair::None;
    let id = match &req.calibration {
        Some(id) => id.as_str(),
        None if needed => crate::builtin::MNIST_TRAIN_5K,
        None => return Ok(None),
    };
    let (source, shape) = catalog::dataset_source(db, tenant, id)
        .await?
        .ok_or_else(|| SubmitError::DatasetNotFound(id.to_string()))?;
    if source.id() == dataset.id() {
        return Err(SubmitError::CalibrationIsScored(id.to_string()));
    }
    if shape != input {
        return Err(SubmitError::CalibrationShape {
            architecture: architecture.to_string(),
            expected: input,
            got: shape,
        });
    }
    Ok(Some(source))
}

async fn model(db: &dyn Db, tenant: &str, id: Uuid) -> Result<ModelRecord, SubmitError> {
    db.get_model(tenant, id)
        .await?
        .ok_or(SubmitError::ModelNotFound(id))
}
