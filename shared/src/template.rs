//! Enrolled face templates and their quantized embeddings.
//!
//! # Embedding representation: `i16` + `f32` scale
//!
//! An [`Embedding`] stores [`EMBEDDING_DIM`] values quantized symmetrically
//! per vector: `scale = max|x| / 32767`, `q = round(x / scale)`, and
//! `x ≈ q * scale`. `int8` was rejected: for a unit vector with one large
//! spike the small components all round to zero (error up to
//! `sqrt(511) * 0.5/127 ≈ 0.09`, cosine ≈ 0.996), missing the 0.9999 target.
//! With `i16` the worst-case per-component error is `max|x| / 65534`, so for
//! any vector the relative error norm is at most `sqrt(512)/65534 ≈ 3.5e-4`
//! and cosine(original, dequantized) ≥ 0.99999 — guaranteed, not just typical.
//! The values go on the wire as 1024 little-endian bytes (postcard would
//! otherwise zig-zag varint each `i16`, up to 3 bytes each), so an
//! embedding costs 1028 bytes + a 2-byte length prefix, half of `f32`.
//!
//! # Identity
//!
//! [`PersonId`] is a `u32` assigned by the host registry (compact, and the
//! device never needs to interpret it). A person may have several templates
//! (different enrolment sessions); each has its own [`TemplateId`], also
//! host-assigned and unique per device store. Upsert replaces by `id`.

use core::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Dimension of a face embedding.
pub const EMBEDDING_DIM: usize = 512;
/// Maximum display-name length in bytes (UTF-8).
pub const DISPLAY_NAME_LEN: usize = 48;
/// Maximum embedding-model id length in bytes (UTF-8).
pub const MODEL_ID_LEN: usize = 32;

/// Host-assigned id of one template (unique within a device store).
pub type TemplateId = u32;
/// Host-assigned id of a person (several templates may share it).
pub type PersonId = u32;
/// Display name shown on the kiosk.
pub type DisplayName = heapless::String<DISPLAY_NAME_LEN>;
/// Identifier of the embedding model (e.g. `"arcface-r100-v2"`); embeddings
/// from different models are not comparable, so devices reject mismatches.
pub type ModelId = heapless::String<MODEL_ID_LEN>;

const Q_MAX: f32 = i16::MAX as f32;

/// The smallest squared length of a usable embedding: far below any real one
/// (unit vectors), far above where `f32` loses the direction.
pub const MIN_SQUARED_NORM: f32 = 1e-20;

/// A quantized face embedding (see the module docs for the format).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    scale: f32,
    #[serde(with = "i16_le_bytes")]
    values: [i16; EMBEDDING_DIM],
}

impl Embedding {
    /// Quantizes a float embedding. Non-finite components are treated as 0.
    pub fn quantize(v: &[f32; EMBEDDING_DIM]) -> Embedding {
        let max = v.iter().filter(|x| x.is_finite()).fold(0.0f32, |m, x| m.max(x.abs()));
        let mut values = [0i16; EMBEDDING_DIM];
        if max == 0.0 {
            return Embedding { scale: 0.0, values };
        }
        let scale = max / Q_MAX;
        for (q, x) in values.iter_mut().zip(v.iter()) {
            if x.is_finite() {
                // Round half away from zero; `f32::round` is std-only.
                let y = *x / scale;
                let r = if y >= 0.0 { y + 0.5 } else { y - 0.5 };
                // `as` saturates; clamp keeps the range symmetric.
                *q = (r as i32).clamp(-(i16::MAX as i32), i16::MAX as i32) as i16;
            }
        }
        Embedding { scale, values }
    }

    /// Builds an embedding from raw parts (e.g. read back from storage).
    pub const fn from_parts(scale: f32, values: [i16; EMBEDDING_DIM]) -> Embedding {
        Embedding { scale, values }
    }

    /// Dequantization scale: `x ≈ q * scale`.
    pub const fn scale(&self) -> f32 {
        self.scale
    }

    /// The quantized components.
    pub const fn values(&self) -> &[i16; EMBEDDING_DIM] {
        &self.values
    }

    /// Reconstructs the float embedding.
    pub fn dequantize(&self) -> [f32; EMBEDDING_DIM] {
        let mut out = [0.0f32; EMBEDDING_DIM];
        self.dequantize_into(&mut out);
        out
    }

    /// Reconstructs the float embedding into `out` (avoids a 2 KiB return copy).
    pub fn dequantize_into(&self, out: &mut [f32; EMBEDDING_DIM]) {
        for (o, q) in out.iter_mut().zip(self.values.iter()) {
            *o = f32::from(*q) * self.scale;
        }
    }

    /// `true` if the vector can be matched against: a finite positive scale,
    /// every dequantized component finite, and a squared length that is finite
    /// and at least [`MIN_SQUARED_NORM`] (a scale of 3e38 overflows it, one of
    /// 1e-30 underflows it to zero). The one check a device applies both when
    /// admitting a template and when loading its store.
    pub fn is_valid(&self) -> bool {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return false;
        }
        let mut squared = 0.0f32;
        for q in &self.values {
            let x = f32::from(*q) * self.scale;
            if !x.is_finite() {
                return false;
            }
            squared += x * x;
        }
        squared.is_finite() && squared >= MIN_SQUARED_NORM
    }

    /// Cosine similarity computed exactly in the integer domain (the scales
    /// cancel). Returns 0.0 if either vector is zero.
    pub fn cosine_similarity(&self, other: &Embedding) -> f32 {
        let (mut dot, mut na, mut nb) = (0i64, 0i64, 0i64);
        for (a, b) in self.values.iter().zip(other.values.iter()) {
            let (a, b) = (i64::from(*a), i64::from(*b));
            dot += a * b;
            na += a * a;
            nb += b * b;
        }
        if na == 0 || nb == 0 {
            return 0.0;
        }
        (dot as f64 / libm::sqrt(na as f64 * nb as f64)) as f32
    }
}

impl fmt::Debug for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 512 numbers are noise in logs; show the scale and a prefix.
        f.debug_struct("Embedding")
            .field("scale", &self.scale)
            .field("head", &&self.values[..4])
            .finish_non_exhaustive()
    }
}

/// Cosine similarity of two float vectors (0.0 if either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b.iter()) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / libm::sqrt(na * nb)) as f32
}

/// Serializes `[i16; N]` as one byte string of little-endian pairs: compact
/// and fixed-size in postcard, and still readable by self-describing formats.
mod i16_le_bytes {
    use super::*;

    const LEN: usize = EMBEDDING_DIM * 2;

    pub fn serialize<S: Serializer>(v: &[i16; EMBEDDING_DIM], s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; LEN];
        for (chunk, q) in buf.chunks_exact_mut(2).zip(v.iter()) {
            chunk.copy_from_slice(&q.to_le_bytes());
        }
        s.serialize_bytes(&buf)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[i16; EMBEDDING_DIM], D::Error> {
        d.deserialize_bytes(Visitor)
    }

    struct Visitor;

    impl<'de> de::Visitor<'de> for Visitor {
        type Value = [i16; EMBEDDING_DIM];

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{LEN} bytes of little-endian i16")
        }

        fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Self::Value, E> {
            if b.len() != LEN {
                return Err(E::invalid_length(b.len(), &self));
            }
            let mut out = [0i16; EMBEDDING_DIM];
            for (q, chunk) in out.iter_mut().zip(b.chunks_exact(2)) {
                *q = i16::from_le_bytes([chunk[0], chunk[1]]);
            }
            Ok(out)
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut buf = [0u8; LEN];
            for (i, slot) in buf.iter_mut().enumerate() {
                *slot = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
            }
            if seq.next_element::<u8>()?.is_some() {
                return Err(de::Error::invalid_length(LEN + 1, &self));
            }
            self.visit_bytes(&buf)
        }
    }
}

/// One enrolled template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub id: TemplateId,
    pub person_id: PersonId,
    pub display_name: DisplayName,
    /// Model that produced `embedding`; must equal the device's model id.
    pub model_id: ModelId,
    pub embedding: Embedding,
}

impl Template {
    /// Device-side admission check: model must match, embedding must be usable.
    pub fn validate(&self, device_model: &str) -> Result<(), crate::ErrorCode> {
        if self.model_id.as_str() != device_model {
            return Err(crate::ErrorCode::ModelMismatch);
        }
        if !self.embedding.is_valid() {
            return Err(crate::ErrorCode::InvalidTemplate);
        }
        Ok(())
    }

    /// Summary used in template listings.
    pub fn summary(&self) -> TemplateSummary {
        TemplateSummary { id: self.id, person_id: self.person_id, display_name: self.display_name.clone() }
    }
}

/// Template without its embedding (for listings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSummary {
    pub id: TemplateId,
    pub person_id: PersonId,
    pub display_name: DisplayName,
}

/// Digest carried by `SyncCommit`: SHA-256 over the postcard encoding of
/// every template, in the order sent (chunk by chunk). Both sides compute it
/// with this type so they cannot disagree on the definition.
#[derive(Clone, Default)]
pub struct SyncDigest {
    hasher: Sha256,
    count: u32,
}

impl fmt::Debug for SyncDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncDigest").field("count", &self.count).finish_non_exhaustive()
    }
}

impl SyncDigest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next template in sync order.
    pub fn update(&mut self, t: &Template) {
        // Serializing into a hasher cannot fail: the sink is unbounded and all
        // our types have known lengths.
        let _ = postcard::serialize_with_flavor(t, HashFlavor(&mut self.hasher));
        self.count = self.count.wrapping_add(1);
    }

    /// Number of templates added so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn finalize(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

/// postcard flavor that streams bytes into a hash instead of a buffer.
pub(crate) struct HashFlavor<'a, D>(pub(crate) &'a mut D);

impl<D: sha2::digest::Update> postcard::ser_flavors::Flavor for HashFlavor<'_, D> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.update(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.update(&[data]);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}
