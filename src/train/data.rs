//! The training data: a minimal MNIST IDX reader (gzipped or raw) and the label-skewed split
//! into two disjoint client shards.
//!
//! The reader is private to the trainer so that it does not wait on the engine's
//! `Dataset::from_idx`; the two can be merged later.

use std::io::Read;
use std::path::Path;

use crate::train::rng::SplitMix64;

/// Why training data could not be read or a model not written.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` is not a valid IDX file: {reason}")]
    Idx { path: String, reason: String },
    #[error("images and labels disagree: {images} images, {labels} labels")]
    CountMismatch { images: usize, labels: usize },
    #[error("cannot write safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
}

/// Labelled images, pixels scaled to `[0, 1]` (`/255`, no mean/std normalisation).
#[derive(Clone, Debug)]
pub struct Images {
    /// `(n, rows·cols)`, row-major.
    pub pixels: Vec<f32>,
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl Images {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`'s pixels.
    pub fn image(&self, i: usize) -> &[f32] {
        let d = self.rows * self.cols;
        &self.pixels[i * d..][..d]
    }

    /// Read an IDX image file (magic 2051, `[n, rows, cols]` u8) and an IDX label file
    /// (magic 2049), each gzipped or raw.
    ///
    /// # Errors
    /// [`TrainError::Io`], [`TrainError::Idx`] or [`TrainError::CountMismatch`].
    pub fn from_idx_files(images: &Path, labels: &Path) -> Result<Self, TrainError> {
        let (dims, pixels) = read_idx(images, 0x0803)?;
        let (ldims, digits) = read_idx(labels, 0x0801)?;
        if dims[0] != ldims[0] {
            return Err(TrainError::CountMismatch {
                images: dims[0],
                labels: ldims[0],
            });
        }
        if let Some(&bad) = digits.iter().find(|&&l| l > 9) {
            return Err(TrainError::Idx {
                path: labels.display().to_string(),
                reason: format!("label {bad} is not a digit"),
            });
        }
        Ok(Images {
            pixels: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
            labels: digits,
            rows: dims[1],
            cols: dims[2],
        })
    }
}

/// Read a whole IDX file of unsigned bytes with the given magic (`0x08` type, `0x0801`: 1-D,
/// `0x0803`: 3-D); returns its dimensions and data.
fn read_idx(path: &Path, magic: u32) -> Result<(Vec<usize>, Vec<u8>), TrainError> {
    let shown = path.display().to_string();
    let io = |source| TrainError::Io {
        path: shown.clone(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    let bad = |reason: String| TrainError::Idx {
        path: shown.clone(),
        reason,
    };
    let word = |i: usize| -> Option<u32> {
        let b = bytes.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let found = word(0).ok_or_else(|| bad("shorter than its header".into()))?;
    if found != magic {
        return Err(bad(format!("magic {found:#010x}, expected {magic:#010x}")));
    }
    let ndim = (magic & 0xff) as usize;
    let dims = (1..=ndim)
        .map(|i| word(i).map(|d| d as usize))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("shorter than its header".into()))?;
    let len = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let start = 4 * (ndim + 1);
    if bytes.len() != start + len {
        return Err(bad(format!(
            "dimensions {dims:?} need {len} bytes of data, found {}",
            bytes.len() - start
        )));
    }
    Ok((dims, bytes[start..].to_vec()))
}

/// Split the samples into two disjoint shards by label, covering every sample once. Shard A
/// takes the samples whose digit is in `a_digits` and shard B the others, except that each
/// sample moves to the other shard with probability `minority` (one draw per sample, in order,
/// from `SplitMix64::new(seed)`). Returns the two index lists in ascending order.
pub fn label_skew_split(
    labels: &[u8],
    a_digits: &[u8],
    minority: f64,
    seed: u64,
) -> [Vec<usize>; 2] {
    let mut rng = SplitMix64::new(seed);
    let mut shards = [Vec::new(), Vec::new()];
    for (i, l) in labels.iter().enumerate() {
        let home = usize::from(!a_digits.contains(l));
        let moved = rng.next_f64() < minority;
        shards[home ^ usize::from(moved)].push(i);
    }
    shards
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn label_skew_split_is_disjoint_covering_and_skewed_as_asked() {
        let labels: Vec<u8> = (0..20_000).map(|i| (i % 10) as u8).collect();
        let [a, b] = label_skew_split(&labels, &[0, 1, 2, 3, 4], 0.05, 9);
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..20_000).collect::<Vec<_>>());
        // 2,000 samples per digit, 5 % moved: about 100 (binomial sd ≈ 9.7) per digit.
        for d in 0..10u8 {
            let in_a = a.iter().filter(|&&i| labels[i] == d).count();
            let moved = if d < 5 { 2_000 - in_a } else { in_a };
            assert!((60..140).contains(&moved), "digit {d}: {moved} moved");
        }
        assert_eq!(label_skew_split(&labels, &[0, 1, 2, 3, 4], 0.05, 9), [a, b]);
    }

    fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn reads_gzipped_and_raw_idx_files_and_scales_pixels_by_one_255th() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img.gz");
        let lab = dir.path().join("lab");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx_bytes(0x0803, &[2, 1, 2], &[0, 255, 51, 102]))
            .unwrap();
        std::fs::write(&img, gz.finish().unwrap()).unwrap();
        std::fs::write(&lab, idx_bytes(0x0801, &[2], &[7, 3])).unwrap();
        let data = Images::from_idx_files(&img, &lab).unwrap();
        assert_eq!((data.len(), data.rows, data.cols), (2, 1, 2));
        assert_eq!(data.labels, [7, 3]);
        assert_eq!(data.image(1), [0.2, 0.4]);
    }

    #[test]
    fn rejects_an_idx_file_whose_data_is_shorter_than_its_dimensions() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img");
        let lab = dir.path().join("lab");
        std::fs::write(&img, idx_bytes(0x0803, &[2, 2, 2], &[0; 7])).unwrap();
        std::fs::write(&lab, idx_bytes(0x0801, &[2], &[1, 2])).unwrap();
        let err = Images::from_idx_files(&img, &lab).unwrap_err();
        assert!(matches!(err, TrainError::Idx { .. }), "{err}");
        assert!(
            err.to_string().contains("need 8 bytes of data, found 7"),
            "{err}"
        );
    }

    #[test]
    fn rejects_label_files_given_as_image_files() {
        let dir = tempfile::tempdir().unwrap();
        let lab = dir.path().join("lab");
        std::fs::write(&lab, idx_bytes(0x0801, &[2], &[1, 2])).unwrap();
        let err = Images::from_idx_files(&lab, &lab).unwrap_err();
        assert!(
            err.to_string()
                .contains("magic 0x00000801, expected 0x00000803"),
            "{err}"
        );
    }
}
