//! The host side of Facegate as a library, so end-to-end tests drive the same code as the CLI.

pub mod batch;
pub mod commands;
pub mod pairs;
