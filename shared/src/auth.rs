//! Frame authentication: HMAC-SHA256 truncated to 16 bytes.
//!
//! ```text
//! tag = HMAC-SHA256(key, session_nonce[32] || counter as u64 LE[8] || postcard(id) || postcard(body))[..16]
//! ```
//!
//! * `key`: the 32-byte secret installed by `Request::Pair`.
//! * `session_nonce`: random, chosen by the device per session and announced
//!   in [`DeviceInfo`](crate::DeviceInfo); a tag from one session is useless in
//!   another even if counters restart.
//! * `counter`: strictly increasing within a session (the [`Signer`] starts at 1);
//!   the [`Verifier`] rejects `counter <= last accepted` as a replay, which also
//!   rejects reordered frames.
//! * `postcard(id) || postcard(body)` is exactly the start of the frame's own
//!   encoding, so the MAC binds the request id and the whole message.
//!
//! Frames that [change state](crate::Request::changes_state) must carry a
//! MAC once the device is paired; other frames may (a present MAC is always
//! checked). The verifier compares tags in constant time.

use core::fmt;

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use crate::error::AuthError;
use crate::frame::{Auth, Body, Frame};
use crate::template::HashFlavor;

/// Shared pairing key length.
pub const KEY_LEN: usize = 32;
/// Session nonce length.
pub const NONCE_LEN: usize = 32;
/// Truncated MAC length.
pub const TAG_LEN: usize = 16;

/// Shared secret installed at pairing.
pub type Key = [u8; KEY_LEN];
/// Per-session random nonce chosen by the device.
pub type SessionNonce = [u8; NONCE_LEN];
/// Truncated HMAC tag.
pub type Tag = [u8; TAG_LEN];

/// Computes the tag for (`id`, `body`) at `counter` (see the module docs).
pub fn compute_tag(key: &Key, nonce: &SessionNonce, counter: u64, id: u32, body: &Body) -> Tag {
    // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(nonce);
    mac.update(&counter.to_le_bytes());
    // Streams the encoding into the MAC; the sink never fails.
    let _ = postcard::serialize_with_flavor(&(id, body), HashFlavor(&mut mac));
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}

/// Host side: stamps frames with a MAC and the next counter.
#[derive(Clone)]
pub struct Signer {
    key: Key,
    nonce: SessionNonce,
    next_counter: u64,
}

impl Signer {
    /// New session signer (use the nonce from the device's Hello reply).
    pub const fn new(key: Key, nonce: SessionNonce) -> Self {
        Signer { key, nonce, next_counter: 1 }
    }

    /// Counter the next signed frame will use.
    pub const fn next_counter(&self) -> u64 {
        self.next_counter
    }

    /// Sets `frame.auth` (overwriting any previous stamp) and advances the counter.
    pub fn sign(&mut self, frame: &mut Frame) {
        let counter = self.next_counter;
        self.next_counter = self.next_counter.saturating_add(1);
        let tag = compute_tag(&self.key, &self.nonce, counter, frame.id, &frame.body);
        frame.auth = Some(Auth { counter, tag });
    }

    /// Signs `frame` only if its body [changes state](Body::changes_state).
    pub fn sign_if_needed(&mut self, frame: &mut Frame) {
        if frame.body.changes_state() {
            self.sign(frame);
        }
    }

    /// Builds and signs a request frame.
    pub fn signed_request(&mut self, id: u32, req: crate::Request) -> Frame {
        let mut f = Frame::request(id, req);
        self.sign(&mut f);
        f
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never log the key.
        f.debug_struct("Signer").field("next_counter", &self.next_counter).finish_non_exhaustive()
    }
}

/// Device side: checks MACs and counters for one session.
#[derive(Clone)]
pub struct Verifier {
    key: Key,
    nonce: SessionNonce,
    last_counter: Option<u64>,
}

impl Verifier {
    /// New session verifier (the device's key and the nonce it just sent).
    pub const fn new(key: Key, nonce: SessionNonce) -> Self {
        Verifier { key, nonce, last_counter: None }
    }

    /// Last accepted counter in this session.
    pub const fn last_counter(&self) -> Option<u64> {
        self.last_counter
    }

    /// Accepts `frame` or says why not:
    /// * no MAC on a state-changing request → [`AuthError::Unauthenticated`];
    /// * MAC present but wrong (altered frame, other key or session) → [`AuthError::BadMac`];
    /// * valid MAC with `counter <= last accepted` → [`AuthError::Replay`].
    ///
    /// Only an accepted MAC advances the counter, so forged frames cannot
    /// burn counters.
    pub fn verify(&mut self, frame: &Frame) -> Result<(), AuthError> {
        let Some(auth) = frame.auth else {
            return if frame.body.changes_state() { Err(AuthError::Unauthenticated) } else { Ok(()) };
        };
        let expected = compute_tag(&self.key, &self.nonce, auth.counter, frame.id, &frame.body);
        if !bool::from(expected.ct_eq(&auth.tag)) {
            return Err(AuthError::BadMac);
        }
        if self.last_counter.is_some_and(|last| auth.counter <= last) {
            return Err(AuthError::Replay);
        }
        self.last_counter = Some(auth.counter);
        Ok(())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").field("last_counter", &self.last_counter).finish_non_exhaustive()
    }
}
