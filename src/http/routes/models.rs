//! `/v1/models`: upload (streamed, hashed, validated, deduplicated), list, get, download with
//! an ETag, delete.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::model_form;
use super::page::{Page, PageItem, PageQuery};
use crate::http::auth::Tenant;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::idempotency;
use crate::http::state::AppState;
use crate::jobs::ingest;
use crate::store::{ByteStream, ModelFormat, ModelRecord, StoredResponse};

/// A tensor as stored in the file.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TensorView {
    #[schema(example = "conv1.weight")]
    pub name: String,
    /// `F16`, `BF16`, `F32` or `F64`.
    #[schema(example = "F32")]
    pub dtype: String,
    #[schema(example = json!([32, 1, 5, 5]))]
    pub shape: Vec<usize>,
}

/// An uploaded model.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModelView {
    pub id: Uuid,
    #[schema(example = "demo-a")]
    pub name: String,
    /// Hex sha256 of the file; also its ETag.
    #[schema(example = "9f2c0d5e1b7a4c3d8e6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f")]
    pub sha256: String,
    pub size_bytes: u64,
    /// The architecture the tensors fit (given at upload or detected), if any; for an ONNX
    /// model, the one its graph describes (`onnx-<12 hex>`, recorded as a custom architecture).
    #[schema(example = "mnist-cnn")]
    pub architecture: Option<String>,
    pub format: ModelFormat,
    pub tensors: Vec<TensorView>,
    pub created_at: DateTime<Utc>,
}

impl From<ModelRecord> for ModelView {
    fn from(m: ModelRecord) -> Self {
        ModelView {
            id: m.id,
            name: m.name,
            sha256: m.sha256,
            size_bytes: m.size_bytes,
            architecture: m.architecture,
            format: m.format,
            tensors: m
                .tensors
                .into_iter()
                .map(|t| TensorView {
                    name: t.name,
                    dtype: format!("{:?}", t.dtype),
                    shape: t.shape,
                })
                .collect(),
            created_at: m.created_at,
        }
    }
}

/// Query of an upload.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// A name for people; defaults to `model-<first 12 hex of the sha256>`.
    pub name: Option<String>,
    /// Check the tensors against this architecture (422 when they do not fit); when absent
    /// the first architecture they fit is recorded.
    pub architecture: Option<String>,
}

/// The format a `Content-Type` declares: `application/onnx` is ONNX; `application/octet-stream`
/// (or none) is told from the bytes.
fn declared_format(headers: &HeaderMap) -> Result<Option<ModelFormat>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let ct = value.to_str().unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(ModelFormat::Onnx.media_type()) {
        Ok(Some(ModelFormat::Onnx))
    } else if essence.eq_ignore_ascii_case("application/octet-stream") {
        Ok(None)
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "expected `Content-Type: application/octet-stream` (a raw safetensors or ONNX file) \
             or `application/onnx`, got `{ct}`"
        )))
    }
}

/// Turn a request body into a byte stream, refusing it up front when `Content-Length` is over.
pub(crate) fn upload_stream(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<ByteStream, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(Box::pin(
        body.into_data_stream().map_err(std::io::Error::other),
    ))
}

/// Upload a model: a safetensors or ONNX file, or an ONNX model with its external data files.
///
/// The body is streamed to disk while its sha256 is computed, refused past the size limit
/// (413), and validated before anything is stored: a safetensors header (422), an ONNX graph
/// (400 when malformed, 422 naming the node when it uses an op gmfuse does not support). An
/// ONNX model's architecture is read from its graph and recorded (`onnx-<12 hex>`), so a job
/// needs no `architecture`. Uploading identical bytes again returns the existing model with 200.
///
/// An ONNX model whose tensors keep their data in external files comes as
/// `multipart/form-data`: part `model` and one part per file, its filename the location the
/// model names. The server inlines them and stores ONE self-contained ONNX file (the model's
/// `sha256` is that file's); a missing, unreferenced or repeated file is 400 `invalid_onnx`
/// naming it, the parts together are held to the upload limit.
#[utoipa::path(post, path = "/v1/models", tag = "models", operation_id = "create_model",
    params(UploadQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key, query and bytes get the first response again (kept 24 h by default); the key with another upload is 422 `idempotency_key_reused`")),
    request_body(content(
        (inline(super::Binary) = "application/octet-stream"),
        (inline(super::Binary) = "application/onnx"),
        (inline(model_form::ModelForm) = "multipart/form-data")),
        description = "A safetensors file, an ONNX model (`application/onnx`, or detected from the bytes), or an ONNX model with its external data files (`multipart/form-data`)"),
    responses(
        (status = 201, description = "Stored; `Location` names the new model", body = ModelView,
            headers(("Location" = String, description = "URL of the model"))),
        (status = 200, description = "Identical content was uploaded before: the existing model", body = ModelView),
        (status = 400, description = "A malformed `Idempotency-Key` (`invalid_idempotency_key`) or query, a malformed ONNX model (`invalid_onnx`), or a form whose external data files do not match the model's (`invalid_onnx`: no `model` part, a repeated, missing or unreferenced file, a range outside its file)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this `Idempotency-Key` is still being served (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the upload limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither `application/octet-stream`, `application/onnx` nor `multipart/form-data` (with a boundary)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid safetensors, tensors that do not fit the architecture, or an ONNX model that uses an unsupported op (`unsupported_onnx`, naming the node, its op and the supported ops)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant's storage quota (`quota_exceeded`) or request rate (`rate_limited`); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "Too many uploads in progress; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 507, description = "The server's disk is full (`insufficient_storage`); nothing was stored", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_model(
    State(app): State<AppState>,
    tenant: Tenant,
    uri: Uri,
    ApiQuery(q): ApiQuery<UploadQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let form = model_form::is_multipart(&headers);
    let format = if form {
        Some(ModelFormat::Onnx)
    } else {
        declared_format(&headers)?
    };
    app.limits
        .check_room(app.db.as_ref(), tenant.as_str())
        .await?;
    let _slot = app.upload_slots.acquire()?;
    let stream = if form {
        model_form::model_from_form(&app, req).await?
    } else {
        upload_stream(&headers, req.into_body(), app.max_upload_bytes)?
    };
    let Some(key) = idempotency::key_of(&headers)? else {
        return upload(&app, &tenant, stream, q, format)
            .await
            .map(|(res, _, _)| res);
    };
    // The request is its query and its content, whose hash is known once it has arrived.
    let query = uri.query().unwrap_or_default().to_string();
    let hash_of = |sha: &str| idempotency::request_hash(&[query.as_bytes(), sha.as_bytes()]);
    match idempotency::begin(&app, &tenant, "models", key.clone(), "").await? {
        Err((stored_hash, stored)) => {
            let staged = app.blobs.stage(stream, app.max_upload_bytes).await?;
            let hash = hash_of(&staged.sha256);
            app.blobs.discard(staged).await;
            idempotency::replay(&key, &stored_hash, &hash, stored)
        }
        Ok(claim) => {
            let out = upload(&app, &tenant, stream, q, format).await;
            let hash = out
                .as_ref()
                .map_or_else(|_| String::new(), |(_, _, sha)| hash_of(sha));
            let kept = out.as_ref().map(|(_, s, _)| s).map_err(|_| ());
            idempotency::finish(&app, claim, &hash, kept).await;
            out.map(|(res, _, _)| res)
        }
    }
}

/// Ingest an upload; the response, what to keep of it, and the content's sha256.
async fn upload(
    app: &AppState,
    tenant: &Tenant,
    stream: ByteStream,
    q: UploadQuery,
    format: Option<ModelFormat>,
) -> Result<(Response, StoredResponse, String), ApiError> {
    let (model, created) = ingest::ingest_model(
        app.db.as_ref(),
        app.blobs.as_ref(),
        tenant.as_str(),
        stream,
        ingest::UploadLimits {
            max_bytes: app.max_upload_bytes,
            quota: app.limits.quota,
        },
        ingest::ModelUpload {
            name: q.name,
            architecture: q.architecture,
            format,
        },
    )
    .await?;
    let location = format!("/v1/models/{}", model.id);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let sha = model.sha256.clone();
    let (res, stored) =
        idempotency::json_response(status, Some(location), &ModelView::from(model))?;
    Ok((res, stored, sha))
}

/// A model in a list: what `GET /v1/models/{id}` shows, less the tensors (a file may have
/// thousands).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModelSummary {
    pub id: Uuid,
    pub name: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub architecture: Option<String>,
    pub format: ModelFormat,
    /// How many tensors the file holds.
    pub tensor_count: usize,
    pub created_at: DateTime<Utc>,
}

impl PageItem for ModelSummary {
    const PAGE_NAME: &'static str = "ModelPage";
}

/// A page of models (newest first).
pub type ModelPage = Page<ModelSummary>;

/// List the caller's models, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/models", tag = "models", operation_id = "list_models",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of models", body = ModelPage),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_models(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ModelPage>, ApiError> {
    let limit = q.limit()?;
    let models = app
        .db
        .list_models(tenant.as_str(), q.uuid_cursor()?, limit)
        .await?;
    let items = models
        .into_iter()
        .map(|m| ModelSummary {
            id: m.id,
            name: m.name,
            sha256: m.sha256,
            size_bytes: m.size_bytes,
            architecture: m.architecture,
            format: m.format,
            tensor_count: m.tensors.len(),
            created_at: m.created_at,
        })
        .collect();
    Ok(Json(Page::of(items, limit, |m: &ModelSummary| {
        m.id.to_string()
    })))
}

/// One model: its tensors (name, dtype, shape), sha256, size and architecture.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "models", operation_id = "get_model",
    params(("id" = Uuid, Path, description = "Model id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The model", body = ModelView),
        (status = 404, description = "No such model", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_model(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ModelView>, ApiError> {
    let model = app
        .db
        .get_model(tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("model", id))?;
    Ok(Json(model.into()))
}

/// Download a model's file as uploaded (safetensors, or ONNX as `application/onnx`). The ETag
/// is its sha256; `If-None-Match` gives 304.
#[utoipa::path(get, path = "/v1/models/{id}/weights", tag = "models", operation_id = "get_model_weights",
    params(("id" = Uuid, Path, description = "Model id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The file", content((inline(super::Binary) = "application/octet-stream"), (inline(super::Binary) = "application/onnx")),
            headers(("ETag" = String, description = "Quoted sha256 of the file"))),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 404, description = "No such model", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_model_weights(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let model = app
        .db
        .get_model(tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("model", id))?;
    let filename = format!("{}.{}", model.name, model.format.extension());
    super::serve_blob(&app, &headers, &model.sha256, &filename).await
}

/// Delete a model. Its bytes are removed unless a job or another record still uses them; a
/// model that a queued or running job reads is not deleted (409 `in_use`).
#[utoipa::path(delete, path = "/v1/models/{id}", tag = "models", operation_id = "delete_model",
    params(("id" = Uuid, Path, description = "Model id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such model", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A queued or running job uses the model (`in_use`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_model(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    crate::jobs::remove::delete_model(app.db.as_ref(), app.blobs.as_ref(), tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("model", id))?;
    Ok(StatusCode::NO_CONTENT)
}
