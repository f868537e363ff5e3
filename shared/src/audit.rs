//! Audit-log records kept by the device and fetched by the host.

use serde::{Deserialize, Serialize};

use crate::template::PersonId;

/// Maximum length in bytes of [`AuditRecord::detail`].
pub const AUDIT_DETAIL_LEN: usize = 48;
/// Maximum records per [`AuditPage`].
pub const AUDIT_PAGE_MAX: usize = 16;

/// What an audit record is about. Append-only, like every wire enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditKind {
    Boot,
    Paired,
    AccessGranted,
    AccessDenied,
    UnknownFace,
    LockedOut,
    SpoofSuspected,
    TemplateUpserted,
    TemplateDeleted,
    SyncCommitted,
    SyncAborted,
    ConfigChanged,
    /// Rejected frame: bad MAC, replay or missing authentication.
    AuthFailure,
    /// A stored template that cannot be matched against was left out of matching (appended in
    /// protocol 1; the rest of the people still get in).
    TemplateSetAside,
    /// The audit log reached its size bound and was rotated; the detail says which records, if
    /// any, were dropped (appended in protocol 1).
    LogRotated,
    /// A local unlock request and its outcome; the detail names the login, the outcome and the
    /// PAM service (appended in protocol 2).
    Unlock,
    /// The login map changed (appended in protocol 2).
    LoginsChanged,
    /// The card map changed (appended for access-control panels).
    CardsChanged,
    /// The access-control panel sent a command (LED, buzzer, text) or its link changed; the
    /// detail says which (appended for access-control panels).
    Panel,
    /// The access rules changed (appended for access rules).
    AccessChanged,
    /// A recognised person the rules do not allow now; the detail says why (appended for access
    /// rules).
    NotAllowed,
    /// A granted probe was kept as a proposed template for review; the detail names the person
    /// and the score (appended for template updates).
    TemplateProposed,
    /// A host pulled proposals for review and the device forgot them (appended for template
    /// updates).
    ProposalsDropped,
}

/// One audit-log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Monotonic per-device sequence number (never reused).
    pub seq: u64,
    /// Wall-clock time, Unix epoch milliseconds (0 if the clock is unset).
    pub timestamp_ms: u64,
    pub kind: AuditKind,
    pub person_id: Option<PersonId>,
    pub score: Option<f32>,
    pub detail: heapless::String<AUDIT_DETAIL_LEN>,
}

/// Reply to `FetchAudit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// Records with `seq >= since_seq`, ascending.
    pub records: heapless::Vec<AuditRecord, AUDIT_PAGE_MAX>,
    /// `since_seq` for the next fetch if more records exist, else `None`.
    pub next_seq: Option<u64>,
}
