//! The daemon's answer → the PAM return code and what the user is told.
//!
//! Only a recognised face is PAM_SUCCESS. A face that was looked for and not accepted is
//! PAM_AUTH_ERR; states where face unlock simply does not apply (not enrolled, locked out,
//! busy) are PAM_IGNORE, so the stack moves on to the password without counting a failure.

use std::ffi::c_int;

use facegate_proto::UnlockReply;

use crate::conv::{PAM_AUTH_ERR, PAM_ERROR_MSG, PAM_IGNORE, PAM_SUCCESS, PAM_TEXT_INFO};

/// A line for the user, with its PAM message style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// PAM_TEXT_INFO or PAM_ERROR_MSG.
    pub style: c_int,
    pub text: String,
}

fn info(text: String) -> Option<Message> {
    Some(Message { style: PAM_TEXT_INFO, text })
}

fn error(text: &str) -> Option<Message> {
    Some(Message { style: PAM_ERROR_MSG, text: text.to_owned() })
}

/// The PAM code for `reply` to the request for `login`, and the message to show, if any.
pub fn code_for(reply: &UnlockReply, login: &str) -> (c_int, Option<Message>) {
    match *reply {
        UnlockReply::Granted { .. } => (PAM_SUCCESS, info(format!("Recognised {login}"))),
        UnlockReply::NotRecognised { .. } => (PAM_AUTH_ERR, error("Face not recognised")),
        UnlockReply::NoFace => (PAM_AUTH_ERR, error("No face seen")),
        UnlockReply::TooDark => (PAM_AUTH_ERR, error("Too dark — type your password")),
        UnlockReply::Timeout => (PAM_AUTH_ERR, error("Face check timed out")),
        UnlockReply::SpoofSuspected { .. } => (PAM_AUTH_ERR, error("Show your face, not a photo")),
        UnlockReply::NotEnrolled => (PAM_IGNORE, None),
        UnlockReply::LockedOut { seconds_left } => {
            (PAM_IGNORE, info(format!("Face unlock locked for {seconds_left} s — type your password")))
        }
        UnlockReply::Busy => (PAM_IGNORE, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reply: UnlockReply, code: c_int, message: Option<(c_int, &str)>) {
        let (got_code, got_message) = code_for(&reply, "alice");
        assert_eq!(got_code, code, "{reply:?}");
        assert_eq!(got_message.as_ref().map(|m| (m.style, m.text.as_str())), message, "{reply:?}");
    }

    #[test]
    fn every_reply() {
        check(
            UnlockReply::Granted { person_id: 3, score: 0.7 },
            PAM_SUCCESS,
            Some((PAM_TEXT_INFO, "Recognised alice")),
        );
        check(UnlockReply::NotRecognised { score: 0.2 }, PAM_AUTH_ERR, Some((PAM_ERROR_MSG, "Face not recognised")));
        check(UnlockReply::NoFace, PAM_AUTH_ERR, Some((PAM_ERROR_MSG, "No face seen")));
        check(UnlockReply::TooDark, PAM_AUTH_ERR, Some((PAM_ERROR_MSG, "Too dark — type your password")));
        check(UnlockReply::Timeout, PAM_AUTH_ERR, Some((PAM_ERROR_MSG, "Face check timed out")));
        check(
            UnlockReply::SpoofSuspected { liveness: 0.1 },
            PAM_AUTH_ERR,
            Some((PAM_ERROR_MSG, "Show your face, not a photo")),
        );
        check(UnlockReply::NotEnrolled, PAM_IGNORE, None);
        check(
            UnlockReply::LockedOut { seconds_left: 42 },
            PAM_IGNORE,
            Some((PAM_TEXT_INFO, "Face unlock locked for 42 s — type your password")),
        );
        check(UnlockReply::Busy, PAM_IGNORE, None);
    }
}
