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

#[path = "fusion/methods.rs"]
mod methods;
#[path = "fusion/recovery.rs"]
mod recovery;
use recovery::shuffle;

/// The CLI under test.
fn gmfuse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gmfuse"))
}

/// Run `cmd`, which must succeed (its stderr is the failure message); its stdout.
fn gmfuse_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

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
    let stdout = gmfuse_ok(
        gmfuse()
            .args(["fuse", "--compat", "pygmtools-example"])
            .args(["--alphas", "0:1:0.1", "--report"])
            .arg(&report_path)
            .arg("--out")
            .arg(dir.path().join("fused"))
            .arg(&a)
            .arg(&b),
    );
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
    let out = gmfuse()
        .args(["fuse", "--compat", "pygmtools-example", "--solver", "rrwm"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("solver `rrwm` is not available"), "{err}");
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
    let stdout = gmfuse_ok(
        gmfuse()
            .args(["fuse", "--method", "weight_matching", "--eval-limit", "500"])
            .args(["--weights", "2,1,1", "--out"])
            .arg(&out_dir)
            .args([&a, &b, &c]),
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
