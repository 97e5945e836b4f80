//! Validating a safetensors file chunk by chunk, in bounded memory: [`StreamCheck`] collects the
//! 8-byte length and the JSON header (at most [`MAX_HEADER_BYTES`]), validates the layout exactly
//! as [`inspect`](super::inspect) does, then scans the data section as it arrives, element by
//! element, for NaN and ±∞. It holds the header and at most one partial element — never the
//! data — so a 1 GiB upload is checked in a few MiB.
//!
//! For every input and every way of cutting it into chunks, the verdict equals
//! [`WeightSet::from_bytes`](super::WeightSet::from_bytes) on the whole file (same error, or
//! the same tensor list as `inspect`).
//!
//! ```
//! use gmfuse_engine::weights::{StreamCheck, WeightsError};
//! let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
//! let mut file = (header.len() as u64).to_le_bytes().to_vec();
//! file.extend_from_slice(header);
//! file.extend_from_slice(&1.0f32.to_le_bytes());
//! file.extend_from_slice(&f32::NAN.to_le_bytes());
//! let mut check = StreamCheck::new(file.len() as u64);
//! let verdict = file.chunks(3).try_for_each(|c| check.feed(c)).and_then(|()| check.finish());
//! assert_eq!(verdict, Err(WeightsError::NonFinite { name: "w".into(), index: 1 }));
//! ```

use super::read::{Entry, parse_header};
use super::{DType, MAX_HEADER_BYTES, TensorInfo, WeightsError, read_header_len};

/// A safetensors file being validated as it streams by. Feed every byte with
/// [`StreamCheck::feed`], then call [`StreamCheck::finish`]; after an error, stop feeding.
#[derive(Debug)]
pub struct StreamCheck {
    /// Size of the whole file, bytes.
    total: u64,
    /// Bytes fed so far.
    fed: u64,
    /// The length prefix and the header, while they are being collected.
    prefix: Vec<u8>,
    header_len: Option<u64>,
    /// The validated layout, sorted by offset, once the header is in.
    layout: Option<Layout>,
}

#[derive(Debug)]
struct Layout {
    entries: Vec<Span>,
    infos: Vec<TensorInfo>,
    /// Entry the next data byte belongs to.
    current: usize,
    /// Offset of the next data byte in the data section.
    pos: usize,
    /// A partial element carried over from the previous chunk.
    carry: [u8; 8],
    carry_len: usize,
}

#[derive(Debug)]
struct Span {
    name: String,
    dtype: DType,
    start: usize,
    end: usize,
}

impl StreamCheck {
    /// A check of a file of `total` bytes.
    pub fn new(total: u64) -> Self {
        StreamCheck {
            total,
            fed: 0,
            prefix: Vec::with_capacity(8),
            header_len: None,
            layout: None,
        }
    }

    /// Take the next bytes of the file.
    ///
    /// # Errors
    /// The first [`WeightsError`] the bytes so far prove.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), WeightsError> {
        self.fed = self.fed.saturating_add(chunk.len() as u64);
        while !chunk.is_empty() {
            if let Some(layout) = &mut self.layout {
                return layout.scan(chunk);
            }
            let want = match self.header_len {
                None => 8 - self.prefix.len(),
                Some(len) => 8 + len as usize - self.prefix.len(),
            };
            let take = want.min(chunk.len());
            self.prefix.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            self.advance()?;
        }
        Ok(())
    }

    /// Move on once the length or the whole header is in.
    fn advance(&mut self) -> Result<(), WeightsError> {
        if self.header_len.is_none() && self.prefix.len() == 8 {
            let len = read_header_len(&self.prefix)?;
            let available = self.total.saturating_sub(8);
            if len > available {
                return Err(WeightsError::HeaderBeyondFile {
                    len,
                    available: usize::try_from(available).unwrap_or(usize::MAX),
                });
            }
            debug_assert!(len <= MAX_HEADER_BYTES as u64);
            self.prefix.reserve_exact(len as usize);
            self.header_len = Some(len);
        }
        if let Some(len) = self.header_len
            && self.prefix.len() as u64 == 8 + len
        {
            let data_len = usize::try_from(self.total - 8 - len).map_err(|_| {
                WeightsError::HeaderBeyondFile {
                    len,
                    available: usize::MAX,
                }
            })?;
            let (entries, _metadata) = parse_header(&self.prefix[8..], data_len)?;
            self.prefix = Vec::new();
            self.layout = Some(Layout::new(entries));
        }
        Ok(())
    }

    /// The verdict once every byte was fed: the tensors by name, as [`super::inspect`] lists them.
    ///
    /// # Errors
    /// [`WeightsError::HeaderTooShort`] for a file under 8 bytes; the header's errors when it
    /// never completed.
    pub fn finish(self) -> Result<Vec<TensorInfo>, WeightsError> {
        assert_eq!(self.fed, self.total, "every byte of the file was fed");
        match self.layout {
            Some(layout) => {
                debug_assert_eq!(layout.carry_len, 0, "spans are whole elements");
                Ok(layout.infos)
            }
            None if self.header_len.is_none() => Err(WeightsError::HeaderTooShort {
                len: self.prefix.len(),
            }),
            None => unreachable!("a header within the file completes once every byte is fed"),
        }
    }
}

impl Layout {
    fn new(entries: Vec<Entry>) -> Self {
        let mut infos: Vec<TensorInfo> = entries
            .iter()
            .map(|e| TensorInfo {
                name: e.name.clone(),
                dtype: e.dtype,
                shape: e.shape.clone(),
            })
            .collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        let entries = entries
            .into_iter()
            .map(|e| Span {
                name: e.name,
                dtype: e.dtype,
                start: e.start,
                end: e.end,
            })
            .collect();
        Layout {
            entries,
            infos,
            current: 0,
            pos: 0,
            carry: [0; 8],
            carry_len: 0,
        }
    }

    /// Check the data bytes `chunk`, which follow those seen so far.
    fn scan(&mut self, mut chunk: &[u8]) -> Result<(), WeightsError> {
        while !chunk.is_empty() {
            while self
                .entries
                .get(self.current)
                .is_some_and(|e| e.end == self.pos)
            {
                self.current += 1;
            }
            let Some(span) = self.entries.get(self.current) else {
                // More bytes than the file's announced size.
                return Err(WeightsError::TrailingBytes {
                    trailing: chunk.len(),
                    data_len: self.pos,
                });
            };
            let size = span.dtype.size();
            let take = (span.end - self.pos).min(chunk.len());
            let (mut part, rest) = chunk.split_at(take);
            chunk = rest;
            let mut at = self.pos;
            self.pos += take;
            if self.carry_len > 0 {
                let need = (size - self.carry_len).min(part.len());
                self.carry[self.carry_len..self.carry_len + need].copy_from_slice(&part[..need]);
                self.carry_len += need;
                part = &part[need..];
                if self.carry_len < size {
                    continue;
                }
                let element = self.carry;
                self.carry_len = 0;
                let start = at + need - size;
                check(span, &element[..size], start)?;
                at += need;
            }
            let whole = part.len() / size * size;
            for (k, element) in part[..whole].chunks_exact(size).enumerate() {
                check(span, element, at + k * size)?;
            }
            let tail = &part[whole..];
            self.carry[..tail.len()].copy_from_slice(tail);
            self.carry_len = tail.len();
        }
        Ok(())
    }
}

/// One element of `span` starting at data offset `offset`.
fn check(span: &Span, b: &[u8], offset: usize) -> Result<(), WeightsError> {
    let finite = match span.dtype {
        DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).is_finite(),
        DType::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).is_finite(),
        DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite(),
        DType::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")).is_finite(),
    };
    if finite {
        Ok(())
    } else {
        Err(WeightsError::NonFinite {
            name: span.name.clone(),
            index: (offset - span.start) / span.dtype.size(),
        })
    }
}
