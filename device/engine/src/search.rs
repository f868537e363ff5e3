//! Looking again when the detector's plain pass finds nothing: the views of a picture tried
//! after it, and how their boxes map back.
//!
//! The plain pass squeezes the whole picture into the detector's 320x240 input. That misses a
//! face that fills the frame (the detector never saw faces that large), a face a few dozen
//! pixels wide in a large photo (it shrinks to a few pixels), a face in a very dark frame, and a
//! head lying on its side. Each fallback runs only when the passes before it found nothing (or,
//! for tiles, only tiny faces), so the common frame costs exactly one pass.

use super::align::{warp_to, Similarity};
use super::detect::{FaceBox, INPUT_H, INPUT_W};
use image::{Rgb, RgbImage};

/// How hard to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Search {
    /// The plain pass alone (for comparison).
    Plain,
    /// Camera frames at the door: the plain pass; when it finds nothing, a padded canvas (a face
    /// filling the frame) and, in a dark frame, a brightened copy.
    #[default]
    Frame,
    /// Photos (enrolment, evaluation, offline verify/identify): also tiles at a larger scale when
    /// the faces found are tiny or none, and rotated copies when nothing at all is found.
    Photo,
}

impl std::str::FromStr for Search {
    type Err = String;
    fn from_str(s: &str) -> Result<Search, String> {
        match s {
            "plain" => Ok(Search::Plain),
            "frame" => Ok(Search::Frame),
            "photo" => Ok(Search::Photo),
            _ => Err(format!("{s:?}: expected plain, frame or photo")),
        }
    }
}

/// Canvas side per picture side for the padded pass: the picture takes the middle half.
pub const PAD_CANVAS: f32 = 2.0;
/// A face narrower than this many detector-input pixels counts as tiny (its box and landmarks
/// are coarse), so a photo gets the tiled pass.
pub const TINY_AT_INPUT_PX: f32 = 24.0;
/// Mean grey level under which a frame with no face found is searched again brightened.
pub const DARK_MEAN: f32 = 100.0;
/// Gamma of the brightened copy: lifts shadows (a half-lit face) more than highlights.
pub const BRIGHTEN_GAMMA: f32 = 0.4;
/// In-plane rotations tried (degrees, counter-clockwise) when a photo shows no face upright.
pub const ROTATIONS: [f32; 6] = [-30.0, 30.0, 90.0, -90.0, -60.0, 60.0];

/// The picture centred on a canvas `PAD_CANVAS` times its size, filled with its mean colour,
/// and the offset of the picture inside it.
pub fn padded(img: &RgbImage) -> (RgbImage, (f32, f32)) {
    let (w, h) = img.dimensions();
    let (cw, ch) = ((w as f32 * PAD_CANVAS) as u32, (h as f32 * PAD_CANVAS) as u32);
    let (ox, oy) = ((cw - w) / 2, (ch - h) / 2);
    let mut canvas = RgbImage::from_pixel(cw, ch, Rgb(mean_colour(img)));
    image::imageops::replace(&mut canvas, img, i64::from(ox), i64::from(oy));
    (canvas, (ox as f32, oy as f32))
}

/// Overlapping regions `(x0, y0, w, h)` covering the picture, each shown to the detector at
/// about twice the plain pass's scale. Empty when the picture is small enough that the plain
/// pass already sees it at (nearly) full resolution.
pub fn tiles(w: u32, h: u32) -> Vec<(f32, f32, f32, f32)> {
    let (w, h) = (w as f32, h as f32);
    let scale = (w / INPUT_W as f32).max(h / INPUT_H as f32);
    if scale < 1.5 {
        return Vec::new();
    }
    // Tiles of the detector's aspect, half the picture's larger relative side, overlapping by a
    // third so a face on a seam is whole in one of them.
    let (tw, th) = (INPUT_W as f32 * scale / 2.0, INPUT_H as f32 * scale / 2.0);
    let starts = |len: f32, tile: f32| -> Vec<f32> {
        if tile >= len {
            return vec![0.0];
        }
        let n = ((len - tile) / (tile * 2.0 / 3.0)).ceil() as usize;
        (0..=n).map(|i| (len - tile) * i as f32 / n.max(1) as f32).collect()
    };
    let mut out = Vec::new();
    for y in starts(h, th) {
        for x in starts(w, tw) {
            out.push((x, y, tw.min(w), th.min(h)));
        }
    }
    out
}

/// Whether every face is tiny at the plain pass's scale (or there is none).
pub fn only_tiny(faces: &[FaceBox], w: u32, h: u32) -> bool {
    let scale = (w as f32 / INPUT_W as f32).max(h as f32 / INPUT_H as f32);
    faces.iter().all(|f| f.width() / scale < TINY_AT_INPUT_PX)
}

/// Mean grey level (BT.601), 0..255.
pub fn mean_grey(img: &RgbImage) -> f32 {
    let n = (img.width() as u64 * img.height() as u64).max(1) as f32;
    img.pixels().map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).sum::<f32>() / n
}

/// A copy with its levels stretched so the 99th percentile becomes white, then lifted by
/// [`BRIGHTEN_GAMMA`]. Pointwise, so the copy's coordinates are the picture's.
pub fn brightened(img: &RgbImage) -> RgbImage {
    let mut histogram = [0u64; 256];
    for p in img.pixels() {
        histogram[p.0.iter().copied().max().unwrap_or(0) as usize] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let mut seen = 0;
    let p99 = histogram
        .iter()
        .position(|&c| {
            seen += c;
            seen * 100 >= total * 99
        })
        .unwrap_or(255)
        .max(8);
    let lut: Vec<u8> =
        (0..256).map(|c| (255.0 * (c as f32 / p99 as f32).min(1.0).powf(BRIGHTEN_GAMMA)).round() as u8).collect();
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0 = p.0.map(|c| lut[c as usize]);
    }
    out
}

/// The picture rotated by `deg` counter-clockwise about its centre on a canvas that holds all
/// of it (corners black).
pub fn rotated(img: &RgbImage, deg: f32) -> RgbImage {
    match deg as i32 {
        90 => return image::imageops::rotate270(img),
        -90 => return image::imageops::rotate90(img),
        _ => {}
    }
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (s, c) = deg.to_radians().sin_cos();
    // The small allowance keeps float noise in sin/cos from adding a column.
    let side = |len: f32| (len - 1e-3).ceil().max(1.0);
    let (cw, ch) = (side(w * c.abs() + h * s.abs()), side(w * s.abs() + h * c.abs()));
    // Counter-clockwise on screen (y down) about both centres (pixel centres at integers).
    let (sx, sy, dx, dy) = ((w - 1.0) / 2.0, (h - 1.0) / 2.0, (cw - 1.0) / 2.0, (ch - 1.0) / 2.0);
    let (a, b) = (c, -s);
    let turn = Similarity { a, b, tx: dx - (a * sx - b * sy), ty: dy - (b * sx + a * sy) };
    warp_to(img, &turn, cw as u32, ch as u32).unwrap_or_else(|| img.clone())
}

fn mean_colour(img: &RgbImage) -> [u8; 3] {
    let n = (img.width() as u64 * img.height() as u64).max(1);
    let mut sum = [0u64; 3];
    for p in img.pixels() {
        for k in 0..3 {
            sum[k] += u64::from(p[k]);
        }
    }
    sum.map(|s| (s / n) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_centres_the_picture_on_its_mean_colour() {
        let mut img = RgbImage::from_pixel(10, 6, Rgb([100, 50, 0]));
        img.put_pixel(0, 0, Rgb([255, 255, 255]));
        let (canvas, (ox, oy)) = padded(&img);
        assert_eq!(canvas.dimensions(), (20, 12));
        assert_eq!((ox, oy), (5.0, 3.0));
        assert_eq!(canvas.get_pixel(5, 3).0, [255, 255, 255], "the picture's corner, moved by the offset");
        assert_eq!(canvas.get_pixel(0, 0).0, mean_colour(&img));
    }

    #[test]
    fn tiles_cover_a_large_picture_with_overlap_and_skip_a_small_one() {
        assert!(tiles(320, 240).is_empty());
        assert!(tiles(400, 300).is_empty());
        let t = tiles(1024, 768);
        assert!(t.len() >= 4, "{t:?}");
        // Every pixel lies in some tile; tiles stay inside the picture.
        for (x, y) in [(0.0, 0.0), (1023.0, 767.0), (512.0, 384.0), (1023.0, 0.0)] {
            assert!(t.iter().any(|&(x0, y0, w, h)| x >= x0 && x < x0 + w + 1.0 && y >= y0 && y < y0 + h + 1.0));
        }
        assert!(t.iter().all(|&(x0, y0, w, h)| x0 >= 0.0 && y0 >= 0.0 && x0 + w <= 1024.5 && y0 + h <= 768.5));
        // About twice the plain pass's scale.
        assert!((t[0].2 - 512.0).abs() < 1.0 && (t[0].3 - 384.0).abs() < 1.0, "{:?}", t[0]);
    }

    #[test]
    fn tiny_means_narrow_at_the_detectors_scale() {
        let face = |side: f32| FaceBox { x1: 0.0, y1: 0.0, x2: side, y2: side, score: 0.9 };
        // 1280 wide: scale 4, so 80 px is 20 px at the input.
        assert!(only_tiny(&[face(80.0)], 1280, 960));
        assert!(!only_tiny(&[face(80.0), face(200.0)], 1280, 960));
        assert!(only_tiny(&[], 1280, 960));
    }

    #[test]
    fn brightening_stretches_a_dark_picture_and_keeps_black() {
        let img = RgbImage::from_fn(20, 20, |x, _| Rgb([(x * 2) as u8, x as u8, 0]));
        let b = brightened(&img);
        assert_eq!(b.get_pixel(0, 0).0, [0, 0, 0]);
        assert!(b.get_pixel(19, 0)[0] > 200, "{:?}", b.get_pixel(19, 0));
        assert!(mean_grey(&b) > 3.0 * mean_grey(&img));
    }

    #[test]
    fn rotation_moves_a_marked_pixel_where_expected() {
        let mut img = RgbImage::new(40, 20);
        img.put_pixel(35, 10, Rgb([255, 0, 0]));
        // 90 degrees counter-clockwise: right of centre goes to above centre.
        let r = rotated(&img, 90.0);
        assert_eq!(r.dimensions(), (20, 40));
        assert_eq!(r.get_pixel(10, 4).0, [255, 0, 0]);
        // 180 by the general path: right of centre goes left of centre.
        let r = rotated(&img, 180.0);
        let red: Vec<_> = r.enumerate_pixels().filter(|p| p.2[0] > 100).map(|p| (p.0, p.1)).collect();
        assert!(red.iter().all(|&(x, y)| (4..=5).contains(&x) && (9..=10).contains(&y)), "{red:?}");
        assert_eq!(rotated(&img, 30.0).dimensions(), (45, 38));
    }
}
