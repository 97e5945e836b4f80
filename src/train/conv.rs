//! Bias-free 2-D convolution (any stride, zero padding on every side) as im2col + GEMM.
//!
//! Layouts: input `[n, C, H, W]`, weight `[O, C, kh, kw]` (PyTorch's), output `[n, O, OH, OW]` with
//! `OH = (H + 2·padding − kh) / stride + 1`. The im2col matrix of one image is
//! `[OH·OW, C·kh·kw]`; the forward pass keeps it for the weight gradient.

use crate::train::dense::{Layout, matmul};

/// The geometry of one convolution.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    /// Zero cells added on every side.
    pub padding: usize,
}

impl ConvShape {
    /// Stride 1, no padding, a square `k × k` kernel.
    pub const fn plain(c: usize, h: usize, w: usize, o: usize, k: usize) -> Self {
        ConvShape {
            c,
            h,
            w,
            o,
            kh: k,
            kw: k,
            stride: 1,
            padding: 0,
        }
    }
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.padding - self.kh) / self.stride + 1
    }
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.padding - self.kw) / self.stride + 1
    }
    /// Output positions per image, `OH·OW`.
    pub fn positions(&self) -> usize {
        self.oh() * self.ow()
    }
    /// Length of one im2col row, `C·kh·kw`.
    pub fn patch(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Stride 1 and no padding: every patch row is a contiguous slice of the input.
    fn is_plain(&self) -> bool {
        self.stride == 1 && self.padding == 0
    }
    /// The input cell under kernel tap `(dy, dx)` of output `(y, x0)`, or `None` in the padding.
    fn source(&self, y: usize, x0: usize, dy: usize, dx: usize) -> Option<(usize, usize)> {
        let iy = (y * self.stride + dy).checked_sub(self.padding)?;
        let ix = (x0 * self.stride + dx).checked_sub(self.padding)?;
        (iy < self.h && ix < self.w).then_some((iy, ix))
    }
    pub fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub fn out_len(&self) -> usize {
        self.o * self.positions()
    }
}

/// One image `[C, H, W]` → `cols`: `[OH·OW, C·kh·kw]`.
fn im2col(x: &[f32], s: &ConvShape, cols: &mut [f32]) {
    if !s.is_plain() {
        return im2col_strided(x, s, cols);
    }
    let (oh, ow, k, patch) = (s.oh(), s.ow(), s.kw, s.patch());
    for y in 0..oh {
        for x0 in 0..ow {
            let row = &mut cols[(y * ow + x0) * patch..][..patch];
            let mut q = 0;
            for c in 0..s.c {
                for dy in 0..s.kh {
                    let src = &x[(c * s.h + y + dy) * s.w + x0..][..k];
                    row[q..q + k].copy_from_slice(src);
                    q += k;
                }
            }
        }
    }
}

/// [`im2col`] with a stride or padding: cell by cell, zeros in the padding.
fn im2col_strided(x: &[f32], s: &ConvShape, cols: &mut [f32]) {
    let (ow, patch) = (s.ow(), s.patch());
    for (p, row) in cols.chunks_exact_mut(patch).enumerate() {
        let (y, x0) = (p / ow, p % ow);
        let mut q = 0;
        for c in 0..s.c {
            for dy in 0..s.kh {
                for dx in 0..s.kw {
                    row[q] = s
                        .source(y, x0, dy, dx)
                        .map_or(0.0, |(iy, ix)| x[(c * s.h + iy) * s.w + ix]);
                    q += 1;
                }
            }
        }
    }
}

/// Adjoint of [`im2col`]: add each patch back onto the image `dx`: `[C, H, W]`.
fn col2im_add(cols: &[f32], s: &ConvShape, dx: &mut [f32]) {
    if !s.is_plain() {
        return col2im_add_strided(cols, s, dx);
    }
    let (oh, ow, k, patch) = (s.oh(), s.ow(), s.kw, s.patch());
    for y in 0..oh {
        for x0 in 0..ow {
            let row = &cols[(y * ow + x0) * patch..][..patch];
            let mut q = 0;
            for c in 0..s.c {
                for dy in 0..s.kh {
                    let dst = &mut dx[(c * s.h + y + dy) * s.w + x0..][..k];
                    for (d, &g) in dst.iter_mut().zip(&row[q..q + k]) {
                        *d += g;
                    }
                    q += k;
                }
            }
        }
    }
}

/// Adjoint of [`im2col_strided`]; the padding's gradients are dropped.
fn col2im_add_strided(cols: &[f32], s: &ConvShape, dx: &mut [f32]) {
    let (ow, patch) = (s.ow(), s.patch());
    for (p, row) in cols.chunks_exact(patch).enumerate() {
        let (y, x0) = (p / ow, p % ow);
        let mut q = 0;
        for c in 0..s.c {
            for dy in 0..s.kh {
                for dx_ in 0..s.kw {
                    if let Some((iy, ix)) = s.source(y, x0, dy, dx_) {
                        dx[(c * s.h + iy) * s.w + ix] += row[q];
                    }
                    q += 1;
                }
            }
        }
    }
}

/// `y = conv(x, w)` for the `n = x.len() / (C·H·W)` images of `x`; fills `cols`
/// (`n·OH·OW·C·kh·kw`) for the backward pass.
pub fn conv_forward(x: &[f32], w: &[f32], s: &ConvShape, cols: &mut [f32], y: &mut [f32]) {
    let (p, patch) = (s.positions(), s.patch());
    let n = x.len() / s.in_len();
    debug_assert_eq!(x.len(), n * s.in_len());
    debug_assert_eq!(y.len(), n * s.out_len());
    debug_assert_eq!(cols.len(), n * p * patch);
    for i in 0..n {
        let ci = &mut cols[i * p * patch..][..p * patch];
        im2col(&x[i * s.in_len()..][..s.in_len()], s, ci);
        // y_i [O, P] = W [O, C·kh·kw] · cols_iᵀ [C·kh·kw, P]
        matmul(
            &mut y[i * s.out_len()..][..s.out_len()],
            Layout::row_major(s.o, p),
            false,
            w,
            Layout::row_major(s.o, patch),
            ci,
            Layout::transposed(patch, p),
        );
    }
}

/// Gradients of [`conv_forward`]: `dw += Σᵢ dyᵢ colsᵢ` and, when asked, `dx = col2im(dyᵢᵀ W)`.
/// `scratch` holds one image's im2col gradient (`OH·OW·C·kh·kw`).
pub fn conv_backward(
    cols: &[f32],
    w: &[f32],
    dy: &[f32],
    s: &ConvShape,
    dw: &mut [f32],
    mut dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    let (p, patch) = (s.positions(), s.patch());
    let n = dy.len() / s.out_len();
    debug_assert_eq!(cols.len(), n * p * patch);
    for i in 0..n {
        let ci = &cols[i * p * patch..][..p * patch];
        let dyi = &dy[i * s.out_len()..][..s.out_len()];
        // dW [O, C·kh·kw] += dy_i [O, P] · cols_i [P, C·kh·kw]
        matmul(
            dw,
            Layout::row_major(s.o, patch),
            true,
            dyi,
            Layout::row_major(s.o, p),
            ci,
            Layout::row_major(p, patch),
        );
        if let Some(dx) = dx.as_deref_mut() {
            // dcols [P, C·kh·kw] = dy_iᵀ [P, O] · W [O, C·kh·kw]
            let dcols = &mut scratch[..p * patch];
            matmul(
                dcols,
                Layout::row_major(p, patch),
                false,
                dyi,
                Layout::transposed(p, s.o),
                w,
                Layout::row_major(s.o, patch),
            );
            let dxi = &mut dx[i * s.in_len()..][..s.in_len()];
            dxi.fill(0.0);
            col2im_add(dcols, s, dxi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{check_gradient, random_vec};

    /// Plain, strided, padded and both, with a non-square kernel among them.
    fn shapes() -> [ConvShape; 3] {
        let strided = ConvShape {
            stride: 2,
            padding: 1,
            ..ConvShape::plain(2, 7, 6, 3, 3)
        };
        let wide = ConvShape {
            kh: 2,
            kw: 3,
            padding: 1,
            ..ConvShape::plain(2, 5, 4, 3, 0)
        };
        [ConvShape::plain(2, 5, 4, 3, 3), strided, wide]
    }

    #[test]
    fn convolution_matches_a_direct_cross_correlation() {
        for s in shapes() {
            let n = 2;
            let x = random_vec(n * s.in_len(), 11);
            let w = random_vec(s.o * s.patch(), 12);
            let mut cols = vec![0.0; n * s.positions() * s.patch()];
            let mut y = vec![0.0; n * s.out_len()];
            conv_forward(&x, &w, &s, &mut cols, &mut y);
            let pad = s.padding as isize;
            for i in 0..n {
                for o in 0..s.o {
                    for r in 0..s.oh() {
                        for q in 0..s.ow() {
                            let mut acc = 0.0f64;
                            for c in 0..s.c {
                                for dy in 0..s.kh {
                                    for dx in 0..s.kw {
                                        let iy = (r * s.stride + dy) as isize - pad;
                                        let ix = (q * s.stride + dx) as isize - pad;
                                        if iy < 0
                                            || ix < 0
                                            || iy >= s.h as isize
                                            || ix >= s.w as isize
                                        {
                                            continue;
                                        }
                                        let (iy, ix) = (iy as usize, ix as usize);
                                        let xv = x[((i * s.c + c) * s.h + iy) * s.w + ix];
                                        let wv = w[((o * s.c + c) * s.kh + dy) * s.kw + dx];
                                        acc += f64::from(xv) * f64::from(wv);
                                    }
                                }
                            }
                            let got = y[((i * s.o + o) * s.oh() + r) * s.ow() + q];
                            assert!((f64::from(got) - acc).abs() < 1e-5, "{s:?}: {got} vs {acc}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn convolution_gradients_match_finite_differences() {
        for s in shapes() {
            let n = 2;
            let x = random_vec(n * s.in_len(), 21);
            let w = random_vec(s.o * s.patch(), 22);
            let r = random_vec(n * s.out_len(), 23); // loss = Σ r ⊙ y
            let loss = |x: &[f32], w: &[f32]| {
                let mut cols = vec![0.0; n * s.positions() * s.patch()];
                let mut y = vec![0.0; n * s.out_len()];
                conv_forward(x, w, &s, &mut cols, &mut y);
                y.iter().zip(&r).map(|(a, b)| f64::from(a * b)).sum::<f64>()
            };
            let mut cols = vec![0.0; n * s.positions() * s.patch()];
            let mut y = vec![0.0; n * s.out_len()];
            conv_forward(&x, &w, &s, &mut cols, &mut y);
            let mut dw = vec![0.0; w.len()];
            let mut dx = vec![0.0; x.len()];
            let mut scratch = vec![0.0; s.positions() * s.patch()];
            conv_backward(&cols, &w, &r, &s, &mut dw, Some(&mut dx), &mut scratch);
            check_gradient(&x, &dx, |x| loss(x, &w));
            check_gradient(&w, &dw, |w| loss(&x, w));
        }
    }
}
