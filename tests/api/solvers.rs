//! GAMF's solvers through the results routes: the report's `best` names the solver of its
//! curve, and `matching.svg` and `fused` pick a solver's matching with `solver=` (default: the
//! first the job ran); only the first solver's fused files are stored.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::fixtures::{job_request, mnist_cnn_model};
use crate::helpers::{TestApp, assert_problem, spawn_app};

/// The `__metadata__` of a safetensors file (8-byte little-endian header length, JSON header).
fn metadata(bytes: &[u8]) -> Value {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"].clone()
}

async fn fused(app: &TestApp, id: &str, query: &str) -> Value {
    let res = app.get(&format!("/v1/jobs/{id}/fused?{query}")).await;
    assert_eq!(res.status(), 200, "{query}");
    metadata(&res.bytes().await.unwrap())
}

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    results_pick_a_gamf_solver_with_solver_and_best_names_its_solver
);
async fn results_pick_a_gamf_solver_with_solver_and_best_names_its_solver(db: Backend) {
    let app = spawn_app(&db).await;
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    let mut job = job_request(&a, &b);
    job["methods"] = json!(["gamf"]);
    job["solvers"] = json!(["ipfp", "sm"]);
    job["proportions"] = json!([0.0, 0.5, 1.0]);
    let id = app.job_id(&job).await;
    let done = app.wait_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let report = app.get_json(&format!("/v1/jobs/{id}/report")).await;

    // `best` is a point of the curve it names, solver included, and no curve beats it.
    let best = &report["best"];
    let curve = report["curves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["method"] == best["method"] && c["solver"] == best["solver"])
        .unwrap_or_else(|| panic!("no curve for {best}"));
    if best["method"] == "gamf" {
        assert!(best["solver"].is_string(), "{best}");
    } else {
        assert!(best.get("solver").is_none(), "{best}");
    }
    let point = curve["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["proportion"] == best["proportion"])
        .unwrap();
    assert_eq!(point["accuracy"], best["accuracy"]);
    for c in report["curves"].as_array().unwrap() {
        for p in c["points"].as_array().unwrap() {
            assert!(
                p["accuracy"].as_f64() <= best["accuracy"].as_f64(),
                "{report}"
            );
        }
    }

    // The matching plot of each solver the job ran; one it did not run is a 409.
    for solver in ["ipfp", "sm"] {
        let res = app
            .get(&format!("/v1/jobs/{id}/matching.svg?solver={solver}"))
            .await;
        assert_eq!(res.status(), 200, "{solver}");
    }
    let res = app
        .get(&format!("/v1/jobs/{id}/matching.svg?solver=rrwm"))
        .await;
    assert_problem(res, 409, "no_matching").await;
    let res = app
        .get(&format!("/v1/jobs/{id}/fused?method=none&solver=sm"))
        .await;
    assert_problem(res, 422, "invalid_parameters").await;

    // Fused files say which solver aligned them; the first solver's is the default and is
    // stored, the second's is computed for the request only.
    let blobs = app.blob_files().len();
    let default = fused(&app, &id, "proportion=0.5").await;
    assert_eq!(default["gmfuse.solver"], "ipfp", "{default}");
    assert_eq!(app.blob_files().len(), blobs + 1);
    let sm = fused(&app, &id, "proportion=0.5&solver=sm").await;
    assert_eq!(sm["gmfuse.solver"], "sm", "{sm}");
    assert_eq!(sm["gmfuse.method"], "gamf", "{sm}");
    assert_eq!(app.blob_files().len(), blobs + 1, "the sm file is not kept");
    let again = fused(&app, &id, "proportion=0.5&method=gamf&solver=ipfp").await;
    assert_eq!(again, default);
    let none = fused(&app, &id, "proportion=0.5&method=none").await;
    assert!(none.get("gmfuse.solver").is_none(), "{none}");
    app.stop().await;
}
