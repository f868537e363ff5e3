//! Error types: the wire-level [`ErrorCode`] / [`ErrorResponse`] and the local
//! [`FrameError`] (codec) and [`AuthError`] (MAC checks).

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Maximum length in bytes of the free-text detail in an [`ErrorResponse`].
pub const ERROR_DETAIL_LEN: usize = 48;

/// Short human-readable detail attached to an error (bounded, UTF-8).
pub type ErrorDetail = heapless::String<ERROR_DETAIL_LEN>;

/// Typed protocol error with an explicit, stable numeric code.
///
/// Unlike other enums in this crate, `ErrorCode` is encoded on the wire as its
/// numeric [`code`](ErrorCode::code) (a `u16` varint), not as a variant index,
/// so codes can be grouped and never depend on declaration order. A code this
/// build does not know decodes as [`ErrorCode::Other`] (keeping the number), so
/// a newer peer's error never makes the whole frame undecodable.
///
/// Codes are frozen: never renumber, never reuse a retired code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // 1..=9: framing and versioning
    /// Frame failed COBS/CRC/structure checks.
    BadFrame,
    /// Message or variant not supported by this peer (e.g. newer protocol).
    Unsupported,
    /// Hello carried an incompatible protocol version.
    VersionMismatch,
    // 10..=19: authentication and pairing
    /// State-changing request without a MAC (device is paired).
    Unauthenticated,
    /// MAC present but wrong.
    BadMac,
    /// MAC counter not strictly greater than the last accepted one.
    Replay,
    /// Operation requires a paired device (or a Hello first).
    NotPaired,
    /// Pair request while the device's pairing window is closed.
    PairingClosed,
    /// The request is signed with a key the device replaced when another host paired with it
    /// (added after the first release: older hosts see `Other(15)`).
    PairedElsewhere,
    // 20..=29: templates and sync
    /// Template embedding model differs from the device's model.
    ModelMismatch,
    /// `expected_generation` differs from the store's generation.
    GenerationMismatch,
    /// SyncChunk/Commit/Abort without an active sync session.
    NoSyncSession,
    /// SyncChunk out of sequence (missing, duplicated or reordered).
    SyncSequence,
    /// SyncCommit count or digest does not match what was received.
    SyncMismatch,
    /// Referenced template does not exist.
    NotFound,
    // 30..=39: storage
    /// Template store capacity exhausted.
    StoreFull,
    /// Persistent storage failed.
    StoreIo,
    /// Template rejected (bad scale, empty name, ...).
    InvalidTemplate,
    // 40..=49: configuration
    /// Setting value out of range.
    InvalidConfig,
    // 50..=59: general
    /// Device busy (e.g. sync in progress); retry later.
    Busy,
    /// Unexpected internal failure.
    Internal,
    /// A code unknown to this build (sent by a newer peer).
    Other(u16),
}

impl ErrorCode {
    /// Every named code, for tests and documentation tables.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::BadFrame,
        ErrorCode::Unsupported,
        ErrorCode::VersionMismatch,
        ErrorCode::Unauthenticated,
        ErrorCode::BadMac,
        ErrorCode::Replay,
        ErrorCode::NotPaired,
        ErrorCode::PairingClosed,
        ErrorCode::PairedElsewhere,
        ErrorCode::ModelMismatch,
        ErrorCode::GenerationMismatch,
        ErrorCode::NoSyncSession,
        ErrorCode::SyncSequence,
        ErrorCode::SyncMismatch,
        ErrorCode::NotFound,
        ErrorCode::StoreFull,
        ErrorCode::StoreIo,
        ErrorCode::InvalidTemplate,
        ErrorCode::InvalidConfig,
        ErrorCode::Busy,
        ErrorCode::Internal,
    ];

    /// The stable numeric code sent on the wire.
    pub const fn code(self) -> u16 {
        match self {
            ErrorCode::BadFrame => 1,
            ErrorCode::Unsupported => 2,
            ErrorCode::VersionMismatch => 3,
            ErrorCode::Unauthenticated => 10,
            ErrorCode::BadMac => 11,
            ErrorCode::Replay => 12,
            ErrorCode::NotPaired => 13,
            ErrorCode::PairingClosed => 14,
            ErrorCode::PairedElsewhere => 15,
            ErrorCode::ModelMismatch => 20,
            ErrorCode::GenerationMismatch => 21,
            ErrorCode::NoSyncSession => 22,
            ErrorCode::SyncSequence => 23,
            ErrorCode::SyncMismatch => 24,
            ErrorCode::NotFound => 25,
            ErrorCode::StoreFull => 30,
            ErrorCode::StoreIo => 31,
            ErrorCode::InvalidTemplate => 32,
            ErrorCode::InvalidConfig => 40,
            ErrorCode::Busy => 50,
            ErrorCode::Internal => 51,
            ErrorCode::Other(c) => c,
        }
    }

    /// Inverse of [`code`](Self::code); unknown numbers become [`ErrorCode::Other`].
    pub const fn from_code(code: u16) -> ErrorCode {
        match code {
            1 => ErrorCode::BadFrame,
            2 => ErrorCode::Unsupported,
            3 => ErrorCode::VersionMismatch,
            10 => ErrorCode::Unauthenticated,
            11 => ErrorCode::BadMac,
            12 => ErrorCode::Replay,
            13 => ErrorCode::NotPaired,
            14 => ErrorCode::PairingClosed,
            15 => ErrorCode::PairedElsewhere,
            20 => ErrorCode::ModelMismatch,
            21 => ErrorCode::GenerationMismatch,
            22 => ErrorCode::NoSyncSession,
            23 => ErrorCode::SyncSequence,
            24 => ErrorCode::SyncMismatch,
            25 => ErrorCode::NotFound,
            30 => ErrorCode::StoreFull,
            31 => ErrorCode::StoreIo,
            32 => ErrorCode::InvalidTemplate,
            40 => ErrorCode::InvalidConfig,
            50 => ErrorCode::Busy,
            51 => ErrorCode::Internal,
            c => ErrorCode::Other(c),
        }
    }

    /// Short stable name (for logs).
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad frame",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::VersionMismatch => "protocol version mismatch",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::BadMac => "bad MAC",
            ErrorCode::Replay => "replayed or reordered frame",
            ErrorCode::NotPaired => "not paired",
            ErrorCode::PairingClosed => "pairing window closed",
            ErrorCode::PairedElsewhere => "device paired to another host",
            ErrorCode::ModelMismatch => "embedding model mismatch",
            ErrorCode::GenerationMismatch => "store generation mismatch",
            ErrorCode::NoSyncSession => "no sync session",
            ErrorCode::SyncSequence => "sync chunk out of sequence",
            ErrorCode::SyncMismatch => "sync count/digest mismatch",
            ErrorCode::NotFound => "not found",
            ErrorCode::StoreFull => "template store full",
            ErrorCode::StoreIo => "storage I/O error",
            ErrorCode::InvalidTemplate => "invalid template",
            ErrorCode::InvalidConfig => "invalid configuration",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal error",
            ErrorCode::Other(_) => "unknown error code",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.name(), self.code())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u16::deserialize(d).map(ErrorCode::from_code)
    }
}

/// Error reply: a code plus a short detail string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub code: ErrorCode,
    pub detail: ErrorDetail,
}

impl ErrorResponse {
    /// Builds a response, truncating `detail` at a char boundary if too long.
    pub fn new(code: ErrorCode, detail: &str) -> Self {
        ErrorResponse { code, detail: crate::bounded_str(detail) }
    }
}

impl From<ErrorCode> for ErrorResponse {
    fn from(code: ErrorCode) -> Self {
        ErrorResponse::new(code, "")
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.detail)
        }
    }
}

/// Local framing error (encoder or [`FrameDecoder`](crate::FrameDecoder)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Output buffer too small for the encoded frame.
    BufferTooSmall,
    /// The message would exceed [`MAX_FRAME`](crate::MAX_FRAME) on the wire.
    TooLarge,
    /// Serialization failed (should not happen for well-formed messages).
    Encode,
    /// Incoming frame exceeded the decoder buffer; dropped up to the next delimiter.
    Oversized,
    /// Invalid COBS stuffing.
    Cobs,
    /// Decoded frame shorter than the CRC trailer plus a minimal body.
    TooShort,
    /// CRC-32 mismatch (corruption, truncation, or merged frames).
    Crc,
    /// CRC was valid but the content is not a message this build understands
    /// (unknown variant from a newer peer, or over-long bounded field).
    /// `id` is the frame id if it could still be read, so the device can
    /// answer with [`ErrorCode::Unsupported`] to the right request; `what`
    /// says which message and, where known, which field.
    Unsupported { id: Option<u32>, what: &'static str },
    /// CRC was valid but the content is structurally malformed (truncated
    /// body, bad UTF-8, trailing bytes, ...).
    Malformed { id: Option<u32>, what: &'static str },
}

impl FrameError {
    /// Wire code to report this error to the peer.
    pub const fn code(self) -> ErrorCode {
        match self {
            FrameError::Unsupported { .. } => ErrorCode::Unsupported,
            FrameError::Encode => ErrorCode::Internal,
            _ => ErrorCode::BadFrame,
        }
    }

    /// The id of the frame that failed to decode, when it could be recovered.
    pub const fn frame_id(self) -> Option<u32> {
        match self {
            FrameError::Unsupported { id, .. } | FrameError::Malformed { id, .. } => id,
            _ => None,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BufferTooSmall => f.write_str("output buffer too small"),
            FrameError::TooLarge => f.write_str("frame exceeds MAX_FRAME"),
            FrameError::Encode => f.write_str("serialization failed"),
            FrameError::Oversized => f.write_str("oversized frame dropped"),
            FrameError::Cobs => f.write_str("invalid COBS encoding"),
            FrameError::TooShort => f.write_str("frame too short"),
            FrameError::Crc => f.write_str("CRC mismatch"),
            FrameError::Unsupported { what, .. } => write!(f, "unsupported message: {what}"),
            FrameError::Malformed { what, .. } => write!(f, "malformed message: {what}"),
        }
    }
}

/// Result of a failed MAC check by the [`Verifier`](crate::Verifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// State-changing request without a MAC.
    Unauthenticated,
    /// MAC does not match.
    BadMac,
    /// Counter not strictly greater than the last accepted counter.
    Replay,
}

impl AuthError {
    /// Wire code to report this error to the peer.
    pub const fn code(self) -> ErrorCode {
        match self {
            AuthError::Unauthenticated => ErrorCode::Unauthenticated,
            AuthError::BadMac => ErrorCode::BadMac,
            AuthError::Replay => ErrorCode::Replay,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code().name())
    }
}

impl From<AuthError> for ErrorCode {
    fn from(e: AuthError) -> Self {
        e.code()
    }
}

impl From<FrameError> for ErrorCode {
    fn from(e: FrameError) -> Self {
        e.code()
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}
#[cfg(feature = "std")]
impl std::error::Error for AuthError {}
#[cfg(feature = "std")]
impl std::error::Error for ErrorResponse {}
#[cfg(feature = "std")]
impl std::error::Error for ErrorCode {}
