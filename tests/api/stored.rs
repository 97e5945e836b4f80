//! Rows written by an older schema still load: a job stored before `methods` existed
//! (`params.method: "gamf"`, `curves: {gamf, none}`, one `matching` object; see
//! `stored/README.md`) is inserted as it was and read back through the API.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backend::{Backend, both_backends};
use crate::fixtures::require_models;
use crate::helpers::{curve, matching, spawn_app};

const JOB_ID: &str = "0192d4e2-0000-7000-8000-000000000001";

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_job_row_written_before_methods_existed_still_loads_and_serves_its_report
);
async fn a_job_row_written_before_methods_existed_still_loads_and_serves_its_report(db: Backend) {
    let models = require_models!();
    let app = spawn_app(&db).await;
    let a = app.model_id(models.a.clone(), "old-a").await;
    let b = app.model_id(models.b.clone(), "old-b").await;
    let fill = |text: &str| {
        text.replace("00000000-0000-0000-0000-00000000000a", &a)
            .replace("00000000-0000-0000-0000-00000000000b", &b)
            .replace("SHA256_A", &hex::encode(Sha256::digest(&models.a)))
            .replace("SHA256_B", &hex::encode(Sha256::digest(&models.b)))
            .replace('\'', "''")
    };
    let spec = fill(include_str!("stored/v1-spec.json"));
    let report = fill(include_str!("stored/v1-report.json"));
    let timings = fill(include_str!("stored/v1-timings.json"));
    let sql = match &db {
        Backend::Sqlite => format!(
            "INSERT INTO jobs (id, status, attempt, max_attempts, timings, spec, report,
                               created_at, started_at, finished_at, updated_at)
             VALUES ('{JOB_ID}', 'succeeded', 1, 3, '{timings}', '{spec}', '{report}',
                     1764619200000, 1764619201000, 1764619205000, 1764619205000)"
        ),
        Backend::Postgres(_) => format!(
            "INSERT INTO jobs (id, status, attempt, max_attempts, timings, spec, report,
                               created_at, started_at, finished_at, updated_at)
             VALUES ('{JOB_ID}', 'succeeded', 1, 3, '{timings}'::jsonb, '{spec}'::jsonb,
                     '{report}'::jsonb, now(), now(), now(), now())"
        ),
    };
    db.execute(app.dir.path(), &sql).await;

    let job = app.get_json(&format!("/v1/jobs/{JOB_ID}")).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["method"], "gamf");
    assert_eq!(job["methods"], serde_json::json!(["gamf"]));
    assert_eq!(job["models"], serde_json::json!([a, b]));
    let stages: Vec<&str> = job["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert!(
        stages.contains(&"evaluate_gamf") && stages.contains(&"affinity"),
        "{stages:?}"
    );

    let old: Value = serde_json::from_str(include_str!("stored/v1-report.json")).unwrap();
    let r = app.get_json(&format!("/v1/jobs/{JOB_ID}/report")).await;
    assert_eq!(r["methods"], serde_json::json!(["gamf"]));
    assert_eq!(curve(&r, "gamf"), &old["curves"]["gamf"]);
    assert_eq!(curve(&r, "none"), &old["curves"]["none"]);
    assert_eq!(
        r["curves"][0]["method"], "gamf",
        "the old curves keep their order"
    );
    let m = matching(&r, "gamf");
    assert_eq!(m["permutations"], old["matching"]["permutations"]);
    assert_eq!(m["objective"], old["matching"]["objective"]);
    assert_eq!(r["best"], old["best"]);
    for plot in ["report.svg", "matching.svg"] {
        let res = app.get(&format!("/v1/jobs/{JOB_ID}/{plot}")).await;
        assert_eq!(res.status(), 200, "{plot}");
        let svg = res.text().await.unwrap();
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{plot}: {e}"));
    }
    // The fused weights are recomputed from the stored permutations.
    let res = app
        .get(&format!(
            "/v1/jobs/{JOB_ID}/fused?proportion=0.5&method=gamf"
        ))
        .await;
    assert_eq!(res.status(), 200);
    let w = gmfuse::engine::weights::WeightSet::from_bytes(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(w.metadata["gmfuse.method"], "gamf");
    app.stop().await;
}
