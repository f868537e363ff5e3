//! Access rules end to end: two doors (real `facegate-device` processes with their clocks set to
//! a Monday evening in Paris), two groups, a schedule and an expired contractor, set up with the
//! `facegate` binary. Each door holds only the people it lets in, lets them in only in their
//! windows and dates, says "not allowed at this time" otherwise, and a member taken out of a
//! group leaves the door at the next sync.

use crate::util::{data_dir, facegate, file_names, lfw_people, path_str, run_ok, visit_and_follow, DeviceProcess};
use std::path::{Path, PathBuf};

/// 20:00 on Monday 4 January 2027 in Paris (winter time, UTC+1).
const MONDAY_EVENING: &str = "2027-01-04T20:00:00+01:00";

struct Door {
    process: DeviceProcess,
    addr: String,
    frames: PathBuf,
    screens: PathBuf,
}

fn door(dir: &Path, name: &str) -> Door {
    let (frames, screens) = (dir.join(format!("{name}-frames")), dir.join(format!("{name}-screens")));
    std::fs::create_dir(&frames).expect("frames dir");
    let store = dir.join(format!("{name}-store"));
    let process = DeviceProcess::start(
        &[
            "--store",
            path_str(&store),
            "--listen",
            "127.0.0.1:0",
            "--allow-pairing",
            "60",
            "--frames",
            path_str(&frames),
            "--follow",
            "--display-png",
            path_str(&screens),
            "--consensus",
            "2/3",
            "--timezone",
            "Europe/Paris",
            "--clock-start",
            MONDAY_EVENING,
        ],
        &dir.join(format!("{name}.log")),
    );
    let addr = process.addr.clone().expect("device address");
    Door { process, addr, frames, screens }
}

/// Shows `photos` to `door` and returns (decision, name) of each visit.
fn visits(registry: &Path, door: &Door, photos: &[&PathBuf]) -> Vec<(String, Option<String>)> {
    let events = visit_and_follow(registry, &door.addr, &door.frames, photos);
    events
        .iter()
        .map(|e| (e["decision"].as_str().unwrap_or("?").to_owned(), e["name"].as_str().map(String::from)))
        .collect()
}

fn sync(registry: &Path, door: &Door) -> serde_json::Value {
    let out = run_ok(facegate(registry).args(["sync", "--json", "--device", &door.addr]));
    serde_json::from_str(out.trim()).expect("sync --json")
}

#[test]
fn each_door_lets_in_the_right_people_at_the_right_times() {
    let Some(data) = data_dir("access_e2e") else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let registry = tmp.path().join("registry.sqlite3");
    let people = lfw_people(&data.join("lfw"), 4);
    let [ann, bob, cy, dan] = [&people[0], &people[1], &people[2], &people[3]];
    let (front, lab) = (door(tmp.path(), "front"), door(tmp.path(), "lab"));
    for d in [&front, &lab] {
        run_ok(facegate(&registry).args(["pair", "--device", &d.addr]));
    }
    for (name, photos) in [ann, bob, dan] {
        run_ok(facegate(&registry).args(["enroll", name, path_str(&photos[0])]));
    }
    // A contractor whose last day was the day before.
    run_ok(facegate(&registry).args(["enroll", &cy.0, path_str(&cy.1[0]), "--until", "2027-01-03"]));

    let fg = |args: &[&str]| run_ok(facegate(&registry).args(args));
    fg(&["group", "add", "Staff"]);
    fg(&["group", "add", "Cleaners"]);
    fg(&["group", "members", "Staff", "--add", &ann.0, &cy.0]);
    fg(&["group", "members", "Cleaners", "--add", &bob.0]);
    fg(&["door", "allow", &front.addr, "Staff"]);
    fg(&["door", "allow", &front.addr, "Cleaners", "--schedule", "Mon-Fri 19:00-23:00"]);
    fg(&["door", "allow", &lab.addr, "Staff", "--schedule", "Mon-Fri 07:00-19:00"]);
    let shown = fg(&["door", "show", &lab.addr, "--json"]);
    assert!(shown.contains("Mon-Fri 07:00-19:00"), "{shown}");
    let doors: serde_json::Value = serde_json::from_str(&fg(&["doors", "--json"])).expect("doors --json");
    assert!(doors.as_array().expect("array").iter().all(|d| d["behind"] == true), "never synced: {doors}");

    // Each door holds only the people it lets in (Dan is in no group; Bob not in the lab's).
    let (f, l) = (sync(&registry, &front), sync(&registry, &lab));
    assert_eq!((f["templates"].as_u64(), l["templates"].as_u64()), (Some(3), Some(2)), "{f} {l}");
    assert_eq!((f["access_rules"].as_u64(), l["access_rules"].as_u64()), (Some(2), Some(2)), "{f} {l}");
    let doors: serde_json::Value = serde_json::from_str(&fg(&["doors", "--json"])).expect("doors --json");
    assert!(doors.as_array().expect("array").iter().all(|d| d["behind"] == false), "{doors}");

    let photos = [&ann.1[1], &bob.1[1], &cy.1[1], &dan.1[1]];
    let name = |p: &(String, Vec<PathBuf>)| Some(p.0.clone());
    let at = |d: &str, n| (d.to_owned(), n);
    // Monday 20:00: staff any time at the front, cleaners in their evening window.
    assert_eq!(
        visits(&registry, &front, &photos),
        [at("Granted", name(ann)), at("Granted", name(bob)), at("NotAllowedNow", name(cy)), at("Unknown", None)],
        "front door log:\n{}",
        front.process.log()
    );
    // The lab lets staff in until 19:00 only.
    assert_eq!(
        visits(&registry, &lab, &photos),
        [at("NotAllowedNow", name(ann)), at("Unknown", None), at("NotAllowedNow", name(cy)), at("Unknown", None)],
        "lab log:\n{}",
        lab.process.log()
    );
    let audit = fg(&["audit", "--device", &lab.addr, "--json"]);
    assert!(audit.contains("outside Mon-Fri 07:00-19:00 at Mon 20:00"), "{audit}");
    assert!(audit.contains("expired 2027-01-03 (today 2027-01-04)"), "{audit}");
    assert!(file_names(&lab.screens).iter().any(|s| s.contains("not-allowed-now")), "no 'not allowed' screen");

    // Bob leaves the cleaners: the front door drops his template at the next sync.
    fg(&["group", "members", "Cleaners", "--remove", &bob.0]);
    let f = sync(&registry, &front);
    assert_eq!((f["templates"].as_u64(), f["removed"].as_u64()), (Some(2), Some(1)), "{f}");
}
