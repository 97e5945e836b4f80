//! The direct definition the forward pass is checked against: one sample through a spec with
//! plain loops in `f64`, written from PyTorch's definitions (channel-major).

use crate::arch::{ArchSpec, Op, PadMode};
use crate::weights::WeightSet;

/// One sample through `spec`, straight from the definitions, in `f64`, every value kept.
/// `x`: `(C, H, W)` flattened.
pub(super) fn reference(spec: &ArchSpec, ws: &WeightSet, x: &[f32]) -> Vec<f64> {
    let t = |n: &str| &ws.tensors[n].data;
    let inputs = spec.op_inputs().unwrap();
    let [c, h, w] = spec.input;
    let mut values = vec![(
        x.iter().map(|&p| f64::from(p)).collect::<Vec<f64>>(),
        c,
        h,
        w,
    )];
    let at = |v: &[f64], h: usize, w: usize, ch: usize, y: isize, x: isize| -> Option<f64> {
        (y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w)
            .then(|| v[(ch * h + y as usize) * w + x as usize])
    };
    for (i, op) in spec.op_list().enumerate() {
        let (mut v, mut c, mut h, mut w) = values[inputs[i][0]].clone();
        match op {
            Op::Pad2d { mode, padding } => {
                let p = *padding as isize;
                let (nh, nw) = (h + 2 * padding, w + 2 * padding);
                let mut o = vec![0.0; c * nh * nw];
                for ch in 0..c {
                    for y in 0..nh as isize {
                        for xx in 0..nw as isize {
                            let (sy, sx) = (y - p, xx - p);
                            o[(ch * nh + y as usize) * nw + xx as usize] = match mode {
                                PadMode::Zero => at(&v, h, w, ch, sy, sx).unwrap_or(0.0),
                                PadMode::Replicate => {
                                    let cy = sy.clamp(0, h as isize - 1);
                                    let cx = sx.clamp(0, w as isize - 1);
                                    at(&v, h, w, ch, cy, cx).unwrap()
                                }
                            };
                        }
                    }
                }
                (v, h, w) = (o, nh, nw);
            }
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
            } => {
                let wt = t(weight);
                let (co, kh, kw) = (wt.shape()[0], wt.shape()[2], wt.shape()[3]);
                let oh = (h + 2 * padding - kh) / stride + 1;
                let ow = (w + 2 * padding - kw) / stride + 1;
                let mut o = vec![0.0; co * oh * ow];
                for f in 0..co {
                    for y in 0..oh {
                        for xx in 0..ow {
                            let mut s = bias.as_ref().map_or(0.0, |b| t(b)[[f]]);
                            for ch in 0..c {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let sy = (y * stride + ky) as isize - *padding as isize;
                                        let sx = (xx * stride + kx) as isize - *padding as isize;
                                        let xv = at(&v, h, w, ch, sy, sx).unwrap_or(0.0);
                                        s += xv * wt[[f, ch, ky, kx]];
                                    }
                                }
                            }
                            o[(f * oh + y) * ow + xx] = s;
                        }
                    }
                }
                (v, c, h, w) = (o, co, oh, ow);
            }
            Op::Relu {} => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            Op::Maxpool2d {
                kernel,
                stride,
                padding,
            }
            | Op::Avgpool2d {
                kernel,
                stride,
                padding,
            } => {
                let (k, s, p) = (*kernel, stride.unwrap_or(*kernel), *padding as isize);
                let oh = (h + 2 * padding - k) / s + 1;
                let ow = (w + 2 * padding - k) / s + 1;
                let max = matches!(op, Op::Maxpool2d { .. });
                let mut o = vec![0.0; c * oh * ow];
                for ch in 0..c {
                    for y in 0..oh {
                        for xx in 0..ow {
                            let cells = (0..k * k).map(|i| {
                                let sy = (y * s + i / k) as isize - p;
                                let sx = (xx * s + i % k) as isize - p;
                                at(&v, h, w, ch, sy, sx)
                            });
                            o[(ch * oh + y) * ow + xx] = if max {
                                cells.flatten().fold(f64::NEG_INFINITY, f64::max)
                            } else {
                                cells.map(|c| c.unwrap_or(0.0)).sum::<f64>() / (k * k) as f64
                            };
                        }
                    }
                }
                (v, h, w) = (o, oh, ow);
            }
            Op::Flatten {} => (c, h, w) = (c * h * w, 1, 1),
            Op::Linear { weight, bias } => {
                let wt = t(weight);
                let o = (0..wt.shape()[0])
                    .map(|r| {
                        let b = bias.as_ref().map_or(0.0, |b| t(b)[[r]]);
                        b + (0..v.len()).map(|i| wt[[r, i]] * v[i]).sum::<f64>()
                    })
                    .collect();
                (v, c, h, w) = (o, wt.shape()[0], 1, 1);
            }
            Op::Batchnorm2d { eps, .. } | Op::Batchnorm1d { eps, .. } => {
                let n = op.tensors();
                let (g, b, m, var) = (t(n[0]), t(n[1]), t(n[2]), t(n[3]));
                let per = v.len() / c;
                for (k, x) in v.iter_mut().enumerate() {
                    let ch = k / per;
                    *x = (*x - m[[ch]]) / (var[[ch]] + eps).sqrt() * g[[ch]] + b[[ch]];
                }
            }
            Op::Add {} => {
                let other = &values[inputs[i][1]].0;
                v.iter_mut().zip(other).for_each(|(x, y)| *x += y);
            }
            Op::GlobalAvgpool {} => {
                let o = v
                    .chunks(h * w)
                    .map(|ch| ch.iter().sum::<f64>() / (h * w) as f64);
                (v, h, w) = (o.collect(), 1, 1);
            }
        }
        values.push((v, c, h, w));
    }
    values.pop().unwrap().0
}
