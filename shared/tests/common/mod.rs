//! Shared proptest strategies and fixtures for the integration tests.
#![allow(dead_code)]

use facegate_proto::heapless;
use facegate_proto::*;
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------- leaves

pub fn bstring<const N: usize>() -> impl Strategy<Value = heapless::String<N>> {
    // Mix of ASCII and multi-byte chars; bounded_str cuts at a char boundary.
    vec(prop_oneof![3 => any::<char>(), 5 => proptest::char::range('a', 'z')], 0..=N)
        .prop_map(|cs| bounded_str::<N>(&cs.into_iter().collect::<std::string::String>()))
}

pub fn hvec<T: core::fmt::Debug, const N: usize>(
    elem: impl Strategy<Value = T>,
) -> impl Strategy<Value = heapless::Vec<T, N>> {
    vec(elem, 0..=N).prop_map(|v| v.into_iter().collect())
}

/// Any f32 except NaN (NaN != NaN would break equality checks, not the codec).
pub fn float() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("not NaN", |f| !f.is_nan())
}

pub fn embedding() -> impl Strategy<Value = Embedding> {
    (float(), vec(any::<i16>(), EMBEDDING_DIM)).prop_map(|(scale, v)| {
        let mut values = [0i16; EMBEDDING_DIM];
        values.copy_from_slice(&v);
        Embedding::from_parts(scale, values)
    })
}

pub fn template() -> impl Strategy<Value = Template> {
    (any::<u32>(), any::<u32>(), bstring(), bstring(), embedding()).prop_map(
        |(id, person_id, display_name, model_id, embedding)| Template {
            id,
            person_id,
            display_name,
            model_id,
            embedding,
        },
    )
}

pub fn summary() -> impl Strategy<Value = TemplateSummary> {
    (any::<u32>(), any::<u32>(), bstring()).prop_map(|(id, person_id, display_name)| TemplateSummary {
        id,
        person_id,
        display_name,
    })
}

pub fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![proptest::sample::select(ErrorCode::ALL.to_vec()), any::<u16>().prop_map(ErrorCode::from_code),]
}

pub fn setting() -> impl Strategy<Value = Setting> {
    prop_oneof![
        float().prop_map(|t| Setting::Threshold(Threshold::Cosine(t))),
        float().prop_map(|f| Setting::Threshold(Threshold::FarTarget(f))),
        (any::<u8>(), any::<u8>()).prop_map(|(required, window)| Setting::Consensus { required, window }),
        any::<bool>().prop_map(Setting::Liveness),
        (any::<u8>(), any::<u16>(), any::<u16>()).prop_map(|(m, w, c)| Setting::Lockout {
            max_failures: m,
            window_secs: w,
            cooldown_secs: c,
        }),
    ]
}

pub fn audit_record() -> impl Strategy<Value = AuditRecord> {
    let kinds = vec![
        AuditKind::Boot,
        AuditKind::Paired,
        AuditKind::AccessGranted,
        AuditKind::AccessDenied,
        AuditKind::UnknownFace,
        AuditKind::LockedOut,
        AuditKind::SpoofSuspected,
        AuditKind::TemplateUpserted,
        AuditKind::TemplateDeleted,
        AuditKind::SyncCommitted,
        AuditKind::SyncAborted,
        AuditKind::ConfigChanged,
        AuditKind::AuthFailure,
        AuditKind::TemplateSetAside,
        AuditKind::LogRotated,
        AuditKind::Unlock,
        AuditKind::LoginsChanged,
        AuditKind::CardsChanged,
        AuditKind::Panel,
        AuditKind::AccessChanged,
        AuditKind::NotAllowed,
        AuditKind::TemplateProposed,
        AuditKind::ProposalsDropped,
    ];
    (
        any::<u64>(),
        any::<u64>(),
        proptest::sample::select(kinds),
        any::<Option<u32>>(),
        proptest::option::of(float()),
        bstring(),
    )
        .prop_map(|(seq, timestamp_ms, kind, person_id, score, detail)| AuditRecord {
            seq,
            timestamp_ms,
            kind,
            person_id,
            score,
            detail,
        })
}

pub fn device_info() -> impl Strategy<Value = DeviceInfo> {
    (
        any::<u16>(),
        bstring(),
        bstring(),
        any::<u32>(),
        (any::<u32>(), any::<u32>(), any::<u64>()),
        any::<[u8; 32]>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(pv, device_id, model_id, caps, (count, cap, gen), nonce, paired, open)| DeviceInfo {
            protocol_version: pv,
            device_id,
            model_id,
            capabilities: Capabilities(caps),
            template_count: count,
            template_capacity: cap,
            store_generation: gen,
            session_nonce: nonce,
            paired,
            pairing_open: open,
        })
}

pub fn match_event() -> impl Strategy<Value = MatchEvent> {
    let decisions = vec![
        Decision::Granted,
        Decision::Denied,
        Decision::Unknown,
        Decision::LockedOut,
        Decision::SpoofSuspected,
        Decision::NotAllowedNow,
    ];
    (
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(
            (any::<u32>(), any::<u32>()).prop_map(|(t, p)| MatchedIdentity { template_id: t, person_id: p }),
        ),
        float(),
        proptest::sample::select(decisions),
        proptest::option::of(float()),
        any::<u32>(),
    )
        .prop_map(|(event_seq, frame_counter, identity, score, decision, liveness, latency_ms)| MatchEvent {
            event_seq,
            frame_counter,
            identity,
            score,
            decision,
            liveness,
            latency_ms,
        })
}

// ---------------------------------------------------------------- messages

pub fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<u16>(), bstring())
            .prop_map(|(protocol_version, host_id)| Request::Hello(HelloRequest { protocol_version, host_id })),
        any::<u64>().prop_map(|payload| Request::Ping { payload }),
        any::<[u8; 32]>().prop_map(|key| Request::Pair { key }),
        template().prop_map(Request::UpsertTemplate),
        any::<u32>().prop_map(|id| Request::DeleteTemplate { id }),
        (any::<u32>(), any::<u16>()).prop_map(|(cursor, limit)| Request::ListTemplates { cursor, limit }),
        (any::<u64>(), any::<u32>())
            .prop_map(|(g, n)| Request::SyncBegin { expected_generation: g, total_templates: n }),
        (any::<u32>(), hvec(template())).prop_map(|(seq, templates)| Request::SyncChunk { seq, templates }),
        (any::<u32>(), any::<[u8; 32]>()).prop_map(|(n, digest)| Request::SyncCommit { template_count: n, digest }),
        Just(Request::SyncAbort),
        proptest::sample::select(ConfigKey::ALL.to_vec()).prop_map(|key| Request::GetConfig { key }),
        setting().prop_map(Request::SetConfig),
        (any::<u64>(), any::<u16>()).prop_map(|(since_seq, limit)| Request::FetchAudit { since_seq, limit }),
        hvec((any::<u32>(), bstring()).prop_map(|(person_id, login)| LoginEntry { person_id, login }))
            .prop_map(|logins| Request::SetLogins { logins }),
        (bstring(), any::<u32>(), bstring()).prop_map(|(login, timeout_ms, service)| Request::Unlock(UnlockRequest {
            login,
            timeout_ms,
            service
        })),
        (
            any::<bool>(),
            any::<bool>(),
            hvec((any::<u32>(), card()).prop_map(|(person_id, card)| CardEntry { person_id, card }))
        )
            .prop_map(|(first, last, cards)| Request::SetCards { first, last, cards }),
        (any::<bool>(), any::<bool>(), hvec(access_entry())).prop_map(|(first, last, entries)| Request::SetAccess {
            first,
            last,
            entries
        }),
        (any::<u32>(), any::<u16>()).prop_map(|(cursor, limit)| Request::ListProposals { cursor, limit }),
        hvec(any::<u32>()).prop_map(|ids| Request::DropProposals { ids }),
    ]
}

pub fn proposal() -> impl Strategy<Value = Proposal> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), bstring(), embedding()),
        (any::<u64>(), float(), float(), any::<u16>(), float(), float()),
    )
        .prop_map(
            |(
                (id, person_id, matched, model_id, embedding),
                (unix_time, score, threshold, face_px, sharpness, yaw_deg),
            )| {
                Proposal {
                    id,
                    person_id,
                    matched,
                    model_id,
                    embedding,
                    unix_time,
                    score,
                    threshold,
                    face_px,
                    sharpness,
                    yaw_deg,
                }
            },
        )
}

pub fn access_entry() -> impl Strategy<Value = AccessEntry> {
    let window = (any::<u8>(), any::<u16>(), any::<u16>()).prop_map(|(days, start, end)| Window { days, start, end });
    (any::<u32>(), any::<Option<i32>>(), any::<Option<i32>>(), hvec(window)).prop_map(
        |(person_id, valid_from, valid_until, windows)| AccessEntry { person_id, valid_from, valid_until, windows },
    )
}

pub fn card() -> impl Strategy<Value = Card> {
    (any::<u8>(), hvec(any::<u8>())).prop_map(|(bits, data)| Card { bits, data })
}

pub fn unlock_reply() -> impl Strategy<Value = UnlockReply> {
    prop_oneof![
        (any::<u32>(), float()).prop_map(|(person_id, score)| UnlockReply::Granted { person_id, score }),
        float().prop_map(|score| UnlockReply::NotRecognised { score }),
        Just(UnlockReply::NoFace),
        Just(UnlockReply::TooDark),
        Just(UnlockReply::NotEnrolled),
        any::<u32>().prop_map(|seconds_left| UnlockReply::LockedOut { seconds_left }),
        Just(UnlockReply::Busy),
        Just(UnlockReply::Timeout),
        float().prop_map(|liveness| UnlockReply::SpoofSuspected { liveness }),
    ]
}

pub fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        device_info().prop_map(Response::Hello),
        any::<u64>().prop_map(|payload| Response::Pong { payload }),
        Just(Response::Paired),
        (any::<u32>(), any::<u64>()).prop_map(|(id, generation)| Response::TemplateStored { id, generation }),
        (any::<u32>(), any::<u64>()).prop_map(|(id, generation)| Response::TemplateDeleted { id, generation }),
        (hvec(summary()), any::<Option<u32>>(), any::<u32>())
            .prop_map(|(items, next, total)| Response::Templates(TemplatePage { items, next, total })),
        any::<u8>().prop_map(|m| Response::SyncStarted { max_chunk_templates: m }),
        (any::<u32>(), any::<u32>()).prop_map(|(seq, received)| Response::SyncChunkAccepted { seq, received }),
        (any::<u64>(), any::<u32>())
            .prop_map(|(generation, n)| Response::SyncCommitted { generation, template_count: n }),
        any::<u64>().prop_map(|generation| Response::SyncAborted { generation }),
        setting().prop_map(Response::Config),
        (hvec(audit_record()), any::<Option<u64>>())
            .prop_map(|(records, next_seq)| Response::Audit(AuditPage { records, next_seq })),
        (error_code(), bstring()).prop_map(|(code, detail)| Response::Error(ErrorResponse { code, detail })),
        any::<u16>().prop_map(|count| Response::LoginsStored { count }),
        unlock_reply().prop_map(Response::Unlock),
        (any::<u32>(), any::<bool>()).prop_map(|(count, stored)| Response::CardsStored { count, stored }),
        (any::<u32>(), any::<bool>()).prop_map(|(count, stored)| Response::AccessStored { count, stored }),
        (hvec(proposal()), any::<Option<u32>>(), any::<u32>())
            .prop_map(|(items, next, total)| Response::Proposals(ProposalPage { items, next, total })),
        any::<u32>().prop_map(|remaining| Response::ProposalsDropped { remaining }),
    ]
}

pub fn event() -> impl Strategy<Value = Event> {
    match_event().prop_map(Event::Match)
}

pub fn body() -> impl Strategy<Value = Body> {
    prop_oneof![request().prop_map(Body::Request), response().prop_map(Body::Response), event().prop_map(Body::Event),]
}

pub fn auth() -> impl Strategy<Value = Auth> {
    (any::<u64>(), any::<[u8; 16]>()).prop_map(|(counter, tag)| Auth { counter, tag })
}

pub fn frame() -> impl Strategy<Value = Frame> {
    (any::<u32>(), body(), proptest::option::of(auth())).prop_map(|(id, body, auth)| Frame { id, body, auth })
}

/// Lighter frames (no big template payloads) for stream tests with many frames.
pub fn small_frame() -> impl Strategy<Value = Frame> {
    let body = prop_oneof![
        any::<u64>().prop_map(|payload| Body::Request(Request::Ping { payload })),
        any::<u32>().prop_map(|id| Body::Request(Request::DeleteTemplate { id })),
        setting().prop_map(|s| Body::Request(Request::SetConfig(s))),
        event().prop_map(Body::Event),
        (error_code(), bstring())
            .prop_map(|(code, detail)| Body::Response(Response::Error(ErrorResponse { code, detail }))),
        (hvec(summary()), any::<Option<u32>>(), any::<u32>())
            .prop_map(|(items, next, total)| Body::Response(Response::Templates(TemplatePage { items, next, total }))),
    ];
    (any::<u32>(), body, proptest::option::of(auth())).prop_map(|(id, body, auth)| Frame { id, body, auth })
}

// ---------------------------------------------------------------- variant indices
// Exhaustive matches: adding a variant breaks compilation here until the
// strategies above (and the golden vectors) are extended.

pub const REQUEST_VARIANTS: usize = 19;
pub fn request_index(r: &Request) -> usize {
    match r {
        Request::Hello(_) => 0,
        Request::Ping { .. } => 1,
        Request::Pair { .. } => 2,
        Request::UpsertTemplate(_) => 3,
        Request::DeleteTemplate { .. } => 4,
        Request::ListTemplates { .. } => 5,
        Request::SyncBegin { .. } => 6,
        Request::SyncChunk { .. } => 7,
        Request::SyncCommit { .. } => 8,
        Request::SyncAbort => 9,
        Request::GetConfig { .. } => 10,
        Request::SetConfig(_) => 11,
        Request::FetchAudit { .. } => 12,
        Request::SetLogins { .. } => 13,
        Request::Unlock(_) => 14,
        Request::SetCards { .. } => 15,
        Request::SetAccess { .. } => 16,
        Request::ListProposals { .. } => 17,
        Request::DropProposals { .. } => 18,
    }
}

pub const RESPONSE_VARIANTS: usize = 19;
pub fn response_index(r: &Response) -> usize {
    match r {
        Response::Hello(_) => 0,
        Response::Pong { .. } => 1,
        Response::Paired => 2,
        Response::TemplateStored { .. } => 3,
        Response::TemplateDeleted { .. } => 4,
        Response::Templates(_) => 5,
        Response::SyncStarted { .. } => 6,
        Response::SyncChunkAccepted { .. } => 7,
        Response::SyncCommitted { .. } => 8,
        Response::SyncAborted { .. } => 9,
        Response::Config(_) => 10,
        Response::Audit(_) => 11,
        Response::Error(_) => 12,
        Response::LoginsStored { .. } => 13,
        Response::Unlock(_) => 14,
        Response::CardsStored { .. } => 15,
        Response::AccessStored { .. } => 16,
        Response::Proposals(_) => 17,
        Response::ProposalsDropped { .. } => 18,
    }
}

pub const EVENT_VARIANTS: usize = 1;
pub fn event_index(e: &Event) -> usize {
    match e {
        Event::Match(_) => 0,
    }
}

// ---------------------------------------------------------------- fixtures

pub const TEST_KEY: Key = [0x42; 32];
pub const TEST_NONCE: SessionNonce = {
    let mut n = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        n[i] = i as u8;
        i += 1;
    }
    n
};

/// Deterministic embedding (integer-derived, so identical on every platform).
pub fn fixed_embedding(salt: u32) -> Embedding {
    let mut values = [0i16; EMBEDDING_DIM];
    for (i, v) in values.iter_mut().enumerate() {
        let x = (i as u32).wrapping_mul(2654435761).wrapping_add(salt.wrapping_mul(40503));
        *v = ((x >> 16) % 20001) as i16 - 10000;
    }
    Embedding::from_parts(1.0 / 32767.0, values)
}

pub fn fixed_template(id: u32) -> Template {
    Template {
        id,
        person_id: 1000 + id,
        display_name: bounded_str("Ada Lovelace"),
        model_id: bounded_str("arcface-r100-v1"),
        embedding: fixed_embedding(id),
    }
}

/// Largest possible template (all bounded fields full, max varints).
pub fn max_template() -> Template {
    Template {
        id: u32::MAX,
        person_id: u32::MAX,
        display_name: bounded_str(&"\u{10FFFF}".repeat(DISPLAY_NAME_LEN)),
        model_id: bounded_str(&"m".repeat(MODEL_ID_LEN)),
        embedding: Embedding::from_parts(f32::MAX, [i16::MIN; EMBEDDING_DIM]),
    }
}

/// Encodes through the no-alloc API (tests must not need the `std` feature).
pub fn encode(f: &Frame) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_FRAME];
    encode_frame(f, &mut buf).expect("encode").to_vec()
}

/// postcard to a Vec without needing postcard's `alloc` feature.
pub fn to_vec<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_FRAME];
    postcard::to_slice(v, &mut buf).expect("serialize").to_vec()
}
