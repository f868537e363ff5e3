//! Following the subject across frames, so a face already decided is not embedded again on
//! every frame, and a new face (or the same spot taken by someone else) is noticed.
//!
//! Position alone cannot tell two people apart when they stand where the last one stood, so
//! a track also keeps a tiny appearance signature of the aligned face (16x16 grey, zero mean,
//! unit norm): a correlation below [`SAME_FACE_MIN_CORRELATION`] ends the track.

use facegate_engine::FaceBox;
use image::RgbImage;

const SIG_SIDE: usize = 16;
/// Signature correlation at or above which two crops are the same face: frames of one face
/// stay above it, different people stay below (measured by `tests/kiosk_loop.rs`; figures in
/// docs/ACCURACY.md).
pub const SAME_FACE_MIN_CORRELATION: f32 = 0.9;
/// A box this far from the last one is somebody else, whatever the signature says.
const MIN_IOU: f32 = 0.3;

/// Appearance signature of an aligned face crop.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature(Vec<f32>);

impl Signature {
    /// Block-averaged grey levels of the aligned crop, zero mean and unit norm, so a change
    /// of exposure alone does not look like a new face.
    pub fn of(aligned: &RgbImage) -> Signature {
        let (w, h) = (aligned.width() as usize, aligned.height() as usize);
        let mut sums = vec![0.0f32; SIG_SIDE * SIG_SIDE];
        let mut counts = vec![0u32; SIG_SIDE * SIG_SIDE];
        for (x, y, p) in aligned.enumerate_pixels() {
            let cell = (y as usize * SIG_SIDE / h.max(1)) * SIG_SIDE + x as usize * SIG_SIDE / w.max(1);
            sums[cell] += 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
            counts[cell] += 1;
        }
        let mut v: Vec<f32> = sums.iter().zip(&counts).map(|(s, &c)| if c > 0 { s / c as f32 } else { 0.0 }).collect();
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        v.iter_mut().for_each(|x| *x -= mean);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 1e-6 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        Signature(v)
    }

    /// Pearson correlation of two signatures (0 for a flat image).
    pub fn correlation(&self, other: &Signature) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}

/// The face currently followed.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    pub last_box: FaceBox,
    /// Signature when the track was decided (or first seen).
    pub signature: Option<Signature>,
    pub decided: bool,
    missed: u32,
}

/// Where a frame's subject stands relative to the current track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A face that is not the one followed so far.
    New(u64),
    /// The followed face again.
    Same(u64),
    /// No subject in this frame.
    Empty,
}

/// Single-subject tracker (a door camera decides for one person at a time).
#[derive(Debug)]
pub struct Tracker {
    current: Option<Track>,
    next_id: u64,
    /// Frames without a face before the track ends (a blink of the detector is not a new
    /// visit).
    max_missed: u32,
}

impl Tracker {
    pub fn new(max_missed: u32) -> Tracker {
        Tracker { current: None, next_id: 1, max_missed }
    }

    pub fn current(&self) -> Option<&Track> {
        self.current.as_ref()
    }

    pub fn current_mut(&mut self) -> Option<&mut Track> {
        self.current.as_mut()
    }

    /// Feeds this frame's subject box (or none).
    pub fn observe(&mut self, subject: Option<&FaceBox>) -> Step {
        let Some(b) = subject else {
            if let Some(t) = &mut self.current {
                t.missed += 1;
                if t.missed > self.max_missed {
                    self.current = None;
                }
            }
            return Step::Empty;
        };
        if let Some(t) = &mut self.current {
            if t.last_box.iou(b) >= MIN_IOU {
                t.last_box = *b;
                t.missed = 0;
                return Step::Same(t.id);
            }
        }
        Step::New(self.start(*b))
    }

    /// Ends the current track and starts another on `b` (used when the appearance changed).
    pub fn restart(&mut self, b: FaceBox) -> u64 {
        self.start(b)
    }

    fn start(&mut self, b: FaceBox) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.current = Some(Track { id, last_box: b, signature: None, decided: false, missed: 0 });
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn fb(x: f32, y: f32, s: f32) -> FaceBox {
        FaceBox { x1: x, y1: y, x2: x + s, y2: y + s, score: 0.9 }
    }

    #[test]
    fn same_place_continues_moved_away_is_new() {
        let mut t = Tracker::new(2);
        let Step::New(a) = t.observe(Some(&fb(10.0, 10.0, 100.0))) else { panic!("first face must be new") };
        assert_eq!(t.observe(Some(&fb(15.0, 12.0, 100.0))), Step::Same(a));
        let step = t.observe(Some(&fb(300.0, 10.0, 100.0)));
        assert!(matches!(step, Step::New(b) if b != a));
    }

    #[test]
    fn short_gaps_are_bridged_long_gaps_end_the_track() {
        let mut t = Tracker::new(2);
        let Step::New(a) = t.observe(Some(&fb(10.0, 10.0, 100.0))) else { panic!() };
        assert_eq!(t.observe(None), Step::Empty);
        assert_eq!(t.observe(None), Step::Empty);
        assert_eq!(t.observe(Some(&fb(10.0, 10.0, 100.0))), Step::Same(a));
        for _ in 0..3 {
            t.observe(None);
        }
        assert!(t.current().is_none());
        assert!(matches!(t.observe(Some(&fb(10.0, 10.0, 100.0))), Step::New(b) if b != a));
    }

    fn pattern(seed: u32, gain: f32) -> RgbImage {
        RgbImage::from_fn(112, 112, |x, y| {
            let v = ((x * 7 + y * 13 + seed * 31) % 97) as f32
                + if (x / 20 + y / 20 + seed).is_multiple_of(2) { 80.0 } else { 0.0 };
            let g = (v * gain).min(255.0) as u8;
            Rgb([g, g, g])
        })
    }

    #[test]
    fn signature_ignores_exposure_but_not_content() {
        let a = Signature::of(&pattern(1, 1.0));
        let brighter = Signature::of(&pattern(1, 1.4));
        let other = Signature::of(&pattern(2, 1.0));
        assert!(a.correlation(&brighter) > 0.99, "{}", a.correlation(&brighter));
        assert!(a.correlation(&other) < SAME_FACE_MIN_CORRELATION, "{}", a.correlation(&other));
        let flat = Signature::of(&RgbImage::from_pixel(112, 112, Rgb([9, 9, 9])));
        assert_eq!(flat.correlation(&a), 0.0);
    }
}
