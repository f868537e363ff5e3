//! The device's shared state: the template store, the audit log, the live settings, the
//! gallery the kiosk loop matches against, and the event stream to connected hosts.
//!
//! The kiosk loop and every link session hold an `Arc<Core>`. Writes go through one mutex
//! (they are rare: enrolment, sync, config); the loop reads an immutable gallery snapshot so
//! a sync never stalls matching.

use crate::audit_log::{AuditError, AuditLog};
use crate::kiosk::decide::LockoutPolicy;
use crate::store::{StoreError, TemplateStore};
use facegate_engine::embed::Embedding;
use facegate_engine::matcher::{Gallery, TemplateRef};
use facegate_engine::{calibration, Calibration};
use facegate_proto::{
    AuditKind, AuditRecord, Capabilities, ConfigKey, Key, MatchEvent, PersonId, Setting, Template, TemplateId,
    Threshold,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// Events buffered per subscriber before a slow host starts missing them (they stay in the
/// audit log).
const EVENT_QUEUE: usize = 256;

/// The threshold in force and what it promises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffectiveThreshold {
    pub cosine: f32,
    /// Per-comparison FAR the cosine was chosen for (none for a fixed cosine).
    pub far: Option<f64>,
    /// False when the target is beyond what the calibration vouches for; `far` is then the
    /// calibration's floor, and [`EffectiveThreshold::fpir`] what the door can promise.
    pub vouched: bool,
    pub templates: usize,
}

impl EffectiveThreshold {
    /// The share of stranger visits this threshold lets match someone, at most.
    pub fn fpir(&self) -> Option<f64> {
        self.far.map(|f| calibration::fpir(f, self.templates))
    }
}

/// Live decision settings (host-settable through the protocol).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub threshold: Threshold,
    pub consensus_required: u8,
    pub consensus_window: u8,
    pub liveness: bool,
    pub lockout_max_failures: u8,
    pub lockout_window_secs: u16,
    pub lockout_cooldown_secs: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threshold: Threshold::FpirTarget(facegate_proto::DEFAULT_FPIR),
            consensus_required: 2,
            consensus_window: 3,
            // A printed photo held up is the commonest attack on a door; the check is measured
            // against it (docs/LIVENESS.md).
            liveness: true,
            lockout_max_failures: 5,
            lockout_window_secs: 60,
            lockout_cooldown_secs: 30,
        }
    }
}

impl Settings {
    pub fn get(&self, key: ConfigKey) -> Setting {
        match key {
            ConfigKey::Threshold => Setting::Threshold(self.threshold),
            ConfigKey::Consensus => {
                Setting::Consensus { required: self.consensus_required, window: self.consensus_window }
            }
            ConfigKey::Liveness => Setting::Liveness(self.liveness),
            ConfigKey::Lockout => Setting::Lockout {
                max_failures: self.lockout_max_failures,
                window_secs: self.lockout_window_secs,
                cooldown_secs: self.lockout_cooldown_secs,
            },
        }
    }

    pub fn apply(&mut self, s: Setting) {
        match s {
            Setting::Threshold(t) => self.threshold = t,
            Setting::Consensus { required, window } => {
                self.consensus_required = required;
                self.consensus_window = window;
            }
            Setting::Liveness(on) => self.liveness = on,
            Setting::Lockout { max_failures, window_secs, cooldown_secs } => {
                self.lockout_max_failures = max_failures;
                self.lockout_window_secs = window_secs;
                self.lockout_cooldown_secs = cooldown_secs;
            }
        }
    }

    pub fn lockout(&self) -> LockoutPolicy {
        LockoutPolicy {
            max_failures: self.lockout_max_failures,
            window: Duration::from_secs(u64::from(self.lockout_window_secs)),
            cooldown: Duration::from_secs(u64::from(self.lockout_cooldown_secs)),
        }
    }

    /// The cosine threshold against a gallery of `templates`: a fixed value, the calibrated
    /// score for a per-comparison FAR (verify), or for the per-comparison rate an FPIR target
    /// needs with that many templates (identify).
    pub fn effective_threshold(
        &self,
        calibration: Option<&Calibration>,
        templates: usize,
    ) -> Result<EffectiveThreshold, CoreError> {
        let far = match self.threshold {
            Threshold::Cosine(t) => return Ok(EffectiveThreshold { cosine: t, far: None, vouched: true, templates }),
            Threshold::FarTarget(far) => f64::from(far),
            Threshold::FpirTarget(fpir) => calibration::per_comparison_far(f64::from(fpir), templates),
        };
        let p = calibration.ok_or(CoreError::NoCalibration)?.promise(far);
        Ok(EffectiveThreshold { cosine: p.cosine, far: Some(p.far), vouched: p.vouched, templates })
    }

    /// The settings a local unlock (1:1, one login's templates) decides with: a door's FPIR
    /// becomes the verify default FAR, the rest is shared with the kiosk.
    pub fn for_unlock(&self) -> Settings {
        let threshold = match self.threshold {
            Threshold::FpirTarget(_) => Threshold::FarTarget(facegate_proto::DEFAULT_FAR),
            t => t,
        };
        Settings { threshold, ..*self }
    }

    /// The settings are usable for this matching mode: a per-comparison FAR belongs to verify
    /// (1:1), an FPIR to identify (1:N), and a rate needs a calibration.
    pub fn check(&self, identify: bool, calibration: Option<&Calibration>) -> Result<(), CoreError> {
        match (self.threshold, identify) {
            (Threshold::FarTarget(_), true) => return Err(CoreError::WrongRate("far", "fpir", "identifies (1:N)")),
            (Threshold::FpirTarget(_), false) => return Err(CoreError::WrongRate("fpir", "far", "verifies (1:1)")),
            _ => {}
        }
        self.effective_threshold(calibration, 1).map(|_| ())
    }
}

/// How long refused pairing attempts are counted before one audit record sums them up.
pub const REFUSED_PAIRS_WINDOW: Duration = Duration::from_secs(60);

/// Refused pairing attempts since the first of a burst.
#[derive(Debug, Default)]
struct RefusedPairs {
    since: Option<Instant>,
    count: u64,
    /// The first few peers seen (a flood from many is summed up without naming them all).
    peers: Vec<String>,
}

/// Who this device is, fixed at start.
#[derive(Debug, Clone)]
pub struct Identity {
    pub device_id: String,
    pub model_id: String,
    pub capabilities: Capabilities,
    /// 1:N (a door) rather than 1:1 (one owner): decides whether the rate is an FPIR or a FAR.
    pub identify: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("a FAR target needs a calibration table for this model; set a cosine threshold instead")]
    NoCalibration,
    #[error("{0} does not apply: this device {2}; set {1} (far = per comparison, for verify; fpir = per stranger visit, for identify)")]
    WrongRate(&'static str, &'static str, &'static str),
}

/// Everything behind the write lock.
pub struct Inner {
    pub store: TemplateStore,
    pub audit: AuditLog,
    pub settings: Settings,
}

pub struct Core {
    pub identity: Identity,
    pub calibration: Option<Calibration>,
    inner: Mutex<Inner>,
    gallery: RwLock<Arc<Gallery>>,
    subscribers: Mutex<Vec<SyncSender<MatchEvent>>>,
    pairing_until: Mutex<Option<Instant>>,
    /// The pairing key's generation: sessions authenticated under an older one are revoked.
    pairing_epoch: AtomicU64,
    /// The key the last pairing replaced, so its holder is told the device moved on (kept in
    /// memory only: after a restart the old key is simply wrong).
    replaced_key: Mutex<Option<Key>>,
    /// When the last pairing replaced a host's key, for the display.
    replaced_at: Mutex<Option<Instant>>,
    /// Refused pairing attempts not yet written to the audit log (coalesced per minute).
    refused_pairs: Mutex<RefusedPairs>,
    /// (received, total) of a sync in progress, for the display.
    sync_progress: Mutex<Option<(u32, u32)>>,
    /// Set on SIGTERM / shutdown: every thread winds down at its next check.
    pub stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl Core {
    /// `settings` are the configured defaults; values a host set earlier (kept in the store)
    /// override them.
    pub fn new(
        identity: Identity,
        calibration: Option<Calibration>,
        store: TemplateStore,
        audit: AuditLog,
        mut settings: Settings,
    ) -> Result<Core, CoreError> {
        settings.check(identity.identify, calibration.as_ref())?;
        for s in store.settings() {
            let mut next = settings;
            next.apply(*s);
            // A rate kept from another mode (or an older version) must not stop the door.
            match next.check(identity.identify, calibration.as_ref()) {
                Ok(()) => settings = next,
                Err(e) => tracing::warn!(setting = ?s, error = %e, "a setting a host made no longer applies; ignored"),
            }
        }
        let (gallery, set_aside) = build_gallery(store.templates());
        let core = Core {
            identity,
            calibration,
            inner: Mutex::new(Inner { store, audit, settings }),
            gallery: RwLock::new(Arc::new(gallery)),
            subscribers: Mutex::new(Vec::new()),
            pairing_until: Mutex::new(None),
            pairing_epoch: AtomicU64::new(0),
            replaced_key: Mutex::new(None),
            replaced_at: Mutex::new(None),
            refused_pairs: Mutex::new(RefusedPairs::default()),
            sync_progress: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
        };
        core.report_set_aside(&mut core.lock(), &set_aside);
        Ok(core)
    }

    /// Says in the log and the audit log (which hosts read) which templates are left out.
    fn report_set_aside(&self, inner: &mut Inner, ids: &[TemplateId]) {
        for id in ids {
            tracing::error!(template = id, "stored template has an unusable embedding; set aside, re-enrol or sync");
            let detail = format!("template {id} set aside: unusable embedding");
            self.audit_locked(inner, AuditKind::TemplateSetAside, None, None, &detail);
        }
    }

    /// The write lock. A panic while holding it must not brick the device: the state it
    /// guards is only changed after successful writes, so a poisoned lock is still consistent.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The gallery the loop matches against (a cheap snapshot).
    pub fn gallery(&self) -> Arc<Gallery> {
        self.gallery.read().map(|g| g.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn settings(&self) -> Settings {
        self.lock().settings
    }

    /// Rebuilds the matching gallery after the store changed (call with the lock held).
    pub fn refresh_gallery(&self, inner: &mut Inner) {
        let (g, set_aside) = build_gallery(inner.store.templates());
        self.report_set_aside(inner, &set_aside);
        let g = Arc::new(g);
        match self.gallery.write() {
            Ok(mut slot) => *slot = g,
            Err(p) => *p.into_inner() = g,
        }
    }

    /// Appends to the audit log; a failure is logged loudly but does not stop the door.
    pub fn audit(&self, kind: AuditKind, person: Option<PersonId>, score: Option<f32>, detail: &str) -> Option<u64> {
        self.audit_locked(&mut self.lock(), kind, person, score, detail)
    }

    pub fn audit_locked(
        &self,
        inner: &mut Inner,
        kind: AuditKind,
        person: Option<PersonId>,
        score: Option<f32>,
        detail: &str,
    ) -> Option<u64> {
        match inner.audit.append(kind, person, score, detail) {
            Ok(AuditRecord { seq, .. }) => Some(seq),
            Err(e) => {
                tracing::error!(error = %e, ?kind, "AUDIT LOG WRITE FAILED");
                None
            }
        }
    }

    /// A new event stream for a host session.
    pub fn subscribe(&self) -> Receiver<MatchEvent> {
        let (tx, rx) = mpsc::sync_channel(EVENT_QUEUE);
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    /// Sends an event to every subscribed session (dropping those that went away).
    pub fn publish(&self, event: &MatchEvent) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|tx| match tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!(seq = event.event_seq, "host not reading events; one dropped (it is in the audit log)");
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
    }

    /// Opens the pairing window for `d`.
    pub fn open_pairing(&self, d: Duration) {
        *self.pairing_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + d);
    }

    pub fn pairing_open(&self) -> bool {
        self.pairing_until.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|t| Instant::now() < t)
    }

    /// Seconds left in the pairing window.
    pub fn pairing_seconds_left(&self) -> Option<u32> {
        let until = (*self.pairing_until.lock().unwrap_or_else(|p| p.into_inner()))?;
        let left = until.checked_duration_since(Instant::now())?;
        Some(u32::try_from(left.as_secs()).unwrap_or(u32::MAX))
    }

    /// Installs the host key if the window is open; one pairing per window. A key it replaces
    /// stops working at once: every session authenticated with it is revoked.
    pub fn pair(&self, key: Key) -> Result<bool, CoreError> {
        let mut window = self.pairing_until.lock().unwrap_or_else(|p| p.into_inner());
        if !window.is_some_and(|t| Instant::now() < t) {
            return Ok(false);
        }
        let mut inner = self.lock();
        let previous = inner.store.pairing_key().copied();
        inner.store.set_pairing_key(key)?;
        *window = None;
        self.pairing_epoch.fetch_add(1, Ordering::SeqCst);
        let replaced = previous.filter(|p| *p != key);
        let detail = if replaced.is_some() { "host paired, replacing the previous host's key" } else { "host paired" };
        if replaced.is_some() {
            tracing::warn!("a new host paired: the previous host's key no longer works");
            *self.replaced_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
        *self.replaced_key.lock().unwrap_or_else(|p| p.into_inner()) = replaced;
        self.audit_locked(&mut inner, AuditKind::Paired, None, None, detail);
        Ok(true)
    }

    /// Records a refused pairing attempt from `peer`. The first of a burst is written to the
    /// audit log at once; the rest are counted and written as one record a minute
    /// ([`Core::flush_refused_pairs`]), so a flood cannot fill the disk.
    pub fn note_refused_pair(&self, peer: &str) {
        let now = Instant::now();
        self.flush_refused_pairs(now);
        let mut refused = self.refused_pairs.lock().unwrap_or_else(|p| p.into_inner());
        if refused.since.is_none() {
            refused.since = Some(now);
            drop(refused);
            self.audit(AuditKind::AuthFailure, None, None, &format!("pairing refused from {peer}"));
            return;
        }
        refused.count += 1;
        if !refused.peers.iter().any(|p| p == peer) && refused.peers.len() < 3 {
            refused.peers.push(peer.to_owned());
        }
    }

    /// Writes the refused pairing attempts counted over the last minute, once the minute is
    /// over (the link calls this as it polls).
    pub fn flush_refused_pairs(&self, now: Instant) {
        let mut refused = self.refused_pairs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(since) = refused.since else { return };
        if now.saturating_duration_since(since) < REFUSED_PAIRS_WINDOW {
            return;
        }
        let done = std::mem::take(&mut *refused);
        drop(refused);
        if done.count > 0 {
            // Audit details are short (48 bytes): the count and the first peers.
            let detail = format!("{} refused pairings in 1 min: {}", done.count, done.peers.join(" "));
            self.audit(AuditKind::AuthFailure, None, None, &detail);
        }
    }

    /// The pairing key's generation (see [`Core::pair`]).
    pub fn pairing_epoch(&self) -> u64 {
        self.pairing_epoch.load(Ordering::SeqCst)
    }

    /// The key the last pairing replaced, if any.
    pub fn replaced_key(&self) -> Option<Key> {
        *self.replaced_key.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a pairing replaced a host's key within `recent` (the display says so).
    pub fn replaced_within(&self, recent: Duration) -> bool {
        self.replaced_at.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|t| t.elapsed() < recent)
    }

    /// Records how far a sync has come (`None` when it ends either way).
    pub fn set_sync_progress(&self, progress: Option<(u32, u32)>) {
        *self.sync_progress.lock().unwrap_or_else(|p| p.into_inner()) = progress;
    }

    pub fn sync_progress(&self) -> Option<(u32, u32)> {
        *self.sync_progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pairing_key(&self) -> Option<Key> {
        self.lock().store.pairing_key().copied()
    }

    pub fn is_stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The card a person's grant is reported as, if the host gave them one.
    pub fn card_for(&self, person: PersonId) -> Option<facegate_proto::Card> {
        self.lock().store.cards().iter().find(|c| c.person_id == person).map(|c| c.card.clone())
    }

    /// The person a Unix login belongs to, if the host mapped it and they have a template here.
    pub fn person_for_login(&self, login: &str) -> Option<PersonId> {
        let person = self.lock().store.logins().iter().find(|e| e.login.as_str() == login).map(|e| e.person_id)?;
        let gallery = self.gallery();
        (0..gallery.len()).filter_map(|i| gallery.template(i)).any(|t| t.person_id == person).then_some(person)
    }
}

/// The gallery of every usable template, and the ids of those set aside: a template that fails
/// the admission check ([`facegate_proto::Embedding::is_valid`], the same function) cannot be
/// matched against, but must not keep everyone else out.
fn build_gallery(templates: &[Template]) -> (Gallery, Vec<TemplateId>) {
    let mut g = Gallery::new();
    let mut set_aside = Vec::new();
    for t in templates {
        let usable = t.embedding.is_valid().then(|| Embedding::from_raw(t.embedding.dequantize().to_vec())).flatten();
        match usable {
            Some(e) => {
                g.push(TemplateRef { template_id: t.id, person_id: t.person_id, name: t.display_name.to_string() }, &e)
            }
            None => set_aside.push(t.id),
        }
    }
    (g, set_aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_proto::{bounded_str, Embedding as Wire, EMBEDDING_DIM};
    use proptest::prelude::*;
    use rand::SeedableRng;

    const MODEL: &str = "state-test-model";

    fn template(id: TemplateId, embedding: Wire) -> Template {
        Template {
            id,
            person_id: id,
            display_name: bounded_str(&format!("P{id}")),
            model_id: bounded_str(MODEL),
            embedding,
        }
    }

    fn usable(seed: u64) -> Wire {
        let v = facegate_engine::embed::random_unit(&mut rand::rngs::StdRng::seed_from_u64(seed));
        Wire::quantize(&v.try_into().expect("512 values"))
    }

    proptest! {
        /// Whatever admission accepts, loading accepts: the device can always restart on what it stored.
        #[test]
        fn what_admission_accepts_loading_accepts(
            scale in prop_oneof![any::<f32>(), Just(3.4e38f32), Just(1e-30f32), Just(f32::MIN_POSITIVE), 1e-12f32..1e-8],
            values in proptest::collection::vec(any::<i16>(), EMBEDDING_DIM),
        ) {
            let values: [i16; EMBEDDING_DIM] = values.try_into().expect("512 values");
            let t = template(1, Wire::from_parts(scale, values));
            let admitted = t.validate(MODEL).is_ok();
            let (gallery, set_aside) = build_gallery(std::slice::from_ref(&t));
            if admitted {
                prop_assert!(set_aside.is_empty() && gallery.len() == 1, "admitted scale {} but not loadable", scale);
            } else {
                prop_assert_eq!(set_aside, vec![1]);
            }
        }
    }

    /// A calibration with impostor scores spread evenly over [-0.2, 0.5).
    fn even_calibration() -> Calibration {
        let impostor: Vec<f32> = (0..700_000).map(|i| -0.2 + i as f32 * 1e-6).collect();
        Calibration::fit(&[0.8; 100], &impostor, MODEL, "even")
    }

    #[test]
    fn an_fpir_target_tightens_the_threshold_as_the_gallery_grows() {
        let cal = even_calibration();
        let settings = Settings { threshold: Threshold::FpirTarget(1e-2), ..Settings::default() };
        let one = settings.effective_threshold(Some(&cal), 1).expect("calibrated");
        let many = settings.effective_threshold(Some(&cal), 100).expect("calibrated");
        assert!(many.cosine > one.cosine, "{one:?} {many:?}");
        let far = many.far.expect("a rate");
        assert!((far - calibration::per_comparison_far(f64::from(1e-2f32), 100)).abs() < 1e-15);
        assert!(many.vouched && (many.fpir().expect("a rate") - 1e-2).abs() < 1e-9);
        // So many templates that the rate needed is below the calibration's floor: the device
        // uses the floor and says what it can promise instead.
        let huge = settings.effective_threshold(Some(&cal), 10_000_000).expect("calibrated");
        assert!(!huge.vouched);
        assert_eq!(huge.far, Some(cal.floor()));
        assert!(huge.fpir().expect("a rate") > 1e-2);
        // A per-comparison FAR ignores the gallery size.
        let far = Settings { threshold: Threshold::FarTarget(1e-3), ..Settings::default() };
        let a = far.effective_threshold(Some(&cal), 1).expect("calibrated");
        assert_eq!(
            a,
            EffectiveThreshold { templates: 1, ..far.effective_threshold(Some(&cal), 500).expect("calibrated") }
        );
    }

    #[test]
    fn each_mode_takes_its_own_rate() {
        let cal = even_calibration();
        let far = Settings { threshold: Threshold::FarTarget(1e-3), ..Settings::default() };
        let fpir = Settings { threshold: Threshold::FpirTarget(1e-2), ..Settings::default() };
        let cosine = Settings { threshold: Threshold::Cosine(0.4), ..Settings::default() };
        assert!(fpir.check(true, Some(&cal)).is_ok() && far.check(false, Some(&cal)).is_ok());
        assert!(cosine.check(true, None).is_ok() && cosine.check(false, None).is_ok());
        let wrong = far.check(true, Some(&cal)).expect_err("far in identify mode");
        assert!(wrong.to_string().contains("set fpir"), "{wrong}");
        let wrong = fpir.check(false, Some(&cal)).expect_err("fpir in verify mode");
        assert!(wrong.to_string().contains("set far"), "{wrong}");
        assert!(matches!(fpir.check(true, None), Err(CoreError::NoCalibration)));
    }

    #[test]
    fn overflowing_and_underflowing_scales_are_not_admitted() {
        for scale in [3.4e38f32, 1e-30, f32::INFINITY, f32::NAN, 0.0, -1.0] {
            let t = template(1, Wire::from_parts(scale, [1000; EMBEDDING_DIM]));
            assert!(t.validate(MODEL).is_err(), "scale {scale} admitted");
        }
        assert!(template(1, usable(1)).validate(MODEL).is_ok());
    }

    /// A store that does hold an unusable template still starts: the template is left out of
    /// matching and said so in the audit log; everyone else is matched as before.
    #[test]
    fn a_stored_unusable_template_is_set_aside_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = TemplateStore::open(&dir.path().join("store"), MODEL).expect("store");
        store.upsert(template(1, usable(1))).expect("good template");
        store.insert_unchecked(template(2, Wire::from_parts(3.4e38, [1000; EMBEDDING_DIM]))).expect("bad template");
        store.upsert(template(3, usable(3))).expect("good template");
        let audit = AuditLog::open(&dir.path().join("audit.log")).expect("audit");
        let identity = Identity {
            device_id: "t".into(),
            model_id: MODEL.into(),
            capabilities: Capabilities::NONE,
            identify: true,
        };
        let settings = Settings { threshold: Threshold::Cosine(0.4), ..Settings::default() };
        let core = Core::new(identity, None, store, audit, settings).expect("the device starts");
        let ids: Vec<TemplateId> =
            (0..core.gallery().len()).filter_map(|i| core.gallery().template(i).map(|t| t.template_id)).collect();
        assert_eq!(ids, [1, 3]);
        let records = core.lock().audit.read(0, 10).expect("audit");
        let aside: Vec<&str> =
            records.iter().filter(|r| r.kind == AuditKind::TemplateSetAside).map(|r| r.detail.as_str()).collect();
        assert_eq!(aside, ["template 2 set aside: unusable embedding"]);
    }
}
