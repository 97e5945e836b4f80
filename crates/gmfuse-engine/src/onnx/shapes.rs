//! The shape computations exporters write around a `Reshape`, folded at import: small
//! integer vectors whose entries are known numbers or the batch size `N`, the one value a
//! model's shape leaves open. `x.view(x.size(0), -1)` exports as
//! `Shape(x) → Gather(0) → Unsqueeze(0) → Concat([-1]) → Reshape(x, ·)`; each of those steps is a
//! function here, and [`flatten_target`] decides whether the computed target is a flatten.
//! Every vector is at most [`limits::MAX_RANK`] long; a step that does not apply gives the
//! reason, which the importer puts into the node's refusal.

use std::fmt;

use super::error::OnnxError;
use super::limits;

/// One entry of a folded vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dim {
    /// The batch size `N` (dim 0 of an activation).
    Batch,
    Known(i64),
}

/// A folded int64 value: a scalar or a 1-D vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ints {
    pub dims: Vec<Dim>,
    /// 0-D (a scalar, `dims.len() == 1`) rather than 1-D.
    pub scalar: bool,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Batch => write!(f, "N"),
            Dim::Known(k) => write!(f, "{k}"),
        }
    }
}

impl fmt::Display for Ints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scalar {
            return write!(f, "{}", self.dims[0]);
        }
        let parts: Vec<String> = self.dims.iter().map(Dim::to_string).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

impl Ints {
    /// A 1-D vector, at most [`limits::MAX_RANK`] long.
    pub fn vector(dims: Vec<Dim>) -> Result<Ints, OnnxError> {
        limits::at_most("folded shape length", dims.len(), limits::MAX_RANK)?;
        Ok(Ints {
            dims,
            scalar: false,
        })
    }

    pub fn scalar(d: Dim) -> Ints {
        Ints {
            dims: vec![d],
            scalar: true,
        }
    }

    /// The values, when every one is known.
    pub fn known(&self) -> Option<Vec<i64>> {
        self.dims
            .iter()
            .map(|d| match d {
                Dim::Known(k) => Some(*k),
                Dim::Batch => None,
            })
            .collect()
    }

    fn known_or(&self, what: &str) -> Result<Vec<i64>, String> {
        self.known()
            .ok_or_else(|| format!("{what} {self} depends on the batch size"))
    }

    fn vector_or(&self, what: &str) -> Result<&[Dim], String> {
        if self.scalar {
            return Err(format!("{what} is a scalar where a 1-D vector is expected"));
        }
        Ok(&self.dims)
    }
}

/// `dims[start..end]` with ONNX's clamping (negative bounds count from the end), as `Shape`'s
/// `start`/`end` and `Slice` read them.
pub(crate) fn clamp_range(len: usize, start: i64, end: i64) -> std::ops::Range<usize> {
    let len_i = len as i64;
    let at = |i: i64| {
        let i = if i < 0 { i.saturating_add(len_i) } else { i };
        i.clamp(0, len_i) as usize
    };
    let (s, e) = (at(start), at(end));
    s..e.max(s)
}

/// `Gather(data, indices, axis 0)` of a 1-D `data`: a scalar index gives a scalar.
pub(crate) fn gather(data: &Ints, indices: &Ints) -> Result<Ints, String> {
    let dims = data.vector_or("the gathered value")?;
    let picked = indices
        .known_or("the indices")?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + dims.len() as i64 } else { i };
            usize::try_from(j)
                .ok()
                .and_then(|j| dims.get(j).copied())
                .ok_or_else(|| format!("index {i} is out of range for {data}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Ints {
        dims: picked,
        scalar: indices.scalar,
    })
}

/// `Unsqueeze` of a scalar at axis 0 (or -1): the 1-element vector.
pub(crate) fn unsqueeze(x: &Ints, axes: &[i64]) -> Result<Ints, String> {
    if !x.scalar || !matches!(axes, [0] | [-1]) {
        return Err(format!(
            "Unsqueeze of {x} at axes {axes:?} (only a scalar into a 1-D vector)"
        ));
    }
    Ok(Ints {
        dims: x.dims.clone(),
        scalar: false,
    })
}

/// `Squeeze` of a 1-element vector (axes absent, `[0]` or `[-1]`): the scalar.
pub(crate) fn squeeze(x: &Ints, axes: Option<&[i64]>) -> Result<Ints, String> {
    let ok_axes = axes.is_none_or(|a| matches!(a, [0] | [-1]));
    if x.scalar || x.dims.len() != 1 || !ok_axes {
        return Err(format!(
            "Squeeze of {x} at axes {axes:?} (only a 1-element vector into a scalar)"
        ));
    }
    Ok(Ints::scalar(x.dims[0]))
}

/// `Concat` of 1-D vectors along axis 0.
pub(crate) fn concat(parts: &[Ints]) -> Result<Ints, OnnxError> {
    let mut dims = Vec::new();
    for p in parts {
        limits::at_most(
            "folded shape length",
            dims.len() + p.dims.len(),
            limits::MAX_RANK,
        )?;
        dims.extend_from_slice(&p.dims);
    }
    Ints::vector(dims)
}

/// `Slice` of a 1-D vector along axis 0 with step 1.
pub(crate) fn slice(x: &Ints, starts: &Ints, ends: &Ints, steps: &[i64]) -> Result<Ints, String> {
    let dims = x.vector_or("the sliced value")?;
    let (starts, ends) = (starts.known_or("starts")?, ends.known_or("ends")?);
    let ([start], [end]) = (starts.as_slice(), ends.as_slice()) else {
        return Err(format!(
            "Slice with starts {starts:?} and ends {ends:?} (only one axis)"
        ));
    };
    if !matches!(steps, [] | [1]) {
        return Err(format!("Slice with steps {steps:?} (only 1)"));
    }
    Ok(Ints {
        dims: dims[clamp_range(dims.len(), *start, *end)].to_vec(),
        scalar: false,
    })
}

/// `Reshape` of a folded value to a 1-D vector (`[-1]` or `[len]`), or of one value to a
/// scalar (`[]`).
pub(crate) fn reshape_folded(x: &Ints, target: &[i64]) -> Result<Ints, String> {
    let len = x.dims.len() as i64;
    match target {
        [t] if *t == -1 || *t == len => Ok(Ints {
            dims: x.dims.clone(),
            scalar: false,
        }),
        [] if len == 1 => Ok(Ints::scalar(x.dims[0])),
        _ => Err(format!(
            "Reshape of {x} to {target:?} (a shape value only to 1-D, or one value to a scalar)"
        )),
    }
}

/// `Mul` or `Div` (`op`) of known values, a scalar or 1-element side broadcast over the other.
/// `Div` only of a non-negative value by a positive one, where ONNX's truncating integer
/// division and PyTorch's `//` agree.
pub(crate) fn arith(op: &str, a: &Ints, b: &Ints) -> Result<Ints, String> {
    let (x, y) = (a.known_or("the left side")?, b.known_or("the right side")?);
    let n = x.len().max(y.len());
    if !(x.len() == n || x.len() == 1) || !(y.len() == n || y.len() == 1) {
        return Err(format!("{op} of {a} and {b} (lengths do not broadcast)"));
    }
    let dims = (0..n)
        .map(|i| {
            let (p, q) = (x[i.min(x.len() - 1)], y[i.min(y.len() - 1)]);
            match op {
                "Mul" => p.checked_mul(q),
                _ => (p >= 0 && q > 0).then(|| p / q),
            }
            .map(Dim::Known)
            .ok_or_else(|| {
                format!("{op} of {p} and {q} (overflow, or a negative or zero division)")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Ints {
        dims,
        scalar: a.scalar && b.scalar,
    })
}

/// The total padding `auto_pad = SAME_*` adds along an axis of `len` for a `kernel` at
/// `stride`, so that the output has `ceil(len / stride)` entries (ONNX's Conv/pool definition).
pub(crate) fn same_padding(len: i64, kernel: i64, stride: i64) -> i64 {
    let out = (len + stride - 1) / stride;
    ((out - 1) * stride + kernel - len).max(0)
}

/// Whether `Reshape(x, target)` is a flatten of `x` (dims `[N, d1, …]`) into `[N, d1·…]`:
/// the target, after ONNX's `0` (copy `x`'s dim, unless `allowzero`) and a leading `batch`
/// (the graph input's fixed batch size, which an exporter may write) are read, is `[N, -1]`,
/// `[N, F]` or `[-1, F]`. Otherwise the reason, naming the computed target.
pub(crate) fn flatten_target(
    target: &Ints,
    x: &[Dim],
    batch: Option<i64>,
    allowzero: bool,
) -> Result<(), String> {
    let input = Ints {
        dims: x.to_vec(),
        scalar: false,
    };
    let features = x
        .iter()
        .skip(1)
        .try_fold(1i64, |acc, d| match d {
            Dim::Known(k) => acc.checked_mul(*k),
            Dim::Batch => None,
        })
        .ok_or_else(|| format!("its input's shape {input} is not [N, …] with known dims"))?;
    let read = |i: usize, d: Dim| match d {
        Dim::Known(0) if !allowzero => x.get(i).copied(),
        Dim::Known(k) if i == 0 && Some(k) == batch => Some(Dim::Batch),
        d => Some(d),
    };
    let resolved: Option<Vec<Dim>> = if target.scalar {
        None
    } else {
        target
            .dims
            .iter()
            .enumerate()
            .map(|(i, &d)| read(i, d))
            .collect()
    };
    let flat = match resolved.as_deref() {
        Some([Dim::Batch, Dim::Known(-1)]) => true,
        Some([Dim::Batch | Dim::Known(-1), Dim::Known(f)]) => *f == features,
        _ => false,
    };
    if flat {
        return Ok(());
    }
    Err(format!(
        "Reshape to {target}, computed from its shape input; gmfuse maps a Reshape only as a \
         flatten of its input {input} into [N, {features}] ([N, -1], [N, {features}] or \
         [-1, {features}])"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Dim::{Batch, Known};

    fn v(dims: &[Dim]) -> Ints {
        Ints::vector(dims.to_vec()).unwrap()
    }

    #[test]
    fn gather_slice_and_squeeze_pick_entries_as_onnx_defines_them() {
        let s = v(&[Batch, Known(16), Known(7), Known(7)]);
        assert_eq!(gather(&s, &Ints::scalar(Known(0))), Ok(Ints::scalar(Batch)));
        // Negative indices count from the end.
        assert_eq!(
            gather(&s, &v(&[Known(-1), Known(1)])),
            Ok(v(&[Known(7), Known(16)]))
        );
        assert!(
            gather(&s, &Ints::scalar(Known(4)))
                .unwrap_err()
                .contains("out of range")
        );
        // Slice clamps its ends: [1, i64::MAX) is everything after N; [-2, -1) the height.
        let (one, max) = (v(&[Known(1)]), v(&[Known(i64::MAX)]));
        assert_eq!(slice(&s, &one, &max, &[]), Ok(v(&s.dims[1..])));
        let (a, b) = (v(&[Known(-2)]), v(&[Known(-1)]));
        assert_eq!(slice(&s, &a, &b, &[1]), Ok(v(&[Known(7)])));
        assert!(slice(&s, &a, &b, &[2]).is_err());
        assert_eq!(squeeze(&v(&[Batch]), None), Ok(Ints::scalar(Batch)));
        assert!(squeeze(&s, Some(&[0])).is_err());
        assert_eq!(unsqueeze(&Ints::scalar(Batch), &[0]), Ok(v(&[Batch])));
        assert!(unsqueeze(&v(&[Batch]), &[0]).is_err());
        assert_eq!(reshape_folded(&Ints::scalar(Batch), &[-1]), Ok(v(&[Batch])));
        assert_eq!(reshape_folded(&v(&[Batch]), &[]), Ok(Ints::scalar(Batch)));
        assert!(reshape_folded(&s, &[2, 2]).is_err());
    }

    #[test]
    fn folded_vectors_are_bounded_by_the_rank_limit_and_arithmetic_by_int64() {
        let long = v(&[Known(1); limits::MAX_RANK]);
        assert!(matches!(
            concat(&[long, v(&[Known(-1)])]),
            Err(OnnxError::TooLarge { .. })
        ));
        assert_eq!(
            concat(&[v(&[Batch]), v(&[Known(-1)])]).unwrap().to_string(),
            "[N, -1]"
        );
        let (k16, k2) = (Ints::scalar(Known(16)), Ints::scalar(Known(2)));
        assert_eq!(
            arith("Mul", &k16, &v(&[Known(7), Known(2)])),
            Ok(v(&[Known(112), Known(32)]))
        );
        assert!(arith("Mul", &Ints::scalar(Batch), &k2).is_err());
        assert!(arith("Mul", &Ints::scalar(Known(i64::MAX)), &k2).is_err());
        assert_eq!(arith("Div", &k16, &k2), Ok(Ints::scalar(Known(8))));
        // -7 / 2 is -3 in ONNX (truncation) and -4 in PyTorch (floor): refused.
        assert!(arith("Div", &Ints::scalar(Known(-7)), &k2).is_err());
        assert!(arith("Div", &k16, &Ints::scalar(Known(0))).is_err());
    }

    #[test]
    fn a_flatten_target_is_n_by_the_features_in_any_of_its_spellings() {
        let x = [Batch, Known(16), Known(7), Known(7)];
        let ok = |t: &[Dim], batch| flatten_target(&v(t), &x, batch, false).is_ok();
        assert!(ok(&[Batch, Known(-1)], None));
        assert!(ok(&[Batch, Known(784)], None));
        assert!(ok(&[Known(-1), Known(784)], None));
        assert!(ok(&[Known(0), Known(-1)], None));
        // An exporter's fixed batch size counts as N only when the graph input fixes it so.
        assert!(ok(&[Known(1), Known(-1)], Some(1)));
        assert!(!ok(&[Known(1), Known(-1)], None));
        assert!(!ok(&[Known(-1), Known(392)], None));
        assert!(!ok(&[Known(-1), Known(-1)], None));
        assert!(!ok(&[Batch, Known(16), Known(-1)], None));
        // With allowzero, 0 is a literal 0.
        assert!(flatten_target(&v(&[Known(0), Known(-1)]), &x, None, true).is_err());
        assert_eq!(same_padding(7, 3, 2), 2);
        assert_eq!(same_padding(5, 2, 1), 1);
    }
}
