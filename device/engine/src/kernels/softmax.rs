//! Softmax over a short last axis (the detector's 2 classes for each of 4,420 anchors).
//!
//! tract's softmax is built for long rows and pays per row on many short ones
//! (docs/PERFORMANCE.md). This is the textbook loop: max, exp, sum, divide.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// Rows longer than this stay with tract.
pub const MAX_ROW: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSoftmax;

impl Op for RowSoftmax {
    fn name(&self) -> StaticName {
        "FacegateRowSoftmax".into()
    }

    op_as_typed_op!();
}

impl EvalOp for RowSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut x = inputs.remove(0).into_tensor();
        let row = x.shape().last().copied().unwrap_or(0);
        ensure!((1..=MAX_ROW).contains(&row), "row softmax on shape {:?}", x.shape());
        let mut view = x.try_as_plain_ram_mut()?;
        for r in view.as_slice_mut::<f32>()?.chunks_exact_mut(row) {
            softmax(r);
        }
        Ok(tvec!(x.into_tvalue()))
    }
}

impl TypedOp for RowSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

/// In place; the max is subtracted first so large logits cannot overflow.
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_keep_order() {
        let mut r = [1.0f32, 3.0];
        softmax(&mut r);
        assert!((r[0] + r[1] - 1.0).abs() < 1e-6);
        assert!((r[1] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
        let mut big = [1000.0f32, 0.0, -1000.0];
        softmax(&mut big);
        assert!(big.iter().all(|v| v.is_finite()) && (big[0] - 1.0).abs() < 1e-6);
    }
}
