//! Facegate device side: the face engine (reused by the host) and the kiosk firmware.
//!
//! Data flows one way through [`engine`]:
//! `decode -> detect -> landmarks -> align -> quality -> embed -> matcher`.
//! The firmware around it: [`source`] (camera, directory) -> [`kiosk`] (track, consensus,
//! lockout, decide) -> [`display`], [`audit_log`], events over [`link`]; [`store`] keeps the
//! encrypted templates; [`core`] is the state they share; [`config`] the TOML file.

pub mod audit_log;
pub mod config;
pub mod core;
pub mod display;
pub mod engine;
pub mod kiosk;
pub mod link;
pub mod source;
pub mod store;

pub use engine::{Engine, EngineConfig, EngineError, FacePolicy};
