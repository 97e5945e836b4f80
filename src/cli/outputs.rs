//! `gmfuse fuse` checks that it can write its outputs (`--report FILE`, `--out DIR`) before it
//! computes anything, so a typo costs a second instead of the whole run. Each check writes and
//! removes a small probe file where the output will go; nothing else is created.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Check `--report` and `--out`.
///
/// # Errors
/// A one-line message naming the flag, the path and what is wrong.
pub fn check_writable(report: Option<&Path>, out: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = report {
        check_file(path).with_context(|| format!("--report {}", path.display()))?;
    }
    if let Some(out) = out {
        let checked = match super::fused_out::out_format(out) {
            Some(_) => check_file(out),
            None => check_dir(out),
        };
        checked.with_context(|| format!("--out {}", out.display()))?;
    }
    Ok(())
}

/// A file to be written: not a directory, in an existing, writable directory.
fn check_file(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("is a directory; give a file name");
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!("the directory {} does not exist", parent.display());
    }
    if path.exists() {
        OpenOptions::new()
            .append(true)
            .open(path)
            .context("cannot be overwritten")?;
    }
    probe(&parent)
}

/// A directory to be created if needed: an existing directory, or a path whose nearest
/// existing ancestor is a writable directory.
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    let mut at = dir;
    loop {
        if at.exists() {
            if !at.is_dir() {
                bail!("{} is not a directory", at.display());
            }
            return probe(at);
        }
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => return probe(Path::new(".")),
        }
    }
}

/// Create and remove a probe file in `dir`.
fn probe(dir: &Path) -> anyhow::Result<()> {
    let name = format!(".gmfuse-probe-{}", std::process::id());
    let path = dir.join(name);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_writable;

    #[test]
    fn existing_places_pass_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        let out = dir.path().join("new/fused");
        check_writable(Some(&report), Some(&out)).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_directory_a_directory_as_report_and_a_file_as_out_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope/report.json");
        let e = check_writable(Some(&missing), None).unwrap_err();
        assert!(format!("{e:#}").contains("does not exist"), "{e:#}");
        let e = check_writable(Some(dir.path()), None).unwrap_err();
        assert!(format!("{e:#}").contains("is a directory"), "{e:#}");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = check_writable(None, Some(&file.join("sub"))).unwrap_err();
        assert!(format!("{e:#}").contains("is not a directory"), "{e:#}");
    }
}
