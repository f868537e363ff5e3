//! Where frames come from: a camera (feature `camera`), a directory of images (demos, tests,
//! replay of recorded sessions) or frames made in code.

#[cfg(feature = "camera")]
pub mod camera;
mod dir;

pub use dir::{DirSource, DirSourceOptions};

use image::RgbImage;
use std::time::{Duration, Instant};

/// Why a source could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("frame source {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("frame directory {0} holds no images (jpg, jpeg, png, pgm, ppm, bmp)")]
    Empty(String),
    #[error("camera: {0}")]
    Camera(String),
    /// No frame could be read for a while (the source keeps trying): e.g. every file of a
    /// replay is damaged. The kiosk shows it and carries on.
    #[error("no readable frame for {secs} s ({count} tried); last: {last}")]
    Unreadable { secs: u64, count: u64, last: String },
}

impl SourceError {
    /// Whether the source can go on after this error (the next call may deliver a frame).
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Unreadable { .. })
    }
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct CapturedFrame {
    /// 0, 1, 2, ... in capture order.
    pub index: u64,
    /// Device clock: time since the source started (virtual time for paced replays).
    pub at: Duration,
    /// Wall-clock capture instant, for latency figures.
    pub captured: Instant,
    pub image: RgbImage,
    /// Where it came from (file name, "camera 0", ...), for logs.
    pub label: String,
}

/// A stream of frames.
pub trait FrameSource: Send {
    /// The next frame; `Ok(None)` when the stream has ended (or was asked to stop).
    fn next_frame(&mut self) -> Result<Option<CapturedFrame>, SourceError>;

    /// `true` for live sources (cameras), whose stale frames should be dropped when the
    /// pipeline is busy; replays deliver every frame.
    fn is_live(&self) -> bool {
        false
    }
}

/// Frames made by a closure, for tests.
pub struct SyntheticSource<F> {
    make: F,
    count: u64,
    next: u64,
    period: Duration,
    started: Instant,
}

impl<F: FnMut(u64) -> RgbImage + Send> SyntheticSource<F> {
    /// `count` frames, `period` apart on the device clock.
    pub fn new(count: u64, period: Duration, make: F) -> Self {
        SyntheticSource { make, count, next: 0, period, started: Instant::now() }
    }
}

impl<F: FnMut(u64) -> RgbImage + Send> FrameSource for SyntheticSource<F> {
    fn next_frame(&mut self) -> Result<Option<CapturedFrame>, SourceError> {
        if self.next >= self.count {
            return Ok(None);
        }
        let index = self.next;
        self.next += 1;
        let at = self.period.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX));
        Ok(Some(CapturedFrame {
            index,
            at,
            captured: Instant::now().max(self.started),
            image: (self.make)(index),
            label: format!("synthetic {index}"),
        }))
    }
}

/// A visitor in front of the camera, made from one photo: the photo, the photo moved a few
/// pixels, and the photo brighter (the demo, the kiosk bench and the tests replay these).
pub fn visit_frames(img: &RgbImage) -> Vec<RgbImage> {
    let (w, h) = img.dimensions();
    let shifted = RgbImage::from_fn(w, h, |x, y| *img.get_pixel(x.saturating_sub(4), y.saturating_sub(3)));
    let brighter = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb(img.get_pixel(x, y).0.map(|c| (f32::from(c) * 1.12).min(255.0) as u8))
    });
    vec![img.clone(), shifted, brighter]
}

/// The empty scene between visitors (ends the device's track): uniform grey.
pub fn empty_frame(w: u32, h: u32) -> RgbImage {
    RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_source_counts_and_ends() {
        let mut s = SyntheticSource::new(3, Duration::from_millis(100), |i| RgbImage::new(4 + i as u32, 4));
        let mut widths = Vec::new();
        while let Some(f) = s.next_frame().expect("synthetic frames cannot fail") {
            assert_eq!(f.at, Duration::from_millis(100 * f.index));
            widths.push(f.image.width());
        }
        assert_eq!(widths, vec![4, 5, 6]);
    }
}
