//! Facegate device side: the face engine (reused by the host) and the kiosk firmware.
//!
//! Data flows one way through [`engine`]:
//! `decode -> detect -> landmarks -> align -> quality -> embed -> matcher`.

pub mod engine;

pub use engine::{Engine, EngineConfig, EngineError, FacePolicy};
