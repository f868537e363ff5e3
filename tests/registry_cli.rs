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
