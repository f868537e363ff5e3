//! Depthwise convolution (one k x k filter per channel, symmetric zero padding, stride 1 or 2)
//! with the activation that follows it fused in.
//!
//! Each channel plane is copied once into a zero-padded scratch plane. At stride 1 every filter
//! tap is then one contiguous multiply-add over the whole plane; at stride 2 a 3x3 kernel reads
//! column pairs row by row (other kernels compute the row at full resolution and keep every
//! other column). The inner loops are plain slice arithmetic the compiler vectorises (AVX2 on
//! x86-64 when the CPU has it, NEON on arm64).

use super::Activation;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// Geometry of one depthwise layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Geometry {
    /// Output side for an input side, `None` when the kernel does not fit.
    pub fn out_len(&self, len: usize) -> Option<usize> {
        let padded = len + 2 * self.pad;
        (padded >= self.kernel && self.stride > 0).then(|| (padded - self.kernel) / self.stride + 1)
    }
}

/// The tract operator: input `[.., C, H, W]`, weights `[C, k, k]`, bias `[C]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthwiseConv {
    pub geometry: Geometry,
    pub weights: Arc<Vec<f32>>,
    pub bias: Arc<Vec<f32>>,
    pub activation: Activation,
}

// tract compares ops for equality (Eq); the float fields are compared bit for bit in practice.
impl Eq for DepthwiseConv {}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "FacegateDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = self.geometry;
        Ok(vec![format!("{0}x{0} stride {1} pad {2}, {3:?}", g.kernel, g.stride, g.pad, self.activation)])
    }

    op_as_typed_op!();
}

impl DepthwiseConv {
    fn output_shape(&self, input: &[usize]) -> TractResult<Vec<usize>> {
        let r = input.len();
        ensure!(r >= 3, "depthwise input must be [.., C, H, W], got {input:?}");
        ensure!(input[r - 3] == self.bias.len(), "depthwise op has {} channels, input {input:?}", self.bias.len());
        let oh = self.geometry.out_len(input[r - 2]);
        let ow = self.geometry.out_len(input[r - 1]);
        let (Some(oh), Some(ow)) = (oh, ow) else { bail!("depthwise kernel larger than input {input:?}") };
        let mut out = input.to_vec();
        out[r - 2] = oh;
        out[r - 1] = ow;
        Ok(out)
    }
}

impl EvalOp for DepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let shape = x.shape();
        let out_shape = self.output_shape(shape)?;
        let r = shape.len();
        let planes: usize = shape[..r - 2].iter().product();
        // Allocated by tract (aligned as its kernels want) and written in place.
        let mut out = Tensor::zero::<f32>(&out_shape)?;
        let layer = Layer {
            geometry: self.geometry,
            h: shape[r - 2],
            w: shape[r - 1],
            channels: self.bias.len(),
            weights: &self.weights,
            bias: &self.bias,
            activation: &self.activation,
        };
        let mut dst = out.try_as_plain_ram_mut()?;
        run(&layer, x.try_as_plain_ram()?.as_slice::<f32>()?, planes, dst.as_slice_mut::<f32>()?);
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for DepthwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let Some(shape) = inputs[0].shape.as_concrete() else { bail!("depthwise op needs a concrete input shape") };
        Ok(tvec!(f32::fact(self.output_shape(shape)?)))
    }

    as_op!();
}

/// One layer's parameters, borrowed for a run.
pub struct Layer<'a> {
    pub geometry: Geometry,
    pub h: usize,
    pub w: usize,
    pub channels: usize,
    pub weights: &'a [f32],
    pub bias: &'a [f32],
    pub activation: &'a Activation,
}

with_avx2! {
    /// Runs `planes` channel planes (`planes` is a multiple of the channel count: batch x C) of
    /// `input` into `out`. (An AVX-512 build of the same code measured no faster here.)
    pub fn run(layer: &Layer, input: &[f32], planes: usize, out: &mut [f32]) = run_portable;
}

#[inline(always)]
fn run_portable(layer: &Layer, input: &[f32], planes: usize, out: &mut [f32]) {
    let g = layer.geometry;
    let (h, w, k) = (layer.h, layer.w, g.kernel);
    let (Some(oh), Some(ow)) = (g.out_len(h), g.out_len(w)) else { return };
    let (ph, pw) = (h + 2 * g.pad, w + 2 * g.pad);
    // The zero-padded plane; padding positions are the same for every channel, so they are
    // zeroed once and never written.
    let mut padded = vec![0f32; ph * pw];
    let mut acc = vec![0f32; if g.stride == 1 { (oh - 1) * pw + ow } else { pw - k + 1 }];
    for plane in 0..planes {
        let c = plane % layer.channels;
        let src = &input[plane * h * w..][..h * w];
        for (row, dst) in src.chunks_exact(w).zip(padded[g.pad * pw..].chunks_exact_mut(pw)) {
            dst[g.pad..g.pad + w].copy_from_slice(row);
        }
        let weights = &layer.weights[c * k * k..][..k * k];
        let bias = layer.bias[c];
        let dst = &mut out[plane * oh * ow..][..oh * ow];
        if g.stride == 1 {
            // All outputs at once: output (y, x) is acc[y * pw + x].
            taps(&padded, pw, k, weights, bias, &mut acc);
            for (row, src) in dst.chunks_exact_mut(ow).zip(acc.chunks(pw)) {
                row.copy_from_slice(&src[..ow]);
                layer.activation.apply(row, c);
            }
            continue;
        }
        for (y, row) in dst.chunks_exact_mut(ow).enumerate() {
            let src = &padded[2 * y * pw..];
            if k == 3 {
                // Output x reads columns 2x, 2x + 1 (a pair) and 2x + 2 (the next pair's first).
                row.fill(bias);
                for (ky, wts) in weights.chunks_exact(3).enumerate() {
                    let line = &src[ky * pw..][..pw];
                    for ((o, p), n) in row.iter_mut().zip(line.chunks_exact(2)).zip(line[2..].chunks(2)) {
                        *o = n[0].mul_add(wts[2], p[1].mul_add(wts[1], p[0].mul_add(wts[0], *o)));
                    }
                }
            } else {
                // Other kernels: the row at full horizontal resolution, then every other column.
                taps(src, pw, k, weights, bias, &mut acc);
                for (o, pair) in row.iter_mut().zip(acc.chunks(2)) {
                    *o = pair[0];
                }
            }
            layer.activation.apply(row, c);
        }
    }
}

/// `acc[i] = bias + sum over (ky, kx) of weights[ky][kx] * src[i + ky * pw + kx]`: with `src`
/// a padded plane of row pitch `pw`, `acc[y * pw + x]` is the stride-1 output (y, x), and the
/// positions with x past the output width are computed and dropped. Each tap is one long,
/// contiguous multiply-add, which vectorises well even on 7-pixel planes.
#[inline(always)]
fn taps(src: &[f32], pw: usize, k: usize, weights: &[f32], bias: f32, acc: &mut [f32]) {
    let len = acc.len();
    acc.fill(bias);
    for ky in 0..k {
        let base = ky * pw;
        let wts = &weights[ky * k..][..k];
        if k == 3 {
            // The common case: a kernel row's three taps in one pass.
            let (a, b, c) = (&src[base..][..len], &src[base + 1..][..len], &src[base + 2..][..len]);
            for (((o, &a), &b), &c) in acc.iter_mut().zip(a).zip(b).zip(c) {
                *o = c.mul_add(wts[2], b.mul_add(wts[1], a.mul_add(wts[0], *o)));
            }
        } else {
            for (kx, &wt) in wts.iter().enumerate() {
                for (o, &v) in acc.iter_mut().zip(&src[base + kx..][..len]) {
                    *o = v.mul_add(wt, *o);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one output at a time.
    fn naive(layer: &Layer, input: &[f32], planes: usize) -> Vec<f32> {
        let g = layer.geometry;
        let (h, w, k) = (layer.h as isize, layer.w as isize, g.kernel);
        let (oh, ow) = (g.out_len(layer.h).unwrap(), g.out_len(layer.w).unwrap());
        let mut out = Vec::new();
        for plane in 0..planes {
            let c = plane % layer.channels;
            for y in 0..oh {
                for x in 0..ow {
                    let mut v = layer.bias[c] as f64;
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (y * g.stride + ky) as isize - g.pad as isize;
                            let ix = (x * g.stride + kx) as isize - g.pad as isize;
                            if (0..h).contains(&iy) && (0..w).contains(&ix) {
                                let px = input[plane * (h * w) as usize + (iy * w + ix) as usize] as f64;
                                v += px * layer.weights[c * k * k + ky * k + kx] as f64;
                            }
                        }
                    }
                    let v = v as f32;
                    out.push(match layer.activation {
                        Activation::Identity => v,
                        Activation::Relu => v.max(0.0),
                        Activation::PRelu(ref a) => {
                            if v < 0.0 {
                                v * a[c]
                            } else {
                                v
                            }
                        }
                    });
                }
            }
        }
        out
    }

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    #[test]
    fn matches_the_definition_on_every_geometry() {
        let activations = [Activation::Identity, Activation::Relu, Activation::PRelu(Arc::new(vec![0.25, -0.5, 1.5]))];
        let mut cases = 0;
        for (kernel, pad) in [(3, 1), (3, 0), (3, 2), (4, 0), (7, 0), (1, 0), (5, 2)] {
            for stride in [1, 2] {
                for (h, w) in [(1, 1), (7, 7), (8, 5), (14, 14), (13, 20), (56, 9)] {
                    let g = Geometry { kernel, stride, pad };
                    let (Some(oh), Some(ow)) = (g.out_len(h), g.out_len(w)) else { continue };
                    for (ai, activation) in activations.iter().enumerate() {
                        let channels = 3;
                        let planes = 2 * channels; // a batch of two
                        let weights = values(channels * kernel * kernel, 1 + ai);
                        let bias = values(channels, 7);
                        let layer = Layer { geometry: g, h, w, channels, weights: &weights, bias: &bias, activation };
                        let input = values(planes * h * w, kernel + h + w);
                        let mut out = vec![f32::NAN; planes * oh * ow];
                        run(&layer, &input, planes, &mut out);
                        let want = naive(&layer, &input, planes);
                        for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                            assert!(
                                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                                "{g:?} {h}x{w} {activation:?} [{i}]: {a} vs {b}"
                            );
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 100, "{cases}");
    }

    #[test]
    fn kernel_larger_than_the_padded_input_has_no_output() {
        let g = Geometry { kernel: 7, stride: 1, pad: 0 };
        assert_eq!(g.out_len(6), None);
        assert_eq!(g.out_len(7), Some(1));
        assert_eq!(Geometry { kernel: 3, stride: 2, pad: 1 }.out_len(56), Some(28));
    }
}
