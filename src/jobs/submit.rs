//! Submitting a job: a [`JobRequest`] is checked against the catalog synchronously (models
//! exist, share one architecture, fit its shapes, the dataset fits its input, parameters are in
//! range) and becomes a [`JobSpec`] in the queue — or a [`SubmitError`] that the API reports
//! as 404/422 before anything is stored.

use uuid::Uuid;

use super::catalog;
use crate::engine::arch::ArchError;
use crate::engine::pipeline::{FusionParams, ParamError};
use crate::store::{Db, JobRecord, JobSpec, ModelRecord, StoreError};

/// Largest number of proportions a job may evaluate.
pub const MAX_PROPORTIONS: usize = 101;
/// Largest number of power iterations a job may ask for.
pub const MAX_ITER: usize = 10_000;

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

/// Check the parameters' ranges: α in [0, 1], 1..=101 proportions, iterations and tolerance.
///
/// # Errors
/// The first [`ParamError`] found.
pub fn check_params(p: &FusionParams) -> Result<(), ParamError> {
    if p.proportions.is_empty() {
        return Err(ParamError::NoProportions);
    }
    if p.proportions.len() > MAX_PROPORTIONS {
        return Err(ParamError::TooManyProportions {
            max: MAX_PROPORTIONS,
            got: p.proportions.len(),
        });
    }
    if let Some(&a) = p.proportions.iter().find(|a| !(0.0..=1.0).contains(*a)) {
        return Err(ParamError::ProportionOutOfRange(a));
    }
    if !(1..=MAX_ITER).contains(&p.max_iter) {
        return Err(ParamError::MaxIter {
            max: MAX_ITER,
            got: p.max_iter,
        });
    }
    if !(p.tol.is_finite() && p.tol > 0.0) {
        return Err(ParamError::Tol(p.tol));
    }
    Ok(())
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
    Ok(db.enqueue(&spec, max_attempts).await?)
}

/// Turn a request into a job spec without storing anything.
///
/// # Errors
/// Any [`SubmitError`].
pub async fn validate(db: &dyn Db, req: JobRequest) -> Result<JobSpec, SubmitError> {
    check_params(&req.params)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parameters_pass() {
        assert_eq!(check_params(&FusionParams::default()), Ok(()));
    }

    #[test]
    fn rejects_a_proportion_above_one() {
        let p = FusionParams {
            proportions: vec![0.0, 1.5],
            ..FusionParams::default()
        };
        assert_eq!(check_params(&p), Err(ParamError::ProportionOutOfRange(1.5)));
    }

    #[test]
    fn rejects_nan_proportions_and_tolerance() {
        let p = FusionParams {
            proportions: vec![f64::NAN],
            ..FusionParams::default()
        };
        assert!(matches!(
            check_params(&p),
            Err(ParamError::ProportionOutOfRange(_))
        ));
        let p = FusionParams {
            tol: 0.0,
            ..FusionParams::default()
        };
        assert_eq!(check_params(&p), Err(ParamError::Tol(0.0)));
    }

    #[test]
    fn rejects_too_many_proportions() {
        let p = FusionParams {
            proportions: vec![0.5; 102],
            ..FusionParams::default()
        };
        assert_eq!(
            check_params(&p),
            Err(ParamError::TooManyProportions { max: 101, got: 102 })
        );
    }
}
