//! # facegate-proto — the Facegate wire protocol
//!
//! Shared by the kiosk **device** and the enrolment **host**, over any byte
//! stream (USB CDC serial, TCP, a test pipe). `#![no_std]`, no allocation;
//! the `alloc`/`std` features only add conveniences
//! ([`encode_frame_vec`], `std::error::Error` impls).
//!
//! ## Framing
//!
//! ```text
//!            Frame { id: u32, body: Body, auth: Option<Auth> }
//!                               │ postcard
//!                               ▼
//!  ┌──────────────────────────────────────────────┬──────────────┐
//!  │ postcard(id) │ postcard(body) │ postcard(auth)│ CRC-32 (LE)  │   ≤ MAX_FRAME-2 after stuffing
//!  └──────────────────────────────────────────────┴──────────────┘
//!                               │ COBS (no 0x00 inside)
//!                               ▼
//!  ┌──────┬───────────────────────────────────────────────┬──────┐
//!  │ 0x00 │            COBS(payload || crc)               │ 0x00 │   total ≤ MAX_FRAME = 8192
//!  └──────┴───────────────────────────────────────────────┴──────┘
//! ```
//!
//! * CRC: CRC-32/ISO-HDLC over the postcard bytes, appended little-endian.
//! * The *leading* `0x00` terminates whatever garbage or truncated frame the
//!   receiver holds, so a damaged frame never swallows the next good one.
//!   Receivers ignore empty chunks.
//! * [`FrameDecoder`] has a fixed [`MAX_ENCODED`]-byte buffer; longer chunks
//!   are reported once as [`FrameError::Oversized`] and skipped to the next
//!   delimiter. A sync chunk of [`MAX_SYNC_CHUNK`] = 4 maximal templates
//!   encodes to ≈4.6 KiB, well inside the limit.
//!
//! ## Messages
//!
//! [`Body`] is a [`Request`] (host → device), a [`Response`] (device → host,
//! same frame `id` as the request) or an [`Event`] (unsolicited, id
//! [`NO_ID`]). Errors are `Response::Error(`[`ErrorResponse`]`)` with a
//! stable numeric [`ErrorCode`]. A session starts with `Hello`, whose reply
//! ([`DeviceInfo`]) carries the protocol version, model id, store generation
//! and the per-session MAC nonce.
//!
//! ## Authentication
//!
//! After pairing (`Request::Pair` installs a 32-byte key while the device's
//! pairing window is open), every state-changing request carries
//! [`Auth`] `{ counter, tag }`; see [`auth`] for the exact MAC input. Hosts use
//! [`Signer`], devices [`Verifier`].
//!
//! ## Sync sessions
//!
//! `SyncBegin{expected_generation, total_templates}` → `SyncChunk{seq: 0..}`*
//! → `SyncCommit{template_count, digest}` replaces the device's template set
//! atomically and returns the new generation. The device stages the new set
//! separately; **`SyncAbort`, a new `Hello`, a link loss or any failed step
//! discards the staged set and leaves the old set and generation intact.**
//! The digest is [`SyncDigest`] over the templates in sending order.
//!
//! ## Evolution rules (the format is frozen by `tests/vectors/*.hex`)
//!
//! * postcard encodes an enum variant as its **index** (varint): variants are
//!   only ever **appended**, never reordered, removed or renamed-in-place.
//! * Existing struct/variant fields are never changed, reordered or retyped.
//!   A new field means a **new message variant** (e.g. `HelloV2`).
//! * Bounds (`heapless` capacities, [`MAX_SYNC_CHUNK`], [`MAX_FRAME`]) are part
//!   of the format: an old peer rejects longer data, so they only change via
//!   new variants / a version bump.
//! * [`ErrorCode`]s are explicit numbers, never reused; unknown codes decode
//!   as [`ErrorCode::Other`].
//! * A frame with an unknown variant (CRC valid) decodes to
//!   [`FrameError::Unsupported`] carrying the frame id when readable, so the
//!   device replies `ErrorCode::Unsupported` instead of failing — never a panic.
//! * Incompatible changes bump [`PROTOCOL_VERSION`]; peers compare it in Hello.
//!
//! Golden vectors: `cargo test -p facegate-proto --test golden` checks them;
//! after an *intended* change (new variant) regenerate with
//! `FACEGATE_BLESS=1 cargo test -p facegate-proto --test golden -- --ignored bless`.
//!
//! ## Fuzzing
//!
//! `shared/fuzz` holds a cargo-fuzz target `frame_decoder` (separate
//! workspace): `cd shared/fuzz && cargo +nightly fuzz run frame_decoder`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

/// Re-exported so peers use the exact `heapless` version of the message types.
pub use heapless;

pub mod access;
pub mod audit;
pub mod auth;
pub mod card;
pub mod config;
pub mod error;
pub mod frame;
pub mod message;
pub mod proposal;
pub mod template;
pub mod unlock;

pub use access::{AccessEntry, LocalTime, ScheduleError, Verdict, Window, ACCESS_PER_MESSAGE, WINDOWS_PER_PERSON};
pub use audit::{AuditKind, AuditPage, AuditRecord, AUDIT_DETAIL_LEN, AUDIT_PAGE_MAX};
pub use auth::{compute_tag, Key, SessionNonce, Signer, Tag, Verifier, KEY_LEN, NONCE_LEN, TAG_LEN};
pub use card::{Card, CardEntry, CardError, CardFormat, CARDS_PER_MESSAGE, CARD_BYTES};
pub use config::{ConfigKey, Setting, Threshold, DEFAULT_FAR, DEFAULT_FPIR};
pub use error::{AuthError, ErrorCode, ErrorDetail, ErrorResponse, FrameError, ERROR_DETAIL_LEN};
#[cfg(feature = "alloc")]
pub use frame::encode_frame_vec;
pub use frame::{decode_frame, encode_frame, Auth, Body, Frame, FrameDecoder, Push, MAX_ENCODED, MAX_FRAME, NO_ID};
pub use message::{
    Capabilities, Decision, DeviceInfo, Event, HelloRequest, MatchEvent, MatchedIdentity, PeerId, Request, Response,
    TemplatePage, MAX_SYNC_CHUNK, PEER_ID_LEN, TEMPLATE_PAGE_MAX,
};
pub use proposal::{Proposal, ProposalId, ProposalPage, DROP_PER_MESSAGE, PROPOSALS_PER_PAGE};
pub use template::{
    cosine, DisplayName, Embedding, ModelId, PersonId, SyncDigest, Template, TemplateId, TemplateSummary,
    DISPLAY_NAME_LEN, EMBEDDING_DIM, MODEL_ID_LEN,
};
pub use unlock::{Login, LoginEntry, UnlockReply, UnlockRequest, LOGIN_LEN, MAX_LOGINS, SERVICE_LEN};

/// Wire protocol version exchanged in Hello. Bump only for incompatible
/// changes; appending variants is compatible (see the evolution rules).
pub const PROTOCOL_VERSION: u16 = 1;

/// Copies `s` into a bounded string, truncating at a char boundary if it
/// does not fit (for names and details coming from unbounded sources).
pub fn bounded_str<const N: usize>(s: &str) -> heapless::String<N> {
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = heapless::String::new();
    // Cannot fail: `end <= N` bytes.
    let _ = out.push_str(&s[..end]);
    out
}
