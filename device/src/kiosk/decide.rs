//! Turning per-frame match results into decisions: N-of-M consensus over a track, and the
//! lockout that stops someone from trying faces until one gets in.

use facegate_proto::{Decision, PersonId};
use std::collections::VecDeque;
use std::time::Duration;

/// What one embedded frame said about the subject.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Vote {
    /// At or above the threshold for this person (identify), or for the owner (verify).
    Match { person_id: PersonId, template_id: u32, score: f32 },
    /// Below the threshold: best score seen (NaN-free; -1 with an empty gallery).
    NoMatch { best: f32 },
}

impl Vote {
    /// The score this vote rests on.
    pub fn score(&self) -> f32 {
        match *self {
            Vote::Match { score, .. } => score,
            Vote::NoMatch { best } => best,
        }
    }
}

/// A consensus reached on a track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// `Some` when the votes agreed on a person.
    pub matched: Option<(PersonId, u32)>,
    /// Mean score of the agreeing votes.
    pub score: f32,
}

/// N-of-M consensus: a decision needs `required` agreeing votes among the last `window`.
/// One good frame is not enough to open a door, and one bad frame does not deny a user.
#[derive(Debug, Clone)]
pub struct Consensus {
    required: usize,
    window: usize,
    votes: VecDeque<Vote>,
}

impl Consensus {
    /// `required` is clamped to 1..=window.
    pub fn new(required: u8, window: u8) -> Consensus {
        let window = usize::from(window.max(1));
        let required = usize::from(required).clamp(1, window);
        Consensus { required, window, votes: VecDeque::with_capacity(window) }
    }

    pub fn reset(&mut self) {
        self.votes.clear();
    }

    pub fn votes(&self) -> usize {
        self.votes.len()
    }

    /// Adds a vote; returns the verdict once `required` of the last `window` agree.
    pub fn push(&mut self, vote: Vote) -> Option<Verdict> {
        if self.votes.len() == self.window {
            self.votes.pop_front();
        }
        self.votes.push_back(vote);
        let (agree, score_sum) = self.votes.iter().fold((0usize, 0.0f32), |(n, s), v| match (v, vote) {
            (Vote::Match { person_id: a, score, .. }, Vote::Match { person_id: b, .. }) if *a == b => {
                (n + 1, s + score)
            }
            (Vote::NoMatch { best }, Vote::NoMatch { .. }) => (n + 1, s + best),
            _ => (n, s),
        });
        if agree < self.required {
            return None;
        }
        let matched = match vote {
            Vote::Match { person_id, template_id, .. } => Some((person_id, template_id)),
            Vote::NoMatch { .. } => None,
        };
        Some(Verdict { matched, score: score_sum / agree as f32 })
    }
}

/// Lockout policy: after `max_failures` failed decisions within `window`, refuse everyone
/// for `cooldown`. `max_failures == 0` disables it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockoutPolicy {
    pub max_failures: u8,
    pub window: Duration,
    pub cooldown: Duration,
}

/// Lockout state on the device's clock (time since start, from the frame source).
#[derive(Debug, Clone)]
pub struct Lockout {
    policy: LockoutPolicy,
    failures: VecDeque<Duration>,
    locked_until: Option<Duration>,
}

/// What [`Lockout::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockoutChange {
    None,
    /// This failure started a lockout.
    Locked,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Lockout {
        Lockout { policy, failures: VecDeque::new(), locked_until: None }
    }

    pub fn set_policy(&mut self, policy: LockoutPolicy) {
        self.policy = policy;
    }

    /// Remaining cool-down at `now`, if locked.
    pub fn remaining(&self, now: Duration) -> Option<Duration> {
        self.locked_until.filter(|&until| now < until).map(|until| until - now)
    }

    /// Records a decision taken at `now`. Failures are counted; a grant clears them (the
    /// rightful user got in).
    pub fn record(&mut self, decision: Decision, now: Duration) -> LockoutChange {
        match decision {
            Decision::Granted => {
                self.failures.clear();
                LockoutChange::None
            }
            // Recognised and refused by the rules: not a failed attempt at someone else's face.
            Decision::LockedOut | Decision::NotAllowedNow => LockoutChange::None,
            Decision::Denied | Decision::Unknown | Decision::SpoofSuspected => {
                if self.policy.max_failures == 0 {
                    return LockoutChange::None;
                }
                self.failures.push_back(now);
                while self.failures.front().is_some_and(|&t| now.saturating_sub(t) > self.policy.window) {
                    self.failures.pop_front();
                }
                if self.failures.len() >= usize::from(self.policy.max_failures) {
                    self.failures.clear();
                    self.locked_until = Some(now + self.policy.cooldown);
                    LockoutChange::Locked
                } else {
                    LockoutChange::None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes(p: PersonId, s: f32) -> Vote {
        Vote::Match { person_id: p, template_id: p * 10, score: s }
    }
    fn no(s: f32) -> Vote {
        Vote::NoMatch { best: s }
    }

    #[test]
    fn two_of_three_grants_on_second_agreeing_vote() {
        let mut c = Consensus::new(2, 3);
        assert_eq!(c.push(yes(7, 0.6)), None);
        let v = c.push(yes(7, 0.8)).expect("two votes for 7");
        assert_eq!(v.matched, Some((7, 70)));
        assert!((v.score - 0.7).abs() < 1e-6);
    }

    #[test]
    fn disagreeing_votes_do_not_decide() {
        let mut c = Consensus::new(2, 3);
        assert_eq!(c.push(yes(1, 0.6)), None);
        assert_eq!(c.push(yes(2, 0.6)), None);
        assert_eq!(c.push(no(0.1)), None);
        // Window is now [2, no, 1]: person 1 has one vote only.
        assert_eq!(c.push(yes(1, 0.6)), None);
        // [no, 1, 1] -> decided.
        assert_eq!(c.push(yes(1, 0.6)).map(|v| v.matched), Some(Some((1, 10))));
    }

    #[test]
    fn votes_leave_the_window() {
        let mut c = Consensus::new(2, 2);
        assert_eq!(c.push(yes(1, 0.6)), None);
        assert_eq!(c.push(no(0.2)), None);
        // The first vote for 1 fell out of the window of two.
        assert_eq!(c.push(yes(1, 0.6)), None);
    }

    #[test]
    fn unknown_needs_consensus_too() {
        let mut c = Consensus::new(3, 3);
        assert_eq!(c.push(no(0.1)), None);
        assert_eq!(c.push(no(0.3)), None);
        let v = c.push(no(0.2)).expect("three no-matches");
        assert_eq!(v.matched, None);
        assert!((v.score - 0.2).abs() < 1e-6);
    }

    #[test]
    fn one_of_one_decides_immediately_and_clamps() {
        assert!(Consensus::new(1, 1).push(no(0.0)).is_some());
        // required > window is clamped to window.
        let mut c = Consensus::new(9, 2);
        assert!(c.push(yes(3, 0.5)).is_none());
        assert!(c.push(yes(3, 0.5)).is_some());
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn policy(k: u8) -> LockoutPolicy {
        LockoutPolicy { max_failures: k, window: secs(60), cooldown: secs(30) }
    }

    #[test]
    fn locks_after_k_failures_within_window_then_cools_down() {
        let mut l = Lockout::new(policy(3));
        assert_eq!(l.record(Decision::Unknown, secs(0)), LockoutChange::None);
        assert_eq!(l.record(Decision::Denied, secs(10)), LockoutChange::None);
        assert_eq!(l.remaining(secs(11)), None);
        assert_eq!(l.record(Decision::Unknown, secs(20)), LockoutChange::Locked);
        assert_eq!(l.remaining(secs(20)), Some(secs(30)));
        assert_eq!(l.remaining(secs(49)), Some(secs(1)));
        assert_eq!(l.remaining(secs(50)), None);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut l = Lockout::new(policy(3));
        l.record(Decision::Unknown, secs(0));
        l.record(Decision::Unknown, secs(30));
        // The first failure is 61 s old by now.
        assert_eq!(l.record(Decision::Unknown, secs(61)), LockoutChange::None);
        assert_eq!(l.record(Decision::Unknown, secs(62)), LockoutChange::Locked);
    }

    #[test]
    fn a_grant_clears_failures_and_zero_disables() {
        let mut l = Lockout::new(policy(2));
        l.record(Decision::Unknown, secs(0));
        l.record(Decision::Granted, secs(1));
        assert_eq!(l.record(Decision::Unknown, secs(2)), LockoutChange::None);
        let mut off = Lockout::new(policy(0));
        for t in 0..100 {
            assert_eq!(off.record(Decision::Unknown, secs(t)), LockoutChange::None);
        }
        assert_eq!(off.remaining(secs(100)), None);
    }
}
