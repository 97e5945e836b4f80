//! A full disk (issue 7, part 6): an upload that the disk cannot hold answers 507
//! problem+json `insufficient_storage` and leaves no temp file, and `/readyz` says not ready
//! while the data directory's free space is under `GMFUSE_MIN_FREE_BYTES`. The full disk is a
//! 2 MiB tmpfs, which needs root (CI runs as root); elsewhere that test prints SKIPPED.

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;

use crate::backend::Backend;
use crate::helpers::{assert_problem, files_under, spawn_app_with};

#[tokio::test]
async fn readyz_is_503_while_the_free_space_is_under_the_threshold() {
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.workers = 0;
        c.min_free_bytes = u64::MAX;
    })
    .await;
    let body = assert_problem(app.get("/readyz").await, 503, "not_ready").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("bytes free, under GMFUSE_MIN_FREE_BYTES"),
        "{body}"
    );
    app.stop().await;
    let app = spawn_app_with(&Backend::Sqlite, |c| c.workers = 0).await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    app.stop().await;
}

/// Mount a tmpfs of `size` on `dir`; false when this process may not.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn an_upload_the_disk_cannot_hold_is_507_and_leaves_no_temp_file() {
    let mount = tempfile::tempdir().unwrap();
    if !mount_tmpfs(mount.path(), "2m") {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root)");
        return;
    }
    let data = mount.path().to_path_buf();
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.workers = 0;
        c.data_dir = data.clone();
    })
    .await;
    // 3 MiB: more than the whole file system.
    let res = app.upload_model(vec![0u8; 3 << 20], "name=big").await;
    let body = assert_problem(res, 507, "insufficient_storage").await;
    assert!(
        body["detail"].as_str().unwrap().contains("disk is full"),
        "{body}"
    );
    assert_eq!(
        files_under(&data.join("tmp")),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(files_under(&data.join("blobs")).len(), 0);
    // 2 MiB is under the default GMFUSE_MIN_FREE_BYTES (100 MiB): not ready.
    assert_problem(app.get("/readyz").await, 503, "not_ready").await;
    // The server is alive, and a small upload still fits.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let ok = app
        .upload_model(crate::fixtures::tiny_mlp_model(1), "name=small")
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    app.stop().await;
    let _ = Command::new("umount").arg(&data).status();
}
