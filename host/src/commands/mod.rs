//! One module per `facegate` subcommand.

pub mod access;
pub mod audit;
pub mod bench;
pub mod card;
pub mod config;
pub mod crops;
pub mod demo;
pub mod enroll;
pub mod eval;
pub mod explain;
pub mod identify;
pub mod pair;
pub mod people;
pub mod profile;
pub mod registry_key;
pub mod sync;
pub mod templates;
pub mod verify;
