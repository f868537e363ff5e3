//! One host session: the protocol state machine, free of I/O so it can be tested frame by
//! frame.
//!
//! Rules: `Hello` first (it gives the session nonce the MACs are bound to). `Ping` and
//! `Pair` need no MAC; every other request needs a valid MAC from the paired key — reads too,
//! since templates and the audit log say who came through the door. A session that has shown
//! the key receives match events.

use crate::state::Core;
use facegate_proto::{
    bounded_str, AccessEntry, AuditKind, AuditPage, Body, CardEntry, DeviceInfo, ErrorCode, Frame, FrameError,
    MatchEvent, Proposal, ProposalPage, Request, Response, SessionNonce, Setting, SyncDigest, Template, TemplatePage,
    Verifier, AUDIT_PAGE_MAX, MAX_SYNC_CHUNK, NO_ID, PROPOSALS_PER_PAGE, PROTOCOL_VERSION, TEMPLATE_PAGE_MAX,
};
use rand::RngCore;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// A sync in progress: templates are staged in memory and only replace the store, in one
/// atomic write, on a matching commit.
#[derive(Debug)]
struct SyncState {
    /// The store generation the host based this set on.
    base_generation: u64,
    total: u32,
    next_seq: u32,
    staged: Vec<Template>,
    digest: SyncDigest,
    /// Encoding of the last accepted chunk, to answer a retransmission (lost reply) idempotently.
    last_chunk: Option<Vec<u8>>,
}

/// Counters a test or the operator can read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    pub requests: u64,
    pub rejected_auth: u64,
    pub bad_frames: u64,
}

pub struct Session {
    core: Arc<Core>,
    nonce: Option<SessionNonce>,
    verifier: Option<Verifier>,
    events: Option<Receiver<MatchEvent>>,
    sync: Option<SyncState>,
    /// A card map being received in pieces ([`Request::SetCards`]).
    cards: Option<Vec<CardEntry>>,
    /// Access rules being received in pieces ([`Request::SetAccess`]).
    access: Option<Vec<AccessEntry>>,
    /// The pairing epoch the verifier's key belongs to ([`Core::pairing_epoch`]).
    epoch: u64,
    /// Another host paired since this session took its key, or the peer kept trying to pair
    /// outside the window: the session is closed after its reply.
    revoked: bool,
    /// Who is on the other end, for the audit log (`tcp:ADDR`, `serial`).
    peer: String,
    refused_pairs: u32,
    pub stats: SessionStats,
}

impl Drop for Session {
    fn drop(&mut self) {
        // A host that leaves mid-sync takes its staged set with it.
        if self.sync.is_some() {
            self.core.set_sync_progress(None);
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("stats", &self.stats).finish_non_exhaustive()
    }
}

/// A map sent in pieces, after one piece: more to come (staged so far), or all of it.
enum Staging<T> {
    More(u32),
    Done(Vec<T>),
}

/// Stages `piece` of a map sent in pieces into `slot` (`first` starts afresh); at most
/// `capacity` entries; a piece out of order or too many entries drops what was staged.
fn stage<T: Clone>(
    slot: &mut Option<Vec<T>>,
    first: bool,
    last: bool,
    piece: &[T],
    capacity: usize,
    what: &str,
) -> Result<Staging<T>, (ErrorCode, String)> {
    let staged = match (first, slot.as_mut()) {
        (true, _) => slot.insert(Vec::new()),
        (false, Some(staged)) => staged,
        (false, None) => return Err((ErrorCode::SyncSequence, format!("{what} without a first piece"))),
    };
    if staged.len() + piece.len() > capacity {
        *slot = None;
        return Err((ErrorCode::StoreFull, format!("more than {capacity} {what}")));
    }
    staged.extend_from_slice(piece);
    if !last {
        return Ok(Staging::More(staged.len() as u32));
    }
    Ok(Staging::Done(slot.take().unwrap_or_default()))
}

/// Refused `Pair` requests after which a connection is closed.
pub const MAX_REFUSED_PAIRS: u32 = 3;

/// The detail of [`ErrorCode::PairedElsewhere`].
const REPLACED: &str = "key replaced by a new pairing";

fn err(id: u32, code: ErrorCode, detail: &str) -> Frame {
    Frame::error(id, code, detail)
}

impl Session {
    pub fn new(core: Arc<Core>) -> Session {
        Session::with_peer(core, "unknown peer")
    }

    pub fn with_peer(core: Arc<Core>, peer: &str) -> Session {
        Session {
            peer: peer.to_owned(),
            refused_pairs: 0,
            core,
            nonce: None,
            verifier: None,
            events: None,
            sync: None,
            cards: None,
            access: None,
            epoch: 0,
            revoked: false,
            stats: SessionStats::default(),
        }
    }

    /// Reply to a frame that failed to decode.
    pub fn bad_frame(&mut self, e: FrameError) -> Frame {
        self.stats.bad_frames += 1;
        // Say what was wrong (which message, which field) where the decoder could tell.
        let detail = match e {
            FrameError::Unsupported { what, .. } | FrameError::Malformed { what, .. } => what.to_string(),
            other => other.to_string(),
        };
        err(e.frame_id().unwrap_or(NO_ID), e.code(), &detail)
    }

    /// Whether the host has said `Hello`.
    pub fn said_hello(&self) -> bool {
        self.nonce.is_some()
    }

    /// Whether the host has shown the pairing key (a valid MAC) in this session.
    pub fn is_authenticated(&self) -> bool {
        self.events.is_some()
    }

    /// Whether the link should close this session: another host paired since it took its key
    /// (checked after every request, and while idle for a session that has shown the key).
    pub fn is_revoked(&self) -> bool {
        self.revoked || (self.events.is_some() && self.epoch != self.core.pairing_epoch())
    }

    /// Events waiting for this session.
    pub fn pending_events(&mut self) -> Vec<Frame> {
        let Some(rx) = &self.events else { return Vec::new() };
        rx.try_iter().map(|e| Frame::event(facegate_proto::Event::Match(e))).collect()
    }

    /// Handles one decoded frame; every request gets exactly one reply.
    pub fn handle(&mut self, frame: Frame) -> Frame {
        let id = frame.id;
        let Body::Request(req) = &frame.body else {
            return err(id, ErrorCode::Unsupported, "device accepts requests only");
        };
        self.stats.requests += 1;
        match req {
            Request::Hello(h) => return self.hello(id, h.protocol_version),
            Request::Ping { payload } => return Frame::response(id, Response::Pong { payload: *payload }),
            _ => {}
        }
        let Some(nonce) = self.nonce else { return err(id, ErrorCode::NotPaired, "send Hello first") };
        if let Request::Pair { key } = req {
            return match self.core.pair(*key) {
                Ok(true) => {
                    tracing::info!("paired with a host");
                    self.verifier = Some(Verifier::new(*key, nonce));
                    self.epoch = self.core.pairing_epoch();
                    Frame::response(id, Response::Paired)
                }
                Ok(false) => {
                    self.core.note_refused_pair(&self.peer);
                    self.refused_pairs += 1;
                    // Like a burst of bad MACs: a peer that keeps trying is shown the door.
                    if self.refused_pairs >= MAX_REFUSED_PAIRS {
                        self.revoked = true;
                    }
                    err(id, ErrorCode::PairingClosed, "pairing window closed")
                }
                Err(e) => err(id, ErrorCode::StoreIo, &e.to_string()),
            };
        }
        if self.verifier.is_some() && self.epoch != self.core.pairing_epoch() {
            self.revoked = true;
            return err(id, ErrorCode::PairedElsewhere, REPLACED);
        }
        let Some(verifier) = self.verifier.as_mut() else {
            return err(id, ErrorCode::NotPaired, "device not paired");
        };
        let checked = match frame.auth {
            None => Err(ErrorCode::Unauthenticated),
            Some(_) => verifier.verify(&frame).map_err(|e| match e {
                facegate_proto::AuthError::Unauthenticated => ErrorCode::Unauthenticated,
                facegate_proto::AuthError::BadMac => ErrorCode::BadMac,
                facegate_proto::AuthError::Replay => ErrorCode::Replay,
            }),
        };
        // A MAC from the key the last pairing replaced: its host should hear why, not "bad MAC".
        let checked = match checked {
            Err(ErrorCode::BadMac)
                if self.core.replaced_key().is_some_and(|k| Verifier::new(k, nonce).verify(&frame).is_ok()) =>
            {
                self.revoked = true;
                Err(ErrorCode::PairedElsewhere)
            }
            other => other,
        };
        if let Err(code) = checked {
            self.stats.rejected_auth += 1;
            // One audit record per session for a burst of failures keeps a flood off the disk.
            if self.stats.rejected_auth == 1 {
                self.core.audit(AuditKind::AuthFailure, None, None, code.name());
            }
            tracing::warn!(code = code.name(), "rejected unauthenticated request");
            return err(
                id,
                code,
                if code == ErrorCode::PairedElsewhere { REPLACED } else { "request not authenticated" },
            );
        }
        if self.events.is_none() {
            self.events = Some(self.core.subscribe());
        }
        self.authenticated(id, req)
    }

    /// Stages a piece of the card map; the last piece replaces the stored map in one write.
    fn set_cards(&mut self, id: u32, first: bool, last: bool, cards: &[CardEntry]) -> Frame {
        // One card per person, so no more cards than templates fit.
        let capacity = self.core.lock().store.capacity();
        let mut staged = match stage(&mut self.cards, first, last, cards, capacity, "cards") {
            Ok(Staging::More(count)) => return Frame::response(id, Response::CardsStored { count, stored: false }),
            Ok(Staging::Done(staged)) => staged,
            Err((code, detail)) => return err(id, code, &detail),
        };
        staged.sort_by_key(|c| c.person_id);
        staged.dedup_by_key(|c| c.person_id);
        let count = staged.len() as u32;
        let mut inner = self.core.lock();
        match inner.store.set_cards(staged) {
            Ok(changed) => {
                if changed {
                    let detail = format!("{count} card(s) mapped");
                    self.core.audit_locked(&mut inner, AuditKind::CardsChanged, None, None, &detail);
                }
                Frame::response(id, Response::CardsStored { count, stored: true })
            }
            Err(e) => err(id, e.code(), &e.to_string()),
        }
    }

    /// Stages a piece of the access rules; the last piece replaces the stored rules in one write.
    fn set_access(&mut self, id: u32, first: bool, last: bool, entries: &[AccessEntry]) -> Frame {
        let capacity = self.core.lock().store.capacity();
        let staged = match stage(&mut self.access, first, last, entries, capacity, "access entries") {
            Ok(Staging::More(count)) => return Frame::response(id, Response::AccessStored { count, stored: false }),
            Ok(Staging::Done(staged)) => staged,
            Err((code, detail)) => return err(id, code, &detail),
        };
        let mut inner = self.core.lock();
        match inner.store.set_access(staged) {
            Ok(changed) => {
                let count = inner.store.access().len() as u32;
                if changed {
                    let detail = format!("access rules for {count} person(s)");
                    self.core.audit_locked(&mut inner, AuditKind::AccessChanged, None, None, &detail);
                }
                Frame::response(id, Response::AccessStored { count, stored: true })
            }
            Err(e) => err(id, e.code(), &e.to_string()),
        }
    }

    fn hello(&mut self, id: u32, version: u16) -> Frame {
        if version != PROTOCOL_VERSION {
            return err(id, ErrorCode::VersionMismatch, "protocol version differs");
        }
        // A Hello starts a fresh session on the same link: new nonce, no staged sync.
        let mut nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.nonce = Some(nonce);
        if self.sync.take().is_some() {
            self.core.set_sync_progress(None);
        }
        self.cards = None;
        self.access = None;
        self.events = None;
        // The epoch before the key: a pairing in between leaves the session conservatively stale.
        self.epoch = self.core.pairing_epoch();
        let key = self.core.pairing_key();
        self.verifier = key.map(|k| Verifier::new(k, nonce));
        // Before taking the store lock: `Core::pair` takes the window lock, then the store lock.
        let pairing_open = self.core.pairing_open();
        let inner = self.core.lock();
        let info = DeviceInfo {
            protocol_version: PROTOCOL_VERSION,
            device_id: bounded_str(&self.core.identity.device_id),
            model_id: bounded_str(&self.core.identity.model_id),
            capabilities: self.core.identity.capabilities,
            template_count: u32::try_from(inner.store.len()).unwrap_or(u32::MAX),
            template_capacity: u32::try_from(inner.store.capacity()).unwrap_or(u32::MAX),
            store_generation: inner.store.generation(),
            session_nonce: nonce,
            paired: key.is_some(),
            pairing_open,
        };
        Frame::response(id, Response::Hello(info))
    }

    fn authenticated(&mut self, id: u32, req: &Request) -> Frame {
        let core = self.core.clone();
        match req {
            Request::Hello(_) | Request::Ping { .. } | Request::Pair { .. } => {
                err(id, ErrorCode::Internal, "unreachable: handled earlier")
            }
            Request::UpsertTemplate(t) => {
                let mut inner = core.lock();
                let result = inner.store.upsert(t.clone());
                match result {
                    Ok(generation) => {
                        let detail = format!("template {} upserted", t.id);
                        core.audit_locked(&mut inner, AuditKind::TemplateUpserted, Some(t.person_id), None, &detail);
                        core.refresh_gallery(&mut inner);
                        Frame::response(id, Response::TemplateStored { id: t.id, generation })
                    }
                    Err(e) => err(id, e.code(), &e.to_string()),
                }
            }
            Request::DeleteTemplate { id: tid } => {
                let mut inner = core.lock();
                match inner.store.delete(*tid) {
                    Ok(generation) => {
                        let detail = format!("template {tid} deleted");
                        core.audit_locked(&mut inner, AuditKind::TemplateDeleted, None, None, &detail);
                        core.refresh_gallery(&mut inner);
                        Frame::response(id, Response::TemplateDeleted { id: *tid, generation })
                    }
                    Err(e) => err(id, e.code(), &e.to_string()),
                }
            }
            Request::ListTemplates { cursor, limit } => {
                let inner = core.lock();
                let mut sorted: Vec<&Template> = inner.store.templates().iter().filter(|t| t.id >= *cursor).collect();
                sorted.sort_by_key(|t| t.id);
                let limit = usize::from(*limit).clamp(1, TEMPLATE_PAGE_MAX);
                let mut items = facegate_proto::heapless::Vec::new();
                for t in sorted.iter().take(limit) {
                    let _ = items.push(t.summary());
                }
                let next = sorted.get(limit).map(|t| t.id);
                let total = u32::try_from(inner.store.len()).unwrap_or(u32::MAX);
                Frame::response(id, Response::Templates(TemplatePage { items, next, total }))
            }
            Request::SyncBegin { expected_generation, total_templates } => {
                let inner = core.lock();
                if inner.store.generation() != *expected_generation {
                    let detail = format!("store is at generation {}", inner.store.generation());
                    return err(id, ErrorCode::GenerationMismatch, &detail);
                }
                if *total_templates as usize > inner.store.capacity() {
                    return err(id, ErrorCode::StoreFull, "more templates than the store holds");
                }
                self.core.set_sync_progress(Some((0, *total_templates)));
                self.sync = Some(SyncState {
                    base_generation: *expected_generation,
                    total: *total_templates,
                    next_seq: 0,
                    staged: Vec::with_capacity(*total_templates as usize),
                    digest: SyncDigest::new(),
                    last_chunk: None,
                });
                Frame::response(id, Response::SyncStarted { max_chunk_templates: MAX_SYNC_CHUNK as u8 })
            }
            Request::SyncChunk { seq, templates } => self.sync_chunk(id, *seq, templates),
            Request::SyncCommit { template_count, digest } => self.sync_commit(id, *template_count, digest),
            Request::SyncAbort => {
                if self.sync.take().is_none() {
                    return err(id, ErrorCode::NoSyncSession, "no sync in progress");
                }
                core.set_sync_progress(None);
                core.audit(AuditKind::SyncAborted, None, None, "aborted by host");
                let generation = core.lock().store.generation();
                Frame::response(id, Response::SyncAborted { generation })
            }
            Request::GetConfig { key } => Frame::response(id, Response::Config(core.settings().get(*key))),
            Request::SetConfig(s) => self.set_config(id, *s),
            Request::SetLogins { logins } => {
                let mut inner = core.lock();
                match inner.store.set_logins(logins.to_vec()) {
                    Ok(changed) => {
                        if changed {
                            let detail = format!("{} login(s) mapped", logins.len());
                            core.audit_locked(&mut inner, AuditKind::LoginsChanged, None, None, &detail);
                        }
                        Frame::response(id, Response::LoginsStored { count: logins.len() as u16 })
                    }
                    Err(e) => err(id, e.code(), &e.to_string()),
                }
            }
            Request::SetCards { first, last, cards } => self.set_cards(id, *first, *last, cards),
            Request::SetAccess { first, last, entries } => self.set_access(id, *first, *last, entries),
            Request::ListProposals { cursor, limit } => {
                let inner = core.lock();
                let all = inner.store.proposals();
                let from: Vec<&Proposal> = all.iter().filter(|p| p.id >= *cursor).collect();
                let limit = usize::from(*limit).clamp(1, PROPOSALS_PER_PAGE);
                let items = from.iter().take(limit).map(|p| (*p).clone()).collect();
                let next = from.get(limit).map(|p| p.id);
                let total = u32::try_from(all.len()).unwrap_or(u32::MAX);
                Frame::response(id, Response::Proposals(ProposalPage { items, next, total }))
            }
            Request::DropProposals { ids } => {
                let mut inner = core.lock();
                let before = inner.store.proposals().len();
                match inner.store.drop_proposals(ids) {
                    Ok(remaining) => {
                        if remaining < before {
                            let detail = format!("{} proposal(s) pulled for review", before - remaining);
                            core.audit_locked(&mut inner, AuditKind::ProposalsDropped, None, None, &detail);
                        }
                        Frame::response(id, Response::ProposalsDropped { remaining: remaining as u32 })
                    }
                    Err(e) => err(id, e.code(), &e.to_string()),
                }
            }
            // A face check for a login is for local clients only, whose uid the socket checks.
            Request::Unlock(_) => {
                err(id, ErrorCode::Unsupported, "unlock requests are served on the local unlock socket")
            }
            Request::FetchAudit { since_seq, limit } => {
                let limit = usize::from(*limit).clamp(1, AUDIT_PAGE_MAX);
                let inner = core.lock();
                match inner.audit.read(*since_seq, limit + 1) {
                    Ok(records) => {
                        let next_seq = records.get(limit).map(|r| r.seq);
                        let mut page = facegate_proto::heapless::Vec::new();
                        for r in records.into_iter().take(limit) {
                            let _ = page.push(r);
                        }
                        Frame::response(id, Response::Audit(AuditPage { records: page, next_seq }))
                    }
                    Err(e) => err(id, ErrorCode::StoreIo, &e.to_string()),
                }
            }
        }
    }

    fn sync_chunk(&mut self, id: u32, seq: u32, templates: &[Template]) -> Frame {
        let Some(sync) = self.sync.as_mut() else { return err(id, ErrorCode::NoSyncSession, "no sync in progress") };
        let encoded = postcard::to_allocvec(templates).unwrap_or_default();
        if seq.checked_add(1) == Some(sync.next_seq) && sync.last_chunk.as_ref() == Some(&encoded) {
            // The host did not see our reply and sent the same chunk again.
            let received = u32::try_from(sync.staged.len()).unwrap_or(u32::MAX);
            return Frame::response(id, Response::SyncChunkAccepted { seq, received });
        }
        if seq != sync.next_seq {
            let detail = format!("expected chunk {}", sync.next_seq);
            return err(id, ErrorCode::SyncSequence, &detail);
        }
        if sync.staged.len() + templates.len() > sync.total as usize {
            return err(id, ErrorCode::SyncMismatch, "more templates than announced");
        }
        for t in templates {
            if let Err(code) = t.validate(&self.core.identity.model_id) {
                let detail = format!("template {} refused", t.id);
                return err(id, code, &detail);
            }
        }
        for t in templates {
            sync.digest.update(t);
            sync.staged.push(t.clone());
        }
        sync.next_seq += 1;
        sync.last_chunk = Some(encoded);
        let received = u32::try_from(sync.staged.len()).unwrap_or(u32::MAX);
        self.core.set_sync_progress(Some((received, sync.total)));
        Frame::response(id, Response::SyncChunkAccepted { seq, received })
    }

    fn sync_commit(&mut self, id: u32, count: u32, digest: &[u8; 32]) -> Frame {
        let Some(sync) = self.sync.take() else { return err(id, ErrorCode::NoSyncSession, "no sync in progress") };
        self.core.set_sync_progress(None);
        let received = u32::try_from(sync.staged.len()).unwrap_or(u32::MAX);
        if received != count || count != sync.total || sync.digest.finalize() != *digest {
            self.core.audit(AuditKind::SyncAborted, None, None, "commit did not match what was received");
            return err(id, ErrorCode::SyncMismatch, "count or digest differs; sync discarded");
        }
        let mut inner = self.core.lock();
        // Another session changed the store meanwhile: the host's set is based on stale data.
        if inner.store.generation() != sync.base_generation {
            drop(inner);
            self.core.audit(AuditKind::SyncAborted, None, None, "store changed during the sync");
            return err(id, ErrorCode::GenerationMismatch, "the store changed during the sync; sync again");
        }
        match inner.store.replace_all(sync.staged) {
            Ok(generation) => {
                let detail = format!("{count} templates, generation {generation}");
                self.core.audit_locked(&mut inner, AuditKind::SyncCommitted, None, None, &detail);
                self.core.refresh_gallery(&mut inner);
                tracing::info!(count, generation, "sync committed");
                Frame::response(id, Response::SyncCommitted { generation, template_count: count })
            }
            Err(e) => err(id, e.code(), &e.to_string()),
        }
    }

    fn set_config(&mut self, id: u32, s: Setting) -> Frame {
        if let Err(code) = s.validate() {
            return err(id, code, "value out of range");
        }
        let mut inner = self.core.lock();
        let mut next = inner.settings;
        next.apply(s);
        if let Err(e) = next.check(self.core.identity.identify, self.core.calibration.as_ref()) {
            return err(id, ErrorCode::InvalidConfig, &e.to_string());
        }
        if let Err(e) = inner.store.set_setting(s) {
            return err(id, e.code(), &e.to_string());
        }
        inner.settings = next;
        let detail = format!("{:?}", s);
        self.core.audit_locked(&mut inner, AuditKind::ConfigChanged, None, None, &detail);
        Frame::response(id, Response::Config(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit_log::AuditLog;
    use crate::state::{Identity, Settings};
    use crate::store::TemplateStore;
    use facegate_proto::{Capabilities, Embedding, HelloRequest, Key, Signer, Threshold, EMBEDDING_DIM};
    use rand::SeedableRng;
    use std::time::{Duration, Instant};

    const MODEL: &str = "session-test-model";
    const KEY: Key = [7; 32];

    /// A device core on a fresh store, with the pairing window open.
    fn core(dir: &std::path::Path) -> Arc<Core> {
        let store = TemplateStore::open(&dir.join("store"), MODEL).expect("store");
        let audit = AuditLog::open(&dir.join("audit.log")).expect("audit log");
        let identity = Identity {
            device_id: "test".into(),
            model_id: MODEL.into(),
            capabilities: Capabilities::SYNC,
            identify: true,
        };
        let settings = Settings { threshold: Threshold::Cosine(0.4), ..Settings::default() };
        let core = Arc::new(Core::new(identity, None, store, audit, settings).expect("core"));
        core.open_pairing(Duration::from_secs(60));
        core
    }

    /// The details of the audit records of `kind`, oldest first.
    fn audited(core: &Core, kind: AuditKind) -> Vec<String> {
        let records = core.lock().audit.read(0, usize::MAX).expect("audit");
        records.iter().filter(|r| r.kind == kind).map(|r| r.detail.to_string()).collect()
    }

    fn response(f: Frame) -> Response {
        match f.body {
            Body::Response(r) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn code(f: Frame) -> ErrorCode {
        match response(f) {
            Response::Error(e) => e.code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn hello(session: &mut Session) -> DeviceInfo {
        let req = Request::Hello(HelloRequest { protocol_version: PROTOCOL_VERSION, host_id: bounded_str("t") });
        match response(session.handle(Frame::request(1, req))) {
            Response::Hello(info) => info,
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    /// A session that said hello and paired; the signer for its requests.
    fn paired(core: &Arc<Core>) -> (Session, Signer) {
        let mut session = Session::new(core.clone());
        let info = hello(&mut session);
        assert_eq!(response(session.handle(Frame::request(2, Request::Pair { key: KEY }))), Response::Paired);
        (session, Signer::new(KEY, info.session_nonce))
    }

    fn template(id: u32, seed: u64) -> Template {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let v: [f32; EMBEDDING_DIM] = facegate_engine::embed::random_unit(&mut rng).try_into().expect("512 values");
        Template {
            id,
            person_id: id,
            display_name: bounded_str(&format!("P{id}")),
            model_id: bounded_str(MODEL),
            embedding: Embedding::quantize(&v),
        }
    }

    fn chunk(seq: u32, templates: &[Template]) -> Request {
        let mut v = facegate_proto::heapless::Vec::new();
        for t in templates {
            v.push(t.clone()).expect("chunk fits");
        }
        Request::SyncChunk { seq, templates: v }
    }

    fn digest(templates: &[Template]) -> [u8; 32] {
        let mut d = SyncDigest::new();
        templates.iter().for_each(|t| d.update(t));
        d.finalize()
    }

    #[test]
    fn proposals_are_listed_in_pages_only_when_signed_and_dropped_once_pulled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        for k in 0..5u32 {
            let p = Proposal {
                id: 0,
                person_id: k,
                matched: k,
                model_id: bounded_str(MODEL),
                embedding: template(k, u64::from(k)).embedding,
                unix_time: 1_790_000_000,
                score: 0.6,
                threshold: 0.5,
                face_px: 100,
                sharpness: 40.0,
                yaw_deg: 0.0,
            };
            core.lock().store.propose(p, 3).expect("proposed");
        }
        let (mut session, mut signer) = paired(&core);
        let list = |cursor| Request::ListProposals { cursor, limit: 2 };
        // Embeddings leave only to the paired host.
        assert_eq!(code(session.handle(Frame::request(10, list(0)))), ErrorCode::Unauthenticated);
        let mut seen = Vec::new();
        let mut cursor = 0;
        for id in 11.. {
            let Response::Proposals(page) = response(session.handle(signer.signed_request(id, list(cursor)))) else {
                panic!("expected Proposals")
            };
            assert_eq!(page.total, 5);
            seen.extend(page.items.iter().map(|p| p.id));
            match page.next {
                Some(n) => cursor = n,
                None => break,
            }
        }
        assert_eq!(seen, [1, 2, 3, 4, 5]);
        let drop = Request::DropProposals { ids: [1, 2, 3].into_iter().collect() };
        assert_eq!(
            response(session.handle(signer.signed_request(30, drop))),
            Response::ProposalsDropped { remaining: 2 }
        );
        assert_eq!(audited(&core, AuditKind::ProposalsDropped), ["3 proposal(s) pulled for review"]);
    }

    #[test]
    fn hello_then_pair_then_a_signed_request_is_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        let mut session = Session::new(core.clone());
        let list = Request::ListTemplates { cursor: 0, limit: 8 };
        assert_eq!(code(session.handle(Frame::request(1, list.clone()))), ErrorCode::NotPaired, "Hello comes first");
        let info = hello(&mut session);
        assert!(!info.paired && info.pairing_open);
        assert_eq!(code(session.handle(Frame::request(2, list.clone()))), ErrorCode::NotPaired, "no key yet");
        assert_eq!(response(session.handle(Frame::request(3, Request::Pair { key: KEY }))), Response::Paired);
        assert_eq!(core.pairing_key(), Some(KEY));
        let mut signer = Signer::new(KEY, info.session_nonce);
        match response(session.handle(signer.signed_request(4, list))) {
            Response::Templates(page) => assert_eq!((page.total, page.items.len()), (0, 0)),
            other => panic!("expected Templates, got {other:?}"),
        }
        // Ping needs no MAC, and a second Hello hands out a new nonce.
        let ping = Request::Ping { payload: 9 };
        assert_eq!(response(session.handle(Frame::request(5, ping))), Response::Pong { payload: 9 });
        let again = hello(&mut session);
        assert!(again.paired);
        assert_ne!(again.session_nonce, info.session_nonce);
        assert_eq!(session.stats.rejected_auth, 0);
    }

    #[test]
    fn pairing_outside_the_window_is_refused_and_audited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        core.open_pairing(Duration::ZERO);
        let mut session = Session::new(core.clone());
        hello(&mut session);
        assert_eq!(code(session.handle(Frame::request(2, Request::Pair { key: KEY }))), ErrorCode::PairingClosed);
        assert_eq!(core.pairing_key(), None);
        assert!(!audited(&core, AuditKind::AuthFailure).is_empty(), "the refusal is audited");
    }

    #[test]
    fn unsigned_altered_replayed_and_reordered_requests_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        let (mut session, mut signer) = paired(&core);
        let list = || Request::ListTemplates { cursor: 0, limit: 8 };

        assert_eq!(code(session.handle(Frame::request(10, list()))), ErrorCode::Unauthenticated);

        let mut altered = signer.signed_request(11, list());
        altered.body = Body::Request(Request::ListTemplates { cursor: 5, limit: 8 });
        assert_eq!(code(session.handle(altered)), ErrorCode::BadMac);

        let good = signer.signed_request(12, list());
        assert!(matches!(response(session.handle(good.clone())), Response::Templates(_)));
        assert_eq!(code(session.handle(good)), ErrorCode::Replay, "the same frame twice");

        let (first, second) = (signer.signed_request(13, list()), signer.signed_request(14, list()));
        assert!(matches!(response(session.handle(second)), Response::Templates(_)));
        assert_eq!(code(session.handle(first)), ErrorCode::Replay, "an older counter after a newer one");

        let mut wrong = Signer::new([8; 32], [0; 32]);
        assert_eq!(code(session.handle(wrong.signed_request(15, list()))), ErrorCode::BadMac);
        assert_eq!(session.stats.rejected_auth, 5);
        // A burst of failures is one audit record per session, not one per frame.
        assert_eq!(audited(&core, AuditKind::AuthFailure).len(), 1);
    }

    #[test]
    fn a_sync_stages_chunks_and_commits_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        let (mut session, mut signer) = paired(&core);
        let set: Vec<Template> = (1..=6).map(|i| template(i, u64::from(i))).collect();
        let begin = Request::SyncBegin { expected_generation: 0, total_templates: 6 };
        assert!(matches!(response(session.handle(signer.signed_request(10, begin))), Response::SyncStarted { .. }));

        let accepted = |f: Frame| match response(f) {
            Response::SyncChunkAccepted { seq, received } => (seq, received),
            other => panic!("expected SyncChunkAccepted, got {other:?}"),
        };
        assert_eq!(accepted(session.handle(signer.signed_request(11, chunk(0, &set[..4])))), (0, 4));
        // The same chunk again (the host lost our reply) is answered, not staged twice.
        assert_eq!(accepted(session.handle(signer.signed_request(12, chunk(0, &set[..4])))), (0, 4));
        assert_eq!(code(session.handle(signer.signed_request(13, chunk(2, &set[4..])))), ErrorCode::SyncSequence);
        assert_eq!(core.lock().store.len(), 0, "nothing reaches the store before the commit");
        assert_eq!(accepted(session.handle(signer.signed_request(14, chunk(1, &set[4..])))), (1, 6));

        let commit = Request::SyncCommit { template_count: 6, digest: digest(&set) };
        match response(session.handle(signer.signed_request(15, commit))) {
            Response::SyncCommitted { template_count, generation } => {
                assert_eq!(template_count, 6);
                assert_eq!(generation, core.lock().store.generation());
            }
            other => panic!("expected SyncCommitted, got {other:?}"),
        }
        let ids: Vec<u32> = core.lock().store.templates().iter().map(|t| t.id).collect();
        assert_eq!(ids.len(), 6);
        assert_eq!(core.gallery().len(), 6, "the kiosk matches against the new set");
    }

    #[test]
    fn a_commit_that_does_not_match_or_an_abort_leaves_the_store_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        let (mut session, mut signer) = paired(&core);
        let set: Vec<Template> = (1..=2).map(|i| template(i, u64::from(i))).collect();
        let begin = || Request::SyncBegin { expected_generation: 0, total_templates: 2 };

        session.handle(signer.signed_request(10, begin()));
        session.handle(signer.signed_request(11, chunk(0, &set)));
        let wrong_digest = Request::SyncCommit { template_count: 2, digest: digest(&set[..1]) };
        assert_eq!(code(session.handle(signer.signed_request(12, wrong_digest))), ErrorCode::SyncMismatch);
        let commit = || Request::SyncCommit { template_count: 2, digest: digest(&set) };
        assert_eq!(
            code(session.handle(signer.signed_request(13, commit()))),
            ErrorCode::NoSyncSession,
            "a mismatched commit discards the staged set"
        );

        session.handle(signer.signed_request(14, begin()));
        session.handle(signer.signed_request(15, chunk(0, &set)));
        assert!(matches!(
            response(session.handle(signer.signed_request(16, Request::SyncAbort))),
            Response::SyncAborted { generation: 0 }
        ));
        assert_eq!(code(session.handle(signer.signed_request(17, commit()))), ErrorCode::NoSyncSession);
        let inner = core.lock();
        assert_eq!((inner.store.len(), inner.store.generation()), (0, 0));
    }

    #[test]
    fn a_sync_based_on_a_stale_generation_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        let (mut a, mut signer_a) = paired(&core);
        let mut b = Session::new(core.clone());
        let mut signer_b = Signer::new(KEY, hello(&mut b).session_nonce);
        let stale = Request::SyncBegin { expected_generation: 3, total_templates: 1 };
        assert_eq!(code(a.handle(signer_a.signed_request(10, stale))), ErrorCode::GenerationMismatch);

        let set = [template(1, 1)];
        let begin = Request::SyncBegin { expected_generation: 0, total_templates: 1 };
        a.handle(signer_a.signed_request(11, begin));
        a.handle(signer_a.signed_request(12, chunk(0, &set)));
        // Another host changes the store while this sync is staged.
        let upsert = Request::UpsertTemplate(template(9, 9));
        assert!(matches!(response(b.handle(signer_b.signed_request(2, upsert))), Response::TemplateStored { .. }));
        let commit = Request::SyncCommit { template_count: 1, digest: digest(&set) };
        assert_eq!(code(a.handle(signer_a.signed_request(13, commit))), ErrorCode::GenerationMismatch);
        let ids: Vec<u32> = core.lock().store.templates().iter().map(|t| t.id).collect();
        assert_eq!(ids, [9], "the other host's change is kept");
    }

    #[test]
    fn a_new_pairing_revokes_the_old_key_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        let (mut old, mut old_signer) = paired(&core);
        let list = || Request::ListTemplates { cursor: 0, limit: 8 };
        assert!(matches!(response(old.handle(old_signer.signed_request(10, list()))), Response::Templates(_)));
        assert!(!old.is_revoked());

        // Another host pairs in a new window.
        core.open_pairing(Duration::from_secs(60));
        let new_key: Key = [9; 32];
        let mut new = Session::new(core.clone());
        let info = hello(&mut new);
        assert_eq!(response(new.handle(Frame::request(2, Request::Pair { key: new_key }))), Response::Paired);
        assert!(old.is_revoked(), "a session that showed the old key is closed without waiting for it");
        assert_eq!(code(old.handle(old_signer.signed_request(11, list()))), ErrorCode::PairedElsewhere);

        // The old host comes back on a new session: told why, not "bad MAC".
        let mut again = Session::new(core.clone());
        let nonce = hello(&mut again).session_nonce;
        let mut stale = Signer::new(KEY, nonce);
        assert_eq!(code(again.handle(stale.signed_request(3, list()))), ErrorCode::PairedElsewhere);
        assert!(again.is_revoked());
        // The new host is served; a key nobody had is just a bad MAC.
        let mut signer = Signer::new(new_key, info.session_nonce);
        assert!(matches!(response(new.handle(signer.signed_request(3, list()))), Response::Templates(_)));
        assert!(!new.is_revoked());
        let mut other = Session::new(core.clone());
        let nonce = hello(&mut other).session_nonce;
        assert_eq!(code(other.handle(Signer::new([1; 32], nonce).signed_request(3, list()))), ErrorCode::BadMac);

        assert_eq!(
            audited(&core, AuditKind::Paired),
            ["host paired", "host paired, replacing the previous host's key"]
        );
        assert!(core.replaced_within(Duration::from_secs(30)), "the display says so");
    }

    #[test]
    fn a_pairing_flood_is_cut_off_and_written_once_a_minute() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        core.open_pairing(Duration::ZERO);
        let mut attempts = 0;
        for _ in 0..34 {
            let mut session = Session::with_peer(core.clone(), "tcp:203.0.113.9");
            hello(&mut session);
            while !session.is_revoked() {
                assert_eq!(
                    code(session.handle(Frame::request(2, Request::Pair { key: KEY }))),
                    ErrorCode::PairingClosed
                );
                attempts += 1;
            }
        }
        assert_eq!(attempts, 34 * MAX_REFUSED_PAIRS as usize, "each connection is closed after its third try");
        assert_eq!(audited(&core, AuditKind::AuthFailure), ["pairing refused from tcp:203.0.113.9"]);
        core.flush_refused_pairs(Instant::now() + crate::state::REFUSED_PAIRS_WINDOW);
        let written = audited(&core, AuditKind::AuthFailure);
        assert_eq!(written.len(), 2, "{written:?}");
        assert_eq!(written[1], "101 refused pairings in 1 min: tcp:203.0.113.9");
    }

    #[test]
    fn a_frame_that_does_not_decode_is_answered_with_what_was_wrong() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut session = Session::new(core(dir.path()));
        let what = "Hello: host id longer than 32 bytes";
        let reply = session.bad_frame(FrameError::Unsupported { id: Some(4), what });
        assert_eq!(reply.id, 4);
        match response(reply) {
            Response::Error(e) => assert_eq!((e.code, e.detail.as_str()), (ErrorCode::Unsupported, what)),
            other => panic!("expected an error, got {other:?}"),
        }
        match response(session.bad_frame(FrameError::Crc)) {
            Response::Error(e) => assert_eq!((e.code, e.detail.as_str()), (ErrorCode::BadFrame, "CRC mismatch")),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn cards_arrive_in_pieces_and_replace_the_map_at_the_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = core(dir.path());
        let (mut session, mut signer) = paired(&core);
        let card = |person_id, number| facegate_proto::CardEntry {
            person_id,
            card: facegate_proto::CardFormat::H10301.encode(12, number).expect("in range"),
        };
        let set = |first, last, cards: &[facegate_proto::CardEntry]| Request::SetCards {
            first,
            last,
            cards: cards.iter().cloned().collect(),
        };
        // A piece without a first one is out of sequence.
        assert_eq!(
            code(session.handle(signer.signed_request(3, set(false, true, &[card(1, 1)])))),
            ErrorCode::SyncSequence
        );
        let r = response(session.handle(signer.signed_request(4, set(true, false, &[card(1, 1), card(2, 2)]))));
        assert_eq!(r, Response::CardsStored { count: 2, stored: false });
        assert!(core.lock().store.cards().is_empty(), "nothing is stored before the last piece");
        let r = response(session.handle(signer.signed_request(5, set(false, true, &[card(3, 3)]))));
        assert_eq!(r, Response::CardsStored { count: 3, stored: true });
        assert_eq!(core.lock().store.cards(), &[card(1, 1), card(2, 2), card(3, 3)]);
        assert_eq!(audited(&core, AuditKind::CardsChanged), ["3 card(s) mapped"]);
        // A new Hello drops a half-received map; the stored one stays.
        let r = response(session.handle(signer.signed_request(6, set(true, false, &[card(9, 9)]))));
        assert_eq!(r, Response::CardsStored { count: 1, stored: false });
        let info = hello(&mut session);
        let mut signer = Signer::new(KEY, info.session_nonce);
        assert_eq!(code(session.handle(signer.signed_request(7, set(false, true, &[])))), ErrorCode::SyncSequence);
        assert_eq!(core.lock().store.cards().len(), 3);
    }
}
