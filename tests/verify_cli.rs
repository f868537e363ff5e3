//! `facegate verify`: exit codes, JSON keys and clear errors, through the real binary.

use crate::util::{data_dir, facegate_bin as facegate};

#[test]
fn unreadable_and_faceless_images_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, b"\xff\xd8\xff\xe0 truncated jpeg").expect("write");
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(200, 200, image::Rgb([90, 90, 90])).save(&blank).expect("png");
    let out = facegate().arg("verify").arg(&junk).arg(&blank).output().expect("run facegate");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junk.jpg") && err.contains("unreadable image"), "{err}");
    let out = facegate().arg("verify").arg(&blank).arg(&blank).output().expect("run facegate");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no face found"));
    // A missing file: the path and the operating system's reason, said once.
    let missing = dir.path().join("missing.jpg");
    let out = facegate().arg("verify").arg(&missing).arg(&blank).output().expect("run facegate");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.jpg"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn same_person_exits_0_and_strangers_exit_1() {
    let Some(lfw) = data_dir("verify_cli").map(|d| d.join("lfw")) else { return };
    let a = lfw.join("Aaron_Peirsol/Aaron_Peirsol_0001.jpg");
    let b = lfw.join("Aaron_Peirsol/Aaron_Peirsol_0002.jpg");
    let c = lfw.join("Abel_Pacheco/Abel_Pacheco_0001.jpg");
    let same = facegate().args(["verify", "--json"]).arg(&a).arg(&b).output().expect("run");
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stderr));
    let v: serde_json::Value = serde_json::from_slice(&same.stdout).expect("json");
    for key in ["score", "probability", "decision", "threshold"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert!(v["probability"].as_f64().unwrap_or(0.0) > 0.9);
    let diff = facegate().args(["verify", "--far", "1e-2"]).arg(&a).arg(&c).output().expect("run");
    assert_eq!(diff.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&diff.stdout).contains("DIFFERENT"));
}
