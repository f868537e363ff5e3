//! MAC authentication: accepted when intact, rejected when altered, replayed,
//! reordered, from another session/key, or missing on state-changing requests.

mod common;

use common::*;
use facegate_proto::*;
use proptest::prelude::*;

fn state_changing() -> impl Strategy<Value = Request> {
    request().prop_filter("state-changing", Request::changes_state)
}

fn pair() -> (Signer, Verifier) {
    (Signer::new(TEST_KEY, TEST_NONCE), Verifier::new(TEST_KEY, TEST_NONCE))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn signed_frames_verify_over_the_wire(id in any::<u32>(), r in request()) {
        let (mut s, mut v) = pair();
        let f = s.signed_request(id, r);
        let back = decode_frame(&encode(&f)).unwrap();
        prop_assert_eq!(v.verify(&back), Ok(()));
        prop_assert_eq!(v.last_counter(), Some(1));
    }

    #[test]
    fn altered_frames_are_rejected(
        r in state_changing(),
        other in state_changing(),
        new_id in any::<u32>(),
        byte in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (mut s, _) = pair();
        let f = s.signed_request(5, r.clone());

        // Different id.
        if new_id != 5 {
            let mut g = f.clone();
            g.id = new_id;
            prop_assert_eq!(pair().1.verify(&g), Err(AuthError::BadMac));
        }
        // Different body with the original stamp.
        if other != r {
            let mut g = f.clone();
            g.body = Body::Request(other);
            prop_assert_eq!(pair().1.verify(&g), Err(AuthError::BadMac));
        }
        // Any bit of the tag.
        let mut g = f.clone();
        let auth = g.auth.as_mut().unwrap();
        auth.tag[byte.index(16)] ^= 1 << bit;
        prop_assert_eq!(pair().1.verify(&g), Err(AuthError::BadMac));
        // The counter is covered too.
        let mut g = f.clone();
        g.auth.as_mut().unwrap().counter += 1;
        prop_assert_eq!(pair().1.verify(&g), Err(AuthError::BadMac));
        // Body reinterpreted as a response with the same bytes is impossible,
        // but a stamp moved onto a different frame kind must fail.
        let mut g = f.clone();
        g.body = Body::Response(Response::SyncAborted { generation: 0 });
        prop_assert_eq!(pair().1.verify(&g), Err(AuthError::BadMac));
    }

    #[test]
    fn missing_mac_on_state_change_is_unauthenticated(r in request()) {
        let (_, mut v) = pair();
        let f = Frame::request(1, r.clone());
        let expected = if r.changes_state() { Err(AuthError::Unauthenticated) } else { Ok(()) };
        prop_assert_eq!(v.verify(&f), expected);
    }
}

#[test]
fn replay_is_rejected() {
    let (mut s, mut v) = pair();
    let f = s.signed_request(1, Request::DeleteTemplate { id: 3 });
    assert_eq!(v.verify(&f), Ok(()));
    assert_eq!(v.verify(&f), Err(AuthError::Replay));
    assert_eq!(AuthError::Replay.code(), ErrorCode::Replay);
}

#[test]
fn reordering_is_rejected() {
    let (mut s, mut v) = pair();
    let f1 = s.signed_request(1, Request::SyncAbort);
    let f2 = s.signed_request(2, Request::SyncAbort);
    let f3 = s.signed_request(3, Request::SyncAbort);
    assert_eq!(v.verify(&f2), Ok(()));
    assert_eq!(v.verify(&f1), Err(AuthError::Replay));
    // Gaps are fine (lost frames), only going backwards is not.
    assert_eq!(v.verify(&f3), Ok(()));
    assert_eq!(v.last_counter(), Some(3));
}

#[test]
fn other_session_or_key_is_rejected() {
    let mut s = Signer::new(TEST_KEY, TEST_NONCE);
    let f = s.signed_request(1, Request::SyncAbort);
    let mut other_nonce = TEST_NONCE;
    other_nonce[0] ^= 1;
    assert_eq!(Verifier::new(TEST_KEY, other_nonce).verify(&f), Err(AuthError::BadMac));
    assert_eq!(Verifier::new([7; 32], TEST_NONCE).verify(&f), Err(AuthError::BadMac));
}

#[test]
fn forged_frames_do_not_advance_the_counter() {
    let (mut s, mut v) = pair();
    let good = s.signed_request(1, Request::SyncAbort);
    let mut forged = good.clone();
    forged.auth = Some(Auth { counter: u64::MAX, tag: [0; 16] });
    assert_eq!(v.verify(&forged), Err(AuthError::BadMac));
    assert_eq!(v.last_counter(), None);
    assert_eq!(v.verify(&good), Ok(()));
}

#[test]
fn pair_and_reads_need_no_mac_but_present_macs_are_checked() {
    let (mut s, mut v) = pair();
    assert_eq!(v.verify(&Frame::request(1, Request::Pair { key: [1; 32] })), Ok(()));
    assert_eq!(v.verify(&Frame::request(2, Request::Ping { payload: 0 })), Ok(()));
    let mut ping = s.signed_request(3, Request::Ping { payload: 0 });
    ping.auth.as_mut().unwrap().tag[0] ^= 1;
    assert_eq!(v.verify(&ping), Err(AuthError::BadMac));
}

#[test]
fn signer_counts_and_signs_only_when_needed() {
    let mut s = Signer::new(TEST_KEY, TEST_NONCE);
    assert_eq!(s.next_counter(), 1);
    let mut read = Frame::request(1, Request::GetConfig { key: ConfigKey::Liveness });
    s.sign_if_needed(&mut read);
    assert_eq!(read.auth, None);
    let mut write = Frame::request(2, Request::SetConfig(Setting::Liveness(true)));
    s.sign_if_needed(&mut write);
    assert_eq!(write.auth.map(|a| a.counter), Some(1));
    assert_eq!(s.next_counter(), 2);
    // Debug output never contains the key.
    assert!(!format!("{s:?}").contains("66"));
}

#[test]
fn changes_state_table() {
    use Request::*;
    let t = fixed_template(1);
    let cases = [
        (Hello(HelloRequest { protocol_version: 1, host_id: bounded_str("h") }), false),
        (Ping { payload: 0 }, false),
        (Pair { key: [0; 32] }, false),
        (UpsertTemplate(t.clone()), true),
        (DeleteTemplate { id: 1 }, true),
        (ListTemplates { cursor: 0, limit: 10 }, false),
        (SyncBegin { expected_generation: 0, total_templates: 0 }, true),
        (SyncChunk { seq: 0, templates: Default::default() }, true),
        (SyncCommit { template_count: 0, digest: [0; 32] }, true),
        (SyncAbort, true),
        (GetConfig { key: ConfigKey::Threshold }, false),
        (SetConfig(Setting::Liveness(false)), true),
        (FetchAudit { since_seq: 0, limit: 10 }, false),
        (SetLogins { logins: Default::default() }, true),
        (Unlock(UnlockRequest { login: bounded_str("alice"), timeout_ms: 4000, service: bounded_str("sudo") }), false),
        (SetCards { first: true, last: true, cards: Default::default() }, true),
        (SetAccess { first: true, last: true, entries: Default::default() }, true),
        (ListProposals { cursor: 0, limit: 4 }, true),
        (DropProposals { ids: Default::default() }, true),
    ];
    assert_eq!(cases.len(), REQUEST_VARIANTS);
    for (r, expected) in cases {
        assert_eq!(r.changes_state(), expected, "{r:?}");
    }
    assert!(!Body::Event(Event::Match(MatchEvent {
        event_seq: 0,
        frame_counter: 0,
        identity: None,
        score: 0.0,
        decision: Decision::Unknown,
        liveness: None,
        latency_ms: 0,
    }))
    .changes_state());
}

/// Known-answer test: the MAC definition itself is frozen (also covered by
/// the signed golden vectors).
#[test]
fn mac_known_answer() {
    let body = Body::Request(Request::DeleteTemplate { id: 1 });
    let tag = compute_tag(&TEST_KEY, &TEST_NONCE, 1, 9, &body);
    // Recompute by hand: HMAC(key, nonce || 1u64 LE || postcard(9) || postcard(body)).
    use hmac::{Hmac, Mac};
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(&TEST_KEY).unwrap();
    m.update(&TEST_NONCE);
    m.update(&1u64.to_le_bytes());
    m.update(&[9, 0, 4, 1]);
    let full = m.finalize().into_bytes();
    assert_eq!(tag[..], full[..16]);
}
