//! Our own tract operators for the layers tract 0.23 runs slowly on these networks, found with
//! the per-node profile (`facegate bench profile`):
//! - depthwise convolutions: tract's are scalar code (figures in docs/PERFORMANCE.md);
//! - PReLU, which the ONNX graph spells as four elementwise operations;
//! - softmax over the detector's rows of two classes.
//!
//! [`rewrite`] swaps them into a decluttered graph before tract's own optimisation, and folds
//! the ReLU/PReLU that follows a depthwise convolution into it. With [`Kernels::OwnInt8`],
//! [`rewrite_int8`] first turns the 1x1 convolutions into int8 products on tract's int8
//! kernels (see `int8`). Everything else (float 1x1 convolutions as matrix products, the first
//! dense convolution, pooling) stays tract's.

/// Defines `$vis fn $name(args) -> ret` running `$portable`, compiled a second time for AVX2+FMA
/// and that copy used when the CPU has them: the crate itself targets baseline x86-64, so the
/// kernels' loops would otherwise vectorise for SSE2 only. `$portable` must be
/// `#[inline(always)]`, so that its body is compiled inside the AVX2 wrapper.
macro_rules! with_avx2 {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $portable:ident;) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $portable($($arg),*)
                }
                // SAFETY: the CPU has the features `avx2` is compiled for (checked above).
                return unsafe { avx2($($arg),*) };
            }
            $portable($($arg),*)
        }
    };
}

mod depthwise;
mod int8;
mod prelu;
mod rewrite;
mod softmax;

pub use depthwise::{DepthwiseConv, Geometry};
pub use int8::{DequantizeI32, QuantizeI8};
pub use prelu::ChannelPRelu;
pub use rewrite::{rewrite, rewrite_int8, Rewrites};
pub use softmax::RowSoftmax;

use std::sync::Arc;

/// Which implementation runs the layers above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// Tract's operators only (kept for comparison in `facegate bench` and the tests).
    Tract,
    /// Ours where they apply.
    #[default]
    Own,
    /// Ours, and the 1x1 convolutions in int8 ([`rewrite_int8`]).
    OwnInt8,
}

/// The activation folded into a depthwise convolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// One slope per channel.
    PRelu(Arc<Vec<f32>>),
}

impl Activation {
    /// Applies the activation to one plane (or row) of channel `channel`. Inlined so that it
    /// is compiled with the caller's vector instructions.
    #[inline(always)]
    pub fn apply(&self, plane: &mut [f32], channel: usize) {
        match self {
            Activation::Identity => {}
            Activation::Relu => {
                for v in plane {
                    *v = v.max(0.0);
                }
            }
            Activation::PRelu(slopes) => prelu(plane, slopes[channel]),
        }
    }
}

/// `x < 0 ? a x : x`, written as a select so it vectorises.
#[inline(always)]
fn prelu(plane: &mut [f32], slope: f32) {
    for v in plane {
        *v *= if *v < 0.0 { slope } else { 1.0 };
    }
}
