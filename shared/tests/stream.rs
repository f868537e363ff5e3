//! Stream decoding: arbitrary chunking, garbage, truncation, bit flips,
//! oversized input. Good frames after damage must still decode, damaged ones
//! must be rejected, and nothing may panic.

mod common;

use common::*;
use facegate_proto::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// Feeds `wire` in chunks cut at `cuts` (positions, any order/duplicates).
fn decode_chunked(wire: &[u8], cuts: &[usize]) -> (Vec<Frame>, Vec<FrameError>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.push(0);
    cuts.push(wire.len());
    cuts.sort_unstable();
    let mut dec = FrameDecoder::new();
    let (mut ok, mut err) = (vec![], vec![]);
    for w in cuts.windows(2) {
        for r in dec.push(&wire[w[0]..w[1]]) {
            match r {
                Ok(f) => ok.push(f),
                Err(e) => err.push(e),
            }
        }
    }
    (ok, err)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_chunk_sizes(frames in vec(small_frame(), 1..8), cuts in vec(any::<usize>(), 0..40)) {
        let wire: Vec<u8> = frames.iter().flat_map(encode).collect();
        let (ok, err) = decode_chunked(&wire, &cuts);
        prop_assert_eq!(ok, frames);
        prop_assert!(err.is_empty());
    }

    /// Big frames (sync chunks with templates) fed one byte at a time.
    #[test]
    fn big_frames_bytewise(frames in vec(frame(), 1..3)) {
        let wire: Vec<u8> = frames.iter().flat_map(encode).collect();
        let mut dec = FrameDecoder::new();
        let mut ok = vec![];
        for b in &wire {
            if let Some(r) = dec.feed(*b) {
                ok.push(r.expect("valid frame"));
            }
        }
        prop_assert_eq!(ok, frames);
    }

    #[test]
    fn garbage_between_frames(
        frames in vec(small_frame(), 1..6),
        garbage in vec(vec(any::<u8>(), 0..300), 6),
        cuts in vec(any::<usize>(), 0..20),
    ) {
        let mut wire = vec![];
        for (f, g) in frames.iter().zip(&garbage) {
            wire.extend_from_slice(g);
            wire.extend(encode(f));
        }
        let (ok, _err) = decode_chunked(&wire, &cuts);
        prop_assert_eq!(ok, frames);
    }

    #[test]
    fn truncated_frame_is_rejected_alone(
        frames in vec(small_frame(), 2..6),
        victim in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let k = victim.index(frames.len());
        let mut wire = vec![];
        for (i, f) in frames.iter().enumerate() {
            let e = encode(f);
            if i == k {
                // Keep the leading delimiter plus at least one byte, lose at
                // least the trailing delimiter and one content byte.
                let keep = 2 + cut.index(e.len() - 3);
                wire.extend_from_slice(&e[..keep]);
            } else {
                wire.extend(e);
            }
        }
        let (ok, err) = decode_chunked(&wire, &[]);
        let mut expected = frames.clone();
        expected.remove(k);
        prop_assert_eq!(ok, expected);
        if k + 1 < frames.len() {
            prop_assert_eq!(err.len(), 1);
        }
    }

    #[test]
    fn bit_flips_reject_only_the_damaged_frame(
        frames in vec(small_frame(), 2..6),
        victim in any::<prop::sample::Index>(),
        flips in vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let k = victim.index(frames.len());
        let mut wire = vec![];
        let mut changed = false;
        for (i, f) in frames.iter().enumerate() {
            let mut e = encode(f);
            if i == k {
                // Flip bits inside the frame, never in its delimiters.
                let orig = e.clone();
                let inner = e.len() - 2;
                for (pos, bit) in &flips {
                    e[1 + pos.index(inner)] ^= 1 << bit;
                }
                changed = e != orig;
            }
            wire.extend(e);
        }
        let (ok, err) = decode_chunked(&wire, &[]);
        if changed {
            let mut expected = frames.clone();
            expected.remove(k);
            prop_assert_eq!(ok, expected);
            prop_assert!(!err.is_empty());
        } else {
            // The flips cancelled out.
            prop_assert_eq!(ok, frames);
        }
    }

    /// Arbitrary bytes never panic, and the decoder recovers afterwards.
    #[test]
    fn arbitrary_input_never_panics(noise in vec(any::<u8>(), 0..20_000), f in small_frame()) {
        let mut dec = FrameDecoder::new();
        for _ in dec.push(&noise) {}
        prop_assert!(dec.buffered() <= MAX_ENCODED);
        let got: Vec<_> = dec.push(&encode(&f)).filter_map(Result::ok).collect();
        prop_assert_eq!(got, vec![f]);
        // One-shot decoder on noise: typed result, no panic.
        let _ = decode_frame(&noise);
    }

    /// Noise without zeros (only COBS-legal bytes) inside delimiters.
    #[test]
    fn nonzero_noise_frames_are_rejected(noise in vec(1u8..=255, 1..600)) {
        let mut wire = vec![0u8];
        wire.extend_from_slice(&noise);
        wire.push(0);
        let results: Vec<_> = FrameDecoder::new().push(&wire).collect();
        prop_assert_eq!(results.len(), 1);
        prop_assert!(results[0].is_err());
    }
}

#[test]
fn oversized_is_reported_once_then_resyncs() {
    let f = Frame::request(1, Request::Ping { payload: 42 });
    let mut wire = vec![0x11u8; MAX_FRAME * 3];
    wire.extend(encode(&f));
    let mut dec = FrameDecoder::new();
    let results: Vec<_> = dec.push(&wire).collect();
    assert_eq!(results, vec![Err(FrameError::Oversized), Ok(f)]);
}

#[test]
fn exactly_full_buffer_is_not_oversized() {
    // MAX_ENCODED non-zero bytes fit; the delimiter then yields a decode error
    // (it is noise) rather than Oversized.
    let mut wire = vec![0u8];
    wire.extend(std::iter::repeat_n(0x01u8, MAX_ENCODED));
    wire.push(0);
    let results: Vec<_> = FrameDecoder::new().push(&wire).collect();
    assert_eq!(results.len(), 1);
    assert_ne!(results[0], Err(FrameError::Oversized));
    // One more byte is oversized.
    let mut wire = vec![0u8];
    wire.extend(std::iter::repeat_n(0x01u8, MAX_ENCODED + 1));
    wire.push(0);
    let results: Vec<_> = FrameDecoder::new().push(&wire).collect();
    assert_eq!(results, vec![Err(FrameError::Oversized)]);
}

#[test]
fn empty_chunks_are_ignored() {
    let f = Frame::request(1, Request::SyncAbort);
    let mut wire = vec![0u8; 10];
    wire.extend(encode(&f));
    wire.extend([0u8; 10]);
    let results: Vec<_> = FrameDecoder::new().push(&wire).collect();
    assert_eq!(results, vec![Ok(f)]);
}

#[test]
fn push_with_callback_and_reset() {
    let f = Frame::request(3, Request::Ping { payload: 1 });
    let wire = encode(&f);
    let mut dec = FrameDecoder::default();
    // Half a frame, then a reset (link reconnect), then a whole frame.
    let mut got = vec![];
    dec.push_with(&wire[..wire.len() / 2], |r| got.push(r));
    assert!(dec.buffered() > 0);
    dec.reset();
    assert_eq!(dec.buffered(), 0);
    dec.push_with(&wire[1..], |r| got.push(r)); // even without leading 0
    assert_eq!(got, vec![Ok(f)]);
}

#[test]
fn decode_frame_rejects_multiple_frames() {
    let f = Frame::request(3, Request::Ping { payload: 1 });
    let mut wire = encode(&f);
    wire.extend(encode(&f));
    assert_eq!(decode_frame(&wire), Err(FrameError::Cobs));
    assert_eq!(decode_frame(&[0, 0]), Err(FrameError::TooShort));
    assert_eq!(decode_frame(&vec![1u8; MAX_FRAME]), Err(FrameError::Oversized));
}
