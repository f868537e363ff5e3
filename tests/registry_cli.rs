//! `facegate list`, `rename`, `remove` through the real binary, on a registry filled in code.

use crate::util::facegate;
use facegate_host::registry::Registry;

fn unit(i: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; 512];
    v[i] = 1.0;
    v
}

#[test]
fn list_rename_and_remove_people() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("registry.sqlite3");
    {
        let mut reg = Registry::open(&path).expect("registry");
        reg.enroll("Ada Lovelace", "m/fp32", &[(unit(0), "a.jpg".into(), None), (unit(1), "b.jpg".into(), None)])
            .expect("enroll");
        reg.enroll("Alan Turing", "m/fp32", &[(unit(2), "c.jpg".into(), None)]).expect("enroll");
    }
    let list = |reg: &std::path::Path| -> serde_json::Value {
        let out = facegate(reg).args(["list", "--json"]).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("list --json")
    };
    let people = list(&path);
    let names: Vec<(&str, u64)> = people
        .as_array()
        .expect("array")
        .iter()
        .map(|p| (p["name"].as_str().unwrap_or("?"), p["templates"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(names, vec![("Ada Lovelace", 2), ("Alan Turing", 1)]);

    let out = facegate(&path).args(["rename", "Alan Turing", "Ada Lovelace"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "renaming onto an existing name is refused");
    assert!(facegate(&path).args(["rename", "Alan Turing", "A. M. Turing"]).status().expect("run").success());
    let out = facegate(&path).args(["remove", "Ada Lovelace"]).output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 template(s)"));
    let out = facegate(&path).args(["remove", "Nobody"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Nobody"));
    let people = list(&path);
    assert_eq!(people.as_array().map(Vec::len), Some(1));
    assert_eq!(people[0]["name"], "A. M. Turing");
}

#[test]
fn cards_are_given_checked_listed_and_taken_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("registry.sqlite3");
    {
        let mut reg = Registry::open(&path).expect("registry");
        reg.enroll("Ada Lovelace", "m/fp32", &[(unit(0), "a.jpg".into(), None)]).expect("enroll");
        reg.enroll("Alan Turing", "m/fp32", &[(unit(1), "b.jpg".into(), None)]).expect("enroll");
    }
    let run = |args: &[&str]| facegate(&path).args(args).output().expect("run");
    let out = run(&["card", "Ada Lovelace", "12:3456"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("card h10301 12:3456"));
    // Out of range for the format: refused with the range, nothing stored.
    let out = run(&["card", "Alan Turing", "256:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0-255"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["card", "Alan Turing", "12:3456"]);
    assert_eq!(out.status.code(), Some(2), "one card, one person");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already belongs"));
    assert!(run(&["card", "Alan Turing", "1000:70000", "--card-format", "h10304"]).status.success());
    let list = |path: &std::path::Path| -> serde_json::Value {
        let out = facegate(path).args(["list", "--json"]).output().expect("run");
        serde_json::from_slice(&out.stdout).expect("list --json")
    };
    let people = list(&path);
    assert_eq!(people[0]["card"], "h10301 12:3456");
    assert_eq!(people[1]["card"], "h10304 1000:70000");
    let out = run(&["card", "Alan Turing", "--card-raw", "35:1ABCDEF01"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(list(&path)[1]["card"], "35 bits 0x1abcdef01");
    assert_eq!(run(&["card", "Alan Turing", "--card-raw", "8:1FF"]).status.code(), Some(2), "value wider than 8 bits");
    assert!(run(&["card", "Ada Lovelace", "--remove"]).status.success());
    assert_eq!(list(&path)[0]["card"], serde_json::Value::Null);
}
