//! Keeping a granted probe as a proposed template ([`facegate_engine::updates`]): a clear
//! grant, an enrolment-quality face, unlike the person's stored templates. The proposal waits
//! in the encrypted store for a host to pull it for review; nothing matches against it.

use crate::state::Core;
use facegate_engine::updates::{Candidate, UpdatePolicy};
use facegate_engine::{Embedding, Engine, Observation, QualityGate};
use facegate_proto::{bounded_str, AuditKind, PersonId, Proposal, TemplateId, EMBEDDING_DIM};

/// One granted probe, as the loop saw it.
pub struct Granted<'a> {
    pub observation: &'a Observation,
    /// Its one-pass embedding.
    pub embedding: &'a Embedding,
    pub person: PersonId,
    pub matched: TemplateId,
    pub score: f32,
    pub threshold: f32,
}

/// Keeps the probe as a proposal when `policy` says so; returns the proposal's id.
pub fn consider(engine: &Engine, core: &Core, policy: &UpdatePolicy, g: &Granted, unix_time: u64) -> Option<u32> {
    let q = &g.observation.quality;
    let mut candidate =
        Candidate { score: g.score, runner_up: None, enrol_quality: QualityGate::ENROL.check(q).is_empty() };
    if !policy.proposes(&candidate, g.threshold) {
        return None;
    }
    // The runner-up costs a pass over the whole gallery: only for a face that passed the rest.
    candidate.runner_up = core.gallery().best_other(g.embedding, g.person);
    if !policy.proposes(&candidate, g.threshold) {
        return None;
    }
    // Templates are embedded with their mirror image; a proposal becomes one as it is.
    let steadier = match engine.embed_with_mirror(g.observation, g.embedding) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "could not embed a proposed template");
            return None;
        }
    };
    let values: &[f32; EMBEDDING_DIM] = steadier.as_slice().try_into().ok()?;
    let proposal = Proposal {
        id: 0,
        person_id: g.person,
        matched: g.matched,
        model_id: bounded_str(&engine.embedding_id),
        embedding: facegate_proto::Embedding::quantize(values),
        unix_time,
        score: g.score,
        threshold: g.threshold,
        face_px: q.face_px.clamp(0.0, f32::from(u16::MAX)) as u16,
        sharpness: q.sharpness,
        yaw_deg: q.yaw_deg,
    };
    let mut inner = core.lock();
    match inner.store.propose(proposal, policy.max_per_person) {
        Ok(id) => {
            let detail = format!("proposal {id}: score {:.3} at threshold {:.3}", g.score, g.threshold);
            core.audit_locked(&mut inner, AuditKind::TemplateProposed, Some(g.person), Some(g.score), &detail);
            tracing::info!(person = g.person, proposal = id, score = g.score, "kept a proposed template for review");
            Some(id)
        }
        Err(e) => {
            // The grant stands; only the proposal is lost (a full disk, say).
            tracing::warn!(error = %e, "could not keep a proposed template");
            None
        }
    }
}
