//! `Idempotency-Key` on `POST /v1/jobs` and `POST /v1/models` (the IETF
//! httpapi-idempotency-key draft): the first response to a key is kept per tenant for the
//! configured retention; the same key with the same request gets that response again (status,
//! `Location` and body), with another request 422 `idempotency_key_reused`, and while the first
//! is still being served 409 `idempotency_in_flight`. A request that fails frees its key.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::auth::Tenant;
use super::error::ApiError;
use super::state::AppState;
use crate::store::{IdemSlot, StoredResponse};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// A claimed key, to complete with the response or release on failure.
pub struct Claim {
    tenant: Tenant,
    route: &'static str,
    key: String,
}

/// The key of a request, if it has one.
///
/// # Errors
/// [`ApiError::InvalidIdempotencyKey`] unless it is 1-255 visible ASCII characters.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_string()))
        }
        _ => Err(ApiError::InvalidIdempotencyKey(
            "Idempotency-Key must be 1-255 visible ASCII characters".into(),
        )),
    }
}

/// Hex sha256 of the parts of a request that make it "the same request".
pub fn request_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Claim `key` for `route`: `Ok(claim)` to serve the request and then [`finish`], or the
/// first request's hash and response to [`replay`]. `request_hash` may be empty when it is
/// only known once the request is served (an upload's content); [`finish`] records it.
///
/// # Errors
/// 409 `idempotency_in_flight`, 422 `idempotency_key_reused`, database errors.
pub async fn begin(
    app: &AppState,
    tenant: &Tenant,
    route: &'static str,
    key: String,
    request_hash: &str,
) -> Result<Result<Claim, (String, StoredResponse)>, ApiError> {
    let slot = app
        .db
        .claim_idempotency(
            tenant.as_str(),
            route,
            &key,
            request_hash,
            app.idempotency_retention,
            app.idempotency_stale,
        )
        .await?;
    match slot {
        IdemSlot::Claimed => Ok(Ok(Claim {
            tenant: tenant.clone(),
            route,
            key,
        })),
        IdemSlot::InFlight => Err(ApiError::IdempotencyInFlight(format!(
            "a request with Idempotency-Key `{key}` is still being served; retry later"
        ))),
        IdemSlot::Done {
            request_hash,
            response,
        } => Ok(Err((request_hash, response))),
    }
}

/// The stored response again, after checking that it answered the same request.
///
/// # Errors
/// 422 `idempotency_key_reused` when the hashes differ.
pub fn replay(
    key: &str,
    stored_hash: &str,
    this_hash: &str,
    response: StoredResponse,
) -> Result<Response, ApiError> {
    if stored_hash != this_hash {
        return Err(ApiError::IdempotencyKeyReused(format!(
            "Idempotency-Key `{key}` was used for another request"
        )));
    }
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut res = (status, response.body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(loc) = response
        .location
        .and_then(|l| HeaderValue::from_str(&l).ok())
    {
        h.insert(header::LOCATION, loc);
    }
    h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(res)
}

/// Record the outcome of a claimed key: a success is kept, a failure frees the key.
pub async fn finish(
    app: &AppState,
    claim: Claim,
    request_hash: &str,
    outcome: Result<&StoredResponse, ()>,
) {
    let (t, r, k) = (claim.tenant.as_str(), claim.route, claim.key.as_str());
    let written = match outcome {
        Ok(resp) => {
            app.db
                .complete_idempotency(t, r, k, request_hash, resp)
                .await
        }
        Err(()) => app.db.release_idempotency(t, r, k).await,
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, key = k, "could not record an idempotency key");
    }
}

/// A JSON response that can be both sent and stored.
pub fn json_response(
    status: StatusCode,
    location: Option<String>,
    body: &impl serde::Serialize,
) -> Result<(Response, StoredResponse), ApiError> {
    let body = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let stored = StoredResponse {
        status: status.as_u16(),
        location,
        body,
    };
    let mut res = (status, stored.body.clone()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(loc) = stored
        .location
        .as_deref()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        h.insert(header::LOCATION, loc);
    }
    Ok((res, stored))
}
