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

use std::fmt;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use facegate_proto::{
    DisplayName, Embedding, Key, ModelId, PersonId, Template, TemplateId, DISPLAY_NAME_LEN, EMBEDDING_DIM, KEY_LEN,
    MODEL_ID_LEN,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

/// Schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// [`SyncRecord::outcome`] of a sync whose `SyncCommit` the device accepted.
pub const OUTCOME_COMMITTED: &str = "committed";

/// Allowed deviation of an embedding's L2 norm from 1. Models emit normalised `f32` vectors (error ~1e-6); anything
/// further off is a caller bug (raw, unnormalised output), which would silently skew every similarity score.
pub const UNIT_NORM_TOLERANCE: f64 = 1e-3;

/// How long a command waits for another `facegate` process holding the database lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `PRAGMA application_id` of a Facegate registry: "FGRG".
const APPLICATION_ID: i64 = 0x4647_5247;

const EMBEDDING_BYTES: usize = EMBEDDING_DIM * 4;
const DIGEST_LEN: usize = 32;

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
];

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
    #[error("registry {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is not a Facegate registry (not an SQLite database, or one belonging to another program)", path.display())]
    NotARegistry { path: PathBuf },
    #[error(
        "registry {} has schema version {found}, newer than the {supported} this facegate understands; \
         use a newer facegate",
        path.display()
    )]
    NewerSchema { path: PathBuf, found: u32, supported: u32 },
    #[error("registry database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("registry data is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid name {name:?}: {problem}")]
    InvalidName { name: String, problem: TextProblem },
    #[error("a person named {name:?} already exists (names are compared case-insensitively)")]
    DuplicateName { name: String },
    #[error("no person named {0:?}")]
    PersonNotFound(String),
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
}

/// An enrolled person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    pub created_ms: i64,
    /// Number of templates (all models).
    pub templates: u32,
}

/// A template as stored: the exact `f32` embedding, not the quantised wire form.
#[derive(Clone, PartialEq)]
pub struct StoredTemplate {
    pub id: TemplateId,
    pub person_id: PersonId,
    pub model_id: String,
    pub embedding: [f32; EMBEDDING_DIM],
    /// Where the embedding came from, e.g. the photo's file name.
    pub source: String,
    pub quality: Option<f32>,
    pub created_ms: i64,
}

impl fmt::Debug for StoredTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 512 floats are noise in logs; a prefix identifies the vector.
        f.debug_struct("StoredTemplate")
            .field("id", &self.id)
            .field("person_id", &self.person_id)
            .field("model_id", &self.model_id)
            .field("embedding_head", &&self.embedding[..4])
            .field("source", &self.source)
            .field("quality", &self.quality)
            .field("created_ms", &self.created_ms)
            .finish()
    }
}

/// A paired device. `key` is the pairing secret: it never appears in `Debug` output.
#[derive(Clone)]
pub struct DeviceRecord {
    pub addr: String,
    pub device_id: String,
    pub model_id: String,
    pub key: Key,
    pub paired_ms: i64,
    /// Store generation after the last committed sync.
    pub last_generation: Option<u64>,
    /// [`SyncDigest`](facegate_proto::SyncDigest) of the template set last committed.
    pub last_digest: Option<[u8; DIGEST_LEN]>,
    pub last_sync_ms: Option<i64>,
}

impl fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("addr", &self.addr)
            .field("device_id", &self.device_id)
            .field("model_id", &self.model_id)
            .field("key", &format_args!("<redacted>"))
            .field("paired_ms", &self.paired_ms)
            .field("last_generation", &self.last_generation)
            .field("last_digest", &self.last_digest.map(hex::encode))
            .field("last_sync_ms", &self.last_sync_ms)
            .finish()
    }
}

/// One sync attempt, as kept in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    pub addr: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// Free-form outcome; [`OUTCOME_COMMITTED`] also updates the device's sync state.
    pub outcome: String,
    pub added: u32,
    pub removed: u32,
    pub changed: u32,
    /// Store generation reported by the device (required when committed).
    pub generation: Option<u64>,
    /// Digest of the template set sent (required when committed).
    pub digest: Option<[u8; DIGEST_LEN]>,
}

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

    fn migrate(&mut self) -> Result<(), RegistryError> {
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

    fn write_tx(&mut self) -> Result<Transaction<'_>, RegistryError> {
        // IMMEDIATE takes the write lock up front (waiting up to BUSY_TIMEOUT) instead of failing with
        // SQLITE_BUSY when a read has to be upgraded while another process writes.
        Ok(self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    // ---- people ----

    /// Adds a person. The name is trimmed and must be unique ignoring case.
    pub fn add_person(&mut self, name: &str) -> Result<Person, RegistryError> {
        let name = validate_name(name)?;
        let tx = self.write_tx()?;
        let person = insert_person(&tx, name, now_ms())?;
        tx.commit()?;
        Ok(person)
    }

    /// Looks a person up by name (ignoring case and surrounding whitespace).
    pub fn person(&self, name: &str) -> Result<Option<Person>, RegistryError> {
        find_person_by_name(&self.conn, name)
    }

    pub fn person_by_id(&self, id: PersonId) -> Result<Option<Person>, RegistryError> {
        find_person_by_id(&self.conn, id)
    }

    /// All people, ordered by name (ignoring case).
    pub fn people(&self) -> Result<Vec<Person>, RegistryError> {
        let mut stmt = self.conn.prepare(&format!("{PERSON_SELECT} ORDER BY p.name_key, p.id"))?;
        let rows = stmt.query_map([], person_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Renames a person; changing only the case of the name is allowed.
    pub fn rename_person(&mut self, old: &str, new: &str) -> Result<Person, RegistryError> {
        let new = validate_name(new)?;
        let tx = self.write_tx()?;
        let person = find_person_by_name(&tx, old)?.ok_or_else(|| RegistryError::PersonNotFound(old.trim().into()))?;
        tx.execute("UPDATE people SET name = ?1, name_key = ?2 WHERE id = ?3", params![new, name_key(new), person.id])
            .map_err(|e| duplicate_or(e, new))?;
        tx.commit()?;
        Ok(Person { name: new.to_owned(), ..person })
    }

    /// Removes a person and (by cascade) all their templates; returns how many templates went with them.
    pub fn remove_person(&mut self, name: &str) -> Result<u32, RegistryError> {
        let tx = self.write_tx()?;
        let person =
            find_person_by_name(&tx, name)?.ok_or_else(|| RegistryError::PersonNotFound(name.trim().into()))?;
        tx.execute("DELETE FROM people WHERE id = ?1", [person.id])?;
        tx.commit()?;
        tracing::info!(person = person.id, templates = person.templates, "person removed");
        Ok(person.templates)
    }

    // ---- templates ----

    /// Adds one template for an existing person. The embedding must be [`EMBEDDING_DIM`] finite values of unit
    /// norm (within [`UNIT_NORM_TOLERANCE`]); it is stored exactly as given.
    pub fn add_template(
        &mut self,
        person: PersonId,
        model_id: &str,
        embedding: &[f32],
        source: &str,
        quality: Option<f32>,
    ) -> Result<TemplateId, RegistryError> {
        validate_model_id(model_id)?;
        let blob = encode_embedding(0, embedding)?;
        validate_quality(0, quality)?;
        let tx = self.write_tx()?;
        if find_person_by_id(&tx, person)?.is_none() {
            return Err(RegistryError::PersonIdNotFound(person));
        }
        let id = insert_template(&tx, person, model_id, &blob, source, quality, now_ms())?;
        tx.commit()?;
        Ok(id)
    }

    /// Enrols `name` (created if absent) with all `embeddings` as `(embedding, source, quality)`, in one
    /// transaction: on any error nothing is stored, not even the new person.
    pub fn enroll(
        &mut self,
        name: &str,
        model_id: &str,
        embeddings: &[(Vec<f32>, String, Option<f32>)],
    ) -> Result<(Person, Vec<TemplateId>), RegistryError> {
        let name = validate_name(name)?;
        validate_model_id(model_id)?;
        if embeddings.is_empty() {
            return Err(RegistryError::EmptyEnrollment);
        }
        // Validate the whole batch before taking the write lock.
        let blobs = embeddings
            .iter()
            .enumerate()
            .map(|(i, (e, _, q))| {
                validate_quality(i, *q)?;
                encode_embedding(i, e)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now = now_ms();
        let tx = self.write_tx()?;
        let person_id = match find_person_by_name(&tx, name)? {
            Some(p) => p.id,
            None => insert_person(&tx, name, now)?.id,
        };
        let mut ids = Vec::with_capacity(blobs.len());
        for (blob, (_, source, quality)) in blobs.iter().zip(embeddings) {
            ids.push(insert_template(&tx, person_id, model_id, blob, source, *quality, now)?);
        }
        // Re-read inside the transaction for the exact template count.
        let person = find_person_by_id(&tx, person_id)?.ok_or(RegistryError::PersonIdNotFound(person_id))?;
        tx.commit()?;
        tracing::info!(person = person.id, templates = ids.len(), model_id, "enrolled");
        Ok((person, ids))
    }

    /// All templates of `model_id`, ordered by id.
    pub fn templates(&self, model_id: &str) -> Result<Vec<StoredTemplate>, RegistryError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, person_id, model_id, embedding, source, quality, created_ms
             FROM templates WHERE model_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([model_id], |r| {
            Ok((
                r.get::<_, TemplateId>(0)?,
                r.get::<_, PersonId>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<f64>>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, person_id, model_id, blob, source, quality, created_ms) = row?;
            out.push(StoredTemplate {
                id,
                person_id,
                model_id,
                embedding: decode_embedding(id, &blob)?,
                source,
                // Stored from an f32, so the narrowing is exact.
                quality: quality.map(|q| q as f32),
                created_ms,
            });
        }
        Ok(out)
    }

    /// Number of templates over all models.
    pub fn template_count(&self) -> Result<u32, RegistryError> {
        Ok(self.conn.query_row("SELECT count(*) FROM templates", [], |r| r.get(0))?)
    }

    /// The distinct model ids that have templates, sorted.
    pub fn model_ids(&self) -> Result<Vec<String>, RegistryError> {
        let mut stmt = self.conn.prepare("SELECT DISTINCT model_id FROM templates ORDER BY model_id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The wire templates of `model_id`, ordered by id: exactly what a device sync sends (and digests).
    pub fn wire_templates(&self, model_id: &str) -> Result<Vec<Template>, RegistryError> {
        validate_model_id(model_id)?;
        // Cannot fail after validation; mapped anyway rather than unwrapped.
        let model = ModelId::try_from(model_id).map_err(|()| {
            invalid_model_id(model_id, TextProblem::TooLong { len: model_id.len(), max: MODEL_ID_LEN })
        })?;
        let mut stmt = self.conn.prepare(
            "SELECT t.id, t.person_id, p.name, t.embedding
             FROM templates t JOIN people p ON p.id = t.person_id
             WHERE t.model_id = ?1 ORDER BY t.id",
        )?;
        let rows = stmt.query_map([model_id], |r| {
            Ok((r.get::<_, TemplateId>(0)?, r.get::<_, PersonId>(1)?, r.get::<_, String>(2)?, r.get::<_, Vec<u8>>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, person_id, name, blob) = row?;
            // Names are validated to fit on insert; truncating one here would send a different name than stored.
            let display_name = DisplayName::try_from(name.as_str()).map_err(|()| {
                RegistryError::Corrupt(format!("person {person_id} has a name longer than the wire allows"))
            })?;
            let embedding = Embedding::quantize(&decode_embedding(id, &blob)?);
            out.push(Template { id, person_id, display_name, model_id: model.clone(), embedding });
        }
        Ok(out)
    }

    // ---- devices ----

    /// Records a (re-)pairing. If the address now holds a different device or model, its previous sync state is
    /// forgotten, since it describes another template store.
    pub fn upsert_device(
        &mut self,
        addr: &str,
        device_id: &str,
        model_id: &str,
        key: &Key,
    ) -> Result<(), RegistryError> {
        validate_addr(addr)?;
        validate_model_id(model_id)?;
        self.conn.execute(
            "INSERT INTO devices (addr, device_id, model_id, pairing_key, paired_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (addr) DO UPDATE SET
                 last_generation = CASE WHEN device_id = excluded.device_id AND model_id = excluded.model_id
                                        THEN last_generation END,
                 last_digest = CASE WHEN device_id = excluded.device_id AND model_id = excluded.model_id
                                    THEN last_digest END,
                 last_sync_ms = CASE WHEN device_id = excluded.device_id AND model_id = excluded.model_id
                                     THEN last_sync_ms END,
                 device_id = excluded.device_id,
                 model_id = excluded.model_id,
                 pairing_key = excluded.pairing_key,
                 paired_ms = excluded.paired_ms",
            params![addr, device_id, model_id, key.as_slice(), now_ms()],
        )?;
        tracing::info!(addr, device_id, model_id, "device paired");
        Ok(())
    }

    pub fn device(&self, addr: &str) -> Result<Option<DeviceRecord>, RegistryError> {
        let raw = self.conn.query_row(&format!("{DEVICE_SELECT} WHERE addr = ?1"), [addr], raw_device).optional()?;
        raw.map(RawDevice::into_record).transpose()
    }

    /// All paired devices, ordered by address.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, RegistryError> {
        let mut stmt = self.conn.prepare(&format!("{DEVICE_SELECT} ORDER BY addr"))?;
        let rows = stmt.query_map([], raw_device)?;
        rows.map(|r| r.map_err(RegistryError::from).and_then(RawDevice::into_record)).collect()
    }

    /// Appends `rec` to the sync history. A [`OUTCOME_COMMITTED`] record must carry the generation and digest and
    /// name a paired device, whose sync state is updated in the same transaction.
    pub fn record_sync(&mut self, rec: &SyncRecord) -> Result<(), RegistryError> {
        let committed = rec.outcome == OUTCOME_COMMITTED;
        let state = if committed {
            let generation =
                rec.generation.ok_or(RegistryError::InvalidSyncRecord("committed without a generation"))?;
            let digest = rec.digest.ok_or(RegistryError::InvalidSyncRecord("committed without a digest"))?;
            Some((generation, digest))
        } else {
            None
        };
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO sync_history
                 (addr, started_ms, finished_ms, outcome, added, removed, changed, generation, digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                rec.addr,
                rec.started_ms,
                rec.finished_ms,
                rec.outcome,
                rec.added,
                rec.removed,
                rec.changed,
                rec.generation.map(generation_to_sql),
                rec.digest.as_ref().map(|d| d.as_slice()),
            ],
        )?;
        if let Some((generation, digest)) = state {
            update_synced(&tx, &rec.addr, generation, &digest, rec.finished_ms.unwrap_or(rec.started_ms))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets a device's sync state directly (e.g. after reading it back from the device), stamped now.
    pub fn set_device_synced(&mut self, addr: &str, generation: u64, digest: [u8; 32]) -> Result<(), RegistryError> {
        update_synced(&self.conn, addr, generation, &digest, now_ms())
    }

    /// The latest `limit` sync records of `addr`, newest first.
    pub fn sync_history(&self, addr: &str, limit: usize) -> Result<Vec<SyncRecord>, RegistryError> {
        let mut stmt = self.conn.prepare(
            "SELECT addr, started_ms, finished_ms, outcome, added, removed, changed, generation, digest
             FROM sync_history WHERE addr = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![addr, limit], |r| {
            Ok((
                SyncRecord {
                    addr: r.get(0)?,
                    started_ms: r.get(1)?,
                    finished_ms: r.get(2)?,
                    outcome: r.get(3)?,
                    added: r.get(4)?,
                    removed: r.get(5)?,
                    changed: r.get(6)?,
                    generation: r.get::<_, Option<i64>>(7)?.map(generation_from_sql),
                    digest: None,
                },
                r.get::<_, Option<Vec<u8>>>(8)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (rec, digest) = row?;
            out.push(SyncRecord { digest: digest.map(|d| digest_from_blob("sync_history", &d)).transpose()?, ..rec });
        }
        Ok(out)
    }
}

// ---- opening ----

/// Creates missing parent directories (0700) and the file (0600), and restricts an existing file to 0600.
fn prepare_file(path: &Path) -> Result<(), RegistryError> {
    let io = |source| RegistryError::Io { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Only directories created here get 0700; an existing parent is the user's business.
        DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(io)?;
    }
    // Never truncate: an existing file is either our data or someone else's, refused untouched later.
    let file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(RegistryError::NotARegistry { path: path.to_path_buf() });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:o}"),
            "registry holds biometric templates and pairing keys but was accessible to other users; setting mode 600"
        );
        // fchmod on the handle we checked, not a second path lookup.
        file.set_permissions(Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

/// Classifies the file and returns its schema version: ours (any version up to [`SCHEMA_VERSION`]) or a fresh
/// empty database (version 0). Reads only.
fn check_layout(conn: &Connection, path: &Path) -> Result<u32, RegistryError> {
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

fn not_a_db_or(path: &Path, e: rusqlite::Error) -> RegistryError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => RegistryError::NotARegistry { path: path.to_path_buf() },
        _ => RegistryError::Sqlite(e),
    }
}

// ---- validation ----

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

/// Trims and validates a display name; returns the trimmed name.
fn validate_name(raw: &str) -> Result<&str, RegistryError> {
    let name = raw.trim();
    check_text(name, Some(DISPLAY_NAME_LEN))
        .map_err(|problem| RegistryError::InvalidName { name: raw.into(), problem })?;
    Ok(name)
}

/// Key for case-insensitive uniqueness and lookup. Unicode lowercase (not full case folding or normalisation);
/// changing this rule needs a migration that recomputes `people.name_key`.
fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

fn invalid_model_id(model_id: &str, problem: TextProblem) -> RegistryError {
    RegistryError::InvalidModelId { model_id: model_id.into(), problem }
}

/// Model ids travel in every wire template, so they must fit [`ModelId`] without truncation.
fn validate_model_id(model_id: &str) -> Result<(), RegistryError> {
    check_text(model_id, Some(MODEL_ID_LEN)).map_err(|p| invalid_model_id(model_id, p))
}

fn validate_addr(addr: &str) -> Result<(), RegistryError> {
    check_text(addr, None).map_err(|problem| RegistryError::InvalidAddress { addr: addr.into(), problem })
}

fn validate_quality(index: usize, quality: Option<f32>) -> Result<(), RegistryError> {
    match quality {
        Some(value) if !value.is_finite() => Err(RegistryError::InvalidQuality { index, value }),
        _ => Ok(()),
    }
}

/// Validates an embedding and encodes it as the storage BLOB (little-endian `f32`).
fn encode_embedding(index: usize, v: &[f32]) -> Result<Vec<u8>, RegistryError> {
    let err = |problem| RegistryError::InvalidEmbedding { index, problem };
    if v.len() != EMBEDDING_DIM {
        return Err(err(EmbeddingProblem::WrongLength { len: v.len() }));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(err(EmbeddingProblem::NotFinite { index: i }));
    }
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if (norm - 1.0).abs() > UNIT_NORM_TOLERANCE {
        return Err(err(EmbeddingProblem::NotUnit { norm }));
    }
    Ok(v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

fn decode_embedding(id: TemplateId, blob: &[u8]) -> Result<[f32; EMBEDDING_DIM], RegistryError> {
    let corrupt = |what: &str| RegistryError::Corrupt(format!("template {id}: {what}"));
    if blob.len() != EMBEDDING_BYTES {
        return Err(corrupt("embedding has the wrong size"));
    }
    let mut out = [0.0f32; EMBEDDING_DIM];
    for (o, chunk) in out.iter_mut().zip(blob.chunks_exact(4)) {
        *o = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    if out.iter().any(|x| !x.is_finite()) {
        return Err(corrupt("embedding has non-finite values"));
    }
    Ok(out)
}

fn digest_from_blob(table: &str, blob: &[u8]) -> Result<[u8; DIGEST_LEN], RegistryError> {
    <[u8; DIGEST_LEN]>::try_from(blob).map_err(|_| RegistryError::Corrupt(format!("{table}: digest is not 32 bytes")))
}

/// Generations are `u64` on the wire; SQLite integers are `i64`. Bit-casting is lossless both ways, and nothing
/// compares generations in SQL, so a device reporting a huge generation cannot make a record unstorable.
fn generation_to_sql(g: u64) -> i64 {
    g as i64
}

fn generation_from_sql(g: i64) -> u64 {
    g as u64
}

fn now_ms() -> i64 {
    // A clock before 1970 is a misconfigured host, not a reason to fail an enrolment.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// ---- row helpers (shared by plain connections and transactions) ----

const PERSON_SELECT: &str =
    "SELECT p.id, p.name, p.created_ms, (SELECT count(*) FROM templates t WHERE t.person_id = p.id) FROM people p";

fn person_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person { id: r.get(0)?, name: r.get(1)?, created_ms: r.get(2)?, templates: r.get(3)? })
}

fn find_person_by_name(conn: &Connection, name: &str) -> Result<Option<Person>, RegistryError> {
    let sql = format!("{PERSON_SELECT} WHERE p.name_key = ?1");
    Ok(conn.query_row(&sql, [name_key(name)], person_from_row).optional()?)
}

fn find_person_by_id(conn: &Connection, id: PersonId) -> Result<Option<Person>, RegistryError> {
    let sql = format!("{PERSON_SELECT} WHERE p.id = ?1");
    Ok(conn.query_row(&sql, [id], person_from_row).optional()?)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn duplicate_or(e: rusqlite::Error, name: &str) -> RegistryError {
    if is_unique_violation(&e) {
        RegistryError::DuplicateName { name: name.into() }
    } else {
        RegistryError::Sqlite(e)
    }
}

/// The id of the row just inserted, which must fit the protocol's `u32` (the caller's transaction rolls back
/// otherwise, leaving the id space exhausted rather than wrapping onto old ids).
fn inserted_id(conn: &Connection, what: &'static str) -> Result<u32, RegistryError> {
    u32::try_from(conn.last_insert_rowid()).map_err(|_| RegistryError::IdsExhausted(what))
}

/// Inserts a validated (trimmed) name.
fn insert_person(conn: &Connection, name: &str, now: i64) -> Result<Person, RegistryError> {
    conn.execute(
        "INSERT INTO people (name, name_key, created_ms) VALUES (?1, ?2, ?3)",
        params![name, name_key(name), now],
    )
    .map_err(|e| duplicate_or(e, name))?;
    let id = inserted_id(conn, "person")?;
    Ok(Person { id, name: name.to_owned(), created_ms: now, templates: 0 })
}

fn insert_template(
    conn: &Connection,
    person: PersonId,
    model_id: &str,
    blob: &[u8],
    source: &str,
    quality: Option<f32>,
    now: i64,
) -> Result<TemplateId, RegistryError> {
    conn.execute(
        "INSERT INTO templates (person_id, model_id, embedding, source, quality, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![person, model_id, blob, source, quality.map(f64::from), now],
    )?;
    inserted_id(conn, "template")
}

fn update_synced(
    conn: &Connection,
    addr: &str,
    generation: u64,
    digest: &[u8; DIGEST_LEN],
    at_ms: i64,
) -> Result<(), RegistryError> {
    let n = conn.execute(
        "UPDATE devices SET last_generation = ?2, last_digest = ?3, last_sync_ms = ?4 WHERE addr = ?1",
        params![addr, generation_to_sql(generation), digest.as_slice(), at_ms],
    )?;
    if n == 0 {
        return Err(RegistryError::DeviceNotFound(addr.into()));
    }
    Ok(())
}

const DEVICE_SELECT: &str =
    "SELECT addr, device_id, model_id, pairing_key, paired_ms, last_generation, last_digest, last_sync_ms FROM devices";

/// A device row before its BLOBs are checked.
struct RawDevice {
    addr: String,
    device_id: String,
    model_id: String,
    key: Vec<u8>,
    paired_ms: i64,
    last_generation: Option<i64>,
    last_digest: Option<Vec<u8>>,
    last_sync_ms: Option<i64>,
}

fn raw_device(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawDevice> {
    Ok(RawDevice {
        addr: r.get(0)?,
        device_id: r.get(1)?,
        model_id: r.get(2)?,
        key: r.get(3)?,
        paired_ms: r.get(4)?,
        last_generation: r.get(5)?,
        last_digest: r.get(6)?,
        last_sync_ms: r.get(7)?,
    })
}

impl RawDevice {
    fn into_record(self) -> Result<DeviceRecord, RegistryError> {
        let key = <Key>::try_from(self.key.as_slice()).map_err(|_| {
            RegistryError::Corrupt(format!("device {:?}: pairing key is not {KEY_LEN} bytes", self.addr))
        })?;
        let last_digest = self.last_digest.map(|d| digest_from_blob("devices", &d)).transpose()?;
        Ok(DeviceRecord {
            addr: self.addr,
            device_id: self.device_id,
            model_id: self.model_id,
            key,
            paired_ms: self.paired_ms,
            last_generation: self.last_generation.map(generation_from_sql),
            last_digest,
            last_sync_ms: self.last_sync_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_proto::{cosine, SyncDigest};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use tempfile::TempDir;

    const MODEL: &str = "arcface-r100-v2";

    fn tmp() -> (TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.sqlite3");
        (dir, path)
    }

    fn open(path: &Path) -> Registry {
        Registry::open(path).expect("open registry")
    }

    /// A deterministic random unit vector.
    fn unit(seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let v: Vec<f64> = (0..EMBEDDING_DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter().map(|x| (x / norm) as f32).collect()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn digest(templates: &[Template]) -> [u8; 32] {
        let mut d = SyncDigest::new();
        for t in templates {
            d.update(t);
        }
        d.finalize()
    }

    fn raw_template_rows(reg: &Registry) -> i64 {
        reg.conn.query_row("SELECT count(*) FROM templates", [], |r| r.get(0)).expect("count")
    }

    #[test]
    fn open_creates_private_file_and_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/registry.sqlite3");
        let reg = open(&path);
        assert_eq!(reg.path(), path);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(reg.schema_version().expect("version"), SCHEMA_VERSION);
        let app: i64 = reg.conn.pragma_query_value(None, "application_id", |r| r.get(0)).expect("app id");
        assert_eq!(app, APPLICATION_ID);
    }

    #[test]
    fn rollback_journal_is_private_and_transient() {
        let (_dir, path) = tmp();
        let reg = open(&path);
        let journal = PathBuf::from(format!("{}-journal", path.display()));
        reg.conn
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO people (name, name_key, created_ms) VALUES ('a', 'a', 0);")
            .expect("write");
        assert_eq!(mode(&journal), 0o600, "SQLite should give the journal the database's mode");
        reg.conn.execute_batch("COMMIT").expect("commit");
        assert!(!journal.exists());
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        assert!(!wal.exists());
    }

    #[test]
    fn removed_embeddings_do_not_linger_in_the_file() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let v = unit(42);
        reg.enroll("alice", MODEL, &[(v.clone(), "a.jpg".into(), None)]).expect("enroll");
        let needle: Vec<u8> = v[..8].iter().flat_map(|x| x.to_le_bytes()).collect();
        let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle.as_slice());
        assert!(contains(&std::fs::read(&path).expect("read")));
        reg.remove_person("alice").expect("remove");
        drop(reg);
        assert!(!contains(&std::fs::read(&path).expect("read")), "secure_delete should zero the freed pages");
    }

    #[test]
    fn open_restricts_loose_permissions() {
        let (_dir, path) = tmp();
        drop(open(&path));
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("chmod");
        drop(open(&path));
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn default_path_ends_in_registry_file() {
        if let Some(p) = Registry::default_path() {
            assert!(p.ends_with("registry.sqlite3"));
        }
    }

    #[test]
    fn reopen_keeps_data_and_migrations_are_idempotent() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let (alice, ids) = reg.enroll("Alice", MODEL, &[(unit(1), "a.jpg".into(), Some(0.8))]).expect("enroll");
        reg.migrate().expect("second migrate is a no-op");
        drop(reg);
        for _ in 0..2 {
            let reg = open(&path);
            assert_eq!(reg.schema_version().expect("version"), SCHEMA_VERSION);
            assert_eq!(reg.person("alice").expect("lookup"), Some(Person { templates: 1, ..alice.clone() }));
            let stored = reg.templates(MODEL).expect("templates");
            assert_eq!(stored.len(), 1);
            assert_eq!(stored[0].id, ids[0]);
            assert_eq!(stored[0].source, "a.jpg");
            assert_eq!(stored[0].quality, Some(0.8));
            // Stored exactly, bit for bit.
            assert_eq!(stored[0].embedding.to_vec(), unit(1));
        }
    }

    #[test]
    fn newer_schema_is_refused_untouched() {
        let (_dir, path) = tmp();
        let reg = open(&path);
        reg.conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).expect("bump");
        drop(reg);
        let before = std::fs::read(&path).expect("read");
        match Registry::open(&path) {
            Err(RegistryError::NewerSchema { found, supported, .. }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn non_sqlite_file_is_refused_untouched() {
        let (_dir, path) = tmp();
        let junk = b"facegate export v1\nthis is certainly not an SQLite database\n".repeat(40);
        std::fs::write(&path, &junk).expect("write");
        std::fs::set_permissions(&path, Permissions::from_mode(0o600)).expect("chmod");
        let err = Registry::open(&path).expect_err("must refuse");
        assert!(matches!(&err, RegistryError::NotARegistry { path: p } if p == &path), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(std::fs::read(&path).expect("read"), junk);
    }

    #[test]
    fn foreign_sqlite_database_is_refused() {
        let (_dir, path) = tmp();
        let other = Connection::open(&path).expect("open");
        other.execute_batch("CREATE TABLE notes (body TEXT);").expect("create");
        drop(other);
        assert!(matches!(Registry::open(&path), Err(RegistryError::NotARegistry { .. })));
    }

    #[test]
    fn directory_is_refused() {
        let (dir, _) = tmp();
        assert!(Registry::open(dir.path()).is_err());
    }

    #[test]
    fn names_are_validated_and_unique_ignoring_case() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let alice = reg.add_person("  Alice Émile ").expect("add");
        assert_eq!(alice.name, "Alice Émile");
        assert!(matches!(reg.add_person("alice émile"), Err(RegistryError::DuplicateName { .. })));
        assert!(matches!(reg.add_person("ALICE ÉMILE"), Err(RegistryError::DuplicateName { .. })));
        assert_eq!(reg.person("ALICE émile").expect("lookup").map(|p| p.id), Some(alice.id));

        let invalid = |r: Result<Person, RegistryError>| match r {
            Err(RegistryError::InvalidName { problem, .. }) => problem,
            other => panic!("expected InvalidName, got {other:?}"),
        };
        assert_eq!(invalid(reg.add_person("")), TextProblem::Empty);
        assert_eq!(invalid(reg.add_person("   \t")), TextProblem::Empty);
        assert_eq!(invalid(reg.add_person("Bob\nSmith")), TextProblem::ControlChars);
        assert_eq!(invalid(reg.add_person("Bob\u{1b}[2J")), TextProblem::ControlChars);
        assert_eq!(invalid(reg.add_person("evil\u{202E}gnp.exe")), TextProblem::ControlChars);
        assert_eq!(invalid(reg.add_person(&"x".repeat(49))), TextProblem::TooLong { len: 49, max: 48 });
        // 24 two-byte chars = 48 bytes fits; 25 does not (the limit is bytes, not chars).
        reg.add_person(&"é".repeat(24)).expect("48 bytes fit");
        assert_eq!(invalid(reg.add_person(&"é".repeat(25))), TextProblem::TooLong { len: 50, max: 48 });
        assert_eq!(reg.people().expect("people").len(), 2);
    }

    #[test]
    fn people_are_ordered_by_name_ignoring_case() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        for n in ["carol", "Bob", "alice", "Dave"] {
            reg.add_person(n).expect("add");
        }
        let names: Vec<_> = reg.people().expect("people").into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["alice", "Bob", "carol", "Dave"]);
    }

    #[test]
    fn rename_rules() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let alice = reg.add_person("alice").expect("add");
        reg.add_person("Bob").expect("add");
        reg.add_template(alice.id, MODEL, &unit(7), "a.png", None).expect("template");
        assert!(matches!(reg.rename_person("alice", "BOB"), Err(RegistryError::DuplicateName { .. })));
        assert!(matches!(reg.rename_person("nobody", "Carol"), Err(RegistryError::PersonNotFound(_))));
        assert!(matches!(reg.rename_person("alice", ""), Err(RegistryError::InvalidName { .. })));
        // A case-only change of the same person is fine.
        let renamed = reg.rename_person("ALICE", "Alice").expect("case change");
        assert_eq!((renamed.id, renamed.name.as_str(), renamed.templates), (alice.id, "Alice", 1));
        let renamed = reg.rename_person("alice", "Alice Smith").expect("rename");
        assert_eq!(reg.person_by_id(alice.id).expect("by id"), Some(renamed));
        assert_eq!(reg.person("alice").expect("lookup"), None);
        assert_eq!(reg.wire_templates(MODEL).expect("wire")[0].display_name.as_str(), "Alice Smith");
    }

    #[test]
    fn remove_cascades_and_ids_are_not_reused() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let embeddings: Vec<_> = (0..3).map(|i| (unit(i), format!("{i}.jpg"), None)).collect();
        let (alice, alice_ids) = reg.enroll("alice", MODEL, &embeddings).expect("enroll");
        let (bob, bob_ids) = reg.enroll("bob", MODEL, &embeddings[..1]).expect("enroll");
        assert_eq!(reg.remove_person("ALICE").expect("remove"), 3);
        assert!(matches!(reg.remove_person("alice"), Err(RegistryError::PersonNotFound(_))));
        assert_eq!(raw_template_rows(&reg), 1, "cascade left templates behind");
        assert_eq!(reg.template_count().expect("count"), 1);
        assert_eq!(reg.person_by_id(alice.id).expect("by id"), None);
        assert!(matches!(
            reg.add_template(alice.id, MODEL, &unit(9), "x", None),
            Err(RegistryError::PersonIdNotFound(id)) if id == alice.id
        ));

        // Remove the newest rows too: AUTOINCREMENT must not hand their ids out again, even after reopening.
        reg.remove_person("bob").expect("remove");
        drop(reg);
        let mut reg = open(&path);
        let (carol, carol_ids) = reg.enroll("alice", MODEL, &embeddings[..1]).expect("re-enroll");
        assert!(carol.id > bob.id && bob.id > alice.id);
        assert!(carol_ids[0] > bob_ids[0] && bob_ids[0] > alice_ids[2]);
    }

    #[test]
    fn ids_beyond_u32_are_refused() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let p = reg.add_person("alice").expect("add");
        reg.conn
            .execute("UPDATE sqlite_sequence SET seq = 4294967295 WHERE name = 'people'", [])
            .expect("bump person seq");
        reg.add_template(p.id, MODEL, &unit(1), "a", None).expect("first template");
        reg.conn
            .execute("UPDATE sqlite_sequence SET seq = 4294967295 WHERE name = 'templates'", [])
            .expect("bump template seq");
        assert!(matches!(
            reg.add_template(p.id, MODEL, &unit(2), "b", None),
            Err(RegistryError::IdsExhausted("template"))
        ));
        assert!(matches!(reg.add_person("bob"), Err(RegistryError::IdsExhausted("person"))));
        assert_eq!(reg.template_count().expect("count"), 1);
        assert_eq!(reg.people().expect("people").len(), 1);
    }

    #[test]
    fn embeddings_and_model_ids_are_validated() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let p = reg.add_person("alice").expect("add");
        let problem = |r: Result<TemplateId, RegistryError>| match r {
            Err(RegistryError::InvalidEmbedding { index: 0, problem }) => problem,
            other => panic!("expected InvalidEmbedding, got {other:?}"),
        };
        let short = &unit(1)[..511];
        assert_eq!(
            problem(reg.add_template(p.id, MODEL, short, "a", None)),
            EmbeddingProblem::WrongLength { len: 511 }
        );
        let mut nan = unit(1);
        nan[17] = f32::NAN;
        assert_eq!(problem(reg.add_template(p.id, MODEL, &nan, "a", None)), EmbeddingProblem::NotFinite { index: 17 });
        let doubled: Vec<f32> = unit(1).iter().map(|x| x * 2.0).collect();
        assert!(matches!(
            problem(reg.add_template(p.id, MODEL, &doubled, "a", None)),
            EmbeddingProblem::NotUnit { norm } if (norm - 2.0).abs() < 1e-5
        ));
        let zero = vec![0.0f32; EMBEDDING_DIM];
        assert!(matches!(problem(reg.add_template(p.id, MODEL, &zero, "a", None)), EmbeddingProblem::NotUnit { .. }));
        assert!(matches!(
            reg.add_template(p.id, MODEL, &unit(1), "a", Some(f32::INFINITY)),
            Err(RegistryError::InvalidQuality { index: 0, .. })
        ));
        assert!(matches!(
            reg.add_template(p.id, &"m".repeat(MODEL_ID_LEN + 1), &unit(1), "a", None),
            Err(RegistryError::InvalidModelId { problem: TextProblem::TooLong { .. }, .. })
        ));
        assert!(matches!(reg.add_template(p.id, "", &unit(1), "a", None), Err(RegistryError::InvalidModelId { .. })));
        assert!(matches!(reg.wire_templates(&"m".repeat(33)), Err(RegistryError::InvalidModelId { .. })));
        // Slightly off unit (well within tolerance) is accepted and stored as given.
        let near: Vec<f32> = unit(1).iter().map(|x| x * 1.0005).collect();
        reg.add_template(p.id, MODEL, &near, "a", None).expect("near-unit accepted");
        assert_eq!(reg.templates(MODEL).expect("templates")[0].embedding.to_vec(), near);
        assert_eq!(reg.template_count().expect("count"), 1);
    }

    #[test]
    fn enroll_is_all_or_nothing() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let mut bad = unit(2);
        bad[0] = f32::NAN;
        let batch =
            vec![(unit(1), "1.jpg".to_string(), None), (bad, "2.jpg".into(), None), (unit(3), "3.jpg".into(), None)];
        assert!(matches!(
            reg.enroll("alice", MODEL, &batch),
            Err(RegistryError::InvalidEmbedding { index: 1, problem: EmbeddingProblem::NotFinite { index: 0 } })
        ));
        assert_eq!(reg.person("alice").expect("lookup"), None);
        assert_eq!(reg.template_count().expect("count"), 0);
        assert!(matches!(reg.enroll("alice", MODEL, &[]), Err(RegistryError::EmptyEnrollment)));
        assert_eq!(reg.person("alice").expect("lookup"), None);

        // A failure inside the transaction (injected on the second insert) must roll back the new person too.
        reg.conn
            .execute_batch(
                "CREATE TEMP TRIGGER fail_second BEFORE INSERT ON main.templates
                 WHEN (SELECT count(*) FROM main.templates) >= 1
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            )
            .expect("trigger");
        let good: Vec<_> = (0..3).map(|i| (unit(i), format!("{i}.jpg"), Some(0.5))).collect();
        assert!(matches!(reg.enroll("alice", MODEL, &good), Err(RegistryError::Sqlite(_))));
        assert_eq!(reg.person("alice").expect("lookup"), None);
        assert_eq!(raw_template_rows(&reg), 0);
        reg.conn.execute_batch("DROP TRIGGER temp.fail_second;").expect("drop trigger");

        let (alice, ids) = reg.enroll("alice", MODEL, &good).expect("enroll");
        assert_eq!((alice.templates, ids.len()), (3, 3));
        // Enrolling an existing person (any case) adds to them.
        let (again, more) = reg.enroll("ALICE", MODEL, &good[..1]).expect("enroll again");
        assert_eq!((again.id, again.name.as_str(), again.templates, more.len()), (alice.id, "alice", 4, 1));
    }

    #[test]
    fn wire_templates_round_trip_and_order() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let mut expected = Vec::new();
        for (i, name) in ["zoe", "adam", "mia"].into_iter().enumerate() {
            let seed = i as u64 * 10;
            let (p, ids) = reg
                .enroll(name, MODEL, &[(unit(seed), "a".into(), None), (unit(seed + 1), "b".into(), None)])
                .expect("enroll");
            // Another model's templates must not leak into this model's sync.
            reg.add_template(p.id, "other-model", &unit(seed + 2), "c", None).expect("other model");
            expected.extend(ids.iter().zip([seed, seed + 1]).map(|(id, s)| (*id, p.id, name, s)));
        }
        // A spiky vector is the worst case for per-vector quantisation.
        let mut spike = vec![1e-3f32; EMBEDDING_DIM];
        spike[0] = 1.0;
        let norm = spike.iter().map(|x| x * x).sum::<f32>().sqrt();
        spike.iter_mut().for_each(|x| *x /= norm);
        let spiky = reg.person("mia").expect("lookup").expect("mia").id;
        let spike_id = reg.add_template(spiky, MODEL, &spike, "spike", None).expect("spike");

        assert_eq!(reg.model_ids().expect("models"), ["arcface-r100-v2", "other-model"]);
        let wire = reg.wire_templates(MODEL).expect("wire");
        let stored = reg.templates(MODEL).expect("stored");
        assert_eq!(wire.len(), 7);
        assert_eq!(stored.len(), 7);
        assert!(wire.windows(2).all(|w| w[0].id < w[1].id), "not ordered by id");
        for ((t, s), (id, pid, name, seed)) in wire.iter().zip(&stored).zip(&expected) {
            assert_eq!((t.id, t.person_id, t.display_name.as_str(), t.model_id.as_str()), (*id, *pid, *name, MODEL));
            assert_eq!(s.embedding.to_vec(), unit(*seed));
        }
        for (t, s) in wire.iter().zip(&stored) {
            assert_eq!((t.id, t.person_id), (s.id, s.person_id));
            assert!(t.validate(MODEL).is_ok());
            let c = cosine(&t.embedding.dequantize(), &s.embedding);
            assert!(c >= 0.9999, "template {}: cosine {c}", t.id);
        }
        assert_eq!(wire.last().map(|t| t.id), Some(spike_id));
        assert_eq!(reg.wire_templates("other-model").expect("wire").len(), 3);
        assert!(reg.wire_templates("no-such-model").expect("wire").is_empty());
    }

    #[test]
    fn sync_digest_is_stable_across_reopen() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        for i in 0..5u64 {
            reg.enroll(&format!("person {i}"), MODEL, &[(unit(i), "x".into(), Some(0.9))]).expect("enroll");
        }
        let before = digest(&reg.wire_templates(MODEL).expect("wire"));
        drop(reg);
        let reg = open(&path);
        let wire = reg.wire_templates(MODEL).expect("wire");
        assert_eq!(digest(&wire), before);
        assert_eq!(digest(&reg.wire_templates(MODEL).expect("wire")), before);
        // And it depends on the content: dropping one template changes it.
        assert_ne!(digest(&wire[1..]), before);
    }

    fn key() -> Key {
        let mut k = [0u8; KEY_LEN];
        k.iter_mut().enumerate().for_each(|(i, b)| *b = 0xA0 ^ (i as u8).wrapping_mul(37));
        k
    }

    #[test]
    fn device_key_round_trip_and_redaction() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        reg.upsert_device("tcp:127.0.0.1:7000", "kiosk-0001", MODEL, &key()).expect("upsert");
        assert!(matches!(reg.upsert_device("", "k", MODEL, &key()), Err(RegistryError::InvalidAddress { .. })));
        drop(reg);
        let reg = open(&path);
        let dev = reg.device("tcp:127.0.0.1:7000").expect("device").expect("present");
        assert_eq!(dev.key, key());
        assert_eq!((dev.device_id.as_str(), dev.model_id.as_str()), ("kiosk-0001", MODEL));
        assert_eq!((dev.last_generation, dev.last_digest, dev.last_sync_ms), (None, None, None));
        assert_eq!(reg.device("serial:/dev/ttyACM0").expect("device").map(|d| d.addr), None);
        assert_eq!(reg.devices().expect("devices").len(), 1);

        let debug = format!("{dev:?} {:?} {dev:#?}", reg.devices().expect("devices"));
        let k = key();
        assert!(!debug.contains(&hex::encode(k)));
        assert!(!debug.to_lowercase().contains(&hex::encode(&k[..8])));
        assert!(!debug.contains(&format!("{:?}", &k[..4]).trim_end_matches(']').to_string()));
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn repairing_keeps_sync_state_only_for_the_same_device() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let addr = "tcp:127.0.0.1:7000";
        reg.upsert_device(addr, "kiosk-1", MODEL, &key()).expect("upsert");
        reg.set_device_synced(addr, 7, [3; 32]).expect("synced");
        let mut new_key = key();
        new_key[0] ^= 1;
        reg.upsert_device(addr, "kiosk-1", MODEL, &new_key).expect("re-pair");
        let dev = reg.device(addr).expect("device").expect("present");
        assert_eq!((dev.key, dev.last_generation, dev.last_digest), (new_key, Some(7), Some([3; 32])));
        reg.upsert_device(addr, "kiosk-2", MODEL, &key()).expect("other device");
        let dev = reg.device(addr).expect("device").expect("present");
        assert_eq!(
            (dev.device_id.as_str(), dev.last_generation, dev.last_digest, dev.last_sync_ms),
            ("kiosk-2", None, None, None)
        );
        assert!(matches!(reg.set_device_synced("nowhere", 1, [0; 32]), Err(RegistryError::DeviceNotFound(_))));
    }

    fn sync(addr: &str, outcome: &str, generation: Option<u64>, digest: Option<[u8; 32]>, t: i64) -> SyncRecord {
        SyncRecord {
            addr: addr.into(),
            started_ms: t,
            finished_ms: Some(t + 5),
            outcome: outcome.into(),
            added: 3,
            removed: 1,
            changed: 2,
            generation,
            digest,
        }
    }

    #[test]
    fn record_sync_updates_device_only_when_committed() {
        let (_dir, path) = tmp();
        let mut reg = open(&path);
        let addr = "tcp:127.0.0.1:7000";
        reg.upsert_device(addr, "kiosk-1", MODEL, &key()).expect("upsert");

        reg.record_sync(&sync(addr, "aborted", Some(5), Some([1; 32]), 1_000)).expect("aborted");
        reg.record_sync(&sync(addr, "error: link lost", None, None, 2_000)).expect("failed");
        let dev = reg.device(addr).expect("device").expect("present");
        assert_eq!((dev.last_generation, dev.last_digest, dev.last_sync_ms), (None, None, None));

        reg.record_sync(&sync(addr, OUTCOME_COMMITTED, Some(6), Some([2; 32]), 3_000)).expect("committed");
        let dev = reg.device(addr).expect("device").expect("present");
        assert_eq!((dev.last_generation, dev.last_digest, dev.last_sync_ms), (Some(6), Some([2; 32]), Some(3_005)));

        // Invalid committed records append nothing and change nothing.
        assert!(matches!(
            reg.record_sync(&sync(addr, OUTCOME_COMMITTED, None, Some([9; 32]), 4_000)),
            Err(RegistryError::InvalidSyncRecord(_))
        ));
        assert!(matches!(
            reg.record_sync(&sync(addr, OUTCOME_COMMITTED, Some(9), None, 4_000)),
            Err(RegistryError::InvalidSyncRecord(_))
        ));
        assert!(matches!(
            reg.record_sync(&sync("unknown", OUTCOME_COMMITTED, Some(9), Some([9; 32]), 4_000)),
            Err(RegistryError::DeviceNotFound(_))
        ));
        assert!(reg.sync_history("unknown", 10).expect("history").is_empty());

        // Any u64 generation survives storage.
        reg.record_sync(&sync(addr, OUTCOME_COMMITTED, Some(u64::MAX), Some([4; 32]), 5_000)).expect("huge");
        assert_eq!(reg.device(addr).expect("device").expect("present").last_generation, Some(u64::MAX));

        let history = reg.sync_history(addr, 10).expect("history");
        let summary: Vec<_> = history.iter().map(|r| (r.started_ms, r.outcome.as_str(), r.generation)).collect();
        assert_eq!(
            summary,
            [
                (5_000, OUTCOME_COMMITTED, Some(u64::MAX)),
                (3_000, OUTCOME_COMMITTED, Some(6)),
                (2_000, "error: link lost", None),
                (1_000, "aborted", Some(5)),
            ]
        );
        assert_eq!(history[1], sync(addr, OUTCOME_COMMITTED, Some(6), Some([2; 32]), 3_000));
        assert_eq!(reg.sync_history(addr, 2).expect("history").len(), 2);
        assert_eq!(reg.sync_history(addr, usize::MAX).expect("history").len(), 4);
    }

    #[test]
    fn second_process_waits_for_the_lock() {
        let (_dir, path) = tmp();
        let holder = open(&path);
        let mut waiter = open(&path);
        holder
            .conn
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO people (name, name_key, created_ms) VALUES ('a', 'a', 0);")
            .expect("lock");
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            holder.conn.execute_batch("COMMIT").expect("commit");
        });
        // Without the busy timeout this would fail at once with "database is locked".
        waiter.add_person("b").expect("waited for the lock");
        t.join().expect("holder thread");
        assert_eq!(waiter.people().expect("people").len(), 2);
    }

    #[derive(Debug, Clone)]
    enum Op {
        AddPerson,
        AddTemplate(usize),
        Enroll(usize, usize),
        Remove(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::AddPerson),
            4 => any::<usize>().prop_map(Op::AddTemplate),
            2 => (any::<usize>(), 1usize..4).prop_map(|(p, n)| Op::Enroll(p, n)),
            2 => any::<usize>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn template_count_stays_consistent(ops in proptest::collection::vec(op(), 1..40)) {
            let (_dir, path) = tmp();
            let mut reg = open(&path);
            // Model: live people as (id, name, template count).
            let mut live: Vec<(PersonId, String, u32)> = Vec::new();
            let (mut next_name, mut seed) = (0u32, 0u64);
            let (mut max_person, mut max_template) = (0u32, 0u32);
            for op in ops {
                match op {
                    Op::AddPerson => {
                        let p = reg.add_person(&format!("P{next_name}")).expect("add");
                        next_name += 1;
                        prop_assert!(p.id > max_person);
                        max_person = p.id;
                        live.push((p.id, p.name, 0));
                    }
                    Op::AddTemplate(i) if !live.is_empty() => {
                        let n = live.len();
                        let entry = &mut live[i % n];
                        seed += 1;
                        let id = reg.add_template(entry.0, MODEL, &unit(seed), "s", None).expect("template");
                        prop_assert!(id > max_template);
                        max_template = id;
                        entry.2 += 1;
                    }
                    Op::Enroll(i, n) => {
                        // Existing person when there is one (by index), else a new one.
                        let name = if live.is_empty() { format!("P{next_name}") } else { live[i % live.len()].1.clone() };
                        let batch: Vec<_> = (0..n).map(|k| (unit(seed + 1 + k as u64), "e".to_string(), None)).collect();
                        seed += n as u64;
                        let (p, ids) = reg.enroll(&name, MODEL, &batch).expect("enroll");
                        for id in ids {
                            prop_assert!(id > max_template);
                            max_template = id;
                        }
                        match live.iter_mut().find(|e| e.0 == p.id) {
                            Some(e) => e.2 += n as u32,
                            None => {
                                prop_assert!(p.id > max_person);
                                max_person = p.id;
                                next_name += 1;
                                live.push((p.id, p.name.clone(), n as u32));
                            }
                        }
                        prop_assert_eq!(p.templates, live.iter().find(|e| e.0 == p.id).map_or(0, |e| e.2));
                    }
                    Op::Remove(i) if !live.is_empty() => {
                        let (_, name, count) = live.remove(i % live.len());
                        prop_assert_eq!(reg.remove_person(&name).expect("remove"), count);
                    }
                    Op::AddTemplate(_) | Op::Remove(_) => {}
                }
                let expected: u32 = live.iter().map(|e| e.2).sum();
                prop_assert_eq!(reg.template_count().expect("count"), expected);
                prop_assert_eq!(reg.templates(MODEL).expect("templates").len(), expected as usize);
                let counts: u32 = reg.people().expect("people").iter().map(|p| p.templates).sum();
                prop_assert_eq!(counts, expected);
            }
        }
    }
}
