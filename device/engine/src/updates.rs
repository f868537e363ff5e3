//! Templates that keep up with a face: when to propose a granted probe as a new template.
//!
//! A probe is proposed when the person was granted with a clear margin (so it is them), the face
//! is of enrolment quality (so it is a good reference), and it is notably unlike every template
//! they have (so it adds something). A proposal is never matched against until an administrator
//! accepts it.

use serde::{Deserialize, Serialize};

/// The proposal policy (device config `[updates]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdatePolicy {
    /// Propose at all.
    pub enabled: bool,
    /// How far above the decision threshold the score must be.
    pub margin: f32,
    /// Propose only when the best score against the person's templates is below this: the
    /// probe is notably different from all of them.
    pub novelty: f32,
    /// Proposals a device keeps per person until they are reviewed (the oldest go first).
    pub max_per_person: usize,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy { enabled: true, margin: 0.08, novelty: 0.7, max_per_person: 3 }
    }
}

impl UpdatePolicy {
    /// Whether a granted probe scoring `score` (its best against the person's templates), at
    /// decision threshold `threshold`, with an enrolment-quality face or not, is proposed.
    pub fn proposes(&self, score: f32, threshold: f32, enrol_quality: bool) -> bool {
        self.enabled && enrol_quality && score >= threshold + self.margin && score < self.novelty
    }

    /// Checks the values make sense (config files are written by hand).
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.margin) || !(-1.0..=1.0).contains(&self.novelty) {
            return Err(format!("margin {} must be 0..1 and novelty {} in -1..1", self.margin, self.novelty));
        }
        if self.max_per_person == 0 || self.max_per_person > 16 {
            return Err(format!("max_per_person {} must be 1..16", self.max_per_person));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposes_only_clear_good_and_new_faces() {
        let p = UpdatePolicy::default();
        let t = 0.5;
        assert!(p.proposes(0.62, t, true));
        assert!(!p.proposes(0.55, t, true), "margin too small");
        assert!(!p.proposes(0.62, t, false), "not enrolment quality");
        assert!(!p.proposes(0.75, t, true), "too like a stored template to add anything");
        assert!(!UpdatePolicy { enabled: false, ..p }.proposes(0.62, t, true));
        assert!(UpdatePolicy { max_per_person: 0, ..p }.validate().is_err());
        assert!(p.validate().is_ok());
    }
}
