//! The methods beyond the example on real models: weight matching and activation matching on
//! the seed models, weight matching against averaging on the demo MLP pair, and the CLI's
//! calibration guard.

use super::*;

/// DESIGN.md ("Methods beyond the example"): a numpy reference of Git Re-Basin weight matching
/// on the seed models, identity start, groups in layer order, reaches 89.22 % at α = 0.5.
#[test]
fn weight_matching_lifts_the_seed_models_midpoint_to_at_least_88_percent() {
    let Some([a, b]) = seed_models() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let stdout = gmfuse_ok(
        gmfuse()
            .args(["fuse", "--method", "weight_matching", "--report"])
            .arg(&report_path)
            .arg(&a)
            .arg(&b),
    );
    println!("{stdout}");
    assert!(stdout.contains("Weight Matching Fusion\n") && stdout.contains("No Matching Fusion\n"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let wm = &report["curves"][0];
    assert_eq!(wm["method"], "weight_matching");
    let mid = &wm["points"][5];
    assert_eq!(mid["proportion"].as_f64().unwrap(), 0.5);
    let acc = mid["accuracy"].as_f64().unwrap();
    assert!(acc >= 88.0, "weight matching midpoint {acc} % < 88 %");
    // Both inputs are beaten at the midpoint, and the sweeps' objective never went down.
    assert!(acc > report["inputs"][0]["accuracy"].as_f64().unwrap());
    let m = &report["matchings"][0];
    assert_eq!(m["method"], "weight_matching");
    let j: Vec<f64> = m["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        j.windows(2).all(|w| w[1] >= w[0]),
        "objective per sweep {j:?}"
    );
    assert!(report["timings"]["align_weight_matching"].as_f64().unwrap() > 0.0);
}

/// Activation matching on the seed models, calibrated on the vendored MNIST training slice
/// (`mnist-train-5k`, never the scored test set): measured 92.23 % at α = 0.5 (README), above
/// weight matching's 89.22 % and both inputs.
#[test]
fn activation_matching_lifts_the_seed_models_midpoint_above_91_percent() {
    let Some([a, b]) = seed_models() else { return };
    let (a, b) = (load_model(&a).unwrap(), load_model(&b).unwrap());
    let params = FusionParams {
        proportions: vec![0.5],
        ..FusionParams::with_methods(&[MethodId::ActivationMatching])
    };
    let calibration = gmfuse::builtin::mnist_train_5k();
    let r = pipeline::run_calibrated(
        &preset("mnist-cnn").unwrap(),
        [&a, &b],
        &gmfuse::builtin::mnist_test(),
        Some(&calibration),
        &params,
        &Quiet,
    )
    .unwrap();
    let mid = r.curve(MethodId::ActivationMatching).unwrap()[0].accuracy;
    println!("activation matching midpoint {mid:.2} %");
    assert!(mid >= 91.0, "activation matching midpoint {mid} % < 91 %");
    assert!(mid > r.inputs[0].accuracy && mid > r.inputs[1].accuracy);
    // The mean correlation of matched units (0.7314 measured).
    let m = r.matching(MethodId::ActivationMatching).unwrap();
    assert!(m.objective > 0.5 && m.objective <= 1.0, "{}", m.objective);
}

/// `gmfuse fuse --calibration` is refused when it names the scored dataset, before any compute.
#[test]
fn the_cli_refuses_to_calibrate_on_the_scored_dataset() {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    let out = gmfuse()
        .args(["fuse", "--method", "activation_matching"])
        .args([
            "--dataset",
            "mnist-train-5k",
            "--calibration",
            "mnist-train-5k",
        ])
        .arg(demo.join("model-a.safetensors"))
        .arg(demo.join("model-b.safetensors"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is the scored dataset"), "{stderr}");
}

/// The committed demo MLP pair (`assets/demo-mlp`, 784-128-128-10 with biases, opposite digit
/// splits; see its README) on the full mnist-test: weight matching lifts the midpoint at least
/// 10 points above plain averaging (issue 8; DESIGN.md's pair: 75.6 % → 91.6 %). GAMF's figure
/// is printed, not asserted: on this pair it may be below averaging.
#[test]
fn weight_matching_beats_averaging_by_ten_points_on_the_demo_mlp_pair() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo-mlp");
    let a = load_model(&dir.join("model-a.safetensors")).unwrap();
    let b = load_model(&dir.join("model-b.safetensors")).unwrap();
    let shapes = a
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.data.shape().to_vec()))
        .collect();
    let spec = gmfuse::engine::arch::preset_for("mlp", &shapes).unwrap();
    let params = FusionParams {
        proportions: vec![0.5],
        ..FusionParams::with_methods(&[MethodId::WeightMatching, MethodId::Gamf])
    };
    let r = pipeline::run(
        &spec,
        [&a, &b],
        &gmfuse::builtin::mnist_test(),
        &params,
        &Quiet,
    )
    .unwrap();
    let mid = |m: MethodId| r.curve(m).unwrap()[0].accuracy;
    let (none, wm, gamf) = (
        mid(MethodId::None),
        mid(MethodId::WeightMatching),
        mid(MethodId::Gamf),
    );
    println!("midpoints: none {none:.2} %, weight_matching {wm:.2} %, gamf {gamf:.2} %");
    assert!(
        wm >= none + 10.0,
        "weight matching {wm} % < averaging {none} % + 10"
    );
}
