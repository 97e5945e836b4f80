//! [`externalize`]: the inverse of [`super::inline_external`], a self-contained model with its
//! initializers moved to external files as onnx writes them — what tests and tools need to make
//! external-data models without Python.

use prost::Message;

use super::error::OnnxError;
use super::external::ExternalFiles;
use super::proto::StringStringEntryProto;

/// The alignment `onnx.proto` recommends for external data offsets ("SHOULD be multiples 4096
/// (page size) to enable mmap support").
pub const EXTERNAL_ALIGN: usize = 4096;

/// `model` with every graph initializer held in a non-empty `raw_data` moved to the file
/// `file_of(its name)` with `location`, `offset` and `length` keys, each tensor at the end of
/// its file rounded up to a multiple of `align` (zero padding before it; 1 packs them back to
/// back as `onnx.save_model(..., save_as_external_data=True, size_threshold=0)` of onnx 1.23.2
/// does, [`EXTERNAL_ALIGN`] is the page alignment `onnx.proto` recommends); the files by
/// location.
///
/// # Errors
/// [`OnnxError::Malformed`] for bytes that are not a model (or over the file-size limit).
pub fn externalize(
    model: &[u8],
    file_of: &dyn Fn(&str) -> String,
    align: usize,
) -> Result<(Vec<u8>, ExternalFiles), OnnxError> {
    let mut model = super::decode(model)?;
    let mut files = ExternalFiles::new();
    let Some(graph) = model.graph.as_mut() else {
        return Ok((model.encode_to_vec(), files));
    };
    for t in &mut graph.initializer {
        let Some(raw) = t.raw_data.take().filter(|r| !r.is_empty()) else {
            continue;
        };
        let location = file_of(t.name.as_deref().unwrap_or(""));
        let file = files.entry(location.clone()).or_default();
        file.resize(file.len().next_multiple_of(align.max(1)), 0);
        let offset = file.len();
        file.extend_from_slice(&raw);
        t.data_location = Some(1);
        t.external_data = [
            ("location", location),
            ("offset", offset.to_string()),
            ("length", raw.len().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v),
        })
        .collect();
    }
    Ok((model.encode_to_vec(), files))
}
