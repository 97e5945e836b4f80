//! Bias-free 2-D convolution (stride 1, no padding: padding is its own layer) as im2col + GEMM.
//!
//! Layouts: input `[n, C, H, W]`, weight `[O, C, k, k]` (PyTorch's), output `[n, O, OH, OW]` with
//! `OH = H − k + 1`. The im2col matrix of one image is `[OH·OW, C·k·k]`; the forward pass keeps
//! it for the weight gradient.

use crate::train::dense::{Layout, matmul};

/// The geometry of one convolution.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub k: usize,
}

impl ConvShape {
    pub fn oh(&self) -> usize {
        self.h - self.k + 1
    }
    pub fn ow(&self) -> usize {
        self.w - self.k + 1
    }
    /// Output positions per image, `OH·OW`.
    pub fn positions(&self) -> usize {
        self.oh() * self.ow()
    }
    /// Length of one im2col row, `C·k·k`.
    pub fn patch(&self) -> usize {
        self.c * self.k * self.k
    }
    pub fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub fn out_len(&self) -> usize {
        self.o * self.positions()
    }
}

/// One image `[C, H, W]` → `cols`: `[OH·OW, C·k·k]`.
fn im2col(x: &[f32], s: &ConvShape, cols: &mut [f32]) {
    let (oh, ow, k, patch) = (s.oh(), s.ow(), s.k, s.patch());
    for y in 0..oh {
        for x0 in 0..ow {
            let row = &mut cols[(y * ow + x0) * patch..][..patch];
            let mut q = 0;
            for c in 0..s.c {
                for dy in 0..k {
                    let src = &x[(c * s.h + y + dy) * s.w + x0..][..k];
                    row[q..q + k].copy_from_slice(src);
                    q += k;
                }
            }
        }
    }
}

/// Adjoint of [`im2col`]: add each patch back onto the image `dx`: `[C, H, W]`.
fn col2im_add(cols: &[f32], s: &ConvShape, dx: &mut [f32]) {
    let (oh, ow, k, patch) = (s.oh(), s.ow(), s.k, s.patch());
    for y in 0..oh {
        for x0 in 0..ow {
            let row = &cols[(y * ow + x0) * patch..][..patch];
            let mut q = 0;
            for c in 0..s.c {
                for dy in 0..k {
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

/// `y = conv(x, w)` for the `n = x.len() / (C·H·W)` images of `x`; fills `cols`
/// (`n·OH·OW·C·k·k`) for the backward pass.
pub fn conv_forward(x: &[f32], w: &[f32], s: &ConvShape, cols: &mut [f32], y: &mut [f32]) {
    let (p, patch) = (s.positions(), s.patch());
    let n = x.len() / s.in_len();
    debug_assert_eq!(x.len(), n * s.in_len());
    debug_assert_eq!(y.len(), n * s.out_len());
    debug_assert_eq!(cols.len(), n * p * patch);
    for i in 0..n {
        let ci = &mut cols[i * p * patch..][..p * patch];
        im2col(&x[i * s.in_len()..][..s.in_len()], s, ci);
        // y_i [O, P] = W [O, C·k·k] · cols_iᵀ [C·k·k, P]
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
/// `scratch` holds one image's im2col gradient (`OH·OW·C·k·k`).
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
        // dW [O, C·k·k] += dy_i [O, P] · cols_i [P, C·k·k]
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
            // dcols [P, C·k·k] = dy_iᵀ [P, O] · W [O, C·k·k]
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

    #[test]
    fn convolution_matches_a_direct_cross_correlation() {
        let s = ConvShape {
            c: 2,
            h: 5,
            w: 4,
            o: 3,
            k: 3,
        };
        let n = 2;
        let x = random_vec(n * s.in_len(), 11);
        let w = random_vec(s.o * s.patch(), 12);
        let mut cols = vec![0.0; n * s.positions() * s.patch()];
        let mut y = vec![0.0; n * s.out_len()];
        conv_forward(&x, &w, &s, &mut cols, &mut y);
        for i in 0..n {
            for o in 0..s.o {
                for r in 0..s.oh() {
                    for q in 0..s.ow() {
                        let mut acc = 0.0f64;
                        for c in 0..s.c {
                            for dy in 0..s.k {
                                for dx in 0..s.k {
                                    let xv = x[((i * s.c + c) * s.h + r + dy) * s.w + q + dx];
                                    let wv = w[((o * s.c + c) * s.k + dy) * s.k + dx];
                                    acc += f64::from(xv) * f64::from(wv);
                                }
                            }
                        }
                        let got = y[((i * s.o + o) * s.oh() + r) * s.ow() + q];
                        assert!((f64::from(got) - acc).abs() < 1e-5, "{got} vs {acc}");
                    }
                }
            }
        }
    }

    #[test]
    fn convolution_gradients_match_finite_differences() {
        let s = ConvShape {
            c: 2,
            h: 6,
            w: 5,
            o: 3,
            k: 3,
        };
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
