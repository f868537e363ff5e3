//! One host session: the protocol state machine, free of I/O so it can be tested frame by
//! frame.
//!
//! Rules: `Hello` first (it gives the session nonce the MACs are bound to). `Ping` and
//! `Pair` need no MAC; every other request needs a valid MAC from the paired key — reads too,
//! since templates and the audit log say who came through the door. A session that has shown
//! the key receives match events.

use crate::core::Core;
use facegate_proto::{
    bounded_str, AuditKind, AuditPage, Body, DeviceInfo, ErrorCode, Frame, FrameError, MatchEvent, Request, Response,
    SessionNonce, Setting, SyncDigest, Template, TemplatePage, Verifier, AUDIT_PAGE_MAX, MAX_SYNC_CHUNK, NO_ID,
    PROTOCOL_VERSION, TEMPLATE_PAGE_MAX,
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

fn err(id: u32, code: ErrorCode, detail: &str) -> Frame {
    Frame::error(id, code, detail)
}

impl Session {
    pub fn new(core: Arc<Core>) -> Session {
        Session { core, nonce: None, verifier: None, events: None, sync: None, stats: SessionStats::default() }
    }

    /// Reply to a frame that failed to decode.
    pub fn bad_frame(&mut self, e: FrameError) -> Frame {
        self.stats.bad_frames += 1;
        err(e.frame_id().unwrap_or(NO_ID), e.code(), "frame rejected")
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
                    Frame::response(id, Response::Paired)
                }
                Ok(false) => {
                    self.core.audit(AuditKind::AuthFailure, None, None, "pair attempt, window closed");
                    err(id, ErrorCode::PairingClosed, "pairing window closed")
                }
                Err(e) => err(id, ErrorCode::StoreIo, &e.to_string()),
            };
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
        if let Err(code) = checked {
            self.stats.rejected_auth += 1;
            // One audit record per session for a burst of failures keeps a flood off the disk.
            if self.stats.rejected_auth == 1 {
                self.core.audit(AuditKind::AuthFailure, None, None, code.name());
            }
            tracing::warn!(code = code.name(), "rejected unauthenticated request");
            return err(id, code, "request not authenticated");
        }
        if self.events.is_none() {
            self.events = Some(self.core.subscribe());
        }
        self.authenticated(id, req)
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
        self.events = None;
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
                        if let Err(e) = core.refresh_gallery(&inner) {
                            return err(id, ErrorCode::Internal, &e.to_string());
                        }
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
                        if let Err(e) = core.refresh_gallery(&inner) {
                            return err(id, ErrorCode::Internal, &e.to_string());
                        }
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
                if let Err(e) = self.core.refresh_gallery(&inner) {
                    return err(id, ErrorCode::Internal, &e.to_string());
                }
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
        if let Err(e) = next.cosine_threshold(self.core.calibration.as_ref()) {
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
