//! The host registry: enrolled people, their face templates, paired devices and sync history, in one SQLite file
//! (the default) or a shared PostgreSQL database ([`Registry::open_postgres`]).
//!
//! # Storage
//!
//! * One file, by default `<data dir>/facegate/registry.sqlite3` ([`Registry::default_path`]). It holds biometric
//!   templates and device pairing keys, so it is created `0600` inside a `0700` directory, and an existing file
//!   readable by group/other is restricted to `0600` (with a warning) on open. Deleted rows are overwritten
//!   (`secure_delete`) so a removed person's embeddings do not linger in free pages.
//! * Rollback journal (SQLite's default), not WAL: the registry is written by short CLI commands, so WAL's
//!   concurrent readers buy nothing, while it would add two long-lived side files (`-wal`, `-shm`) holding the same
//!   secrets, make "copy the one file" backups unsafe, and not work on network home directories. The transient
//!   `-journal` gets the database file's permissions from SQLite. Two `facegate` processes serialise on SQLite's
//!   lock with a [`BUSY_TIMEOUT`]; every write transaction is `IMMEDIATE` so it waits instead of failing on a lock
//!   upgrade.
//! * Embeddings are stored exactly: a BLOB of [`EMBEDDING_DIM`] little-endian `f32`. They are quantised only when
//!   building the wire [`Template`]s ([`Registry::wire_templates`]).
//! * Person and template ids are `AUTOINCREMENT`, so an id is never reused after a delete: a device must never
//!   mistake a removed person's template for a new one. Ids must fit the protocol's `u32`.
//!
//! # Schema evolution
//!
//! [`MIGRATIONS`] is append-only: entry `i` upgrades schema version `i` to `i + 1`, and `PRAGMA user_version`
//! records the version reached (PostgreSQL: [`MIGRATIONS_PG`], the same schema in its dialect, and the
//! `registry_meta` table). Pending migrations run in one transaction on open. A file whose version is newer
//! than this build is refused untouched ([`RegistryError::NewerSchema`]); a file that is not SQLite, or an SQLite
//! database of another program (foreign `application_id`, or non-empty without one), is refused as
//! [`RegistryError::NotARegistry`].
//!
//! # PostgreSQL
//!
//! Several administrators share one registry: every write transaction takes one advisory lock first, so writes
//! queue as they do on SQLite's file lock, and a read-then-write sees no other writer in between. The database is
//! shared, so device pairing keys are sealed (XChaCha20-Poly1305, [`RegistryKey`]) with a key each administrator
//! holds outside it; a check value in `registry_meta` refuses a wrong key before anything is written.

mod access;
mod cards;
mod db;
mod devices;
mod error;
mod file;
mod history;
mod logins;
mod people;
mod pg;
mod schema;
mod sealing;
mod templates;
#[cfg(test)]
mod tests;
mod updates;

pub use access::{canonical_schedule, DoorAccess, DoorRule, Group, Validity};
pub use devices::{DeviceRecord, SyncRecord, OUTCOME_COMMITTED};
pub use error::{EmbeddingProblem, RegistryError, TextProblem};
pub use history::{HistoryNote, HistoryRecord};
pub use logins::check_login;
pub use people::Person;
pub use pg::{shown_location, LOCK_TIMEOUT};
pub use schema::{MIGRATIONS, MIGRATIONS_PG, SCHEMA_VERSION};
pub use sealing::{RegistryKey, KEY_ENV, KEY_FILE_ENV};
pub use templates::{StoredTemplate, UNIT_NORM_TOLERANCE};
pub use updates::{FiledProposal, TemplateLine, ORIGIN_ENROLMENT, ORIGIN_UPDATE};

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use db::{Conn, Db, Tx};
use file::{not_a_db_or, prepare_file};
use rusqlite::{Connection, OpenFlags};

/// How long a command waits for another `facegate` process holding the database lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The registry database. Not `Sync`; open one per thread or process.
#[derive(Debug)]
pub struct Registry {
    db: Db,
    /// The SQLite file, or the PostgreSQL URL without its password.
    location: PathBuf,
    /// Seals pairing keys at rest (PostgreSQL); `None`: stored as they are (the private SQLite file).
    sealer: Option<RegistryKey>,
}

impl Registry {
    /// `<data dir>/registry.sqlite3` of the `org.facegate.facegate` project, or `None` without a home directory.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "facegate", "facegate").map(|d| d.data_dir().join("registry.sqlite3"))
    }

    /// Opens (creating if needed) the registry at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        prepare_file(path)?;
        // No CREATE flag: `prepare_file` made the file with the right mode. No URI flag: the path is literal.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| not_a_db_or(path, e))?;
        // Per-connection settings (the file itself is classified by `migrate`).
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| not_a_db_or(path, e))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;").map_err(|e| not_a_db_or(path, e))?;
        let mut registry = Registry { db: Db::new(Conn::Sqlite(conn)), location: path.to_path_buf(), sealer: None };
        registry.migrate()?;
        Ok(registry)
    }

    /// Opens `location`: a `postgres://` or `postgresql://` URL (with `key` sealing the pairing
    /// keys), else an SQLite file path.
    pub fn open_location(
        location: &str,
        key: impl FnOnce() -> Result<RegistryKey, RegistryError>,
    ) -> Result<Registry, RegistryError> {
        if pg::is_url(location) {
            Registry::open_postgres(location, key()?)
        } else {
            Registry::open(Path::new(location))
        }
    }

    /// The file this registry was opened from (for PostgreSQL, its URL without the password).
    pub fn path(&self) -> &Path {
        &self.location
    }

    /// Whether this is a shared PostgreSQL registry.
    pub fn is_shared(&self) -> bool {
        self.db.is_postgres()
    }

    /// The schema version recorded in the registry.
    pub fn schema_version(&self) -> Result<u32, RegistryError> {
        let v: i64 = match self.db.with_sqlite(|c| c.pragma_query_value(None, "user_version", |r| r.get(0))) {
            Some(v) => v?,
            None => self.db.query_one("SELECT schema_version FROM registry_meta", &[])?.get(0)?,
        };
        u32::try_from(v).map_err(|_| RegistryError::Corrupt(format!("negative schema version {v}")))
    }

    fn write_tx(&mut self) -> Result<Tx<'_>, RegistryError> {
        self.db.write_tx()
    }
}

fn check_text(s: &str, max: Option<usize>) -> Result<(), TextProblem> {
    if s.is_empty() {
        return Err(TextProblem::Empty);
    }
    if let Some(max) = max.filter(|m| s.len() > *m) {
        return Err(TextProblem::TooLong { len: s.len(), max });
    }
    // Line breaks, escapes and bidi overrides would garble (or spoof) the kiosk screen, listings and logs.
    let bad = |c: char| {
        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if s.chars().any(bad) {
        return Err(TextProblem::ControlChars);
    }
    Ok(())
}

fn now_ms() -> i64 {
    // A clock before 1970 is a misconfigured host, not a reason to fail an enrolment.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The id an `INSERT ... RETURNING id` gave, which must fit the protocol's `u32` (the caller's transaction
/// rolls back otherwise, leaving the id space exhausted rather than wrapping onto old ids).
fn inserted_id(row: &db::Row, what: &'static str) -> Result<u32, RegistryError> {
    let id: i64 = row.get(0)?;
    u32::try_from(id).map_err(|_| RegistryError::IdsExhausted(what))
}
