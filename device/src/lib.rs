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

/// Keeps memory the networks free inside the process instead of handing it back to the kernel
/// after every inference. Their intermediate tensors are 0.1-2 MB; glibc serves blocks that
/// large with `mmap` and unmaps them on free, so every frame paid the page faults again
/// (`facegate bench`: 16.9 -> 14.2 ms a face, peak RSS 119 -> 124 MB). Binaries call it first
/// thing; it is process-wide, so the library never calls it on its own. No-op off glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator thresholds; called before other threads start.
        unsafe {
            // Blocks up to 32 MB (glibc's maximum) come from the heap, not fresh mappings...
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            // ...and up to 64 MB of free heap stays mapped rather than being trimmed.
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        }
    }
}
