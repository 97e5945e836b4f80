//! IDX files read as streams (gzipped or raw, told apart by the gzip magic), in bounded memory:
//! the header's dimensions are read first and fix how many data bytes may follow, so
//! decompression stops one byte past the declared size — a gzip bomb costs its declared
//! dimensions, never more — and a declaration over [`MAX_DATASET_VALUES`] is refused before any
//! data is read.
//!
//! [`scan_idx`] validates an image and a label file without keeping the pixels (what an upload
//! needs); [`from_idx_readers`] also decodes them into a [`Dataset`].

use std::io::{BufRead, BufReader, Read};

use super::{Dataset, EvalError};

/// Most values (pixels or labels) one dataset file may declare: 64 Mi, 256 MiB as `f32`.
pub const MAX_DATASET_VALUES: usize = 64 << 20;

/// Bytes read past the declared data to report how many there were (then "more than").
const TRAILING_PROBE: u64 = 1 << 20;

/// Size of the reads.
const CHUNK: usize = 64 << 10;

/// What a scan learned about a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetInfo {
    pub samples: u64,
    /// One sample's `[C, H, W]`.
    pub shape: [usize; 3],
    /// The smallest label (0 for an empty set).
    pub min_label: u32,
    /// The largest label (the dataset needs at least `max_label + 1` classes).
    pub max_label: u32,
}

fn invalid(reason: impl Into<String>) -> EvalError {
    EvalError::Invalid(reason.into())
}

/// An IDX stream positioned after its header.
struct Idx<'a> {
    what: &'a str,
    dims: Vec<usize>,
    count: usize,
    gz: bool,
    data: Box<dyn Read + 'a>,
}

impl Idx<'_> {
    fn io(&self, e: &std::io::Error) -> EvalError {
        if self.gz {
            invalid(format!("{}: bad gzip data: {e}", self.what))
        } else {
            invalid(format!("{}: could not be read: {e}", self.what))
        }
    }

    /// Feed the `count` data bytes to `sink` in chunks, then require the end of the stream.
    fn read_data(mut self, mut sink: impl FnMut(&[u8])) -> Result<Vec<usize>, EvalError> {
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0usize;
        while got < self.count {
            let want = CHUNK.min(self.count - got);
            let n = match self.data.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io(&e)),
            };
            if n == 0 {
                break;
            }
            sink(&buf[..n]);
            got += n;
        }
        let trailing = if got == self.count {
            let mut probe = (&mut self.data).take(TRAILING_PROBE);
            std::io::copy(&mut probe, &mut std::io::sink()).map_err(|e| self.io(&e))?
        } else {
            0
        };
        if got != self.count || trailing > 0 {
            let has = if trailing >= TRAILING_PROBE {
                format!("more than {}", got as u64 + trailing)
            } else {
                (got as u64 + trailing).to_string()
            };
            return Err(invalid(format!(
                "{}: dimensions {:?} need {} bytes of data, the file has {has}",
                self.what, self.dims, self.count
            )));
        }
        Ok(self.dims)
    }
}

/// Read an IDX header from `reader`; `magics` are the accepted magic numbers (`0x0000_08nn`:
/// unsigned bytes, `nn` dimensions).
fn open<'a>(reader: impl Read + 'a, what: &'a str, magics: &[u32]) -> Result<Idx<'a>, EvalError> {
    let mut buffered = BufReader::new(reader);
    let head = buffered
        .fill_buf()
        .map_err(|e| invalid(format!("{what}: could not be read: {e}")))?;
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let mut data: Box<dyn Read + 'a> = if gz {
        Box::new(flate2::bufread::GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut idx = Idx {
        what,
        dims: Vec::new(),
        count: 0,
        gz,
        data: Box::new(std::io::empty()),
    };
    let mut word = |truncated: &str| -> Result<u32, EvalError> {
        let mut b = [0u8; 4];
        match data.read_exact(&mut b) {
            Ok(()) => Ok(u32::from_be_bytes(b)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && gz => Err(invalid(format!(
                "{what}: bad gzip data, or {truncated}: {e}"
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(invalid(format!("{what}: {truncated}")))
            }
            Err(e) => Err(idx.io(&e)),
        }
    };
    let magic = word("too short for an IDX header")?;
    if !magics.contains(&magic) {
        return Err(invalid(format!(
            "{what}: IDX magic number {magic} (0x{magic:08x}), expected one of {magics:?}"
        )));
    }
    let ndims = (magic & 0xff) as usize;
    let mut dims = Vec::with_capacity(ndims);
    for _ in 0..ndims {
        dims.push(word("IDX header is truncated")? as usize);
    }
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&c| c <= MAX_DATASET_VALUES)
        .ok_or_else(|| {
            invalid(format!(
                "{what}: dimensions {dims:?} declare more than {MAX_DATASET_VALUES} values"
            ))
        })?;
    idx.dims = dims;
    idx.count = count;
    idx.data = data;
    Ok(idx)
}

/// Read the image header, then its pixels into `pixels`, then the labels into `labels`.
fn read_both(
    images: impl Read,
    labels: impl Read,
    mut pixels: impl FnMut(&[u8], usize),
    mut label: impl FnMut(u8),
) -> Result<(usize, [usize; 3]), EvalError> {
    let idx = open(images, "images", &[2051, 2052])?;
    let count = idx.count;
    let dims = idx.read_data(|chunk| pixels(chunk, count))?;
    let (n, shape) = super::read::sample_shape(&dims, "images")?;
    let idx = open(labels, "labels", &[2049])?;
    let declared = idx.count;
    idx.read_data(|chunk| chunk.iter().for_each(|&l| label(l)))?;
    if declared != n {
        return Err(invalid(format!("{declared} labels for {n} images")));
    }
    Ok((n, shape))
}

/// Validate an IDX image file and an IDX label file (each gzipped or raw) without keeping them.
///
/// # Errors
/// [`EvalError::Invalid`] with the reason.
pub fn scan_idx(images: impl Read, labels: impl Read) -> Result<DatasetInfo, EvalError> {
    let (mut min_label, mut max_label) = (u8::MAX, 0u8);
    let (n, shape) = read_both(
        images,
        labels,
        |_, _| {},
        |l| {
            min_label = min_label.min(l);
            max_label = max_label.max(l);
        },
    )?;
    Ok(DatasetInfo {
        samples: n as u64,
        shape,
        min_label: if n == 0 { 0 } else { u32::from(min_label) },
        max_label: u32::from(max_label),
    })
}

/// Decode an IDX image file and an IDX label file (each gzipped or raw) into a [`Dataset`].
///
/// # Errors
/// [`EvalError::Invalid`] with the reason.
pub fn from_idx_readers(
    name: &str,
    images: impl Read,
    labels: impl Read,
) -> Result<Dataset, EvalError> {
    let mut px: Vec<f32> = Vec::new();
    let mut lab: Vec<u32> = Vec::new();
    let (n, shape) = read_both(
        images,
        labels,
        |chunk, count| {
            px.reserve_exact(count.saturating_sub(px.len()));
            px.extend(chunk.iter().map(|&p| f32::from(p) / 255.0));
        },
        |l| lab.push(u32::from(l)),
    )?;
    super::read::assemble(name, n, shape, px, lab)
}
