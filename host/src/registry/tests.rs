//! The registry against real SQLite files: migrations, permissions, people, templates, devices, sync history.

use super::schema::APPLICATION_ID;
use super::*;
use facegate_proto::{cosine, Key, PersonId, SyncDigest, Template, TemplateId, EMBEDDING_DIM, KEY_LEN, MODEL_ID_LEN};
use proptest::prelude::*;
use rand::SeedableRng;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use tempfile::TempDir;

const MODEL: &str = "arcface-r100-v2";

fn tmp() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("registry.sqlite3");
    (dir, path)
}

/// The test PostgreSQL server's URL (`.ci/run` starts one and sets it); required when
/// `FACEGATE_REQUIRE_POSTGRES=1`, else the PostgreSQL half of a test says it is skipped.
pub(crate) fn test_postgres() -> Option<String> {
    match std::env::var("FACEGATE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("FACEGATE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("FACEGATE_REQUIRE_POSTGRES=1 but FACEGATE_TEST_POSTGRES is not set")
        }
        _ => {
            eprintln!("SKIPPED (PostgreSQL half): set FACEGATE_TEST_POSTGRES=postgres://USER@HOST:PORT/DB");
            None
        }
    }
}

/// Where one test's registry lives: a fresh SQLite file, or a fresh schema of the test
/// PostgreSQL database (dropped afterwards).
pub(crate) enum Place {
    Sqlite { _dir: TempDir, path: PathBuf },
    Postgres { admin: Box<postgres::Client>, url: String, schema: String, key: RegistryKey },
}

impl Place {
    pub(crate) fn sqlite() -> Place {
        let (_dir, path) = tmp();
        Place::Sqlite { _dir, path }
    }

    pub(crate) fn postgres(base: &str) -> Place {
        let mut admin = postgres::Client::connect(base, postgres::NoTls).expect("test PostgreSQL");
        let schema = format!("t{}", hex::encode(rand::random::<[u8; 8]>()));
        admin.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Place::Postgres { admin: Box::new(admin), url, schema, key: RegistryKey::generate() }
    }

    pub(crate) fn open(&self) -> Registry {
        match self {
            Place::Sqlite { path, .. } => Registry::open(path).expect("open registry"),
            Place::Postgres { url, key, .. } => Registry::open_postgres(url, key.clone()).expect("open registry"),
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Postgres { admin, schema, .. } = self {
            let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
    }
}

/// A fresh SQLite registry, and a fresh PostgreSQL one when the test server is there: every
/// test of the registry's behaviour runs on both.
pub(crate) fn places() -> Vec<Place> {
    let mut out = vec![Place::sqlite()];
    out.extend(test_postgres().map(|url| Place::postgres(&url)));
    out
}

fn open(path: &Path) -> Registry {
    Registry::open(path).expect("open registry")
}

/// A deterministic random unit vector.
fn unit(seed: u64) -> Vec<f32> {
    facegate_engine::embed::random_unit(&mut rand::rngs::StdRng::seed_from_u64(seed))
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
    reg.db.query_one("SELECT count(*) FROM templates", &[]).and_then(|r| r.get(0)).expect("count")
}

/// Runs SQL on a SQLite registry's own connection.
fn sqlite(reg: &Registry, sql: &str) {
    reg.db.with_sqlite(|c| c.execute_batch(sql)).expect("an SQLite registry").expect("sql");
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
    let app: i64 = reg
        .db
        .with_sqlite(|c| c.pragma_query_value(None, "application_id", |r| r.get(0)))
        .expect("sqlite")
        .expect("app id");
    assert_eq!(app, APPLICATION_ID);
}

#[test]
fn rollback_journal_is_private_and_transient() {
    let (_dir, path) = tmp();
    let reg = open(&path);
    let journal = PathBuf::from(format!("{}-journal", path.display()));
    sqlite(&reg, "BEGIN IMMEDIATE; INSERT INTO people (name, name_key, created_ms) VALUES ('a', 'a', 0);");
    assert_eq!(mode(&journal), 0o600, "SQLite should give the journal the database's mode");
    sqlite(&reg, "COMMIT");
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
    for place in places() {
        let mut reg = place.open();
        let (alice, ids) = reg.enroll("Alice", MODEL, &[(unit(1), "a.jpg".into(), Some(0.8))]).expect("enroll");
        reg.migrate().expect("second migrate is a no-op");
        drop(reg);
        for _ in 0..2 {
            let reg = place.open();
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
}

#[test]
fn newer_schema_is_refused_untouched() {
    let (_dir, path) = tmp();
    let reg = open(&path);
    sqlite(&reg, &format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1));
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
    for place in places() {
        let mut reg = place.open();
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
}

#[test]
fn people_are_ordered_by_name_ignoring_case() {
    for place in places() {
        let mut reg = place.open();
        for n in ["carol", "Bob", "alice", "Dave"] {
            reg.add_person(n).expect("add");
        }
        let names: Vec<_> = reg.people().expect("people").into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["alice", "Bob", "carol", "Dave"]);
    }
}

#[test]
fn rename_rules() {
    for place in places() {
        let mut reg = place.open();
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
}

#[test]
fn remove_cascades_and_ids_are_not_reused() {
    for place in places() {
        let mut reg = place.open();
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
        let mut reg = place.open();
        let (carol, carol_ids) = reg.enroll("alice", MODEL, &embeddings[..1]).expect("re-enroll");
        assert!(carol.id > bob.id && bob.id > alice.id);
        assert!(carol_ids[0] > bob_ids[0] && bob_ids[0] > alice_ids[2]);
    }
}

#[test]
fn ids_beyond_u32_are_refused() {
    let (_dir, path) = tmp();
    let mut reg = open(&path);
    let p = reg.add_person("alice").expect("add");
    sqlite(&reg, "UPDATE sqlite_sequence SET seq = 4294967295 WHERE name = 'people'");
    reg.add_template(p.id, MODEL, &unit(1), "a", None).expect("first template");
    sqlite(&reg, "UPDATE sqlite_sequence SET seq = 4294967295 WHERE name = 'templates'");
    assert!(matches!(reg.add_template(p.id, MODEL, &unit(2), "b", None), Err(RegistryError::IdsExhausted("template"))));
    assert!(matches!(reg.add_person("bob"), Err(RegistryError::IdsExhausted("person"))));
    assert_eq!(reg.template_count().expect("count"), 1);
    assert_eq!(reg.people().expect("people").len(), 1);
}

#[test]
fn embeddings_and_model_ids_are_validated() {
    for place in places() {
        let mut reg = place.open();
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
}

#[test]
fn enroll_is_all_or_nothing() {
    for place in places() {
        let mut reg = place.open();
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
        let (inject, remove) = if reg.is_shared() {
            (
                "CREATE FUNCTION fail_second() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                 IF (SELECT count(*) FROM templates) >= 1 THEN RAISE EXCEPTION 'injected failure'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER fail_second BEFORE INSERT ON templates FOR EACH ROW EXECUTE FUNCTION fail_second();",
                "DROP TRIGGER fail_second ON templates; DROP FUNCTION fail_second();",
            )
        } else {
            (
                "CREATE TEMP TRIGGER fail_second BEFORE INSERT ON main.templates
             WHEN (SELECT count(*) FROM main.templates) >= 1
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
                "DROP TRIGGER temp.fail_second;",
            )
        };
        reg.db.batch(inject).expect("trigger");
        let good: Vec<_> = (0..3).map(|i| (unit(i), format!("{i}.jpg"), Some(0.5))).collect();
        assert!(matches!(
            reg.enroll("alice", MODEL, &good),
            Err(RegistryError::Sqlite(_) | RegistryError::Postgres(_))
        ));
        assert_eq!(reg.person("alice").expect("lookup"), None);
        assert_eq!(raw_template_rows(&reg), 0);
        reg.db.batch(remove).expect("drop trigger");

        let (alice, ids) = reg.enroll("alice", MODEL, &good).expect("enroll");
        assert_eq!((alice.templates, ids.len()), (3, 3));
        // Enrolling an existing person (any case) adds to them.
        let (again, more) = reg.enroll("ALICE", MODEL, &good[..1]).expect("enroll again");
        assert_eq!((again.id, again.name.as_str(), again.templates, more.len()), (alice.id, "alice", 4, 1));
    }
}

#[test]
fn wire_templates_round_trip_and_order() {
    for place in places() {
        let mut reg = place.open();
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
}

#[test]
fn sync_digest_is_stable_across_reopen() {
    for place in places() {
        let mut reg = place.open();
        for i in 0..5u64 {
            reg.enroll(&format!("person {i}"), MODEL, &[(unit(i), "x".into(), Some(0.9))]).expect("enroll");
        }
        let before = digest(&reg.wire_templates(MODEL).expect("wire"));
        drop(reg);
        let reg = place.open();
        let wire = reg.wire_templates(MODEL).expect("wire");
        assert_eq!(digest(&wire), before);
        assert_eq!(digest(&reg.wire_templates(MODEL).expect("wire")), before);
        // And it depends on the content: dropping one template changes it.
        assert_ne!(digest(&wire[1..]), before);
    }
}

fn key() -> Key {
    let mut k = [0u8; KEY_LEN];
    k.iter_mut().enumerate().for_each(|(i, b)| *b = 0xA0 ^ (i as u8).wrapping_mul(37));
    k
}

#[test]
fn device_key_round_trip_and_redaction() {
    for place in places() {
        let mut reg = place.open();
        reg.upsert_device("tcp:127.0.0.1:7000", "kiosk-0001", MODEL, &key()).expect("upsert");
        assert!(matches!(reg.upsert_device("", "k", MODEL, &key()), Err(RegistryError::InvalidAddress { .. })));
        drop(reg);
        let reg = place.open();
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
}

#[test]
fn repairing_keeps_sync_state_only_for_the_same_device() {
    for place in places() {
        let mut reg = place.open();
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
    for place in places() {
        let mut reg = place.open();
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
}

#[test]
fn second_process_waits_for_the_lock() {
    let (_dir, path) = tmp();
    let holder = open(&path);
    let mut waiter = open(&path);
    sqlite(&holder, "BEGIN IMMEDIATE; INSERT INTO people (name, name_key, created_ms) VALUES ('a', 'a', 0);");
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        sqlite(&holder, "COMMIT");
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
        for place in places() {
        let mut reg = place.open();
        // Model: live people as (id, name, template count).
        let mut live: Vec<(PersonId, String, u32)> = Vec::new();
        let (mut next_name, mut seed) = (0u32, 0u64);
        let (mut max_person, mut max_template) = (0u32, 0u32);
        for op in ops.clone() {
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

/// Table and column names, in order, of the registry's tables (not `registry_meta`).
fn columns(reg: &Registry) -> Vec<(String, String)> {
    let sql = if reg.is_shared() {
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name <> 'registry_meta'
         ORDER BY table_name, ordinal_position"
    } else {
        "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid"
    };
    let rows = reg.db.query(sql, &[]).expect("columns");
    rows.iter().map(|r| (r.get(0).expect("table"), r.get(1).expect("column"))).collect()
}

#[test]
fn both_backends_have_the_same_schema() {
    let Some(url) = test_postgres() else { return };
    let (sqlite, pg) = (Place::sqlite(), Place::postgres(&url));
    let (a, b) = (sqlite.open(), pg.open());
    assert_eq!(MIGRATIONS.len(), MIGRATIONS_PG.len(), "a migration without its PostgreSQL twin");
    assert_eq!(columns(&a), columns(&b));
    assert_eq!(b.schema_version().expect("version"), SCHEMA_VERSION);
}

#[test]
fn a_shared_registry_seals_pairing_keys_and_refuses_another_key() {
    let Some(url) = test_postgres() else { return };
    let place = Place::postgres(&url);
    let mut reg = place.open();
    reg.upsert_device("tcp:10.0.0.9:7070", "door-1", MODEL, &key()).expect("pair");
    let stored: Vec<u8> = reg.db.query_one("SELECT pairing_key FROM devices", &[]).and_then(|r| r.get(0)).expect("row");
    assert!(!stored.windows(KEY_LEN).any(|w| w == key()), "the pairing key is stored in clear");
    assert_eq!(reg.device("tcp:10.0.0.9:7070").expect("device").expect("paired").key, key());
    drop(reg);
    let Place::Postgres { url: schema_url, key: right, .. } = &place else { unreachable!() };
    assert!(matches!(
        Registry::open_postgres(schema_url, RegistryKey::generate()),
        Err(RegistryError::WrongRegistryKey)
    ));
    let again = Registry::open_postgres(schema_url, right.clone()).expect("the right key");
    assert_eq!(again.devices().expect("devices")[0].key, key());
}

#[test]
fn a_newer_shared_registry_is_refused() {
    let Some(url) = test_postgres() else { return };
    let place = Place::postgres(&url);
    let reg = place.open();
    reg.db.execute("UPDATE registry_meta SET schema_version = ?1", db::args![SCHEMA_VERSION + 1]).expect("bump");
    drop(reg);
    let Place::Postgres { url, key, .. } = &place else { unreachable!() };
    assert!(matches!(
        Registry::open_postgres(url, key.clone()),
        Err(RegistryError::NewerSchema { found, .. }) if found == SCHEMA_VERSION + 1
    ));
}

#[test]
fn shared_ids_beyond_u32_are_refused() {
    let Some(url) = test_postgres() else { return };
    let place = Place::postgres(&url);
    let mut reg = place.open();
    let p = reg.add_person("alice").expect("add");
    reg.db.batch("ALTER TABLE people ALTER COLUMN id RESTART WITH 4294967296").expect("bump");
    assert!(matches!(reg.add_person("bob"), Err(RegistryError::IdsExhausted("person"))));
    reg.add_template(p.id, MODEL, &unit(1), "a", None).expect("template");
    assert_eq!(reg.people().expect("people").len(), 1);
}

#[test]
fn doors_receive_the_people_their_groups_hold_with_their_windows_and_dates() {
    for place in places() {
        let mut reg = place.open();
        for (i, name) in ["Ann", "Bob", "Cy", "Dan"].iter().enumerate() {
            reg.enroll(name, MODEL, &[(unit(i as u64), "x".into(), None)]).expect("enroll");
        }
        let id = |reg: &Registry, n: &str| reg.person(n).expect("lookup").expect("enrolled").id;
        let (front, lab) = ("tcp:10.0.0.1:7700", "tcp:10.0.0.2:7700");
        reg.upsert_device(front, "front", MODEL, &key()).expect("pair");
        reg.upsert_device(lab, "lab", MODEL, &key()).expect("pair");
        // No rules: everyone, any time.
        let open = reg.door_access(front).expect("access");
        assert!(!open.restricted() && open.admits(id(&reg, "Dan")) && open.entries.is_empty());

        reg.add_group("Staff").expect("group");
        reg.add_group("Cleaners").expect("group");
        assert!(matches!(reg.add_group("staff"), Err(RegistryError::DuplicateGroup(_))));
        reg.change_members("staff", &["Ann".into(), "Cy".into()], &[]).expect("members");
        reg.change_members("Cleaners", &["Bob".into(), "Ann".into()], &[]).expect("members");
        assert!(matches!(
            reg.change_members("Cleaners", &["Nobody".into()], &[]),
            Err(RegistryError::PersonNotFound(_))
        ));
        assert_eq!(
            reg.members("Staff").expect("members").iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["Ann", "Cy"]
        );
        reg.allow(front, "Staff", "always").expect("allow");
        reg.allow(front, "Cleaners", "mon-fri 19:00-23:00").expect("allow");
        reg.allow(lab, "Cleaners", "Sat 08:00-12:00; Mon-Fri 19:00-23:00").expect("allow");
        assert!(matches!(reg.allow(lab, "Staff", "Mon-Fri 25:00-26:00"), Err(RegistryError::InvalidSchedule { .. })));
        assert!(matches!(reg.allow("tcp:10.9.9.9:1", "Staff", "always"), Err(RegistryError::DeviceNotFound(_))));
        reg.set_validity("Cy", &Validity { from: None, until: Some("2027-03-31".into()) }).expect("dates");
        assert!(matches!(
            reg.set_validity("Cy", &Validity { from: Some("2027-04-01".into()), until: Some("2027-03-31".into()) }),
            Err(RegistryError::InvalidDate(_))
        ));

        let f = reg.door_access(front).expect("access");
        let (ann, bob, cy, dan) = (id(&reg, "Ann"), id(&reg, "Bob"), id(&reg, "Cy"), id(&reg, "Dan"));
        assert!(f.restricted() && f.admits(ann) && f.admits(bob) && f.admits(cy) && !f.admits(dan));
        // Ann is staff (any time) and a cleaner: any time wins; Bob has the cleaners' window; Cy her end date.
        let entry = |a: &DoorAccess, p| a.entries.iter().find(|e| e.person_id == p).cloned();
        assert_eq!(entry(&f, ann), None);
        assert_eq!(entry(&f, bob).map(|e| e.windows.len()), Some(1));
        let cy_entry = entry(&f, cy).expect("Cy's dates");
        assert_eq!(
            (cy_entry.valid_until, cy_entry.windows.len()),
            (facegate_proto::access::parse_date("2027-03-31"), 0)
        );

        let l = reg.door_access(lab).expect("access");
        assert!(!l.admits(cy), "Cy's dates do not open a door her groups do not");
        assert_eq!(entry(&l, ann).map(|e| e.windows.len()), Some(2));
        assert_eq!(reg.door_rules(lab).expect("rules")[0].schedule, "Sat 08:00-12:00; Mon-Fri 19:00-23:00");

        // Out of the group, out of the door; a removed group lets no one in.
        reg.change_members("Cleaners", &[], &["Bob".into()]).expect("members");
        assert!(!reg.door_access(front).expect("access").admits(bob));
        reg.remove_group("Cleaners").expect("remove");
        let l = reg.door_access(lab).expect("access");
        assert!(l.restricted() && !l.admits(ann), "a door whose last group went lets no one in, not everyone");
        assert!(reg.disallow(front, "Staff").expect("disallow"));
        assert!(!reg.door_access(front).expect("access").admits(ann));
        reg.open_to_everyone(front).expect("open");
        let f = reg.door_access(front).expect("access");
        assert!(!f.restricted() && f.admits(dan) && reg.door_rules(front).expect("rules").is_empty());
    }
}
