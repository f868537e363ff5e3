//! The host side of Facegate as a library, so end-to-end tests drive the same code as the CLI.
//!
//! [`registry`] (SQLite: people, templates, devices) and [`link`] (the protocol client) under
//! [`commands`], one module per `facegate` subcommand.

pub mod batch;
pub mod commands;
pub mod link;
pub mod pairs;
pub mod registry;

/// The face data sets folder (holding `lfw/`): `$FACEGATE_DATA`, else `../shared/faces`.
pub fn default_data_dir() -> std::path::PathBuf {
    std::env::var_os("FACEGATE_DATA").map(std::path::PathBuf::from).unwrap_or_else(|| "../shared/faces".into())
}
