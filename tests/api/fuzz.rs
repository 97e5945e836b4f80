//! A bounded mutation fuzzer on stable Rust for the three parsers that take untrusted bytes:
//! the safetensors reader (whole-file and streaming must agree), the ArchSpec parser and
//! validator (with the pre-flight estimate on random weight shapes), and the IDX reader (the
//! decoding and the scanning reader must agree). Seeds are valid inputs and the malformed
//! corpus; each execution applies 1–4 random mutations from a seeded xorshift generator. A panic
//! anywhere fails the test with the input that caused it.
//!
//! Each target runs for `GMFUSE_FUZZ_SECS` seconds (default 2; CI may give it more) and prints
//! its executions. `GMFUSE_FUZZ_SEED` picks another seed.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use gmfuse::engine::arch::{ArchSpec, preset};
use gmfuse::engine::estimate::{Workload, estimate};
use gmfuse::engine::eval::{Dataset, scan_idx};
use gmfuse::engine::pipeline::FusionParams;
use gmfuse::engine::weights::{StreamCheck, WeightSet, inspect};
use gmfuse::jobs::ingest::check_architecture;

use crate::corpus::{self, Rng};

fn budget() -> Duration {
    let secs = std::env::var("GMFUSE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn seed() -> u64 {
    std::env::var("GMFUSE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15)
}

const INTERESTING: [u64; 14] = [
    0,
    1,
    2,
    7,
    255,
    256,
    257,
    4096,
    65_536,
    1 << 24,
    1 << 31,
    1 << 32,
    1 << 63,
    u64::MAX,
];

/// 1–4 random mutations of `input`, sometimes splicing in a piece of `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len().max(1);
        match rng.below(8) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.below(len);
                let at = i.min(b.len());
                b.insert(at, b"{}[],:\"0123456789-e."[rng.below(20)]);
            }
            3 if !b.is_empty() => {
                let i = rng.below(b.len());
                let n = rng.below(16).min(b.len() - i);
                b.drain(i..i + n);
            }
            4 if !b.is_empty() => {
                let i = rng.below(b.len());
                let n = rng.below(64).min(b.len() - i);
                let piece = b[i..i + n].to_vec();
                let at = rng.below(b.len());
                b.splice(at..at, piece);
            }
            5 if !other.is_empty() => {
                let i = rng.below(other.len());
                let n = rng.below(64).min(other.len() - i);
                let at = rng.below(len).min(b.len());
                b.splice(at..at, other[i..i + n].iter().copied());
            }
            6 if b.len() >= 8 => {
                // An interesting little-endian integer (header lengths, offsets).
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let i = rng.below(b.len() - 7);
                b[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => {
                // An interesting decimal number in place of a digit run (JSON sizes).
                let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
                if let Some(&i) = digits.get(rng.below(digits.len().max(1))) {
                    let mut j = i;
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    let v = INTERESTING[rng.below(INTERESTING.len())].to_string();
                    b.splice(i..j, v.into_bytes());
                }
            }
        }
    }
    b
}

/// Run `target` on mutations of `seeds` for the time budget; returns executions.
fn fuzz(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8], &mut Rng)) -> u64 {
    let mut rng = Rng(seed() ^ name.len() as u64);
    let start = Instant::now();
    let mut runs = 0u64;
    while start.elapsed() < budget() {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, a, b);
        let mut inner = Rng(rng.next_u64() | 1);
        if catch_unwind(AssertUnwindSafe(|| target(&input, &mut inner))).is_err() {
            panic!(
                "{name}: panic on input {:?}",
                String::from_utf8_lossy(&input)
            );
        }
        runs += 1;
    }
    eprintln!(
        "fuzz {name}: {runs} executions in {:.1?}, 0 crashes",
        start.elapsed()
    );
    runs
}

#[test]
fn fuzz_safetensors_whole_and_streaming_readers_agree_and_never_panic() {
    let mut seeds: Vec<Vec<u8>> = vec![corpus::valid_safetensors()];
    seeds.extend(
        corpus::safetensors_cases()
            .into_iter()
            .map(|(_, b)| b)
            .filter(|b| b.len() < 64 << 10),
    );
    let runs = fuzz("safetensors", &seeds, |bytes, rng| {
        let whole = WeightSet::from_bytes(bytes).map(|_| inspect(bytes).expect("header valid"));
        let mut check = StreamCheck::new(bytes.len() as u64);
        let chunk = 1 + rng.below(97);
        let streamed = bytes
            .chunks(chunk)
            .try_for_each(|c| check.feed(c))
            .and_then(|()| check.finish());
        assert_eq!(streamed, whole, "chunk {chunk}");
    });
    assert!(runs > 100, "{runs}");
}

#[test]
fn fuzz_archspec_parser_validator_and_estimate_never_panic() {
    let mut seeds: Vec<Vec<u8>> = vec![
        serde_json::to_vec(&preset("mnist-cnn").unwrap()).unwrap(),
        br#"{"name":"t","input":[3,8,8],"ops":[{"op":"conv2d","weight":"c.w","bias":"c.b","padding":1,"stride":2},{"op":"relu"},{"op":"avgpool2d","kernel":2,"padding":1},{"op":"pad2d","mode":"zero","padding":1},{"op":"maxpool2d","kernel":3,"stride":1},{"op":"flatten"},{"op":"linear","weight":"l1.w","bias":"l1.b"},{"op":"linear","weight":"l2.w"}]}"#.to_vec(),
    ];
    seeds.extend(
        corpus::architecture_cases()
            .into_iter()
            .map(|(_, t)| t.into_bytes())
            .filter(|b| b.len() < 64 << 10),
    );
    let runs = fuzz("archspec", &seeds, |bytes, rng| {
        let Ok(spec) = serde_json::from_slice::<ArchSpec>(bytes) else {
            return;
        };
        let _ = check_architecture(&spec);
        let dims = [1usize, 2, 3, 5, 10, 64, 300, 70_000];
        let mut tensors = BTreeMap::new();
        for name in spec.tensor_names() {
            let rank = [1, 2, 4][rng.below(3)];
            let shape = (0..rank).map(|_| dims[rng.below(dims.len())]).collect();
            tensors.insert(name.to_string(), shape);
        }
        let _ = spec.check_shapes(&tensors);
        let _ = spec.shapes_with(|n| tensors.get(n).cloned());
        let params = FusionParams::default();
        let work = Workload {
            spec: &spec,
            tensors: &tensors,
            file_bytes: &[1000, 1000],
            params: &params,
            dataset_samples: 10_000,
            eval_samples: 1000,
            calibration_samples: 5000,
            threads: 2,
        };
        if let Ok(e) = estimate(&work) {
            assert!(e.peak_bytes >= e.common_bytes, "{e:?}");
        }
    });
    assert!(runs > 100, "{runs}");
}

#[test]
fn fuzz_idx_decoder_and_scanner_agree_and_never_panic() {
    use std::io::Write;
    let images = corpus::idx(
        2051,
        &[3, 2, 2],
        &[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 255],
    );
    let labels = corpus::idx(2049, &[3], &[1, 0, 9]);
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    // A seed is images and labels, joined by a marker the target splits on.
    const SEP: &[u8] = b"\n--8<--\n";
    let join = |i: &[u8], l: &[u8]| [i, SEP, l].concat();
    let seeds = vec![
        join(&images, &labels),
        join(&gz(&images), &labels),
        join(&images, &gz(&labels)),
        join(
            &corpus::idx(2052, &[2, 1, 1, 3], &[1, 2, 3, 4, 5, 6]),
            &corpus::idx(2049, &[2], &[0, 1]),
        ),
    ];
    let runs = fuzz("idx", &seeds, |bytes, _| {
        let at = bytes.windows(SEP.len()).position(|w| w == SEP);
        let (i, l) = match at {
            Some(p) => (&bytes[..p], &bytes[p + SEP.len()..]),
            None => (bytes, &b""[..]),
        };
        let decoded = Dataset::from_idx("f", i, l);
        let scanned = scan_idx(i, l);
        match (&decoded, &scanned) {
            (Ok(d), Ok(s)) => {
                assert_eq!((d.len() as u64, d.shape), (s.samples, s.shape));
                let min = d.labels.iter().min().copied().unwrap_or(0);
                let max = d.labels.iter().max().copied().unwrap_or(0);
                assert_eq!((min, max), (s.min_label, s.max_label));
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("decoder {decoded:?} and scanner {scanned:?} disagree"),
        }
    });
    assert!(runs > 100, "{runs}");
}
