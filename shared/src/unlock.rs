//! Local unlock: a PAM module (or another local client) asks the device daemon to verify one
//! login's face ([`Request::Unlock`](crate::Request::Unlock) over a Unix socket, with the link's
//! framing but no MAC: the socket's file mode and the peer's uid are the authentication), and
//! the host tells the device which person each login belongs to
//! ([`Request::SetLogins`](crate::Request::SetLogins), with the sync).

use serde::{Deserialize, Serialize};

use crate::template::PersonId;

/// Longest Unix login name carried (Linux allows 32).
pub const LOGIN_LEN: usize = 32;
/// Longest PAM service name carried (`sudo`, `gdm-password`, ...).
pub const SERVICE_LEN: usize = 32;
/// Logins one device maps: an unlock device serves the people of one computer.
pub const MAX_LOGINS: usize = 32;

pub type Login = heapless::String<LOGIN_LEN>;

/// "Is `login` in front of the camera?", answered within `timeout_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockRequest {
    pub login: Login,
    pub timeout_ms: u32,
    /// The PAM service asking, for the audit log.
    pub service: heapless::String<SERVICE_LEN>,
}

/// The device's answer to an [`UnlockRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum UnlockReply {
    Granted {
        person_id: PersonId,
        score: f32,
    },
    /// A face was seen and compared, and it is not this login's (best score).
    NotRecognised {
        score: f32,
    },
    NoFace,
    /// A face was seen but too dark (or lit too unevenly) to compare.
    TooDark,
    /// No template is mapped to this login.
    NotEnrolled,
    LockedOut {
        seconds_left: u32,
    },
    /// Another unlock request is being served.
    Busy,
    /// Faces were seen but no decision was reached in time.
    Timeout,
    /// The face showed no life (a photo held up); the visit's mean live probability.
    SpoofSuspected {
        liveness: f32,
    },
}

/// One login and the person it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginEntry {
    pub person_id: PersonId,
    pub login: Login,
}
