//! Per-tenant quotas: how many jobs a tenant may have queued or running, and how many bytes of
//! models and datasets it may store. The stores check them inside the transaction that inserts
//! the row (SQLite: after the insert took the database's write lock; PostgreSQL: under a
//! transaction-scoped advisory lock on the tenant), so concurrent submissions never get past a
//! quota together.

use std::fmt;

/// The limits of one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantQuota {
    /// Queued + running jobs (`GMFUSE_TENANT_MAX_ACTIVE_JOBS`).
    pub max_active_jobs: u64,
    /// Bytes of models and datasets (`GMFUSE_TENANT_MAX_BYTES`).
    pub max_bytes: u64,
}

impl TenantQuota {
    /// No limit (the demo models, store-level tests).
    pub const UNLIMITED: TenantQuota = TenantQuota {
        max_active_jobs: u64::MAX,
        max_bytes: u64::MAX,
    };
}

/// Which quota a request ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaKind {
    /// Queued + running jobs.
    ActiveJobs,
    /// Stored bytes of models and datasets.
    StoredBytes,
}

/// A refused insert: what the tenant would have reached, and its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub kind: QuotaKind,
    /// The tenant's total with the refused row.
    pub would_be: u64,
    pub limit: u64,
}

impl QuotaExceeded {
    /// Refuse when `would_be` is over `limit`.
    ///
    /// # Errors
    /// The [`QuotaExceeded`] itself.
    pub fn check(kind: QuotaKind, would_be: u64, limit: u64) -> Result<(), QuotaExceeded> {
        if would_be > limit {
            Err(QuotaExceeded {
                kind,
                would_be,
                limit,
            })
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let QuotaExceeded {
            would_be, limit, ..
        } = self;
        match self.kind {
            QuotaKind::ActiveJobs => write!(
                f,
                "the tenant may have {limit} queued or running jobs, and this one would be job \
                 {would_be}; retry when one has finished"
            ),
            QuotaKind::StoredBytes => write!(
                f,
                "the tenant may store {limit} bytes of models and datasets, and this upload \
                 would bring it to {would_be}; delete some first"
            ),
        }
    }
}

/// The PostgreSQL advisory-lock key that serializes one tenant's quota checks (kept apart from
/// the blob locks' keys by its text prefix, hashed by the server).
pub const PG_QUOTA_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('gmfuse.quota.' || $1, 0))";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_itself_is_allowed_and_one_more_is_not() {
        assert!(QuotaExceeded::check(QuotaKind::ActiveJobs, 3, 3).is_ok());
        let e = QuotaExceeded::check(QuotaKind::ActiveJobs, 4, 3).unwrap_err();
        assert_eq!(e.would_be, 4);
        assert!(e.to_string().contains("3 queued or running jobs"), "{e}");
        let e = QuotaExceeded::check(QuotaKind::StoredBytes, 1001, 1000).unwrap_err();
        assert!(e.to_string().contains("bring it to 1001"), "{e}");
    }
}
