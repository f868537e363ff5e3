//! Fuzzes the stream decoder with arbitrary bytes in arbitrary chunk sizes.
//!
//! Invariants: no panic, bounded buffering, and every frame the decoder
//! accepts re-encodes to bytes that decode and re-encode to the same bytes.
#![no_main]

use facegate_proto::{decode_frame, encode_frame, FrameDecoder, MAX_ENCODED, MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte picks the chunk size so chunk boundaries get fuzzed too.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut dec = FrameDecoder::new();
    let mut out = vec![0u8; MAX_FRAME];
    for piece in rest.chunks(chunk) {
        for result in dec.push(piece) {
            if let Ok(frame) = result {
                let wire = encode_frame(&frame, &mut out).expect("accepted frame re-encodes").to_vec();
                // Compared as bytes: a frame may carry a NaN, which never equals itself.
                let again = decode_frame(&wire).expect("re-encoded frame decodes");
                let mut out2 = vec![0u8; MAX_FRAME];
                assert_eq!(encode_frame(&again, &mut out2).expect("re-encodes"), &wire[..]);
            }
        }
        assert!(dec.buffered() <= MAX_ENCODED);
    }
    // The one-shot decoder must not panic either.
    let _ = decode_frame(rest);
});
