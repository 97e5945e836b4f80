//! External data: gmfuse's exports with their initializers moved to one file (packed back to
//! back as onnx 1.23.2's `save_model(..., save_as_external_data=True)` writes them, and at
//! page-aligned offsets as `onnx.proto` recommends) and to a file per tensor inline back to the very bytes, weights and
//! logits ([`externalize`] writes that layout; `scripts/onnx-runtime-check.sh` checks the
//! reader against files onnx itself wrote); every malformed reference is refused naming the tensor and the location.

use prost::Message;

use super::roundtrip::{DEMOS, demo, pixels};
use crate::arch::preset_for;
use crate::forward::Network;
use crate::onnx::proto::{
    AttributeProto, ModelProto, NodeProto, StringStringEntryProto, TensorProto,
};
use crate::onnx::{
    EXTERNAL_ALIGN, ExternalFiles, ExternalRef, OnnxError, export, external_refs, externalize,
    inline_external, read,
};

/// Where `externalize` puts a tensor.
type FileOf<'a> = &'a dyn Fn(&str) -> String;

/// A budget that does not bind.
const ANY: usize = usize::MAX;

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(key.into()),
        value: Some(value.into()),
    }
}

/// The mnist-cnn demo model `a` exported, and it with its weights in `weights.bin`.
fn one_file() -> (Vec<u8>, Vec<u8>, ExternalFiles) {
    let (preset, dir) = DEMOS[0];
    let w = demo(dir, "model-a.safetensors");
    let original = export(&preset_for(preset, &w.shapes()).unwrap(), &w).unwrap();
    let (model, files) = externalize(&original, &|_| "weights.bin".into(), EXTERNAL_ALIGN).unwrap();
    (original, model, files)
}

/// `model` with `tensor`'s `external_data` passed through `edit`.
fn edit(model: &[u8], tensor: &str, edit: impl Fn(&mut TensorProto)) -> Vec<u8> {
    let mut m = ModelProto::decode(model).unwrap();
    let g = m.graph.as_mut().unwrap();
    edit(
        g.initializer
            .iter_mut()
            .find(|t| t.name.as_deref() == Some(tensor))
            .unwrap(),
    );
    m.encode_to_vec()
}

/// `model` with `key` of `tensor` set to `value` (added when absent).
fn set(model: &[u8], tensor: &str, key: &str, value: &str) -> Vec<u8> {
    edit(model, tensor, |t| {
        t.external_data.retain(|kv| kv.key.as_deref() != Some(key));
        t.external_data.push(entry(key, value));
    })
}

#[test]
fn every_demo_inlines_from_one_file_and_from_a_file_per_tensor_to_the_original_bytes() {
    for (preset, dir) in DEMOS {
        let w = demo(dir, "model-a.safetensors");
        let spec = preset_for(preset, &w.shapes()).unwrap();
        let original = export(&spec, &w).unwrap();
        let m = read(&original).unwrap();
        let x = pixels(8, spec.input.iter().product(), 3);
        let logits = Network::new(&m.spec, &m.weights).unwrap().logits(x.view());
        let layouts: [(&str, FileOf, usize); 3] = [
            ("one file, packed", &|_| "weights.bin".into(), 1),
            (
                "one file, aligned",
                &|_| "weights.bin".into(),
                EXTERNAL_ALIGN,
            ),
            ("a file per tensor", &|name| format!("data/{name}"), 1),
        ];
        for (layout, file_of, align) in layouts {
            let (model, files) = externalize(&original, file_of, align).unwrap();
            assert!(
                model.len() < original.len() / 10,
                "{dir} {layout}: moved out"
            );
            assert!(matches!(read(&model), Err(OnnxError::ExternalData { .. })));
            let refs = external_refs(&model).unwrap();
            assert_eq!(refs.len(), files.len(), "{dir} {layout}");
            let inlined = inline_external(&model, &files, ANY).unwrap();
            assert!(inlined == original, "{dir} {layout}: other bytes");
            let back = read(&inlined).unwrap();
            assert!(back.weights.tensors == m.weights.tensors, "{dir} {layout}");
            let y = Network::new(&back.spec, &back.weights)
                .unwrap()
                .logits(x.view());
            assert_eq!(y, logits, "{dir} {layout}");
        }
    }
}

#[test]
fn externalize_lays_the_tensors_out_at_page_aligned_offsets() {
    let (_, model, files) = one_file();
    let g = ModelProto::decode(model.as_slice()).unwrap().graph.unwrap();
    let layout: Vec<(&str, &str, &str)> = g
        .initializer
        .iter()
        .filter(|t| t.data_location == Some(1))
        .map(|t| {
            let v = |i: usize| t.external_data[i].value.as_deref().unwrap();
            (t.name.as_deref().unwrap(), v(1), v(2))
        })
        .collect();
    // f32 bytes of [32,1,5,5], [64,32,5,5], [32,3136], [10,32], each start rounded up to 4096.
    assert_eq!(
        layout,
        [
            ("conv1.weight", "0", "3200"),
            ("conv2.weight", "4096", "204800"),
            ("fc1.weight", "208896", "401408"),
            ("fc2.weight", "610304", "1280"),
        ]
    );
    assert_eq!(files["weights.bin"].len(), 611_584);
    assert_eq!(610_304 % EXTERNAL_ALIGN, 0);
}

#[test]
fn the_references_name_each_file_once_with_its_first_tensor() {
    let (_, model, _) = one_file();
    assert_eq!(
        external_refs(&model).unwrap(),
        [ExternalRef {
            location: "weights.bin".into(),
            tensor: "conv1.weight".into(),
        }]
    );
    let (original, _, _) = one_file();
    assert!(external_refs(&original).unwrap().is_empty());
    assert!(inline_external(&original, &ExternalFiles::new(), 0).unwrap() == original);
}

/// The error of inlining `model` with `files`, as text.
fn refused(model: &[u8], files: &ExternalFiles) -> String {
    inline_external(model, files, ANY).unwrap_err().to_string()
}

#[test]
fn a_missing_or_unreferenced_file_is_refused_naming_it() {
    let (_, model, files) = one_file();
    assert_eq!(
        refused(&model, &ExternalFiles::new()),
        "tensor `conv1.weight`: external data `weights.bin`: the file was not given alongside \
         the model"
    );
    let mut extra = files.clone();
    extra.insert("wieghts.bin".into(), vec![0; 4]);
    let e = inline_external(&model, &extra, ANY).unwrap_err();
    assert_eq!(
        e,
        OnnxError::UnusedExternalFile {
            location: "wieghts.bin".into()
        }
    );
    assert!(!e.is_unsupported(), "a client error: 400");
    let (original, _, _) = one_file();
    assert!(refused(&original, &files).contains("`weights.bin` is not referenced"));
}

#[test]
fn locations_outside_the_model_directory_are_refused() {
    let (_, model, files) = one_file();
    for (location, why) in [
        ("../weights.bin", "`..` component"),
        ("/etc/passwd", "absolute path"),
        ("data\\weights.bin", "'\\\\'"),
        ("a\0b", "'\\0'"),
        ("./weights.bin", "`.` component"),
        ("data//weights.bin", "an empty component"),
        ("", "no `location` key"),
    ] {
        let bad = set(&model, "conv1.weight", "location", location);
        let e = refused(&bad, &files);
        assert!(
            e.starts_with("tensor `conv1.weight`: external data `"),
            "{e}"
        );
        assert!(e.contains(why), "{location:?}: {e}");
    }
}

#[test]
fn ranges_past_the_file_and_lengths_off_the_dims_are_refused() {
    let (_, model, files) = one_file();
    let size = files["weights.bin"].len();
    // conv1.weight is [32, 1, 5, 5] f32: 3,200 bytes at offset 0.
    let cases = [
        (
            set(&model, "conv1.weight", "offset", &(size + 1).to_string()),
            "past the end",
        ),
        (
            set(&model, "conv1.weight", "offset", &(size - 100).to_string()),
            "past the end",
        ),
        (
            set(&model, "conv1.weight", "length", "3196"),
            "length is 3196 bytes, its dims and data type call for 3200",
        ),
        (
            edit(&model, "conv1.weight", |t| t.dims[0] = 31),
            "call for 3100",
        ),
        (
            edit(&model, "conv1.weight", |t| {
                t.external_data
                    .retain(|kv| kv.key.as_deref() != Some("length"))
            }),
            "the rest of the file is",
        ),
        (
            set(&model, "conv1.weight", "offset", "-4"),
            "offset `-4` is not a byte count",
        ),
        (
            set(&model, "conv1.weight", "basepath", "/tmp"),
            "unknown key `basepath`",
        ),
        (
            edit(&model, "conv1.weight", |t| {
                t.external_data.push(entry("offset", "0"))
            }),
            "key `offset` appears twice",
        ),
        (
            edit(&model, "conv1.weight", |t| t.data_location = None),
            "`data_location` is not EXTERNAL",
        ),
        (
            edit(&model, "conv1.weight", |t| t.float_data = vec![1.0]),
            "also holds data",
        ),
        (
            set(&model, "conv1.weight", "checksum", "00"),
            "checksum 00 does not match",
        ),
    ];
    for (bad, why) in cases {
        let e = refused(&bad, &files);
        assert!(
            e.starts_with("tensor `conv1.weight`: external data `weights.bin`: "),
            "{e}"
        );
        assert!(e.contains(why), "{why}: {e}");
    }
}

#[test]
fn a_matching_checksum_passes_and_the_budget_binds() {
    // A [3] u8 tensor in a file holding "abc", whose SHA-1 is FIPS 180-1's first test vector.
    let (_, model, _) = one_file();
    let mut m = ModelProto::decode(model.as_slice()).unwrap();
    m.graph.as_mut().unwrap().initializer.push(TensorProto {
        name: Some("abc".into()),
        dims: vec![3],
        data_type: Some(2),
        data_location: Some(1),
        external_data: vec![
            entry("location", "abc.bin"),
            entry("checksum", "A9993E364706816ABA3E25717850C26C9CD0D89D"),
        ],
        ..Default::default()
    });
    let (_, _, mut files) = one_file();
    files.insert("abc.bin".into(), b"abc".to_vec());
    let inlined = inline_external(&m.encode_to_vec(), &files, ANY).unwrap();
    let g = ModelProto::decode(inlined.as_slice())
        .unwrap()
        .graph
        .unwrap();
    assert_eq!(
        g.initializer.last().unwrap().raw_data.as_deref(),
        Some(&b"abc"[..])
    );
    files.insert("abc.bin".into(), b"abd".to_vec());
    assert!(refused(&m.encode_to_vec(), &files).starts_with(
        "tensor `abc`: external data `abc.bin`: checksum A9993E364706816ABA3E25717850C26C9CD0D89D \
         does not match"
    ));
    // conv1.weight's 3,200 bytes fit in 3,200; conv2.weight's do not.
    let (_, model, files) = one_file();
    let e = inline_external(&model, &files, 3_200).unwrap_err();
    assert!(
        matches!(
            e,
            OnnxError::TooLarge {
                what: "external data bytes inlined",
                max: 3_200,
                ..
            }
        ),
        "{e}"
    );
    let mut many = files.clone();
    for i in 0..crate::onnx::limits::MAX_EXTERNAL_FILES {
        many.insert(format!("f{i}"), Vec::new());
    }
    assert!(refused(&model, &many).starts_with("external data files 2049 is over the limit"));
}

#[test]
fn a_constant_node_tensor_is_found_and_named_by_its_node() {
    let (_, model, files) = one_file();
    let mut m = ModelProto::decode(model.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    // conv1.weight (the first 3,200 bytes of weights.bin) as a Constant node's value, in a
    // file of its own.
    let mut t = g.initializer.remove(0);
    t.name = None;
    t.external_data = vec![entry("location", "const.bin"), entry("length", "3200")];
    let mut files = files;
    let conv1 = files["weights.bin"][..3200].to_vec();
    files.insert("const.bin".into(), conv1.clone());
    g.node.insert(
        0,
        NodeProto {
            name: Some("c".into()),
            op_type: Some("Constant".into()),
            output: vec!["conv1.weight".into()],
            attribute: vec![AttributeProto {
                name: Some("value".into()),
                t: Some(t),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let model = m.encode_to_vec();
    let refs = external_refs(&model).unwrap();
    assert_eq!(
        refs[1],
        ExternalRef {
            location: "const.bin".into(),
            tensor: "node `c` attribute `value`".into()
        }
    );
    let inlined = inline_external(&model, &files, ANY).unwrap();
    let node = &ModelProto::decode(inlined.as_slice())
        .unwrap()
        .graph
        .unwrap()
        .node[0];
    let t = node.attribute[0].t.as_ref().unwrap();
    assert_eq!(t.raw_data.as_ref(), Some(&conv1));
    assert!(t.external_data.is_empty() && t.data_location.is_none());
}
