//! The Facegate firmware around the face engine ([`facegate_engine`]).
//!
//! Frames flow one way: a frame source -> [`kiosk`] (track, consensus, lockout, decide) ->
//! [`display`], [`audit_log`], events over [`link`], and the [`door`] (access-control panel
//! over OSDP, Wiegand, relay); [`unlock`] serves the PAM module; [`store`] keeps the encrypted
//! templates; [`state`] is the state they share; [`config`] the TOML file; [`bench`] measures
//! the loop.

pub mod audit_log;
pub mod bench;
pub mod config;
pub mod display;
pub mod door;
pub mod kiosk;
pub mod link;
pub mod state;
pub mod store;
pub mod unlock;
