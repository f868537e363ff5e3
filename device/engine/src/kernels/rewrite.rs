//! The graph pass that puts this module's operators in place of tract's.

use super::int8::{quantize_weights, DequantizeI32, QuantizeI8};
use super::softmax::{RowSoftmax, MAX_ROW};
use super::{Activation, ChannelPRelu, DepthwiseConv, Geometry};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::nn::{DataFormat, Softmax, SoftmaxKind};

/// How many sites a [`rewrite`] changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rewrites {
    /// Depthwise convolutions now ours.
    pub depthwise: usize,
    /// `Relu(x) + a * Min(x, 0)` chains now one PReLU pass.
    pub prelu: usize,
    /// Activations folded into the depthwise convolution before them.
    pub fused: usize,
    /// Softmaxes over short rows now ours.
    pub softmax: usize,
    /// 1x1 convolutions now int8 ([`rewrite_int8`]).
    pub int8: usize,
}

enum Site {
    Depthwise,
    PRelu,
    Fused,
    Softmax,
}

/// Rewrites a decluttered model. Sites that do not match exactly (other dtypes, dilations,
/// asymmetric padding, symbolic shapes) are left to tract.
pub fn rewrite(model: TypedModel) -> TractResult<(TypedModel, Rewrites)> {
    let mut done = Rewrites::default();
    let model = patch_until_done(model, next_site, |site| match site {
        Site::Depthwise => done.depthwise += 1,
        Site::PRelu => done.prelu += 1,
        Site::Fused => done.fused += 1,
        Site::Softmax => done.softmax += 1,
    })?;
    Ok((model, done))
}

/// Applies the site `next` finds until it finds none, telling `count` what each one was.
/// One site per round, then compaction, so successor counts never include nodes a patch left
/// behind.
fn patch_until_done<S>(
    mut model: TypedModel,
    next: impl Fn(&TypedModel) -> TractResult<Option<(TypedModelPatch, S)>>,
    mut count: impl FnMut(S),
) -> TractResult<TypedModel> {
    while let Some((patch, site)) = next(&model)? {
        patch.apply(&mut model)?;
        model = model.into_compact()?;
        count(site);
    }
    Ok(model)
}

fn next_site(model: &TypedModel) -> TractResult<Option<(TypedModelPatch, Site)>> {
    for node in model.nodes() {
        if let Some(patch) = depthwise_site(model, node)? {
            return Ok(Some((patch, Site::Depthwise)));
        }
        if let Some(patch) = prelu_site(model, node)? {
            return Ok(Some((patch, Site::PRelu)));
        }
        if let Some(patch) = fuse_site(model, node)? {
            return Ok(Some((patch, Site::Fused)));
        }
        if let Some(patch) = softmax_site(model, node)? {
            return Ok(Some((patch, Site::Softmax)));
        }
    }
    Ok(None)
}

/// Makes every float 1x1 convolution (stride 1, no padding) an int8 one: our quantize op,
/// tract's i8 x i8 -> i32 matrix product, our dequantize op. Runs on the typed model before
/// decluttering, while the convolutions are still `Conv` ops with constant weights.
pub fn rewrite_int8(model: TypedModel) -> TractResult<(TypedModel, usize)> {
    let mut done = 0;
    let next = |model: &TypedModel| -> TractResult<Option<(TypedModelPatch, ())>> {
        for node in model.nodes() {
            if let Some(patch) = int8_site(model, node)? {
                return Ok(Some((patch, ())));
            }
        }
        Ok(None)
    };
    let model = patch_until_done(model, next, |()| done += 1)?;
    Ok((model, done))
}

fn int8_site(model: &TypedModel, node: &TypedNode) -> TractResult<Option<TypedModelPatch>> {
    let Some(conv) = float_conv(node) else { return Ok(None) };
    let spec = &conv.pool_spec;
    let pointwise = conv.group == 1
        && spec.kernel_shape.iter().all(|&k| k == 1)
        && spec.strides.as_ref().is_none_or(|s| s.iter().all(|&s| s == 1))
        && uniform_padding(&spec.padding) == Some(0);
    if !pointwise {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    let output = model.outlet_fact(OutletId::new(node.id, 0))?;
    let (Some(in_shape), Some(out_shape)) = (input.shape.as_concrete(), output.shape.as_concrete()) else {
        return Ok(None);
    };
    let r = in_shape.len();
    if input.datum_type != f32::datum_type() || r < 3 || in_shape[..r - 3].iter().any(|&d| d != 1) {
        return Ok(None);
    }
    let (ci, co) = (spec.input_channels, spec.output_channels);
    // Before decluttering, the bias may still be a small constant subgraph (reshape, cast).
    let (Some(kernel), Some(bias)) = (const_f32(model, node.inputs[1], 4)?, const_f32(model, node.inputs[2], 4)?)
    else {
        return Ok(None);
    };
    let Some(bias) = per_channel(bias, co) else { return Ok(None) };
    if kernel.len() != co * ci || in_shape[r - 3] != ci {
        return Ok(None);
    }
    let (codes, scales) = quantize_weights(&kernel, co);
    let weights = tract_ndarray::Array2::from_shape_vec((co, ci), codes)?.into_tensor();
    let mut patch = TypedModelPatch::default();
    let x = patch.tap_model(model, node.inputs[0])?;
    let quantized = patch.wire_node(format!("{}.quantize_i8", node.name), QuantizeI8, &[x])?;
    let weights = patch.add_const(format!("{}.weights_i8", node.name), weights)?;
    let product = EinSum { axes: "nk,km->nm".parse()?, operating_dt: i32::datum_type(), q_params: None };
    let acc = patch.wire_node(format!("{}.matmul_i8", node.name), product, &[weights, quantized[0]])?;
    let dequantize = DequantizeI32 { weight_scales: Arc::new(scales), bias: Arc::new(bias), shape: out_shape.into() };
    let y = patch.wire_node(&node.name, dequantize, &[acc[0], quantized[1]])?;
    patch.shunt_outside(model, OutletId::new(node.id, 0), y[0])?;
    Ok(Some(patch))
}

/// A float `Conv` with one filter per channel, square kernel, equal strides of 1 or 2,
/// no dilation and the same padding on every side.
fn depthwise_site(model: &TypedModel, node: &TypedNode) -> TractResult<Option<TypedModelPatch>> {
    let Some(conv) = float_conv(node) else { return Ok(None) };
    let spec = &conv.pool_spec;
    let channels = spec.input_channels;
    let depthwise = conv.group == channels && spec.output_channels == channels && channels > 1;
    if !depthwise || spec.kernel_shape.len() != 2 || spec.kernel_shape[0] != spec.kernel_shape[1] {
        return Ok(None);
    }
    let stride = match spec.strides.as_deref() {
        None => 1,
        Some([a, b]) if a == b && (1..=2).contains(a) => *a,
        _ => return Ok(None),
    };
    let Some(pad) = uniform_padding(&spec.padding) else { return Ok(None) };
    let input = model.outlet_fact(node.inputs[0])?;
    if input.datum_type != f32::datum_type() || input.shape.as_concrete().is_none() {
        return Ok(None);
    }
    let (Some(kernel), Some(bias)) = (konst_f32(model, node.inputs[1])?, konst_f32(model, node.inputs[2])?) else {
        return Ok(None);
    };
    let k = spec.kernel_shape[0];
    let Some(bias) = per_channel(bias, channels) else { return Ok(None) };
    if kernel.len() != channels * k * k {
        return Ok(None);
    }
    let op = DepthwiseConv {
        geometry: Geometry { kernel: k, stride, pad },
        weights: Arc::new(kernel),
        bias: Arc::new(bias),
        activation: Activation::Identity,
    };
    Ok(Some(TypedModelPatch::replace_single_op(model, node, &node.inputs[..1], op)?))
}

/// `Add(Max(x, 0), Mul(Min(x, 0), a))` (either operand order) with `a` one slope per channel
/// of `x` laid out `[.., C, H, W]`.
fn prelu_site(model: &TypedModel, node: &TypedNode) -> TractResult<Option<TypedModelPatch>> {
    if bin_name(node) != Some("Add") || node.inputs.len() != 2 {
        return Ok(None);
    }
    for (relu, scaled) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
        let Some(x) = with_zero(model, relu, "Max")? else { continue };
        let mul = model.node(scaled.node);
        if bin_name(mul) != Some("Mul") {
            continue;
        }
        for (min, slope) in [(mul.inputs[0], mul.inputs[1]), (mul.inputs[1], mul.inputs[0])] {
            if with_zero(model, min, "Min")? != Some(x) {
                continue;
            }
            let Some(slopes) = channel_slopes(model, x, slope)? else { continue };
            let op = ChannelPRelu { slopes: Arc::new(slopes) };
            return Ok(Some(TypedModelPatch::replace_single_op(model, node, &[x], op)?));
        }
    }
    Ok(None)
}

/// Our depthwise convolution whose only reader is a ReLU or a PReLU: one op doing both.
fn fuse_site(model: &TypedModel, node: &TypedNode) -> TractResult<Option<TypedModelPatch>> {
    let Some(dw) = node.op_as::<DepthwiseConv>() else { return Ok(None) };
    if dw.activation != Activation::Identity || model.outputs.contains(&OutletId::new(node.id, 0)) {
        return Ok(None);
    }
    let Some(next) = model.single_succ(node.id)? else { return Ok(None) };
    let activation = if let Some(prelu) = next.op_as::<ChannelPRelu>() {
        Activation::PRelu(prelu.slopes.clone())
    } else if with_zero(model, OutletId::new(next.id, 0), "Max")? == Some(OutletId::new(node.id, 0)) {
        Activation::Relu
    } else {
        return Ok(None);
    };
    let mut patch = TypedModelPatch::default();
    let taps = patch.taps(model, &node.inputs)?;
    let fused = patch.wire_node(&node.name, DepthwiseConv { activation, ..dw.clone() }, &taps)?;
    patch.shunt_outside(model, OutletId::new(next.id, 0), fused[0])?;
    Ok(Some(patch))
}

/// A float softmax over a last axis of at most [`MAX_ROW`] values.
fn softmax_site(model: &TypedModel, node: &TypedNode) -> TractResult<Option<TypedModelPatch>> {
    let Some(op) = node.op_as::<Softmax>() else { return Ok(None) };
    let fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = fact.shape.as_concrete() else { return Ok(None) };
    let rank = shape.len();
    let last = rank.checked_sub(1);
    let fits = op.kind == SoftmaxKind::Softmax
        && op.quant_output_dt.is_none()
        && fact.datum_type == f32::datum_type()
        && last.is_some_and(|l| op.axes.as_slice() == [l] && (1..=MAX_ROW).contains(&shape[l]));
    if !fits {
        return Ok(None);
    }
    Ok(Some(TypedModelPatch::replace_single_op(model, node, &node.inputs[..1], RowSoftmax)?))
}

/// A float convolution in the layout our operators take: OIHW kernel, channel-first data,
/// undilated, with its kernel and bias as inputs.
fn float_conv(node: &TypedNode) -> Option<&Conv> {
    let conv = node.op_as::<Conv>()?;
    let spec = &conv.pool_spec;
    let plain = conv.q_params.is_none()
        && conv.kernel_fmt == KernelFormat::OIHW
        && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && node.inputs.len() == 3
        && spec.dilations.as_ref().is_none_or(|d| d.iter().all(|&d| d == 1));
    plain.then_some(conv)
}

/// The padding when it is the same on every side (0 for `Valid`); `None` otherwise.
fn uniform_padding(padding: &PaddingSpec) -> Option<usize> {
    match padding {
        PaddingSpec::Valid => Some(0),
        PaddingSpec::Explicit(before, after) => {
            let p = before.first().copied().unwrap_or(0);
            before.iter().chain(after).all(|&q| q == p).then_some(p)
        }
        _ => None,
    }
}

/// A bias of one value per channel, or one value for all; `None` for any other length.
fn per_channel(bias: Vec<f32>, channels: usize) -> Option<Vec<f32>> {
    match bias.len() {
        1 => Some(vec![bias[0]; channels]),
        n if n == channels => Some(bias),
        _ => None,
    }
}

/// The name of a binary elementwise op (`Add`, `Max`, ...), if the node is one.
fn bin_name(node: &TypedNode) -> Option<&'static str> {
    node.op_as::<TypedBinOp>().map(|op| op.0.name())
}

/// If `outlet` is `op(x, 0)` or `op(0, x)` with a constant zero, returns `x`.
fn with_zero(model: &TypedModel, outlet: OutletId, op: &str) -> TractResult<Option<OutletId>> {
    let node = model.node(outlet.node);
    if bin_name(node) != Some(op) || node.inputs.len() != 2 {
        return Ok(None);
    }
    for (x, zero) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
        if konst_f32(model, zero)?.is_some_and(|z| !z.is_empty() && z.iter().all(|&v| v == 0.0)) {
            return Ok(Some(x));
        }
    }
    Ok(None)
}

/// The slopes of a per-channel constant broadcast against `x` (`[.., C, H, W]`).
fn channel_slopes(model: &TypedModel, x: OutletId, slope: OutletId) -> TractResult<Option<Vec<f32>>> {
    let Some(shape) = model.outlet_fact(x)?.shape.as_concrete().map(|s| s.to_vec()) else { return Ok(None) };
    let fact = model.outlet_fact(slope)?;
    let Some(values) = konst_f32(model, slope)? else { return Ok(None) };
    let (rank, srank) = (shape.len(), fact.rank());
    if rank < 3 || srank > rank || model.outlet_fact(x)?.datum_type != f32::datum_type() {
        return Ok(None);
    }
    let channels = shape[rank - 3];
    let per_channel = fact.shape.as_concrete().is_some_and(|s| {
        s.iter().enumerate().all(|(i, &d)| d == if rank - srank + i == rank - 3 { channels } else { 1 })
    });
    Ok((per_channel && values.len() == channels).then_some(values))
}

/// The value of an outlet computed only from constants, up to `depth` ops away, as f32.
fn const_f32(model: &TypedModel, outlet: OutletId, depth: usize) -> TractResult<Option<Vec<f32>>> {
    let Some(t) = const_tensor(model, outlet, depth)? else { return Ok(None) };
    let t = t.cast_to::<f32>()?;
    Ok(Some(t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec()))
}

fn const_tensor(model: &TypedModel, outlet: OutletId, depth: usize) -> TractResult<Option<Arc<Tensor>>> {
    if let Some(t) = &model.outlet_fact(outlet)?.konst {
        return Ok(Some(t.clone()));
    }
    let node = model.node(outlet.node);
    if depth == 0 || node.inputs.is_empty() {
        return Ok(None);
    }
    let mut inputs = TVec::new();
    for &i in &node.inputs {
        let Some(t) = const_tensor(model, i, depth - 1)? else { return Ok(None) };
        inputs.push(t.into_tvalue());
    }
    let Some(outputs) = node.op.eval_out_of_plan(inputs)? else { return Ok(None) };
    Ok(Some(outputs[outlet.slot].clone().into_arc_tensor()))
}

/// The value of a constant float outlet.
fn konst_f32(model: &TypedModel, outlet: OutletId) -> TractResult<Option<Vec<f32>>> {
    let fact = model.outlet_fact(outlet)?;
    match &fact.konst {
        Some(t) if t.datum_type() == f32::datum_type() => Ok(Some(t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())),
        _ => Ok(None),
    }
}
