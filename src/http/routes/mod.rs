//! Route handlers, one file per resource, and the helpers they share.

mod arch_doc;
pub mod architectures;
pub mod datasets;
pub mod events;
pub mod job_views;
pub mod jobs;
pub mod model_form;
pub mod models;
pub mod ops;
pub mod page;
pub mod results;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::App;
use crate::store::ModelFormat;

/// A file as a request or response body (`type: string, format: binary`): uploads and
/// downloads of safetensors files. Documentation only; generated clients read it as a file
/// or bytes.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::KnownFormat;
        use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for Binary {}

/// `attachment` with a safe ASCII `filename` (anything but letters, digits, `.`, `-`, `_` and
/// spaces becomes `_`) and the exact name as RFC 5987 `filename*` (UTF-8, percent-encoded).
pub fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// True when `If-None-Match` names the entity tag `"<sha256>"` (or `*`).
pub fn etag_matches(headers: &HeaderMap, sha256: &str) -> bool {
    let quoted = format!("\"{sha256}\"");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == quoted || t == "*")
}

/// Stream a blob as an `application/octet-stream` (`application/onnx` for a `.onnx` name) download with `ETag: "<sha256>"`, or 304
/// when the client already has it.
///
/// # Errors
/// Blob store errors.
pub async fn serve_blob(
    app: &App,
    headers: &HeaderMap,
    sha256: &str,
    filename: &str,
) -> Result<Response, ApiError> {
    if etag_matches(headers, sha256) {
        return not_modified(sha256);
    }
    let (stream, size) = app.blobs.stream(sha256).await?;
    download(Body::from_stream(stream), size, sha256, filename)
}

/// [`serve_blob`] for bytes computed for this request (not stored).
///
/// # Errors
/// Only an unusable sha256.
pub fn serve_bytes(
    headers: &HeaderMap,
    bytes: Vec<u8>,
    sha256: &str,
    filename: &str,
) -> Result<Response, ApiError> {
    if etag_matches(headers, sha256) {
        return not_modified(sha256);
    }
    let size = bytes.len() as u64;
    download(Body::from(bytes), size, sha256, filename)
}

fn etag(sha256: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!("\"{sha256}\"")).map_err(|e| ApiError::Internal(e.to_string()))
}

fn not_modified(sha256: &str) -> Result<Response, ApiError> {
    Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag(sha256)?)]).into_response())
}

/// A download's media type, by its file name: `application/onnx` for an ONNX model, else
/// `application/octet-stream` (safetensors).
fn media_type(filename: &str) -> &'static str {
    let format = if filename.ends_with(".onnx") {
        ModelFormat::Onnx
    } else {
        ModelFormat::Safetensors
    };
    format.media_type()
}

fn download(body: Body, size: u64, sha256: &str, filename: &str) -> Result<Response, ApiError> {
    let etag = etag(sha256)?;
    let disposition = content_disposition(filename);
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media_type(filename)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(header::ETAG, etag);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn download_names_are_ascii_with_the_exact_name_encoded() {
        assert_eq!(
            content_disposition("a\"b\r\nc/ü.safetensors"),
            "attachment; filename=\"a_b__c__.safetensors\"; \
             filename*=UTF-8''a%22b%0D%0Ac%2F%C3%BC.safetensors"
        );
    }
}
