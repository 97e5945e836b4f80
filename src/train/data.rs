//! The training data: MNIST IDX files (through the engine's reader) as flat training images,
//! and the label-skewed split into two disjoint client shards.

use std::path::Path;

use crate::engine::eval::Dataset;

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

    /// The images whose label passes `keep`, in order.
    pub fn filter_labels(&self, keep: impl Fn(u8) -> bool) -> Images {
        let idx: Vec<usize> = (0..self.len()).filter(|&i| keep(self.labels[i])).collect();
        Images {
            pixels: idx.iter().flat_map(|&i| self.image(i).to_vec()).collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Read MNIST's `{prefix}-images-idx3-ubyte` and `{prefix}-labels-idx1-ubyte` (`prefix`
    /// `train` or `t10k`; `.gz` or raw; `-idx3-` or `.idx3-` spelt) from `dir`.
    ///
    /// # Errors
    /// [`TrainError::Io`] when a file is missing or unreadable, [`TrainError::Idx`].
    pub fn from_mnist_dir(dir: &Path, prefix: &str) -> Result<Self, TrainError> {
        let find = |kind: &str| {
            let names = [
                format!("{prefix}-{kind}-idx"),
                format!("{prefix}-{kind}.idx"),
            ];
            let dims = if kind == "images" {
                "3-ubyte"
            } else {
                "1-ubyte"
            };
            names
                .iter()
                .flat_map(|n| [format!("{n}{dims}.gz"), format!("{n}{dims}")])
                .map(|n| dir.join(n))
                .find(|p| p.exists())
                .ok_or_else(|| TrainError::Io {
                    path: format!("{}/{prefix}-{kind}-idx{dims}[.gz]", dir.display()),
                    source: std::io::ErrorKind::NotFound.into(),
                })
        };
        Images::from_idx_files(&find("images")?, &find("labels")?)
    }

    /// Read an IDX image file (magic 2051, `[n, rows, cols]` u8) and an IDX label file
    /// (magic 2049), each gzipped or raw, with the engine's reader
    /// ([`Dataset::from_idx`]); labels must be digits.
    ///
    /// # Errors
    /// [`TrainError::Io`] or [`TrainError::Idx`].
    pub fn from_idx_files(images: &Path, labels: &Path) -> Result<Self, TrainError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TrainError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        let shown = images.display().to_string();
        let data = Dataset::from_idx(&shown, &read(images)?, &read(labels)?).map_err(|e| {
            TrainError::Idx {
                path: shown.clone(),
                reason: e.to_string(),
            }
        })?;
        let [_, rows, cols] = data.shape;
        let digits = data
            .labels
            .iter()
            .map(|&l| u8::try_from(l).ok().filter(|d| *d <= 9))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| TrainError::Idx {
                path: labels.display().to_string(),
                reason: "a label is not a digit".into(),
            })?;
        Ok(Images {
            pixels: data.images.into_raw_vec_and_offset().0,
            labels: digits,
            rows,
            cols,
        })
    }
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
    fn filter_labels_keeps_the_matching_images_in_order() {
        let all = Images {
            pixels: (0..8).map(|v| v as f32).collect(),
            labels: vec![3, 7, 1, 9],
            rows: 1,
            cols: 2,
        };
        let low = all.filter_labels(|l| l < 5);
        assert_eq!(low.labels, [3, 1]);
        assert_eq!(low.pixels, [0.0, 1.0, 4.0, 5.0]);
        assert_eq!((low.rows, low.cols), (1, 2));
    }

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
        assert!(err.to_string().contains("img"), "{err}");
    }

    #[test]
    fn rejects_label_files_given_as_image_files() {
        let dir = tempfile::tempdir().unwrap();
        let lab = dir.path().join("lab");
        std::fs::write(&lab, idx_bytes(0x0801, &[2], &[1, 2])).unwrap();
        let err = Images::from_idx_files(&lab, &lab).unwrap_err();
        assert!(matches!(err, TrainError::Idx { .. }), "{err}");
        assert!(err.to_string().contains("magic"), "{err}");
    }
}
