//! The host side of Facegate as a library, so end-to-end tests drive the same code as the CLI.
//!
//! [`registry`] (SQLite: people, templates, devices) and [`link`] (the protocol client) under
//! [`commands`], one module per `facegate` subcommand.

pub mod batch;
pub mod commands;
pub mod link;
pub mod pairs;
pub mod registry;
