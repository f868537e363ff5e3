//! Failure thumbnails: the aligned 112x112 crop the network saw, or the downscaled original
//! when no face was found, written under the report's `gallery/` folder.

use super::page::{Page, Tile};
use super::ReportError;
use crate::derive::Derive;
use facegate_engine::{Engine, FacePolicy, QualityGate};
use image::RgbImage;
use std::path::{Path, PathBuf};

/// The longer side of an original shown for "no face found".
pub const ORIGINAL_SIDE: u32 = 160;
/// At most this many "no face" images are shown (the rest are counted).
pub const MAX_NO_FACE: usize = 48;

/// A face as the engine saw it, with what a caption says of its quality.
#[derive(Debug, Clone)]
pub struct Face {
    pub crop: RgbImage,
    /// e.g. `yaw 31°, turned too far` (the door gate's complaints, if any).
    pub notes: String,
}

/// Where the pictures of a gallery come from: the engine on the photos, or a test's images.
pub trait Thumbs {
    /// The aligned crop of an image's subject face, or why there is none.
    fn face(&self, path: &Path) -> Result<Face, String>;
    /// The image itself, downscaled to [`ORIGINAL_SIDE`].
    fn original(&self, path: &Path) -> Result<RgbImage, String>;
}

/// Thumbnails made by running the engine again on the few images a gallery shows.
pub struct EngineThumbs<'a> {
    pub engine: &'a Engine,
    pub root: &'a Path,
    pub derive: Option<Derive>,
}

impl Thumbs for EngineThumbs<'_> {
    fn face(&self, path: &Path) -> Result<Face, String> {
        let img = crate::batch::load(self.engine, self.root, path, self.derive).map_err(|e| e.to_string())?;
        let face = self.engine.process(&img, FacePolicy::Subject, &QualityGate::NONE).map_err(|e| e.to_string())?;
        let q = &face.observation.quality;
        let mut notes = format!("yaw {:.0}°", q.yaw_deg);
        for issue in QualityGate::VERIFY.check(q) {
            notes.push_str(&format!(", {issue}"));
        }
        Ok(Face { crop: face.observation.aligned, notes })
    }

    fn original(&self, path: &Path) -> Result<RgbImage, String> {
        let img = crate::batch::load(self.engine, self.root, path, None).map_err(|e| e.to_string())?;
        Ok(thumbnail(&img, ORIGINAL_SIDE))
    }
}

/// `img` shrunk so its longer side is at most `side` (never enlarged).
pub fn thumbnail(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w.max(h) <= side {
        return img.clone();
    }
    let scale = f64::from(side) / f64::from(w.max(h));
    let (nw, nh) = (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1));
    image::imageops::thumbnail(img, nw, nh)
}

/// Writes `img` as `dir/gallery/NAME.png`; returns the path relative to `dir`.
pub fn save(dir: &Path, name: &str, img: &RgbImage) -> Result<String, ReportError> {
    let folder = dir.join("gallery");
    std::fs::create_dir_all(&folder).map_err(ReportError::io(&folder))?;
    let path: PathBuf = folder.join(format!("{name}.png"));
    img.save_with_format(&path, image::ImageFormat::Png).map_err(|source| ReportError::Image { path, source })?;
    Ok(format!("gallery/{name}.png"))
}

/// Adds the images without a usable face to `page`: each downscaled original with its path and
/// the reason, at most [`MAX_NO_FACE`] of them, then how many more; `empty` when there are none.
pub fn add_no_face(
    page: &mut Page,
    dir: &Path,
    images: &[(&Path, &str)],
    thumbs: &dyn Thumbs,
    empty: &str,
) -> Result<(), ReportError> {
    let mut tiles = Vec::new();
    for (k, (path, why)) in images.iter().take(MAX_NO_FACE).enumerate() {
        let img = thumbs.original(path).unwrap_or_else(|_| placeholder());
        let file = save(dir, &format!("noface-{:02}", k + 1), &img)?;
        tiles.push(Tile { images: vec![file], caption: vec![path.display().to_string(), (*why).to_owned()] });
    }
    page.gallery(&tiles, empty);
    if images.len() > MAX_NO_FACE {
        page.note(&format!("... and {} more", images.len() - MAX_NO_FACE));
    }
    Ok(())
}

/// A grey square saying nothing could be shown (the image could not be read again).
pub fn placeholder() -> RgbImage {
    RgbImage::from_pixel(112, 112, image::Rgb([200, 200, 200]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_keep_the_aspect_and_never_enlarge() {
        let wide = RgbImage::new(640, 320);
        assert_eq!(thumbnail(&wide, 160).dimensions(), (160, 80));
        let small = RgbImage::new(100, 50);
        assert_eq!(thumbnail(&small, 160).dimensions(), (100, 50));
    }
}
