//! The README's walkthrough over real HTTP on the demo models: upload both, queue a job, poll it
//! to `succeeded`, then check the report, both plots and the fused weights.

use std::time::Duration;

use gmfuse::engine::arch::preset;
use gmfuse::engine::eval::evaluate;
use gmfuse::engine::forward::Network;
use gmfuse::engine::weights::WeightSet;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::backend::{Backend, both_backends};
use crate::fixtures::require_models;
use crate::helpers::{TestApp, assert_problem, curve, matching, spawn_app};

/// Evaluation subset the test service uses (GMFUSE_EVAL_LIMIT).
const EVAL_LIMIT: usize = 1000;

/// Accuracy and loss of a model on the first `EVAL_LIMIT` MNIST test images, computed by the
/// engine directly — what `gmfuse fuse` prints for the same models.
fn engine_eval(bytes: &[u8]) -> (f64, f64) {
    let spec = preset("mnist-cnn").unwrap();
    let w = WeightSet::from_bytes(bytes).unwrap();
    let net = Network::new(&spec, &w).unwrap();
    let r = evaluate(
        &net,
        &gmfuse::builtin::mnist_test().head(EVAL_LIMIT),
        &|| false,
    )
    .unwrap();
    (r.accuracy, r.loss)
}

fn check_curve(points: &Value, alphas: &[f64]) {
    let points = points.as_array().expect("a curve");
    assert_eq!(points.len(), alphas.len());
    for (p, &a) in points.iter().zip(alphas) {
        assert_eq!(p["proportion"].as_f64().unwrap(), a);
        let acc = p["accuracy"].as_f64().unwrap();
        let loss = p["loss"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&acc), "accuracy {acc}");
        assert!(loss.is_finite() && loss >= 0.0, "loss {loss}");
    }
}

async fn download(app: &TestApp, path: &str) -> (Vec<u8>, String) {
    let res = app.get(path).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    (res.bytes().await.unwrap().to_vec(), etag)
}

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_walkthrough_fuses_the_demo_models_end_to_end
);
async fn the_walkthrough_fuses_the_demo_models_end_to_end(db: Backend) {
    let models = require_models!();
    let app = spawn_app(&db).await;
    let a = app.model_id(models.a.clone(), "demo-a").await;
    let b = app.model_id(models.b.clone(), "demo-b").await;
    let id = app
        .job_id(
            &json!({"models": [a, b], "architecture": "mnist-cnn", "dataset": "mnist-test",
                        "method": "gamf"}),
        )
        .await;
    let job = app.wait_finished(&id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempt"], 1);
    let stages: Vec<&str> = job["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    for s in [
        "affinity",
        "matching",
        "evaluate_inputs",
        "evaluate_gamf",
        "evaluate_none",
    ] {
        assert!(stages.contains(&s), "timing of {s} in {stages:?}");
    }

    // The report: both curves over the default α grid, values in range, inputs as the engine says.
    let report = app.get_json(&format!("/v1/jobs/{id}/report")).await;
    let alphas: Vec<f64> = (0..=10).map(|k| f64::from(k) / 10.0).collect();
    assert_eq!(report["proportions"], json!(alphas));
    check_curve(curve(&report, "gamf"), &alphas);
    check_curve(curve(&report, "none"), &alphas);
    assert_eq!(report["samples"], EVAL_LIMIT);
    let (bytes_a, bytes_b) = (models.a.clone(), models.b.clone());
    let (ea, eb) =
        tokio::task::spawn_blocking(move || (engine_eval(&bytes_a), engine_eval(&bytes_b)))
            .await
            .unwrap();
    for (input, (acc, loss), sha) in [
        (
            &report["inputs"][0],
            ea,
            hex::encode(Sha256::digest(&models.a)),
        ),
        (
            &report["inputs"][1],
            eb,
            hex::encode(Sha256::digest(&models.b)),
        ),
    ] {
        assert_eq!(input["accuracy"].as_f64().unwrap(), acc, "{input}");
        assert!(
            (input["loss"].as_f64().unwrap() - loss).abs() < 1e-9,
            "{input}"
        );
        assert_eq!(input["sha256"], sha);
    }
    // α = 0 is model 1 (unaligned for `none`), α = 1 is model 2, for both curves.
    let none = curve(&report, "none");
    assert_eq!(none[0]["accuracy"].as_f64().unwrap(), ea.0);
    assert_eq!(none[10]["accuracy"].as_f64().unwrap(), eb.0);
    assert_eq!(
        curve(&report, "gamf")[10]["accuracy"].as_f64().unwrap(),
        eb.0
    );
    let best = report["best"]["accuracy"].as_f64().unwrap();
    assert!(best >= ea.0.max(eb.0) - 1e-9, "best {best} below an input");
    let matching = matching(&report, "gamf");
    assert_eq!(matching["group_sizes"], json!([1, 32, 64, 32, 10]));
    for (layer, n) in matching["permutations"]
        .as_array()
        .unwrap()
        .iter()
        .zip([32, 64, 32])
    {
        let mut perm: Vec<u64> = layer["perm"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        perm.sort_unstable();
        assert_eq!(
            perm,
            (0..n).collect::<Vec<u64>>(),
            "{} is a permutation",
            layer["layer"]
        );
    }
    assert_eq!(report["request"]["method"], "gamf");

    // The plots parse as SVG and draw both curves (red GAMF, blue none) through 11 points.
    let res = app.get(&format!("/v1/jobs/{id}/report.svg")).await;
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let svg = res.text().await.unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("report.svg is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for label in [
        "Graph Matching Fusion",
        "No Matching Fusion",
        "Model 1 Accuracy",
        "Model 2 Accuracy",
    ] {
        assert!(texts.contains(&label), "{label} in {texts:?}");
    }
    for colour in ["#FF0000", "#0000FF"] {
        let eleven = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .filter(|n| {
                n.attribute("stroke")
                    .is_some_and(|s| s.eq_ignore_ascii_case(colour))
            })
            .filter(|n| {
                n.attribute("points")
                    .unwrap_or("")
                    .split_whitespace()
                    .count()
                    == 11
            })
            .count();
        assert_eq!(eleven, 1, "one {colour} curve through 11 points");
    }
    let svg = app
        .get(&format!("/v1/jobs/{id}/matching.svg"))
        .await
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("matching.svg is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(doc.descendants().filter(|n| n.has_tag_name("rect")).count() > 100);

    // Fused weights at α = 1: the inputs' names, dtypes and shapes, model 2's values.
    let (bytes, etag) = download(&app, &format!("/v1/jobs/{id}/fused?proportion=1")).await;
    assert_eq!(etag, format!("\"{}\"", hex::encode(Sha256::digest(&bytes))));
    let fused = WeightSet::from_bytes(&bytes).unwrap();
    let input_a = WeightSet::from_bytes(&models.a).unwrap();
    let input_b = WeightSet::from_bytes(&models.b).unwrap();
    assert_eq!(fused.infos(), input_a.infos());
    assert_eq!(fused.infos(), input_b.infos());
    assert_eq!(fused.tensors, input_b.tensors, "α = 1 is model 2");
    assert_eq!(fused.metadata["gmfuse.job_id"], id);
    assert_eq!(fused.metadata["gmfuse.method"], "gamf");
    assert_eq!(fused.metadata["gmfuse.proportion"], "1");
    assert_eq!(
        fused.metadata["gmfuse.input_sha256"],
        format!(
            "{},{}",
            report["inputs"][0]["sha256"].as_str().unwrap(),
            report["inputs"][1]["sha256"].as_str().unwrap()
        )
    );
    // The same request again is the same bytes (cached), and the ETag revalidates.
    let (again, etag2) = download(&app, &format!("/v1/jobs/{id}/fused?proportion=1")).await;
    assert_eq!((again, etag2), (bytes, etag.clone()));
    let res = app
        .client
        .get(app.url(&format!("/v1/jobs/{id}/fused?proportion=1")))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    // α = 0 with method none is model 1 itself.
    let (bytes, _) = download(
        &app,
        &format!("/v1/jobs/{id}/fused?proportion=0&method=none"),
    )
    .await;
    assert_eq!(
        WeightSet::from_bytes(&bytes).unwrap().tensors,
        input_a.tensors
    );
    assert_problem(
        app.get(&format!("/v1/jobs/{id}/fused?proportion=1.5"))
            .await,
        422,
        "invalid_parameters",
    )
    .await;

    // A finished job cannot be canceled; the attempt log has one successful claim.
    assert_problem(
        app.client
            .post(app.url(&format!("/v1/jobs/{id}/cancel")))
            .send()
            .await
            .unwrap(),
        409,
        "job_finished",
    )
    .await;
    let attempts = app.get_json(&format!("/v1/jobs/{id}/attempts")).await;
    assert_eq!(attempts["items"].as_array().unwrap().len(), 1);
    assert_eq!(attempts["items"][0]["outcome"], "succeeded");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gmfuse_jobs{status=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gmfuse_job_duration_seconds_count{outcome=\"succeeded\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}
