//! Matching embeddings against enrolled templates: 1:1 verify and 1:N identify.
//!
//! The gallery keeps each template as int8 codes with a per-vector scale. That quarters the
//! memory traffic of a 1:N scan (the scan is bandwidth-bound: 100k templates are 51 MB as
//! int8, 205 MB as f32) at a cosine error below 1e-3.

use super::embed::{Embedding, EMBEDDING_DIM};

/// An int8-quantised unit vector: `x ~= code * scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedEmbedding {
    pub codes: Vec<i8>,
    pub scale: f32,
}

impl QuantizedEmbedding {
    pub fn new(e: &Embedding) -> QuantizedEmbedding {
        let v = e.as_slice();
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        QuantizedEmbedding { codes: v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale }
    }
}

/// Who a template belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub template_id: u32,
    pub person_id: u32,
    pub name: String,
}

/// The best match of a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub index: usize,
    pub person_id: u32,
    pub score: f32,
}

/// Enrolled templates, scanned as one contiguous int8 matrix.
#[derive(Debug, Default, Clone)]
pub struct Gallery {
    refs: Vec<TemplateRef>,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

impl Gallery {
    pub fn new() -> Gallery {
        Gallery::default()
    }

    pub fn len(&self) -> usize {
        self.refs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    pub fn template(&self, index: usize) -> Option<&TemplateRef> {
        self.refs.get(index)
    }

    pub fn push(&mut self, r: TemplateRef, e: &Embedding) {
        let q = QuantizedEmbedding::new(e);
        self.push_quantized(r, &q);
    }

    pub fn push_quantized(&mut self, r: TemplateRef, q: &QuantizedEmbedding) {
        debug_assert_eq!(q.codes.len(), EMBEDDING_DIM);
        self.refs.push(r);
        self.codes.extend_from_slice(&q.codes);
        self.scales.push(q.scale);
    }

    /// Cosine of the quantised probe with template `i`.
    fn row_score(&self, q: &QuantizedEmbedding, i: usize) -> f32 {
        let codes = &self.codes[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM];
        dot_i8(&q.codes, codes) as f32 * q.scale * self.scales[i]
    }

    /// Scores of the probe against every template, in gallery order.
    pub fn scores(&self, probe: &Embedding) -> Vec<f32> {
        let q = QuantizedEmbedding::new(probe);
        (0..self.len()).map(|i| self.row_score(&q, i)).collect()
    }

    /// 1:N: the best-scoring template overall.
    pub fn identify(&self, probe: &Embedding) -> Option<Candidate> {
        let q = QuantizedEmbedding::new(probe);
        // The probe scale is common to every row, so it is applied once at the end.
        let mut best: Option<(usize, f32)> = None;
        for (i, (c, s)) in self.codes.chunks_exact(EMBEDDING_DIM).zip(&self.scales).enumerate() {
            let score = dot_i8(&q.codes, c) as f32 * s;
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((i, score));
            }
        }
        best.map(|(index, score)| Candidate { index, person_id: self.refs[index].person_id, score: score * q.scale })
    }

    /// The best score among everyone else's templates, `None` when no one else is enrolled.
    pub fn best_other(&self, probe: &Embedding, person_id: u32) -> Option<f32> {
        let q = QuantizedEmbedding::new(probe);
        (0..self.len()).filter(|&i| self.refs[i].person_id != person_id).map(|i| self.row_score(&q, i)).reduce(f32::max)
    }

    /// 1:1: the best score among the templates of `person_id`, `None` if not enrolled.
    pub fn verify(&self, probe: &Embedding, person_id: u32) -> Option<Candidate> {
        let q = QuantizedEmbedding::new(probe);
        self.refs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.person_id == person_id)
            .map(|(i, r)| Candidate { index: i, person_id: r.person_id, score: self.row_score(&q, i) })
            .max_by(|a, b| a.score.total_cmp(&b.score))
    }
}

/// Integer dot product. Written plainly so LLVM vectorises it (pmaddwd); on x86-64 with AVX2
/// the same code is compiled a second time with 256-bit registers and picked at run time.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { dot_i8_avx2(a, b) };
        }
    }
    dot_i8_portable(a, b)
}

#[inline(always)]
fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    // Wrapping ops cannot wrap here (|sum| <= 512 * 127^2 < 2^24) but, unlike `+` under
    // overflow checks, they let the loop vectorise in every build profile.
    a.iter().zip(b).fold(0i32, |acc, (&x, &y)| acc.wrapping_add((x as i32).wrapping_mul(y as i32)))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_portable(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_embedding(rng: &mut impl Rng) -> Embedding {
        Embedding::from_raw(crate::embed::random_unit(rng)).expect("non-zero")
    }

    fn noisy(e: &Embedding, amount: f32, rng: &mut impl Rng) -> Embedding {
        Embedding::from_raw(e.as_slice().iter().map(|x| x + amount * (rng.gen::<f32>() - 0.5)).collect()).expect("ok")
    }

    fn tref(i: u32, person: u32) -> TemplateRef {
        TemplateRef { template_id: i, person_id: person, name: format!("p{person}") }
    }

    #[test]
    fn quantised_scores_track_float_cosine() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut g = Gallery::new();
        let es: Vec<Embedding> = (0..50).map(|_| random_embedding(&mut rng)).collect();
        for (i, e) in es.iter().enumerate() {
            g.push(tref(i as u32, i as u32), e);
        }
        let probe = noisy(&es[3], 0.05, &mut rng);
        for (score, e) in g.scores(&probe).iter().zip(&es) {
            assert!((score - probe.cosine(e)).abs() < 2e-3, "{score} vs {}", probe.cosine(e));
        }
    }

    #[test]
    fn identify_finds_the_right_person_and_verify_restricts_to_them() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut g = Gallery::new();
        let people: Vec<Embedding> = (0..200).map(|_| random_embedding(&mut rng)).collect();
        for (i, e) in people.iter().enumerate() {
            g.push(tref(i as u32 * 2, i as u32), e);
            g.push(tref(i as u32 * 2 + 1, i as u32), &noisy(e, 0.1, &mut rng));
        }
        for p in [0usize, 57, 199] {
            let probe = noisy(&people[p], 0.1, &mut rng);
            let best = g.identify(&probe).expect("non-empty");
            assert_eq!(best.person_id, p as u32);
            assert!(best.score > 0.5);
            let v = g.verify(&probe, 3).expect("person 3 enrolled");
            assert_eq!(v.person_id, 3);
            assert!(v.score < 0.3, "an impostor scores low: {}", v.score);
        }
        assert!(g.verify(&people[0], 999).is_none());
        assert!(Gallery::new().identify(&people[0]).is_none());
    }

    #[test]
    fn dot_kernels_agree() {
        let a: Vec<i8> = (0..512).map(|i| ((i * 37) % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..512).map(|i| ((i * 91) % 255 - 127) as i8).collect();
        let expect: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
        assert_eq!(dot_i8(&a, &b), expect);
        assert_eq!(dot_i8_portable(&a, &b), expect);
        assert_eq!(dot_i8(&[-127; 512], &[-127; 512]), 127 * 127 * 512);
    }
}
