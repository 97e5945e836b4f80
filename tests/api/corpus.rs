//! Generators of malformed inputs: safetensors bodies, architecture documents, job documents
//! and dataset uploads, each with a label saying what is wrong with it. Shared by the
//! malformed-corpus API test and the mutation fuzzer (`tests/fuzz.rs`).

#![allow(dead_code)]

use serde_json::{Value, json};

/// A safetensors file from a header text and a data section.
pub fn raw(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

fn f32s(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A small valid file: two F32 tensors and metadata.
pub fn valid_safetensors() -> Vec<u8> {
    let header = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[3],"data_offsets":[16,28]}}"#;
    raw(header, &f32s(&[1.0, -2.0, 0.5, 3.0, 4.0, 5.0, 6.0]))
}

/// A deterministic xorshift generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// One tensor entry.
fn entry(name: &str, dtype: &str, shape: &str, offsets: &str) -> String {
    format!(r#""{name}":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}"#)
}

/// Hand-written malformed safetensors files (every one is invalid by construction).
pub fn safetensors_cases() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut push = |label: &str, bytes: Vec<u8>| out.push((label.to_string(), bytes));
    let d16 = f32s(&[1.0, 2.0, 3.0, 4.0]);
    push("empty body", vec![]);
    for n in 1..8 {
        push(&format!("{n}-byte body"), vec![7; n]);
    }
    for len in [u64::MAX, 1 << 63, 1 << 40, (16 << 20) + 1, 1000] {
        let mut b = len.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        push(&format!("header length {len}"), b);
    }
    push("zero-length header", raw(b"", &d16));
    push("header not UTF-8", raw(&[b'{', 0xff, 0xfe, b'}'], &[]));
    push(
        "header with a lone surrogate",
        raw(br#"{"\ud800":{}}"#, &[]),
    );
    for (label, h) in [
        ("not JSON", "not json at all"),
        ("a JSON array", "[1,2,3]"),
        ("a JSON string", r#""x""#),
        ("a JSON number", "42"),
        ("truncated JSON", r#"{"a":{"dtype":"F32""#),
        ("trailing garbage", "{} {}"),
        ("metadata not a map", r#"{"__metadata__":[1]}"#),
        ("metadata with a number", r#"{"__metadata__":{"k":1}}"#),
        (
            "metadata with a nested map",
            r#"{"__metadata__":{"k":{"x":"y"}}}"#,
        ),
        (
            "metadata with a duplicate key",
            r#"{"__metadata__":{"k":"a","k":"b"}}"#,
        ),
        (
            "two metadata maps",
            r#"{"__metadata__":{},"__metadata__":{}}"#,
        ),
        ("entry not an object", r#"{"a":5}"#),
        ("entry is null", r#"{"a":null}"#),
        (
            "unknown field",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"#,
        ),
        (
            "duplicate field",
            r#"{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        ),
        (
            "missing dtype",
            r#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#,
        ),
        (
            "missing shape",
            r#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#,
        ),
        ("missing offsets", r#"{"a":{"dtype":"F32","shape":[1]}}"#),
        (
            "dtype a number",
            r#"{"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}}"#,
        ),
        (
            "shape a string",
            r#"{"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#,
        ),
        (
            "shape negative",
            r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
        ),
        (
            "shape float",
            r#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#,
        ),
        (
            "offsets one value",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}"#,
        ),
        (
            "offsets three values",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,2,4]}}"#,
        ),
        (
            "offsets negative",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#,
        ),
        (
            "offsets not numbers",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}"#,
        ),
    ] {
        push(label, raw(h.as_bytes(), &[0; 4]));
    }
    for dtype in ["I32", "U8", "BOOL", "F8_E4M3", "F4", "I64", "f32", ""] {
        let h = format!("{{{}}}", entry("a", dtype, "[4]", "[0,16]"));
        push(&format!("dtype {dtype:?}"), raw(h.as_bytes(), &d16));
    }
    for (label, shape, offsets, data) in [
        ("offsets reversed", "[4]", "[16,0]", 16),
        ("offsets past the end", "[4]", "[0,32]", 16),
        ("start past the end", "[1]", "[100,104]", 16),
        ("span shorter than shape", "[8]", "[0,16]", 16),
        ("span longer than shape", "[2]", "[0,16]", 16),
        (
            "shape overflows usize",
            "[18446744073709551615,2]",
            "[0,16]",
            16,
        ),
        (
            "shape product overflows",
            "[4294967296,4294967296]",
            "[0,16]",
            16,
        ),
        ("shape beyond u64", "[99999999999999999999]", "[0,16]", 16),
        (
            "huge but consistent shape",
            "[1073741824]",
            "[0,4294967296]",
            16,
        ),
        ("trailing bytes", "[2]", "[0,8]", 16),
        ("hole at the start", "[2]", "[8,16]", 16),
    ] {
        let h = format!("{{{}}}", entry("a", "F32", shape, offsets));
        push(label, raw(h.as_bytes(), &vec![0; data]));
    }
    let two = |a: &str, b: &str| format!("{{{a},{b}}}");
    for (label, h, data) in [
        (
            "overlapping tensors",
            two(
                &entry("a", "F32", "[3]", "[0,12]"),
                &entry("b", "F32", "[2]", "[8,16]"),
            ),
            16,
        ),
        (
            "identical spans",
            two(
                &entry("a", "F32", "[4]", "[0,16]"),
                &entry("b", "F32", "[4]", "[0,16]"),
            ),
            16,
        ),
        (
            "hole between tensors",
            two(
                &entry("a", "F32", "[1]", "[0,4]"),
                &entry("b", "F32", "[2]", "[8,16]"),
            ),
            16,
        ),
        (
            "duplicate tensor names",
            two(
                &entry("a", "F32", "[2]", "[0,8]"),
                &entry("a", "F32", "[2]", "[8,16]"),
            ),
            16,
        ),
        (
            "tensor named __metadata__",
            format!("{{{}}}", entry("__metadata__", "F32", "[4]", "[0,16]")),
            16,
        ),
    ] {
        push(label, raw(h.as_bytes(), &vec![0; data]));
    }
    for (label, bytes) in [
        ("NaN in F32", f32s(&[1.0, f32::NAN, 3.0, 4.0])),
        ("+Inf in F32", f32s(&[1.0, 2.0, 3.0, f32::INFINITY])),
        ("-Inf in F32", f32s(&[f32::NEG_INFINITY, 2.0, 3.0, 4.0])),
    ] {
        let h = format!("{{{}}}", entry("w", "F32", "[4]", "[0,16]"));
        push(label, raw(h.as_bytes(), &bytes));
    }
    let nan16 = [0x00u8, 0x7e, 0x00, 0x3c];
    let h = format!("{{{}}}", entry("w", "F16", "[2]", "[0,4]"));
    push("NaN in F16", raw(h.as_bytes(), &nan16));
    let h = format!("{{{}}}", entry("w", "BF16", "[2]", "[0,4]"));
    push("Inf in BF16", raw(h.as_bytes(), &[0x80, 0x7f, 0x80, 0x3f]));
    let h = format!("{{{}}}", entry("w", "F64", "[2]", "[0,16]"));
    let mut d = 1.0f64.to_le_bytes().to_vec();
    d.extend_from_slice(&f64::NAN.to_le_bytes());
    push("NaN in F64", raw(h.as_bytes(), &d));
    for depth in [64, 129, 1000, 100_000] {
        let h = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        push(&format!("JSON nested {depth} deep"), raw(h.as_bytes(), &[]));
        let h = format!(
            r#"{{"__metadata__":{}{}}}"#,
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        );
        push(
            &format!("metadata nested {depth} deep"),
            raw(h.as_bytes(), &[]),
        );
    }
    let h = format!(r#"{{"a":[{}0]}}"#, "0,".repeat(2_000_000));
    push("a header of two million values", raw(h.as_bytes(), &[]));
    let name = "n".repeat(200_000);
    let h = format!("{{{}}}", entry(&name, "F32", "[1]", "[0,4]"));
    push(
        "a 200 KB tensor name, NaN",
        raw(h.as_bytes(), &f32s(&[f32::NAN])),
    );
    out
}

/// Mutations of [`valid_safetensors`]: byte flips, truncations, insertions and splices,
/// `n` of them from `seed` (callers keep those the engine rejects).
pub fn safetensors_mutations(seed: u64, n: usize) -> Vec<(String, Vec<u8>)> {
    let base = valid_safetensors();
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|k| {
            let mut b = base.clone();
            let label = match rng.below(5) {
                0 => {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                    format!("mutation {k}: bit flip at {i}")
                }
                1 => {
                    let i = rng.below(b.len());
                    b[i] = rng.next_u64() as u8;
                    format!("mutation {k}: byte {i} replaced")
                }
                2 => {
                    let cut = rng.below(b.len());
                    b.truncate(cut);
                    format!("mutation {k}: truncated to {cut}")
                }
                3 => {
                    let i = rng.below(b.len());
                    let alphabet = b"{}[],:\"0-9e.\\";
                    let c = alphabet[rng.below(alphabet.len())];
                    b.insert(i, c);
                    format!("mutation {k}: {:?} inserted at {i}", c as char)
                }
                _ => {
                    let i = rng.below(b.len());
                    let j = rng.below(b.len());
                    b.swap(i, j);
                    format!("mutation {k}: bytes {i} and {j} swapped")
                }
            };
            (label, b)
        })
        .collect()
}

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

/// An IDX file: magic, big-endian dimensions, data.
pub fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Gzip `header` followed by `zeros` zero bytes, streaming (the output is small).
pub fn gzip_bomb(header: &[u8], zeros: usize) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(header).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len());
        enc.write_all(&block[..n]).unwrap();
        left -= n;
    }
    enc.finish().unwrap()
}

/// Malformed IDX dataset uploads: `(label, images, labels)`.
pub fn idx_cases() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let images = idx(2051, &[2, 28, 28], &[0; 2 * 784]);
    let labels = idx(2049, &[2], &[1, 2]);
    let mut out = vec![
        (
            "gzip bomb: 28x28 declared, 256 MiB inflated".to_string(),
            gzip_bomb(&idx(2051, &[1, 28, 28], &[]), 256 << 20),
            idx(2049, &[1], &[0]),
        ),
        (
            "gzip bomb: 300000 images declared".into(),
            gzip_bomb(&idx(2051, &[300_000, 28, 28], &[]), 64 << 20),
            idx(2049, &[300_000], &[]),
        ),
        (
            "declared 4 Gi pixels".into(),
            idx(2051, &[65536, 256, 256], &[]),
            labels.clone(),
        ),
        (
            "declared overflow".into(),
            idx(2052, &[u32::MAX, u32::MAX, u32::MAX, u32::MAX], &[]),
            labels.clone(),
        ),
        ("bad magic".into(), idx(2049, &[2], &[0, 1]), labels.clone()),
        (
            "truncated header".into(),
            images[..10].to_vec(),
            labels.clone(),
        ),
        ("short data".into(), images[..100].to_vec(), labels.clone()),
        (
            "trailing data".into(),
            [&images[..], &[1, 2, 3]].concat(),
            labels.clone(),
        ),
        (
            "label count mismatch".into(),
            images.clone(),
            idx(2049, &[3], &[1, 2, 3]),
        ),
        (
            "labels with image magic".into(),
            images.clone(),
            images.clone(),
        ),
        (
            "no samples".into(),
            idx(2051, &[0, 28, 28], &[]),
            idx(2049, &[0], &[]),
        ),
        (
            "zero width".into(),
            idx(2051, &[1, 28, 0], &[]),
            idx(2049, &[1], &[0]),
        ),
        (
            "bad gzip".into(),
            vec![0x1f, 0x8b, 8, 0, 1, 2, 3, 4],
            labels.clone(),
        ),
        ("empty images".into(), vec![], labels.clone()),
    ];
    let trailing_bomb = gzip_bomb(&images, 128 << 20);
    out.push(("gzip bomb after valid data".into(), trailing_bomb, labels));
    out
}
