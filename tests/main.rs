//! The end-to-end tests, one binary (so tract and SQLite are linked once): real device
//! processes, the `facegate` binary, the engine on LFW, faults, crashes and attacks. Shared
//! helpers live in [`util`].

mod util;

mod aarch64_e2e;
mod access_e2e;
mod bad_images;
mod conformance;
mod crash_e2e;
mod explain_e2e;
mod fault_e2e;
mod field_accuracy;
mod hardening_e2e;
mod kiosk_e2e;
mod kiosk_loop;
mod lfw_accuracy;
mod link_e2e;
mod liveness_e2e;
mod load_e2e;
mod models;
mod osdp_e2e;
mod package_e2e;
mod pam_e2e;
mod registry_cli;
mod security_e2e;
mod serial_e2e;
mod shared_registry;
mod updates_e2e;
mod verify_cli;
