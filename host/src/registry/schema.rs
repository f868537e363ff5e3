//! The schema and its evolution: append-only migrations, and the check that a file is a registry of a version
//! this build understands.

use super::file::not_a_db_or;
use super::{Registry, RegistryError};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// Schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// `PRAGMA application_id` of a Facegate registry: "FGRG".
pub(super) const APPLICATION_ID: i64 = 0x4647_5247;

/// Schema migrations, applied in order; never edit or reorder an entry, only append.
pub const MIGRATIONS: &[&str] = &[
    // v1: initial schema. STRICT tables so a stray external write cannot store e.g. text in an id or embedding.
    // `name_key` is the case-folded name that enforces case-insensitive uniqueness (SQLite's NOCASE folds only ASCII).
    // The length checks mirror EMBEDDING_DIM * 4, KEY_LEN and the SHA-256 digest length.
    "PRAGMA application_id = 1179079239;
    CREATE TABLE people (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        name       TEXT    NOT NULL,
        name_key   TEXT    NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE templates (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id  INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        model_id   TEXT    NOT NULL,
        embedding  BLOB    NOT NULL CHECK (length(embedding) = 2048),
        source     TEXT    NOT NULL,
        quality    REAL,
        created_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX templates_by_person ON templates(person_id);
    CREATE INDEX templates_by_model ON templates(model_id, id);
    CREATE TABLE devices (
        addr            TEXT    NOT NULL PRIMARY KEY,
        device_id       TEXT    NOT NULL,
        model_id        TEXT    NOT NULL,
        pairing_key     BLOB    NOT NULL CHECK (length(pairing_key) = 32),
        paired_ms       INTEGER NOT NULL,
        last_generation INTEGER,
        last_digest     BLOB    CHECK (last_digest IS NULL OR length(last_digest) = 32),
        last_sync_ms    INTEGER
    ) STRICT;
    CREATE TABLE sync_history (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        addr        TEXT    NOT NULL,
        started_ms  INTEGER NOT NULL,
        finished_ms INTEGER,
        outcome     TEXT    NOT NULL,
        added       INTEGER NOT NULL,
        removed     INTEGER NOT NULL,
        changed     INTEGER NOT NULL,
        generation  INTEGER,
        digest      BLOB    CHECK (digest IS NULL OR length(digest) = 32)
    ) STRICT;
    CREATE INDEX sync_history_by_addr ON sync_history(addr, id);",
    // v2: who did what to a person that the registry's own rules would have refused (e.g. an enrolment
    // forced past the same-person check). `person_id` is kept after the person is removed.
    "CREATE TABLE history (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms     INTEGER NOT NULL,
        actor     TEXT    NOT NULL,
        action    TEXT    NOT NULL,
        person_id INTEGER,
        detail    TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX history_by_person ON history(person_id, id);",
    // v3: the Unix login each person unlocks (local unlock through the PAM module).
    "CREATE TABLE logins (
        login     TEXT    NOT NULL PRIMARY KEY,
        person_id INTEGER NOT NULL UNIQUE REFERENCES people(id) ON DELETE CASCADE
    ) STRICT;",
    // v4: the card credential a door reports to its access-control panel when it grants the person.
    // One card per person and each card one person's; `data` holds the bits first-bit-first.
    "CREATE TABLE cards (
        person_id INTEGER NOT NULL PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
        bits      INTEGER NOT NULL CHECK (bits BETWEEN 1 AND 128),
        data      BLOB    NOT NULL CHECK (length(data) = (bits + 7) / 8),
        UNIQUE (bits, data)
    ) STRICT;",
];

impl Registry {
    pub(super) fn migrate(&mut self) -> Result<(), RegistryError> {
        // Fast path without the write lock: an up-to-date registry is the common case.
        if check_layout(&self.conn, &self.path)? == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-check under the lock: another process may have migrated in the meantime.
        let from = check_layout(&tx, &self.path)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            tx.execute_batch(sql)?;
            tracing::info!(path = %self.path.display(), version = i + 1, "registry schema migrated");
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }
}

/// Classifies the file and returns its schema version: ours (any version up to [`SCHEMA_VERSION`]) or a fresh
/// empty database (version 0). Reads only.
pub(super) fn check_layout(conn: &Connection, path: &Path) -> Result<u32, RegistryError> {
    let read = || -> rusqlite::Result<(i64, i64, i64)> {
        let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        Ok((app, version, objects))
    };
    let (app, version, objects) = read().map_err(|e| not_a_db_or(path, e))?;
    let not_ours = || RegistryError::NotARegistry { path: path.to_path_buf() };
    if app == 0 && version == 0 && objects == 0 {
        return Ok(0);
    }
    if app != APPLICATION_ID {
        return Err(not_ours());
    }
    let version = u32::try_from(version).map_err(|_| not_ours())?;
    if version > SCHEMA_VERSION {
        return Err(RegistryError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    Ok(version)
}
