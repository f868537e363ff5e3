//! Helpers for the end-to-end tests in `tests/`.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The face data sets folder: `$FACEGATE_DATA`, else `../shared/faces` beside the checkout.
///
/// When it is missing the test is skipped with a loud message, unless
/// `FACEGATE_REQUIRE_DATA=1` (set by CI), where a missing data set is a failure.
pub fn data_dir(test: &str) -> Option<PathBuf> {
    let dir =
        std::env::var_os("FACEGATE_DATA").map(PathBuf::from).unwrap_or_else(|| repo_root().join("../shared/faces"));
    let dir = if dir.is_relative() { repo_root().join(dir) } else { dir };
    if dir.join("lfw/pairs.txt").is_file() {
        return Some(dir);
    }
    let msg = format!(
        "{test}: face data not found at {} (set FACEGATE_DATA to the folder holding lfw/ and att_orl/)",
        dir.display()
    );
    if std::env::var("FACEGATE_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {msg}");
    None
}
