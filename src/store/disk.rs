//! Disk space: whether an I/O error means the disk is full (ENOSPC — the API answers 507
//! `insufficient_storage` then), and the free space of the data directory, which `/readyz`
//! compares with `GMFUSE_MIN_FREE_BYTES`.

use std::io;
use std::path::Path;

/// `ENOSPC` on Linux and the BSDs.
const ENOSPC: i32 = 28;

/// True when `e` says the storage is full.
pub fn is_storage_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.raw_os_error() == Some(ENOSPC)
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<io::Error>())
            .is_some_and(is_storage_full)
}

/// Bytes an unprivileged process can still write on the file system of `dir` (`statvfs`:
/// available blocks × fragment size).
///
/// # Errors
/// When `dir` cannot be examined.
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_in_every_form_is_storage_full_and_other_errors_are_not() {
        assert!(is_storage_full(&io::Error::from_raw_os_error(28)));
        assert!(is_storage_full(&io::Error::from(
            io::ErrorKind::StorageFull
        )));
        assert!(is_storage_full(&io::Error::other(
            io::Error::from_raw_os_error(28)
        )));
        assert!(!is_storage_full(&io::Error::from_raw_os_error(13)));
        assert!(!is_storage_full(&io::Error::from(io::ErrorKind::NotFound)));
    }

    #[test]
    fn the_free_space_of_a_temp_dir_is_some_and_at_most_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let st = rustix::fs::statvfs(dir.path()).unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        assert!(free <= st.f_blocks * st.f_frsize);
    }
}
