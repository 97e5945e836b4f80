//! Repair after fusion through the API: the `cnn-bn` and `resnet-mini` demo pairs
//! (`assets/demo-cnn-bn`, `assets/demo-resnet-mini`) fuse end to end with every method, without
//! and with each repair, and every curve gets its repaired twin; a repaired best point is the
//! report's `best` and the default fused download; `reset_bn` on an architecture without batch
//! norm, and a method that cannot handle the architecture (GAMF in compat mode on a residual
//! net), are refused before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::backend::Backend;
use crate::fixtures::{job_request, mnist_cnn_model};
use crate::helpers::{assert_problem, spawn_app};

fn demo(preset: &str, which: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("assets/demo-{preset}"));
    std::fs::read(dir.join(format!("model-{which}.safetensors"))).expect("committed demo model")
}

/// The job's curves as `(method, points, repaired points)`.
fn curves(report: &Value) -> Vec<(String, Vec<f64>, Vec<f64>)> {
    let acc = |v: &Value| -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().map(|p| p["accuracy"].as_f64().unwrap()).collect())
            .unwrap_or_default()
    };
    report["curves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["method"].as_str().unwrap().to_string(),
                acc(&c["points"]),
                acc(&c["repaired"]),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_batch_norm_and_residual_demo_pairs_fuse_with_every_method_and_repair() {
    let app = spawn_app(&Backend::Sqlite).await;
    for preset in ["cnn-bn", "resnet-mini"] {
        let a = app
            .model_id(demo(preset, "a"), &format!("{preset}-a"))
            .await;
        let b = app
            .model_id(demo(preset, "b"), &format!("{preset}-b"))
            .await;
        let mut plain = Vec::new();
        for repair in ["none", "reset_bn", "repair"] {
            let mut req = job_request(&a, &b);
            req["architecture"] = json!(preset);
            req["methods"] = json!(["gamf", "weight_matching", "activation_matching"]);
            req["proportions"] = json!([0.0, 0.5, 1.0]);
            req["repair"] = json!(repair);
            let job = app.job_id(&req).await;
            let done = app.wait_finished(&job, Duration::from_secs(900)).await;
            assert_eq!(done["status"], "succeeded", "{preset} {repair}: {done}");
            let report = app.get_json(&format!("/v1/jobs/{job}/report")).await;
            let got = curves(&report);
            let methods: Vec<&str> = got.iter().map(|c| c.0.as_str()).collect();
            assert_eq!(
                methods,
                ["gamf", "weight_matching", "activation_matching", "none"],
                "{preset} {repair}"
            );
            for (method, points, repaired) in &got {
                println!("{preset} {repair} {method}: {points:?} repaired {repaired:?}");
                assert_eq!(points.len(), 3);
                if repair == "none" {
                    assert!(repaired.is_empty(), "{preset} {method}: no repair asked");
                    continue;
                }
                // The unrepaired curve is the one the job without repair reported; the ends
                // are the inputs, which repair leaves as they are.
                let before = &plain
                    .iter()
                    .find(|c: &&(String, Vec<f64>, Vec<f64>)| &c.0 == method)
                    .unwrap()
                    .1;
                assert_eq!(points, before, "{preset} {repair} {method}");
                assert_eq!(repaired.len(), 3);
                assert_eq!((repaired[0], repaired[2]), (points[0], points[2]));
            }
            if repair == "none" {
                plain = got;
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn reset_bn_on_an_architecture_without_batch_norm_is_refused() {
    let app = spawn_app(&Backend::Sqlite).await;
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    let mut req = job_request(&a, &b);
    req["repair"] = json!("reset_bn");
    let body = assert_problem(
        app.post_json("/v1/jobs", &req).await,
        422,
        "invalid_parameters",
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("reset_bn") && detail.contains("mnist-cnn"),
        "{body}"
    );
    req["repair"] = json!("rebuild");
    assert_eq!(app.post_json("/v1/jobs", &req).await.status(), 422);
    assert_eq!(app.count("jobs").await, 0);
    app.stop().await;
}

/// Accuracy of safetensors `bytes` (a `cnn-bn` model) on the first `samples` of mnist-test,
/// as the job scored them (the test service's evaluation limit).
fn accuracy(bytes: &[u8], samples: usize) -> f64 {
    use gmfuse::engine::{arch::preset, eval::evaluate, forward::Network, weights::WeightSet};
    let w = WeightSet::from_bytes(bytes).unwrap();
    let net = Network::new(&preset("cnn-bn").unwrap(), &w).unwrap();
    let data = gmfuse::builtin::mnist_test().head(samples);
    evaluate(&net, &data, &|| false).unwrap().accuracy
}

#[tokio::test]
async fn a_repaired_best_point_is_the_default_download_and_scores_its_accuracy() {
    let app = spawn_app(&Backend::Sqlite).await;
    let a = app.model_id(demo("cnn-bn", "a"), "a").await;
    let b = app.model_id(demo("cnn-bn", "b"), "b").await;
    let mut req = job_request(&a, &b);
    req["architecture"] = json!("cnn-bn");
    req["methods"] = json!(["weight_matching"]);
    req["proportions"] = json!([0.5]);
    req["repair"] = json!("reset_bn");
    let job = app.job_id(&req).await;
    let done = app.wait_finished(&job, Duration::from_secs(600)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let report = app.get_json(&format!("/v1/jobs/{job}/report")).await;
    let samples = report["samples"].as_u64().unwrap() as usize;
    // Weight matching's midpoint: 16.58 % unrepaired, 88.36 % after reset_bn on the full
    // mnist-test (README): the repaired point is the best, and the report says so.
    let best = &report["best"];
    let wm = &report["curves"][0];
    assert_eq!(wm["method"], "weight_matching");
    assert_eq!(best["method"], "weight_matching", "{best}");
    assert_eq!(best["proportion"], 0.5, "{best}");
    assert_eq!(best["repair"], "reset_bn", "{best}");
    assert_eq!(best["accuracy"], wm["repaired"][0]["accuracy"], "{report}");
    let fetch = |query: &'static str| {
        let app = &app;
        let job = &job;
        async move {
            let res = app.get(&format!("/v1/jobs/{job}/fused{query}")).await;
            assert_eq!(res.status(), 200, "{query}");
            res.bytes().await.unwrap().to_vec()
        }
    };
    // The default download is the best point, repaired, and scores its accuracy exactly.
    let repaired = fetch("").await;
    let w = gmfuse::engine::weights::WeightSet::from_bytes(&repaired).unwrap();
    assert_eq!(w.metadata["gmfuse.repair"], "reset_bn");
    assert_eq!(w.metadata["gmfuse.proportion"], "0.5");
    assert_eq!(
        accuracy(&repaired, samples),
        best["accuracy"].as_f64().unwrap()
    );
    assert_eq!(
        fetch("?method=weight_matching&proportion=0.5").await,
        repaired
    );
    // `repair=none` gives the unrepaired point, another proportion defaults to no repair.
    let plain = fetch("?repair=none").await;
    let w = gmfuse::engine::weights::WeightSet::from_bytes(&plain).unwrap();
    assert!(
        !w.metadata.contains_key("gmfuse.repair"),
        "{:?}",
        w.metadata
    );
    assert_eq!(
        accuracy(&plain, samples),
        wm["points"][0]["accuracy"].as_f64().unwrap()
    );
    let other = fetch("?proportion=0.25").await;
    let w = gmfuse::engine::weights::WeightSet::from_bytes(&other).unwrap();
    assert!(!w.metadata.contains_key("gmfuse.repair"));
    assert_ne!(fetch("?proportion=0.25&repair=reset_bn").await, other);
    // A repair the job did not run is refused.
    let res = app
        .get(&format!("/v1/jobs/{job}/fused?repair=repair"))
        .await;
    let body = assert_problem(res, 422, "invalid_parameters").await;
    assert!(
        body["detail"].as_str().unwrap().contains("reset_bn"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_method_that_cannot_handle_the_architecture_is_refused_at_submission() {
    let app = spawn_app(&Backend::Sqlite).await;
    let a = app.model_id(demo("resnet-mini", "a"), "a").await;
    let b = app.model_id(demo("resnet-mini", "b"), "b").await;
    let mut req = job_request(&a, &b);
    req["architecture"] = json!("resnet-mini");
    req["methods"] = json!(["weight_matching", "gamf"]);
    req["compat"] = json!("pygmtools-example");
    let body = assert_problem(
        app.post_json("/v1/jobs", &req).await,
        422,
        "invalid_parameters",
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    for needle in [
        "method `gamf` cannot handle architecture `resnet-mini`",
        "compat `pygmtools-example`",
        "mnist-cnn",
    ] {
        assert!(detail.contains(needle), "`{detail}` lacks `{needle}`");
    }
    assert_eq!(app.count("jobs").await, 0);
    // Without compat, GAMF aligns the residual net (the test above fuses it).
    req.as_object_mut().unwrap().remove("compat");
    req["proportions"] = json!([0.5]);
    app.job_id(&req).await;
    app.stop().await;
}
