//! What the registry refuses, and why.

use super::UNIT_NORM_TOLERANCE;
use facegate_proto::{PersonId, EMBEDDING_DIM};
use std::path::PathBuf;

/// Why a name, model id or address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    #[error("it is empty")]
    Empty,
    #[error("it is {len} bytes long (UTF-8), more than the {max} allowed")]
    TooLong { len: usize, max: usize },
    #[error("it contains control or text-direction characters")]
    ControlChars,
}

/// Why an embedding was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbeddingProblem {
    #[error("it has {len} values, expected {expected}", expected = EMBEDDING_DIM)]
    WrongLength { len: usize },
    #[error("value {index} is not finite")]
    NotFinite { index: usize },
    #[error("its L2 norm is {norm}, not 1 (±{tol}); embeddings must be normalised", tol = UNIT_NORM_TOLERANCE)]
    NotUnit { norm: f64 },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("registry {}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{} is not a Facegate registry (not an SQLite database, or a database belonging to another program)", path.display())]
    NotARegistry { path: PathBuf },
    #[error(
        "registry {} has schema version {found}, newer than the {supported} this facegate understands; \
         use a newer facegate",
        path.display()
    )]
    NewerSchema { path: PathBuf, found: u32, supported: u32 },
    #[error("registry database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("registry database error (PostgreSQL): {0}")]
    Postgres(#[from] postgres::Error),
    #[error(
        "a shared registry needs its key, which seals the device pairing keys: set {env} (64 hex digits) or {file} \
         (a file holding them); a new registry's first administrator makes one with `facegate registry-key --new FILE`",
        env = super::KEY_ENV,
        file = super::KEY_FILE_ENV
    )]
    NoRegistryKey,
    #[error("the registry key is malformed: {0}")]
    BadRegistryKey(String),
    #[error("this is not the key of this registry (its pairing keys were sealed with another): ask its administrator")]
    WrongRegistryKey,
    #[error("registry data is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid name {name:?}: {problem}")]
    InvalidName { name: String, problem: TextProblem },
    #[error("a person named {name:?} already exists (names are compared case-insensitively)")]
    DuplicateName { name: String },
    #[error("no person named {0:?}")]
    PersonNotFound(String),
    #[error("no pending proposal {0} (see `facegate templates review`)")]
    ProposalNotPending(i64),
    #[error("no person with id {0}")]
    PersonIdNotFound(PersonId),
    #[error("invalid model id {model_id:?}: {problem}")]
    InvalidModelId { model_id: String, problem: TextProblem },
    /// `index` is the position in the call's batch (always 0 for [`Registry::add_template`]).
    #[error("embedding #{index} is invalid: {problem}")]
    InvalidEmbedding { index: usize, problem: EmbeddingProblem },
    #[error("quality of embedding #{index} is {value}, not a finite number")]
    InvalidQuality { index: usize, value: f32 },
    #[error("nothing to enrol: no embeddings given")]
    EmptyEnrollment,
    #[error("invalid device address {addr:?}: {problem}")]
    InvalidAddress { addr: String, problem: TextProblem },
    #[error("no paired device at {0:?}")]
    DeviceNotFound(String),
    #[error("invalid sync record: {0}")]
    InvalidSyncRecord(&'static str),
    #[error("{0} ids are exhausted: the next id would not fit in 32 bits")]
    IdsExhausted(&'static str),
    #[error("invalid login {login:?}: {problem}")]
    InvalidLogin { login: String, problem: String },
    #[error("login {login:?} already belongs to person {person_id}")]
    LoginTaken { login: String, person_id: PersonId },
    #[error("card {card} already belongs to person {person_id}")]
    CardTaken { card: String, person_id: PersonId },
    #[error("invalid schedule {schedule:?}: {problem}")]
    InvalidSchedule { schedule: String, problem: String },
    #[error("invalid date {0:?}: dates are YYYY-MM-DD (from before until)")]
    InvalidDate(String),
    #[error("no access group named {0:?}")]
    GroupNotFound(String),
    #[error("an access group named {0:?} already exists (names are compared case-insensitively)")]
    DuplicateGroup(String),
    #[error(
        "person {person} has more than {max} time windows at this door (over all their groups): merge the schedules"
    )]
    TooManyWindows { person: PersonId, max: usize },
    #[error("the card of person {person_id} is longer than 128 bits: the registry was edited by hand")]
    MalformedCard { person_id: PersonId },
}
