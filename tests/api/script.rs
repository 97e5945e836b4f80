//! The README's curl walkthrough: `scripts/walkthrough.sh` runs against a live server, and every
//! command line of the README's block is a line of that script.

use serde_json::Value;

use crate::backend::Backend;
use crate::fixtures::require_models;
use crate::helpers::{curve, spawn_app};

const README: &str = include_str!("../../README.md");
const SCRIPT: &str = include_str!("../../scripts/walkthrough.sh");

/// The lines of the first ```sh block under `## API walkthrough`.
fn readme_walkthrough() -> Vec<&'static str> {
    let section = README
        .split("\n## API walkthrough")
        .nth(1)
        .expect("README has an `## API walkthrough` section");
    let block = section.split("```sh\n").nth(1).expect("a ```sh block");
    block.split("\n```").next().unwrap().lines().collect()
}

#[test]
fn every_readme_walkthrough_command_is_in_the_script() {
    let lines = readme_walkthrough();
    let commands: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    for line in commands {
        assert!(
            SCRIPT.lines().any(|s| s == line),
            "README line not in scripts/walkthrough.sh: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_script_runs_against_a_live_server() {
    let models = require_models!();
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED walkthrough script: curl is not installed");
        return;
    }
    let app = spawn_app(&Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (
        work.path().join("a.safetensors"),
        work.path().join("b.safetensors"),
    );
    std::fs::write(&a, &models.a).unwrap();
    std::fs::write(&b, &models.b).unwrap();
    let out = work.path().join("out");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/walkthrough.sh");
    let result = tokio::process::Command::new("bash")
        .arg(script)
        .arg(&a)
        .arg(&b)
        .env("GMFUSE_URL", &app.base)
        .env("OUT", &out)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(stdout.contains(": succeeded"), "{stdout}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(curve(&report, "gamf").as_array().unwrap().len(), 11);
    for svg in ["report.svg", "matching.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{svg}: {e}"));
    }
    let fused = std::fs::read(out.join("fused-0.5.safetensors")).unwrap();
    let w = gmfuse::engine::weights::WeightSet::from_bytes(&fused).unwrap();
    assert_eq!(w.metadata["gmfuse.proportion"], "0.5");
    app.stop().await;
}
