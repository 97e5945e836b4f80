//! Mutual exclusion on blob references: a [`BlobLock`] held around every "check, then change"
//! sequence on a blob and the rows that name it (commit a blob and insert its model row; check
//! that no row names a blob, then delete it; check that a job's inputs exist, then queue it), so
//! that a 201 always means the blob is there and a queued job always finds its inputs.
//!
//! SQLite takes in-process [`StripedLocks`] (one process owns a SQLite file); PostgreSQL takes
//! session advisory locks, which every process sharing the database sees.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// Held while blob references change; released on drop.
pub struct BlobLock {
    _held: Box<dyn Send>,
}

impl BlobLock {
    /// A lock whose release is dropping `held`.
    pub fn new(held: impl Send + 'static) -> Self {
        BlobLock {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for BlobLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobLock")
    }
}

/// The first 16 hex digits of a sha256 as a number: the key of its lock. Not a hash (any
/// name works; two names with one key only wait for each other).
pub fn lock_key(sha256: &str) -> i64 {
    let head: String = sha256.chars().take(16).collect();
    u64::from_str_radix(&head, 16).map_or_else(
        |_| {
            sha256
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
                .cast_signed()
        },
        u64::cast_signed,
    )
}

/// The distinct keys of `sha256s`, in increasing order (every holder locks in this order, so
/// two holders of several keys cannot deadlock).
pub fn lock_keys(sha256s: &[&str]) -> Vec<i64> {
    let mut keys: Vec<i64> = sha256s.iter().map(|s| lock_key(s)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A fixed set of in-process mutexes; a key takes the one of its stripe.
#[derive(Debug)]
pub struct StripedLocks {
    stripes: Vec<Arc<Mutex<()>>>,
}

impl Default for StripedLocks {
    fn default() -> Self {
        StripedLocks {
            stripes: (0..64).map(|_| Arc::new(Mutex::new(()))).collect(),
        }
    }
}

impl StripedLocks {
    /// Lock the stripes of `sha256s` (in stripe order).
    pub async fn lock(&self, sha256s: &[&str]) -> BlobLock {
        let n = self.stripes.len() as u64;
        let mut idx: Vec<usize> = lock_keys(sha256s)
            .into_iter()
            .map(|k| usize::try_from(k.cast_unsigned() % n).unwrap_or(0))
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards: Vec<OwnedMutexGuard<()>> = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].clone().lock_owned().await);
        }
        BlobLock::new(guards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_distinct() {
        let a = "00000000000000ff".to_string() + &"0".repeat(48);
        let b = "0000000000000001".to_string() + &"0".repeat(48);
        assert_eq!(lock_keys(&[&a, &b, &a]), vec![1, 255]);
    }

    #[tokio::test]
    async fn a_second_holder_waits_for_the_first() {
        let locks = Arc::new(StripedLocks::default());
        let sha = "ab".repeat(32);
        let first = locks.lock(&[&sha]).await;
        let l = locks.clone();
        let s = sha.clone();
        let second = tokio::spawn(async move { l.lock(&[&s]).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!second.is_finished());
        drop(first);
        second.await.unwrap();
    }
}
