//! Malformed JSON documents: architectures and job submissions, each labelled.

use serde_json::{Value, json};

fn arch(name: &str, input: Value, ops: Value) -> Value {
    json!({"name": name, "input": input, "ops": ops})
}

/// Malformed architecture documents, as raw JSON text.
pub fn architecture_cases() -> Vec<(String, String)> {
    let tail = [
        json!({"op": "flatten"}),
        json!({"op": "linear", "weight": "l.w"}),
    ];
    let ops = |head: Vec<Value>| {
        let mut all = head;
        all.extend(tail.iter().cloned());
        Value::Array(all)
    };
    let i28 = json!([1, 28, 28]);
    let mut out: Vec<(String, Value)> = Vec::new();
    for pad in [257, 1000, 100_000, u32::MAX as u64, u64::MAX] {
        out.push((
            format!("pad2d {pad}"),
            arch(
                "p",
                i28.clone(),
                ops(vec![json!({"op": "pad2d", "mode": "zero", "padding": pad})]),
            ),
        ));
        out.push((
            format!("conv padding {pad}"),
            arch(
                "p",
                i28.clone(),
                ops(vec![json!({"op": "conv2d", "weight": "c", "padding": pad})]),
            ),
        ));
    }
    for k in [0u64, 29, 257, 5000, 1 << 40] {
        out.push((
            format!("maxpool kernel {k}"),
            arch(
                "k",
                i28.clone(),
                ops(vec![json!({"op": "maxpool2d", "kernel": k})]),
            ),
        ));
        out.push((
            format!("avgpool kernel {k}"),
            arch(
                "k",
                i28.clone(),
                ops(vec![json!({"op": "avgpool2d", "kernel": k})]),
            ),
        ));
    }
    for s in [0, 257, 1_000_000, u64::MAX] {
        out.push((
            format!("conv stride {s}"),
            arch(
                "s",
                i28.clone(),
                ops(vec![json!({"op": "conv2d", "weight": "c", "stride": s})]),
            ),
        ));
        out.push((
            format!("pool stride {s}"),
            arch(
                "s",
                i28.clone(),
                ops(vec![json!({"op": "maxpool2d", "kernel": 2, "stride": s})]),
            ),
        ));
    }
    out.push((
        "pool padding over half the kernel".into(),
        arch(
            "pp",
            i28.clone(),
            ops(vec![json!({"op": "maxpool2d", "kernel": 2, "padding": 2})]),
        ),
    ));
    for input in [
        json!([0, 28, 28]),
        json!([1, 0, 28]),
        json!([1, 28, 0]),
        json!([1, 5000, 5000]),
        json!([70000, 1, 1]),
        json!([1, 28]),
        json!([1, 28, 28, 1]),
        json!([-1, 28, 28]),
        json!([1.5, 28, 28]),
        json!("28x28"),
        json!([u64::MAX, u64::MAX, u64::MAX]),
    ] {
        out.push((format!("input {input}"), arch("i", input, ops(vec![]))));
    }
    out.push((
        "16 stacked pads on 64 channels".into(),
        arch(
            "st",
            json!([64, 28, 28]),
            ops(vec![
                json!({"op": "pad2d", "mode": "replicate", "padding": 256});
                16
            ]),
        ),
    ));
    out.push((
        "600 relus".into(),
        arch("deep", i28.clone(), ops(vec![json!({"op": "relu"}); 600])),
    ));
    out.push((
        "100000 relus".into(),
        arch(
            "deeper",
            i28.clone(),
            ops(vec![json!({"op": "relu"}); 100_000]),
        ),
    ));
    for (label, op) in [
        ("unknown op", json!({"op": "softmax"})),
        ("op without a name", json!({"weight": "x"})),
        ("op a string", json!("relu")),
        ("conv without weight", json!({"op": "conv2d"})),
        ("conv weight a number", json!({"op": "conv2d", "weight": 3})),
        (
            "unknown pad mode",
            json!({"op": "pad2d", "mode": "reflect", "padding": 1}),
        ),
        ("extra field", json!({"op": "relu", "inplace": true})),
        (
            "negative padding",
            json!({"op": "pad2d", "mode": "zero", "padding": -1}),
        ),
        ("float kernel", json!({"op": "maxpool2d", "kernel": 2.5})),
        (
            "linear before flatten",
            json!({"op": "linear", "weight": "early"}),
        ),
    ] {
        out.push((label.into(), arch("o", i28.clone(), ops(vec![op]))));
    }
    out.push(("no ops".into(), arch("none", i28.clone(), json!([]))));
    out.push((
        "no weighted layer".into(),
        arch(
            "nw",
            i28.clone(),
            json!([{"op": "relu"}, {"op": "flatten"}]),
        ),
    ));
    out.push((
        "output not flat".into(),
        arch("nf", i28.clone(), json!([{"op": "conv2d", "weight": "c"}])),
    ));
    out.push(("tensor used twice".into(), arch("tw", i28.clone(), json!([{"op": "flatten"}, {"op": "linear", "weight": "w"}, {"op": "linear", "weight": "w"}]))));
    for name in [
        "",
        "Has Caps",
        "space here",
        "../etc",
        &"x".repeat(65),
        "mnist-cnn",
    ] {
        out.push((
            format!("name {name:?}"),
            arch(name, i28.clone(), ops(vec![])),
        ));
    }
    out.push((
        "missing name".into(),
        json!({"input": [1, 28, 28], "ops": []}),
    ));
    out.push((
        "missing ops".into(),
        json!({"name": "x", "input": [1, 28, 28]}),
    ));
    out.push((
        "unknown field".into(),
        json!({"name": "x", "input": [1, 28, 28], "ops": [], "extra": 1}),
    ));
    out.push(("an array".into(), json!([1, 2, 3])));
    out.push(("null".into(), Value::Null));
    let mut text: Vec<(String, String)> =
        out.into_iter().map(|(l, v)| (l, v.to_string())).collect();
    for depth in [200, 10_000] {
        text.push((
            format!("nested {depth} deep"),
            format!(
                r#"{{"name":"d","input":[1,28,28],"ops":{}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            ),
        ));
    }
    text.push(("not JSON".into(), "{name: x}".into()));
    text.push(("truncated".into(), r#"{"name":"x","input":[1,28"#.into()));
    text
}

/// Malformed job documents for two valid model ids `a` and `b`, as raw JSON text.
pub fn job_cases(a: &str, b: &str) -> Vec<(String, String)> {
    let base = json!({"models": [a, b], "architecture": "mnist-cnn", "dataset": "mnist-test"});
    let with = |k: &str, v: Value| {
        let mut j = base.clone();
        j[k] = v;
        j
    };
    let missing = "0192d4e2-7a4b-7cc1-8e0c-3f5a1b2c3d4e";
    let mut out: Vec<(String, Value)> = vec![
        ("no models".into(), with("models", json!([]))),
        ("one model".into(), with("models", json!([a]))),
        (
            "a model twice in three".into(),
            with("models", json!([a, b, a])),
        ),
        (
            "nine models".into(),
            with("models", json!([a, b, a, b, a, b, a, b, a])),
        ),
        ("an anchor for two models".into(), with("anchor", json!(0))),
        ("models not UUIDs".into(), with("models", json!(["x", "y"]))),
        ("models numbers".into(), with("models", json!([1, 2]))),
        ("models a string".into(), with("models", json!(a))),
        (
            "an unknown model".into(),
            with("models", json!([a, missing])),
        ),
        (
            "an unknown architecture".into(),
            with("architecture", json!("nope")),
        ),
        (
            "architecture a number".into(),
            with("architecture", json!(7)),
        ),
        ("an unknown dataset".into(), with("dataset", json!("nope"))),
        (
            "a dataset id that is not there".into(),
            with("dataset", json!(missing)),
        ),
        ("an unknown method".into(), with("method", json!("magic"))),
        ("an unknown compat".into(), with("compat", json!("other"))),
        ("no proportions".into(), with("proportions", json!([]))),
        (
            "102 proportions".into(),
            with("proportions", json!(vec![0.5; 102])),
        ),
        (
            "100000 proportions".into(),
            with("proportions", json!(vec![0.5; 100_000])),
        ),
        (
            "proportions not numbers".into(),
            with("proportions", json!(["a"])),
        ),
        (
            "proportions a number".into(),
            with("proportions", json!(0.5)),
        ),
        ("unknown field".into(), with("priority", json!(1))),
        (
            "solver unknown field".into(),
            with("solver", json!({"steps": 3})),
        ),
        ("solver a list".into(), with("solver", json!([1]))),
        ("an array".into(), json!([a, b])),
        ("null".into(), Value::Null),
        ("a string".into(), json!("job")),
        (
            "a huge architecture name".into(),
            with("architecture", json!("a".repeat(500_000))),
        ),
    ];
    for p in [-0.1, 1.5, 1e308, -1e308, 2.0] {
        out.push((
            format!("proportion {p}"),
            with("proportions", json!([0.0, p])),
        ));
    }
    for it in [
        json!(0),
        json!(10_001),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!("50"),
    ] {
        out.push((
            format!("max_iter {it}"),
            with("solver", json!({"max_iter": it})),
        ));
    }
    for tol in [json!(0.0), json!(-1.0), json!("x")] {
        out.push((format!("tol {tol}"), with("solver", json!({"tol": tol}))));
    }
    let mut text: Vec<(String, String)> =
        out.into_iter().map(|(l, v)| (l, v.to_string())).collect();
    text.push((
        "NaN proportion".into(),
        base.to_string()
            .replace("\"dataset\"", "\"proportions\":[NaN],\"dataset\""),
    ));
    text.push((
        "Infinity proportion".into(),
        base.to_string()
            .replace("\"dataset\"", "\"proportions\":[Infinity],\"dataset\""),
    ));
    for depth in [200, 10_000] {
        text.push((
            format!("nested {depth} deep"),
            format!(r#"{{"models":{}{}}}"#, "[".repeat(depth), "]".repeat(depth)),
        ));
    }
    text.push(("not JSON".into(), "models=a,b".into()));
    text.push(("empty".into(), String::new()));
    text
}
