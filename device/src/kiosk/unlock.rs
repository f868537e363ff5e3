//! A local unlock request while the kiosk loop serves it: which login, until when, what was
//! seen so far, and the answer each outcome gives.

use facegate_proto::{Decision, PersonId, UnlockReply, UnlockRequest};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

/// Consecutive frames refused for light after which an unlock is answered "too dark" at once
/// (about a second of camera): nobody should wait out the timeout in the dark.
pub const DARK_FRAMES: u32 = 15;

/// A request handed from the unlock socket to the loop, with the way back.
#[derive(Debug)]
pub struct UnlockJob {
    pub request: UnlockRequest,
    pub reply: SyncSender<UnlockReply>,
    pub received: Instant,
}

/// The request the loop is serving.
#[derive(Debug)]
pub struct OpenUnlock {
    pub job: UnlockJob,
    pub person_id: PersonId,
    pub deadline: Instant,
    pub saw_face: bool,
    /// A face was refused by the gate for light (too dark, low contrast, lit from one side).
    pub too_dark: bool,
    /// Frames in a row refused for light.
    pub dark_run: u32,
    pub first_frame: Option<Instant>,
}

impl OpenUnlock {
    pub fn new(job: UnlockJob, person_id: PersonId) -> OpenUnlock {
        let deadline = job.received + std::time::Duration::from_millis(u64::from(job.request.timeout_ms));
        OpenUnlock { job, person_id, deadline, saw_face: false, too_dark: false, dark_run: 0, first_frame: None }
    }

    /// The answer when time runs out without a decision.
    pub fn expired(&self) -> UnlockReply {
        match (self.saw_face, self.too_dark) {
            (_, true) => UnlockReply::TooDark,
            (true, false) => UnlockReply::Timeout,
            (false, false) => UnlockReply::NoFace,
        }
    }
}

/// The answer a kiosk decision gives an unlock request.
pub fn reply_for(
    decision: Decision,
    person_id: PersonId,
    score: f32,
    liveness: Option<f32>,
    locked_s: u32,
) -> UnlockReply {
    match decision {
        Decision::Granted => UnlockReply::Granted { person_id, score },
        // Not reached: the access rules bind the door, not an unlock.
        Decision::Denied | Decision::Unknown | Decision::NotAllowedNow => UnlockReply::NotRecognised { score },
        Decision::LockedOut => UnlockReply::LockedOut { seconds_left: locked_s },
        Decision::SpoofSuspected => UnlockReply::SpoofSuspected { liveness: liveness.unwrap_or(0.0) },
    }
}

/// The audit record's detail: "alice granted (sudo)".
pub fn audit_detail(request: &UnlockRequest, reply: &UnlockReply) -> String {
    format!("{} {} ({})", request.login, outcome(reply), request.service)
}

/// Short outcome name for the audit log.
pub fn outcome(reply: &UnlockReply) -> &'static str {
    match reply {
        UnlockReply::Granted { .. } => "granted",
        UnlockReply::NotRecognised { .. } => "not recognised",
        UnlockReply::NoFace => "no face",
        UnlockReply::TooDark => "too dark",
        UnlockReply::NotEnrolled => "not enrolled",
        UnlockReply::LockedOut { .. } => "locked out",
        UnlockReply::Busy => "busy",
        UnlockReply::Timeout => "timeout",
        UnlockReply::SpoofSuspected { .. } => "spoof",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_proto::bounded_str;
    use std::time::Duration;

    fn open() -> OpenUnlock {
        let (tx, _rx) = std::sync::mpsc::sync_channel(1);
        let request = UnlockRequest { login: bounded_str("alice"), timeout_ms: 1500, service: bounded_str("sudo") };
        OpenUnlock::new(UnlockJob { request, reply: tx, received: Instant::now() }, 7)
    }

    #[test]
    fn expiry_says_what_was_seen() {
        let mut o = open();
        assert!(o.deadline > o.job.received + Duration::from_millis(1499));
        assert_eq!(o.expired(), UnlockReply::NoFace);
        o.saw_face = true;
        assert_eq!(o.expired(), UnlockReply::Timeout);
        o.too_dark = true;
        assert_eq!(o.expired(), UnlockReply::TooDark);
    }

    #[test]
    fn decisions_map_to_replies() {
        assert_eq!(reply_for(Decision::Granted, 7, 0.8, None, 0), UnlockReply::Granted { person_id: 7, score: 0.8 });
        assert_eq!(reply_for(Decision::Denied, 7, 0.1, None, 0), UnlockReply::NotRecognised { score: 0.1 });
        assert_eq!(reply_for(Decision::LockedOut, 7, 0.0, None, 30), UnlockReply::LockedOut { seconds_left: 30 });
        assert_eq!(
            reply_for(Decision::SpoofSuspected, 7, 0.9, Some(0.01), 0),
            UnlockReply::SpoofSuspected { liveness: 0.01 }
        );
        assert_eq!(outcome(&UnlockReply::TooDark), "too dark");
    }
}
