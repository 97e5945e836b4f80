//! ONNX models over HTTP. The demo pairs (`assets/demo*`) are exported to ONNX in the test by
//! the engine's writer (`onnx::export`), uploaded with no architecture, fused with every method
//! — the curves equal, point for point, those of the same pair uploaded as safetensors and
//! fused under the preset — and downloaded as ONNX (`?format=onnx`): model 2's graph with the
//! fused initializers, which read back as the fused safetensors download's tensors. Refusals
//! (malformed, an unsupported op, two graphs of different architectures, ONNX out of a
//! safetensors job) are problem+json with their status and leave nothing stored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use gmfuse::engine::arch::{ArchSpec, preset, preset_for};
use gmfuse::engine::onnx;
use gmfuse::engine::weights::WeightSet;
use reqwest::Response;
use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::helpers::{TestApp, assert_problem, spawn_app};

/// The demo pair of `preset` (`mnist-cnn` is `assets/demo`), model `which` (`a` or `b`).
pub(crate) fn demo(preset: &str, which: &str) -> Vec<u8> {
    let dir = match preset {
        "mnist-cnn" => "assets/demo".to_string(),
        p => format!("assets/demo-{p}"),
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(format!("model-{which}.safetensors"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("committed demo model {path:?}: {e}"))
}

/// The architecture of `name`'s demo models (`mlp` is read from their tensors).
fn spec_of(name: &str, weights: &WeightSet) -> ArchSpec {
    let shapes: BTreeMap<String, Vec<usize>> = weights.shapes();
    preset_for(name, &shapes).unwrap_or_else(|_| preset(name).unwrap())
}

/// The demo model exported to ONNX by the engine's writer.
pub(crate) fn demo_onnx(preset: &str, which: &str) -> Vec<u8> {
    let weights = WeightSet::from_bytes(&demo(preset, which)).unwrap();
    onnx::export(&spec_of(preset, &weights), &weights).expect("export")
}

async fn upload_onnx(app: &TestApp, bytes: Vec<u8>, content_type: &str) -> Response {
    app.client
        .post(app.url("/v1/models"))
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("upload")
}

/// Upload an ONNX model that must be accepted as one; returns its JSON.
pub(crate) async fn onnx_model(app: &TestApp, bytes: Vec<u8>, content_type: &str) -> Value {
    let res = upload_onnx(app, bytes, content_type).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(body["format"], "onnx", "{body}");
    body
}

/// Run a job to success; returns its report.
pub(crate) async fn run(app: &TestApp, req: &Value) -> (String, Value) {
    let job = app.job_id(req).await;
    let done = app.wait_finished(&job, Duration::from_secs(900)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let report = app.get_json(&format!("/v1/jobs/{job}/report")).await;
    (job, report)
}

/// Every curve of a report as `(method, accuracies)`.
pub(crate) fn accuracies(report: &Value) -> Vec<(String, Vec<f64>)> {
    report["curves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let points = c["points"].as_array().unwrap();
            (
                c["method"].as_str().unwrap().to_string(),
                points
                    .iter()
                    .map(|p| p["accuracy"].as_f64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

/// Upload `preset`'s pair as ONNX (model a declared, model b detected) and as safetensors, run
/// `methods` on both at α 0, 0.5, 1 and assert equal curves; returns the ONNX job's id.
async fn same_curves(app: &TestApp, preset: &str, methods: &[&str]) -> String {
    let a = onnx_model(app, demo_onnx(preset, "a"), "application/onnx").await;
    let b = onnx_model(app, demo_onnx(preset, "b"), "application/octet-stream").await;
    let arch = a["architecture"].as_str().unwrap().to_string();
    assert!(arch.starts_with("onnx-") && arch.len() == 17, "{a}");
    assert_eq!(b["architecture"], arch, "one architecture, one name");
    let listed = app.get_json(&format!("/v1/architectures/{arch}")).await;
    assert_eq!(listed["name"], arch, "{listed}");
    let sa = app
        .model_id(demo(preset, "a"), &format!("{preset}-a"))
        .await;
    let sb = app
        .model_id(demo(preset, "b"), &format!("{preset}-b"))
        .await;
    let base = json!({"dataset": "mnist-test", "methods": methods,
                      "proportions": [0.0, 0.5, 1.0]});
    let mut from_onnx = base.clone();
    from_onnx["models"] = json!([a["id"], b["id"]]);
    let mut from_st = base;
    from_st["models"] = json!([sa, sb]);
    from_st["architecture"] = json!(preset);
    let (job, onnx_report) = run(app, &from_onnx).await;
    let (_, st_report) = run(app, &from_st).await;
    let (got, want) = (accuracies(&onnx_report), accuracies(&st_report));
    println!("{preset}: ONNX {got:?}, safetensors {want:?}");
    assert_eq!(got, want, "{preset}: the ONNX pair's curves");
    assert_eq!(got.len(), methods.len() + 1, "every method and `none`");
    job
}

both_backends!(an_onnx_pair_fuses_like_its_safetensors_and_downloads_as_onnx);
async fn an_onnx_pair_fuses_like_its_safetensors_and_downloads_as_onnx(db: Backend) {
    let app = spawn_app(&db).await;
    let methods = ["gamf", "weight_matching", "activation_matching"];
    let job = same_curves(&app, "cnn-bn", &methods).await;
    for method in methods {
        let query = format!("/v1/jobs/{job}/fused?method={method}&proportion=0.5");
        let st = app.get(&query).await;
        assert_eq!(st.status(), 200);
        let fused = WeightSet::from_bytes(&st.bytes().await.unwrap()).unwrap();
        let res = app.get(&format!("{query}&format=onnx")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/onnx");
        let etag = res.headers()["etag"].to_str().unwrap().to_string();
        let bytes = res.bytes().await.unwrap();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(etag, format!("\"{sha}\""));
        // Model 2's graph with the fused initializers: the same architecture, the fused values.
        let back = onnx::read(&bytes).expect("the fused ONNX reads back");
        let b = onnx::read(&demo_onnx("cnn-bn", "b")).unwrap();
        assert_eq!(back.spec, b.spec, "{method}: model 2's graph");
        for (name, t) in &fused.tensors {
            assert_eq!(
                back.weights.tensors[name].data, t.data,
                "{method}: `{name}`"
            );
        }
        let again = app
            .client
            .get(app.url(&format!("{query}&format=onnx")))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "the same bytes again");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_demo_pair_fuses_from_onnx_with_the_safetensors_curves() {
    let app = spawn_app(&Backend::Sqlite).await;
    for preset in ["mnist-cnn", "resnet-mini", "mlp"] {
        same_curves(&app, preset, &["weight_matching"]).await;
    }
    app.stop().await;
}

/// `bytes` with every `from` replaced by `to` (of the same length, so protobuf lengths hold).
fn replaced(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut hits = 0;
    for i in 0..out.len().saturating_sub(from.len() - 1) {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            hits += 1;
        }
    }
    assert!(hits > 0, "{from:?} not found");
    out
}

both_backends!(unreadable_and_unsupported_onnx_is_refused_and_nothing_is_stored);
async fn unreadable_and_unsupported_onnx_is_refused_and_nothing_is_stored(db: Backend) {
    let app = spawn_app(&db).await;
    // Not protobuf at all, declared ONNX.
    let garbage = vec![0xff_u8; 64];
    let res = upload_onnx(&app, garbage, "application/onnx").await;
    assert_problem(res, 400, "invalid_onnx").await;
    // A truncated export.
    let mut cut = demo_onnx("cnn-bn", "a");
    cut.truncate(cut.len() / 2);
    let res = upload_onnx(&app, cut, "application/onnx").await;
    assert_problem(res, 400, "invalid_onnx").await;
    // A safetensors file declared ONNX.
    let res = upload_onnx(&app, demo("cnn-bn", "a"), "application/onnx").await;
    assert_problem(res, 400, "invalid_onnx").await;
    // Every Relu made a Selu: a valid model with an op gmfuse does not map.
    let selu = replaced(&demo_onnx("cnn-bn", "a"), b"Relu", b"Selu");
    let res = upload_onnx(&app, selu, "application/octet-stream").await;
    let body = assert_problem(res, 422, "unsupported_onnx").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("(Selu)") && detail.contains("supported: Conv"),
        "{detail}"
    );
    let res = upload_onnx(&app, demo_onnx("cnn-bn", "a"), "text/plain").await;
    assert_problem(res, 415, "unsupported_media_type").await;
    app.assert_nothing_stored().await;
    app.stop().await;
}

both_backends!(two_graphs_of_different_architectures_are_refused_naming_the_first_difference);
async fn two_graphs_of_different_architectures_are_refused_naming_the_first_difference(
    db: Backend,
) {
    let app = spawn_app(&db).await;
    let a = onnx_model(&app, demo_onnx("cnn-bn", "a"), "application/onnx").await;
    let b = onnx_model(&app, demo_onnx("resnet-mini", "a"), "application/onnx").await;
    assert_ne!(a["architecture"], b["architecture"]);
    let req = json!({"models": [a["id"], b["id"]], "dataset": "mnist-test"});
    let body = assert_problem(
        app.post_json("/v1/jobs", &req).await,
        422,
        "architecture_mismatch",
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(a["architecture"].as_str().unwrap())
            && detail.contains("in the first and")
            && detail.contains("in the second"),
        "{detail}"
    );
    assert_eq!(app.count("jobs").await, 0);
    app.stop().await;
}

both_backends!(onnx_out_of_a_safetensors_job_is_refused);
async fn onnx_out_of_a_safetensors_job_is_refused(db: Backend) {
    let app = spawn_app(&db).await;
    let a = app.model_id(demo("mnist-cnn", "a"), "a").await;
    let b = app.model_id(demo("mnist-cnn", "b"), "b").await;
    let req = json!({"models": [a, b], "dataset": "mnist-test",
                     "methods": ["weight_matching"], "proportions": [0.5]});
    let (job, _) = run(&app, &req).await;
    let res = app.get(&format!("/v1/jobs/{job}/fused?format=onnx")).await;
    let body = assert_problem(res, 422, "invalid_parameters").await;
    assert!(
        body["detail"].as_str().unwrap().contains("safetensors"),
        "{body}"
    );
    let res = app.get(&format!("/v1/jobs/{job}/fused?format=pt")).await;
    assert_problem(res, 400, "invalid_query").await;
    let res = app
        .get(&format!("/v1/jobs/{job}/fused?format=safetensors"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    app.stop().await;
}

both_backends!(placeholder_weights_past_the_upload_budget_are_refused_before_allocation);
async fn placeholder_weights_past_the_upload_budget_are_refused_before_allocation(db: Backend) {
    // `light_vgg19.onnx` from the onnx package (scripts/onnx-data.sh) is a few kB of graph whose
    // 144 M weights are ConstantOfShape placeholders: read as is, the server would hold 1.1 GB of
    // f64 for it. The upload budget (`model_file::onnx_weight_budget`: len / 2, at least 2^20
    // elements) refuses it with 400 before any weight is allocated.
    let Some(dir) = std::env::var_os("GMFUSE_ONNX_DATA") else {
        assert!(
            std::env::var_os("GMFUSE_REQUIRE_SEED").is_none(),
            "GMFUSE_ONNX_DATA is not set (scripts/onnx-data.sh)"
        );
        eprintln!("SKIPPED: GMFUSE_ONNX_DATA is not set (scripts/onnx-data.sh)");
        return;
    };
    let bytes = std::fs::read(PathBuf::from(dir).join("light/light_vgg19.onnx")).unwrap();
    assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
    assert!(
        onnx::read(&bytes).is_ok(),
        "the engine's own limit admits VGG-19"
    );
    let app = spawn_app(&db).await;
    let res = upload_onnx(&app, bytes, "application/onnx").await;
    let body = assert_problem(res, 400, "invalid_onnx").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("weight elements"), "{detail}");
    app.assert_nothing_stored().await;
    app.stop().await;
}
