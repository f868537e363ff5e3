//! Request, response and event messages.
//!
//! Every enum here is encoded by postcard as a varint variant index followed
//! by the fields, so **variants are append-only** (see the crate docs).

use serde::{Deserialize, Serialize};

use crate::access::{AccessEntry, ACCESS_PER_MESSAGE};
use crate::audit::AuditPage;
use crate::auth::{Key, SessionNonce};
use crate::card::{CardEntry, CARDS_PER_MESSAGE};
use crate::config::{ConfigKey, Setting};
use crate::error::ErrorResponse;
use crate::proposal::{ProposalId, ProposalPage, DROP_PER_MESSAGE};
use crate::template::{ModelId, PersonId, Template, TemplateId, TemplateSummary};
use crate::unlock::{LoginEntry, UnlockReply, UnlockRequest, MAX_LOGINS};

/// Maximum device-id / host-id length in bytes.
pub const PEER_ID_LEN: usize = 32;
/// Maximum templates in one `SyncChunk` (bounded so a chunk fits `MAX_FRAME`).
pub const MAX_SYNC_CHUNK: usize = 4;
/// Maximum summaries in one [`TemplatePage`].
pub const TEMPLATE_PAGE_MAX: usize = 32;

/// Device serial / host name.
pub type PeerId = heapless::String<PEER_ID_LEN>;

/// Device feature bits advertised in [`DeviceInfo`]. Unknown bits are kept
/// (a newer device may set bits this build does not name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capabilities(pub u32);

impl Capabilities {
    pub const NONE: Capabilities = Capabilities(0);
    /// Liveness / anti-spoofing model present.
    pub const LIVENESS: Capabilities = Capabilities(1 << 0);
    /// Audit log available (`FetchAudit`).
    pub const AUDIT_LOG: Capabilities = Capabilities(1 << 1);
    /// Atomic sync sessions supported.
    pub const SYNC: Capabilities = Capabilities(1 << 2);
    /// `Threshold::FarTarget` supported (device has a calibration table).
    pub const FAR_TARGET: Capabilities = Capabilities(1 << 3);
    /// Device has a camera attached and emits match events.
    pub const CAMERA: Capabilities = Capabilities(1 << 4);
    /// Keeps proposed templates for review (`ListProposals`, `DropProposals`).
    pub const PROPOSALS: Capabilities = Capabilities(1 << 5);

    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }
}

impl core::ops::BitOr for Capabilities {
    type Output = Capabilities;
    fn bitor(self, rhs: Capabilities) -> Capabilities {
        self.union(rhs)
    }
}

/// Host's opening message of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloRequest {
    /// The host's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
    pub protocol_version: u16,
    /// Free-form host identification (for the audit log).
    pub host_id: PeerId,
}

/// Device's reply to Hello. A new Hello starts a new session: fresh nonce,
/// MAC counter reset, any open sync session aborted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The device's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
    pub protocol_version: u16,
    pub device_id: PeerId,
    /// Embedding model the device runs; templates must carry the same id.
    pub model_id: ModelId,
    pub capabilities: Capabilities,
    pub template_count: u32,
    pub template_capacity: u32,
    /// Incremented by every committed store change (upsert, delete, sync).
    pub store_generation: u64,
    /// Random per-session nonce bound into every MAC of this session.
    pub session_nonce: SessionNonce,
    /// A pairing key is installed.
    pub paired: bool,
    /// The pairing window is open (physical button / first boot), so `Pair`
    /// would be accepted now.
    pub pairing_open: bool,
}

/// Host → device requests. The reply carries the same frame id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// no_std has no Box: fixed-size inline messages are intended.
#[allow(clippy::large_enum_variant)]
pub enum Request {
    /// Start a session → [`Response::Hello`].
    Hello(HelloRequest),
    /// Liveness check of the link → [`Response::Pong`] with the same payload.
    Ping { payload: u64 },
    /// Install the shared MAC key → [`Response::Paired`]. Accepted only while
    /// the device's pairing window is open (else `PairingClosed`). Sent in
    /// clear: pairing is a physical-proximity provisioning step.
    Pair { key: Key },
    /// Insert or replace (by `id`) one template → [`Response::TemplateStored`].
    UpsertTemplate(Template),
    /// → [`Response::TemplateDeleted`] or `NotFound`.
    DeleteTemplate { id: TemplateId },
    /// Keyset pagination: templates with `id >= cursor`, ascending, at most
    /// `limit` (device may return fewer) → [`Response::Templates`].
    ListTemplates { cursor: TemplateId, limit: u16 },
    /// Start replacing the whole template set → [`Response::SyncStarted`].
    /// Fails with `GenerationMismatch` unless the store is at
    /// `expected_generation` (optimistic concurrency).
    SyncBegin { expected_generation: u64, total_templates: u32 },
    /// Next batch of the new set; `seq` starts at 0 and increments by one
    /// (else `SyncSequence`) → [`Response::SyncChunkAccepted`].
    SyncChunk { seq: u32, templates: heapless::Vec<Template, MAX_SYNC_CHUNK> },
    /// Atomically replace the set if `template_count` and `digest` (see
    /// [`SyncDigest`](crate::SyncDigest)) match what was received (else
    /// `SyncMismatch`, session discarded) → [`Response::SyncCommitted`].
    SyncCommit { template_count: u32, digest: [u8; 32] },
    /// Discard the staged set → [`Response::SyncAborted`].
    SyncAbort,
    /// → [`Response::Config`].
    GetConfig { key: ConfigKey },
    /// Apply one setting → [`Response::Config`] echoing the applied value.
    SetConfig(Setting),
    /// Records with `seq >= since_seq`, at most `limit` → [`Response::Audit`].
    FetchAudit { since_seq: u64, limit: u16 },
    /// Replace the device's login → person map → [`Response::LoginsStored`].
    SetLogins { logins: heapless::Vec<LoginEntry, MAX_LOGINS> },
    /// Verify one login's face (local unlock socket only) → [`Response::Unlock`].
    Unlock(UnlockRequest),
    /// Replace the device's person → card map (the credential a door reports to its
    /// access-control panel), in pieces: `first` starts a new staged map, each message adds
    /// its cards, `last` replaces the stored map with the staged one → [`Response::CardsStored`].
    /// A new `Hello` or a link loss discards a staged map.
    SetCards { first: bool, last: bool, cards: heapless::Vec<CardEntry, CARDS_PER_MESSAGE> },
    /// Replace the device's access rules (per person: validity dates and time windows at this
    /// door), in pieces like [`Request::SetCards`] → [`Response::AccessStored`].
    SetAccess { first: bool, last: bool, entries: heapless::Vec<AccessEntry, ACCESS_PER_MESSAGE> },
    /// Proposed templates with `id >= cursor`, ascending, at most `limit` (the device may
    /// return fewer) → [`Response::Proposals`].
    ListProposals { cursor: ProposalId, limit: u16 },
    /// Forget these proposals (the host has filed them for review; unknown ids are ignored)
    /// → [`Response::ProposalsDropped`].
    DropProposals { ids: heapless::Vec<ProposalId, DROP_PER_MESSAGE> },
}

impl Request {
    /// `true` for requests that modify device state, or read biometric data
    /// (`ListProposals` carries embeddings), and therefore must carry a valid
    /// MAC once the device is paired. `Pair` is excluded: it is the
    /// provisioning step that installs the key.
    pub const fn changes_state(&self) -> bool {
        match self {
            Request::UpsertTemplate(_)
            | Request::DeleteTemplate { .. }
            | Request::SyncBegin { .. }
            | Request::SyncChunk { .. }
            | Request::SyncCommit { .. }
            | Request::SyncAbort
            | Request::SetConfig(_)
            | Request::SetLogins { .. }
            | Request::SetCards { .. }
            | Request::SetAccess { .. }
            | Request::ListProposals { .. }
            | Request::DropProposals { .. } => true,
            Request::Hello(_)
            | Request::Ping { .. }
            | Request::Pair { .. }
            | Request::ListTemplates { .. }
            | Request::GetConfig { .. }
            | Request::FetchAudit { .. }
            | Request::Unlock(_) => false,
        }
    }
}

/// One page of [`Request::ListTemplates`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplatePage {
    pub items: heapless::Vec<TemplateSummary, TEMPLATE_PAGE_MAX>,
    /// Cursor for the next page, `None` when this was the last page.
    pub next: Option<TemplateId>,
    /// Total templates in the store.
    pub total: u32,
}

/// Device → host replies (same frame id as the request).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// no_std has no Box: fixed-size inline messages are intended.
#[allow(clippy::large_enum_variant)]
pub enum Response {
    Hello(DeviceInfo),
    Pong {
        payload: u64,
    },
    Paired,
    TemplateStored {
        id: TemplateId,
        generation: u64,
    },
    TemplateDeleted {
        id: TemplateId,
        generation: u64,
    },
    Templates(TemplatePage),
    SyncStarted {
        /// Largest chunk the device accepts (≤ [`MAX_SYNC_CHUNK`]).
        max_chunk_templates: u8,
    },
    SyncChunkAccepted {
        seq: u32,
        /// Templates received so far in this session.
        received: u32,
    },
    SyncCommitted {
        generation: u64,
        template_count: u32,
    },
    SyncAborted {
        /// Unchanged store generation.
        generation: u64,
    },
    Config(Setting),
    Audit(AuditPage),
    Error(ErrorResponse),
    LoginsStored {
        count: u16,
    },
    Unlock(UnlockReply),
    CardsStored {
        /// Cards staged so far (after `last`: stored).
        count: u32,
        /// The staged map replaced the stored one.
        stored: bool,
    },
    AccessStored {
        /// Entries staged so far (after `last`: stored).
        count: u32,
        /// The staged rules replaced the stored ones.
        stored: bool,
    },
    Proposals(ProposalPage),
    ProposalsDropped {
        /// Proposals the device still holds.
        remaining: u32,
    },
}

/// Outcome of one recognition attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    /// Matched above threshold, consensus reached, liveness passed.
    Granted,
    /// A template matched but consensus was not reached.
    Denied,
    /// No template above threshold.
    Unknown,
    /// In lockout cool-down; recognition not attempted or ignored.
    LockedOut,
    /// Liveness check failed (presentation attack suspected).
    SpoofSuspected,
    /// Recognised, but the access rules do not allow them now (outside their time windows, or
    /// outside their validity dates); appended for access rules.
    NotAllowedNow,
}

/// Who was recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MatchedIdentity {
    pub template_id: TemplateId,
    pub person_id: PersonId,
}

/// Unsolicited recognition result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchEvent {
    /// Per-device event sequence (gaps mean events were lost).
    pub event_seq: u64,
    /// Camera frame counter the decision was made on.
    pub frame_counter: u64,
    /// Best-matching identity, `None` if unknown.
    pub identity: Option<MatchedIdentity>,
    /// Best cosine score (also reported when below threshold).
    pub score: f32,
    pub decision: Decision,
    /// Liveness score, `None` when liveness is disabled.
    pub liveness: Option<f32>,
    /// Capture-to-decision latency.
    pub latency_ms: u32,
}

/// Device → host unsolicited messages (frame id 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Match(MatchEvent),
}
