//! End-to-end checks of the fusion engine on real models.
//!
//! The pygmtools example's two models are not ours to ship: tests that need them read
//! `$GMFUSE_SEED_MODELS` or `../shared/data/seed-models` and print `SKIPPED` when absent —
//! or fail, when `GMFUSE_REQUIRE_SEED=1` (CI sets it).
//! Other tests run on the seed models when present, else on the project's demo models.

use std::path::PathBuf;
use std::process::Command;

use gmfuse::cli::inputs::{demo_models, seed_models_dir};

/// A model file's weights (`cli::inputs::load_model` also reads ONNX; these tests use safetensors).
fn load_model(path: &std::path::Path) -> anyhow::Result<gmfuse::engine::weights::WeightSet> {
    Ok(gmfuse::cli::inputs::load_model(path)?.weights)
}
use gmfuse::engine::arch::preset;
use gmfuse::engine::eval::Dataset;
use gmfuse::engine::forward::Network;
use gmfuse::engine::fusion::{interpolate, permute};
use gmfuse::engine::pipeline::{
    self, FusionParams, LayerPermutation, MethodId, Quiet, fused_weights,
};
use gmfuse::engine::solvers::SolverId;
use gmfuse::engine::weights::WeightSet;
use proptest::prelude::*;

/// The example's printed tables (reference/seed_plot_model_fusion_jittor.rst, lines ~700–745;
/// also DESIGN.md), α = 0.0, 0.1, …, 1.0 of model 2.
const EXAMPLE_GAMF: [&str; 11] = [
    "84.18", "85.12", "85.21", "82.52", "71.11", "53.74", "63.26", "78.51", "82.81", "83.97",
    "83.81",
];
const EXAMPLE_NONE: [&str; 11] = [
    "84.18", "84.01", "81.91", "74.67", "60.39", "47.16", "55.34", "72.86", "79.64", "82.56",
    "83.81",
];

fn seed_models() -> Option<[PathBuf; 2]> {
    match seed_models_dir() {
        Some(d) => Some([d.join("model1.safetensors"), d.join("model2.safetensors")]),
        None => {
            let why = "the pygmtools example's seed models are not present \
                       (set GMFUSE_SEED_MODELS or provide ../shared/data/seed-models)";
            assert!(
                std::env::var_os("GMFUSE_REQUIRE_SEED").is_none_or(|v| v != "1"),
                "GMFUSE_REQUIRE_SEED=1: {why}"
            );
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// The seed models when present, else the project's demo models.
fn any_models() -> [WeightSet; 2] {
    let [a, b] = seed_models().unwrap_or_else(demo_models);
    [load_model(&a).unwrap(), load_model(&b).unwrap()]
}

#[test]
fn compat_mode_prints_the_pygmtools_example_tables_exactly() {
    let Some([a, b]) = seed_models() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_gmfuse"))
        .args(["fuse", "--compat", "pygmtools-example"])
        .args(["--alphas", "0:1:0.1", "--report"])
        .arg(&report_path)
        .arg("--out")
        .arg(dir.path().join("fused"))
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("model1 accuracy = 84.18%, model2 accuracy = 83.81%\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Graph Matching Fusion\n") && stdout.contains("No Matching Fusion\n"));
    assert!(stdout.contains("0.50 model1 + 0.50 model2 -> fused model accuracy: 53.74%"));
    // Each table line reads "1-α model1 + α model2 -> …: ACC%": keep only the accuracies.
    let acc: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains("-> fused model accuracy:"))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .unwrap()
                .trim_end_matches('%')
                .to_owned()
        })
        .collect();
    let want: Vec<&str> = EXAMPLE_GAMF.iter().chain(&EXAMPLE_NONE).copied().collect();
    assert_eq!(acc, want);

    // The JSON report carries the same figures, the timings and the applied permutations.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["inputs"][1]["accuracy"].as_f64().unwrap(), 83.81);
    assert_eq!(report["alphas"].as_array().unwrap().len(), 11);
    let curves = report["curves"].as_array().unwrap();
    assert_eq!(
        (curves[0]["method"].as_str(), curves[1]["method"].as_str()),
        (Some("gamf"), Some("none"))
    );
    assert_eq!(curves[0]["points"][5]["accuracy"].as_f64().unwrap(), 53.74);
    assert_eq!(curves[1]["points"][5]["accuracy"].as_f64().unwrap(), 47.16);
    assert!(report["timings"]["affinity"].as_f64().unwrap() > 0.0);
    assert_eq!(report["matchings"][0]["method"], "gamf");
    let perms = report["matchings"][0]["permutations"].as_array().unwrap();
    assert_eq!(perms.len(), 3);
    assert_eq!(perms[1]["layer"], "conv2.weight");
    assert_eq!(perms[1]["perm"].as_array().unwrap().len(), 64);
    // Fused weights for every α; α = 1 is model 2 itself, byte for byte in its tensors.
    let fused = std::fs::read_dir(dir.path().join("fused")).unwrap().count();
    assert_eq!(fused, 11);
    let one = load_model(&dir.path().join("fused/fused-1.00.safetensors")).unwrap();
    assert_eq!(one.tensors, load_model(&b).unwrap().tensors);
    assert_eq!(one.metadata["method"], "gamf");
}

#[test]
fn default_mode_beats_averaging_everywhere_inside_and_fixes_the_midpoint() {
    let Some([a, b]) = seed_models() else { return };
    let (m1, m2) = (load_model(&a).unwrap(), load_model(&b).unwrap());
    let spec = preset("mnist-cnn").unwrap();
    let data = gmfuse::builtin::mnist_test();
    let r = pipeline::run(&spec, [&m1, &m2], &data, &FusionParams::default(), &Quiet).unwrap();
    let gamf = r.curve(MethodId::Gamf).unwrap();
    for (g, n) in gamf
        .iter()
        .zip(r.curve(MethodId::None).unwrap())
        .take(10)
        .skip(1)
    {
        assert!(
            g.accuracy > n.accuracy,
            "α={}: gamf {} <= none {}",
            g.proportion,
            g.accuracy,
            n.accuracy
        );
    }
    // The example's compat-mode midpoint is 53.74 %; the fixed convention must add 15 points.
    assert!(
        gamf[5].accuracy >= 53.74 + 15.0,
        "midpoint {}",
        gamf[5].accuracy
    );
    assert_eq!(format!("{:.2}", r.inputs[0].accuracy), "84.18");
    let m = r.matching(MethodId::Gamf).unwrap();
    assert_eq!(m.group_sizes, [1, 32, 64, 32, 10]);
    assert_eq!(m.iterations, 50);
    assert_eq!(m.solver, Some(SolverId::Sm));
    // The equivalence check: aligned model 1 computes what model 1 does (f32 rounding only).
    let delta = m.max_abs_logit_delta.unwrap();
    assert!(delta <= 1e-4, "max |Δlogit| {delta}");
}

/// The three QAP solvers and weight matching in one job on the seed models: every solver's
/// discrete objective `vec(P)ᵀ K vec(P)` beats a random assignment's, and the midpoints are
/// those measured with `gmfuse fuse --method gamf,weight_matching --solver sm,rrwm,ipfp`
/// (README "QAP solvers").
#[test]
fn rrwm_and_ipfp_beat_random_assignments_on_the_seed_models_in_one_report() {
    use gmfuse::engine::affinity::{Affinity, Direction};
    use gmfuse::engine::solvers::Groups;
    use gmfuse::engine::solvers::groups::quadratic;
    let Some([a, b]) = seed_models() else { return };
    let (m1, m2) = (load_model(&a).unwrap(), load_model(&b).unwrap());
    let spec = preset("mnist-cnn").unwrap();
    let data = gmfuse::builtin::mnist_test();
    let params = FusionParams {
        solvers: SolverId::ALL.to_vec(),
        proportions: vec![0.5],
        ..FusionParams::with_methods(&[MethodId::Gamf, MethodId::WeightMatching])
    };
    let r = pipeline::run(&spec, [&m1, &m2], &data, &params, &Quiet).unwrap();
    let keys: Vec<(MethodId, Option<SolverId>)> =
        r.curves.iter().map(|c| (c.method, c.solver)).collect();
    use SolverId::{Ipfp, Rrwm, Sm};
    assert_eq!(
        keys,
        [
            (MethodId::Gamf, Some(Sm)),
            (MethodId::Gamf, Some(Rrwm)),
            (MethodId::Gamf, Some(Ipfp)),
            (MethodId::WeightMatching, None),
            (MethodId::None, None),
        ]
    );
    let mid: Vec<String> = r
        .curves
        .iter()
        .map(|c| format!("{:.2}", c.points[0].accuracy))
        .collect();
    assert_eq!(mid, ["79.47", "90.43", "91.74", "89.22", "47.16"]);

    // A random assignment's discrete objective on the same affinity.
    let s = spec.validate(&m1).unwrap();
    let k = Affinity::build(&s, [&m1, &m2], Direction::Symmetric).unwrap();
    let groups = Groups::new(k.group_sizes());
    let random: Vec<Vec<usize>> = s
        .hidden
        .iter()
        .enumerate()
        .map(|(i, g)| shuffle(g.size, 99 + i as u64))
        .collect();
    let floor = quadratic(&k, &groups.indicator(&random, false));
    for m in r.matchings.iter().filter(|m| m.method == MethodId::Gamf) {
        let perms: Vec<Vec<usize>> = m.permutations.iter().map(|p| p.perm.clone()).collect();
        let obj = quadratic(&k, &groups.indicator(&perms, false));
        approx::assert_relative_eq!(m.objective, obj, max_relative = 1e-12);
        assert!(obj > floor, "{:?}: {obj} <= random {floor}", m.solver);
        assert!(m.iterations >= 1 && m.seconds > 0.0);
        assert!(m.max_abs_logit_delta.unwrap() <= 1e-4);
        println!(
            "{:?}: discrete objective {obj:.1} (random {floor:.1}), {} iterations, {:.3} s",
            m.solver, m.iterations, m.seconds
        );
    }
}

#[test]
fn compat_mode_accepts_only_spectral_matching() {
    let Some([a, b]) = seed_models() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_gmfuse"))
        .args(["fuse", "--compat", "pygmtools-example", "--solver", "rrwm"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("solver `rrwm` is not available"), "{err}");
}

/// DESIGN.md ("Methods beyond the example"): a numpy reference of Git Re-Basin weight matching
/// on the seed models, identity start, groups in layer order, reaches 89.22 % at α = 0.5.
#[test]
fn weight_matching_lifts_the_seed_models_midpoint_to_at_least_88_percent() {
    let Some([a, b]) = seed_models() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_gmfuse"))
        .args(["fuse", "--method", "weight_matching", "--report"])
        .arg(&report_path)
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
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
    let out = Command::new(env!("CARGO_BIN_EXE_gmfuse"))
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

/// A deterministic shuffle of 0..n (LCG), different for each `seed`.
fn shuffle(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        p.swap(i, (s >> 33) as usize % (i + 1));
    }
    p
}

/// `m` fused with a randomly channel-permuted copy of itself by every method: each aligning
/// method finds the permutation exactly, and every fused model scores as the original.
fn self_recovery(spec: &gmfuse::engine::arch::ArchSpec, m: &WeightSet, data: &Dataset) {
    let s = spec.validate(m).unwrap();
    let perms: Vec<Vec<usize>> = s
        .hidden
        .iter()
        .enumerate()
        .map(|(k, g)| shuffle(g.size, k as u64 + 1))
        .collect();
    let copy = permute(&s, m, &perms).unwrap();
    let aligning: Vec<MethodId> = MethodId::ALL
        .iter()
        .copied()
        .filter(|m| m.aligns())
        .collect();
    let params = FusionParams {
        solvers: SolverId::ALL.to_vec(),
        ..FusionParams::with_methods(&aligning)
    };
    // Activation matching's calibration samples: training images, never the scored ones.
    let calibration = gmfuse::builtin::mnist_train_5k().head(1000);
    let r = pipeline::run_calibrated(spec, [m, &copy], data, Some(&calibration), &params, &Quiet)
        .unwrap();
    let original = r.inputs[0].accuracy;
    assert_eq!(r.inputs[1].accuracy, original);
    // One matching and one curve per method, and per solver for GAMF.
    assert_eq!(r.matchings.len(), aligning.len() + SolverId::ALL.len() - 1);
    for (m, curve) in r.matchings.iter().zip(&r.curves) {
        let (method, solver) = (m.method, m.solver);
        assert_eq!((curve.method, curve.solver), (method, solver));
        let found: Vec<Vec<usize>> = m.permutations.iter().map(|p| p.perm.clone()).collect();
        assert_eq!(found, perms, "{method} ({solver:?}) on {}", spec.name);
        assert!(m.max_abs_logit_delta.unwrap() <= 1e-4, "{m:?}");
        for p in &curve.points {
            assert_eq!(
                p.accuracy, original,
                "{method} ({solver:?}) on {}, α = {}",
                spec.name, p.proportion
            );
        }
    }
}

#[test]
fn every_method_recovers_a_channel_permuted_copy_of_a_mnist_cnn_exactly() {
    let [m, _] = any_models();
    let data = gmfuse::builtin::mnist_test().head(2000);
    self_recovery(&preset("mnist-cnn").unwrap(), &m, &data);
}

/// A random `784 → 8 → 6 → 10` MLP named like PyTorch's `nn.Sequential` (`layers.0`, `layers.2`,
/// `layers.4`, biases on the first two), small enough for GAMF's affinity (its input block has
/// (784·8)² entries).
fn random_mlp() -> WeightSet {
    let mut state = 42u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut w = WeightSet::default();
    for (name, shape) in [
        ("layers.0.weight", vec![8, 784]),
        ("layers.0.bias", vec![8]),
        ("layers.2.weight", vec![6, 8]),
        ("layers.2.bias", vec![6]),
        ("layers.4.weight", vec![10, 6]),
    ] {
        let data = ndarray::ArrayD::from_shape_simple_fn(shape, || f64::from(next() as f32));
        w.tensors.insert(
            name.to_string(),
            gmfuse::engine::weights::Tensor {
                dtype: gmfuse::engine::weights::DType::F32,
                data,
            },
        );
    }
    w
}

#[test]
fn every_method_recovers_a_channel_permuted_copy_of_an_mlp_preset_model_exactly() {
    let m = random_mlp();
    let shapes = m
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.data.shape().to_vec()))
        .collect();
    let spec = gmfuse::engine::arch::preset_for("mlp", &shapes).unwrap();
    assert_eq!(spec.input, [1, 28, 28]);
    let data = gmfuse::builtin::mnist_test().head(500);
    self_recovery(&spec, &m, &data);
}

#[test]
fn identity_permutations_fuse_to_plain_averaging() {
    let [a, b] = any_models();
    let spec = preset("mnist-cnn").unwrap();
    let s = spec.validate(&a).unwrap();
    let identity: Vec<LayerPermutation> = s
        .hidden
        .iter()
        .map(|g| LayerPermutation {
            layer: s.layers[g.producer].weight.clone(),
            perm: (0..g.size).collect(),
        })
        .collect();
    for alpha in [0.0, 0.3, 0.5, 1.0] {
        let fused = fused_weights(&spec, [&a, &b], Some(&identity), alpha).unwrap();
        assert_eq!(fused, interpolate(&a, &b, alpha).unwrap());
        assert_eq!(fused, fused_weights(&spec, [&a, &b], None, alpha).unwrap());
    }
    let mid = fused_weights(&spec, [&a, &b], Some(&identity), 0.5).unwrap();
    let want = (&a.tensors["fc1.weight"].data + &b.tensors["fc1.weight"].data) * 0.5;
    assert_eq!(mid.tensors["fc1.weight"].data, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    /// DESIGN.md invariant: permuting hidden channels leaves the logits equal (≤ 1e-4 in f32).
    #[test]
    fn permuting_hidden_channels_leaves_logits_unchanged(seed in 0u64..1_000_000) {
        let [m, _] = any_models();
        let spec = preset("mnist-cnn").unwrap();
        let s = spec.validate(&m).unwrap();
        let perms: Vec<Vec<usize>> =
            s.hidden.iter().enumerate().map(|(k, g)| shuffle(g.size, seed * 3 + k as u64)).collect();
        let p = permute(&s, &m, &perms).unwrap();
        let images = gmfuse::builtin::mnist_test().head(64).images;
        let before = Network::new(&spec, &m).unwrap().logits(images.view());
        let after = Network::new(&spec, &p).unwrap().logits(images.view());
        let diff = (&before - &after).iter().fold(0.0f32, |d, x| d.max(x.abs()));
        prop_assert!(diff <= 1e-4, "max |Δlogit| = {diff}");
    }
}

#[test]
fn compat_matching_equals_the_numpy_reference_golden_file() {
    use gmfuse::engine::matching::{Convention, match_models};
    use gmfuse::engine::solvers::SmParams;
    let Some([a, b]) = seed_models() else { return };
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("golden/seed-compat-matching.json")).unwrap();
    let (m1, m2) = (load_model(&a).unwrap(), load_model(&b).unwrap());
    let s = preset("mnist-cnn").unwrap().validate(&m1).unwrap();
    let m = match_models(
        &s,
        [&m1, &m2],
        Convention::PygmtoolsExample,
        SmParams::default(),
        &|| false,
    )
    .unwrap();
    let want: Vec<Vec<usize>> = serde_json::from_value(golden["permutations"].clone()).unwrap();
    assert_eq!(m.perms, want);
    assert_eq!(m.affinity_nnz as u64, golden["nnz"].as_u64().unwrap());
    assert_eq!(m.iterations as u64, golden["iterations"].as_u64().unwrap());
    approx::assert_relative_eq!(
        m.objective,
        golden["objective"].as_f64().unwrap(),
        max_relative = 1e-12
    );
}

/// `gmfuse fuse` with three models (the demo pair and a channel-reversed copy of model 2)
/// prints every input and each method's weighted average, and writes the fused average.
#[test]
fn the_cli_fuses_three_models_into_their_weighted_average() {
    let [a, b] = demo_models();
    let m2 = load_model(&b).unwrap();
    let spec = preset("mnist-cnn").unwrap();
    let s = spec.validate(&m2).unwrap();
    let reversed: Vec<Vec<usize>> = s
        .hidden
        .iter()
        .map(|g| (0..g.size).rev().collect())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("b-reversed.safetensors");
    std::fs::write(&c, permute(&s, &m2, &reversed).unwrap().to_bytes().unwrap()).unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_gmfuse"))
        .args(["fuse", "--method", "weight_matching", "--eval-limit", "500"])
        .args(["--weights", "2,1,1", "--out"])
        .arg(&out_dir)
        .args([&a, &b, &c])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
    let line = |prefix: &str| -> f64 {
        let l = stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in {stdout}"));
        l.rsplit(' ')
            .next()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap()
    };
    assert_eq!(line("model2 accuracy"), line("model3 accuracy"));
    let wm = line("Weight Matching Fusion: weighted average of 3 models");
    let none = line("No Matching Fusion: weighted average of 3 models");
    // Unaligned, the reversed copy scrambles the average; aligned, it is model 2 again.
    assert!(wm > none + 10.0, "weight matching {wm} vs none {none}");
    let fused = std::fs::read(out_dir.join("fused-average.safetensors")).unwrap();
    let w = WeightSet::from_bytes(&fused).unwrap();
    assert_eq!(w.metadata["method"], "weight_matching");
    assert_eq!(w.infos(), m2.infos());
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
