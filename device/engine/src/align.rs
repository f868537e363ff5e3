//! Alignment: a least-squares similarity transform (Umeyama) from the five landmarks onto the
//! ArcFace 112x112 template, then a bilinear warp.

use super::landmarks::{FivePoints, Point};
use super::resample::{sample_rgb, Border};
use image::RgbImage;

/// Side of the aligned crop: the embedding network's input.
pub const ALIGNED_SIDE: u32 = super::model::input::EMBED_SIDE as u32;

/// The standard ArcFace 5-point template for 112x112 crops.
pub const ARCFACE_TEMPLATE: FivePoints =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// `dst = [a -b; b a] * src + [tx, ty]`: rotation, uniform scale and translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// The similarity minimising the squared error from `src` to `dst`. For 2-D this closed
    /// form equals Umeyama's solution with the reflection guard: `[a -b; b a]` is always a
    /// proper rotation times a scale. `None` when the source points are all coincident.
    pub fn estimate(src: &[Point], dst: &[Point]) -> Option<Similarity> {
        let n = src.len().min(dst.len());
        if n < 2 {
            return None;
        }
        let mean = |p: &[Point]| {
            let (sx, sy) = p[..n].iter().fold((0.0f64, 0.0f64), |(x, y), q| (x + q[0] as f64, y + q[1] as f64));
            (sx / n as f64, sy / n as f64)
        };
        let (msx, msy) = mean(src);
        let (mdx, mdy) = mean(dst);
        let (mut num_a, mut num_b, mut den) = (0.0f64, 0.0f64, 0.0f64);
        for (s, d) in src[..n].iter().zip(&dst[..n]) {
            let (sx, sy) = (s[0] as f64 - msx, s[1] as f64 - msy);
            let (dx, dy) = (d[0] as f64 - mdx, d[1] as f64 - mdy);
            num_a += sx * dx + sy * dy;
            num_b += sx * dy - sy * dx;
            den += sx * sx + sy * sy;
        }
        if den < 1e-12 {
            return None;
        }
        let (a, b) = (num_a / den, num_b / den);
        let tx = mdx - (a * msx - b * msy);
        let ty = mdy - (b * msx + a * msy);
        Some(Similarity { a: a as f32, b: b as f32, tx: tx as f32, ty: ty as f32 })
    }

    pub fn apply(&self, p: Point) -> Point {
        [self.a * p[0] - self.b * p[1] + self.tx, self.b * p[0] + self.a * p[1] + self.ty]
    }

    /// The inverse map, `None` if degenerate.
    pub fn inverse(&self) -> Option<Similarity> {
        let det = self.a * self.a + self.b * self.b;
        if det <= f32::EPSILON {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) })
    }

    /// Scale factor (template pixels per frame pixel).
    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }

    /// Rotation in degrees.
    pub fn angle_deg(&self) -> f32 {
        self.b.atan2(self.a).to_degrees()
    }
}

/// Warps the face into a `side x side` crop (see [`warp_to`]).
pub fn warp(img: &RgbImage, to_crop: &Similarity, side: u32) -> Option<RgbImage> {
    warp_to(img, to_crop, side, side)
}

/// A `w x h` image whose pixel `(u, v)` takes the bilinear sample of `img` at
/// `to_out.inverse()(u, v)`; outside `img` is black. Rounded to u8.
pub fn warp_to(img: &RgbImage, to_out: &Similarity, w: u32, h: u32) -> Option<RgbImage> {
    let inv = to_out.inverse()?;
    let mut out = RgbImage::new(w, h);
    for (u, v, px) in out.enumerate_pixels_mut() {
        let [x, y] = inv.apply([u as f32, v as f32]);
        let s = sample_rgb(img, x, y, Border::Zero);
        // Round half up; `as` saturates to 0..=255 (NaN -> 0), as floor + clamp would.
        px.0 = s.map(|c| (c + 0.5) as u8);
    }
    Some(out)
}

/// Aligns a face given its five points; `None` when the points are degenerate.
pub fn align(img: &RgbImage, five: &FivePoints) -> Option<(RgbImage, Similarity)> {
    let t = Similarity::estimate(five, &ARCFACE_TEMPLATE)?;
    Some((warp(img, &t, ALIGNED_SIDE)?, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Point, b: Point, tol: f32) -> bool {
        (a[0] - b[0]).abs() < tol && (a[1] - b[1]).abs() < tol
    }

    #[test]
    fn recovers_a_known_similarity_exactly() {
        let truth = Similarity { a: 0.8 * 0.5f32.cos(), b: 0.8 * 0.5f32.sin(), tx: 12.0, ty: -7.0 };
        let src: Vec<Point> = ARCFACE_TEMPLATE.iter().map(|p| [p[0] * 2.0 + 30.0, p[1] * 1.9 + 10.0]).collect();
        let dst: Vec<Point> = src.iter().map(|&p| truth.apply(p)).collect();
        let est = Similarity::estimate(&src, &dst).expect("estimate");
        assert!((est.a - truth.a).abs() < 1e-4 && (est.b - truth.b).abs() < 1e-4, "{est:?}");
        assert!((est.tx - truth.tx).abs() < 1e-2 && (est.ty - truth.ty).abs() < 1e-2, "{est:?}");
        assert!((est.angle_deg() - 0.5f32.to_degrees()).abs() < 1e-3);
        assert!((est.scale() - 0.8).abs() < 1e-5);
    }

    #[test]
    fn least_squares_under_noise_and_no_reflection() {
        // Mirrored points cannot be matched by a proper similarity: the fit must stay a
        // rotation+scale and still land near the template centroid.
        let mirrored: Vec<Point> = ARCFACE_TEMPLATE.iter().map(|p| [112.0 - p[0], p[1]]).collect();
        let est = Similarity::estimate(&mirrored, &ARCFACE_TEMPLATE).expect("estimate");
        assert!(est.scale() < 1.0);
        let noisy: Vec<Point> = ARCFACE_TEMPLATE
            .iter()
            .enumerate()
            .map(|(i, p)| [p[0] + if i % 2 == 0 { 0.5 } else { -0.5 }, p[1]])
            .collect();
        let est = Similarity::estimate(&noisy, &ARCFACE_TEMPLATE).expect("estimate");
        for (s, d) in noisy.iter().zip(ARCFACE_TEMPLATE) {
            assert!(close(est.apply(*s), d, 0.7));
        }
    }

    #[test]
    fn degenerate_points_are_rejected() {
        assert!(Similarity::estimate(&[[5.0, 5.0]; 5], &ARCFACE_TEMPLATE).is_none());
        assert!(Similarity::estimate(&[[5.0, 5.0]], &[[1.0, 1.0]]).is_none());
    }

    #[test]
    fn inverse_round_trips() {
        let t = Similarity { a: 0.3, b: -1.2, tx: 5.0, ty: 9.0 };
        let inv = t.inverse().expect("invertible");
        for p in ARCFACE_TEMPLATE {
            assert!(close(inv.apply(t.apply(p)), p, 1e-3));
        }
    }

    #[test]
    fn warp_moves_a_marked_pixel_to_its_template_spot() {
        // A frame twice the crop size with one bright dot at 2x the left-eye template point.
        let mut img = RgbImage::new(224, 224);
        img.put_pixel(76, 102, image::Rgb([255, 255, 255]));
        let src: Vec<Point> = ARCFACE_TEMPLATE.iter().map(|p| [p[0] * 2.0, p[1] * 2.0]).collect();
        let t = Similarity::estimate(&src, &ARCFACE_TEMPLATE).expect("estimate");
        let crop = warp(&img, &t, 112).expect("warp");
        // 2x downscale: crop pixel (38, 51) samples frame pixel (76, 102) exactly.
        assert_eq!(crop.get_pixel(38, 51).0, [255, 255, 255]);
        assert_eq!(crop.pixels().filter(|p| p.0[0] > 0).count(), 1);
        // Outside the frame is black.
        let shifted = Similarity { tx: t.tx + 200.0, ..t };
        assert!(warp(&img, &shifted, 112).expect("warp").pixels().all(|p| p.0 == [0, 0, 0]));
    }
}
