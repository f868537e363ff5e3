//! Fuzzes `decode_image`, the device's entry point for encoded photos
//! (JPEG, PNG, PGM/PPM, BMP).
//!
//! The product's source files are compiled in by path, so the fuzzed code is
//! byte-for-byte the device's code without building facegate-engine (tract).
//!
//! Invariants: no panic, no timeout, RSS stays far below the fuzzer's
//! `-rss_limit_mb` (the decoder caps allocations at 256 MB), and every
//! accepted image is non-empty and within `MAX_SIDE` x `MAX_SIDE`.
#![no_main]

// `path` on the inline module makes its file modules resolve inside
// device/engine/src/ (relative to this file's directory), so `image_io`'s
// `use super::error::...` works unchanged.
#[allow(dead_code)]
#[path = "../../src"]
mod engine {
    pub mod error;
    pub mod image_io;
}

use engine::image_io::{decode_image, MAX_SIDE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = decode_image(data) {
        let (w, h) = img.dimensions();
        assert!(w > 0 && h > 0, "accepted an empty image {w}x{h}");
        assert!(w <= MAX_SIDE && h <= MAX_SIDE, "accepted {w}x{h} beyond MAX_SIDE {MAX_SIDE}");
        assert_eq!(img.as_raw().len(), w as usize * h as usize * 3, "RGB8 buffer size mismatch");
    }
});
