//! The schema and its evolution: append-only migrations, and the check that a file is a registry of a version
//! this build understands.

use super::db::args;
use super::file::not_a_db_or;
use super::{Registry, RegistryError};
use rusqlite::Connection;
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
    // v5: access rules. Groups of people; which groups a door (a paired device) lets in, on a
    // weekly schedule (the text `facegate door allow` took, in its canonical form, "always"
    // for any time); and each person's validity dates (YYYY-MM-DD, inclusive, in the door's
    // calendar). A door never given a rule lets in everyone enrolled; once given one it is
    // `restricted`, and stays so when its last group goes (it then lets no one in).
    "ALTER TABLE devices ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE access_groups (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        name       TEXT    NOT NULL,
        name_key   TEXT    NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE group_members (
        group_id  INTEGER NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, person_id)
    ) STRICT;
    CREATE INDEX group_members_by_person ON group_members(person_id);
    CREATE TABLE door_rules (
        addr     TEXT    NOT NULL REFERENCES devices(addr) ON DELETE CASCADE,
        group_id INTEGER NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
        schedule TEXT    NOT NULL,
        PRIMARY KEY (addr, group_id)
    ) STRICT;
    CREATE TABLE validity (
        person_id   INTEGER NOT NULL PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
        valid_from  TEXT,
        valid_until TEXT
    ) STRICT;",
    // Version 6, template updates: where a template came from (`enrolment`, or `update` for an
    // accepted proposal), and the proposals pulled from devices with the review's outcome
    // (`pending`, `accepted`, `rejected`, `rolled back`) and the template an accepted one became.
    "ALTER TABLE templates ADD COLUMN origin TEXT NOT NULL DEFAULT 'enrolment';
    CREATE TABLE proposals (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        device          TEXT    NOT NULL,
        device_proposal INTEGER NOT NULL,
        person_id       INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        model_id        TEXT    NOT NULL,
        embedding       BLOB    NOT NULL CHECK (length(embedding) = 2048),
        granted_ms      INTEGER NOT NULL,
        score           REAL    NOT NULL,
        threshold       REAL    NOT NULL,
        face_px         INTEGER NOT NULL,
        sharpness       REAL    NOT NULL,
        yaw_deg         REAL    NOT NULL,
        status          TEXT    NOT NULL DEFAULT 'pending',
        template_id     INTEGER,
        decided_ms      INTEGER,
        UNIQUE (device, device_proposal)
    ) STRICT;
    CREATE INDEX proposals_by_person ON proposals(person_id);",
];

/// [`MIGRATIONS`] in PostgreSQL's dialect: the same tables, columns, keys and checks, entry for
/// entry (`tests::both_backends_have_the_same_schema` compares them). Text that is sorted on
/// collates as bytes (`"C"`, SQLite's `BINARY`), so both list in the same order. Types: `BIGINT` for
/// integers, `BYTEA` for blobs, `DOUBLE PRECISION` for reals; ids are identity columns (never
/// reused, like `AUTOINCREMENT`). Pairing keys are sealed here ([`super::RegistryKey`]), hence 72
/// bytes. Append only, in step with [`MIGRATIONS`].
pub const MIGRATIONS_PG: &[&str] = &[
    "CREATE TABLE people (
        id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name       TEXT   NOT NULL,
        name_key   TEXT   COLLATE \"C\" NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE templates (
        id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        person_id  BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        model_id   TEXT   COLLATE \"C\" NOT NULL,
        embedding  BYTEA  NOT NULL CHECK (octet_length(embedding) = 2048),
        source     TEXT   NOT NULL,
        quality    DOUBLE PRECISION,
        created_ms BIGINT NOT NULL
    );
    CREATE INDEX templates_by_person ON templates(person_id);
    CREATE INDEX templates_by_model ON templates(model_id, id);
    CREATE TABLE devices (
        addr            TEXT   COLLATE \"C\" NOT NULL PRIMARY KEY,
        device_id       TEXT   NOT NULL,
        model_id        TEXT   NOT NULL,
        pairing_key     BYTEA  NOT NULL CHECK (octet_length(pairing_key) = 72),
        paired_ms       BIGINT NOT NULL,
        last_generation BIGINT,
        last_digest     BYTEA  CHECK (last_digest IS NULL OR octet_length(last_digest) = 32),
        last_sync_ms    BIGINT
    );
    CREATE TABLE sync_history (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        addr        TEXT   NOT NULL,
        started_ms  BIGINT NOT NULL,
        finished_ms BIGINT,
        outcome     TEXT   NOT NULL,
        added       BIGINT NOT NULL,
        removed     BIGINT NOT NULL,
        changed     BIGINT NOT NULL,
        generation  BIGINT,
        digest      BYTEA  CHECK (digest IS NULL OR octet_length(digest) = 32)
    );
    CREATE INDEX sync_history_by_addr ON sync_history(addr, id);",
    "CREATE TABLE history (
        id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at_ms     BIGINT NOT NULL,
        actor     TEXT   NOT NULL,
        action    TEXT   NOT NULL,
        person_id BIGINT,
        detail    TEXT   NOT NULL
    );
    CREATE INDEX history_by_person ON history(person_id, id);",
    "CREATE TABLE logins (
        login     TEXT   COLLATE \"C\" NOT NULL PRIMARY KEY,
        person_id BIGINT NOT NULL UNIQUE REFERENCES people(id) ON DELETE CASCADE
    );",
    "CREATE TABLE cards (
        person_id BIGINT NOT NULL PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
        bits      BIGINT NOT NULL CHECK (bits BETWEEN 1 AND 128),
        data      BYTEA  NOT NULL CHECK (octet_length(data) = (bits + 7) / 8),
        UNIQUE (bits, data)
    );",
    "ALTER TABLE devices ADD COLUMN restricted BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE access_groups (
        id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name       TEXT   NOT NULL,
        name_key   TEXT   COLLATE \"C\" NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE group_members (
        group_id  BIGINT NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
        person_id BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, person_id)
    );
    CREATE INDEX group_members_by_person ON group_members(person_id);
    CREATE TABLE door_rules (
        addr     TEXT   COLLATE \"C\" NOT NULL REFERENCES devices(addr) ON DELETE CASCADE,
        group_id BIGINT NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
        schedule TEXT   NOT NULL,
        PRIMARY KEY (addr, group_id)
    );
    CREATE TABLE validity (
        person_id   BIGINT NOT NULL PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
        valid_from  TEXT,
        valid_until TEXT
    );",
    "ALTER TABLE templates ADD COLUMN origin TEXT NOT NULL DEFAULT 'enrolment';
    CREATE TABLE proposals (
        id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        device          TEXT   COLLATE \"C\" NOT NULL,
        device_proposal BIGINT NOT NULL,
        person_id       BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        model_id        TEXT   COLLATE \"C\" NOT NULL,
        embedding       BYTEA  NOT NULL CHECK (octet_length(embedding) = 2048),
        granted_ms      BIGINT NOT NULL,
        score           DOUBLE PRECISION NOT NULL,
        threshold       DOUBLE PRECISION NOT NULL,
        face_px         BIGINT NOT NULL,
        sharpness       DOUBLE PRECISION NOT NULL,
        yaw_deg         DOUBLE PRECISION NOT NULL,
        status          TEXT   NOT NULL DEFAULT 'pending',
        template_id     BIGINT,
        decided_ms      BIGINT,
        UNIQUE (device, device_proposal)
    );
    CREATE INDEX proposals_by_person ON proposals(person_id);",
];

impl Registry {
    pub(super) fn migrate(&mut self) -> Result<(), RegistryError> {
        if self.db.is_postgres() {
            return self.migrate_postgres();
        }
        let path = self.location.clone();
        let layout = |db: &super::db::Db| db.with_sqlite(|c| check_layout(c, &path)).unwrap_or(Ok(0));
        // Fast path without the write lock: an up-to-date registry is the common case.
        if layout(&self.db)? == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = self.db.write_tx()?;
        // Re-check under the lock: another process may have migrated in the meantime.
        let from = layout(&tx)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            tx.batch(sql)?;
            tracing::info!(path = %path.display(), version = i + 1, "registry schema migrated");
        }
        tx.batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        tx.commit()
    }

    /// The PostgreSQL schema: `registry_meta` holds what SQLite's pragmas hold (application id,
    /// schema version) and the registry key's check value. Under the write lock, so two
    /// administrators opening a new registry at once migrate it once.
    fn migrate_postgres(&mut self) -> Result<(), RegistryError> {
        let location = self.location.clone();
        let not_ours = || RegistryError::NotARegistry { path: location.clone() };
        // Fast path without the write lock, as on SQLite: opening an up-to-date registry must not
        // queue behind another administrator's write.
        if self.db.query_one("SELECT to_regclass('registry_meta') IS NOT NULL", &[])?.get::<i64>(0)? != 0 {
            if let Some(row) = self.db.query_opt("SELECT application, schema_version FROM registry_meta", &[])? {
                if (row.get::<i64>(0)?, row.get::<i64>(1)?) == (APPLICATION_ID, i64::from(SCHEMA_VERSION)) {
                    return Ok(());
                }
            }
        }
        let tx = self.db.write_tx()?;
        let meta = tx.query_one("SELECT to_regclass('registry_meta') IS NOT NULL", &[])?.get::<i64>(0)? != 0;
        if !meta {
            // A database already holding a table of ours, but no registry_meta, is someone else's.
            let ours = tx.query_one("SELECT to_regclass('people') IS NOT NULL", &[])?.get::<i64>(0)? != 0;
            if ours {
                return Err(not_ours());
            }
            tx.batch(
                "CREATE TABLE registry_meta (
                    application    BIGINT NOT NULL,
                    schema_version BIGINT NOT NULL,
                    key_check      BYTEA
                )",
            )?;
            tx.execute(
                "INSERT INTO registry_meta (application, schema_version) VALUES (?1, 0)",
                args![APPLICATION_ID],
            )?;
        }
        let row = tx.query_opt("SELECT application, schema_version FROM registry_meta", &[])?.ok_or_else(not_ours)?;
        let (app, version): (i64, i64) = (row.get(0)?, row.get(1)?);
        let version = u32::try_from(version).map_err(|_| not_ours())?;
        if app != APPLICATION_ID {
            return Err(not_ours());
        }
        if version > SCHEMA_VERSION {
            return Err(RegistryError::NewerSchema { path: location, found: version, supported: SCHEMA_VERSION });
        }
        for (i, sql) in MIGRATIONS_PG.iter().enumerate().skip(version as usize) {
            tx.batch(sql)?;
            tracing::info!(registry = %location.display(), version = i + 1, "registry schema migrated");
        }
        tx.execute("UPDATE registry_meta SET schema_version = ?1", args![SCHEMA_VERSION])?;
        tx.commit()
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
