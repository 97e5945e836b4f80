//! ONNX on the command line: `gmfuse export-onnx` writes the `cnn-bn` demo pair as ONNX,
//! `gmfuse fuse a.onnx b.onnx --out f.onnx` fuses them with no `--arch` — the same table and
//! fused tensors as the safetensors pair under `--arch cnn-bn` — and writes model 2's graph with
//! the fused initializers; `gmfuse arch explain a.onnx` prints the preset's groups; two ONNX
//! files of different architectures are refused in one line naming the first difference; a pair
//! whose tensors live in external files beside the models fuses into the same table and file,
//! and a missing external file is one line naming the tensor and the path.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gmfuse::engine::onnx;
use gmfuse::engine::weights::WeightSet;

const BIN: &str = env!("CARGO_BIN_EXE_gmfuse");

fn demo(preset: &str, which: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("assets/demo-{preset}"))
        .join(format!("model-{which}.safetensors"))
}

fn gmfuse(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("running gmfuse");
    assert!(
        out.status.success(),
        "gmfuse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Export `preset`'s demo model `which` to `dir/<preset>-<which>.onnx`.
fn export(dir: &Path, preset: &str, which: &str) -> String {
    let out = dir.join(format!("{preset}-{which}.onnx"));
    let out = out.to_str().unwrap().to_string();
    let weights = demo(preset, which);
    gmfuse(&[
        "export-onnx",
        "--arch",
        preset,
        weights.to_str().unwrap(),
        &out,
    ]);
    out
}

const FUSE: [&str; 7] = [
    "fuse",
    "--method",
    "weight_matching",
    "--alphas",
    "0.5",
    "--eval-limit",
    "500",
];

#[test]
fn an_onnx_pair_fuses_into_an_onnx_file_like_its_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        export(dir.path(), "cnn-bn", "a"),
        export(dir.path(), "cnn-bn", "b"),
    );
    let fused_onnx = dir.path().join("fused.onnx");
    let fused_st = dir.path().join("fused.safetensors");
    let from_onnx = gmfuse(&[&FUSE[..], &[&a, &b, "--out", fused_onnx.to_str().unwrap()]].concat());
    let (sa, sb) = (demo("cnn-bn", "a"), demo("cnn-bn", "b"));
    let from_st = gmfuse(
        &[
            &FUSE[..],
            &[
                "--arch",
                "cnn-bn",
                sa.to_str().unwrap(),
                sb.to_str().unwrap(),
                "--out",
                fused_st.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let table = String::from_utf8(from_onnx.stdout).unwrap();
    assert!(table.contains("0.50 model1 + 0.50 model2"), "{table}");
    assert_eq!(table, String::from_utf8(from_st.stdout).unwrap());
    let stderr = String::from_utf8_lossy(&from_onnx.stderr);
    assert!(
        stderr.contains("(onnx): method weight_matching, proportion 0.5"),
        "{stderr}"
    );
    let back = onnx::read(&std::fs::read(&fused_onnx).unwrap()).expect("fused.onnx reads");
    let model2 = onnx::read(&std::fs::read(&b).unwrap()).unwrap();
    assert_eq!(back.spec, model2.spec, "model 2's graph");
    let want = WeightSet::from_bytes(&std::fs::read(&fused_st).unwrap()).unwrap();
    assert_eq!(back.weights.tensors.len(), want.tensors.len());
    for (name, t) in &want.tensors {
        assert_eq!(back.weights.tensors[name].data, t.data, "`{name}`");
    }
}

#[test]
fn arch_explain_reads_the_groups_of_an_onnx_graph() {
    let dir = tempfile::tempdir().unwrap();
    let a = export(dir.path(), "cnn-bn", "a");
    let from_onnx = String::from_utf8(gmfuse(&["arch", "explain", &a]).stdout).unwrap();
    let preset = String::from_utf8(gmfuse(&["arch", "explain", "cnn-bn"]).stdout).unwrap();
    // The same groups and axes; only the name in the first line differs.
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(from_onnx.contains("onnx-"), "{from_onnx}");
    assert_eq!(body(&from_onnx), body(&preset));
    assert!(!body(&preset).is_empty());
}

#[test]
fn two_onnx_files_of_different_architectures_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let a = export(dir.path(), "cnn-bn", "a");
    let r = export(dir.path(), "resnet-mini", "a");
    let out = Command::new(BIN)
        .args([&FUSE[..], &[&a, &r]].concat())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("describe different architectures") && stderr.contains("in the second"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// `model` split by the engine's `onnx::externalize` into `dir/<name>.onnx` and its external
/// files beside it (`file_of` may name subdirectories); returns the model's path.
fn write_external(dir: &Path, name: &str, model: &str, file_of: &dyn Fn(&str) -> String) -> String {
    let bytes = std::fs::read(model).unwrap();
    let (model, files) = onnx::externalize(&bytes, file_of, 1).unwrap();
    assert!(!files.is_empty());
    for (location, data) in &files {
        let path = dir.join(location);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, model).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn external_data_beside_the_model_is_read_as_if_it_were_inside() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        export(dir.path(), "cnn-bn", "a"),
        export(dir.path(), "cnn-bn", "b"),
    );
    let ext = dir.path().join("ext");
    let ext_a = write_external(&ext, "a", &a, &|_| "a.weights".into());
    let ext_b = write_external(&ext, "b", &b, &|name| format!("b-data/{name}"));
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let inside = gmfuse(&[&FUSE[..], &[&a, &b, "--out", &out("inside.onnx")]].concat());
    let beside = gmfuse(&[&FUSE[..], &[&ext_a, &ext_b, "--out", &out("beside.onnx")]].concat());
    assert_eq!(inside.stdout, beside.stdout, "the same table");
    let fused = |name: &str| std::fs::read(out(name)).unwrap();
    assert!(
        fused("inside.onnx") == fused("beside.onnx"),
        "the same fused file"
    );
    let explain = |m: &str| String::from_utf8(gmfuse(&["arch", "explain", m]).stdout).unwrap();
    assert_eq!(explain(&ext_a), explain(&a));
}

#[test]
fn a_missing_external_file_is_refused_in_one_line_naming_tensor_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let a = export(dir.path(), "cnn-bn", "a");
    let ext = dir.path().join("ext");
    let ext_a = write_external(&ext, "a", &a, &|name| format!("data/{name}"));
    let missing = ext.join("data/conv1.weight");
    std::fs::remove_file(&missing).unwrap();
    let out = Command::new(BIN)
        .args(["arch", "explain", &ext_a])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("tensor `conv1.weight`")
            && stderr.contains(missing.to_str().unwrap())
            && stderr.contains("No such file"),
        "{stderr}"
    );
}
