//! Who is calling: `Authorization: Bearer <key>` resolved to a [`Tenant`] for every `/v1`
//! route (then the tenant's request rate, [`super::limits`]), and the optional key of
//! `/metrics`.
//!
//! Zero-setup default: while the database has never held a key (and `GMFUSE_REQUIRE_AUTH` is
//! off) a request without a key acts as the `default` tenant. Once a key exists every `/v1`
//! request needs a valid, unrevoked one; a missing, malformed, unknown or revoked key answers
//! 401 problem+json with `WWW-Authenticate: Bearer`. `/healthz` and `/readyz` stay open.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::auth;
use crate::store::{DEFAULT_TENANT, Db};

/// The tenant a request acts as (set by [`authenticate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant(pub String);

impl Tenant {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Tenant>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("no tenant: the auth layer did not run".into()))
    }
}

/// How requests are authenticated.
#[derive(Debug, Default)]
pub struct AuthSettings {
    /// `GMFUSE_REQUIRE_AUTH`: refuse requests without a key even before one exists.
    pub require: bool,
    /// `GMFUSE_METRICS_KEY`: the bearer token `/metrics` wants, if any.
    pub metrics_key: Option<String>,
    /// Set once a key was seen in the database (keys are never removed, only revoked).
    keys_exist: AtomicBool,
}

impl AuthSettings {
    pub fn new(require: bool, metrics_key: Option<String>) -> Self {
        AuthSettings {
            require,
            metrics_key,
            keys_exist: AtomicBool::new(false),
        }
    }

    /// True when a request without a key is refused.
    ///
    /// # Errors
    /// Database errors.
    pub async fn required(&self, db: &dyn Db) -> Result<bool, ApiError> {
        if self.require || self.keys_exist.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let exist = db.any_key().await?;
        if exist {
            self.keys_exist.store(true, Ordering::Relaxed);
        }
        Ok(exist)
    }
}

fn bearer(headers: &HeaderMap) -> Option<Result<&str, ApiError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    Some(token.ok_or_else(|| {
        ApiError::Unauthorized("the Authorization header is not `Bearer <key>`".into())
    }))
}

/// The tenant of the request's key, or the default tenant in open mode.
///
/// # Errors
/// [`ApiError::Unauthorized`] for a missing (when required), malformed, unknown or revoked key.
pub async fn resolve(app: &AppState, headers: &HeaderMap) -> Result<Tenant, ApiError> {
    let Some(token) = bearer(headers) else {
        if app.auth.required(app.db.as_ref()).await? {
            return Err(ApiError::Unauthorized(
                "this route needs `Authorization: Bearer <key>`".into(),
            ));
        }
        return Ok(Tenant(DEFAULT_TENANT.to_string()));
    };
    let token = token?;
    if !auth::well_formed(token) {
        return Err(ApiError::Unauthorized("malformed API key".into()));
    }
    let hash = auth::hash(token);
    match app.db.find_key(&hash).await? {
        Some(k) if auth::same_hash(&k.secret_sha256, &hash) && k.revoked_at.is_none() => {
            Ok(Tenant(k.tenant))
        }
        Some(_) | None => Err(ApiError::Unauthorized("unknown or revoked API key".into())),
    }
}

/// Middleware: resolve the tenant of `/v1` requests and check the `/metrics` key.
pub async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path == "/metrics" {
        if let Some(want) = &app.auth.metrics_key {
            let ok = matches!(bearer(req.headers()), Some(Ok(got)) if auth::same_hash(got, want));
            if !ok {
                return ApiError::Unauthorized("/metrics needs its bearer key".into())
                    .into_response();
            }
        }
        return next.run(req).await;
    }
    if !path.starts_with("/v1/") {
        return next.run(req).await;
    }
    let tenant = match resolve(&app, req.headers()).await {
        Ok(tenant) => tenant,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = app.limits.check_rate(tenant.as_str()) {
        return e.into_response();
    }
    req.extensions_mut().insert(tenant);
    next.run(req).await
}
