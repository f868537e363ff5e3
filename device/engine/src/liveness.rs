//! Presentation-attack check with the shipped MiniFASNet (optional, off by default).
//!
//! Preprocessing follows the package's `fr_liveness.js`: the detector box scaled 2.7x about
//! its centre (shrunk to fit the frame, shifted inside it), resized to 128x128, raw RGB
//! 0..255; the score is `softmax(logits)[0]`. We have no presentation-attack data, so the
//! score is reported but its threshold is unvalidated.

use super::detect::FaceBox;
use super::error::{EngineError, Result};
use super::model::Net;
use super::resample::resize_region_planar;
use image::RgbImage;

pub use super::model::input::LIVENESS_SIDE as INPUT_SIDE;
const BOX_SCALE: f32 = 2.7;

pub struct LivenessNet {
    net: Net,
}

impl LivenessNet {
    pub fn new(net: Net) -> LivenessNet {
        LivenessNet { net }
    }

    /// Live-face score in 0..1 (higher = live, per the shipped JS).
    pub fn score(&self, img: &RgbImage, face: &FaceBox) -> Result<f32> {
        let region = crop_region(face, img.width() as f32, img.height() as f32);
        let mut input = vec![0.0f32; 3 * INPUT_SIDE * INPUT_SIDE];
        resize_region_planar(img, region, INPUT_SIDE, INPUT_SIDE, [0, 1, 2], |x| x, &mut input);
        let out = self.net.run(input)?;
        let logits =
            out.first().filter(|l| l.len() == 3).ok_or_else(|| EngineError::inference("liveness", "3 logits"))?;
        Ok(softmax(logits)[0])
    }
}

/// The scaled box, kept inside the frame the way `alignLivenessImage` does.
pub fn crop_region(face: &FaceBox, w: f32, h: f32) -> (f32, f32, f32, f32) {
    let (bw, bh) = (face.width().max(1.0), face.height().max(1.0));
    let scale = BOX_SCALE.min((h - 1.0) / bh).min((w - 1.0) / bw).max(0.0);
    let (nw, nh) = (bw * scale, bh * scale);
    let (cx, cy) = face.centre();
    let x0 = (cx - nw / 2.0).clamp(0.0, (w - 1.0 - nw).max(0.0));
    let y0 = (cy - nh / 2.0).clamp(0.0, (h - 1.0 - nh).max(0.0));
    (x0, y0, nw, nh)
}

fn softmax(v: &[f32]) -> Vec<f32> {
    let max = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let e: Vec<f32> = v.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_is_scaled_and_kept_inside_the_frame() {
        let face = FaceBox { x1: 100.0, y1: 100.0, x2: 150.0, y2: 160.0, score: 1.0 };
        let (x, y, w, h) = crop_region(&face, 640.0, 480.0);
        assert!((w - 135.0).abs() < 1e-3 && (h - 162.0).abs() < 1e-3);
        assert!((x + w / 2.0 - 125.0).abs() < 1e-3 && (y + h / 2.0 - 130.0).abs() < 1e-3);
        // Near the corner: shifted in, not cut.
        let corner = FaceBox { x1: 0.0, y1: 0.0, x2: 40.0, y2: 40.0, score: 1.0 };
        let (x, y, w, _) = crop_region(&corner, 640.0, 480.0);
        assert_eq!((x, y), (0.0, 0.0));
        assert!((w - 108.0).abs() < 1e-3);
        // A face filling the frame: the scale shrinks to fit.
        let big = FaceBox { x1: 0.0, y1: 0.0, x2: 300.0, y2: 300.0, score: 1.0 };
        let (_, _, w, h) = crop_region(&big, 320.0, 320.0);
        assert!(w <= 319.001 && h <= 319.001, "{w}x{h}");
    }

    #[test]
    fn softmax_sums_to_one() {
        let s = softmax(&[1.0, 2.0, 3.0]);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(s[2] > s[1] && s[1] > s[0]);
    }
}
