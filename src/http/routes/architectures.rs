//! `/v1/architectures`: the built-in presets and custom architectures (ArchSpec JSON).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Items;
use crate::engine::arch::{ArchSpec, GroupView, preset, preset_tensors, presets};
use crate::http::auth::Tenant;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::state::AppState;
use crate::jobs::{catalog, ingest};

/// How `pad2d` fills the border.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PadModeDoc {
    Replicate,
    Zero,
}

/// One op of a sequential network (tensors named by their safetensors keys).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase")]
#[schema(as = Op)]
pub enum OpDoc {
    Pad2d {
        mode: PadModeDoc,
        padding: usize,
    },
    /// `weight` is `[out, in, kh, kw]`, `bias` is `[out]`.
    Conv2d {
        weight: String,
        bias: Option<String>,
        stride: Option<usize>,
        padding: Option<usize>,
    },
    /// `y = x Wᵀ + b`; `weight` is `[out, in]`.
    Linear {
        weight: String,
        bias: Option<String>,
    },
    Relu,
    Maxpool2d {
        kernel: usize,
        stride: Option<usize>,
        padding: Option<usize>,
    },
    Avgpool2d {
        kernel: usize,
        stride: Option<usize>,
        padding: Option<usize>,
    },
    /// `(C, H, W)` → `C·H·W`, channel-major.
    Flatten,
    /// Inference batchnorm of a `[C, H, W]` value; every tensor is `[C]`.
    Batchnorm2d {
        weight: String,
        bias: String,
        running_mean: String,
        running_var: String,
        /// Default 1e-5.
        eps: Option<f64>,
    },
    /// Inference batchnorm of a flat value of `n` features; every tensor is `[n]`.
    Batchnorm1d {
        weight: String,
        bias: String,
        running_mean: String,
        running_var: String,
        eps: Option<f64>,
    },
    /// The sum of the two values named in `inputs` (a residual connection).
    Add,
    /// `(C, H, W)` → `C`: each channel's mean.
    #[serde(rename = "global_avgpool")]
    GlobalAvgpool,
}

/// An op and its place in the graph: by default it reads the previous op's output.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Node)]
pub struct NodeDoc {
    /// How later ops refer to this op's output (unique; not `input`).
    pub name: Option<String>,
    /// The value a one-input op reads: an earlier op's `name`, or `input` (the network's input).
    pub input: Option<String>,
    /// The two values an `add` reads.
    pub inputs: Option<Vec<String>>,
    #[serde(flatten)]
    pub op: OpDoc,
}

/// A network: one sample's `[C, H, W]` and its ops in a topological order (the last op's
/// output is the network's).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = ArchSpec, example = json!({
    "name": "tiny-mlp",
    "input": [1, 28, 28],
    "ops": [
        {"op": "flatten"},
        {"op": "linear", "weight": "fc1.weight", "bias": "fc1.bias"},
        {"op": "relu"},
        {"op": "linear", "weight": "fc2.weight", "bias": "fc2.bias"}
    ]
}))]
pub struct ArchSpecDoc {
    /// 1-64 characters of a-z, 0-9, `-`, `_`, `.`.
    #[schema(pattern = "^[a-z0-9._-]{1,64}$")]
    pub name: String,
    pub input: [usize; 3],
    pub ops: Vec<NodeDoc>,
}

/// An architecture and where it comes from.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ArchitectureView {
    #[schema(example = "mnist-cnn")]
    pub name: String,
    /// True for the presets compiled into gmfuse.
    pub builtin: bool,
    /// The tensors a model of this architecture has, in op order.
    #[schema(example = json!(["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]))]
    pub tensors: Vec<String>,
    #[schema(value_type = ArchSpecDoc)]
    pub spec: serde_json::Value,
    /// The permutation groups: each with the tensor axes its permutation moves. Sizes are
    /// given for presets with fixed widths; a custom architecture's are known once a model
    /// uses it.
    pub groups: Vec<GroupView>,
    /// When it was stored (absent for presets).
    pub created_at: Option<DateTime<Utc>>,
}

fn view(spec: &ArchSpec, builtin: bool, created_at: Option<DateTime<Utc>>) -> ArchitectureView {
    // A preset's own widths, else the weightless dry run's (groups and axes, no sizes). Stored
    // specs passed the dry run when they were created.
    let groups = match preset_tensors(&spec.name).ok().filter(|_| builtin) {
        Some(t) => spec.check_shapes(&t).map(|s| s.group_views(true)),
        None => spec
            .dry_run_tensors()
            .and_then(|t| spec.check_shapes(&t))
            .map(|s| s.group_views(false)),
    };
    ArchitectureView {
        groups: groups.unwrap_or_default(),
        name: spec.name.clone(),
        builtin,
        tensors: spec.tensor_names().into_iter().map(String::from).collect(),
        spec: serde_json::to_value(spec).unwrap_or_default(),
        created_at,
    }
}

/// List the presets, then the custom architectures by name.
#[utoipa::path(get, path = "/v1/architectures", tag = "architectures", operation_id = "list_architectures",
    responses((status = 200, description = "Every architecture", body = Items<ArchitectureView>)))]
pub async fn list_architectures(
    State(app): State<AppState>,
    tenant: Tenant,
) -> Result<Json<Items<ArchitectureView>>, ApiError> {
    let mut items: Vec<_> = presets().iter().map(|s| view(s, true, None)).collect();
    for r in app.db.list_architectures(tenant.as_str()).await? {
        items.push(view(&r.spec, false, Some(r.created_at)));
    }
    Ok(Json(Items::new(items)))
}

/// Store a custom architecture. The spec is checked for what can be checked without weights
/// (names, op order, distinct tensors); the shapes are checked when a model uses it.
#[utoipa::path(post, path = "/v1/architectures", tag = "architectures", operation_id = "create_architecture",
    request_body = ArchSpecDoc,
    responses(
        (status = 201, description = "Stored", body = ArchitectureView,
            headers(("Location" = String, description = "URL of the architecture"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid ArchSpec", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_architecture(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let spec: ArchSpec =
        serde_json::from_value(body).map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    ingest::check_architecture(&spec).map_err(ApiError::InvalidArchitecture)?;
    if preset(&spec.name).is_ok() {
        return Err(ApiError::Conflict {
            code: "already_exists",
            detail: format!("`{}` is a built-in architecture", spec.name),
        });
    }
    let record = app.db.insert_architecture(tenant.as_str(), &spec).await?;
    let location = format!("/v1/architectures/{}", spec.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view(&record.spec, false, Some(record.created_at))),
    )
        .into_response())
}

/// One architecture by name.
#[utoipa::path(get, path = "/v1/architectures/{name}", tag = "architectures", operation_id = "get_architecture",
    params(("name" = String, Path, description = "Architecture name", example = "mnist-cnn")),
    responses(
        (status = 200, description = "The architecture", body = ArchitectureView),
        (status = 404, description = "No such architecture", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_architecture(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ArchitectureView>, ApiError> {
    if let Ok(spec) = preset(&name) {
        return Ok(Json(view(&spec, true, None)));
    }
    let spec = catalog::architecture(app.db.as_ref(), tenant.as_str(), &name)
        .await?
        .ok_or_else(|| ApiError::not_found("architecture", &name))?;
    let created = app
        .db
        .get_architecture(tenant.as_str(), &name)
        .await?
        .map(|r| r.created_at);
    Ok(Json(view(&spec, false, created)))
}
