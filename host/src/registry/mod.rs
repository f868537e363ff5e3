//! The host registry: enrolled people, their face templates, paired devices and sync history, in one SQLite file.
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
//! records the version reached. Pending migrations run in one transaction on open. A file whose version is newer
//! than this build is refused untouched ([`RegistryError::NewerSchema`]); a file that is not SQLite, or an SQLite
//! database of another program (foreign `application_id`, or non-empty without one), is refused as
//! [`RegistryError::NotARegistry`].

mod cards;
mod devices;
mod error;
mod file;
mod history;
mod logins;
mod people;
mod schema;
mod templates;
#[cfg(test)]
mod tests;

pub use devices::{DeviceRecord, SyncRecord, OUTCOME_COMMITTED};
pub use error::{EmbeddingProblem, RegistryError, TextProblem};
pub use history::{HistoryNote, HistoryRecord};
pub use logins::check_login;
pub use people::Person;
pub use schema::{MIGRATIONS, SCHEMA_VERSION};
pub use templates::{StoredTemplate, UNIT_NORM_TOLERANCE};

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use file::{not_a_db_or, prepare_file};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

/// How long a command waits for another `facegate` process holding the database lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The registry database. Not `Sync`; open one per thread or process.
#[derive(Debug)]
pub struct Registry {
    conn: Connection,
    path: PathBuf,
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
        let mut registry = Registry { conn, path: path.to_path_buf() };
        registry.migrate()?;
        Ok(registry)
    }

    /// The file this registry was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u32, RegistryError> {
        let v: i64 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        u32::try_from(v).map_err(|_| RegistryError::Corrupt(format!("negative schema version {v}")))
    }

    fn write_tx(&mut self) -> Result<Transaction<'_>, RegistryError> {
        // IMMEDIATE takes the write lock up front (waiting up to BUSY_TIMEOUT) instead of failing with
        // SQLITE_BUSY when a read has to be upgraded while another process writes.
        Ok(self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
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

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The id of the row just inserted, which must fit the protocol's `u32` (the caller's transaction rolls back
/// otherwise, leaving the id space exhausted rather than wrapping onto old ids).
fn inserted_id(conn: &Connection, what: &'static str) -> Result<u32, RegistryError> {
    u32::try_from(conn.last_insert_rowid()).map_err(|_| RegistryError::IdsExhausted(what))
}
