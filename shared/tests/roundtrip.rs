//! Property tests: every message round-trips through postcard and through the
//! full frame codec; sizes stay within MAX_FRAME; undecodable content is typed.

mod common;

use common::*;
use facegate_proto::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

fn postcard_roundtrip<T>(v: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut buf = vec![0u8; MAX_FRAME];
    let bytes = postcard::to_slice(v, &mut buf).expect("serialize");
    let (out, rest) = postcard::take_from_bytes::<T>(bytes).expect("deserialize");
    assert!(rest.is_empty(), "trailing bytes");
    out
}

proptest! {
    #[test]
    fn request_roundtrip(r in request()) {
        prop_assert_eq!(postcard_roundtrip(&r), r.clone());
        let f = Frame::request(7, r);
        prop_assert_eq!(decode_frame(&encode(&f)), Ok(f));
    }

    #[test]
    fn response_roundtrip(r in response()) {
        prop_assert_eq!(postcard_roundtrip(&r), r.clone());
        let f = Frame::response(u32::MAX, r);
        prop_assert_eq!(decode_frame(&encode(&f)), Ok(f));
    }

    #[test]
    fn event_roundtrip(e in event()) {
        prop_assert_eq!(postcard_roundtrip(&e), e.clone());
        let f = Frame::event(e);
        prop_assert_eq!(decode_frame(&encode(&f)), Ok(f));
    }

    #[test]
    fn frame_roundtrip(f in frame()) {
        let wire = encode(&f);
        prop_assert!(wire.len() <= MAX_FRAME);
        prop_assert_eq!(wire[0], 0);
        prop_assert_eq!(wire[wire.len() - 1], 0);
        prop_assert!(!wire[1..wire.len() - 1].contains(&0));
        prop_assert_eq!(decode_frame(&wire), Ok(f.clone()));
        // Stream decoder agrees with the one-shot decoder.
        let mut dec = FrameDecoder::new();
        let got: Vec<_> = dec.push(&wire).collect();
        prop_assert_eq!(got, vec![Ok(f)]);
    }

    /// The codec output equals the reference construction
    /// `0 | cobs(postcard || crc32_le) | 0`, independent of our streaming flavor.
    #[test]
    fn codec_matches_reference(f in frame()) {
        let mut raw = to_vec(&f);
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        let mut enc = vec![0u8; cobs::max_encoding_length(raw.len())];
        let n = cobs::encode(&raw, &mut enc);
        let mut expected = vec![0u8];
        expected.extend_from_slice(&enc[..n]);
        expected.push(0);
        prop_assert_eq!(encode(&f), expected);
    }

    /// Every too-small output buffer is a typed error, never a panic or a
    /// truncated frame.
    #[test]
    fn small_buffers_are_rejected(f in small_frame()) {
        let wire = encode(&f);
        for len in 0..wire.len() {
            let mut buf = vec![0u8; len];
            prop_assert_eq!(encode_frame(&f, &mut buf), Err(FrameError::BufferTooSmall));
        }
        let mut exact = vec![0u8; wire.len()];
        prop_assert_eq!(encode_frame(&f, &mut exact).map(|s| s.to_vec()), Ok(wire));
    }

    #[test]
    fn error_code_numbers_roundtrip(c in any::<u16>()) {
        prop_assert_eq!(ErrorCode::from_code(c).code(), c);
    }
}

/// The strategies produce every variant (the index functions are exhaustive
/// matches, so a new variant also forces a strategy update).
#[test]
fn strategies_cover_every_variant() {
    let mut runner = TestRunner::deterministic();
    let (mut req, mut resp, mut ev) =
        (vec![false; REQUEST_VARIANTS], vec![false; RESPONSE_VARIANTS], vec![false; EVENT_VARIANTS]);
    let (rs, ps, es) = (request(), response(), event());
    for _ in 0..2000 {
        req[request_index(&rs.new_tree(&mut runner).unwrap().current())] = true;
        resp[response_index(&ps.new_tree(&mut runner).unwrap().current())] = true;
        ev[event_index(&es.new_tree(&mut runner).unwrap().current())] = true;
    }
    assert!(req.iter().all(|b| *b), "request variants not covered: {req:?}");
    assert!(resp.iter().all(|b| *b), "response variants not covered: {resp:?}");
    assert!(ev.iter().all(|b| *b), "event variants not covered: {ev:?}");
}

/// The variant index on the wire equals the declaration index used in the
/// exhaustive matches (guards against accidental reordering).
#[test]
fn variant_index_is_wire_tag() {
    let mut runner = TestRunner::deterministic();
    let rs = request();
    for _ in 0..500 {
        let r = rs.new_tree(&mut runner).unwrap().current();
        let bytes = to_vec(&r);
        assert_eq!(bytes[0] as usize, request_index(&r));
    }
    let ps = response();
    for _ in 0..500 {
        let r = ps.new_tree(&mut runner).unwrap().current();
        let bytes = to_vec(&r);
        assert_eq!(bytes[0] as usize, response_index(&r));
    }
}

/// The largest messages fit in MAX_FRAME with room to spare.
#[test]
fn largest_messages_fit() {
    let chunk = Request::SyncChunk { seq: u32::MAX, templates: (0..MAX_SYNC_CHUNK).map(|_| max_template()).collect() };
    let mut f = Frame::request(u32::MAX, chunk);
    f.auth = Some(Auth { counter: u64::MAX, tag: [0xff; 16] });
    let wire = encode(&f);
    assert!(wire.len() <= MAX_FRAME, "sync chunk {} > {MAX_FRAME}", wire.len());
    assert!(wire.len() < 5000, "sync chunk unexpectedly large: {}", wire.len());
    assert_eq!(decode_frame(&wire), Ok(f));

    let page = Response::Templates(TemplatePage {
        items: (0..TEMPLATE_PAGE_MAX).map(|_| max_template().summary()).collect(),
        next: Some(u32::MAX),
        total: u32::MAX,
    });
    assert!(encode(&Frame::response(u32::MAX, page)).len() <= MAX_FRAME);

    let rec = AuditRecord {
        seq: u64::MAX,
        timestamp_ms: u64::MAX,
        kind: AuditKind::AuthFailure,
        person_id: Some(u32::MAX),
        score: Some(f32::MAX),
        detail: bounded_str(&"x".repeat(AUDIT_DETAIL_LEN)),
    };
    let audit = Response::Audit(AuditPage {
        records: (0..AUDIT_PAGE_MAX).map(|_| rec.clone()).collect(),
        next_seq: Some(u64::MAX),
    });
    assert!(encode(&Frame::response(u32::MAX, audit)).len() <= MAX_FRAME);
}

fn craft(payload: &[u8]) -> Vec<u8> {
    let mut raw = payload.to_vec();
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    let mut enc = vec![0u8; cobs::max_encoding_length(raw.len())];
    let n = cobs::encode(&raw, &mut enc);
    let mut wire = vec![0u8];
    wire.extend_from_slice(&enc[..n]);
    wire.push(0);
    wire
}

#[test]
fn unknown_variants_are_unsupported_with_id() {
    // id = 7, Body::Request, request variant 200 (from a future version).
    let unknown = "a kind of message this device does not know";
    assert_eq!(decode_frame(&craft(&[7, 0, 200, 1, 0])), Err(FrameError::Unsupported { id: Some(7), what: unknown }));
    // id = 300 (varint ac 02), unknown Body kind 9.
    assert_eq!(
        decode_frame(&craft(&[0xac, 0x02, 9, 0, 0])),
        Err(FrameError::Unsupported { id: Some(300), what: unknown })
    );
    // Unknown Setting variant inside SetConfig.
    assert_eq!(
        decode_frame(&craft(&[5, 0, 11, 77, 0, 0])),
        Err(FrameError::Unsupported { id: Some(5), what: "a value this device does not know" })
    );
    assert_eq!(FrameError::Unsupported { id: Some(5), what: unknown }.code(), ErrorCode::Unsupported);
}

#[test]
fn malformed_content_is_typed() {
    // Valid Ping frame followed by a trailing byte.
    let ok = to_vec(&Frame::request(3, Request::Ping { payload: u64::MAX }));
    let mut trailing = ok.clone();
    trailing.push(0x55);
    assert_eq!(
        decode_frame(&craft(&trailing)),
        Err(FrameError::Malformed { id: Some(3), what: "bytes after the message" })
    );
    // Truncated body (CRC valid over the truncated bytes).
    assert_eq!(
        decode_frame(&craft(&ok[..ok.len() - 2])),
        Err(FrameError::Malformed { id: Some(3), what: "cut short" })
    );
    // Invalid bool in Option tag position.
    assert!(matches!(
        decode_frame(&craft(&[1, 0, 1, 0, 7])),
        Err(FrameError::Malformed { .. }) | Err(FrameError::Unsupported { .. })
    ));
    // Hello with a host id longer than its 32-byte bound.
    let mut long = vec![2u8, 0, 0, 1, 40];
    long.extend_from_slice(&[b'h'; 40]);
    long.push(0);
    let err = decode_frame(&craft(&long)).expect_err("host id over its bound");
    assert_eq!(err, FrameError::Unsupported { id: Some(2), what: "Hello: host id longer than 32 bytes" });
    assert_eq!(err.to_string(), "unsupported message: Hello: host id longer than 32 bytes");
    // Empty payload: nothing but the CRC.
    assert_eq!(decode_frame(&craft(&[])), Err(FrameError::TooShort));
}

#[test]
fn unknown_error_codes_survive() {
    let f = Frame::error(9, ErrorCode::from_code(999), "future");
    let back = decode_frame(&encode(&f)).unwrap();
    match back.body {
        Body::Response(Response::Error(e)) => {
            assert_eq!(e.code, ErrorCode::Other(999));
            assert_eq!(e.code.code(), 999);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn error_codes_are_stable() {
    let table: Vec<(ErrorCode, u16)> = ErrorCode::ALL.iter().map(|c| (*c, c.code())).collect();
    assert_eq!(
        table,
        vec![
            (ErrorCode::BadFrame, 1),
            (ErrorCode::Unsupported, 2),
            (ErrorCode::VersionMismatch, 3),
            (ErrorCode::Unauthenticated, 10),
            (ErrorCode::BadMac, 11),
            (ErrorCode::Replay, 12),
            (ErrorCode::NotPaired, 13),
            (ErrorCode::PairingClosed, 14),
            (ErrorCode::PairedElsewhere, 15),
            (ErrorCode::ModelMismatch, 20),
            (ErrorCode::GenerationMismatch, 21),
            (ErrorCode::NoSyncSession, 22),
            (ErrorCode::SyncSequence, 23),
            (ErrorCode::SyncMismatch, 24),
            (ErrorCode::NotFound, 25),
            (ErrorCode::StoreFull, 30),
            (ErrorCode::StoreIo, 31),
            (ErrorCode::InvalidTemplate, 32),
            (ErrorCode::InvalidConfig, 40),
            (ErrorCode::Busy, 50),
            (ErrorCode::Internal, 51),
        ]
    );
    for c in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_code(c.code()), c);
    }
}

#[test]
fn bounded_str_truncates_on_char_boundary() {
    let s: heapless::String<5> = bounded_str("abcdé"); // é is 2 bytes
    assert_eq!(s.as_str(), "abcd");
    let s: heapless::String<6> = bounded_str("abcdé");
    assert_eq!(s.as_str(), "abcdé");
}

/// The decoder names the request by its variant index: the indices it knows must be the ones
/// the encoder writes, and its messages must fit an error reply's detail.
#[test]
fn over_long_fields_are_named_by_request() {
    let template = Template {
        id: 1,
        person_id: 1,
        display_name: bounded_str("a"),
        model_id: bounded_str("m"),
        embedding: Embedding::from_parts(1.0, [1; EMBEDDING_DIM]),
    };
    let chunk = heapless::Vec::from_slice(std::slice::from_ref(&template)).expect("one template");
    for (req, kind) in [
        (Request::Hello(HelloRequest { protocol_version: 1, host_id: bounded_str("h") }), 0u8),
        (Request::UpsertTemplate(template), 3),
        (Request::SyncChunk { seq: 0, templates: chunk }, 7),
    ] {
        let bytes = to_vec(&Frame::request(1, req));
        assert_eq!(&bytes[..3], &[1, 0, kind], "id 1, Body::Request, variant {kind}");
    }
    for kind in [0u8, 3, 7] {
        // A frame of that kind whose first text claims 200 bytes: over every bound.
        let mut wire = vec![9u8, 0, kind];
        if kind == 0 {
            wire.push(1);
        }
        wire.extend_from_slice(&[200, 1]);
        wire.extend_from_slice(&[b'x'; 200]);
        let Err(FrameError::Unsupported { id: Some(9), what }) = decode_frame(&craft(&wire)) else {
            panic!("kind {kind}: expected Unsupported")
        };
        assert!(what.len() <= ERROR_DETAIL_LEN, "{what}");
    }
    // The last kind this build knows is FetchAudit (12); 13 is a newer host's.
    let audit = to_vec(&Frame::request(1, Request::FetchAudit { since_seq: 0, limit: 1 }));
    assert_eq!(audit[2], 12);
}
