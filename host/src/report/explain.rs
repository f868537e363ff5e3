//! `facegate explain` / `verify --explain`: both faces' occlusion maps against each other
//! ([`facegate_engine::explain`]), drawn as heat over the aligned crops and listed as JSON.

use super::ReportError;
use facegate_engine::explain::{Occlusion, OcclusionMap, Patch};
use facegate_engine::{Engine, FaceResult};
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use std::path::Path;
use std::time::Instant;

/// How many patches the JSON lists each way.
pub const TOP: usize = 5;
/// Crops are drawn at this multiple of their 112 px.
const ZOOM: u32 = 2;

/// The two maps: A's crop occluded against B's embedding, and B's against A's.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub a: OcclusionMap,
    pub b: OcclusionMap,
    pub millis: f64,
}

pub fn explain(
    engine: &Engine,
    a: &FaceResult,
    b: &FaceResult,
    occlusion: Occlusion,
    threads: usize,
) -> facegate_engine::Result<Explanation> {
    let started = Instant::now();
    let map_a = engine.explain(&a.observation, &b.embedding, occlusion, threads)?;
    let map_b = engine.explain(&b.observation, &a.embedding, occlusion, threads)?;
    Ok(Explanation { a: map_a, b: map_b, millis: started.elapsed().as_secs_f64() * 1e3 })
}

#[derive(Debug, serde::Serialize)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub size: u32,
    /// Score with this part hidden, minus the plain score.
    pub effect: f32,
    pub area: &'static str,
}

#[derive(Debug, serde::Serialize)]
pub struct SideJson {
    /// Hiding these lowers the score most: what made the faces look alike.
    pub alike: Vec<Region>,
    /// Hiding these raises the score most: what disagrees.
    pub disagree: Vec<Region>,
    /// Mean effect per face area, most lowering first.
    pub areas: Vec<(String, f32)>,
}

fn region(p: &Patch, size: u32) -> Region {
    Region { x: p.x, y: p.y, size, effect: p.effect, area: p.area.name() }
}

pub fn side_json(map: &OcclusionMap) -> SideJson {
    let sorted = map.lowering();
    let size = map.occlusion.patch;
    SideJson {
        alike: sorted.iter().filter(|p| p.effect < 0.0).take(TOP).map(|p| region(p, size)).collect(),
        disagree: sorted.iter().rev().filter(|p| p.effect > 0.0).take(TOP).map(|p| region(p, size)).collect(),
        areas: map.areas().into_iter().map(|(a, e)| (a.name().to_owned(), e)).collect(),
    }
}

/// The effect shown at full colour: the largest of both maps, so the two faces compare.
fn scale(e: &Explanation) -> f32 {
    e.a.patches.iter().chain(&e.b.patches).map(|p| p.effect.abs()).fold(1e-4, f32::max)
}

/// `crop` zoomed, with red where hiding lowers the score and blue where it raises it.
fn heat(crop: &RgbImage, map: &OcclusionMap, scale: f32) -> RgbImage {
    let effect = map.per_pixel();
    let side = crop.width();
    let big = image::imageops::resize(crop, side * ZOOM, side * ZOOM, image::imageops::FilterType::Triangle);
    let mut out = RgbImage::new(big.width(), big.height());
    for (x, y, p) in big.enumerate_pixels() {
        let e = effect[((y / ZOOM) * side + x / ZOOM) as usize];
        let alpha = (e.abs() / scale).min(1.0) * 0.65;
        let tint = if e < 0.0 { [230.0, 30.0, 30.0] } else { [30.0, 80.0, 230.0] };
        // Grey under the tint, so colour reads as effect and not as skin.
        let grey = 0.299 * f32::from(p.0[0]) + 0.587 * f32::from(p.0[1]) + 0.114 * f32::from(p.0[2]);
        let px = tint.map(|t| (grey * (1.0 - alpha) + t * alpha).round().clamp(0.0, 255.0) as u8);
        out.put_pixel(x, y, Rgb(px));
    }
    out
}

/// Draws the picture: both crops under their heat, the score, and a colour bar.
pub fn draw(
    e: &Explanation,
    crops: [&RgbImage; 2],
    names: [&str; 2],
    score: f32,
    path: &Path,
) -> Result<(), ReportError> {
    super::chart::register_font()?;
    let s = scale(e);
    let (ha, hb) = (heat(crops[0], &e.a, s), heat(crops[1], &e.b, s));
    let (fw, fh) = ha.dimensions();
    let (w, h) = (fw * 2 + 60, fh + 150);
    let mut canvas = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    image::imageops::replace(&mut canvas, &ha, 20, 50);
    image::imageops::replace(&mut canvas, &hb, i64::from(fw) + 40, 50);
    // The colour bar: red (hiding lowers) through grey to blue (hiding raises).
    let (bx, by, bw) = (20u32, fh + 95, w - 40);
    for x in 0..bw {
        let t = x as f32 / (bw - 1) as f32 * 2.0 - 1.0;
        let tint = if t < 0.0 { [230.0, 30.0, 30.0] } else { [30.0, 80.0, 230.0] };
        let a = t.abs() * 0.65;
        let px = tint.map(|c| (160.0 * (1.0 - a) + c * a).round() as u8);
        for y in by..by + 12 {
            canvas.put_pixel(bx + x, y, Rgb(px));
        }
    }
    {
        let root = BitMapBackend::with_buffer(&mut canvas, (w, h)).into_drawing_area();
        let err = |e: plotters::drawing::DrawingAreaErrorKind<_>| ReportError::Plot(format!("{e:?}"));
        let text = |size: u32| ("sans-serif", size).into_font().color(&BLACK);
        root.draw_text(
            &format!("score {score:.3}: red = hiding it lowers the score (alike), blue = raises it (disagrees)"),
            &text(13),
            (20, 12),
        )
        .map_err(err)?;
        root.draw_text(names[0], &text(12), (20, 32)).map_err(err)?;
        root.draw_text(names[1], &text(12), (fw as i32 + 40, 32)).map_err(err)?;
        root.draw_text(
            &format!(
                "patch {} px, stride {}: {} positions a face",
                e.a.occlusion.patch,
                e.a.occlusion.stride,
                e.a.patches.len()
            ),
            &text(12),
            (20, fh as i32 + 58),
        )
        .map_err(err)?;
        root.draw_text(&format!("{:+.3}", -s), &text(12), (bx as i32, by as i32 + 16)).map_err(err)?;
        root.draw_text("0", &text(12), ((bx + bw / 2) as i32 - 3, by as i32 + 16)).map_err(err)?;
        root.draw_text(&format!("{:+.3}", s), &text(12), ((bx + bw) as i32 - 40, by as i32 + 16)).map_err(err)?;
        root.present().map_err(err)?;
    }
    canvas
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| ReportError::Image { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_engine::explain::{FaceArea, Occlusion};

    fn map(effect_at: impl Fn(u32, u32) -> f32) -> OcclusionMap {
        let occlusion = Occlusion::default();
        let patches = occlusion
            .positions(112)
            .into_iter()
            .map(|(x, y)| Patch { x, y, effect: effect_at(x, y), area: FaceArea::Eyes })
            .collect();
        OcclusionMap { side: 112, occlusion, score: 0.6, patches }
    }

    #[test]
    fn the_picture_shows_both_faces_with_their_heat() {
        // A: hiding the top-left lowers the score; B: hiding the bottom-right raises it.
        let e = Explanation {
            a: map(|x, y| if x < 16 && y < 16 { -0.3 } else { 0.0 }),
            b: map(|x, y| if x > 80 && y > 80 { 0.2 } else { 0.0 }),
            millis: 1.0,
        };
        let crop = RgbImage::from_pixel(112, 112, Rgb([128, 128, 128]));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("why.png");
        draw(&e, [&crop, &crop], ["a.jpg", "b.jpg"], 0.6, &path).expect("drawn");
        let img = image::open(&path).expect("png").to_rgb8();
        assert_eq!(img.dimensions(), (224 * 2 + 60, 224 + 150));
        // Tinted over grey: the tint's channel well above the others (B's at 2/3 of the shared scale).
        let red = |p: &Rgb<u8>| p.0[0] > p.0[1] + 80;
        let blue = |p: &Rgb<u8>| p.0[2] > p.0[0] + 60;
        // Face A starts at (20, 50), face B at (264, 50).
        assert!(red(img.get_pixel(25, 55)), "{:?}", img.get_pixel(25, 55));
        assert!(!red(img.get_pixel(200, 250)) && !blue(img.get_pixel(200, 250)));
        assert!(blue(img.get_pixel(264 + 215, 50 + 215)), "{:?}", img.get_pixel(264 + 215, 265));
        let json = side_json(&e.a);
        // Only the four patches starting at x, y in {0, 8} lower A's score.
        assert_eq!(json.alike.len(), 4);
        assert!(json.alike[0].effect < 0.0 && json.disagree.is_empty());
    }
}
