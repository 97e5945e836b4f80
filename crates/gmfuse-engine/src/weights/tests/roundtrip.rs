//! Round trips, rounding on output, interoperability with the `safetensors` crate, seed models.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use proptest::prelude::*;

use super::file;
use crate::weights::{DType, Tensor, TensorInfo, WeightSet, WeightsError, inspect};

fn tensor(dtype: DType, shape: &[usize], values: Vec<f64>) -> Tensor {
    let data = ArrayD::from_shape_vec(IxDyn(shape), values).unwrap();
    Tensor { dtype, data }
}

/// Every tensor as (name, dtype, shape, f64 bit patterns): equality that tells -0.0 from 0.0.
fn bits(w: &WeightSet) -> Vec<(String, DType, Vec<usize>, Vec<u64>)> {
    let to_bits = |t: &Tensor| t.data.iter().map(|v| v.to_bits()).collect();
    let tensors = w.tensors.iter();
    tensors
        .map(|(n, t)| (n.clone(), t.dtype, t.data.shape().to_vec(), to_bits(t)))
        .collect()
}

fn round_trip(w: &WeightSet) -> WeightSet {
    WeightSet::from_bytes(&w.to_bytes().unwrap()).unwrap()
}

/// The value `v` takes after being written as `dtype` and read back.
fn stored(dtype: DType, v: f64) -> f64 {
    let mut w = WeightSet::default();
    w.tensors.insert("x".into(), tensor(dtype, &[1], vec![v]));
    round_trip(&w).tensors["x"].data[[0]]
}

fn sample() -> WeightSet {
    let mut w = WeightSet::default();
    let f32s = [1.0, -0.0, f32::MIN_POSITIVE / 8.0, f32::MAX, 0.1, -3.25];
    let f32s = f32s.iter().map(|&v| f64::from(v)).collect();
    w.tensors
        .insert("conv.weight".into(), tensor(DType::F32, &[1, 2, 3], f32s));
    let halfs = vec![1.0, -2.5, 65504.0, 2f64.powi(-24)];
    w.tensors
        .insert("h".into(), tensor(DType::F16, &[2, 2], halfs));
    let bf16s = vec![1.0, -3.0e38, 2f64.powi(-133)];
    w.tensors
        .insert("b".into(), tensor(DType::BF16, &[3], bf16s));
    let f64s = vec![0.1, f64::MAX, -f64::MIN_POSITIVE / 1024.0];
    w.tensors
        .insert("fc.bias".into(), tensor(DType::F64, &[3], f64s));
    w.metadata.insert("job".into(), "7 \"quoted\" ü".into());
    w.metadata.insert("method".into(), "gamf".into());
    w
}

#[test]
fn round_trips_every_dtype_bit_exactly_with_names_shapes_and_metadata() {
    // -3.0e38 is not a BF16 value; use the one it rounds to so the set is representable.
    let mut w = sample();
    let b = w.tensors.get_mut("b").unwrap();
    b.data[[1]] = half::bf16::from_f64(-3.0e38).to_f64();
    let back = round_trip(&w);
    assert_eq!(bits(&back), bits(&w));
    assert_eq!(back.metadata, w.metadata);
    assert_eq!(back.infos(), w.infos());
    let expected = TensorInfo {
        name: "b".into(),
        dtype: DType::BF16,
        shape: vec![3],
    };
    assert_eq!(w.infos()[0], expected);
    assert_eq!(w.shapes()["conv.weight"], [1, 2, 3]);
    assert_eq!(inspect(&w.to_bytes().unwrap()).unwrap(), w.infos());
}

#[test]
fn writes_deterministic_aligned_bytes_largest_dtype_first() {
    let mut w = WeightSet::default();
    w.tensors
        .insert("a".into(), tensor(DType::F16, &[1], vec![1.0]));
    w.tensors
        .insert("b".into(), tensor(DType::F32, &[2], vec![2.0, 0.5]));
    w.metadata.insert("k".into(), "v".into());
    let bytes = w.to_bytes().unwrap();
    let header = r#"{"__metadata__":{"k":"v"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}}"#;
    let padded = format!("{header:<136}"); // 133 bytes, padded to a multiple of 8
    // 2.0f32 = 0x40000000, 0.5f32 = 0x3F000000, 1.0f16 = 0x3C00, all little-endian.
    let data = [0, 0, 0, 0x40, 0, 0, 0, 0x3F, 0x00, 0x3C];
    assert_eq!(bytes, file(&padded, &data));
    assert_eq!(w.to_bytes().unwrap(), bytes);
}

#[test]
fn writes_non_standard_layouts_in_row_major_order() {
    let f = ArrayD::from_shape_vec(IxDyn(&[2, 3]).f(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    let mut w = WeightSet::default();
    let t = Tensor {
        dtype: DType::F64,
        data: f.unwrap(),
    };
    w.tensors.insert("t".into(), t);
    let back = round_trip(&w);
    let row_major: Vec<f64> = back.tensors["t"].data.iter().copied().collect();
    assert_eq!(row_major, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(back, w);
}

#[test]
fn narrowing_rounds_to_nearest_with_ties_to_even() {
    let p = |e: i32| 2f64.powi(e);
    // F16 has 10 fraction bits: 1 + 2^-11 is the midpoint of 1 and 1 + 2^-10.
    assert_eq!(stored(DType::F16, 1.0 + p(-11)), 1.0);
    assert_eq!(stored(DType::F16, 1.0 + 3.0 * p(-11)), 1.0 + p(-9));
    assert_eq!(stored(DType::F16, 1.0 + p(-11) + p(-40)), 1.0 + p(-10));
    assert_eq!(
        stored(DType::F16, -(1.0 + p(-11) + p(-40))),
        -(1.0 + p(-10))
    );
    // `half` alone truncates the 2^-40 and rounds the tie down: the case the f32 round-to-odd
    // step exists for.
    assert_eq!(half::f16::from_f64(1.0 + p(-11) + p(-40)).to_f64(), 1.0);
    // Subnormal F16: the smallest is 2^-24; 2^-25 is a tie with 0, 2^-25 + 2^-50 is not.
    assert_eq!(stored(DType::F16, p(-25)), 0.0);
    assert_eq!(stored(DType::F16, p(-25) + p(-50)), p(-24));
    // BF16 has 7 fraction bits.
    assert_eq!(stored(DType::BF16, 1.0 + p(-8)), 1.0);
    assert_eq!(stored(DType::BF16, 1.0 + p(-8) + p(-40)), 1.0 + p(-7));
    // F32 has 23 fraction bits.
    assert_eq!(stored(DType::F32, 1.0 + p(-24)), 1.0);
    assert_eq!(stored(DType::F32, 1.0 + p(-24) + p(-40)), 1.0 + p(-23));
    assert_eq!(stored(DType::F32, 0.1), f64::from(0.1f32));
    // The largest F16 is 65504; the next step would be 65536, so 65520 is the midpoint.
    assert_eq!(stored(DType::F16, 65519.0), 65504.0);
}

#[test]
fn refuses_to_write_values_that_are_non_finite_or_overflow_their_dtype() {
    let cases = [
        (DType::F16, 65520.0, true),
        (DType::BF16, 3.4e38, true),
        (DType::F32, 1e39, true),
        (DType::F64, f64::NAN, false),
        (DType::F32, f64::NEG_INFINITY, false),
    ];
    for (dtype, value, overflow) in cases {
        let mut w = WeightSet::default();
        w.tensors
            .insert("w".into(), tensor(dtype, &[2], vec![0.0, value]));
        let name = "w".to_string();
        let expected = if overflow {
            WeightsError::NotRepresentable {
                name,
                index: 1,
                value,
                dtype,
            }
        } else {
            WeightsError::NonFinite { name, index: 1 }
        };
        assert_eq!(w.to_bytes(), Err(expected), "{dtype} {value}");
    }
    let mut w = WeightSet::default();
    w.tensors
        .insert("__metadata__".into(), tensor(DType::F32, &[0], vec![]));
    assert_eq!(w.to_bytes(), Err(WeightsError::ReservedName));
}

#[test]
fn output_is_read_by_the_safetensors_crate_and_its_output_by_us() {
    let mut w = sample();
    w.tensors.remove("b");
    let bytes = w.to_bytes().unwrap();
    let theirs = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = theirs.tensor("conv.weight").unwrap();
    assert_eq!(view.shape(), [1, 2, 3]);
    assert_eq!(view.dtype(), safetensors::Dtype::F32);
    assert_eq!(view.data()[..4], 1f32.to_le_bytes());
    assert_eq!(theirs.len(), 3);

    let rebuilt: Vec<(String, safetensors::tensor::TensorView<'_>)> = theirs.tensors();
    let meta = Some(w.metadata.clone().into_iter().collect());
    let again = safetensors::tensor::serialize(rebuilt, meta).unwrap();
    let back = WeightSet::from_bytes(&again).unwrap();
    assert_eq!(bits(&back), bits(&w));
    assert_eq!(back.metadata, w.metadata);
}

/// Values of `dtype` drawn from all its finite bit patterns, widened to f64.
fn value(dtype: DType) -> BoxedStrategy<f64> {
    match dtype {
        DType::F16 => any::<u16>()
            .prop_map(|b| half::f16::from_bits(b).to_f64())
            .boxed(),
        DType::BF16 => any::<u16>()
            .prop_map(|b| half::bf16::from_bits(b).to_f64())
            .boxed(),
        DType::F32 => any::<u32>()
            .prop_map(|b| f64::from(f32::from_bits(b)))
            .boxed(),
        DType::F64 => any::<u64>().prop_map(f64::from_bits).boxed(),
    }
    .prop_filter("finite", |v| v.is_finite())
    .boxed()
}

fn any_tensor() -> impl Strategy<Value = Tensor> {
    let dtype = prop_oneof![
        Just(DType::F16),
        Just(DType::BF16),
        Just(DType::F32),
        Just(DType::F64)
    ];
    (dtype, prop::collection::vec(0usize..5, 0..=3)).prop_flat_map(|(dtype, shape)| {
        let n: usize = shape.iter().product();
        prop::collection::vec(value(dtype), n).prop_map(move |v| tensor(dtype, &shape, v))
    })
}

proptest! {
    #[test]
    fn random_weight_sets_survive_a_round_trip(
        tensors in prop::collection::btree_map("[a-z][a-z0-9_.]{0,10}", any_tensor(), 0..5),
        metadata in prop::collection::btree_map(".{0,8}", ".{0,8}", 0..3),
    ) {
        let w = WeightSet { tensors, metadata };
        let back = round_trip(&w);
        prop_assert_eq!(bits(&back), bits(&w));
        prop_assert_eq!(back.metadata, w.metadata);
    }
}

/// `GMFUSE_SEED_MODELS`, else `shared/data/seed-models` next to the checkout (`/work/main`) or
/// one level further up (worktrees under `/work/wt`).
fn seed_models_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let from_env = std::env::var_os("GMFUSE_SEED_MODELS").map(PathBuf::from);
    let near = [
        "../shared/data/seed-models",
        "../../shared/data/seed-models",
    ];
    from_env
        .into_iter()
        .chain(near.into_iter().map(|rel| root.join(rel)))
        .find(|dir| dir.is_dir())
}

#[test]
fn reads_the_seed_model_and_rewrites_its_data_bit_exactly() {
    let Some(dir) = seed_models_dir() else {
        eprintln!(
            "SKIPPED: seed models not found; set GMFUSE_SEED_MODELS to shared/data/seed-models"
        );
        return;
    };
    let bytes = std::fs::read(dir.join("model1.safetensors")).unwrap();
    let w = WeightSet::from_bytes(&bytes).unwrap();
    let expected: BTreeMap<String, Vec<usize>> = [
        ("conv1.weight", vec![32, 1, 5, 5]),
        ("conv2.weight", vec![64, 32, 5, 5]),
        ("fc1.weight", vec![32, 3136]),
        ("fc2.weight", vec![10, 32]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(w.shapes(), expected);
    assert!(w.tensors.values().all(|t| t.dtype == DType::F32));
    // First values of conv1.weight, read with Python's struct.unpack('<3f') from the file.
    let first: Vec<f64> = w.tensors["conv1.weight"]
        .data
        .iter()
        .take(3)
        .copied()
        .collect();
    let python = [
        0.1717938482761383,
        0.24048379063606262,
        -0.050361696630716324,
    ];
    assert_eq!(first, python);
    // Same tensor order (all F32, names sorted), so the data sections must match byte for byte.
    let out = w.to_bytes().unwrap();
    let data_start = |b: &[u8]| 8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    assert_eq!(out[data_start(&out)..], bytes[data_start(&bytes)..]);
}
