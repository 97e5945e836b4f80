//! `/v1/datasets`: the built-in `mnist-test` and uploaded evaluation sets (an IDX pair or one
//! safetensors file with `images` and `labels`), validated before they are stored.

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::page::{Page, PageItem, PageQuery, after_builtins, uuid_cursor};
use crate::http::auth::Tenant;
use crate::http::convert::multipart_error;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::state::AppState;
use crate::jobs::catalog::{BUILTIN_DATASETS, BuiltinDataset, builtin_dataset};
use crate::jobs::ingest;
use crate::store::{BlobStore, DatasetFormat, DatasetRecord, LabelRange, Staged};

/// An evaluation set.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DatasetView {
    /// `mnist-test` for the built-in set, a UUID for uploads; jobs name it in `dataset`.
    #[schema(example = "mnist-test")]
    pub id: String,
    #[schema(example = "mnist-test")]
    pub name: String,
    pub builtin: bool,
    /// `builtin`, `idx` or `safetensors`.
    #[schema(example = "builtin")]
    pub format: String,
    #[schema(example = 10000)]
    pub samples: u64,
    /// One sample's `[C, H, W]`.
    #[schema(example = json!([1, 28, 28]))]
    pub shape: [usize; 3],
    pub description: Option<String>,
    pub size_bytes: Option<u64>,
    /// The smallest and largest label (absent for uploads stored before gmfuse recorded it):
    /// a job's model needs more than `max` classes.
    pub labels: Option<LabelsView>,
    pub created_at: Option<DateTime<Utc>>,
}

/// The smallest and largest label of a dataset.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LabelsView {
    #[schema(example = 0)]
    pub min: u32,
    #[schema(example = 9)]
    pub max: u32,
}

impl From<LabelRange> for LabelsView {
    fn from(l: LabelRange) -> Self {
        LabelsView {
            min: l.min,
            max: l.max,
        }
    }
}

fn builtin_view(b: BuiltinDataset) -> DatasetView {
    DatasetView {
        id: b.name.into(),
        name: b.name.into(),
        builtin: true,
        format: "builtin".into(),
        samples: b.samples,
        shape: b.shape,
        description: Some(b.description.into()),
        size_bytes: None,
        labels: Some(b.labels.into()),
        created_at: None,
    }
}

impl From<DatasetRecord> for DatasetView {
    fn from(d: DatasetRecord) -> Self {
        DatasetView {
            id: d.id.to_string(),
            name: d.name,
            builtin: false,
            format: d.format.as_str().into(),
            samples: d.samples,
            shape: d.shape,
            description: None,
            size_bytes: Some(d.size_bytes),
            labels: d.labels.map(LabelsView::from),
            created_at: Some(d.created_at),
        }
    }
}

/// Query of a dataset upload.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DatasetQuery {
    /// A name for people.
    #[param(example = "my-digits")]
    pub name: Option<String>,
}

/// The multipart form of an upload (documentation only).
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "describes the multipart form in the OpenAPI document"
)]
pub struct DatasetUpload {
    /// IDX images (`[n, H, W]` u8, magic 2051), raw or gzipped. With `labels`.
    #[schema(format = Binary)]
    images: Option<String>,
    /// IDX labels (magic 2049), raw or gzipped. With `images`.
    #[schema(format = Binary)]
    labels: Option<String>,
    /// Or one safetensors file with tensors `images` (`[n, C, H, W]` or `[n, H, W]`) and `labels`.
    #[schema(format = Binary)]
    file: Option<String>,
}

impl PageItem for DatasetView {
    const PAGE_NAME: &'static str = "DatasetPage";
}

/// A page of datasets: the built-in ones, then uploads, newest first.
pub type DatasetPage = Page<DatasetView>;

/// List the built-in datasets, then uploads, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/datasets", tag = "datasets", operation_id = "list_datasets",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of datasets", body = DatasetPage),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_datasets(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<DatasetPage>, ApiError> {
    let limit = q.limit()?;
    let builtins = BUILTIN_DATASETS.into_iter().map(builtin_view).collect();
    let (mut items, before) = after_builtins(
        builtins,
        |v: &DatasetView| v.id.as_str(),
        q.cursor.as_deref(),
        limit,
    );
    let before = uuid_cursor(before)?;
    let rest = limit - items.len() as u32;
    if rest > 0 {
        let stored = app.db.list_datasets(tenant.as_str(), before, rest).await?;
        items.extend(stored.into_iter().map(DatasetView::from));
    }
    Ok(Json(Page::of(items, limit, |v: &DatasetView| v.id.clone())))
}

/// One dataset by id.
#[utoipa::path(get, path = "/v1/datasets/{id}", tag = "datasets", operation_id = "get_dataset",
    params(("id" = String, Path, description = "`mnist-test` or an upload's UUID")),
    responses(
        (status = 200, description = "The dataset", body = DatasetView),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_dataset(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DatasetView>, ApiError> {
    if let Some(b) = builtin_dataset(&id) {
        return Ok(Json(builtin_view(b)));
    }
    let uuid = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("dataset", &id))?;
    let d = app
        .db
        .get_dataset(tenant.as_str(), uuid)
        .await?
        .ok_or_else(|| ApiError::not_found("dataset", &id))?;
    Ok(Json(d.into()))
}

/// Delete an uploaded dataset. Its bytes are removed unless another record uses them; a
/// dataset that a queued or running job reads is not deleted (409 `in_use`), nor is a
/// built-in one (409 `builtin`).
#[utoipa::path(delete, path = "/v1/datasets/{id}", tag = "datasets", operation_id = "delete_dataset",
    params(("id" = String, Path, description = "An upload's UUID")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A queued or running job uses the dataset (`in_use`), or it is built in (`builtin`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_dataset(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if builtin_dataset(&id).is_some() {
        return Err(ApiError::Conflict {
            code: "builtin",
            detail: format!("dataset `{id}` is built in and cannot be deleted"),
        });
    }
    let uuid = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("dataset", &id))?;
    crate::jobs::remove::delete_dataset(app.db.as_ref(), app.blobs.as_ref(), tenant.as_str(), uuid)
        .await?
        .ok_or_else(|| ApiError::not_found("dataset", &id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Upload an evaluation set as `multipart/form-data`: parts `images` and `labels` (IDX) or
/// one part `file` (safetensors). It is decoded and checked before anything is stored.
#[utoipa::path(post, path = "/v1/datasets", tag = "datasets", operation_id = "create_dataset",
    params(DatasetQuery),
    request_body(content = DatasetUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = DatasetView,
            headers(("Location" = String, description = "URL of the dataset"))),
        (status = 400, description = "Not a usable multipart form", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A part is over the upload limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `multipart/form-data`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Parts missing or not a valid dataset", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant's storage quota (`quota_exceeded`) or request rate (`rate_limited`); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "Too many uploads in progress; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 507, description = "The server's disk is full (`insufficient_storage`); nothing was stored", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_dataset(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<DatasetQuery>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut form = form.map_err(|e| ApiError::UnsupportedMediaType(e.body_text()))?;
    app.limits
        .check_room(app.db.as_ref(), tenant.as_str())
        .await?;
    let _slot = app.upload_slots.acquire()?;
    let mut parts: Vec<(String, Staged)> = Vec::new();
    let result = async {
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| multipart_error(e, app.max_upload_bytes))?
        {
            let name = field.name().unwrap_or_default().to_string();
            if !["images", "labels", "file"].contains(&name.as_str())
                || parts.iter().any(|(n, _)| *n == name)
            {
                return Err(ApiError::InvalidDataset(format!(
                    "unexpected or repeated part `{name}`: send `images` + `labels`, or `file`"
                )));
            }
            let stream = Box::pin(field.map_err(std::io::Error::other));
            parts.push((name, app.blobs.stage(stream, app.max_upload_bytes).await?));
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        discard(app.blobs.as_ref(), parts).await;
        return Err(e);
    }
    let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    let format = match names.as_slice() {
        ["images", "labels"] | ["labels", "images"] => DatasetFormat::Idx,
        ["file"] => DatasetFormat::Safetensors,
        _ => {
            discard(app.blobs.as_ref(), parts).await;
            return Err(ApiError::InvalidDataset(
                "send parts `images` and `labels` (IDX), or one part `file` (safetensors)".into(),
            ));
        }
    };
    parts.sort_by_key(|(n, _)| match n.as_str() {
        "images" | "file" => 0,
        _ => 1,
    });
    let staged = parts.into_iter().map(|(_, s)| s).collect();
    let name = q.name.unwrap_or_else(|| "dataset".into());
    let record = ingest::ingest_dataset(
        app.db.as_ref(),
        app.blobs.as_ref(),
        tenant.as_str(),
        name,
        format,
        staged,
        &app.limits.quota,
    )
    .await?;
    let location = format!("/v1/datasets/{}", record.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(DatasetView::from(record)),
    )
        .into_response())
}

async fn discard(blobs: &dyn BlobStore, parts: Vec<(String, Staged)>) {
    for (_, s) in parts {
        blobs.discard(s).await;
    }
}
