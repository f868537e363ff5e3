//! The whole system on one machine: a real `facegate-device` process with a directory frame
//! source, the `facegate` host binary pairing, enrolling from one LFW photo per person,
//! syncing, and following the device's decisions for other photos of those people and of
//! strangers.

use crate::util::{data_dir, facegate, file_names, lfw_people, run_ok, visit_and_follow, DeviceProcess};
use std::path::PathBuf;

#[test]
fn kiosk_grants_enrolled_people_and_not_strangers() {
    let Some(data) = data_dir("kiosk_e2e") else { return };
    let lfw = data.join("lfw");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, frames, screens) = (tmp.path().join("store"), tmp.path().join("frames"), tmp.path().join("screens"));
    std::fs::create_dir(&frames).expect("frames dir");
    let registry = tmp.path().join("registry.sqlite3");

    let people = lfw_people(&lfw, 10);
    assert!(people.len() >= 7, "LFW should have many people with 10+ photos");
    let (enrolled, strangers) = (&people[..4], &people[4..7]);

    let mut device = DeviceProcess::start(
        &[
            "--store",
            store.to_str().expect("utf-8 path"),
            "--listen",
            "127.0.0.1:0",
            "--allow-pairing",
            "60",
            "--frames",
            frames.to_str().expect("utf-8 path"),
            "--follow",
            "--display-png",
            screens.to_str().expect("utf-8 path"),
            "--consensus",
            "2/3",
        ],
        &tmp.path().join("device.log"),
    );
    let addr = device.addr.clone().expect("device address");

    run_ok(facegate(&registry).args(["pair", "--device", &addr]));
    for (name, photos) in enrolled {
        let out = run_ok(facegate(&registry).args(["enroll", name, "--json"]).arg(&photos[0]));
        let report: serde_json::Value = serde_json::from_str(&out).expect("enroll --json");
        assert_eq!(report["accepted"].as_array().map(Vec::len), Some(1), "{name}: {out}");
    }
    let out = run_ok(facegate(&registry).args(["sync", "--json"]));
    let synced: serde_json::Value = serde_json::from_str(out.trim()).expect("sync --json");
    assert_eq!(synced["added"], 4, "{out}");
    assert_eq!(synced["templates"], 4);
    // A second sync has nothing to do.
    let again: serde_json::Value =
        serde_json::from_str(run_ok(facegate(&registry).args(["sync", "--json"])).trim()).expect("sync --json");
    assert_eq!(again["up_to_date"], true);

    // Visits: two other photos of each enrolled person, one photo of each stranger.
    let mut expected: Vec<(String, Option<String>)> = Vec::new();
    let mut visits: Vec<PathBuf> = Vec::new();
    for (name, photos) in enrolled {
        for p in &photos[1..3] {
            visits.push(p.clone());
            expected.push(("Granted".into(), Some(name.clone())));
        }
    }
    for (_, photos) in strangers {
        visits.push(photos[0].clone());
        expected.push(("Unknown".into(), None));
    }

    let shown: Vec<&PathBuf> = visits.iter().collect();
    let events = visit_and_follow(&registry, &addr, &frames, &shown);
    let got: Vec<(String, Option<String>)> = events
        .iter()
        .map(|e| (e["decision"].as_str().unwrap_or("?").to_string(), e["name"].as_str().map(String::from)))
        .collect();
    assert_eq!(got, expected, "device log:\n{}", device.log());
    for e in &events {
        assert!(e["latency_ms"].as_u64().is_some_and(|ms| ms < 5_000), "{e}");
    }
    // The log is a file, not a terminal: plain text, no colour codes.
    let log = device.log();
    assert!(log.contains("decision") && !log.contains('\x1b'), "device log has escape codes:\n{log}");

    // The audit log has the same decisions, with the boot and sync records around them.
    let audit = run_ok(facegate(&registry).args(["audit", "--device", &addr, "--json"]));
    let kinds: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("audit JSON")["kind"].as_str().unwrap_or("?").into()
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "AccessGranted").count(), 8, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "UnknownFace").count(), 3, "{kinds:?}");
    assert!(kinds.contains(&"Paired".to_string()) && kinds.contains(&"SyncCommitted".to_string()));

    // The display showed each outcome.
    let screens = file_names(&screens);
    for kind in ["idle", "granted", "unknown"] {
        assert!(screens.iter().any(|s| s.contains(kind)), "no {kind} screen in {screens:?}");
    }

    // A clean stop keeps everything: the restarted device still holds the four templates.
    assert!(device.terminate().success(), "SIGTERM must exit cleanly:\n{}", device.log());
    // Same address: the registry knows the device by it.
    let listen = addr.trim_start_matches("tcp:").to_string();
    let device = DeviceProcess::start(
        &["--store", store.to_str().expect("utf-8 path"), "--listen", &listen],
        &tmp.path().join("device2.log"),
    );
    assert_eq!(device.addr.as_deref(), Some(addr.as_str()));
    let again: serde_json::Value =
        serde_json::from_str(run_ok(facegate(&registry).args(["sync", "--json", "--device", &addr])).trim())
            .expect("sync --json");
    assert_eq!(again["templates"], 4);
    assert_eq!(again["up_to_date"], true, "the store survived the restart unchanged");
}

#[test]
fn the_demo_command_runs_the_whole_system() {
    let Some(data) = data_dir("demo") else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_ok(
        facegate(&tmp.path().join("unused.sqlite3"))
            .env("FACEGATE_DATA", &data)
            .args(["demo", "--json", "--people", "3", "--strangers", "2", "--work"])
            .arg(tmp.path().join("demo")),
    );
    let summary: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("summary line")).expect("summary JSON");
    assert_eq!(summary["granted"], 3, "{out}");
    assert_eq!(summary["unknown"], 2, "{out}");
    assert_eq!(summary["correct"], 5, "{out}");
    let screens = std::fs::read_dir(tmp.path().join("demo/screens")).expect("screens").count();
    assert!(screens >= 6, "display PNGs are left to look at");
}
