//! Generators of malformed inputs: safetensors bodies, architecture documents, job documents
//! and dataset uploads, each with a label saying what is wrong with it. Shared by the
//! malformed-corpus API test and the mutation fuzzer (`tests/fuzz.rs`).

#![allow(dead_code)]

mod documents;
mod idx;

pub use documents::{architecture_cases, job_cases};
pub use idx::{idx, idx_cases};

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
