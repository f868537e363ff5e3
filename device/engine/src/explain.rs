//! Why two faces match: occlusion sensitivity (Zeiler & Fergus, 2014). A grey patch slides
//! over one aligned crop; each position's effect is how the similarity to the other face moves
//! when that part is hidden. Hiding what made them look alike lowers the score; hiding what
//! disagrees (sunglasses, a hand, a shadow) raises it.

use crate::embed::{Embedder, Embedding};
use crate::error::Result;
use crate::landmarks::Point;
use image::RgbImage;

/// The grey a patch is filled with: the network's input centre ((x - 127.5) / 128 ~ 0).
pub const GREY: [u8; 3] = [128, 128, 128];

/// Patch side and stride, in crop pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occlusion {
    pub patch: u32,
    pub stride: u32,
}

impl Default for Occlusion {
    /// 16 px at stride 8 on the 112 px crop: 13 x 13 positions, each pixel under ~4 of them.
    fn default() -> Self {
        Occlusion { patch: 16, stride: 8 }
    }
}

impl Occlusion {
    /// Top-left corners of every patch position over a `side` x `side` crop.
    pub fn positions(&self, side: u32) -> Vec<(u32, u32)> {
        let stride = self.stride.max(1);
        let last = side.saturating_sub(self.patch);
        let steps: Vec<u32> = (0..=last).step_by(stride as usize).collect();
        steps.iter().flat_map(|&y| steps.iter().map(move |&x| (x, y))).collect()
    }
}

/// Areas of a face, from the five points of the aligned crop. Left and right are as seen in
/// the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceArea {
    Forehead,
    Eyes,
    Nose,
    LeftCheek,
    RightCheek,
    Mouth,
    Chin,
    Background,
}

impl FaceArea {
    pub fn name(self) -> &'static str {
        match self {
            FaceArea::Forehead => "forehead",
            FaceArea::Eyes => "eyes",
            FaceArea::Nose => "nose",
            FaceArea::LeftCheek => "left cheek",
            FaceArea::RightCheek => "right cheek",
            FaceArea::Mouth => "mouth",
            FaceArea::Chin => "chin",
            FaceArea::Background => "background",
        }
    }

    /// The area a crop point falls in, given the crop's five points (left eye, right eye,
    /// nose, left and right mouth corner). Bands are measured in eye distances.
    pub fn of(x: f32, y: f32, five: &[Point; 5]) -> FaceArea {
        let [le, re, nose, ml, mr] = five;
        let d = (re[0] - le[0]).hypot(re[1] - le[1]).max(1.0);
        let eye_y = (le[1] + re[1]) / 2.0;
        let mouth_y = (ml[1] + mr[1]) / 2.0;
        let (left, right) = (le[0] - 0.6 * d, re[0] + 0.6 * d);
        if x < left || x > right {
            return FaceArea::Background;
        }
        if y < eye_y - 0.3 * d {
            return if y < eye_y - 1.2 * d { FaceArea::Background } else { FaceArea::Forehead };
        }
        if y <= eye_y + 0.3 * d {
            return FaceArea::Eyes;
        }
        let side = if x < nose[0] { FaceArea::LeftCheek } else { FaceArea::RightCheek };
        if y < mouth_y - 0.2 * d {
            return if (x - nose[0]).abs() <= 0.3 * d { FaceArea::Nose } else { side };
        }
        if y <= mouth_y + 0.3 * d {
            return if x >= ml[0] - 0.15 * d && x <= mr[0] + 0.15 * d { FaceArea::Mouth } else { side };
        }
        if y <= mouth_y + 1.0 * d {
            FaceArea::Chin
        } else {
            FaceArea::Background
        }
    }
}

/// One patch position and its effect: occluded score minus the plain score.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Patch {
    pub x: u32,
    pub y: u32,
    pub effect: f32,
    pub area: FaceArea,
}

/// The occlusion map of one crop against another face's embedding.
#[derive(Debug, Clone)]
pub struct OcclusionMap {
    pub side: u32,
    pub occlusion: Occlusion,
    /// The plain (one-pass) score.
    pub score: f32,
    pub patches: Vec<Patch>,
}

impl OcclusionMap {
    /// Each pixel's effect: the mean over the patches covering it (row-major, `side`²).
    pub fn per_pixel(&self) -> Vec<f32> {
        let n = self.side as usize;
        let (mut sum, mut count) = (vec![0.0f32; n * n], vec![0u32; n * n]);
        let p = self.occlusion.patch as usize;
        for patch in &self.patches {
            for y in patch.y as usize..(patch.y as usize + p).min(n) {
                for x in patch.x as usize..(patch.x as usize + p).min(n) {
                    sum[y * n + x] += patch.effect;
                    count[y * n + x] += 1;
                }
            }
        }
        sum.iter().zip(&count).map(|(s, &c)| if c == 0 { 0.0 } else { s / c as f32 }).collect()
    }

    /// The patches, the most score-lowering first.
    pub fn lowering(&self) -> Vec<Patch> {
        let mut v = self.patches.clone();
        v.sort_by(|a, b| a.effect.total_cmp(&b.effect));
        v
    }

    /// Mean effect of the patches centred in each area, the most lowering first.
    pub fn areas(&self) -> Vec<(FaceArea, f32)> {
        let mut by: std::collections::BTreeMap<FaceArea, (f32, u32)> = std::collections::BTreeMap::new();
        for p in &self.patches {
            let e = by.entry(p.area).or_default();
            e.0 += p.effect;
            e.1 += 1;
        }
        let mut v: Vec<(FaceArea, f32)> = by.into_iter().map(|(a, (s, n))| (a, s / n as f32)).collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        v
    }
}

/// `crop` with a `w` x `h` grey box at (x, y).
pub fn occlude(crop: &RgbImage, x: u32, y: u32, w: u32, h: u32) -> RgbImage {
    let mut out = crop.clone();
    for yy in y..(y + h).min(crop.height()) {
        for xx in x..(x + w).min(crop.width()) {
            out.put_pixel(xx, yy, image::Rgb(GREY));
        }
    }
    out
}

/// Occludes every patch position of `crop` (whose five points in crop coordinates are `five`)
/// and scores each against `other`, on `threads` workers.
pub fn occlusion_map(
    embedder: &Embedder,
    crop: &RgbImage,
    five: &[Point; 5],
    other: &Embedding,
    occlusion: Occlusion,
    threads: usize,
) -> Result<OcclusionMap> {
    let score = embedder.embed(crop)?.cosine(other);
    let positions = occlusion.positions(crop.width().min(crop.height()));
    let effects = crate::parallel::map_in_order(positions.len(), threads, |i| {
        let (x, y) = positions[i];
        let hidden = occlude(crop, x, y, occlusion.patch, occlusion.patch);
        embedder.embed(&hidden).map(|e| e.cosine(other) - score)
    });
    if effects.len() != positions.len() {
        return Err(crate::error::EngineError::inference("explain", "a patch was not scored"));
    }
    let mut patches = Vec::with_capacity(positions.len());
    for (&(x, y), effect) in positions.iter().zip(effects) {
        let half = occlusion.patch as f32 / 2.0;
        patches.push(Patch { x, y, effect: effect?, area: FaceArea::of(x as f32 + half, y as f32 + half, five) });
    }
    Ok(OcclusionMap { side: crop.width(), occlusion, score, patches })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::ARCFACE_TEMPLATE;

    #[test]
    fn positions_cover_the_crop() {
        let p = Occlusion::default().positions(112);
        assert_eq!(p.len(), 13 * 13);
        assert_eq!(p.last(), Some(&(96, 96)));
    }

    #[test]
    fn areas_follow_the_template() {
        let t = ARCFACE_TEMPLATE;
        assert_eq!(FaceArea::of(t[0][0], t[0][1], &t), FaceArea::Eyes);
        assert_eq!(FaceArea::of(t[2][0], t[2][1] - 4.0, &t), FaceArea::Nose);
        assert_eq!(FaceArea::of(56.0, 92.0, &t), FaceArea::Mouth);
        assert_eq!(FaceArea::of(56.0, 30.0, &t), FaceArea::Forehead);
        assert_eq!(FaceArea::of(28.0, 75.0, &t), FaceArea::LeftCheek);
        assert_eq!(FaceArea::of(84.0, 75.0, &t), FaceArea::RightCheek);
        assert_eq!(FaceArea::of(56.0, 108.0, &t), FaceArea::Chin);
        assert_eq!(FaceArea::of(2.0, 60.0, &t), FaceArea::Background);
    }

    #[test]
    fn per_pixel_effect_averages_the_covering_patches() {
        let map = OcclusionMap {
            side: 4,
            occlusion: Occlusion { patch: 2, stride: 2 },
            score: 0.5,
            patches: vec![
                Patch { x: 0, y: 0, effect: -0.2, area: FaceArea::Eyes },
                Patch { x: 2, y: 2, effect: 0.1, area: FaceArea::Mouth },
            ],
        };
        let px = map.per_pixel();
        assert_eq!(px[0], -0.2);
        assert_eq!(px[3 * 4 + 3], 0.1);
        assert_eq!(px[3], 0.0, "uncovered");
        assert_eq!(map.lowering()[0].area, FaceArea::Eyes);
        assert_eq!(map.areas()[0], (FaceArea::Eyes, -0.2));
    }

    #[test]
    fn occlusion_fills_grey_inside_the_crop_only() {
        let crop = RgbImage::from_pixel(10, 10, image::Rgb([1, 2, 3]));
        let out = occlude(&crop, 8, 8, 5, 5);
        assert_eq!(out.get_pixel(9, 9).0, GREY);
        assert_eq!(out.get_pixel(7, 7).0, [1, 2, 3]);
    }
}
