//! A shared PostgreSQL registry used by two administrators at once, through the real `facegate`
//! binary: concurrent enrolments all land, concurrent syncs leave the device with the whole set,
//! and the pairing key is not readable from the database.

use crate::util::{data_dir, lfw_people, path_str, run_ok, start_device, PgSchema};
use std::process::{Command, Output};

/// Runs `cmds` one after another on a thread of its own.
fn in_turn(cmds: Vec<Command>) -> std::thread::JoinHandle<Vec<Output>> {
    std::thread::spawn(move || cmds.into_iter().map(|mut c| c.output().expect("run facegate")).collect())
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn two_administrators_enrolling_and_syncing_at_once_lose_nothing() {
    let Some(pg) = PgSchema::new("shared_registry") else { return };
    let Some(data) = data_dir("shared_registry") else { return };
    let people = lfw_people(&data.join("lfw"), 2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let _device = start_device(&tmp.path().join("store"), "127.0.0.1:0", &tmp.path().join("device.log"));
    let addr = _device.addr.clone().expect("address");
    run_ok(pg.facegate().args(["pair", "--device", &addr]));

    // Two administrators, four people each, at the same time.
    let admins: Vec<_> = people[..8]
        .chunks(4)
        .map(|batch| {
            let cmds = batch
                .iter()
                .map(|(name, photos)| {
                    let mut c = pg.facegate();
                    c.args(["enroll", "--json", name, path_str(&photos[0])]);
                    c
                })
                .collect();
            in_turn(cmds)
        })
        .collect();
    for admin in admins {
        for out in admin.join().expect("administrator") {
            assert_eq!(json(&out)["accepted"].as_array().map(Vec::len), Some(1));
        }
    }
    let list = json(&pg.facegate().args(["list", "--json"]).output().expect("list"));
    let mut listed: Vec<&str> = list.as_array().expect("array").iter().filter_map(|p| p["name"].as_str()).collect();
    let mut enrolled: Vec<&str> = people[..8].iter().map(|(n, _)| n.as_str()).collect();
    listed.sort_unstable();
    enrolled.sort_unstable();
    assert_eq!(listed, enrolled, "an enrolment was lost");

    // Both sync at once: each lands, or is told the device changed under it; neither breaks it.
    let syncs: Vec<_> = (0..2)
        .map(|_| {
            let mut c = pg.facegate();
            c.args(["sync", "--json"]);
            in_turn(vec![c])
        })
        .collect();
    let outcomes: Vec<Output> = syncs.into_iter().flat_map(|s| s.join().expect("sync")).collect();
    let landed = outcomes.iter().filter(|o| o.status.success()).count();
    assert!(
        landed >= 1,
        "no sync landed: {:?}",
        outcomes.iter().map(|o| String::from_utf8_lossy(&o.stderr)).collect::<Vec<_>>()
    );
    for o in outcomes.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("run sync again"), "a refused sync says why: {err}");
    }
    let last = json(&pg.facegate().args(["sync", "--json"]).output().expect("sync"));
    assert_eq!(last["templates"], 8);
    assert_eq!(last["up_to_date"], true, "the device already holds the whole set: {last}");

    // The database alone does not give the pairing key away.
    let mut db = postgres::Client::connect(&pg.url, postgres::NoTls).expect("connect");
    let stored: Vec<u8> = db.query_one("SELECT pairing_key FROM devices", &[]).expect("row").get(0);
    let out = Command::new(crate::util::binary("facegate"))
        .env("FACEGATE_REGISTRY", &pg.url)
        .env(facegate_host::registry::KEY_ENV, facegate_host::registry::RegistryKey::generate().to_hex())
        .args(["list"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "another registry key is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the key of this registry"));
    let out = Command::new(crate::util::binary("facegate"))
        .env("FACEGATE_REGISTRY", &pg.url)
        .env_remove(facegate_host::registry::KEY_ENV)
        .env_remove(facegate_host::registry::KEY_FILE_ENV)
        .args(["list"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "no registry key: refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("FACEGATE_REGISTRY_KEY_FILE"));
    assert_eq!(stored.len(), 72, "nonce, sealed key and tag");
}
