//! Templates that keep up with a face: when to propose a granted probe as a new template.
//!
//! A probe is proposed when the person was granted with a clear margin (so it is them), the face
//! is of enrolment quality (so it is a good reference), it is notably unlike every template they
//! have (so it adds something), and it is no near match for anyone else enrolled (a face that
//! looks like many people would let strangers in as this person). A proposal is never matched
//! against until an administrator accepts it.

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

/// A granted probe, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Its best score against the granted person's templates.
    pub score: f32,
    /// Its best score against everyone else enrolled (`None`: no one else, or not known).
    pub runner_up: Option<f32>,
    pub enrol_quality: bool,
}

impl UpdatePolicy {
    /// Whether `c`, granted at decision threshold `threshold`, is proposed: `margin` above the
    /// threshold for its person, `margin` below it for anyone else.
    pub fn proposes(&self, c: &Candidate, threshold: f32) -> bool {
        self.enabled
            && c.enrol_quality
            && c.score >= threshold + self.margin
            && c.score < self.novelty
            && c.runner_up.is_none_or(|r| r < threshold - self.margin)
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
        let c = |score, runner_up, enrol_quality| Candidate { score, runner_up, enrol_quality };
        assert!(p.proposes(&c(0.62, Some(0.3), true), t));
        assert!(p.proposes(&c(0.62, None, true), t), "no one else enrolled");
        assert!(!p.proposes(&c(0.55, Some(0.3), true), t), "margin too small");
        assert!(!p.proposes(&c(0.62, Some(0.3), false), t), "not enrolment quality");
        assert!(!p.proposes(&c(0.75, Some(0.3), true), t), "too like a stored template to add anything");
        assert!(!p.proposes(&c(0.62, Some(0.45), true), t), "a near match for someone else");
        assert!(!UpdatePolicy { enabled: false, ..p }.proposes(&c(0.62, None, true), t));
        assert!(UpdatePolicy { max_per_person: 0, ..p }.validate().is_err());
        assert!(p.validate().is_ok());
    }
}
