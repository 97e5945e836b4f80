//! Where an S3 blob store lives and how to reach it: [`S3Settings`] (its `Debug` hides the
//! secret key) and the `s3://bucket/prefix` URL.

/// Where and how to reach the bucket.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// `s3://bucket/prefix` (the prefix may be empty).
    pub url: String,
    /// Custom endpoint, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Accept a plain-HTTP endpoint.
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// Why an S3 store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    #[error("blob URL {0:?} is not of the form s3://bucket/prefix")]
    BadUrl(String),
    #[error("S3 client: {0}")]
    Client(#[from] object_store::Error),
}

/// Split `s3://bucket/some/prefix` into the bucket and the prefix (without outer slashes).
///
/// # Errors
/// [`S3ConfigError::BadUrl`] for another scheme or an empty bucket.
pub fn parse_s3_url(url: &str) -> Result<(String, String), S3ConfigError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| S3ConfigError::BadUrl(url.to_string()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(S3ConfigError::BadUrl(url.to_string()));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}
