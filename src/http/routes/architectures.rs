//! `/v1/architectures`: the built-in presets and custom architectures (ArchSpec JSON).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use super::arch_doc::{ArchSpecDoc, OpDoc};
use super::page::{Page, PageItem, PageQuery, after_builtins};
use crate::engine::arch::{ArchSpec, GroupView, SHAPE_DRIVEN, preset, preset_tensors, presets};
use crate::http::auth::Tenant;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::state::AppState;
use crate::jobs::{catalog, ingest};

/// Where an architecture's definition comes from.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum ArchitectureKind {
    /// A fixed spec compiled into gmfuse (`mnist-cnn`).
    Preset,
    /// Compiled into gmfuse, its ops read from each model's tensor names and shapes (`mlp`):
    /// it has no fixed `spec` or `tensors`.
    ShapeDriven,
    /// Stored by the tenant (`POST /v1/architectures`).
    Custom,
}

/// An architecture and where it comes from.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ArchitectureView {
    #[schema(example = "mnist-cnn")]
    pub name: String,
    /// True for the presets compiled into gmfuse (fixed and shape-driven).
    pub builtin: bool,
    pub kind: ArchitectureKind,
    /// What a shape-driven preset accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The tensors a model of this architecture has, in op order (empty for a shape-driven
    /// preset: they depend on the model).
    #[schema(example = json!(["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]))]
    pub tensors: Vec<String>,
    /// The spec (absent for a shape-driven preset).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ArchSpecDoc>)]
    pub spec: Option<serde_json::Value>,
    /// The permutation groups: each with the tensor axes its permutation moves. Sizes are
    /// given for presets with fixed widths; a custom architecture's are known once a model
    /// uses it (empty for a shape-driven preset).
    pub groups: Vec<GroupView>,
    /// When it was stored (absent for presets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl PageItem for ArchitectureView {
    const PAGE_NAME: &'static str = "ArchitecturePage";
}

/// A page of architectures: the presets, then the custom ones by name.
pub type ArchitecturePage = Page<ArchitectureView>;

fn view(
    spec: &ArchSpec,
    kind: ArchitectureKind,
    created_at: Option<DateTime<Utc>>,
) -> ArchitectureView {
    // A preset's own widths, else the weightless dry run's (groups and axes, no sizes). Stored
    // specs passed the dry run when they were created.
    let builtin = kind != ArchitectureKind::Custom;
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
        builtin: kind != ArchitectureKind::Custom,
        kind,
        description: None,
        tensors: spec.tensor_names().into_iter().map(String::from).collect(),
        spec: Some(serde_json::to_value(spec).unwrap_or_default()),
        created_at,
    }
}

/// What the shape-driven preset `name` accepts.
fn shape_driven_description(name: &str) -> String {
    match name {
        "mlp" => "A multilayer perceptron read from the model: linear layers `fc1, fc2, …` or \
                  `layers.0, layers.1, …` (each with its `.bias` when present), ReLU between \
                  them, none after the last; the input is flattened (`[1, 28, 28]` when the \
                  first layer takes 784 features, else `[1, 1, in]`)."
            .into(),
        other => format!("`{other}`: built from each model's tensors"),
    }
}

fn shape_driven_view(name: &str) -> ArchitectureView {
    ArchitectureView {
        name: name.into(),
        builtin: true,
        kind: ArchitectureKind::ShapeDriven,
        description: Some(shape_driven_description(name)),
        tensors: Vec::new(),
        spec: None,
        groups: Vec::new(),
        created_at: None,
    }
}

/// Every built-in architecture: the fixed presets, then the shape-driven ones.
fn builtin_views() -> Vec<ArchitectureView> {
    presets()
        .iter()
        .map(|s| view(s, ArchitectureKind::Preset, None))
        .chain(SHAPE_DRIVEN.iter().map(|n| shape_driven_view(n)))
        .collect()
}

/// List the presets (fixed, then shape-driven), then the custom architectures by name, a
/// page at a time.
#[utoipa::path(get, path = "/v1/architectures", tag = "architectures", operation_id = "list_architectures",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of architectures", body = ArchitecturePage),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_architectures(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ArchitecturePage>, ApiError> {
    let limit = q.limit()?;
    let (mut items, after) = after_builtins(
        builtin_views(),
        |v| v.name.as_str(),
        q.cursor.as_deref(),
        limit,
    );
    let rest = limit - items.len() as u32;
    if rest > 0 {
        let stored = app
            .db
            .list_architectures(tenant.as_str(), after, rest)
            .await?;
        items.extend(
            stored
                .iter()
                .map(|r| view(&r.spec, ArchitectureKind::Custom, Some(r.created_at))),
        );
    }
    Ok(Json(Page::of(items, limit, |v: &ArchitectureView| {
        v.name.clone()
    })))
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
        (status = 413, description = "The JSON body is over the server's limit (`payload_too_large`)", body = Problem, content_type = "application/problem+json"),
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
    if preset(&spec.name).is_ok() || SHAPE_DRIVEN.contains(&spec.name.as_str()) {
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
        Json(view(
            &record.spec,
            ArchitectureKind::Custom,
            Some(record.created_at),
        )),
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
        return Ok(Json(view(&spec, ArchitectureKind::Preset, None)));
    }
    if SHAPE_DRIVEN.contains(&name.as_str()) {
        return Ok(Json(shape_driven_view(&name)));
    }
    let spec = catalog::architecture(app.db.as_ref(), tenant.as_str(), &name)
        .await?
        .ok_or_else(|| ApiError::not_found("architecture", &name))?;
    let created = app
        .db
        .get_architecture(tenant.as_str(), &name)
        .await?
        .map(|r| r.created_at);
    Ok(Json(view(&spec, ArchitectureKind::Custom, created)))
}
