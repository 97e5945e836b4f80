//! Jobs of three or more models through the API: every input's accuracy and each method's
//! fused model (the weighted average in one frame) are reported, the fused weights download
//! without a proportion, and k-model parameters are checked before anything is queued.

use std::time::Duration;

use gmfuse::engine::arch::preset;
use gmfuse::engine::fusion::permute;
use gmfuse::engine::weights::WeightSet;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::fixtures::require_models;
use crate::helpers::{assert_problem, spawn_app};

/// `bytes` (an mnist-cnn model) with every hidden group's channels reversed: another file,
/// the same function.
fn reversed_copy(bytes: &[u8]) -> Vec<u8> {
    let w = WeightSet::from_bytes(bytes).unwrap();
    let s = preset("mnist-cnn").unwrap().validate(&w).unwrap();
    let perms: Vec<Vec<usize>> = s
        .hidden
        .iter()
        .map(|g| (0..g.size).rev().collect())
        .collect();
    permute(&s, &w, &perms).unwrap().to_bytes().unwrap()
}

both_backends!(a_three_model_job_reports_every_input_and_each_methods_fused_model);
async fn a_three_model_job_reports_every_input_and_each_methods_fused_model(db: Backend) {
    let pair = require_models!();
    let app = spawn_app(&db).await;
    let a = app.model_id(pair.a.clone(), "a").await;
    let b = app.model_id(pair.b.clone(), "b").await;
    let c = app.model_id(reversed_copy(&pair.b), "b-reversed").await;
    let id = app
        .job_id(&json!({
            "models": [a, b, c],
            "architecture": "mnist-cnn",
            "methods": ["weight_matching", "gamf"],
        }))
        .await;
    let job = app.wait_finished(&id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["models"], json!([a, b, c]));
    let report = app.get_json(&format!("/v1/jobs/{id}/report")).await;
    let acc = |v: &Value| v["accuracy"].as_f64().unwrap();
    let inputs = report["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 3);
    assert_eq!(inputs[2]["model_id"], c);
    // The reversed copy computes what model b computes.
    assert_eq!(acc(&inputs[1]), acc(&inputs[2]));
    let merged = report["merged"].as_array().unwrap();
    let methods: Vec<&str> = merged
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["weight_matching", "gamf", "none"]);
    let (wm, gamf, none) = (acc(&merged[0]), acc(&merged[1]), acc(&merged[2]));
    eprintln!(
        "inputs {:.2} {:.2} {:.2}; weight_matching {wm:.2}, gamf {gamf:.2}, none {none:.2}",
        acc(&inputs[0]),
        acc(&inputs[1]),
        acc(&inputs[2])
    );
    // Averaging a channel-reversed copy without aligning it scrambles the model; aligning
    // puts the copy back on model b.
    assert!(wm > none + 10.0 && gamf > none + 10.0, "{merged:?}");
    assert!(report["curves"].as_array().unwrap().is_empty());
    assert_eq!(report["weights"], json!([1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]));
    // GAMF aligned onto the most accurate input (the first of equals).
    let best_input = (0..3).fold(0, |best, i| {
        if acc(&inputs[i]) > acc(&inputs[best]) {
            i
        } else {
            best
        }
    });
    assert_eq!(report["anchor"], best_input);
    let wm_matching = &report["matchings"][0];
    assert_eq!(wm_matching["models"].as_array().unwrap().len(), 3);
    assert!(report["best"].get("proportion").is_none());

    let res = app
        .get(&format!("/v1/jobs/{id}/fused?method=weight_matching"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let fused = WeightSet::from_bytes(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(fused.metadata["gmfuse.method"], "weight_matching");
    assert_eq!(fused.metadata["gmfuse.weights"].split(',').count(), 3);
    assert_problem(
        app.get(&format!("/v1/jobs/{id}/fused?proportion=0.5"))
            .await,
        422,
        "invalid_parameters",
    )
    .await;
    app.stop().await;
}

both_backends!(k_model_parameters_that_do_not_fit_are_refused_before_queueing);
async fn k_model_parameters_that_do_not_fit_are_refused_before_queueing(db: Backend) {
    let pair = require_models!();
    let app = spawn_app(&db).await;
    let a = app.model_id(pair.a.clone(), "a").await;
    let b = app.model_id(pair.b.clone(), "b").await;
    let c = app.model_id(reversed_copy(&pair.b), "c").await;
    for (body, code) in [
        (
            json!({"models": [a, b, c], "anchor": 3}),
            "invalid_parameters",
        ),
        (
            json!({"models": [a, b, c], "weights": [1, 2]}),
            "invalid_parameters",
        ),
        (
            json!({"models": [a, b, c], "weights": [1, -1, 1]}),
            "invalid_parameters",
        ),
        (
            json!({"models": [a, b], "weights": [1, 1]}),
            "invalid_parameters",
        ),
        (json!({"models": [a, b, a]}), "invalid_parameters"),
    ] {
        let p = assert_problem(app.post_json("/v1/jobs", &body).await, 422, code).await;
        eprintln!("{body} -> {}", p["detail"]);
    }
    assert_eq!(app.count("jobs").await, 0);
    app.stop().await;
}
