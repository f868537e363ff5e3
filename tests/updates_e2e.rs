//! Template updates end to end: a real door keeps clear grants as proposed templates, the
//! `facegate` binary pulls them for review, an accepted one reaches the door at the next sync
//! as an ordinary template, and a rollback takes it away again; strangers propose nothing.

use crate::util::{data_dir, facegate, lfw_people, path_str, run_ok, visit_and_follow, DeviceProcess};
use std::path::PathBuf;

#[test]
fn a_door_proposes_the_admin_reviews_and_sync_carries_the_outcome() {
    let Some(data) = data_dir("updates_e2e") else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let registry = tmp.path().join("registry.sqlite3");
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).expect("frames dir");
    // Every clear grant of an enrolment-quality face is proposed (margin 0, no novelty limit),
    // at most two a person: what is tested here is the flow, the policy has its own tests.
    let config = tmp.path().join("device.toml");
    std::fs::write(&config, "[updates]\nmargin = 0.0\nnovelty = 0.999\nmax_per_person = 2\n").expect("config");
    let device = DeviceProcess::start(
        &[
            "--config",
            path_str(&config),
            "--store",
            path_str(&tmp.path().join("store")),
            "--listen",
            "127.0.0.1:0",
            "--allow-pairing",
            "60",
            "--frames",
            path_str(&frames),
            "--follow",
            "--consensus",
            "2/3",
        ],
        &tmp.path().join("device.log"),
    );
    let addr = device.addr.clone().expect("device address");
    let fg = |args: &[&str]| run_ok(facegate(&registry).args(args));
    fg(&["pair", "--device", &addr]);
    let people = lfw_people(&data.join("lfw"), 8);
    let (ann, bob, stranger) = (&people[0], &people[1], &people[2]);
    fg(&["enroll", &ann.0, path_str(&ann.1[0])]);
    fg(&["enroll", &bob.0, path_str(&bob.1[0])]);
    fg(&["sync", "--device", &addr]);

    let visits: Vec<&PathBuf> = ann.1[1..7].iter().chain([&bob.1[1], &stranger.1[0], &stranger.1[1]]).collect();
    let events = visit_and_follow(&registry, &addr, &frames, &visits);
    let granted = |who: &str| events.iter().filter(|e| e["decision"] == "Granted" && e["name"] == who).count();
    assert!(granted(&ann.0) >= 3, "{events:?}\n{}", device.log());
    assert!(events[7..].iter().all(|e| e["decision"] == "Unknown"), "{events:?}");

    let review = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["templates", "review", "--json", "--device", &addr];
        args.extend(extra);
        serde_json::from_str(fg(&args).trim()).expect("review --json")
    };
    let pending = review(&[]);
    let of = |who: &str| pending.iter().filter(|p| p["person"] == who).count();
    // The device kept at most two of Ann's, and nothing of the stranger's.
    assert!((1..=2).contains(&of(&ann.0)), "{pending:?}");
    assert_eq!(of(&ann.0) + of(&bob.0), pending.len(), "a stranger's face was proposed: {pending:?}");
    assert!(pending.iter().all(|p| p["score"].as_f64().unwrap_or(0.0) > 0.3 && p["status"] == "pending"));
    // Pulled means forgotten by the device: a second pull brings nothing new.
    assert_eq!(review(&[]).len(), pending.len());
    let audit = fg(&["audit", "--device", &addr, "--json"]);
    assert!(audit.contains("TemplateProposed") && audit.contains("ProposalsDropped"), "{audit}");

    // Accept Ann's first proposal, reject the rest.
    let first = pending.iter().find(|p| p["person"] == ann.0.as_str()).expect("one of Ann's")["id"].to_string();
    let mut args = vec!["--accept", first.as_str()];
    args.push("--reject-all");
    let left = review(&args.iter().copied().chain(["--offline"]).collect::<Vec<_>>());
    assert!(left.is_empty(), "{left:?}");
    let synced: serde_json::Value =
        serde_json::from_str(fg(&["sync", "--json", "--device", &addr]).trim()).expect("sync --json");
    assert_eq!(synced["templates"], 3, "{synced}");
    let history: serde_json::Value =
        serde_json::from_str(&fg(&["templates", "history", &ann.0, "--json"])).expect("history --json");
    let origins: Vec<&str> =
        history["templates"].as_array().expect("templates").iter().filter_map(|t| t["origin"].as_str()).collect();
    assert_eq!(origins, ["enrolment", "update"], "{history}");
    let statuses: Vec<&str> =
        history["proposals"].as_array().expect("proposals").iter().filter_map(|p| p["status"].as_str()).collect();
    assert_eq!(statuses[0], "accepted", "{history}");
    assert!(statuses[1..].iter().all(|s| *s == "rejected"), "{history}");

    // Rolled back: the door is back to one template each.
    let out = fg(&["templates", "rollback", &ann.0]);
    assert!(out.contains("removed update template"), "{out}");
    let synced: serde_json::Value =
        serde_json::from_str(fg(&["sync", "--json", "--device", &addr]).trim()).expect("sync --json");
    assert_eq!(synced["templates"], 2, "{synced}");
    let history = fg(&["templates", "history", &ann.0, "--json"]);
    assert!(history.contains("rolled back"), "{history}");
}
