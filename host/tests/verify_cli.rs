//! `facegate verify`: exit codes, JSON keys and clear errors, through the real binary.

use std::path::PathBuf;
use std::process::Command;

fn facegate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_facegate"))
}

fn lfw() -> Option<PathBuf> {
    let dir = std::env::var_os("FACEGATE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/faces"));
    let dir = if dir.is_relative() { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(dir) } else { dir };
    let lfw = dir.join("lfw");
    if lfw.is_dir() {
        return Some(lfw);
    }
    assert!(!std::env::var("FACEGATE_REQUIRE_DATA").is_ok_and(|v| v == "1"), "face data missing at {}", dir.display());
    eprintln!("SKIPPED: face data not found at {} (set FACEGATE_DATA)", dir.display());
    None
}

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
}

#[test]
fn same_person_exits_0_and_strangers_exit_1() {
    let Some(lfw) = lfw() else { return };
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
