//! Upload slots: at most `GMFUSE_MAX_CONCURRENT_UPLOADS` model or dataset uploads are received
//! by one process at once; one more is answered 503 `uploads_busy` with `Retry-After` before its
//! body is read, so uploads cannot pile up staging files and validation work.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Seconds a refused upload is told to wait.
const RETRY_AFTER_SECS: u32 = 2;

/// The upload slots of one process.
#[derive(Clone, Debug)]
pub struct UploadSlots {
    slots: Arc<Semaphore>,
    max: usize,
}

impl UploadSlots {
    /// `max` slots (at least one).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        UploadSlots {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A slot, held until the returned permit is dropped.
    ///
    /// # Errors
    /// [`ApiError::Busy`] (`uploads_busy`) when every slot is taken.
    pub fn acquire(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy {
                code: "uploads_busy",
                detail: format!(
                    "{} uploads are in progress, the most this server receives at once; retry \
                     in {RETRY_AFTER_SECS} s",
                    self.max
                ),
                retry_after: RETRY_AFTER_SECS,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_after_the_last_is_refused_until_one_is_released() {
        let slots = UploadSlots::new(2);
        let a = slots.acquire().unwrap();
        let _b = slots.acquire().unwrap();
        let err = slots.acquire().unwrap_err();
        assert_eq!(err.status_and_code().1, "uploads_busy");
        drop(a);
        assert!(slots.acquire().is_ok());
    }
}
