//! Golden vectors: the wire format is frozen by `tests/vectors/*.hex`
//! (one complete wire frame per file, delimiters included, lowercase hex).
//!
//! The normal test fails if any encoding changes. After an *intended*,
//! compatible change (a new variant, hence a new vector) regenerate with:
//!
//! ```sh
//! FACEGATE_BLESS=1 cargo test -p facegate-proto --test golden -- --ignored bless
//! ```
//!
//! and review the diff: existing files must not change.

mod common;

use std::path::PathBuf;

use common::*;
use facegate_proto::*;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn signed(id: u32, counter_skip: u64, req: Request) -> Frame {
    let mut s = Signer::new(TEST_KEY, TEST_NONCE);
    for _ in 0..counter_skip {
        s.signed_request(0, Request::SyncAbort);
    }
    s.signed_request(id, req)
}

fn device_info() -> DeviceInfo {
    DeviceInfo {
        protocol_version: PROTOCOL_VERSION,
        device_id: bounded_str("FG-KIOSK-0001"),
        model_id: bounded_str("arcface-r100-v1"),
        capabilities: Capabilities::LIVENESS | Capabilities::AUDIT_LOG | Capabilities::SYNC,
        template_count: 2,
        template_capacity: 1000,
        store_generation: 17,
        session_nonce: TEST_NONCE,
        paired: true,
        pairing_open: false,
    }
}

fn match_event(identity: Option<MatchedIdentity>, decision: Decision) -> MatchEvent {
    MatchEvent {
        event_seq: 4242,
        frame_counter: 123_456,
        identity,
        score: 0.8125,
        decision,
        liveness: Some(0.96875),
        latency_ms: 87,
    }
}

/// (file stem, frame). Append only; never change an existing entry.
fn vectors() -> Vec<(&'static str, Frame)> {
    let t1 = fixed_template(1);
    let t2 = fixed_template(2);
    let mut digest = SyncDigest::new();
    digest.update(&t1);
    digest.update(&t2);
    let digest = digest.finalize();
    vec![
        (
            "hello_request",
            Frame::request(
                1,
                Request::Hello(HelloRequest {
                    protocol_version: PROTOCOL_VERSION,
                    host_id: bounded_str("enrol-station-1"),
                }),
            ),
        ),
        ("hello_response", Frame::response(1, Response::Hello(device_info()))),
        ("ping", Frame::request(2, Request::Ping { payload: 0xdead_beef })),
        ("pong", Frame::response(2, Response::Pong { payload: 0xdead_beef })),
        ("pair_request", Frame::request(3, Request::Pair { key: TEST_KEY })),
        ("paired", Frame::response(3, Response::Paired)),
        ("template_upsert", signed(4, 0, Request::UpsertTemplate(t1.clone()))),
        ("template_stored", Frame::response(4, Response::TemplateStored { id: 1, generation: 18 })),
        ("template_delete", signed(5, 1, Request::DeleteTemplate { id: 1 })),
        ("template_deleted", Frame::response(5, Response::TemplateDeleted { id: 1, generation: 19 })),
        ("list_templates", Frame::request(6, Request::ListTemplates { cursor: 0, limit: 32 })),
        (
            "template_page",
            Frame::response(
                6,
                Response::Templates(TemplatePage {
                    items: [t1.summary(), t2.summary()].into_iter().collect(),
                    next: Some(3),
                    total: 5,
                }),
            ),
        ),
        ("sync_begin", signed(7, 2, Request::SyncBegin { expected_generation: 19, total_templates: 2 })),
        ("sync_started", Frame::response(7, Response::SyncStarted { max_chunk_templates: 4 })),
        (
            "sync_chunk",
            signed(8, 3, Request::SyncChunk { seq: 0, templates: [t1.clone(), t2.clone()].into_iter().collect() }),
        ),
        ("sync_chunk_accepted", Frame::response(8, Response::SyncChunkAccepted { seq: 0, received: 2 })),
        ("sync_commit", signed(9, 4, Request::SyncCommit { template_count: 2, digest })),
        ("sync_committed", Frame::response(9, Response::SyncCommitted { generation: 20, template_count: 2 })),
        ("sync_abort", signed(10, 5, Request::SyncAbort)),
        ("sync_aborted", Frame::response(10, Response::SyncAborted { generation: 20 })),
        ("get_config", Frame::request(11, Request::GetConfig { key: ConfigKey::Lockout })),
        ("set_config", signed(12, 6, Request::SetConfig(Setting::Threshold(Threshold::Cosine(0.375))))),
        ("set_config_fpir", signed(18, 7, Request::SetConfig(Setting::Threshold(Threshold::FpirTarget(0.01))))),
        (
            "config",
            Frame::response(
                11,
                Response::Config(Setting::Lockout { max_failures: 5, window_secs: 60, cooldown_secs: 300 }),
            ),
        ),
        ("set_config_consensus", signed(13, 7, Request::SetConfig(Setting::Consensus { required: 3, window: 5 }))),
        ("fetch_audit", Frame::request(14, Request::FetchAudit { since_seq: 100, limit: 16 })),
        (
            "audit_page",
            Frame::response(
                14,
                Response::Audit(AuditPage {
                    records: [
                        AuditRecord {
                            seq: 100,
                            timestamp_ms: 1_732_800_000_000,
                            kind: AuditKind::AccessGranted,
                            person_id: Some(1001),
                            score: Some(0.8125),
                            detail: bounded_str("door 1"),
                        },
                        AuditRecord {
                            seq: 101,
                            timestamp_ms: 1_732_800_000_500,
                            kind: AuditKind::AuthFailure,
                            person_id: None,
                            score: None,
                            detail: bounded_str("bad mac"),
                        },
                    ]
                    .into_iter()
                    .collect(),
                    next_seq: Some(102),
                }),
            ),
        ),
        (
            "match_event",
            Frame::event(Event::Match(match_event(
                Some(MatchedIdentity { template_id: 1, person_id: 1001 }),
                Decision::Granted,
            ))),
        ),
        (
            "match_event_unknown",
            Frame::event(Event::Match(MatchEvent { liveness: None, ..match_event(None, Decision::Unknown) })),
        ),
        ("error", Frame::error(15, ErrorCode::GenerationMismatch, "expected 19, have 20")),
        ("error_pairing_closed", Frame::error(16, ErrorCode::PairingClosed, "")),
        ("error_paired_elsewhere", Frame::error(17, ErrorCode::PairedElsewhere, "")),
        (
            "set_logins",
            signed(
                19,
                8,
                Request::SetLogins {
                    logins: [LoginEntry { person_id: 1001, login: bounded_str("alice") }].into_iter().collect(),
                },
            ),
        ),
        ("logins_stored", Frame::response(19, Response::LoginsStored { count: 1 })),
        (
            "unlock_request",
            Frame::request(
                20,
                Request::Unlock(UnlockRequest {
                    login: bounded_str("alice"),
                    timeout_ms: 4000,
                    service: bounded_str("sudo"),
                }),
            ),
        ),
        (
            "unlock_granted",
            Frame::response(20, Response::Unlock(UnlockReply::Granted { person_id: 1001, score: 0.75 })),
        ),
        ("unlock_locked_out", Frame::response(21, Response::Unlock(UnlockReply::LockedOut { seconds_left: 30 }))),
        (
            "set_cards",
            signed(
                22,
                9,
                Request::SetCards {
                    first: true,
                    last: true,
                    cards: [CardEntry {
                        person_id: 1001,
                        card: CardFormat::H10301.encode(12, 3456).expect("in range"),
                    }]
                    .into_iter()
                    .collect(),
                },
            ),
        ),
        ("cards_stored", Frame::response(22, Response::CardsStored { count: 1, stored: true })),
        (
            "set_access",
            signed(
                23,
                10,
                Request::SetAccess {
                    first: true,
                    last: true,
                    entries: [AccessEntry {
                        person_id: 1001,
                        valid_from: None,
                        valid_until: facegate_proto::access::parse_date("2027-03-31"),
                        windows: facegate_proto::access::parse_schedule("Mon-Fri 07:00-19:00").expect("schedule"),
                    }]
                    .into_iter()
                    .collect(),
                },
            ),
        ),
        ("access_stored", Frame::response(23, Response::AccessStored { count: 1, stored: true })),
        ("list_proposals", signed(24, 11, Request::ListProposals { cursor: 0, limit: 4 })),
        (
            "proposals",
            Frame::response(
                24,
                Response::Proposals(ProposalPage {
                    items: [Proposal {
                        id: 7,
                        person_id: t1.person_id,
                        matched: t1.id,
                        model_id: t1.model_id.clone(),
                        embedding: t1.embedding.clone(),
                        unix_time: 1_790_000_000,
                        score: 0.625,
                        threshold: 0.5,
                        face_px: 180,
                        sharpness: 95.5,
                        yaw_deg: -12.25,
                    }]
                    .into_iter()
                    .collect(),
                    next: None,
                    total: 1,
                }),
            ),
        ),
        ("drop_proposals", signed(25, 12, Request::DropProposals { ids: [7].into_iter().collect() })),
        ("proposals_dropped", Frame::response(25, Response::ProposalsDropped { remaining: 0 })),
    ]
}

#[test]
fn golden_vectors_are_stable() {
    let mut failures = vec![];
    for (name, frame) in vectors() {
        let path = vectors_dir().join(format!("{name}.hex"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            failures.push(format!("{name}: missing {} (run the bless test)", path.display()));
            continue;
        };
        let wire = hex::decode(text.trim()).expect("valid hex");
        // Decodes to exactly the expected message...
        match decode_frame(&wire) {
            Ok(f) if f == frame => {}
            other => failures.push(format!("{name}: decodes to {other:?}")),
        }
        // ...and re-encodes byte-identically.
        if encode(&frame) != wire {
            failures.push(format!("{name}: encoding changed"));
        }
        // Signed vectors also freeze the MAC definition.
        if frame.auth.is_some() {
            let mut v = Verifier::new(TEST_KEY, TEST_NONCE);
            if v.verify(&frame) != Ok(()) {
                failures.push(format!("{name}: MAC does not verify"));
            }
        }
    }
    assert!(failures.is_empty(), "golden vector failures:\n{}", failures.join("\n"));
}

#[test]
fn no_stale_vector_files() {
    let known: Vec<String> = vectors().iter().map(|(n, _)| format!("{n}.hex")).collect();
    for entry in std::fs::read_dir(vectors_dir()).expect("vectors dir") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".hex") {
            assert!(known.contains(&name), "{name} has no entry in vectors()");
        }
    }
}

#[test]
fn vectors_cover_every_variant() {
    let (mut req, mut resp, mut ev) =
        (vec![false; REQUEST_VARIANTS], vec![false; RESPONSE_VARIANTS], vec![false; EVENT_VARIANTS]);
    for (_, f) in vectors() {
        match &f.body {
            Body::Request(r) => req[request_index(r)] = true,
            Body::Response(r) => resp[response_index(r)] = true,
            Body::Event(e) => ev[event_index(e)] = true,
        }
    }
    assert!(req.iter().all(|b| *b), "requests: {req:?}");
    assert!(resp.iter().all(|b| *b), "responses: {resp:?}");
    assert!(ev.iter().all(|b| *b), "events: {ev:?}");
}

#[test]
#[ignore = "writes tests/vectors; run with FACEGATE_BLESS=1"]
fn bless() {
    assert_eq!(
        std::env::var("FACEGATE_BLESS").as_deref(),
        Ok("1"),
        "set FACEGATE_BLESS=1 to regenerate golden vectors"
    );
    std::fs::create_dir_all(vectors_dir()).unwrap();
    for (name, frame) in vectors() {
        let path = vectors_dir().join(format!("{name}.hex"));
        std::fs::write(&path, hex::encode(encode(&frame)) + "\n").unwrap();
    }
}
