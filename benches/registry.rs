//! The registry at building scale: 10,000 people, 100 doors, 20 groups. Measures, in one run,
//! computing one door's sync set against the plain set of every template (the baseline), and
//! one full sync of 1,000 templates over TCP to an in-process device against an up-to-date
//! re-sync of the same device (the baseline: connection, authentication, listing). On SQLite,
//! and on PostgreSQL too when `FACEGATE_TEST_POSTGRES` names a server.
//!
//! `cargo bench --bench registry` (figures: docs/PERFORMANCE.md#registry).

use facegate_device::audit_log::AuditLog;
use facegate_device::state::{Core, Identity, Settings};
use facegate_device::store::TemplateStore;
use facegate_host::link::Addr;
use facegate_host::registry::{Registry, RegistryKey};
use facegate_proto::{Capabilities, Setting, Threshold};
use rand::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PEOPLE: usize = 10_000;
const DOORS: usize = 100;
const GROUPS: usize = 20;
const MODEL: &str = "bench-model";

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

/// Fills `reg`: people (one template each), groups of 500, doors letting two groups in.
fn fill(reg: &mut Registry) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let t = Instant::now();
    for i in 0..PEOPLE {
        let v = facegate_engine::embed::random_unit(&mut rng);
        reg.enroll(&format!("Person {i:05}"), MODEL, &[(v, "bench".into(), None)]).expect("enroll");
    }
    let per_group = PEOPLE / GROUPS;
    for g in 0..GROUPS {
        reg.add_group(&format!("Group {g:02}")).expect("group");
        let members: Vec<String> = (g * per_group..(g + 1) * per_group).map(|i| format!("Person {i:05}")).collect();
        reg.change_members(&format!("Group {g:02}"), &members, &[]).expect("members");
    }
    let mut doors = Vec::new();
    for d in 0..DOORS {
        let addr = format!("tcp:10.0.{}.{}:7700", d / 250, d % 250 + 1);
        reg.upsert_device(&addr, &format!("door-{d:03}"), MODEL, &[d as u8; 32]).expect("pair");
        reg.allow(&addr, &format!("Group {:02}", d % GROUPS), "always").expect("allow");
        reg.allow(&addr, &format!("Group {:02}", (d + 1) % GROUPS), "Mon-Fri 07:00-19:00").expect("allow");
        doors.push(addr);
    }
    eprintln!("  filled in {:.1} s", t.elapsed().as_secs_f64());
    doors
}

fn door_set(reg: &mut Registry, backend: &str) {
    let doors = fill(reg);
    let all = time(9, || reg.wire_templates(MODEL).expect("templates").len());
    let one = time(9, || facegate_host::sync::door_set(reg, &doors[0], MODEL).expect("door set").0.len());
    let n = facegate_host::sync::door_set(reg, &doors[0], MODEL).expect("door set").0.len();
    println!(
        "{backend}: one door's sync set ({n} of {PEOPLE} people, 2 groups, {DOORS} doors): {:.1} ms; \
         every template (baseline): {:.1} ms; ratio {:.2}",
        one.as_secs_f64() * 1e3,
        all.as_secs_f64() * 1e3,
        one.as_secs_f64() / all.as_secs_f64()
    );
}

/// A device in this process, listening on a free port, its pairing window open.
fn device(dir: &std::path::Path) -> Addr {
    let store = TemplateStore::open(&dir.join("store"), MODEL).expect("store");
    let audit = AuditLog::open(&dir.join("audit.log")).expect("audit");
    let identity = Identity {
        device_id: "bench-door".into(),
        model_id: MODEL.into(),
        capabilities: Capabilities::SYNC,
        identify: true,
    };
    // A fixed threshold: no calibration table needed to hold and sync templates.
    let mut settings = Settings::default();
    settings.apply(Setting::Threshold(Threshold::Cosine(0.5)));
    let core = Arc::new(Core::new(identity, None, store, audit, settings).expect("core"));
    core.open_pairing(Duration::from_secs(60));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("tcp:{}", listener.local_addr().expect("address"));
    facegate_device::link::spawn_tcp(listener, core).expect("serve");
    addr.parse().expect("address")
}

fn full_sync(backend: &str, reg: &mut Registry, dir: &std::path::Path) {
    let addr = device(dir);
    facegate_host::commands::pair::pair(reg, &addr).expect("pair");
    // Two groups of 500: 1,000 templates.
    reg.allow(&addr.to_string(), "Group 00", "always").expect("allow");
    reg.allow(&addr.to_string(), "Group 01", "always").expect("allow");
    let t = Instant::now();
    let first = facegate_host::sync::sync_device(reg, &addr, false).expect("sync");
    let full = t.elapsed();
    assert_eq!(first.templates, 1_000);
    let again = time(5, || facegate_host::sync::sync_device(reg, &addr, false).expect("sync").up_to_date);
    println!(
        "{backend}: full sync of {} templates over TCP: {:.0} ms ({:.0} templates/s); up-to-date re-sync \
         (baseline): {:.0} ms; ratio {:.1}",
        first.templates,
        full.as_secs_f64() * 1e3,
        f64::from(first.templates) / full.as_secs_f64(),
        again.as_secs_f64() * 1e3,
        full.as_secs_f64() / again.as_secs_f64()
    );
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    eprintln!("SQLite registry, {PEOPLE} people, {DOORS} doors:");
    let mut sqlite = Registry::open(&tmp.path().join("registry.sqlite3")).expect("registry");
    door_set(&mut sqlite, "sqlite");
    full_sync("sqlite", &mut sqlite, &tmp.path().join("door-a"));
    match std::env::var("FACEGATE_TEST_POSTGRES") {
        Ok(base) if !base.is_empty() => {
            let mut admin = postgres::Client::connect(&base, postgres::NoTls).expect("PostgreSQL");
            let schema = format!("bench{}", std::process::id());
            admin
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
                .expect("schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
            eprintln!("PostgreSQL registry, {PEOPLE} people, {DOORS} doors:");
            let mut pg = Registry::open_postgres(&url, RegistryKey::generate()).expect("registry");
            door_set(&mut pg, "postgres");
            full_sync("postgres", &mut pg, &tmp.path().join("door-b"));
            drop(pg);
            let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
        _ => eprintln!("PostgreSQL: skipped (set FACEGATE_TEST_POSTGRES=postgres://USER@HOST:PORT/DB)"),
    }
}
