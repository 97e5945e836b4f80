//! Tests of the graph-shaped spec: the JSON form, wiring errors, shape inference of the
//! BatchNorm and residual presets, and the refusal of mismatched residual branches.

use std::collections::BTreeMap;

use super::*;

fn parse(json: serde_json::Value) -> ArchSpec {
    serde_json::from_value(json).unwrap()
}

#[test]
fn chain_specs_read_and_write_exactly_as_before() {
    // The JSON of the stored mnist-cnn spec as written before ops had names (main@b813a0d).
    let old = r#"{"name":"mnist-cnn","input":[1,28,28],"ops":[{"op":"pad2d","mode":"replicate","padding":1},{"op":"conv2d","weight":"conv1.weight","stride":1,"padding":0},{"op":"relu"},{"op":"maxpool2d","kernel":2,"stride":2,"padding":1},{"op":"pad2d","mode":"replicate","padding":1},{"op":"conv2d","weight":"conv2.weight","stride":1,"padding":0},{"op":"relu"},{"op":"maxpool2d","kernel":2,"stride":2,"padding":1},{"op":"flatten"},{"op":"linear","weight":"fc1.weight"},{"op":"linear","weight":"fc2.weight"}]}"#;
    let spec: ArchSpec = serde_json::from_str(old).unwrap();
    assert_eq!(spec, preset("mnist-cnn").unwrap());
    assert_eq!(serde_json::to_string(&spec).unwrap(), old);
    let g = spec.graph_with(|n| preset_tensors("mnist-cnn").unwrap().get(n).cloned());
    assert!(g.unwrap().is_chain());
}

#[test]
fn named_inputs_wire_a_residual_block() {
    let spec = parse(
        serde_json::json!({"name": "res", "input": [2, 4, 4], "ops": [
            {"op": "conv2d", "weight": "c1", "padding": 1, "name": "stem"},
            {"op": "batchnorm2d", "weight": "bn.w", "bias": "bn.b",
             "running_mean": "bn.m", "running_var": "bn.v"},
            {"op": "relu", "name": "branch"},
            {"op": "add", "inputs": ["branch", "stem"], "name": "sum"},
            {"op": "global_avgpool"},
            {"op": "batchnorm1d", "weight": "b1.w", "bias": "b1.b",
             "running_mean": "b1.m", "running_var": "b1.v", "eps": 0.001},
            {"op": "linear", "weight": "fc", "input": "op-less-name-is-not-needed"}
        ]}),
    );
    // The last op names an input that does not exist.
    let err = spec.op_inputs().unwrap_err();
    assert_eq!(
        err.to_string(),
        "op 6 (linear): input `op-less-name-is-not-needed` is not the name of an earlier op or `input`"
    );
    let mut spec = spec;
    spec.ops[6].input = None;
    assert_eq!(
        spec.op_inputs().unwrap(),
        [
            vec![0],
            vec![1],
            vec![2],
            vec![3, 1],
            vec![4],
            vec![5],
            vec![6]
        ]
    );
    let t: BTreeMap<String, Vec<usize>> = [
        ("c1", vec![3, 2, 3, 3]),
        ("fc", vec![5, 3]),
        ("bn.w", vec![3]),
        ("bn.b", vec![3]),
        ("bn.m", vec![3]),
        ("bn.v", vec![3]),
        ("b1.w", vec![3]),
        ("b1.b", vec![3]),
        ("b1.m", vec![3]),
        ("b1.v", vec![3]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let g = spec.check_tensors(&t).unwrap();
    assert!(!g.is_chain());
    assert_eq!(g.shapes[4], Shape::Chw(3, 4, 4));
    assert_eq!(g.shapes[5], Shape::Flat(3));
    assert_eq!(g.shapes[7], Shape::Flat(5));
    assert_eq!(g.consumers()[1], [1, 3]);
    // The JSON form survives a round trip, eps included.
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        json["ops"][3]["inputs"],
        serde_json::json!(["branch", "stem"])
    );
    assert_eq!(json["ops"][5]["eps"], serde_json::json!(0.001));
    assert_eq!(serde_json::from_value::<ArchSpec>(json).unwrap(), spec);
    // A batchnorm tensor of the wrong width is named with both shapes.
    let mut bad = t.clone();
    bad.insert("bn.v".into(), vec![2]);
    assert_eq!(
        spec.check_tensors(&bad).unwrap_err(),
        ArchError::ShapeMismatch {
            name: "bn.v".into(),
            expected: vec![3],
            got: vec![2]
        }
    );
}

#[test]
fn wiring_mistakes_are_named() {
    let spec = |ops: serde_json::Value| {
        parse(serde_json::json!({"name": "w", "input": [1, 4, 4], "ops": ops}))
    };
    let conv = |extra: serde_json::Value| {
        let mut c = serde_json::json!({"op": "conv2d", "weight": "c"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    let dup = spec(
        serde_json::json!([conv(serde_json::json!({"name": "a"})), {"op": "relu", "name": "a"}]),
    );
    assert!(matches!(
        dup.op_inputs(),
        Err(ArchError::DuplicateName { index: 1, .. })
    ));
    let reserved = spec(serde_json::json!([conv(
        serde_json::json!({"name": "input"})
    )]));
    assert!(matches!(
        reserved.op_inputs(),
        Err(ArchError::DuplicateName { index: 0, .. })
    ));
    let unnamed_add = spec(serde_json::json!([conv(serde_json::json!({})), {"op": "add"}]));
    assert_eq!(
        unnamed_add.op_inputs().unwrap_err().to_string(),
        "op 1 (add): reads 2 values: name them with `inputs`"
    );
    let both = spec(serde_json::json!([{"op": "relu", "input": "input", "inputs": ["input"]}]));
    assert!(matches!(
        both.op_inputs(),
        Err(ArchError::BadOp { index: 0, .. })
    ));
    // A dead branch: op 0's output is never read (op 1 reads the input again).
    let dead =
        spec(serde_json::json!([conv(serde_json::json!({})), {"op": "relu", "input": "input"}]));
    assert_eq!(
        dead.op_inputs().unwrap_err().to_string(),
        "op 0 (conv2d): its output is never used"
    );
    // Self reference is not allowed: a name is bound after the op's inputs are read.
    let own = spec(serde_json::json!([{"op": "relu", "name": "r", "input": "r"}]));
    assert!(matches!(
        own.op_inputs(),
        Err(ArchError::UnknownInput { .. })
    ));
    let bn1 = spec(
        serde_json::json!([{"op": "batchnorm1d", "weight": "a", "bias": "b",
        "running_mean": "c", "running_var": "d"}]),
    );
    assert!(
        bn1.shapes_with(|_| None)
            .unwrap_err()
            .to_string()
            .contains("use batchnorm2d")
    );
}

#[test]
fn the_bn_presets_infer_their_documented_shapes() {
    let lookup = |name: &'static str| {
        let t = preset_tensors(name).unwrap();
        move |n: &str| t.get(n).cloned()
    };
    let cnn = preset("cnn-bn").unwrap();
    let g = cnn.graph_with(lookup("cnn-bn")).unwrap();
    assert!(g.is_chain());
    assert_eq!(g.shapes[8], Shape::Chw(32, 7, 7));
    assert_eq!(g.shapes[9], Shape::Flat(1568));
    assert_eq!(g.shapes.last(), Some(&Shape::Flat(10)));
    // 3 weights, 3 batchnorms of 4 tensors, the head's bias.
    assert_eq!(cnn.tensor_names().len(), 3 + 3 * 4 + 2);

    let res = preset("resnet-mini").unwrap();
    let g = res.graph_with(lookup("resnet-mini")).unwrap();
    let out = |name: &str| {
        let i = res
            .ops
            .iter()
            .position(|n| n.name.as_deref() == Some(name))
            .unwrap();
        g.output_shape(i)
    };
    assert_eq!(out("stem"), Shape::Chw(16, 14, 14));
    assert_eq!(out("layer1"), Shape::Chw(16, 14, 14));
    assert_eq!(out("layer2.shortcut"), Shape::Chw(32, 7, 7));
    assert_eq!(out("layer3"), Shape::Chw(32, 7, 7));
    assert_eq!(g.shapes.last(), Some(&Shape::Flat(10)));
    let adds = res.op_list().filter(|op| matches!(op, Op::Add {})).count();
    assert_eq!(adds, 3);
    // 8 convolutions, 8 batchnorms of 4 tensors, the head's weight and bias.
    assert_eq!(res.tensor_names().len(), 8 + 8 * 4 + 2);
    for name in ["mnist-cnn", "cnn-bn", "resnet-mini"] {
        let spec = preset(name).unwrap();
        assert!(
            spec.check_tensors(&preset_tensors(name).unwrap()).is_ok(),
            "{name}"
        );
        assert!(spec.check_without_weights().is_ok(), "{name}");
    }
}

#[test]
fn residual_branches_of_different_shapes_are_refused_naming_the_add_and_both_shapes() {
    // resnet-mini without layer2's projection: the add joins 32×7×7 with layer1's 16×14×14.
    let mut spec = preset("resnet-mini").unwrap();
    spec.ops
        .retain(|n| !n.op.tensors().iter().any(|t| t.contains("shortcut")));
    let add = spec
        .ops
        .iter()
        .position(|n| n.inputs.as_ref().is_some_and(|i| i[1] == "layer2.shortcut"))
        .unwrap();
    spec.ops[add].inputs = Some(vec!["layer2.bn2".into(), "layer1".into()]);
    spec.ops[add].name = Some("layer2.sum".into());
    let mut t = preset_tensors("resnet-mini").unwrap();
    t.retain(|k, _| !k.contains("shortcut"));
    let err = spec.check_tensors(&t).unwrap_err();
    assert_eq!(
        err,
        ArchError::BranchMismatch {
            index: add,
            add: "add `layer2.sum`".into(),
            branches: Box::new(Branches {
                left: "layer2.bn2".into(),
                left_shape: Shape::Chw(32, 7, 7),
                right: "layer1".into(),
                right_shape: Shape::Chw(16, 14, 14),
            }),
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "op {add} (add `layer2.sum`): its inputs disagree in shape: `layer2.bn2` is Chw(32, 7, 7), `layer1` is Chw(16, 14, 14)"
        )
    );
    // The weightless check (POST /v1/architectures) sees it too.
    assert!(matches!(
        spec.check_without_weights(),
        Err(ArchError::BranchMismatch { .. })
    ));
}
