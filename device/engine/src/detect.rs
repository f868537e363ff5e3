//! Face detection with UltraFace RFB-320: resize, score threshold, NMS, subject choice.

use super::error::Result;
use super::model::Net;
use super::resample::resize_region_planar;
use image::RgbImage;

pub use super::model::input::{DETECT_H as INPUT_H, DETECT_W as INPUT_W};

/// A face box in frame pixels (corner form) with its detector score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
}

impl FaceBox {
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }
    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }
    pub fn centre(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// Detector settings.
#[derive(Debug, Clone, Copy)]
pub struct DetectConfig {
    pub score_threshold: f32,
    pub nms_iou: f32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig { score_threshold: 0.7, nms_iou: 0.3 }
    }
}

pub struct Detector {
    net: Net,
    scores_ix: usize,
    boxes_ix: usize,
    pub config: DetectConfig,
}

impl Detector {
    pub fn new(net: Net, config: DetectConfig) -> Result<Detector> {
        let scores_ix = net.output_index("scores")?;
        let boxes_ix = net.output_index("boxes")?;
        Ok(Detector { net, scores_ix, boxes_ix, config })
    }

    /// All faces in the frame, best score first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<FaceBox>> {
        self.detect_region(img, (0.0, 0.0, img.width() as f32, img.height() as f32))
    }

    /// The faces in the region `(x0, y0, w, h)` of the frame (the region alone is shown to the
    /// network), in frame pixels, best score first.
    pub fn detect_region(&self, img: &RgbImage, region: (f32, f32, f32, f32)) -> Result<Vec<FaceBox>> {
        let outputs = self.net.run(preprocess_region(img, region))?;
        let (x0, y0, w, h) = region;
        let candidates = decode(&outputs[self.scores_ix], &outputs[self.boxes_ix], self.config.score_threshold, w, h)
            .into_iter()
            .map(|b| FaceBox { x1: b.x1 + x0, y1: b.y1 + y0, x2: b.x2 + x0, y2: b.y2 + y0, score: b.score })
            .collect();
        Ok(nms(candidates, self.config.nms_iou))
    }
}

/// Whole frame to 320x240 RGB planes, normalised (x - 127) / 128.
pub fn preprocess(img: &RgbImage) -> Vec<f32> {
    preprocess_region(img, (0.0, 0.0, img.width() as f32, img.height() as f32))
}

/// [`preprocess`] of a region of the frame.
pub fn preprocess_region(img: &RgbImage, region: (f32, f32, f32, f32)) -> Vec<f32> {
    let mut input = vec![0.0; 3 * INPUT_W * INPUT_H];
    resize_region_planar(img, region, INPUT_W, INPUT_H, [0, 1, 2], |x| (x - 127.0) / 128.0, &mut input);
    input
}

/// Turns raw outputs (face probability at `[i*2+1]`, normalised corners at `[i*4..]`) into
/// frame-pixel boxes above the threshold.
pub fn decode(scores: &[f32], boxes: &[f32], threshold: f32, w: f32, h: f32) -> Vec<FaceBox> {
    scores
        .chunks_exact(2)
        .zip(boxes.chunks_exact(4))
        .filter(|(s, _)| s[1] >= threshold)
        .map(|(s, b)| FaceBox { x1: b[0] * w, y1: b[1] * h, x2: b[2] * w, y2: b[3] * h, score: s[1] })
        .filter(|b| [b.x1, b.y1, b.x2, b.y2].iter().all(|v| v.is_finite()) && b.area() > 0.0)
        .collect()
}

/// Non-maximum suppression with box blending: the best remaining box claims every box that
/// overlaps it by more than `iou`, and the cluster's score-weighted mean box is reported.
/// Blending makes the box a smooth function of the network output, so near-ties between
/// neighbouring anchors cannot make it jump by pixels (as hard NMS does).
/// Output is sorted by score, best first.
pub fn nms(mut boxes: Vec<FaceBox>, iou: f32) -> Vec<FaceBox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut taken = vec![false; boxes.len()];
    let mut kept = Vec::new();
    for i in 0..boxes.len() {
        if taken[i] {
            continue;
        }
        let best = boxes[i];
        let (mut acc, mut weight) = ([0.0f32; 4], 0.0f32);
        for j in i..boxes.len() {
            if !taken[j] && best.iou(&boxes[j]) > iou || j == i {
                taken[j] = true;
                let b = &boxes[j];
                for (a, v) in acc.iter_mut().zip([b.x1, b.y1, b.x2, b.y2]) {
                    *a += b.score * v;
                }
                weight += b.score;
            }
        }
        let [x1, y1, x2, y2] = acc.map(|a| a / weight);
        kept.push(FaceBox { x1, y1, x2, y2, score: best.score });
    }
    kept
}

/// Index of the subject: the face nearest the frame centre, among faces at least a quarter
/// of the largest one's area. The person at a kiosk (or named in a photo) stands in the middle
/// of the frame; a bigger face at the edge is a bystander, and a tiny one in the middle is
/// someone far behind.
pub fn choose_subject(faces: &[FaceBox], frame_w: f32, frame_h: f32) -> Option<usize> {
    let largest = faces.iter().map(FaceBox::area).fold(0.0f32, f32::max);
    let dist = |b: &FaceBox| {
        let (cx, cy) = b.centre();
        (cx - frame_w / 2.0).hypot(cy - frame_h / 2.0)
    };
    faces
        .iter()
        .enumerate()
        .filter(|(_, b)| b.area() >= 0.25 * largest)
        .min_by(|(_, a), (_, b)| dist(a).total_cmp(&dist(b)).then(b.area().total_cmp(&a.area())))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> FaceBox {
        FaceBox { x1, y1, x2, y2, score }
    }

    #[test]
    fn iou_of_known_overlaps() {
        let a = bx(0.0, 0.0, 10.0, 10.0, 1.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&bx(20.0, 20.0, 30.0, 30.0, 1.0)), 0.0);
        // Half overlap: inter 50, union 150.
        assert!((a.iou(&bx(5.0, 0.0, 15.0, 10.0, 1.0)) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn nms_keeps_best_of_each_cluster() {
        let boxes = vec![
            bx(0.0, 0.0, 10.0, 10.0, 0.8),
            bx(1.0, 1.0, 11.0, 11.0, 0.95),
            bx(50.0, 50.0, 60.0, 60.0, 0.9),
            bx(0.5, 0.0, 10.5, 10.0, 0.7),
        ];
        let kept = nms(boxes, 0.3);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.95);
        assert_eq!(kept[1], bx(50.0, 50.0, 60.0, 60.0, 0.9));
        // The first cluster is the score-weighted mean of its three boxes.
        let x1 = (0.95 * 1.0 + 0.8 * 0.0 + 0.7 * 0.5) / (0.95 + 0.8 + 0.7);
        assert!((kept[0].x1 - x1).abs() < 1e-5, "{:?}", kept[0]);
    }

    #[test]
    fn decode_scales_and_thresholds() {
        let scores = [0.9, 0.1, 0.2, 0.8];
        let boxes = [0.0, 0.0, 1.0, 1.0, 0.25, 0.5, 0.75, 1.0];
        let faces = decode(&scores, &boxes, 0.7, 200.0, 100.0);
        assert_eq!(faces, vec![bx(50.0, 50.0, 150.0, 100.0, 0.8)]);
    }

    #[test]
    fn subject_is_the_most_central_sizeable_face() {
        // A larger face at the edge loses to a central one of comparable size.
        let faces = [bx(0.0, 0.0, 30.0, 30.0, 0.9), bx(40.0, 40.0, 60.0, 60.0, 0.8), bx(80.0, 0.0, 90.0, 10.0, 0.99)];
        assert_eq!(choose_subject(&faces, 100.0, 100.0), Some(1));
        // A tiny central face (someone far behind) loses to a big off-centre one.
        let faces = [bx(0.0, 0.0, 50.0, 50.0, 0.9), bx(45.0, 45.0, 55.0, 55.0, 0.8)];
        assert_eq!(choose_subject(&faces, 100.0, 100.0), Some(0));
        assert_eq!(choose_subject(&[], 100.0, 100.0), None);
    }

    #[test]
    fn preprocess_normalises_a_flat_frame() {
        let img = RgbImage::from_pixel(640, 480, image::Rgb([255, 127, 0]));
        let input = preprocess(&img);
        let plane = INPUT_W * INPUT_H;
        assert!(input[..plane].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert!(input[plane..2 * plane].iter().all(|&v| v == 0.0));
        assert!(input[2 * plane..].iter().all(|&v| (v + 127.0 / 128.0).abs() < 1e-6));
    }
}
