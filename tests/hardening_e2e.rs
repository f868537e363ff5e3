//! Regression tests for what an independent attack on a running device and on the enrolment
//! tool found: each test reproduces the attack and checks it now fails safely.

use crate::util::{data_dir, facegate, lfw_people, run_ok};
use facegate_host::registry::Registry;

/// `facegate enroll Ann other.jpg` on an existing Ann used to add the other person's face with a
/// warning, after which the door granted them as Ann.
#[test]
fn enrolling_a_stranger_under_an_existing_name_is_refused_unless_forced() {
    let Some(data) = data_dir("enrolling_a_stranger_under_an_existing_name_is_refused_unless_forced") else { return };
    let people = lfw_people(&data.join("lfw"), 4);
    let (ann, other) = (&people[0].1, &people[1].1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let registry = tmp.path().join("registry.sqlite3");
    let templates = || {
        let reg = Registry::open(&registry).expect("registry");
        reg.person("Ann").expect("db").map_or(0, |p| p.templates)
    };

    run_ok(facegate(&registry).args(["enroll", "Ann"]).arg(&ann[0]));
    let out = run_ok(facegate(&registry).args(["enroll", "Ann"]).arg(&ann[1]));
    assert!(out.contains("1 template(s) added, 2 in all"), "the summary counts the person's templates: {out}");

    let refused = facegate(&registry).args(["enroll", "Ann"]).arg(&other[0]).output().expect("run facegate");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!("stranger under Ann's name: {}", stderr.trim());
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("below the same-person threshold") && stderr.contains("--force"), "{stderr}");
    assert_eq!(templates(), 2, "nothing was added");
    assert!(Registry::open(&registry).expect("registry").history(None).expect("history").is_empty());

    let forced =
        run_ok(facegate(&registry).env("USER", "alice-admin").args(["enroll", "Ann", "--force"]).arg(&other[0]));
    assert!(forced.contains("1 template(s) added, 3 in all"), "{forced}");
    let reg = Registry::open(&registry).expect("registry");
    let history = reg.history(reg.person("Ann").expect("db").map(|p| p.id)).expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!((history[0].actor.as_str(), history[0].action.as_str()), ("alice-admin", "enroll --force"));
    let photo = other[0].file_name().expect("file name").to_string_lossy();
    assert!(history[0].detail.contains(photo.as_ref()) && history[0].detail.contains("threshold"), "{history:?}");
}
