//! Face embedding with MobileFaceNet: aligned 112x112 crop -> L2-normalised 512-d vector.

use super::error::{EngineError, Result};
use super::model::Net;
use image::RgbImage;

pub const EMBEDDING_DIM: usize = 512;
/// Side of the aligned crop the network takes.
pub use super::model::input::EMBED_SIDE as SIDE;

/// A random direction in the embedding space (coordinates roughly Gaussian, unit length), for
/// benchmarks and tests that need templates without faces.
pub fn random_unit(rng: &mut impl rand::Rng) -> Vec<f32> {
    loop {
        // A sum of four uniforms is close to Gaussian, so the direction is close to uniform.
        let v: Vec<f32> = (0..EMBEDDING_DIM).map(|_| (0..4).map(|_| rng.gen::<f32>() - 0.5).sum()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            return v.into_iter().map(|x| x / norm).collect();
        }
    }
}

/// A unit-length face embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    unit: Vec<f32>,
    /// Length of the vector before normalising, so a mirror pass can be added to the network's
    /// raw output without running the first pass again ([`Embedder::with_mirror`]).
    raw_norm: f32,
}

impl Embedding {
    /// Normalises `v` to unit length; `None` for a zero, non-finite or wrongly sized vector.
    pub fn from_raw(v: Vec<f32>) -> Option<Embedding> {
        if v.len() != EMBEDDING_DIM || v.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        (norm > 1e-12).then(|| Embedding { unit: v.into_iter().map(|x| x / norm).collect(), raw_norm: norm })
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.unit
    }

    /// Cosine similarity (both are unit vectors, so a dot product).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        dot(&self.unit, &other.unit)
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub struct Embedder {
    net: Net,
    /// Also embed the mirrored crop and sum: a cheap test-time augmentation.
    pub flip: bool,
}

impl Embedder {
    pub fn new(net: Net, flip: bool) -> Embedder {
        Embedder { net, flip }
    }

    pub fn name(&self) -> &str {
        &self.net.name
    }

    /// The crop's embedding: one pass, or with [`Embedder::with_mirror`] when `flip` is set.
    pub fn embed(&self, aligned: &RgbImage) -> Result<Embedding> {
        check_side(aligned)?;
        let single = Embedding::from_raw(self.raw(preprocess(aligned, false))?).ok_or_else(degenerate)?;
        if self.flip {
            return self.with_mirror(aligned, &single);
        }
        Ok(single)
    }

    /// `single` (this crop's one-pass embedding) with the mirror image's pass added, raw
    /// outputs summed: a steadier embedding for one more pass (on LFW it raises d' on every set
    /// we tried). Used where time allows it: templates at enrolment, and a second look at
    /// probes too close to call ([`super::Engine::needs_second_look`]).
    pub fn with_mirror(&self, aligned: &RgbImage, single: &Embedding) -> Result<Embedding> {
        check_side(aligned)?;
        let mirror = self.raw(preprocess(aligned, true))?;
        let sum = single.unit.iter().zip(mirror).map(|(u, m)| u * single.raw_norm + m).collect();
        Embedding::from_raw(sum).ok_or_else(degenerate)
    }

    fn raw(&self, input: Vec<f32>) -> Result<Vec<f32>> {
        let mut out = self.net.run(input)?;
        if out.is_empty() || out[0].len() != EMBEDDING_DIM {
            return Err(EngineError::Model { name: self.net.name.clone(), reason: "output is not 512-d".into() });
        }
        Ok(out.swap_remove(0))
    }
}

fn check_side(aligned: &RgbImage) -> Result<()> {
    if aligned.dimensions() != (SIDE as u32, SIDE as u32) {
        return Err(EngineError::inference("embed", format!("crop is {:?}, need 112x112", aligned.dimensions())));
    }
    Ok(())
}

fn degenerate() -> EngineError {
    EngineError::inference("embed", "degenerate embedding")
}

/// BGR planes, (x - 127.5) / 128, optionally mirrored left-right.
pub fn preprocess(aligned: &RgbImage, mirror: bool) -> Vec<f32> {
    let plane = SIDE * SIDE;
    let mut input = vec![0.0; 3 * plane];
    for (x, y, p) in aligned.enumerate_pixels() {
        let x = if mirror { SIDE - 1 - x as usize } else { x as usize };
        let i = y as usize * SIDE + x;
        for (c, src) in [2, 1, 0].into_iter().enumerate() {
            input[c * plane + i] = (p.0[src] as f32 - 127.5) / 128.0;
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_is_bgr_and_centred() {
        let mut img = RgbImage::from_pixel(112, 112, image::Rgb([255, 127, 0]));
        img.put_pixel(0, 0, image::Rgb([0, 0, 0]));
        let v = preprocess(&img, false);
        let plane = 112 * 112;
        assert_eq!(v[1], (0.0 - 127.5) / 128.0); // blue first
        assert_eq!(v[2 * plane + 1], (255.0 - 127.5) / 128.0); // red last
        assert_eq!(v[plane + 1], (127.0 - 127.5) / 128.0);
        assert_eq!(v[0], -127.5 / 128.0);
        let m = preprocess(&img, true);
        assert_eq!(m[111], -127.5 / 128.0, "black pixel mirrored to the right edge");
        assert_eq!(m[0], v[1]);
    }

    #[test]
    fn embeddings_are_unit_and_reject_garbage() {
        let e = Embedding::from_raw((0..512).map(|i| i as f32).collect()).expect("valid");
        assert!((e.cosine(&e) - 1.0).abs() < 1e-5);
        assert!(Embedding::from_raw(vec![0.0; 512]).is_none());
        assert!(Embedding::from_raw(vec![1.0; 511]).is_none());
        let mut nan = vec![1.0; 512];
        nan[3] = f32::NAN;
        assert!(Embedding::from_raw(nan).is_none());
    }
}
