//! 1x1 convolutions in int8: quantize the activations (symmetric, one scale per call), let
//! tract multiply int8 by int8 into int32 with its VNNI / dot-product kernels, dequantize with
//! the per-output-channel weight scales and add the bias.
//!
//! tract 0.23 runs ONNX Q/DQ graphs as float (every QuantizeLinear an elementwise pass, every
//! convolution in f32), so an int8 file alone is never faster there. Its int8 matrix product,
//! reached through a plain `EinSum` over i8 operands with an i32 accumulator, is 1.4-3x faster
//! than f32 on these shapes; the quantize and dequantize passes around it are ours because
//! tract's own are elementwise and would eat the gain.
//!
//! The activation scale is max|x| / 127 of each input, computed per call: no calibration set
//! to drift from, and no clipping of the rare large activations.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// f32 `[.., C, H, W]` (leading dims 1) -> (i8 `[C, H*W]`, f32 scalar scale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizeI8;

impl Op for QuantizeI8 {
    fn name(&self) -> StaticName {
        "FacegateQuantizeI8".into()
    }

    op_as_typed_op!();
}

fn matrix_shape(shape: &[usize]) -> TractResult<[usize; 2]> {
    let r = shape.len();
    ensure!(r >= 3 && shape[..r - 3].iter().all(|&d| d == 1), "int8 input must be [1.., C, H, W], got {shape:?}");
    Ok([shape[r - 3], shape[r - 2] * shape[r - 1]])
}

impl EvalOp for QuantizeI8 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let [c, hw] = matrix_shape(x.shape())?;
        let data = x.try_as_plain_ram()?.as_slice::<f32>()?;
        let mut q = Tensor::zero::<i8>(&[c, hw])?;
        let scale = quantize(data, q.try_as_plain_ram_mut()?.as_slice_mut::<i8>()?);
        Ok(tvec!(q.into_tvalue(), tensor0(scale).into_tvalue()))
    }
}

impl TypedOp for QuantizeI8 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let Some(shape) = inputs[0].shape.as_concrete() else { bail!("int8 quantize needs a concrete shape") };
        Ok(tvec!(i8::fact(matrix_shape(shape)?), f32::scalar_fact()))
    }

    as_op!();
}

/// (i32 `[Co, H*W]`, f32 scalar input scale) -> f32 `shape` (`[.., Co, H, W]`):
/// `acc * input_scale * weight_scale[co] + bias[co]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DequantizeI32 {
    pub weight_scales: Arc<Vec<f32>>,
    pub bias: Arc<Vec<f32>>,
    pub shape: TVec<usize>,
}

// tract compares ops for equality (Eq); the scales are finite.
impl Eq for DequantizeI32 {}

impl Op for DequantizeI32 {
    fn name(&self) -> StaticName {
        "FacegateDequantizeI32".into()
    }

    op_as_typed_op!();
}

impl EvalOp for DequantizeI32 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let acc = inputs[0].try_as_plain_ram()?.as_slice::<i32>()?;
        let input_scale = *inputs[1].try_as_plain_ram()?.as_slice::<f32>()?.first().context("no scale")?;
        let co = self.bias.len();
        ensure!(acc.len() % co.max(1) == 0 && acc.len() == self.shape.iter().product::<usize>(), "int8 output size");
        let mut out = Tensor::zero::<f32>(&self.shape)?;
        dequantize(
            acc,
            input_scale,
            &self.weight_scales,
            &self.bias,
            out.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?,
        );
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for DequantizeI32 {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(self.shape.clone())))
    }

    as_op!();
}

/// Per-output-channel symmetric int8 weights of a `[co, ci]` matrix: (codes, scales).
/// A channel of zeros gets scale 1 (its codes are 0 whatever the scale).
pub fn quantize_weights(w: &[f32], co: usize) -> (Vec<i8>, Vec<f32>) {
    let ci = w.len() / co.max(1);
    let mut codes = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(co);
    for row in w.chunks_exact(ci.max(1)) {
        let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if amax > 0.0 && amax.is_finite() { amax / 127.0 } else { 1.0 };
        codes.extend(row.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
        scales.push(s);
    }
    (codes, scales)
}

with_avx2! {
    /// `q = round(x / s)` with `s = max|x| / 127`; returns `s`. Non-finite inputs make no sense
    /// for a network activation; they are left out of the scale rather than poisoning it (NaN
    /// then maps to -127, infinities to the ends of the range).
    pub fn quantize(x: &[f32], q: &mut [i8]) -> f32 = quantize_impl;
}

with_avx2! {
    /// `out[c][i] = acc[c][i] * input_scale * weight_scales[c] + bias[c]`.
    pub fn dequantize(acc: &[i32], input_scale: f32, weight_scales: &[f32], bias: &[f32], out: &mut [f32]) = dequantize_impl;
}

#[inline(always)]
fn quantize_impl(x: &[f32], q: &mut [i8]) -> f32 {
    // Max-abs in 16 lanes so the reduction vectorises.
    let mut lanes = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v.abs());
        }
    }
    let mut amax = tail.iter().chain(&lanes).fold(0f32, |m, v| m.max(v.abs()));
    if !amax.is_finite() {
        // Not expected from a network; keep the scale meaningful for the finite values.
        amax = x.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs()));
    }
    let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
    let inv = 1.0 / scale;
    // Adding 1.5 * 2^23 rounds to an integer (half to even) held in the low mantissa bits, so
    // no float-to-int conversion or libm call is needed; exact for |v| <= 2^22.
    const MAGIC: f32 = 12_582_912.0;
    const MAGIC_BITS: u32 = 0x4B40_0000;
    for (o, &v) in q.iter_mut().zip(x) {
        // Not `clamp`: that keeps NaN, which has no int8 code; max picks -127 for it.
        #[allow(clippy::manual_clamp)]
        let v = (v * inv).max(-127.0).min(127.0);
        // Wrapping: the difference fits in i8 by construction, and an overflow check in the
        // loop would stop it vectorising.
        *o = (v + MAGIC).to_bits().wrapping_sub(MAGIC_BITS) as i8;
    }
    scale
}

#[inline(always)]
fn dequantize_impl(acc: &[i32], input_scale: f32, weight_scales: &[f32], bias: &[f32], out: &mut [f32]) {
    let per = acc.len() / bias.len().max(1);
    for (((o, a), &ws), &b) in out.chunks_mut(per).zip(acc.chunks(per)).zip(weight_scales).zip(bias) {
        let s = input_scale * ws;
        for (o, &a) in o.iter_mut().zip(a) {
            *o = (a as f32).mul_add(s, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_uses_the_full_range_and_rounds_to_nearest() {
        let x = [0.0f32, 1.0, -2.54, 2.54, 0.01, -0.03, 1.27];
        let mut q = [0i8; 7];
        let s = quantize(&x, &mut q);
        assert!((s - 0.02).abs() < 1e-7, "{s}");
        assert_eq!(q, [0, 50, -127, 127, 0, -2, 64]); // 0.5 -> 0 and -1.5 -> -2: ties to even
    }

    #[test]
    fn quantize_survives_zeros_and_non_finite_values() {
        let mut q = [9i8; 3];
        assert_eq!(quantize(&[0.0, 0.0, -0.0], &mut q), 1.0);
        assert_eq!(q, [0, 0, 0]);
        let mut q = [0i8; 4];
        let s = quantize(&[f32::NAN, 2.0, f32::INFINITY, -1.0], &mut q);
        assert!((s - 2.0 / 127.0).abs() < 1e-7);
        assert_eq!(q[1..], [127, 127, -64]);
    }

    #[test]
    fn weights_round_trip_through_their_scales() {
        let w = [0.5f32, -1.0, 0.25, 0.0, 0.0, 0.0];
        let (codes, scales) = quantize_weights(&w, 2);
        assert_eq!(codes, vec![64, -127, 32, 0, 0, 0]);
        assert_eq!(scales[1], 1.0);
        for (c, v) in codes.iter().zip(&w[..3]) {
            assert!((*c as f32 * scales[0] - v).abs() <= scales[0] / 2.0);
        }
    }

    #[test]
    fn dequantize_applies_both_scales_and_the_bias() {
        let mut out = [0f32; 4];
        dequantize(&[10, -20, 3, 4], 0.5, &[1.0, 2.0], &[0.25, -1.0], &mut out);
        assert_eq!(out, [5.25, -9.75, 2.0, 3.0]);
    }
}
