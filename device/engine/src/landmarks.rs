//! 68-point facial landmarks on a 64x64 grey crop, reduced to the 5 points alignment needs.

use super::detect::FaceBox;
use super::error::Result;
use super::model::Net;
use super::resample::{half_pixel, sample_rgb, Border};
use image::RgbImage;

pub use super::model::input::LANDMARK_SIDE as INPUT_SIDE;

/// A point in frame pixels.
pub type Point = [f32; 2];

/// Eye centres, nose tip, mouth corners (subject's right eye first, as seen in the image: left).
pub type FivePoints = [Point; 5];

pub struct LandmarkNet {
    net: Net,
}

/// The square crop the landmark network sees, in frame pixels. Origin and side stay
/// continuous: rounding them would make the landmarks (and the embedding) jump when the box
/// moves by a fraction of a pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crop {
    pub x0: f32,
    pub y0: f32,
    pub side: f32,
}

/// Side of the landmark crop, as a share of the detector box's height.
pub const CROP_SIDE: f32 = 0.9;
/// Downward shift of the crop centre from the box centre, as a share of the box's height.
pub const CROP_SHIFT_DOWN: f32 = 0.1;

impl Crop {
    /// A square of 0.9 box heights, centred 0.1 box heights below the box centre. UltraFace
    /// boxes run from the hairline to the chin; the landmark net localises best on a crop
    /// centred nearer the nose. Chosen on a development set of LFW images outside View 2
    /// (d' of genuine/impostor cosines 6.23 -> 6.34, errors 31 -> 22 of 6,000; the whole
    /// plateau 0.85-1.0 x 0.05-0.15 does as well), then checked once on View 2 (d' 6.06 ->
    /// 6.12, AUC 0.99920 -> 0.99933); see models/reference/SPEC.md.
    pub fn around(face: &FaceBox) -> Crop {
        let h = face.height().max(1.0);
        let (cx, cy) = face.centre();
        let side = CROP_SIDE * h;
        Crop { x0: cx - side / 2.0, y0: cy + CROP_SHIFT_DOWN * h - side / 2.0, side }
    }
}

impl LandmarkNet {
    pub fn new(net: Net) -> LandmarkNet {
        LandmarkNet { net }
    }

    /// The 68 landmarks of `face`, in frame pixels.
    pub fn landmarks(&self, img: &RgbImage, face: &FaceBox) -> Result<Vec<Point>> {
        let crop = Crop::around(face);
        let out = self.net.run(preprocess(img, crop))?;
        Ok(out[0].chunks_exact(2).map(|p| [crop.x0 + p[0] * crop.side, crop.y0 + p[1] * crop.side]).collect())
    }
}

/// Grey (BT.601 weights, not rounded) crop resized to 64x64, scaled by 1/256.
pub fn preprocess(img: &RgbImage, crop: Crop) -> Vec<f32> {
    let mut input = Vec::with_capacity(INPUT_SIDE * INPUT_SIDE);
    for v in 0..INPUT_SIDE {
        let y = half_pixel(v, crop.y0, crop.side, INPUT_SIDE);
        for u in 0..INPUT_SIDE {
            let x = half_pixel(u, crop.x0, crop.side, INPUT_SIDE);
            let [r, g, b] = sample_rgb(img, x, y, Border::Clamp);
            input.push((0.299 * r + 0.587 * g + 0.114 * b) / 256.0);
        }
    }
    input
}

/// Reduces the iBUG 68-point layout to eye centres (mean of the six eye-contour points), nose
/// tip and the outer mouth corners. On LFW this choice beat the four-lid-point eyes and
/// averaged inner/outer lip corners (models/reference/SPEC.md, docs/ACCURACY.md).
///
/// The points are snapped to a 1/64 px grid ([`POINT_GRID`]): the landmark network's last bits
/// differ between CPU architectures (tract's kernels), and the int8 embedding magnifies the
/// one-level pixel differences those make in the aligned crop. On the grid, x86-64 and aarch64
/// align the same crop (docs/PERFORMANCE.md#aarch64); 1/64 px is far below the landmarks'
/// own error.
pub fn five_points(p: &[Point]) -> Option<FivePoints> {
    if p.len() != 68 {
        return None;
    }
    let snap = |v: f32| (v * POINT_GRID).round() / POINT_GRID;
    let mean = |ix: &[usize]| {
        let n = ix.len() as f32;
        [ix.iter().map(|&i| p[i][0]).sum::<f32>() / n, ix.iter().map(|&i| p[i][1]).sum::<f32>() / n]
    };
    let five = [mean(&[36, 37, 38, 39, 40, 41]), mean(&[42, 43, 44, 45, 46, 47]), p[30], p[48], p[54]];
    Some(five.map(|[x, y]| [snap(x), snap(y)]))
}

/// Subdivisions of a pixel the five points are snapped to.
pub const POINT_GRID: f32 = 64.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_is_a_square_below_the_box_centre() {
        // 60 px box: side 54, centre (30, 50 + 6).
        let face = FaceBox { x1: 10.0, y1: 20.0, x2: 50.0, y2: 80.0, score: 1.0 };
        let c = Crop::around(&face);
        assert!((c.side - 54.0).abs() < 1e-4 && (c.x0 - 3.0).abs() < 1e-4 && (c.y0 - 29.0).abs() < 1e-4, "{c:?}");
        // Sub-pixel box changes move the crop continuously.
        let face = FaceBox { x1: 10.5, y1: 20.0, x2: 50.0, y2: 80.3, score: 1.0 };
        let c = Crop::around(&face);
        assert!((c.side - 54.27).abs() < 1e-4 && (c.x0 - 3.115).abs() < 1e-4 && (c.y0 - 29.045).abs() < 1e-4, "{c:?}");
    }

    #[test]
    fn five_points_average_the_right_landmarks() {
        let mut p = vec![[0.0, 0.0]; 68];
        for (i, q) in p.iter_mut().enumerate() {
            *q = [i as f32, 2.0 * i as f32];
        }
        let f = five_points(&p).expect("68 points");
        assert_eq!(f[0], [38.5, 77.0]);
        assert_eq!(f[1], [44.5, 89.0]);
        assert_eq!(f[2], [30.0, 60.0]);
        assert_eq!(f[3], [48.0, 96.0]);
        assert_eq!(f[4], [54.0, 108.0]);
        assert!(five_points(&p[..10]).is_none());
    }

    #[test]
    fn preprocess_greys_and_scales() {
        let img = RgbImage::from_pixel(100, 100, image::Rgb([200, 100, 50]));
        let input = preprocess(&img, Crop { x0: -10.0, y0: 90.0, side: 40.0 });
        let expect = (0.299 * 200.0 + 0.587 * 100.0 + 0.114 * 50.0) / 256.0;
        assert_eq!(input.len(), 64 * 64);
        assert!(input.iter().all(|&v| (v - expect).abs() < 1e-5));
    }
}
