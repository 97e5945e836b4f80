//! `POST /v1/models` as `multipart/form-data`: an ONNX model (part `model`) and the external data
//! files its tensors reference (one part each, named by the location the model gives), made
//! into ONE self-contained ONNX file by the engine ([`onnx::inline_external`]) before the normal
//! upload path stages, validates and stores it.
//!
//! The parts are read into memory — the engine inlines from memory, and the single-file path
//! reads a staged ONNX upload into memory too — under the upload cap for all of them together
//! and at most [`MAX_PARTS`] parts; nothing is staged until the file is whole, so a refused
//! form leaves nothing behind.

use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};

use crate::engine::onnx::{self, ExternalFiles, OnnxError};
use crate::http::convert::multipart_error;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::ByteStream;

/// The name of the part holding the model.
pub const MODEL_PART: &str = "model";
/// Most parts of a form: the model and [`onnx::limits::MAX_EXTERNAL_FILES`] files.
pub const MAX_PARTS: usize = 1 + onnx::limits::MAX_EXTERNAL_FILES;

/// The multipart form of a model upload (documentation only): `model` and any number of
/// further binary parts.
pub struct ModelForm;

impl utoipa::PartialSchema for ModelForm {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        let binary = || super::Binary::schema();
        let file: RefOr<_> = binary();
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "An ONNX model and its external data files. Part `model` is the .onnx file; \
                 every other part is a file a tensor's `external_data` `location` names, \
                 matched by the part's filename (or its name when it has none).",
            ))
            .property(MODEL_PART, binary())
            .required(MODEL_PART)
            .additional_properties(Some(AdditionalProperties::RefOr(file)))
            .into()
    }
}

impl utoipa::ToSchema for ModelForm {}

/// True when the request is a multipart form.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// The form of `req` as one self-contained ONNX file, streamed as an upload body.
///
/// # Errors
/// 415 for a form without a boundary; 413 past the upload cap; 400 `invalid_onnx` for a form
/// without `model`, a repeated part, too many parts, a model that is not ONNX, and every
/// external-data error of the engine (a missing or unreferenced file naming its location and
/// tensor); 422 `unsupported_onnx` as the engine says.
pub async fn model_from_form(app: &AppState, req: Request) -> Result<ByteStream, ApiError> {
    let form = Multipart::from_request(req, app)
        .await
        .map_err(|e: MultipartRejection| ApiError::UnsupportedMediaType(e.body_text()))?;
    let (model, files) = read_parts(form, app.max_upload_bytes).await?;
    let budget = usize::try_from(app.max_upload_bytes).unwrap_or(usize::MAX);
    let inlined =
        tokio::task::spawn_blocking(move || onnx::inline_external(&model, &files, budget))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(onnx_error)?;
    Ok(Box::pin(futures::stream::once(async move {
        Ok(Bytes::from(inlined))
    })))
}

/// The model part and the files, at most `limit` bytes in all.
async fn read_parts(mut form: Multipart, limit: u64) -> Result<(Vec<u8>, ExternalFiles), ApiError> {
    let mut model: Option<Vec<u8>> = None;
    let mut files = ExternalFiles::new();
    let (mut parts, mut total) = (0usize, 0u64);
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::InvalidOnnx(format!(
                "the form has more than {MAX_PARTS} parts (the model and at most {} external \
                 data files)",
                MAX_PARTS - 1
            )));
        }
        let name = field.name().unwrap_or_default().to_string();
        let location = match field.file_name() {
            _ if name == MODEL_PART => None,
            Some(f) if !f.is_empty() => Some(f.to_string()),
            _ => Some(name.clone()),
        };
        let bytes = read_field(&mut field, &mut total, limit).await?;
        match location {
            None if model.is_some() => return Err(repeated(MODEL_PART)),
            None => model = Some(bytes),
            Some(loc) if files.contains_key(&loc) => return Err(repeated(&loc)),
            Some(loc) => {
                files.insert(loc, bytes);
            }
        }
    }
    let model = model.ok_or_else(|| {
        ApiError::InvalidOnnx(format!(
            "the form has no `{MODEL_PART}` part: send the .onnx file as part `{MODEL_PART}` and \
             each external data file as a part whose filename is the location the model names"
        ))
    })?;
    Ok((model, files))
}

/// One part's bytes, counted into `total` and refused once it passes `limit`.
async fn read_field(
    field: &mut Field<'_>,
    total: &mut u64,
    limit: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
        *total += chunk.len() as u64;
        if *total > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn repeated(part: &str) -> ApiError {
    ApiError::InvalidOnnx(format!("the form has two parts for `{part}`"))
}

/// An engine error as the single-file upload reports it: 422 for what gmfuse does not support,
/// else 400.
fn onnx_error(e: OnnxError) -> ApiError {
    if e.is_unsupported() {
        ApiError::UnsupportedOnnx(format!("ONNX model: {e}"))
    } else {
        ApiError::InvalidOnnx(format!("ONNX model: {e}"))
    }
}
