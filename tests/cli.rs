//! The `gmfuse` binary itself: `fuse` refuses unwritable outputs before computing anything,
//! and no `--help` shows a path of the machine the binary was built on.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gmfuse");

fn demo(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo")
        .join(name)
        .display()
        .to_string()
}

fn fuse(extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("fuse")
        .args(extra)
        .args([demo("model-a.safetensors"), demo("model-b.safetensors")])
        .output()
        .expect("running gmfuse")
}

/// Exit 1, one line on stderr naming `needle`, nothing computed (no table on stdout, no stage
/// started on stderr).
fn assert_refused_early(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(stderr.starts_with("gmfuse: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle} not in: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "computed anyway: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn fuse_refuses_a_report_in_a_missing_directory_before_computing() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("missing/report.json");
    let out = fuse(&["--report", report.to_str().unwrap()]);
    assert_refused_early(&out, "does not exist");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--report"));
}

#[test]
fn fuse_refuses_an_out_directory_that_is_a_file_and_a_report_that_is_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = fuse(&["--out", file.to_str().unwrap()]);
    assert_refused_early(&out, "is not a directory");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));

    let out = fuse(&["--report", dir.path().to_str().unwrap()]);
    assert_refused_early(&out, "is a directory");
    // Nothing was left where the outputs would have gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn fuse_writes_plain_stage_lines_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = fuse(&[
        "--method",
        "weight_matching",
        "--alphas",
        "0.5",
        "--eval-limit",
        "200",
        "--report",
        report.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // A pipe gets lines, never the bar's carriage returns or escape codes.
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    for stage in [
        "validate",
        "align_weight_matching",
        "evaluate_weight_matching",
    ] {
        assert!(
            stderr.contains(&format!("gmfuse: {stage} …")),
            "{stage}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("gmfuse: {stage} done in ")),
            "{stage}: {stderr}"
        );
    }
    assert!(report.is_file());
}

#[test]
fn no_help_shows_a_path_of_the_build_machine() {
    let manifest = env!("CARGO_MANIFEST_DIR");
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["worker", "--help"],
        &["fuse", "--help"],
        &["bench", "--help"],
        &["keys", "--help"],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .output()
            .expect("running gmfuse");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(
            !text.contains(manifest),
            "{args:?} shows {manifest}:\n{text}"
        );
    }
}

#[test]
fn fuse_takes_the_api_spelling_of_every_repair_mode() {
    // `--repair` is parsed before the output check, so an early refusal (exit 1, not clap's
    // usage error 2) shows the value was accepted; the API's strings are `reset_bn`, `repair`.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("missing/report.json");
    for mode in ["none", "reset_bn", "repair"] {
        let out = fuse(&["--repair", mode, "--report", report.to_str().unwrap()]);
        assert_refused_early(&out, "does not exist");
    }
    let out = fuse(&["--repair", "reset-bn"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "only the API's spelling is taken"
    );
}
