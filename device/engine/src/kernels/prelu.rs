//! Per-channel PReLU in one in-place pass.
//!
//! The rebuild script writes each `PRelu(x, a)` as `Relu(x) + a * Min(x, 0)` so that plain
//! tract runs it at all quickly; tract still makes two elementwise chains of it (a fifth of
//! the embedding's time). This operator is the same function in a single pass.

use super::prelu;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// The tract operator: input `[.., C, H, W]` (channel-major planes), one slope per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelPRelu {
    pub slopes: Arc<Vec<f32>>,
}

// tract compares ops for equality (Eq); the slopes are never NaN.
impl Eq for ChannelPRelu {}

impl Op for ChannelPRelu {
    fn name(&self) -> StaticName {
        "FacegatePRelu".into()
    }

    op_as_typed_op!();
}

impl EvalOp for ChannelPRelu {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        // The producer's buffer is reused when nothing else holds it (the usual case).
        let mut x = inputs.remove(0).into_tensor();
        let shape = x.shape();
        ensure!(shape.len() >= 3, "PReLU input must be [.., C, H, W], got {shape:?}");
        ensure!(shape[shape.len() - 3] == self.slopes.len(), "PReLU has {} slopes, input {shape:?}", self.slopes.len());
        let plane: usize = shape[shape.len() - 2..].iter().product();
        let mut view = x.try_as_plain_ram_mut()?;
        prelu_planes(view.as_slice_mut::<f32>()?, &self.slopes, plane);
        Ok(tvec!(x.into_tvalue()))
    }
}

impl TypedOp for ChannelPRelu {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

with_avx2! {
    /// Applies `slopes[c]` to consecutive planes of `plane` values, channel after channel.
    pub fn prelu_planes(data: &mut [f32], slopes: &[f32], plane: usize) = prelu_planes_portable;
}

#[inline(always)]
fn prelu_planes_portable(data: &mut [f32], slopes: &[f32], plane: usize) {
    for (i, p) in data.chunks_mut(plane.max(1)).enumerate() {
        prelu(p, slopes[i % slopes.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_only_negative_values_by_their_channel_slope() {
        let mut data = vec![-2.0, 3.0, -1.0, 0.0, -4.0, 5.0, -0.5, 1.0];
        prelu_planes(&mut data, &[0.5, -1.5], 2);
        // Channels 0, 1, 0, 1 (two batches of two channels, planes of two values).
        assert_eq!(data, vec![-1.0, 3.0, 1.5, 0.0, -2.0, 5.0, 0.75, 1.0]);
    }
}
