//! Face quality: size, sharpness, exposure and pose, judged against a gate.
//!
//! Enrolment uses a strict gate (a poor reference hurts every later match); verification uses
//! a looser one (the user can simply try again, and the consensus over frames absorbs noise).

use super::detect::FaceBox;
use super::landmarks::FivePoints;
use image::RgbImage;
use std::fmt;

/// Measured quality of one face.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct QualityMetrics {
    /// Shorter side of the detector box, frame pixels.
    pub face_px: f32,
    pub detector_score: f32,
    /// Variance of the Laplacian over the central part of the aligned grey crop.
    pub sharpness: f32,
    /// Mean grey level (0..255) of the central aligned crop.
    pub brightness: f32,
    /// Standard deviation of the grey level of the central aligned crop.
    pub contrast: f32,
    /// Left-right head turn estimate in degrees (0 = frontal), from the nose offset.
    pub yaw_deg: f32,
    /// In-plane tilt of the eye line in degrees.
    pub roll_deg: f32,
    /// (left - right) / (left + right) of the mean grey of the crop's two halves: 0 for a face
    /// lit from the front, near +-1 for one lit from the side (half in shadow).
    pub light_balance: f32,
}

/// One reason a face fails a gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QualityIssue {
    TooSmall { px: f32, min: f32 },
    WeakDetection { score: f32, min: f32 },
    Blurred { sharpness: f32, min: f32 },
    TooDark { brightness: f32, min: f32 },
    TooBright { brightness: f32, max: f32 },
    LowContrast { contrast: f32, min: f32 },
    Profile { yaw_deg: f32, max: f32 },
    Tilted { roll_deg: f32, max: f32 },
    UnevenLight { balance: f32, max: f32 },
}

impl fmt::Display for QualityIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QualityIssue::TooSmall { px, min } => write!(f, "face too small ({px:.0} px, need {min:.0}): move closer"),
            QualityIssue::WeakDetection { score, min } => {
                write!(f, "face not clearly visible (detector {score:.2} < {min:.2})")
            }
            QualityIssue::Blurred { sharpness, min } => write!(f, "blurred (sharpness {sharpness:.0} < {min:.0})"),
            QualityIssue::TooDark { brightness, min } => write!(f, "too dark (brightness {brightness:.0} < {min:.0})"),
            QualityIssue::TooBright { brightness, max } => {
                write!(f, "too bright (brightness {brightness:.0} > {max:.0})")
            }
            QualityIssue::LowContrast { contrast, min } => write!(f, "low contrast ({contrast:.0} < {min:.0})"),
            QualityIssue::Profile { yaw_deg, max } => {
                write!(f, "head turned (yaw {yaw_deg:.0} deg, max {max:.0}): face the camera")
            }
            QualityIssue::Tilted { roll_deg, max } => write!(f, "head tilted ({roll_deg:.0} deg, max {max:.0})"),
            QualityIssue::UnevenLight { balance, max } => {
                write!(f, "lit from one side (balance {balance:.2}, max {max:.2}): light the face from the front")
            }
        }
    }
}

/// Thresholds a face must meet.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityGate {
    pub min_face_px: f32,
    pub min_detector_score: f32,
    pub min_sharpness: f32,
    pub min_brightness: f32,
    pub max_brightness: f32,
    pub min_contrast: f32,
    pub max_yaw_deg: f32,
    pub max_roll_deg: f32,
    /// Largest |light_balance| accepted. Faces half in shadow look alike across people, so they
    /// would break the calibration's FAR promise (docs/ACCURACY.md).
    pub max_light_imbalance: f32,
}

impl QualityGate {
    /// For reference photos.
    pub const ENROL: QualityGate = QualityGate {
        min_face_px: 64.0,
        min_detector_score: 0.9,
        min_sharpness: 20.0,
        min_brightness: 50.0,
        max_brightness: 210.0,
        min_contrast: 20.0,
        max_yaw_deg: 30.0,
        max_roll_deg: 25.0,
        max_light_imbalance: 0.3,
    };
    /// For live frames at the door.
    pub const VERIFY: QualityGate = QualityGate {
        min_face_px: 40.0,
        min_detector_score: 0.7,
        min_sharpness: 5.0,
        min_brightness: 30.0,
        max_brightness: 230.0,
        min_contrast: 10.0,
        max_yaw_deg: 50.0,
        max_roll_deg: 40.0,
        max_light_imbalance: 0.4,
    };
    /// Accepts anything (evaluation runs score every detected face).
    pub const NONE: QualityGate = QualityGate {
        min_face_px: 0.0,
        min_detector_score: 0.0,
        min_sharpness: 0.0,
        min_brightness: 0.0,
        max_brightness: 255.0,
        min_contrast: 0.0,
        max_yaw_deg: 180.0,
        max_roll_deg: 180.0,
        max_light_imbalance: 1.0,
    };

    /// Every issue, most actionable first (size before blur: a small face also looks blurred).
    pub fn check(&self, m: &QualityMetrics) -> Vec<QualityIssue> {
        let mut issues = Vec::new();
        if m.face_px < self.min_face_px {
            issues.push(QualityIssue::TooSmall { px: m.face_px, min: self.min_face_px });
        }
        if m.detector_score < self.min_detector_score {
            issues.push(QualityIssue::WeakDetection { score: m.detector_score, min: self.min_detector_score });
        }
        if m.brightness < self.min_brightness {
            issues.push(QualityIssue::TooDark { brightness: m.brightness, min: self.min_brightness });
        }
        if m.brightness > self.max_brightness {
            issues.push(QualityIssue::TooBright { brightness: m.brightness, max: self.max_brightness });
        }
        if m.contrast < self.min_contrast {
            issues.push(QualityIssue::LowContrast { contrast: m.contrast, min: self.min_contrast });
        }
        if m.yaw_deg.abs() > self.max_yaw_deg {
            issues.push(QualityIssue::Profile { yaw_deg: m.yaw_deg, max: self.max_yaw_deg });
        }
        if m.roll_deg.abs() > self.max_roll_deg {
            issues.push(QualityIssue::Tilted { roll_deg: m.roll_deg, max: self.max_roll_deg });
        }
        if m.light_balance.abs() > self.max_light_imbalance {
            issues.push(QualityIssue::UnevenLight { balance: m.light_balance, max: self.max_light_imbalance });
        }
        if m.sharpness < self.min_sharpness {
            issues.push(QualityIssue::Blurred { sharpness: m.sharpness, min: self.min_sharpness });
        }
        issues
    }
}

/// Measures a face from its box, landmarks and aligned crop.
pub fn measure(face: &FaceBox, five: &FivePoints, aligned: &RgbImage) -> QualityMetrics {
    let (brightness, contrast, sharpness) = crop_stats(aligned);
    QualityMetrics {
        light_balance: light_balance(aligned),
        face_px: face.width().min(face.height()),
        detector_score: face.score,
        sharpness,
        brightness,
        contrast,
        yaw_deg: yaw_deg(five),
        roll_deg: roll_deg(five),
    }
}

/// How much brighter the crop's left half is than its right, over the face's centre rows.
pub fn light_balance(aligned: &RgbImage) -> f32 {
    let (w, h) = aligned.dimensions();
    let (mut left, mut right) = (0.0f64, 0.0f64);
    for y in h / 4..h - h / 8 {
        for x in w / 8..w - w / 8 {
            let p = aligned.get_pixel(x, y).0;
            let g = 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64;
            if x < w / 2 {
                left += g;
            } else {
                right += g;
            }
        }
    }
    if left + right <= 0.0 {
        return 0.0;
    }
    ((left - right) / (left + right)) as f32
}

/// Eye-line angle in degrees.
pub fn roll_deg(five: &FivePoints) -> f32 {
    let [l, r] = [five[0], five[1]];
    (r[1] - l[1]).atan2(r[0] - l[0]).to_degrees()
}

/// Head turn from how far the nose sits off the eye midpoint, relative to the eye distance,
/// measured along the eye line. A frontal face has the nose centred; at 90 degrees it would
/// sit about half an eye distance out, so `asin(2 * offset)` is a serviceable estimate.
pub fn yaw_deg(five: &FivePoints) -> f32 {
    let [l, r, nose] = [five[0], five[1], five[2]];
    let (ex, ey) = (r[0] - l[0], r[1] - l[1]);
    let eye_dist = ex.hypot(ey);
    if eye_dist < 1e-3 {
        return 90.0;
    }
    let mid = [(l[0] + r[0]) / 2.0, (l[1] + r[1]) / 2.0];
    let along = ((nose[0] - mid[0]) * ex + (nose[1] - mid[1]) * ey) / eye_dist;
    (2.0 * along / eye_dist).clamp(-1.0, 1.0).asin().to_degrees()
}

/// Mean, standard deviation and Laplacian variance of the grey centre of the aligned crop
/// (the centre avoids black warp borders and background).
fn crop_stats(aligned: &RgbImage) -> (f32, f32, f32) {
    let (w, h) = aligned.dimensions();
    let grey_plane: Vec<f32> =
        aligned.pixels().map(|p| 0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32).collect();
    let grey = |x: u32, y: u32| grey_plane[(y * w + x) as usize];
    let (x0, x1, y0, y1) = (w / 4, w - w / 4, h / 4, h - h / 8);
    if x1 <= x0 + 2 || y1 <= y0 + 2 {
        return (0.0, 0.0, 0.0);
    }
    let (mut sum, mut sum2, mut n) = (0.0f64, 0.0f64, 0.0f64);
    let (mut lsum, mut lsum2, mut ln) = (0.0f64, 0.0f64, 0.0f64);
    for y in y0..y1 {
        for x in x0..x1 {
            let g = grey(x, y) as f64;
            sum += g;
            sum2 += g * g;
            n += 1.0;
            if x > x0 && y > y0 && x + 1 < x1 && y + 1 < y1 {
                let lap = (grey(x - 1, y) + grey(x + 1, y) + grey(x, y - 1) + grey(x, y + 1)) as f64 - 4.0 * g;
                lsum += lap;
                lsum2 += lap * lap;
                ln += 1.0;
            }
        }
    }
    let mean = sum / n;
    let var = (sum2 / n - mean * mean).max(0.0);
    let lmean = lsum / ln;
    let lvar = (lsum2 / ln - lmean * lmean).max(0.0);
    (mean as f32, var.sqrt() as f32, lvar as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::ARCFACE_TEMPLATE;

    fn face(side: f32) -> FaceBox {
        FaceBox { x1: 0.0, y1: 0.0, x2: side, y2: side, score: 0.99 }
    }

    fn checker(level_a: u8, level_b: u8, cell: u32) -> RgbImage {
        RgbImage::from_fn(112, 112, |x, y| {
            let v = if (x / cell + y / cell).is_multiple_of(2) { level_a } else { level_b };
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn sharp_texture_passes_and_flat_or_blurred_fails() {
        let sharp = measure(&face(120.0), &ARCFACE_TEMPLATE, &checker(60, 190, 2));
        assert!(QualityGate::ENROL.check(&sharp).is_empty(), "{:?}", QualityGate::ENROL.check(&sharp));
        let flat = measure(&face(120.0), &ARCFACE_TEMPLATE, &checker(128, 128, 2));
        let issues = QualityGate::ENROL.check(&flat);
        assert!(issues.iter().any(|i| matches!(i, QualityIssue::Blurred { .. })));
        assert!(issues.iter().any(|i| matches!(i, QualityIssue::LowContrast { .. })));
        // Large cells: same contrast, far fewer edges, so much lower sharpness.
        let coarse = measure(&face(120.0), &ARCFACE_TEMPLATE, &checker(60, 190, 16));
        assert!(coarse.sharpness < sharp.sharpness / 4.0);
    }

    #[test]
    fn exposure_and_size_are_reported_with_reasons() {
        let dark = measure(&face(30.0), &ARCFACE_TEMPLATE, &checker(5, 30, 2));
        let issues = QualityGate::ENROL.check(&dark);
        assert!(matches!(issues[0], QualityIssue::TooSmall { .. }));
        assert!(issues.iter().any(|i| matches!(i, QualityIssue::TooDark { .. })));
        assert!(issues[0].to_string().contains("move closer"));
        let bright = measure(&face(120.0), &ARCFACE_TEMPLATE, &checker(230, 250, 2));
        assert!(QualityGate::VERIFY.check(&bright).iter().any(|i| matches!(i, QualityIssue::TooBright { .. })));
    }

    #[test]
    fn pose_from_landmarks() {
        assert!(yaw_deg(&ARCFACE_TEMPLATE).abs() < 3.0);
        assert!(roll_deg(&ARCFACE_TEMPLATE).abs() < 1.0);
        let mut turned = ARCFACE_TEMPLATE;
        turned[2][0] += 15.0; // nose 15 px towards one eye, eyes 35 px apart
        assert!(yaw_deg(&turned) > 50.0);
        let tilted: FivePoints = ARCFACE_TEMPLATE.map(|[x, y]| {
            let a = 30f32.to_radians();
            [x * a.cos() - y * a.sin(), x * a.sin() + y * a.cos()]
        });
        assert!((roll_deg(&tilted) - 30.0).abs() < 1.0);
        let m = measure(&face(120.0), &turned, &checker(60, 190, 2));
        assert!(QualityGate::ENROL.check(&m).iter().any(|i| matches!(i, QualityIssue::Profile { .. })));
    }
}
