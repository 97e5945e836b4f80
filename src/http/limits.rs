//! Per-tenant limits seen by the HTTP layer: the request rate — one token bucket per tenant
//! (`governor`'s GCRA), `GMFUSE_TENANT_RATE_PER_SEC` refilled, `GMFUSE_TENANT_RATE_BURST`
//! deep, 429 `rate_limited` with `Retry-After` when empty — and the tenant's
//! [`TenantQuota`], whose stored-bytes part is also checked before an upload's body is read
//! (the stores check both quotas again, race-free, when they insert).
//!
//! The buckets are keyed by tenant name; tenants come from API keys (or are the one `default`
//! tenant of open mode), so their number is bounded by the keys an operator created.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::ApiError;
use crate::store::{Db, QuotaExceeded, QuotaKind, TenantQuota};

/// Seconds a client refused for its job quota is told to wait (jobs take seconds to minutes).
pub const JOBS_RETRY_AFTER_SECS: u32 = 10;
/// Seconds a client refused for its storage quota is told to wait (it must delete something).
pub const BYTES_RETRY_AFTER_SECS: u32 = 60;

/// The limits every tenant gets.
pub struct TenantLimits {
    pub quota: TenantQuota,
    /// `None`: no rate limit (`GMFUSE_TENANT_RATE_PER_SEC=0`).
    rate: Option<DefaultKeyedRateLimiter<String>>,
}

impl TenantLimits {
    /// `per_sec` requests a second with bursts of `burst` (at least `per_sec`); `per_sec = 0`
    /// turns the rate limit off.
    pub fn new(quota: TenantQuota, per_sec: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_sec).map(|n| {
            let burst = NonZeroU32::new(burst.max(per_sec)).unwrap_or(n);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(n).allow_burst(burst))
        });
        TenantLimits { quota, rate }
    }

    /// Take one request from `tenant`'s bucket.
    ///
    /// # Errors
    /// 429 `rate_limited`, with the seconds until a request would be allowed.
    pub fn check_rate(&self, tenant: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.rate else {
            return Ok(());
        };
        limiter.check_key(&tenant.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = u32::try_from(wait.as_secs_f64().ceil() as u64)
                .unwrap_or(u32::MAX)
                .max(1);
            ApiError::TooManyRequests {
                code: "rate_limited",
                detail: format!(
                    "tenant `{tenant}` is over its request rate; retry in {retry_after} s"
                ),
                retry_after,
            }
        })
    }

    /// Refuse an upload before its body is read when `tenant` already stores its whole quota.
    ///
    /// # Errors
    /// 429 `quota_exceeded`; database errors.
    pub async fn check_room(&self, db: &dyn Db, tenant: &str) -> Result<(), ApiError> {
        if self.quota.max_bytes == u64::MAX {
            return Ok(());
        }
        let used = db.stored_bytes(tenant).await?;
        // One more byte would not fit: the upload cannot succeed.
        QuotaExceeded::check(
            QuotaKind::StoredBytes,
            used.saturating_add(1),
            self.quota.max_bytes,
        )
        .map_err(quota_error)
    }
}

/// The 429 of a quota.
pub fn quota_error(e: QuotaExceeded) -> ApiError {
    let retry_after = match e.kind {
        QuotaKind::ActiveJobs => JOBS_RETRY_AFTER_SECS,
        QuotaKind::StoredBytes => BYTES_RETRY_AFTER_SECS,
    };
    ApiError::TooManyRequests {
        code: "quota_exceeded",
        detail: e.to_string(),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn the_request_after_the_burst_is_refused_with_retry_after_and_other_tenants_are_not() {
        // 1 request a second, bursts of 3: the 4th request in a row is refused.
        let limits = TenantLimits::new(TenantQuota::UNLIMITED, 1, 3);
        for _ in 0..3 {
            limits.check_rate("a").unwrap();
        }
        let err = limits.check_rate("a").unwrap_err();
        assert_eq!(
            err.status_and_code(),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        );
        let ApiError::TooManyRequests { retry_after, .. } = err else {
            unreachable!()
        };
        assert_eq!(retry_after, 1, "one token a second");
        limits.check_rate("b").unwrap();
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let limits = TenantLimits::new(TenantQuota::UNLIMITED, 0, 0);
        for _ in 0..10_000 {
            limits.check_rate("a").unwrap();
        }
    }
}
