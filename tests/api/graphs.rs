//! Graph-shaped architectures over HTTP: the BatchNorm and residual presets are listed with
//! their permutation groups, a custom residual spec is stored with its groups (no sizes before
//! a model uses it), and one whose branches disagree in shape is refused naming the add.

use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::helpers::{assert_problem, spawn_app};

fn producers(group: &Value) -> Vec<&str> {
    group["producers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect()
}

/// A one-block residual net: conv → BN → ReLU → conv → BN, added to the first conv's output.
fn residual(name: &str, second_stride: u64) -> Value {
    let bn = |p: &str| {
        json!({"op": "batchnorm2d", "weight": format!("{p}.w"), "bias": format!("{p}.b"),
               "running_mean": format!("{p}.m"), "running_var": format!("{p}.v")})
    };
    let mut bn2 = bn("bn2");
    bn2["name"] = json!("branch");
    json!({"name": name, "input": [1, 8, 8], "ops": [
        {"op": "conv2d", "weight": "c0.w", "padding": 1, "name": "stem"},
        bn("bn1"), {"op": "relu"},
        {"op": "conv2d", "weight": "c1.w", "padding": 1, "stride": second_stride},
        bn2,
        {"op": "add", "inputs": ["branch", "stem"], "name": "sum"},
        {"op": "global_avgpool"},
        {"op": "linear", "weight": "fc.w"}
    ]})
}

both_backends!(the_bn_and_residual_presets_are_listed_with_their_groups);
async fn the_bn_and_residual_presets_are_listed_with_their_groups(db: Backend) {
    let app = spawn_app(&db).await;
    let all = app.get_json("/v1/architectures").await;
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mnist-cnn", "cnn-bn", "resnet-mini", "mlp"]);
    let res = app.get_json("/v1/architectures/resnet-mini").await;
    let groups = res["groups"].as_array().unwrap();
    let sizes: Vec<u64> = groups.iter().map(|g| g["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [16, 16, 32, 32, 32]);
    assert_eq!(
        producers(&groups[0]),
        ["stem.conv.weight", "layer1.conv2.weight"]
    );
    assert_eq!(
        groups[0]["axes"][1],
        json!({"tensor": "stem.bn.weight", "axis": 0, "block": 1})
    );
    let cnn = app.get_json("/v1/architectures/cnn-bn").await;
    assert_eq!(
        cnn["groups"][1]["axes"][5],
        json!({"tensor": "fc1.weight", "axis": 1, "block": 49})
    );
    app.stop().await;
}

both_backends!(a_custom_residual_spec_is_stored_and_mismatched_branches_are_refused);
async fn a_custom_residual_spec_is_stored_and_mismatched_branches_are_refused(db: Backend) {
    let app = spawn_app(&db).await;
    let res = app
        .post_json("/v1/architectures", &residual("res", 1))
        .await;
    assert_eq!(res.status(), 201);
    let stored = app.get_json("/v1/architectures/res").await;
    let groups = stored["groups"].as_array().unwrap();
    // The add ties the branch's conv to the stem, which the branch also reads: one group,
    // produced and consumed by c1. Widths are unknown until a model uses the architecture.
    assert_eq!(groups.len(), 1);
    assert_eq!(producers(&groups[0]), ["c0.w", "c1.w"]);
    assert_eq!(groups[0]["size"], Value::Null);
    // Stride 2 on the branch: 4×4 against the stem's 8×8.
    let body = assert_problem(
        app.post_json("/v1/architectures", &residual("bad", 2))
            .await,
        422,
        "invalid_architecture",
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("op 5 (add `sum`): its inputs disagree in shape: `branch` is Chw(1, 4, 4), `stem` is Chw(1, 8, 8)"),
        "{detail}"
    );
    app.stop().await;
}
