//! Presentation-attack detection: is the face in front of the camera a live person or a photo?
//!
//! A liveness check is one or more networks from the manifest (role `liveness`), each cutting
//! its input from the frame as its authors did ([`CropSpec`]); their "live" probabilities are
//! averaged. Which networks and which threshold a device uses is measured, not assumed:
//! `models/liveness.toml`, written by `facegate eval liveness --fit-out` (docs/LIVENESS.md).

use super::detect::FaceBox;
use super::error::{EngineError, Result};
use super::model::{CropSpec, Net};
use super::resample::resize_region_planar;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One network and its preprocessing.
pub struct LivenessNet {
    pub name: String,
    net: Net,
    crop: CropSpec,
}

impl LivenessNet {
    pub fn new(net: Net, crop: CropSpec) -> LivenessNet {
        LivenessNet { name: net.name.clone(), net, crop }
    }

    /// Probability that `face` in `img` is a live person (0..1).
    pub fn score(&self, img: &RgbImage, face: &FaceBox) -> Result<f32> {
        let c = self.crop;
        let region = crop_region(face, c.box_scale, img.width() as f32, img.height() as f32);
        let order = if c.bgr { [2, 1, 0] } else { [0, 1, 2] };
        let mut input = vec![0.0f32; 3 * c.side * c.side];
        resize_region_planar(img, region, c.side, c.side, order, |x| x, &mut input);
        let out = self.net.run(input)?;
        let logits = out
            .first()
            .filter(|l| l.len() > c.live_class)
            .ok_or_else(|| EngineError::inference("liveness", format!("logits with class {}", c.live_class)))?;
        Ok(softmax(logits)[c.live_class])
    }
}

/// The liveness check a device runs: networks averaged, and the threshold below which the
/// average means "a photo".
pub struct Liveness {
    pub nets: Vec<LivenessNet>,
    pub threshold: f32,
}

impl Liveness {
    /// Mean live probability of the networks for one face.
    pub fn score(&self, img: &RgbImage, face: &FaceBox) -> Result<f32> {
        let mut sum = 0.0;
        for n in &self.nets {
            sum += n.score(img, face)?;
        }
        Ok(sum / self.nets.len().max(1) as f32)
    }

    /// Names of the networks, joined with `+` (e.g. `liveness-v2+liveness-v1se`).
    pub fn name(&self) -> String {
        self.nets.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join("+")
    }
}

/// A visit's liveness from its frames' scores: their mean. A print shows no life in any frame,
/// and one lucky frame must not let it through, so the frames are not max-pooled.
pub fn visit_score(frames: &[f32]) -> Option<f32> {
    (!frames.is_empty()).then(|| frames.iter().sum::<f32>() / frames.len() as f32)
}

/// `models/liveness.toml`: the configuration chosen on development data and what it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivenessConfig {
    /// Manifest names of the networks, averaged.
    pub models: Vec<String>,
    /// Mean live probability below which a face is refused.
    pub threshold: f32,
    /// The APCER the threshold was chosen for, on the subjects it was fitted on.
    pub target_apcer: f64,
    /// What it was fitted on and what it measured on held-out subjects (for people, not code).
    #[serde(default)]
    pub evidence: String,
}

impl LivenessConfig {
    pub const FILE: &'static str = "liveness.toml";

    pub fn load(path: &Path) -> Result<LivenessConfig> {
        let err = |reason: String| EngineError::Manifest { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let c: LivenessConfig = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        if c.models.is_empty() {
            return Err(err("no liveness models listed".into()));
        }
        if !(0.0..=1.0).contains(&c.threshold) {
            return Err(err(format!("threshold {} is not a probability", c.threshold)));
        }
        Ok(c)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// The box scaled `scale` times about its centre, shrunk so it fits the frame and shifted
/// inside it (as both networks' authors crop).
pub fn crop_region(face: &FaceBox, scale: f32, w: f32, h: f32) -> (f32, f32, f32, f32) {
    let (bw, bh) = (face.width().max(1.0), face.height().max(1.0));
    let scale = scale.min((h - 1.0) / bh).min((w - 1.0) / bw).max(0.0);
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
        let (x, y, w, h) = crop_region(&face, 2.7, 640.0, 480.0);
        assert!((w - 135.0).abs() < 1e-3 && (h - 162.0).abs() < 1e-3);
        assert!((x + w / 2.0 - 125.0).abs() < 1e-3 && (y + h / 2.0 - 130.0).abs() < 1e-3);
        // Near the corner: shifted in, not cut.
        let corner = FaceBox { x1: 0.0, y1: 0.0, x2: 40.0, y2: 40.0, score: 1.0 };
        let (x, y, w, _) = crop_region(&corner, 2.7, 640.0, 480.0);
        assert_eq!((x, y), (0.0, 0.0));
        assert!((w - 108.0).abs() < 1e-3);
        // A face filling the frame: the scale shrinks to fit.
        let big = FaceBox { x1: 0.0, y1: 0.0, x2: 300.0, y2: 300.0, score: 1.0 };
        let (_, _, w, h) = crop_region(&big, 4.0, 320.0, 320.0);
        assert!(w <= 319.001 && h <= 319.001, "{w}x{h}");
    }

    #[test]
    fn softmax_sums_to_one() {
        let s = softmax(&[1.0, 2.0, 3.0]);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(s[2] > s[1] && s[1] > s[0]);
    }

    #[test]
    fn a_visit_is_the_mean_of_its_frames() {
        assert_eq!(visit_score(&[]), None);
        assert_eq!(visit_score(&[0.2, 0.4, 0.9]), Some(0.5));
    }

    #[test]
    fn config_round_trips_and_refuses_nonsense() {
        let c = LivenessConfig {
            models: vec!["liveness-v2".into()],
            threshold: 0.05,
            target_apcer: 0.01,
            evidence: "synthetic".into(),
        };
        let dir = std::env::temp_dir().join(format!("fg-liveness-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("liveness.toml");
        std::fs::write(&path, c.to_toml()).expect("write");
        assert_eq!(LivenessConfig::load(&path).expect("load"), c);
        std::fs::write(&path, c.to_toml().replace("0.05", "1.5")).expect("write");
        assert!(LivenessConfig::load(&path).is_err());
        std::fs::write(&path, "models = []\nthreshold = 0.1\ntarget_apcer = 0.01\n").expect("write");
        assert!(LivenessConfig::load(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
