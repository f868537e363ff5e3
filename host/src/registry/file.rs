//! The registry file on disk: created private (0600 in a 0700 directory), restricted if it was not, and refused
//! when it is not an SQLite database.

use super::RegistryError;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates missing parent directories (0700) and the file (0600), and restricts an existing file to 0600.
pub(super) fn prepare_file(path: &Path) -> Result<(), RegistryError> {
    let io = |error| RegistryError::Io { path: path.to_path_buf(), error };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Only directories created here get 0700; an existing parent is the user's business.
        DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(io)?;
    }
    // Never truncate: an existing file is either our data or someone else's, refused untouched later.
    let file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(RegistryError::NotARegistry { path: path.to_path_buf() });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:o}"),
            "registry holds biometric templates and pairing keys but was accessible to other users; setting mode 600"
        );
        // fchmod on the handle we checked, not a second path lookup.
        file.set_permissions(Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

pub(super) fn not_a_db_or(path: &Path, e: rusqlite::Error) -> RegistryError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => RegistryError::NotARegistry { path: path.to_path_buf() },
        _ => RegistryError::Sqlite(e),
    }
}
