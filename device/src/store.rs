//! The device's encrypted, crash-safe template store.
//!
//! Everything the device must keep across restarts ([`DeviceState`]: templates, the host
//! pairing key, host-set settings and the store generation) lives in one file, rewritten
//! whole on every change:
//!
//! ```text
//! store.fgs = b"FGSTORE1" | u16 LE format version | 12-byte nonce | u32 LE CRC-32 | ciphertext
//! ciphertext = ChaCha20-Poly1305(device.key, nonce, postcard(DeviceState), aad = magic | version)
//! ```
//!
//! * The CRC (over the ciphertext) tells accidental damage ([`StoreError::Corrupt`]) apart
//!   from a wrong key or a deliberate edit, which only the AEAD tag catches
//!   ([`StoreError::Tampered`]). Neither ever turns into an empty store.
//! * `device.key` holds 32 random bytes, mode 0600; a key readable by group/other is refused.
//! * Writes go to `store.fgs.tmp`, are fsynced, renamed over `store.fgs` and the directory is
//!   fsynced, so after a crash the file is either the old or the new state, never a mix.
//! * Every mutation builds the next state, persists it and only then replaces the in-memory
//!   copy: when a write fails, memory and disk both keep the previous state.
//!
//! First start writes the key as `device.key.tmp`, then the empty store, then renames the key
//! into place. A crash at any point leaves a directory that the next `open` either finishes or
//! restarts, never one that looks like a deleted store (`device.key` without `store.fgs`).

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use facegate_proto::{
    AccessEntry, CardEntry, ErrorCode, Key, LoginEntry, PersonId, Proposal, ProposalId, Setting, Template, TemplateId,
    KEY_LEN,
};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// First bytes of `store.fgs`.
pub const MAGIC: [u8; 8] = *b"FGSTORE1";
/// Version of the file layout and of the postcard encoding of [`DeviceState`]. Versions 1
/// (without logins), 2 (without cards), 3 (without access rules) and 4 (without proposed
/// templates) are still read.
pub const FORMAT_VERSION: u16 = 5;

const STORE_FILE: &str = "store.fgs";
const STORE_TMP: &str = "store.fgs.tmp";
const KEY_FILE: &str = "device.key";
const KEY_TMP: &str = "device.key.tmp";

/// ChaCha20-Poly1305 nonce (not the protocol's session nonce, `facegate_proto::NONCE_LEN`).
const AEAD_NONCE_LEN: usize = 12;
const AAD_LEN: usize = MAGIC.len() + 2;
const HEADER_LEN: usize = AAD_LEN + AEAD_NONCE_LEN + 4;
/// Far above a full store (10k templates ≈ 11 MB): a bigger file is not ours, and reading
/// it whole could exhaust memory on a small device.
const MAX_FILE_LEN: u64 = 64 << 20;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Everything persisted in `store.fgs` (postcard-encoded, then encrypted).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Bumped by every template change; hosts sync against it.
    pub generation: u64,
    /// Embedding model the templates belong to.
    pub model_id: String,
    pub templates: Vec<Template>,
    /// Key shared with the paired host, if any.
    pub pairing_key: Option<Key>,
    /// Settings a host changed (at most one per [`Setting::key`]).
    pub settings: Vec<Setting>,
    /// Which person each Unix login is, for local unlock (format version 2).
    pub logins: Vec<LoginEntry>,
    /// The card each person's grant is reported as to an access-control panel (version 3).
    pub cards: Vec<CardEntry>,
    /// The OSDP secure-channel base key a panel set (install mode), if any (version 3).
    pub panel_key: Option<[u8; 16]>,
    /// Validity dates and time windows of the people who have any, by person id (version 4).
    pub access: Vec<AccessEntry>,
    /// Granted probes kept as proposed templates until a host pulls them (version 5); never
    /// matched against.
    pub proposals: Vec<Proposal>,
    /// The id the next proposal gets (version 5).
    pub next_proposal: ProposalId,
}

/// [`DeviceState`] as format version 4 wrote it.
#[derive(Deserialize)]
struct DeviceStateV4 {
    generation: u64,
    model_id: String,
    templates: Vec<Template>,
    pairing_key: Option<Key>,
    settings: Vec<Setting>,
    logins: Vec<LoginEntry>,
    cards: Vec<CardEntry>,
    panel_key: Option<[u8; 16]>,
    access: Vec<AccessEntry>,
}

impl From<DeviceStateV4> for DeviceState {
    fn from(v: DeviceStateV4) -> DeviceState {
        let DeviceStateV4 { generation, model_id, templates, pairing_key, settings, logins, cards, panel_key, access } =
            v;
        DeviceState {
            generation,
            model_id,
            templates,
            pairing_key,
            settings,
            logins,
            cards,
            panel_key,
            access,
            proposals: Vec::new(),
            next_proposal: 1,
        }
    }
}

/// [`DeviceState`] as format version 1 wrote it.
#[derive(Deserialize)]
struct DeviceStateV1 {
    generation: u64,
    model_id: String,
    templates: Vec<Template>,
    pairing_key: Option<Key>,
    settings: Vec<Setting>,
}

impl From<DeviceStateV1> for DeviceState {
    fn from(v: DeviceStateV1) -> DeviceState {
        let DeviceStateV1 { generation, model_id, templates, pairing_key, settings } = v;
        DeviceStateV2 { generation, model_id, templates, pairing_key, settings, logins: Vec::new() }.into()
    }
}

/// [`DeviceState`] as format version 2 wrote it.
#[derive(Deserialize)]
struct DeviceStateV2 {
    generation: u64,
    model_id: String,
    templates: Vec<Template>,
    pairing_key: Option<Key>,
    settings: Vec<Setting>,
    logins: Vec<LoginEntry>,
}

impl From<DeviceStateV2> for DeviceState {
    fn from(v: DeviceStateV2) -> DeviceState {
        let DeviceStateV2 { generation, model_id, templates, pairing_key, settings, logins } = v;
        DeviceStateV3 {
            generation,
            model_id,
            templates,
            pairing_key,
            settings,
            logins,
            cards: Vec::new(),
            panel_key: None,
        }
        .into()
    }
}

/// [`DeviceState`] as format version 3 wrote it.
#[derive(Deserialize)]
struct DeviceStateV3 {
    generation: u64,
    model_id: String,
    templates: Vec<Template>,
    pairing_key: Option<Key>,
    settings: Vec<Setting>,
    logins: Vec<LoginEntry>,
    cards: Vec<CardEntry>,
    panel_key: Option<[u8; 16]>,
}

impl From<DeviceStateV3> for DeviceState {
    fn from(v: DeviceStateV3) -> DeviceState {
        let DeviceStateV3 { generation, model_id, templates, pairing_key, settings, logins, cards, panel_key } = v;
        DeviceStateV4 {
            generation,
            model_id,
            templates,
            pairing_key,
            settings,
            logins,
            cards,
            panel_key,
            access: Vec::new(),
        }
        .into()
    }
}

impl fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key, and not 10k embeddings either.
        f.debug_struct("DeviceState")
            .field("generation", &self.generation)
            .field("model_id", &self.model_id)
            .field("templates", &self.templates.len())
            .field("paired", &self.pairing_key.is_some())
            .field("settings", &self.settings)
            .field("logins", &self.logins.len())
            .field("cards", &self.cards.len())
            .field("panel_key", &self.panel_key.is_some())
            .field("access", &self.access.len())
            .field("proposals", &self.proposals.len())
            .finish()
    }
}

/// Errors of [`TemplateStore`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("template store: cannot {op} {}: {error}", path.display())]
    Io { op: &'static str, path: PathBuf, error: io::Error },
    #[error("{} is not a Facegate store this build can read: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{} is corrupt ({reason}); restore it from a backup or re-enrol", path.display())]
    Corrupt { path: PathBuf, reason: &'static str },
    #[error("{} failed authentication: wrong device.key or the file was altered", path.display())]
    Tampered { path: PathBuf },
    #[error("{} is missing but device.key exists; refusing to start with an empty store", path.display())]
    Missing { path: PathBuf },
    #[error("{} is missing, so the existing store cannot be decrypted", path.display())]
    KeyMissing { path: PathBuf },
    #[error("{} has mode {mode:03o}; the key must not be accessible by group or others (chmod 600)", path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("{} is not a key file ({reason})", path.display())]
    KeyFormat { path: PathBuf, reason: String },
    #[error(
        "store holds templates of model {stored:?} but the device runs {expected:?}; re-enrol or run the old model"
    )]
    ModelMismatch { stored: String, expected: String },
    #[error("template {id} is for model {template_model:?} but the device runs {expected:?}")]
    TemplateModelMismatch { id: TemplateId, template_model: String, expected: String },
    #[error("template {id} rejected: {reason}")]
    InvalidTemplate { id: TemplateId, reason: &'static str },
    #[error("setting {setting:?} is out of range")]
    InvalidSetting { setting: Setting },
    #[error("template {id} not found")]
    NotFound { id: TemplateId },
    #[error("template store is full ({capacity} templates)")]
    StoreFull { capacity: usize },
    #[error("cannot encode the store state: {0}")]
    Encode(#[source] postcard::Error),
    #[error("cannot encrypt the store state")]
    Encrypt,
    #[error("the OS random generator failed: {0}")]
    Random(#[source] rand::Error),
}

impl StoreError {
    /// Wire error code for a host request that failed with this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::ModelMismatch { .. } | StoreError::TemplateModelMismatch { .. } => ErrorCode::ModelMismatch,
            StoreError::InvalidTemplate { .. } => ErrorCode::InvalidTemplate,
            StoreError::InvalidSetting { .. } => ErrorCode::InvalidConfig,
            StoreError::NotFound { .. } => ErrorCode::NotFound,
            StoreError::StoreFull { .. } => ErrorCode::StoreFull,
            StoreError::Io { .. }
            | StoreError::Format { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Tampered { .. }
            | StoreError::Missing { .. }
            | StoreError::KeyMissing { .. }
            | StoreError::KeyPermissions { .. }
            | StoreError::KeyFormat { .. } => ErrorCode::StoreIo,
            StoreError::Encode(_) | StoreError::Encrypt | StoreError::Random(_) => ErrorCode::Internal,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |error| StoreError::Io { op, path: path.to_path_buf(), error }
}

/// The device's template store (see the module docs).
pub struct TemplateStore {
    dir: PathBuf,
    cipher: ChaCha20Poly1305,
    state: DeviceState,
}

impl fmt::Debug for TemplateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cipher holds the device key: leave it out.
        f.debug_struct("TemplateStore").field("dir", &self.dir).field("state", &self.state).finish_non_exhaustive()
    }
}

impl TemplateStore {
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// Opens the store in `dir` for embeddings of `model_id`.
    ///
    /// On first start (neither `device.key` nor `store.fgs` present) creates `dir` (0700), a
    /// random device key (0600) and an empty generation-0 store. Otherwise loads and verifies
    /// the store; any damage, a missing file or another model is an error, never an empty store.
    pub fn open(dir: &Path, model_id: &str) -> Result<TemplateStore, StoreError> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err("create directory", dir))?;
        let dir_mode = fs::metadata(dir).map_err(io_err("stat", dir))?.permissions().mode() & 0o777;
        if dir_mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format_args!("{dir_mode:03o}"),
                "store directory is accessible by group/other"
            );
        }

        let store_path = dir.join(STORE_FILE);
        let key_path = dir.join(KEY_FILE);
        let key_tmp = dir.join(KEY_TMP);

        // A leftover temp file is a write that never reached its rename: the previous
        // store.fgs is intact and authoritative.
        let store_tmp = dir.join(STORE_TMP);
        if exists(&store_tmp)? {
            tracing::warn!(
                path = %store_tmp.display(),
                "removing unfinished store write (crash or power loss during a save)"
            );
            fs::remove_file(&store_tmp).map_err(io_err("remove", &store_tmp))?;
        }

        match (exists(&key_path)?, exists(&store_path)?) {
            (true, true) => {
                if exists(&key_tmp)? {
                    tracing::warn!(path = %key_tmp.display(), "removing stray temporary key file");
                    fs::remove_file(&key_tmp).map_err(io_err("remove", &key_tmp))?;
                }
                let key = read_key(&key_path)?;
                let store = Self::load(dir, &key, model_id)?;
                tracing::info!(
                    dir = %dir.display(),
                    generation = store.generation(),
                    templates = store.len(),
                    paired = store.state.pairing_key.is_some(),
                    "template store loaded"
                );
                Ok(store)
            }
            (true, false) => Err(StoreError::Missing { path: store_path }),
            (false, true) if exists(&key_tmp)? => {
                // First start crashed after writing the store but before renaming the key into
                // place. The store decrypting with it proves it is the right key.
                let key = read_key(&key_tmp)?;
                let store = Self::load(dir, &key, model_id)?;
                fs::rename(&key_tmp, &key_path).map_err(io_err("rename", &key_tmp))?;
                sync_dir(dir)?;
                tracing::warn!(dir = %dir.display(), "finished an interrupted first start of the template store");
                Ok(store)
            }
            (false, true) => Err(StoreError::KeyMissing { path: key_path }),
            (false, false) => {
                if exists(&key_tmp)? {
                    tracing::warn!(dir = %dir.display(), "restarting an interrupted first start of the template store");
                }
                Self::create(dir, model_id)
            }
        }
    }

    /// First start: key (as a temp file), empty store, then the key rename (see module docs).
    fn create(dir: &Path, model_id: &str) -> Result<TemplateStore, StoreError> {
        let key_path = dir.join(KEY_FILE);
        let key_tmp = dir.join(KEY_TMP);
        let mut key: Key = [0; KEY_LEN];
        OsRng.try_fill_bytes(&mut key).map_err(StoreError::Random)?;
        write_synced(&key_tmp, &key)?;

        let cipher = ChaCha20Poly1305::new(&key.into());
        let state = DeviceState {
            generation: 0,
            model_id: model_id.to_owned(),
            templates: Vec::new(),
            pairing_key: None,
            settings: Vec::new(),
            logins: Vec::new(),
            cards: Vec::new(),
            panel_key: None,
            access: Vec::new(),
            proposals: Vec::new(),
            next_proposal: 1,
        };
        write_atomic(dir, &seal(&cipher, &state)?)?;
        fs::rename(&key_tmp, &key_path).map_err(io_err("rename", &key_tmp))?;
        sync_dir(dir)?;
        tracing::info!(dir = %dir.display(), model_id, "created a new, empty template store and device key");
        Ok(TemplateStore { dir: dir.to_path_buf(), cipher, state })
    }

    fn load(dir: &Path, key: &Key, model_id: &str) -> Result<TemplateStore, StoreError> {
        let path = dir.join(STORE_FILE);
        let cipher = ChaCha20Poly1305::new(key.into());
        let bytes = read_bounded(&path)?;
        let state = open_sealed(&cipher, &path, &bytes)?;
        if state.model_id != model_id {
            return Err(StoreError::ModelMismatch { stored: state.model_id, expected: model_id.to_owned() });
        }
        // Templates are checked on the way in; this only guards against a store assembled
        // by other means ever mixing embedding spaces.
        if let Some(t) = state.templates.iter().find(|t| t.model_id.as_str() != model_id) {
            return Err(StoreError::ModelMismatch { stored: t.model_id.to_string(), expected: model_id.to_owned() });
        }
        if state.templates.len() > Self::DEFAULT_CAPACITY {
            tracing::warn!(
                templates = state.templates.len(),
                capacity = Self::DEFAULT_CAPACITY,
                "store holds more templates than its capacity"
            );
        }
        Ok(TemplateStore { dir: dir.to_path_buf(), cipher, state })
    }

    pub fn generation(&self) -> u64 {
        self.state.generation
    }

    pub fn model_id(&self) -> &str {
        &self.state.model_id
    }

    pub fn templates(&self) -> &[Template] {
        &self.state.templates
    }

    pub fn len(&self) -> usize {
        self.state.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.templates.is_empty()
    }

    pub fn capacity(&self) -> usize {
        Self::DEFAULT_CAPACITY
    }

    pub fn pairing_key(&self) -> Option<&Key> {
        self.state.pairing_key.as_ref()
    }

    pub fn settings(&self) -> &[Setting] {
        &self.state.settings
    }

    /// Inserts `t`, or replaces the template with the same id. Returns the new generation.
    pub fn upsert(&mut self, t: Template) -> Result<u64, StoreError> {
        self.admit(&t)?;
        let existing = self.state.templates.iter().position(|x| x.id == t.id);
        if existing.is_none() && self.len() >= self.capacity() {
            return Err(StoreError::StoreFull { capacity: self.capacity() });
        }
        let mut next = self.state.clone();
        match existing {
            Some(i) => next.templates[i] = t,
            None => next.templates.push(t),
        }
        next.generation = next_generation(next.generation);
        self.commit(next)?;
        Ok(self.state.generation)
    }

    /// Removes template `id`. Returns the new generation.
    pub fn delete(&mut self, id: TemplateId) -> Result<u64, StoreError> {
        let i = self.state.templates.iter().position(|t| t.id == id).ok_or(StoreError::NotFound { id })?;
        let mut next = self.state.clone();
        next.templates.remove(i);
        next.generation = next_generation(next.generation);
        self.commit(next)?;
        Ok(self.state.generation)
    }

    /// Replaces the whole template set (the sync commit). Every template is checked before
    /// anything changes. Returns the new generation.
    pub fn replace_all(&mut self, templates: Vec<Template>) -> Result<u64, StoreError> {
        if templates.len() > self.capacity() {
            return Err(StoreError::StoreFull { capacity: self.capacity() });
        }
        let mut ids = HashSet::with_capacity(templates.len());
        let ids_of: HashSet<PersonId> = templates.iter().map(|t| t.person_id).collect();
        for t in &templates {
            self.admit(t)?;
            if !ids.insert(t.id) {
                return Err(StoreError::InvalidTemplate { id: t.id, reason: "duplicate template id" });
            }
        }
        let next = DeviceState {
            generation: next_generation(self.state.generation),
            model_id: self.state.model_id.clone(),
            templates,
            pairing_key: self.state.pairing_key,
            settings: self.state.settings.clone(),
            logins: self.state.logins.clone(),
            cards: self.state.cards.clone(),
            panel_key: self.state.panel_key,
            access: self.state.access.clone(),
            // A proposal for someone no longer enrolled has no one to be reviewed for.
            proposals: self.state.proposals.iter().filter(|p| ids_of.contains(&p.person_id)).cloned().collect(),
            next_proposal: self.state.next_proposal,
        };
        self.commit(next)?;
        Ok(self.state.generation)
    }

    /// Installs the paired host's key (the generation does not change: templates did not).
    pub fn set_pairing_key(&mut self, key: Key) -> Result<(), StoreError> {
        let mut next = self.state.clone();
        next.pairing_key = Some(key);
        self.commit(next)
    }

    pub fn logins(&self) -> &[LoginEntry] {
        &self.state.logins
    }

    /// Replaces the login map (the generation does not change: templates did not).
    /// Replaces the login map; `false` when it was already this one (nothing written).
    pub fn set_logins(&mut self, logins: Vec<LoginEntry>) -> Result<bool, StoreError> {
        if self.state.logins == logins {
            return Ok(false);
        }
        let mut next = self.state.clone();
        next.logins = logins;
        self.commit(next).map(|()| true)
    }

    pub fn cards(&self) -> &[CardEntry] {
        &self.state.cards
    }

    /// Replaces the card map (the generation does not change: templates did not); `false` when
    /// it was already this one (nothing written).
    pub fn set_cards(&mut self, cards: Vec<CardEntry>) -> Result<bool, StoreError> {
        if self.state.cards == cards {
            return Ok(false);
        }
        let mut next = self.state.clone();
        next.cards = cards;
        self.commit(next).map(|()| true)
    }

    /// The access rules of the people who have any, by person id.
    pub fn access(&self) -> &[AccessEntry] {
        &self.state.access
    }

    /// The rules of `person`, if they have any (none: any time, no end).
    pub fn access_of(&self, person: PersonId) -> Option<&AccessEntry> {
        self.state.access.binary_search_by_key(&person, |e| e.person_id).ok().map(|i| &self.state.access[i])
    }

    /// Replaces the access rules (kept sorted by person); `false` when they were already these.
    pub fn set_access(&mut self, mut access: Vec<AccessEntry>) -> Result<bool, StoreError> {
        access.sort_by_key(|e| e.person_id);
        access.dedup_by_key(|e| e.person_id);
        if self.state.access == access {
            return Ok(false);
        }
        let mut next = self.state.clone();
        next.access = access;
        self.commit(next).map(|()| true)
    }

    /// Proposed templates, oldest first.
    pub fn proposals(&self) -> &[Proposal] {
        &self.state.proposals
    }

    /// Keeps `p` as a proposal (its id assigned here), dropping the person's oldest beyond
    /// `max_per_person`. Returns the id.
    pub fn propose(&mut self, mut p: Proposal, max_per_person: usize) -> Result<ProposalId, StoreError> {
        let mut next = self.state.clone();
        p.id = next.next_proposal;
        next.next_proposal = next.next_proposal.saturating_add(1);
        let person = p.person_id;
        next.proposals.push(p);
        let theirs = next.proposals.iter().filter(|x| x.person_id == person).count();
        for _ in max_per_person.max(1)..theirs {
            if let Some(i) = next.proposals.iter().position(|x| x.person_id == person) {
                next.proposals.remove(i);
            }
        }
        let id = next.next_proposal - 1;
        self.commit(next)?;
        Ok(id)
    }

    /// Forgets the proposals with these ids (unknown ids are ignored). Returns how many remain.
    pub fn drop_proposals(&mut self, ids: &[ProposalId]) -> Result<usize, StoreError> {
        if !self.state.proposals.iter().any(|p| ids.contains(&p.id)) {
            return Ok(self.state.proposals.len());
        }
        let mut next = self.state.clone();
        next.proposals.retain(|p| !ids.contains(&p.id));
        self.commit(next)?;
        Ok(self.state.proposals.len())
    }

    pub fn panel_key(&self) -> Option<[u8; 16]> {
        self.state.panel_key
    }

    /// Keeps the secure-channel key a panel set, sealed with the rest of the store.
    pub fn set_panel_key(&mut self, key: [u8; 16]) -> Result<(), StoreError> {
        let mut next = self.state.clone();
        next.panel_key = Some(key);
        self.commit(next)
    }

    /// Stores `s`, replacing the setting with the same key.
    pub fn set_setting(&mut self, s: Setting) -> Result<(), StoreError> {
        // Settings are applied at every boot: an out-of-range one must never be persisted.
        s.validate().map_err(|_| StoreError::InvalidSetting { setting: s })?;
        let mut next = self.state.clone();
        match next.settings.iter_mut().find(|x| x.key() == s.key()) {
            Some(slot) => *slot = s,
            None => next.settings.push(s),
        }
        self.commit(next)
    }

    fn admit(&self, t: &Template) -> Result<(), StoreError> {
        t.validate(&self.state.model_id).map_err(|code| match code {
            ErrorCode::ModelMismatch => StoreError::TemplateModelMismatch {
                id: t.id,
                template_model: t.model_id.to_string(),
                expected: self.state.model_id.clone(),
            },
            _ => StoreError::InvalidTemplate { id: t.id, reason: "embedding is not a usable vector" },
        })
    }

    /// Stores `t` without the admission check: how a store written by an older build (or a
    /// damaged one that still decrypts) can come to hold a template no build would admit now.
    #[cfg(test)]
    pub(crate) fn insert_unchecked(&mut self, t: Template) -> Result<u64, StoreError> {
        let mut next = self.state.clone();
        next.templates.push(t);
        next.generation = next_generation(next.generation);
        self.commit(next)?;
        Ok(self.state.generation)
    }

    /// Persists `next` and only then makes it the in-memory state.
    fn commit(&mut self, next: DeviceState) -> Result<(), StoreError> {
        let bytes = seal(&self.cipher, &next)?;
        write_atomic(&self.dir, &bytes)?;
        self.state = next;
        Ok(())
    }
}

/// Generations never wrap (2^64 writes is unreachable), so saturating is only a formality.
fn next_generation(g: u64) -> u64 {
    g.saturating_add(1)
}

fn aad() -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    aad[..MAGIC.len()].copy_from_slice(&MAGIC);
    aad[MAGIC.len()..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    aad
}

/// Encodes and encrypts `state` into the complete file contents.
fn seal(cipher: &ChaCha20Poly1305, state: &DeviceState) -> Result<Vec<u8>, StoreError> {
    let plain = postcard::to_allocvec(state).map_err(StoreError::Encode)?;
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    // A fresh random nonce per write: 96 bits make a repeat under one key negligible.
    OsRng.try_fill_bytes(&mut nonce).map_err(StoreError::Random)?;
    let aad = aad();
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad })
        .map_err(|_| StoreError::Encrypt)?;
    let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
    out.extend_from_slice(&aad);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&CRC32.checksum(&ct).to_le_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Verifies and decrypts file contents (see the module docs for the layout and errors).
fn open_sealed(cipher: &ChaCha20Poly1305, path: &Path, bytes: &[u8]) -> Result<DeviceState, StoreError> {
    let format = |reason: String| StoreError::Format { path: path.to_path_buf(), reason };
    let corrupt = |reason| StoreError::Corrupt { path: path.to_path_buf(), reason };

    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(format("bad magic".into()));
    }
    if bytes.len() < HEADER_LEN {
        // Our magic but no room for a header: the file was cut short.
        return Err(corrupt("truncated header"));
    }
    let (aad, rest) = bytes.split_at(AAD_LEN);
    let (nonce, rest) = rest.split_at(AEAD_NONCE_LEN);
    let (crc, ct) = rest.split_at(4);
    let version = u16::from_le_bytes([aad[8], aad[9]]);
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(format(format!("format version {version}, this build reads 1 to {FORMAT_VERSION}")));
    }
    if CRC32.checksum(ct).to_le_bytes() != crc {
        return Err(corrupt("checksum mismatch: bit rot or a torn file"));
    }
    let plain = cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| StoreError::Tampered { path: path.to_path_buf() })?;
    let decoded = match version {
        1 => postcard::take_from_bytes::<DeviceStateV1>(&plain).map(|(s, rest)| (DeviceState::from(s), rest)),
        2 => postcard::take_from_bytes::<DeviceStateV2>(&plain).map(|(s, rest)| (DeviceState::from(s), rest)),
        3 => postcard::take_from_bytes::<DeviceStateV3>(&plain).map(|(s, rest)| (DeviceState::from(s), rest)),
        4 => postcard::take_from_bytes::<DeviceStateV4>(&plain).map(|(s, rest)| (DeviceState::from(s), rest)),
        _ => postcard::take_from_bytes::<DeviceState>(&plain),
    };
    match decoded {
        Ok((state, [])) => Ok(state),
        Ok(_) => Err(format("trailing bytes after the state".into())),
        // Authentic but undecodable: written by an incompatible build.
        Err(e) => Err(format(format!("state does not decode: {e}"))),
    }
}

fn exists(path: &Path) -> Result<bool, StoreError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::Io { op: "stat", path: path.to_path_buf(), error: e }),
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, StoreError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    if len > MAX_FILE_LEN {
        return Err(StoreError::Format { path: path.to_path_buf(), reason: format!("{len} bytes is too large") });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` also bounds a file that grows while we read it.
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes).map_err(io_err("read", path))?;
    Ok(bytes)
}

/// Reads a key file, refusing one that others can read or that has the wrong size.
fn read_key(path: &Path) -> Result<Key, StoreError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    // fstat on the opened file: checks exactly what we read.
    let meta = file.metadata().map_err(io_err("stat", path))?;
    if !meta.is_file() {
        return Err(StoreError::KeyFormat { path: path.to_path_buf(), reason: "not a regular file".into() });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::KeyPermissions { path: path.to_path_buf(), mode });
    }
    let mut bytes = Vec::with_capacity(KEY_LEN);
    file.take(KEY_LEN as u64 + 1).read_to_end(&mut bytes).map_err(io_err("read", path))?;
    // Read one byte more than a key so an over-long file is caught too.
    Key::try_from(bytes.as_slice()).map_err(|_| StoreError::KeyFormat {
        path: path.to_path_buf(),
        reason: match bytes.len() {
            n if n > KEY_LEN => format!("longer than {KEY_LEN} bytes"),
            n => format!("{n} bytes, expected {KEY_LEN}"),
        },
    })
}

/// Creates or truncates `path` (mode 0600), writes `bytes` and fsyncs the file.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create", path))?;
    // `mode` only applies to new files; a leftover one keeps its bits otherwise.
    file.set_permissions(Permissions::from_mode(0o600)).map_err(io_err("chmod", path))?;
    file.write_all(bytes).map_err(io_err("write", path))?;
    fault(Stage::Write).map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("sync", path))
}

/// Replaces `dir/store.fgs` with `bytes` atomically. On error the old file is untouched.
fn write_atomic(dir: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = dir.join(STORE_TMP);
    let path = dir.join(STORE_FILE);
    let staged = write_synced(&tmp, bytes).and_then(|()| {
        fault(Stage::Rename).map_err(io_err("rename", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))
    });
    if let Err(e) = staged {
        // Best effort: the next open removes it anyway.
        if let Err(rm) = fs::remove_file(&tmp) {
            if rm.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %tmp.display(), error = %rm, "cannot remove temporary store file");
            }
        }
        return Err(e);
    }
    // The rename is done: readers (and the next boot, barring power loss) see the new state,
    // so the write counts as committed. A failed directory fsync only weakens durability; a
    // lost rename later shows up to hosts as an older generation, which they re-sync.
    if let Err(e) = sync_dir(dir) {
        tracing::error!(
            error = %e,
            "store saved but the directory fsync failed; the change may not survive power loss"
        );
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", dir))
}

/// Points where tests can make a store write fail (no-ops outside tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// After the bytes were written to the temp file (as a full disk would fail).
    Write,
    /// Just before the rename.
    Rename,
}

#[cfg(not(test))]
#[inline(always)]
fn fault(_stage: Stage) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
thread_local! {
    static FAIL_AT: std::cell::Cell<Option<Stage>> = const { std::cell::Cell::new(None) };
}

#[cfg(test)]
fn fault(stage: Stage) -> io::Result<()> {
    if FAIL_AT.with(|f| f.get()) == Some(stage) {
        FAIL_AT.with(|f| f.set(None));
        return Err(io::Error::new(io::ErrorKind::StorageFull, "injected failure"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_engine::embed::random_unit;
    use facegate_proto::{bounded_str, Embedding, Threshold, EMBEDDING_DIM};
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use tempfile::TempDir;

    const MODEL: &str = "arcface-test-v1";

    fn unit_vector(seed: u64) -> [f32; EMBEDDING_DIM] {
        random_unit(&mut StdRng::seed_from_u64(seed)).try_into().expect("512 values")
    }

    fn template(id: TemplateId, seed: u64) -> Template {
        template_named(id, seed, &format!("Person {id}"))
    }

    fn template_named(id: TemplateId, seed: u64, name: &str) -> Template {
        Template {
            id,
            person_id: id / 2,
            display_name: bounded_str(name),
            model_id: bounded_str(MODEL),
            embedding: Embedding::quantize(&unit_vector(seed)),
        }
    }

    fn fresh() -> (TempDir, PathBuf, TemplateStore) {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        let store = TemplateStore::open(&dir, MODEL).unwrap();
        (tmp, dir, store)
    }

    fn store_file(dir: &Path) -> PathBuf {
        dir.join(STORE_FILE)
    }

    #[test]
    fn access_rules_are_kept_sorted_written_once_and_survive_a_reopen() {
        let (_tmp, dir, mut store) = fresh();
        let entry = |person_id, until| AccessEntry {
            person_id,
            valid_from: None,
            valid_until: Some(until),
            windows: facegate_proto::access::parse_schedule("Mon-Fri 07:00-19:00").unwrap(),
        };
        assert!(store.set_access(vec![entry(9, 100), entry(3, 200), entry(9, 300)]).unwrap());
        assert_eq!(store.access().iter().map(|e| e.person_id).collect::<Vec<_>>(), [3, 9]);
        assert_eq!(store.access_of(9).map(|e| e.valid_until), Some(Some(100)), "the first entry of a person wins");
        assert!(store.access_of(4).is_none());
        let generation = store.generation();
        assert!(!store.set_access(vec![entry(3, 200), entry(9, 100)]).unwrap(), "unchanged: nothing written");
        drop(store);
        let store = TemplateStore::open(&dir, MODEL).unwrap();
        assert_eq!((store.access().len(), store.generation()), (2, generation));
        assert_eq!(store.access_of(3), Some(&entry(3, 200)));
    }

    fn fail_next(stage: Stage) {
        FAIL_AT.with(|f| f.set(Some(stage)));
    }

    #[test]
    fn first_open_creates_private_files() {
        let (_tmp, dir, store) = fresh();
        assert_eq!(store.generation(), 0);
        assert!(store.is_empty());
        assert_eq!(store.model_id(), MODEL);
        assert_eq!(store.capacity(), TemplateStore::DEFAULT_CAPACITY);
        assert!(store.pairing_key().is_none());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&store_file(&dir)), 0o600);
        assert_eq!(fs::metadata(dir.join(KEY_FILE)).unwrap().len(), KEY_LEN as u64);
        assert!(!dir.join(KEY_TMP).exists());
        assert!(!dir.join(STORE_TMP).exists());
    }

    #[test]
    fn round_trip_across_reopen() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        store.upsert(template(2, 2)).unwrap();
        store.set_pairing_key([7; 32]).unwrap();
        store.set_setting(Setting::Liveness(true)).unwrap();
        store.set_setting(Setting::Threshold(Threshold::Cosine(0.4))).unwrap();
        let card = CardEntry { person_id: 1, card: facegate_proto::CardFormat::H10301.encode(12, 3456).unwrap() };
        store.set_cards(vec![card.clone()]).unwrap();
        store.set_panel_key([9; 16]).unwrap();
        drop(store);
        let store = TemplateStore::open(&dir, MODEL).unwrap();
        assert_eq!(store.generation(), 2);
        assert_eq!((store.cards(), store.panel_key()), (&[card][..], Some([9; 16])));
        assert_eq!(store.templates(), &[template(1, 1), template(2, 2)]);
        assert_eq!(store.pairing_key(), Some(&[7; 32]));
        assert_eq!(store.settings(), &[Setting::Liveness(true), Setting::Threshold(Threshold::Cosine(0.4))]);
    }

    #[test]
    fn a_version_1_store_opens_without_logins_or_cards_and_is_written_back_in_the_current_format() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        store.set_pairing_key([7; 32]).unwrap();
        // The same state as a build of format 1 wrote it: no logins, version 1 in the header
        // and in the authenticated data.
        #[derive(Serialize)]
        struct V1<'a> {
            generation: u64,
            model_id: &'a str,
            templates: &'a [Template],
            pairing_key: Option<Key>,
            settings: &'a [Setting],
        }
        let st = &store.state;
        let v1 = V1 {
            generation: st.generation,
            model_id: &st.model_id,
            templates: &st.templates,
            pairing_key: st.pairing_key,
            settings: &st.settings,
        };
        let plain = postcard::to_allocvec(&v1).unwrap();
        let mut aad = [0u8; AAD_LEN];
        aad[..MAGIC.len()].copy_from_slice(&MAGIC);
        aad[MAGIC.len()..].copy_from_slice(&1u16.to_le_bytes());
        let nonce = [3u8; AEAD_NONCE_LEN];
        let ct = store.cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad }).unwrap();
        let mut bytes = aad.to_vec();
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&CRC32.checksum(&ct).to_le_bytes());
        bytes.extend_from_slice(&ct);
        drop(store);
        fs::write(store_file(&dir), &bytes).unwrap();

        let mut store = TemplateStore::open(&dir, MODEL).unwrap();
        assert_eq!(store.templates(), &[template(1, 1)]);
        assert_eq!(store.pairing_key(), Some(&[7; 32]));
        assert!(store.logins().is_empty());
        assert!(store.cards().is_empty() && store.panel_key().is_none());
        assert!(store.proposals().is_empty());
        let alice = LoginEntry { person_id: 1, login: facegate_proto::bounded_str("alice") };
        store.set_logins(vec![alice.clone()]).unwrap();
        drop(store);
        let bytes = fs::read(store_file(&dir)).unwrap();
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), FORMAT_VERSION);
        assert_eq!(TemplateStore::open(&dir, MODEL).unwrap().logins(), &[alice]);
    }

    fn proposal(person: PersonId, seed: u64) -> Proposal {
        Proposal {
            id: 0,
            person_id: person,
            matched: person,
            model_id: facegate_proto::bounded_str(MODEL),
            embedding: template(person, seed).embedding,
            unix_time: 1_790_000_000 + seed,
            score: 0.6,
            threshold: 0.5,
            face_px: 120,
            sharpness: 50.0,
            yaw_deg: 3.0,
        }
    }

    #[test]
    fn proposals_are_bounded_per_person_survive_a_restart_and_leave_with_their_person() {
        let (_tmp, dir, mut store) = fresh();
        // Templates 2 and 4 are persons 1 and 2.
        store.replace_all(vec![template(2, 1), template(4, 2)]).unwrap();
        let generation = store.generation();
        let ids: Vec<ProposalId> = (0..3).map(|k| store.propose(proposal(1, 10 + k), 2).unwrap()).collect();
        assert_eq!(ids, [1, 2, 3]);
        store.propose(proposal(2, 20), 2).unwrap();
        // Person 1's oldest went; the template set (and so its generation) is untouched.
        let kept: Vec<(PersonId, ProposalId)> = store.proposals().iter().map(|p| (p.person_id, p.id)).collect();
        assert_eq!(kept, [(1, 2), (1, 3), (2, 4)]);
        assert_eq!(store.generation(), generation);
        drop(store);
        let mut store = TemplateStore::open(&dir, MODEL).unwrap();
        assert_eq!(store.proposals().len(), 3);
        assert_eq!(store.drop_proposals(&[2, 99]).unwrap(), 2);
        // Person 2 is no longer enrolled: their proposal has no one to be reviewed for.
        store.replace_all(vec![template(2, 1)]).unwrap();
        assert_eq!(store.proposals().iter().map(|p| p.id).collect::<Vec<_>>(), [3]);
        // Ids are never reused.
        assert_eq!(store.propose(proposal(1, 30), 2).unwrap(), 5);
    }

    #[test]
    fn generation_counts_template_changes_only() {
        let (_tmp, _dir, mut store) = fresh();
        assert_eq!(store.upsert(template(1, 1)).unwrap(), 1);
        assert_eq!(store.upsert(template(2, 2)).unwrap(), 2);
        assert_eq!(store.delete(1).unwrap(), 3);
        assert_eq!(store.replace_all(vec![template(5, 5)]).unwrap(), 4);
        store.set_pairing_key([1; 32]).unwrap();
        store.set_setting(Setting::Liveness(false)).unwrap();
        assert_eq!(store.generation(), 4);
    }

    #[test]
    fn upsert_replaces_same_id() {
        let (_tmp, _dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        store.upsert(template(2, 2)).unwrap();
        let newer = template_named(1, 99, "Renamed");
        store.upsert(newer.clone()).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.templates()[0], newer);
    }

    #[test]
    fn set_setting_replaces_same_key_and_validates() {
        let (_tmp, _dir, mut store) = fresh();
        store.set_setting(Setting::Consensus { required: 2, window: 3 }).unwrap();
        store.set_setting(Setting::Liveness(true)).unwrap();
        store.set_setting(Setting::Consensus { required: 1, window: 1 }).unwrap();
        assert_eq!(store.settings(), &[Setting::Consensus { required: 1, window: 1 }, Setting::Liveness(true)]);
        let bad = Setting::Consensus { required: 4, window: 3 };
        let err = store.set_setting(bad).unwrap_err();
        assert!(matches!(err, StoreError::InvalidSetting { .. }));
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
        assert_eq!(store.settings().len(), 2);
    }

    #[test]
    fn delete_missing_is_not_found() {
        let (_tmp, _dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        let err = store.delete(2).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { id: 2 }));
        assert_eq!(err.code(), ErrorCode::NotFound);
        assert_eq!(store.generation(), 1);
    }

    #[test]
    fn model_mismatch_on_upsert_and_replace_all() {
        let (_tmp, _dir, mut store) = fresh();
        let mut t = template(1, 1);
        t.model_id = bounded_str("other-model");
        let err = store.upsert(t.clone()).unwrap_err();
        assert!(matches!(err, StoreError::TemplateModelMismatch { id: 1, .. }));
        assert_eq!(err.code(), ErrorCode::ModelMismatch);
        let err = store.replace_all(vec![template(2, 2), t]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ModelMismatch);
        assert!(store.is_empty());
        assert_eq!(store.generation(), 0);
    }

    #[test]
    fn model_mismatch_on_reopen() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        drop(store);
        let before = fs::read(store_file(&dir)).unwrap();
        match TemplateStore::open(&dir, "another-model") {
            Err(StoreError::ModelMismatch { stored, expected }) => {
                assert_eq!(stored, MODEL);
                assert_eq!(expected, "another-model");
            }
            other => panic!("expected ModelMismatch, got {other:?}"),
        }
        assert_eq!(fs::read(store_file(&dir)).unwrap(), before, "a refused open must not rewrite the store");
        assert_eq!(TemplateStore::open(&dir, MODEL).unwrap().len(), 1);
    }

    #[test]
    fn invalid_templates_are_refused() {
        let (_tmp, _dir, mut store) = fresh();
        let mut zero = template(1, 1);
        zero.embedding = Embedding::quantize(&[0.0; EMBEDDING_DIM]);
        let err = store.upsert(zero.clone()).unwrap_err();
        assert!(matches!(err, StoreError::InvalidTemplate { id: 1, .. }));
        assert_eq!(err.code(), ErrorCode::InvalidTemplate);

        store.upsert(template(9, 9)).unwrap();
        for batch in [vec![template(1, 1), zero], vec![template(1, 1), template(2, 2), template(1, 3)]] {
            let err = store.replace_all(batch).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidTemplate);
        }
        assert_eq!(store.templates(), &[template(9, 9)]);
        assert_eq!(store.generation(), 1);
    }

    #[test]
    fn replace_all_swaps_the_set() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        store.set_pairing_key([3; 32]).unwrap();
        let set = vec![template(10, 10), template(11, 11), template(12, 12)];
        assert_eq!(store.replace_all(set.clone()).unwrap(), 2);
        assert_eq!(store.templates(), set.as_slice());
        assert_eq!(store.pairing_key(), Some(&[3; 32]));
        assert_eq!(store.replace_all(Vec::new()).unwrap(), 3);
        drop(store);
        let store = TemplateStore::open(&dir, MODEL).unwrap();
        assert!(store.is_empty());
        assert_eq!(store.generation(), 3);
    }

    /// Flips one bit at `offset` and returns the error `open` reports.
    fn open_with_flipped(dir: &Path, pristine: &[u8], offset: usize) -> StoreError {
        let mut bytes = pristine.to_vec();
        bytes[offset] ^= 0x01;
        fs::write(store_file(dir), &bytes).unwrap();
        match TemplateStore::open(dir, MODEL) {
            Ok(_) => panic!("flipped bit at offset {offset} went unnoticed"),
            Err(e) => e,
        }
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        store.set_pairing_key([9; 32]).unwrap();
        drop(store);
        let pristine = fs::read(store_file(&dir)).unwrap();
        let mut offsets: Vec<usize> = (0..HEADER_LEN + 8).collect();
        offsets.extend([pristine.len() / 2, pristine.len() - 17, pristine.len() - 1]);
        for offset in offsets {
            let err = open_with_flipped(&dir, &pristine, offset);
            let expected = match offset {
                0..8 => matches!(err, StoreError::Format { .. }),
                // The version: one this build does not read, or an older one it does, whose
                // authenticated data then no longer matches.
                8..10 => matches!(err, StoreError::Format { .. } | StoreError::Tampered { .. }),
                // The nonce is authenticated implicitly: a wrong nonce fails the tag.
                10..22 => matches!(err, StoreError::Tampered { .. }),
                _ => matches!(err, StoreError::Corrupt { .. }),
            };
            assert!(expected, "offset {offset}: {err:?}");
        }
        fs::write(store_file(&dir), &pristine).unwrap();
        assert_eq!(TemplateStore::open(&dir, MODEL).unwrap().len(), 1);
    }

    #[test]
    fn tamper_with_fixed_up_crc_is_tampered() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        drop(store);
        let pristine = fs::read(store_file(&dir)).unwrap();
        for offset in [HEADER_LEN, HEADER_LEN + 100, pristine.len() - 1] {
            let mut bytes = pristine.clone();
            bytes[offset] ^= 0x80;
            let crc = CRC32.checksum(&bytes[HEADER_LEN..]).to_le_bytes();
            bytes[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc);
            fs::write(store_file(&dir), &bytes).unwrap();
            let err = TemplateStore::open(&dir, MODEL).unwrap_err();
            assert!(matches!(err, StoreError::Tampered { .. }), "offset {offset}: {err:?}");
            assert_eq!(err.code(), ErrorCode::StoreIo);
        }
    }

    #[test]
    fn truncated_file_is_an_error() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        drop(store);
        let pristine = fs::read(store_file(&dir)).unwrap();
        for len in [0, 4, 8, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 1, pristine.len() / 2, pristine.len() - 1] {
            fs::write(store_file(&dir), &pristine[..len]).unwrap();
            let err = TemplateStore::open(&dir, MODEL).unwrap_err();
            assert!(
                matches!(err, StoreError::Corrupt { .. } | StoreError::Format { .. } | StoreError::Tampered { .. }),
                "len {len}: {err:?}"
            );
        }
    }

    #[test]
    fn wrong_key_is_tampered() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        drop(store);
        let (_tmp2, other_dir, _other) = fresh();
        fs::copy(other_dir.join(KEY_FILE), dir.join(KEY_FILE)).unwrap();
        fs::set_permissions(dir.join(KEY_FILE), Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(TemplateStore::open(&dir, MODEL), Err(StoreError::Tampered { .. })));
    }

    #[test]
    fn missing_store_with_key_is_refused() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        drop(store);
        fs::remove_file(store_file(&dir)).unwrap();
        let err = TemplateStore::open(&dir, MODEL).unwrap_err();
        assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
        assert!(!store_file(&dir).exists(), "must not recreate an empty store");
    }

    #[test]
    fn missing_key_with_store_is_refused() {
        let (_tmp, dir, _store) = fresh();
        fs::remove_file(dir.join(KEY_FILE)).unwrap();
        assert!(matches!(TemplateStore::open(&dir, MODEL), Err(StoreError::KeyMissing { .. })));
        assert!(!dir.join(KEY_FILE).exists());
    }

    #[test]
    fn key_readable_by_others_is_refused() {
        let (_tmp, dir, _store) = fresh();
        let key = dir.join(KEY_FILE);
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&key, Permissions::from_mode(mode)).unwrap();
            match TemplateStore::open(&dir, MODEL) {
                Err(StoreError::KeyPermissions { mode: m, .. }) => assert_eq!(m, mode),
                other => panic!("mode {mode:o}: {other:?}"),
            }
        }
        fs::set_permissions(&key, Permissions::from_mode(0o400)).unwrap();
        TemplateStore::open(&dir, MODEL).unwrap();
    }

    #[test]
    fn key_of_wrong_length_is_refused() {
        let (_tmp, dir, _store) = fresh();
        let key = dir.join(KEY_FILE);
        for len in [0, 31, 33, 64] {
            fs::write(&key, vec![1u8; len]).unwrap();
            assert!(matches!(TemplateStore::open(&dir, MODEL), Err(StoreError::KeyFormat { .. })), "len {len}");
        }
    }

    #[test]
    fn leftover_tmp_is_removed_and_ignored() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        let expected = store.state.clone();
        drop(store);
        fs::write(dir.join(STORE_TMP), b"half a write").unwrap();
        let store = TemplateStore::open(&dir, MODEL).unwrap();
        assert_eq!(store.state, expected);
        assert!(!dir.join(STORE_TMP).exists());
    }

    #[test]
    fn interrupted_first_start_recovers() {
        // Crash before the store was written: only the temp key exists.
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(KEY_TMP), [5u8; 32]).unwrap();
        let store = TemplateStore::open(&dir, MODEL).unwrap();
        assert!(store.is_empty());
        assert!(dir.join(KEY_FILE).exists() && !dir.join(KEY_TMP).exists());
        drop(store);

        // Crash after the store was written but before the key rename.
        let (_tmp2, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        drop(store);
        fs::rename(dir.join(KEY_FILE), dir.join(KEY_TMP)).unwrap();
        let store = TemplateStore::open(&dir, MODEL).unwrap();
        assert_eq!(store.len(), 1);
        assert!(dir.join(KEY_FILE).exists() && !dir.join(KEY_TMP).exists());
    }

    #[test]
    fn file_does_not_leak_plaintext() {
        let (_tmp, dir, mut store) = fresh();
        let t = template_named(1, 42, "Zebulon Quackenbush");
        let pairing: Key = core::array::from_fn(|i| i as u8 ^ 0xA5);
        store.upsert(t.clone()).unwrap();
        store.set_pairing_key(pairing).unwrap();
        drop(store);
        let bytes = fs::read(store_file(&dir)).unwrap();
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(b"Zebulon"));
        assert!(!contains(MODEL.as_bytes()));
        assert!(!contains(&pairing[..16]));
        let raw: Vec<u8> = t.embedding.values().iter().flat_map(|q| q.to_le_bytes()).collect();
        for window in raw.chunks(16) {
            assert!(!contains(window), "embedding bytes found in the file");
        }
    }

    #[test]
    fn debug_never_prints_keys() {
        let (_tmp, _dir, mut store) = fresh();
        store.set_pairing_key([0x5A; 32]).unwrap();
        let shown = format!("{store:?} {:?}", store.state);
        assert!(!shown.contains("90, 90"), "{shown}");
        assert!(!shown.contains("5a5a") && !shown.contains("5A5A"), "{shown}");
    }

    #[test]
    fn failed_write_leaves_state_and_file_unchanged() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        let state = store.state.clone();
        let file = fs::read(store_file(&dir)).unwrap();
        let check = |store: &TemplateStore, what: &str| {
            assert_eq!(store.state, state, "{what}: memory changed");
            assert_eq!(fs::read(store_file(&dir)).unwrap(), file, "{what}: file changed");
            assert!(!dir.join(STORE_TMP).exists(), "{what}: temp file left behind");
        };

        for stage in [Stage::Write, Stage::Rename] {
            fail_next(stage);
            let err = store.upsert(template(2, 2)).unwrap_err();
            assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
            assert_eq!(err.code(), ErrorCode::StoreIo);
            check(&store, "upsert");
            fail_next(stage);
            store.delete(1).unwrap_err();
            check(&store, "delete");
            fail_next(stage);
            store.replace_all(vec![template(3, 3)]).unwrap_err();
            check(&store, "replace_all");
            fail_next(stage);
            store.set_pairing_key([1; 32]).unwrap_err();
            check(&store, "set_pairing_key");
            fail_next(stage);
            store.set_setting(Setting::Liveness(true)).unwrap_err();
            check(&store, "set_setting");
        }

        // A real OS error: the temp path is taken by a directory, so creating it fails.
        fs::create_dir(dir.join(STORE_TMP)).unwrap();
        let err = store.upsert(template(2, 2)).unwrap_err();
        assert!(matches!(err, StoreError::Io { op: "create", .. }), "{err:?}");
        assert_eq!(store.state, state);
        assert_eq!(fs::read(store_file(&dir)).unwrap(), file);
        fs::remove_dir(dir.join(STORE_TMP)).unwrap();

        // And the store still works afterwards.
        assert_eq!(store.upsert(template(2, 2)).unwrap(), 2);
        drop(store);
        assert_eq!(TemplateStore::open(&dir, MODEL).unwrap().len(), 2);
    }

    #[test]
    fn read_only_directory_fails_cleanly() {
        let (_tmp, dir, mut store) = fresh();
        store.upsert(template(1, 1)).unwrap();
        let state = store.state.clone();
        fs::set_permissions(&dir, Permissions::from_mode(0o500)).unwrap();
        // Root ignores directory permissions; the injected faults above cover that case.
        let privileged = File::create(dir.join("probe")).is_ok();
        if !privileged {
            assert!(matches!(store.upsert(template(2, 2)), Err(StoreError::Io { .. })));
            assert_eq!(store.state, state);
        }
        fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
        drop(store);
        assert_eq!(TemplateStore::open(&dir, MODEL).unwrap().state, state);
    }

    #[test]
    fn capacity_is_enforced() {
        let (_tmp, dir, mut store) = fresh();
        let proto = template(0, 7);
        let full: Vec<Template> = (0..TemplateStore::DEFAULT_CAPACITY as u32)
            .map(|id| Template { id, person_id: id, ..proto.clone() })
            .collect();
        let mut over = full.clone();
        over.push(Template { id: u32::MAX, ..proto.clone() });
        let err = store.replace_all(over).unwrap_err();
        assert!(matches!(err, StoreError::StoreFull { capacity: TemplateStore::DEFAULT_CAPACITY }));
        assert_eq!(err.code(), ErrorCode::StoreFull);
        assert!(store.is_empty());

        assert_eq!(store.replace_all(full).unwrap(), 1);
        let err = store.upsert(Template { id: u32::MAX, ..proto.clone() }).unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreFull);
        // Replacing an existing template needs no room.
        assert_eq!(store.upsert(template_named(5, 5, "replaced")).unwrap(), 2);
        drop(store);
        let store = TemplateStore::open(&dir, MODEL).unwrap();
        assert_eq!(store.len(), TemplateStore::DEFAULT_CAPACITY);
        assert_eq!(store.templates()[5].display_name.as_str(), "replaced");
    }

    #[test]
    fn error_codes() {
        let p = PathBuf::from("x");
        assert_eq!(StoreError::Corrupt { path: p.clone(), reason: "r" }.code(), ErrorCode::StoreIo);
        assert_eq!(StoreError::Missing { path: p }.code(), ErrorCode::StoreIo);
        assert_eq!(StoreError::StoreFull { capacity: 1 }.code(), ErrorCode::StoreFull);
        assert_eq!(
            StoreError::ModelMismatch { stored: "a".into(), expected: "b".into() }.code(),
            ErrorCode::ModelMismatch
        );
        assert_eq!(StoreError::Encrypt.code(), ErrorCode::Internal);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Upsert(TemplateId, u64),
        Delete(TemplateId),
        ReplaceAll(Vec<(TemplateId, u64)>),
        Pair(u8),
        Setting(Setting),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..8, any::<u64>()).prop_map(|(id, seed)| Op::Upsert(id, seed)),
            2 => (0u32..8).prop_map(Op::Delete),
            1 => prop::collection::vec((0u32..8, any::<u64>()), 0..5).prop_map(Op::ReplaceAll),
            1 => any::<u8>().prop_map(Op::Pair),
            1 => prop_oneof![
                any::<bool>().prop_map(Setting::Liveness),
                (1u8..5, 5u8..9).prop_map(|(required, window)| Setting::Consensus { required, window }),
                (-1.0f32..1.0).prop_map(|t| Setting::Threshold(Threshold::Cosine(t))),
            ]
            .prop_map(Op::Setting),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever sequence of changes (including refused ones), a reopen sees exactly the
        /// in-memory state.
        #[test]
        fn reopen_equals_memory(ops in prop::collection::vec(op(), 1..24)) {
            let (_tmp, dir, mut store) = fresh();
            for op in ops {
                let before = store.generation();
                let result = match op {
                    Op::Upsert(id, seed) => store.upsert(template(id, seed)).map(drop),
                    Op::Delete(id) => store.delete(id).map(drop),
                    Op::ReplaceAll(set) => {
                        store.replace_all(set.into_iter().map(|(id, seed)| template(id, seed)).collect()).map(drop)
                    }
                    Op::Pair(b) => store.set_pairing_key([b; 32]),
                    Op::Setting(s) => store.set_setting(s),
                };
                // Only NotFound and duplicate ids can be refused here; refusals change nothing.
                if result.is_err() {
                    prop_assert_eq!(store.generation(), before);
                }
            }
            let reopened = TemplateStore::open(&dir, MODEL).unwrap();
            prop_assert_eq!(&reopened.state, &store.state);
        }
    }
}
