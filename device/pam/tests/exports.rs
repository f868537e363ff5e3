//! The built module exports the PAM entry points, and nothing of Rust's runtime: PAM finds
//! `pam_sm_*` by name with dlsym, and stray exports could clash inside the application.

use std::path::{Path, PathBuf};
use std::process::Command;

const MODULE: &str = "libpam_facegate.so";

/// Where cargo puts the module for this test's profile: next to `deps/`, which holds this
/// test binary; else `$CARGO_TARGET_DIR/debug` or the workspace's `target/debug`.
fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(profile_dir) = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.to_owned())) {
        dirs.push(profile_dir);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(Path::new(&target).join("debug"));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug"));
    dirs.into_iter().map(|d| d.join(MODULE)).collect()
}

fn module() -> PathBuf {
    if let Some(found) = candidates().into_iter().find(|p| p.is_file()) {
        return found;
    }
    let status = Command::new(env!("CARGO")).args(["build", "-p", "pam-facegate"]).status().expect("run cargo build");
    assert!(status.success(), "cargo build -p pam-facegate failed");
    candidates().into_iter().find(|p| p.is_file()).expect("libpam_facegate.so after building it")
}

#[test]
fn exports_only_the_pam_entry_points() {
    let so = module();
    let out = Command::new("nm").args(["-D", "--defined-only"]).arg(&so).output().expect("run nm (binutils)");
    assert!(out.status.success(), "nm failed: {}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = listing.lines().filter_map(|line| line.split_whitespace().last()).collect();
    let text: Vec<&str> =
        listing.lines().filter(|l| l.contains(" T ")).filter_map(|l| l.split_whitespace().last()).collect();
    println!("{}: exported functions {text:?}", so.display());

    for required in [
        "pam_sm_authenticate",
        "pam_sm_setcred",
        "pam_sm_acct_mgmt",
        "pam_sm_open_session",
        "pam_sm_close_session",
        "pam_sm_chauthtok",
    ] {
        assert!(text.contains(&required), "{required} not exported: {text:?}");
    }
    for name in &names {
        assert!(!name.contains("rust_begin_unwind") && !name.contains("rust_panic"), "Rust runtime exported: {name}");
    }
    assert!(text.iter().all(|n| n.starts_with("pam_sm_")), "unexpected exports: {text:?}");
}
