//! Development sets made in memory from photos we have: what a kiosk camera and an enrolment
//! photo give that LFW's 250x250 news photos do not. `--derive KIND` on `facegate eval faces`
//! and `eval pairs` applies one to every image as it is read; nothing is written to disk.
//!
//! - `tight:M`: cropped to the detector's box grown by `M` of its size on each side (a face
//!   filling the frame: a person close to the camera, a passport-style photo);
//! - `small:PX`: scaled so the picture is `PX` pixels wide, pasted at a place fixed by the file
//!   name into a 1024x768 textured canvas (a small face in a large photo);
//! - `turn:DEG`: turned `DEG` degrees counter-clockwise on a canvas that holds it all;
//! - `dark:F`: every level multiplied by `F` (a dim room).

use anyhow::{bail, Context, Result};
use facegate_engine::{search, Engine};
use image::{Rgb, RgbImage};
use std::fmt;
use std::str::FromStr;

/// Canvas of the `small` derivation.
pub const SMALL_CANVAS: (u32, u32) = (1024, 768);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Derive {
    Tight(f32),
    Small(u32),
    Turn(f32),
    Dark(f32),
}

impl FromStr for Derive {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Derive> {
        let (kind, value) = s.split_once(':').with_context(|| format!("{s:?}: expected KIND:VALUE, e.g. tight:0.1"))?;
        let number = |what: &str| value.parse::<f32>().with_context(|| format!("{s:?}: {what} must be a number"));
        let d = match kind {
            "tight" => Derive::Tight(number("the margin")?),
            "small" => Derive::Small(value.parse().with_context(|| format!("{s:?}: width in pixels"))?),
            "turn" => Derive::Turn(number("the angle")?),
            "dark" => Derive::Dark(number("the factor")?),
            _ => bail!("{s:?}: unknown derivation {kind:?} (tight, small, turn, dark)"),
        };
        match d {
            Derive::Tight(m) if !(-0.2..=1.0).contains(&m) => bail!("{s:?}: margin must be in -0.2..1"),
            Derive::Small(px) if !(16..=SMALL_CANVAS.1).contains(&px) => {
                bail!("{s:?}: width must be in 16..{}", SMALL_CANVAS.1)
            }
            Derive::Dark(f) if !(0.0..=1.0).contains(&f) => bail!("{s:?}: factor must be in 0..1"),
            _ => Ok(d),
        }
    }
}

impl fmt::Display for Derive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Derive::Tight(m) => write!(f, "tight:{m}"),
            Derive::Small(px) => write!(f, "small:{px}"),
            Derive::Turn(d) => write!(f, "turn:{d}"),
            Derive::Dark(k) => write!(f, "dark:{k}"),
        }
    }
}

impl Derive {
    /// The derived picture; `key` (the file's relative path) fixes where a small face goes.
    /// `None` when the source has no face to crop to (`tight` needs the detector's box).
    pub fn apply(&self, engine: &Engine, img: &RgbImage, key: &str) -> facegate_engine::Result<Option<RgbImage>> {
        Ok(Some(match *self {
            Derive::Tight(margin) => {
                let faces = engine.detector.detect(img)?;
                let Some(face) = faces.first() else { return Ok(None) };
                let (gx, gy) = (face.width() * margin, face.height() * margin);
                let clamp = |v: f32, hi: u32| v.round().clamp(0.0, hi as f32) as u32;
                let (x1, y1) = (clamp(face.x1 - gx, img.width()), clamp(face.y1 - gy, img.height()));
                let (x2, y2) = (clamp(face.x2 + gx, img.width()), clamp(face.y2 + gy, img.height()));
                if x2 <= x1 + 8 || y2 <= y1 + 8 {
                    return Ok(None);
                }
                image::imageops::crop_imm(img, x1, y1, x2 - x1, y2 - y1).to_image()
            }
            Derive::Small(px) => small(img, px, key),
            Derive::Turn(deg) => search::rotated(img, deg),
            Derive::Dark(k) => {
                let mut out = img.clone();
                for p in out.pixels_mut() {
                    p.0 = p.0.map(|c| (c as f32 * k).round() as u8);
                }
                out
            }
        }))
    }
}

fn small(img: &RgbImage, px: u32, key: &str) -> RgbImage {
    let (cw, ch) = SMALL_CANVAS;
    let h = (img.height() as u64 * px as u64 / img.width().max(1) as u64).clamp(1, ch as u64) as u32;
    let scaled = image::imageops::resize(img, px, h, image::imageops::FilterType::Triangle);
    let seed = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    // A smooth two-tone gradient with a fine ripple: clutter without anything face-like.
    let (a, b) = ((seed & 0xff) as f32, ((seed >> 8) & 0xff) as f32);
    let mut canvas = RgbImage::from_fn(cw, ch, |x, y| {
        let t = (x + y) as f32 / (cw + ch) as f32;
        let ripple = 12.0 * ((x as f32 * 0.21).sin() * (y as f32 * 0.17).cos());
        let v = |base: f32| (base * (1.0 - t) + (255.0 - base) * t + ripple).clamp(0.0, 255.0) as u8;
        Rgb([v(a), v(b), v((a + b) / 2.0)])
    });
    let x = (seed >> 16) % u64::from(cw - px + 1);
    let y = (seed >> 32) % u64::from(ch - h + 1);
    image::imageops::replace(&mut canvas, &scaled, x as i64, y as i64);
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_range_checks() {
        assert_eq!("tight:0.1".parse::<Derive>().ok(), Some(Derive::Tight(0.1)));
        assert_eq!("small:60".parse::<Derive>().ok(), Some(Derive::Small(60)));
        assert_eq!("turn:-90".parse::<Derive>().ok(), Some(Derive::Turn(-90.0)));
        assert_eq!("dark:0.15".parse::<Derive>().ok(), Some(Derive::Dark(0.15)));
        for bad in ["tight", "tight:x", "small:5", "dark:2", "blur:3", "tight:3"] {
            assert!(bad.parse::<Derive>().is_err(), "{bad}");
        }
        assert_eq!(Derive::Small(60).to_string(), "small:60");
    }

    #[test]
    fn small_pastes_the_scaled_picture_at_a_place_fixed_by_the_key() {
        let img = RgbImage::from_pixel(250, 250, Rgb([7, 7, 7]));
        let a = small(&img, 50, "x/1.jpg");
        assert_eq!(a.dimensions(), SMALL_CANVAS);
        let dark = a.pixels().filter(|p| p.0 == [7, 7, 7]).count();
        assert_eq!(dark, 50 * 50, "the picture, scaled, once");
        assert_eq!(a, small(&img, 50, "x/1.jpg"), "deterministic");
        let spot = |c: &RgbImage| c.enumerate_pixels().find(|p| p.2 .0 == [7, 7, 7]).map(|p| (p.0, p.1));
        assert_ne!(spot(&a), spot(&small(&img, 50, "y/2.jpg")));
    }
}
