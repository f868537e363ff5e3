//! Template updates: proposals pulled from devices wait here for review; an accepted one
//! becomes a template of origin `update` (synced like any other), a rejected one stays on
//! record; `rollback` takes a person's update templates away again.

use super::db::{args, Db};
use super::people::find_person_by_name;
use super::templates::{encode_embedding, insert_template};
use super::{now_ms, Registry, RegistryError};
use facegate_proto::{PersonId, Proposal, TemplateId};

/// Where a template came from.
pub const ORIGIN_ENROLMENT: &str = "enrolment";
pub const ORIGIN_UPDATE: &str = "update";

/// A proposal as filed, with its review.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FiledProposal {
    pub id: i64,
    pub device: String,
    pub person_id: PersonId,
    pub person: String,
    pub granted_ms: i64,
    pub score: f64,
    pub threshold: f64,
    pub face_px: u32,
    pub sharpness: f64,
    pub yaw_deg: f64,
    /// `pending`, `accepted`, `rejected` or `rolled back`.
    pub status: String,
    pub template_id: Option<TemplateId>,
    pub decided_ms: Option<i64>,
}

/// One line of a person's template history.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TemplateLine {
    pub template_id: TemplateId,
    pub origin: String,
    pub source: String,
    pub created_ms: i64,
}

const PROPOSAL_COLUMNS: &str = "p.id, p.device, p.person_id, people.name, p.granted_ms, p.score, p.threshold, \
     p.face_px, p.sharpness, p.yaw_deg, p.status, p.template_id, p.decided_ms";

fn proposals_where(db: &Db, filter: &str, params: &[super::db::Value]) -> Result<Vec<FiledProposal>, RegistryError> {
    let sql = format!(
        "SELECT {PROPOSAL_COLUMNS} FROM proposals p JOIN people ON people.id = p.person_id {filter} ORDER BY p.id"
    );
    let mut out = Vec::new();
    for r in db.query(&sql, params)? {
        out.push(FiledProposal {
            id: r.get(0)?,
            device: r.get(1)?,
            person_id: r.get(2)?,
            person: r.get(3)?,
            granted_ms: r.get(4)?,
            score: r.get(5)?,
            threshold: r.get(6)?,
            face_px: r.get(7)?,
            sharpness: r.get(8)?,
            yaw_deg: r.get(9)?,
            status: r.get(10)?,
            template_id: r.get(11)?,
            decided_ms: r.get(12)?,
        });
    }
    Ok(out)
}

impl Registry {
    /// Files `proposals` pulled from `device`; ones filed before (same device and proposal id)
    /// and ones for people no longer enrolled are skipped. Returns the ids the device may now
    /// forget (every one it sent that is on record here).
    pub fn file_proposals(&mut self, device: &str, proposals: &[Proposal]) -> Result<Vec<u32>, RegistryError> {
        let tx = self.write_tx()?;
        let mut on_record = Vec::new();
        for p in proposals {
            let known = tx.query_opt("SELECT 1 FROM people WHERE id = ?1", args![p.person_id])?.is_some();
            if !known {
                tracing::warn!(
                    device,
                    person = p.person_id,
                    proposal = p.id,
                    "proposal for someone not enrolled: dropped"
                );
                on_record.push(p.id);
                continue;
            }
            // Quantized on the wire; stored as the unit vector it stands for, like every template.
            let v = p.embedding.dequantize();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
            let unit: Vec<f32> = v.iter().map(|x| x / norm).collect();
            let blob = encode_embedding(0, &unit)?;
            tx.execute(
                "INSERT INTO proposals (device, device_proposal, person_id, model_id, embedding, granted_ms, score,
                     threshold, face_px, sharpness, yaw_deg)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (device, device_proposal) DO NOTHING",
                args![
                    device,
                    p.id,
                    p.person_id,
                    p.model_id.as_str(),
                    blob.as_slice(),
                    i64::try_from(p.unix_time.saturating_mul(1000)).unwrap_or(i64::MAX),
                    f64::from(p.score),
                    f64::from(p.threshold),
                    u32::from(p.face_px),
                    f64::from(p.sharpness),
                    f64::from(p.yaw_deg)
                ],
            )?;
            on_record.push(p.id);
        }
        tx.commit()?;
        Ok(on_record)
    }

    /// Proposals waiting for review, oldest first.
    pub fn pending_proposals(&self) -> Result<Vec<FiledProposal>, RegistryError> {
        proposals_where(&self.db, "WHERE p.status = 'pending'", &[])
    }

    /// Accepts pending proposal `id`: it becomes a template of origin `update`.
    pub fn accept_proposal(&mut self, id: i64) -> Result<TemplateId, RegistryError> {
        let tx = self.write_tx()?;
        let row = tx
            .query_opt(
                "SELECT person_id, model_id, embedding, device, device_proposal, score, sharpness FROM proposals
                 WHERE id = ?1 AND status = 'pending'",
                args![id],
            )?
            .ok_or(RegistryError::ProposalNotPending(id))?;
        let (person, model_id, blob): (PersonId, String, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let (device, device_proposal, score, sharpness): (String, i64, f64, f64) =
            (row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?);
        let now = now_ms();
        let source = format!("proposal {device_proposal} from {device} (score {score:.3})");
        let template = insert_template(&tx, person, &model_id, &blob, &source, Some(sharpness as f32), now)?;
        tx.execute("UPDATE templates SET origin = ?1 WHERE id = ?2", args![ORIGIN_UPDATE, template])?;
        tx.execute(
            "UPDATE proposals SET status = 'accepted', template_id = ?1, decided_ms = ?2 WHERE id = ?3",
            args![template, now, id],
        )?;
        tx.commit()?;
        Ok(template)
    }

    /// Rejects pending proposal `id` (kept on record).
    pub fn reject_proposal(&mut self, id: i64) -> Result<(), RegistryError> {
        let tx = self.write_tx()?;
        let n = tx.execute(
            "UPDATE proposals SET status = 'rejected', decided_ms = ?1 WHERE id = ?2 AND status = 'pending'",
            args![now_ms(), id],
        )?;
        if n == 0 {
            return Err(RegistryError::ProposalNotPending(id));
        }
        tx.commit()
    }

    /// The person's templates (oldest first) and every proposal filed for them.
    pub fn template_history(&self, name: &str) -> Result<(Vec<TemplateLine>, Vec<FiledProposal>), RegistryError> {
        let person =
            find_person_by_name(&self.db, name)?.ok_or_else(|| RegistryError::PersonNotFound(name.trim().into()))?;
        let mut lines = Vec::new();
        for r in self.db.query(
            "SELECT id, origin, source, created_ms FROM templates WHERE person_id = ?1 ORDER BY id",
            args![person.id],
        )? {
            lines.push(TemplateLine {
                template_id: r.get(0)?,
                origin: r.get(1)?,
                source: r.get(2)?,
                created_ms: r.get(3)?,
            });
        }
        let proposals = proposals_where(&self.db, "WHERE p.person_id = ?1", args![person.id])?;
        Ok((lines, proposals))
    }

    /// Removes the person's update templates: all of them, or those after template `keep_to`
    /// (which stays). Their proposals are marked `rolled back`. Returns the templates removed.
    pub fn rollback_updates(
        &mut self,
        name: &str,
        keep_to: Option<TemplateId>,
    ) -> Result<Vec<TemplateId>, RegistryError> {
        let tx = self.write_tx()?;
        let person =
            find_person_by_name(&tx, name)?.ok_or_else(|| RegistryError::PersonNotFound(name.trim().into()))?;
        let after = i64::from(keep_to.unwrap_or(0));
        let mut removed = Vec::new();
        for r in tx.query(
            "SELECT id FROM templates WHERE person_id = ?1 AND origin = ?2 AND id > ?3 ORDER BY id",
            args![person.id, ORIGIN_UPDATE, after],
        )? {
            removed.push(r.get::<TemplateId>(0)?);
        }
        let now = now_ms();
        for &t in &removed {
            tx.execute("DELETE FROM templates WHERE id = ?1", args![t])?;
            tx.execute(
                "UPDATE proposals SET status = 'rolled back', decided_ms = ?1 WHERE template_id = ?2",
                args![now, t],
            )?;
        }
        tx.commit()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_proto::{bounded_str, Embedding, EMBEDDING_DIM};

    fn proposal(id: u32, person: PersonId, seed: u64) -> Proposal {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        let v: [f32; EMBEDDING_DIM] = facegate_engine::embed::random_unit(&mut rng).try_into().expect("512");
        Proposal {
            id,
            person_id: person,
            matched: 1,
            model_id: bounded_str("m"),
            embedding: Embedding::quantize(&v),
            unix_time: 1_790_000_000,
            score: 0.62,
            threshold: 0.5,
            face_px: 150,
            sharpness: 80.0,
            yaw_deg: 5.0,
        }
    }

    #[test]
    fn proposals_are_filed_once_reviewed_and_rolled_back() {
        for place in crate::registry::tests::places() {
            let mut reg = place.open();
            let ada = reg.add_person("Ada").expect("ada").id;
            let start = reg.templates("m").expect("templates").len();
            let filed =
                reg.file_proposals("tcp:door:1", &[proposal(1, ada, 1), proposal(2, ada, 2), proposal(3, 999, 3)]);
            // All three may be forgotten by the device: two filed, one for nobody enrolled.
            assert_eq!(filed.expect("filed"), vec![1, 2, 3]);
            // Pulled again (the device did not hear the drop): nothing twice.
            reg.file_proposals("tcp:door:1", &[proposal(1, ada, 1)]).expect("again");
            let pending = reg.pending_proposals().expect("pending");
            assert_eq!(pending.len(), 2);
            assert_eq!((pending[0].person.as_str(), pending[0].status.as_str()), ("Ada", "pending"));
            let t = reg.accept_proposal(pending[0].id).expect("accepted");
            reg.reject_proposal(pending[1].id).expect("rejected");
            assert!(matches!(reg.accept_proposal(pending[1].id), Err(RegistryError::ProposalNotPending(_))));
            assert!(reg.pending_proposals().expect("none").is_empty());
            let stored = reg.templates("m").expect("templates");
            assert_eq!(stored.len(), start + 1, "the accepted one syncs like any template");
            let (lines, props) = reg.template_history("ada").expect("history");
            assert_eq!(
                lines.iter().map(|l| (l.template_id, l.origin.as_str())).collect::<Vec<_>>(),
                [(t, ORIGIN_UPDATE)]
            );
            assert_eq!(props.iter().map(|p| p.status.as_str()).collect::<Vec<_>>(), ["accepted", "rejected"]);
            assert_eq!(reg.rollback_updates("Ada", None).expect("rollback"), vec![t]);
            assert_eq!(reg.templates("m").expect("templates").len(), start);
            let (_, props) = reg.template_history("Ada").expect("history");
            assert_eq!(props[0].status, "rolled back");
        }
    }
}
