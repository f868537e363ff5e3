//! Face templates: exact `f32` embeddings per model, quantised only for the wire.

use super::db::{args, Db};
use super::error::EmbeddingProblem;
use super::history::{insert_note, HistoryNote};
use super::people::{find_person_by_id, find_person_by_name, insert_person, validate_name, Person};
use super::{check_text, inserted_id, now_ms, Registry, RegistryError, TextProblem};
use facegate_proto::{DisplayName, Embedding, ModelId, PersonId, Template, TemplateId, EMBEDDING_DIM, MODEL_ID_LEN};
use std::fmt;

/// Allowed deviation of an embedding's L2 norm from 1. Models emit normalised `f32` vectors (error ~1e-6); anything
/// further off is a caller bug (raw, unnormalised output), which would silently skew every similarity score.
pub const UNIT_NORM_TOLERANCE: f64 = 1e-3;

pub(super) const EMBEDDING_BYTES: usize = EMBEDDING_DIM * 4;

/// A template as stored: the exact `f32` embedding, not the quantised wire form.
#[derive(Clone, PartialEq)]
pub struct StoredTemplate {
    pub id: TemplateId,
    pub person_id: PersonId,
    pub model_id: String,
    pub embedding: [f32; EMBEDDING_DIM],
    /// Where the embedding came from, e.g. the photo's file name.
    pub source: String,
    pub quality: Option<f32>,
    pub created_ms: i64,
}

impl fmt::Debug for StoredTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 512 floats are noise in logs; a prefix identifies the vector.
        f.debug_struct("StoredTemplate")
            .field("id", &self.id)
            .field("person_id", &self.person_id)
            .field("model_id", &self.model_id)
            .field("embedding_head", &&self.embedding[..4])
            .field("source", &self.source)
            .field("quality", &self.quality)
            .field("created_ms", &self.created_ms)
            .finish()
    }
}

impl Registry {
    /// Adds one template for an existing person. The embedding must be [`EMBEDDING_DIM`] finite values of unit
    /// norm (within [`UNIT_NORM_TOLERANCE`]); it is stored exactly as given.
    pub fn add_template(
        &mut self,
        person: PersonId,
        model_id: &str,
        embedding: &[f32],
        source: &str,
        quality: Option<f32>,
    ) -> Result<TemplateId, RegistryError> {
        validate_model_id(model_id)?;
        let blob = encode_embedding(0, embedding)?;
        validate_quality(0, quality)?;
        let tx = self.write_tx()?;
        if find_person_by_id(&tx, person)?.is_none() {
            return Err(RegistryError::PersonIdNotFound(person));
        }
        let id = insert_template(&tx, person, model_id, &blob, source, quality, now_ms())?;
        tx.commit()?;
        Ok(id)
    }

    /// Enrols `name` (created if absent) with all `embeddings` as `(embedding, source, quality)`, in one
    /// transaction: on any error nothing is stored, not even the new person.
    pub fn enroll(
        &mut self,
        name: &str,
        model_id: &str,
        embeddings: &[(Vec<f32>, String, Option<f32>)],
    ) -> Result<(Person, Vec<TemplateId>), RegistryError> {
        self.enroll_noted(name, model_id, embeddings, None)
    }

    /// [`Registry::enroll`], writing `note` into the history in the same transaction.
    pub fn enroll_noted(
        &mut self,
        name: &str,
        model_id: &str,
        embeddings: &[(Vec<f32>, String, Option<f32>)],
        note: Option<&HistoryNote>,
    ) -> Result<(Person, Vec<TemplateId>), RegistryError> {
        let name = validate_name(name)?;
        validate_model_id(model_id)?;
        if embeddings.is_empty() {
            return Err(RegistryError::EmptyEnrollment);
        }
        // Validate the whole batch before taking the write lock.
        let blobs = embeddings
            .iter()
            .enumerate()
            .map(|(i, (e, _, q))| {
                validate_quality(i, *q)?;
                encode_embedding(i, e)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now = now_ms();
        let tx = self.write_tx()?;
        let person_id = match find_person_by_name(&tx, name)? {
            Some(p) => p.id,
            None => insert_person(&tx, name, now)?.id,
        };
        let mut ids = Vec::with_capacity(blobs.len());
        for (blob, (_, source, quality)) in blobs.iter().zip(embeddings) {
            ids.push(insert_template(&tx, person_id, model_id, blob, source, *quality, now)?);
        }
        if let Some(note) = note {
            insert_note(&tx, note, Some(person_id))?;
        }
        // Re-read inside the transaction for the exact template count.
        let person = find_person_by_id(&tx, person_id)?.ok_or(RegistryError::PersonIdNotFound(person_id))?;
        tx.commit()?;
        tracing::info!(person = person.id, templates = ids.len(), model_id, "enrolled");
        Ok((person, ids))
    }

    /// All templates of `model_id`, ordered by id.
    pub fn templates(&self, model_id: &str) -> Result<Vec<StoredTemplate>, RegistryError> {
        let rows = self.db.query(
            "SELECT id, person_id, model_id, embedding, source, quality, created_ms
             FROM templates WHERE model_id = ?1 ORDER BY id",
            args![model_id],
        )?;
        rows.iter()
            .map(|r| {
                let id: TemplateId = r.get(0)?;
                Ok(StoredTemplate {
                    id,
                    person_id: r.get(1)?,
                    model_id: r.get(2)?,
                    embedding: decode_embedding(id, &r.get::<Vec<u8>>(3)?)?,
                    source: r.get(4)?,
                    // Stored from an f32, so the narrowing is exact.
                    quality: r.get::<Option<f64>>(5)?.map(|q| q as f32),
                    created_ms: r.get(6)?,
                })
            })
            .collect()
    }

    /// Number of templates over all models.
    pub fn template_count(&self) -> Result<u32, RegistryError> {
        self.db.query_one("SELECT count(*) FROM templates", &[])?.get(0)
    }

    /// The distinct model ids that have templates, sorted.
    pub fn model_ids(&self) -> Result<Vec<String>, RegistryError> {
        self.db
            .query("SELECT DISTINCT model_id FROM templates ORDER BY model_id", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The wire templates of `model_id`, ordered by id: exactly what a device sync sends (and digests).
    pub fn wire_templates(&self, model_id: &str) -> Result<Vec<Template>, RegistryError> {
        validate_model_id(model_id)?;
        // Cannot fail after validation; mapped anyway rather than unwrapped.
        let model = ModelId::try_from(model_id).map_err(|()| {
            invalid_model_id(model_id, TextProblem::TooLong { len: model_id.len(), max: MODEL_ID_LEN })
        })?;
        let rows = self.db.query(
            "SELECT t.id, t.person_id, p.name, t.embedding
             FROM templates t JOIN people p ON p.id = t.person_id
             WHERE t.model_id = ?1 ORDER BY t.id",
            args![model_id],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let (id, person_id, name, blob): (TemplateId, PersonId, String, Vec<u8>) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            // Names are validated to fit on insert; truncating one here would send a different name than stored.
            let display_name = DisplayName::try_from(name.as_str()).map_err(|()| {
                RegistryError::Corrupt(format!("person {person_id} has a name longer than the wire allows"))
            })?;
            let embedding = Embedding::quantize(&decode_embedding(id, &blob)?);
            out.push(Template { id, person_id, display_name, model_id: model.clone(), embedding });
        }
        Ok(out)
    }
}

pub(super) fn invalid_model_id(model_id: &str, problem: TextProblem) -> RegistryError {
    RegistryError::InvalidModelId { model_id: model_id.into(), problem }
}

/// Model ids travel in every wire template, so they must fit [`ModelId`] without truncation.
pub(super) fn validate_model_id(model_id: &str) -> Result<(), RegistryError> {
    check_text(model_id, Some(MODEL_ID_LEN)).map_err(|p| invalid_model_id(model_id, p))
}

pub(super) fn validate_quality(index: usize, quality: Option<f32>) -> Result<(), RegistryError> {
    match quality {
        Some(value) if !value.is_finite() => Err(RegistryError::InvalidQuality { index, value }),
        _ => Ok(()),
    }
}

/// Validates an embedding and encodes it as the storage BLOB (little-endian `f32`).
pub(super) fn encode_embedding(index: usize, v: &[f32]) -> Result<Vec<u8>, RegistryError> {
    let err = |problem| RegistryError::InvalidEmbedding { index, problem };
    if v.len() != EMBEDDING_DIM {
        return Err(err(EmbeddingProblem::WrongLength { len: v.len() }));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(err(EmbeddingProblem::NotFinite { index: i }));
    }
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if (norm - 1.0).abs() > UNIT_NORM_TOLERANCE {
        return Err(err(EmbeddingProblem::NotUnit { norm }));
    }
    Ok(v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

pub(super) fn decode_embedding(id: TemplateId, blob: &[u8]) -> Result<[f32; EMBEDDING_DIM], RegistryError> {
    let corrupt = |what: &str| RegistryError::Corrupt(format!("template {id}: {what}"));
    if blob.len() != EMBEDDING_BYTES {
        return Err(corrupt("embedding has the wrong size"));
    }
    let mut out = [0.0f32; EMBEDDING_DIM];
    for (o, chunk) in out.iter_mut().zip(blob.chunks_exact(4)) {
        *o = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    if out.iter().any(|x| !x.is_finite()) {
        return Err(corrupt("embedding has non-finite values"));
    }
    Ok(out)
}

pub(super) fn insert_template(
    db: &Db,
    person: PersonId,
    model_id: &str,
    blob: &[u8],
    source: &str,
    quality: Option<f32>,
    now: i64,
) -> Result<TemplateId, RegistryError> {
    let row = db.query_one(
        "INSERT INTO templates (person_id, model_id, embedding, source, quality, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        args![person, model_id, blob, source, quality.map(f64::from), now],
    )?;
    inserted_id(&row, "template")
}
