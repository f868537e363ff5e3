//! The kiosk loop: capture -> detect every frame -> track the subject -> embed only a new or
//! changed face that passes the gate -> N-of-M consensus -> decide -> report (link event,
//! display, audit log, action).
//!
//! Capture runs on its own thread so a slow frame never stalls the camera; live sources drop
//! stale frames, replays deliver every frame.

pub mod action;
pub mod decide;
mod propose;
pub mod rules;
pub mod summary;
pub mod track;
pub mod unlock;

use crate::display::{NormRect, PngDisplay, Screen};
use crate::door::{Authority, Door, PanelAnswer};
use crate::state::{Core, EffectiveThreshold, Settings};
use action::{Action, ActionContext};
use decide::{Consensus, Lockout, LockoutChange, Verdict, Vote};
use facegate_engine::liveness::{self, Liveness};
use facegate_engine::source::{CapturedFrame, FrameSource, SourceError};
use facegate_engine::updates::UpdatePolicy;
use facegate_engine::{detect, Engine, QualityGate, QualityIssue};
use facegate_proto::{AuditKind, Decision, MatchEvent, MatchedIdentity, PersonId, UnlockReply};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use track::{Signature, Step, Tracker, SAME_FACE_MIN_CORRELATION};
use unlock::{OpenUnlock, UnlockJob};

/// How long the idle screen says a new host was paired.
const NEW_HOST_NOTICE: Duration = Duration::from_secs(30);

/// Door kiosk (1:N) or personal unlock (1:1 against one owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Identify,
    Verify { owner: PersonId },
}

/// Loop options fixed at start (live settings come from [`Core`]).
#[derive(Debug, Clone)]
pub struct KioskOptions {
    pub mode: Mode,
    pub gate: QualityGate,
    /// Mean live probability below which a visit is a presentation attack; `None` = the one
    /// `models/liveness.toml` chose on development data.
    pub liveness_threshold: Option<f32>,
    pub action: Option<Action>,
    /// Frames without a face before a track ends.
    pub max_missed: u32,
    pub title: String,
    /// The door's local time, for the access rules.
    pub clock: rules::DoorClock,
    /// When a grant is kept as a proposed template.
    pub updates: UpdatePolicy,
}

/// What the loop did, for logs and benchmarks.
#[derive(Debug, Default, Clone)]
pub struct KioskStats {
    pub frames: u64,
    pub dropped: u64,
    pub embedded: u64,
    /// Probes too close to call on one pass, embedded again with their mirror image.
    pub second_looks: u64,
    pub decisions: Vec<DecisionRecord>,
    pub busy: Duration,
    pub wall: Duration,
}

/// One decision as the loop saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    pub frame: u64,
    pub label: String,
    pub decision: Decision,
    pub person_id: Option<PersonId>,
    pub name: Option<String>,
    pub score: f32,
    /// Capture of the deciding frame -> decision.
    pub latency: Duration,
    /// Capture of the track's first frame -> decision (what the person waits).
    pub track_latency: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("engine: {0}")]
    Engine(#[from] facegate_engine::EngineError),
    #[error("threshold: {0}")]
    Core(#[from] crate::state::CoreError),
}

/// Sends `reply` to whoever asked; one that gave up waiting is not an error.
fn answer(job: &UnlockJob, reply: UnlockReply) {
    let _ = job.reply.try_send(reply);
}

/// Whole seconds left, rounded up (the screen and the unlock answer count down from it).
fn secs_left(d: Duration) -> u32 {
    d.as_secs() as u32 + 1
}

/// Short guidance for the screen.
fn guidance(issue: &QualityIssue) -> &'static str {
    match issue {
        QualityIssue::TooSmall { .. } => "Move closer",
        QualityIssue::TooDark { .. } | QualityIssue::LowContrast { .. } => "Too dark",
        QualityIssue::TooBright { .. } => "Too bright",
        QualityIssue::Blurred { .. } => "Hold still",
        QualityIssue::Profile { .. } | QualityIssue::WeakDetection { .. } => "Face the camera",
        QualityIssue::Tilted { .. } => "Head straight",
        QualityIssue::UnevenLight { .. } => "Light from one side",
    }
}

/// The per-track state the loop keeps.
struct TrackState {
    consensus: Consensus,
    first_seen: Instant,
    liveness: Vec<f32>,
}

pub struct Kiosk<'e> {
    engine: &'e Engine,
    core: Arc<Core>,
    options: KioskOptions,
    display: Option<PngDisplay>,
    liveness: Option<Liveness>,
    tracker: Tracker,
    track: Option<TrackState>,
    lockout: Lockout,
    stats: KioskStats,
    last_screen: Option<Screen>,
    logged_threshold: Option<EffectiveThreshold>,
    /// Local unlock requests from the unlock socket, and the one being served.
    unlock_jobs: Option<mpsc::Receiver<UnlockJob>>,
    open: Option<OpenUnlock>,
    /// The door's outputs (panel, Wiegand, relay) and the panel's answers.
    door: Option<Door>,
    /// A panel's answer stays on screen until then, even with nobody in front of the camera.
    hold_until: Option<Instant>,
}

impl<'e> Kiosk<'e> {
    pub fn new(
        engine: &'e Engine,
        core: Arc<Core>,
        options: KioskOptions,
        display: Option<PngDisplay>,
    ) -> Result<Kiosk<'e>, KioskError> {
        let settings = core.settings();
        // Loaded even when off, so a host can switch it on without a restart; on and missing,
        // the door does not start (it would refuse every visit).
        let liveness = match engine.load_liveness() {
            Ok(l) => Some(l),
            Err(e) if settings.liveness => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "liveness model unavailable; turning liveness on will refuse every visit");
                None
            }
        };
        Ok(Kiosk {
            engine,
            core,
            tracker: Tracker::new(options.max_missed),
            options,
            display,
            liveness,
            track: None,
            lockout: Lockout::new(settings.lockout()),
            stats: KioskStats::default(),
            last_screen: None,
            logged_threshold: None,
            unlock_jobs: None,
            open: None,
            door: None,
            hold_until: None,
        })
    }

    /// Reports grants to the door's outputs and shows what its panel answers.
    pub fn with_door(mut self, door: Door) -> Kiosk<'e> {
        self.door = Some(door);
        self
    }

    /// Applies what the access-control panel said: its answers go on screen (and stay there
    /// for their time), and a grant it leaves unanswered is reported as such.
    fn poll_door(&mut self) {
        let Some(door) = self.door.as_mut() else { return };
        let mut screens = Vec::new();
        for command in door.poll() {
            let Some(answer) = PanelAnswer::of(&command) else { continue };
            let (screen, hold) = match answer {
                PanelAnswer::Open { hold } => (Screen::DoorOpen { name: door.answered() }, hold),
                PanelAnswer::Refused { hold } => {
                    door.answered();
                    (Screen::PanelRefused, hold)
                }
                PanelAnswer::Text { text, hold } => (Screen::PanelText { text }, hold),
            };
            screens.push((screen, hold));
        }
        if let Some(w) = door.unanswered() {
            let detail = format!("no answer to the grant of {} in time", w.name.as_deref().unwrap_or("someone"));
            self.core.audit(AuditKind::Panel, None, None, &detail);
            tracing::warn!(timeout_ms = door.panel_timeout.as_millis() as u64, "the panel did not answer a grant");
            screens.push((Screen::Error { message: "No answer from the door controller".into() }, door.panel_timeout));
        }
        for (screen, hold) in screens {
            self.hold_until = Some(Instant::now() + hold);
            self.show(screen);
        }
    }

    /// Serves local unlock requests from `jobs` as well as the door.
    pub fn with_unlock(mut self, jobs: mpsc::Receiver<UnlockJob>) -> Kiosk<'e> {
        self.unlock_jobs = Some(jobs);
        self
    }

    /// Unlock only, camera on only while someone is unlocking: for each request, opens the
    /// frame source, runs the loop on its frames until the answer, and closes it.
    pub fn serve_on_demand(
        mut self,
        mut open_source: impl FnMut() -> Result<Box<dyn FrameSource>, SourceError>,
    ) -> Result<KioskStats, KioskError> {
        let started = Instant::now();
        while !self.core.is_stopping() {
            let job = match self.unlock_jobs.as_ref().map(|r| r.recv_timeout(Duration::from_millis(200))) {
                Some(Ok(job)) => job,
                Some(Err(mpsc::RecvTimeoutError::Timeout)) => continue,
                Some(Err(mpsc::RecvTimeoutError::Disconnected)) | None => break,
            };
            // The lockout runs on one clock across requests; each source starts its own at 0.
            let base = started.elapsed();
            self.open_unlock(job, base);
            if self.open.is_none() {
                continue;
            }
            let mut source = match open_source() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot open the camera for an unlock request");
                    self.close_unlock(UnlockReply::NoFace, None, true);
                    continue;
                }
            };
            while self.open.is_some() {
                match source.next_frame() {
                    Ok(Some(mut frame)) => {
                        frame.at += base;
                        let t = Instant::now();
                        self.frame(&frame)?;
                        self.stats.busy += t.elapsed();
                        self.stats.frames += 1;
                    }
                    Ok(None) => {
                        let reply = self.open.as_ref().map_or(UnlockReply::NoFace, OpenUnlock::expired);
                        self.close_unlock(reply, None, true);
                    }
                    Err(e) if e.is_transient() => tracing::warn!(error = %e, "unreadable frame"),
                    Err(e) => {
                        tracing::error!(error = %e, "the camera failed during an unlock request");
                        self.close_unlock(UnlockReply::NoFace, None, true);
                    }
                }
            }
            // Dropping the source closes the camera: its light is off between requests.
            drop(source);
            self.tracker = Tracker::new(self.options.max_missed);
            self.track = None;
        }
        self.stats.wall = started.elapsed();
        Ok(self.stats)
    }

    /// Takes new requests (a second one while one is open is busy) and ends the open one when
    /// its time is up.
    fn poll_unlock(&mut self, at: Duration) {
        while let Some(job) = self.unlock_jobs.as_ref().and_then(|r| r.try_recv().ok()) {
            self.open_unlock(job, at);
        }
        if let Some(o) = self.open.as_ref().filter(|o| Instant::now() >= o.deadline) {
            let reply = o.expired();
            self.close_unlock(reply, None, true);
        }
    }

    fn open_unlock(&mut self, job: UnlockJob, at: Duration) {
        if self.open.is_some() {
            answer(&job, UnlockReply::Busy);
            return;
        }
        let reply = match (self.core.person_for_login(&job.request.login), self.lockout.remaining(at)) {
            (None, _) => UnlockReply::NotEnrolled,
            (Some(_), Some(left)) => UnlockReply::LockedOut { seconds_left: secs_left(left) },
            (Some(person), None) => {
                tracing::info!(login = %job.request.login, "unlock request");
                self.open = Some(OpenUnlock::new(job, person));
                // A face already decided for the door is decided again, for this login.
                self.tracker = Tracker::new(self.options.max_missed);
                self.track = None;
                return;
            }
        };
        self.audit_unlock(&job, &reply, None);
        answer(&job, reply);
    }

    /// Answers the open request; `audit` unless the decision's report already did.
    fn close_unlock(&mut self, reply: UnlockReply, score: Option<f32>, audit: bool) {
        let Some(open) = self.open.take() else { return };
        if audit {
            self.audit_unlock(&open.job, &reply, score);
        }
        let first_frame_ms = open.first_frame.map(|t| t.duration_since(open.job.received).as_secs_f64() * 1e3);
        let answer_ms = open.job.received.elapsed().as_secs_f64() * 1e3;
        tracing::info!(
            login = %open.job.request.login, outcome = unlock::outcome(&reply), first_frame_ms, answer_ms,
            "unlock answered"
        );
        answer(&open.job, reply);
    }

    fn audit_unlock(&self, job: &UnlockJob, reply: &UnlockReply, score: Option<f32>) {
        let person = match reply {
            UnlockReply::Granted { person_id, .. } => Some(*person_id),
            _ => self.open.as_ref().map(|o| o.person_id),
        };
        self.core.audit(AuditKind::Unlock, person, score, &unlock::audit_detail(&job.request, reply));
    }

    /// The mode decisions are made in now: the open unlock request's login, else the door's.
    fn mode(&self) -> Mode {
        self.open.as_ref().map_or(self.options.mode, |o| Mode::Verify { owner: o.person_id })
    }

    /// Runs until the source ends or the device stops.
    pub fn run(mut self, source: Box<dyn FrameSource>) -> Result<KioskStats, KioskError> {
        let started = Instant::now();
        let live = source.is_live();
        let (tx, rx) = mpsc::sync_channel::<Result<CapturedFrame, SourceError>>(2);
        let stop = self.core.stop.clone();
        let capture = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let mut source = source;
                let mut dropped = 0u64;
                loop {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let item = match source.next_frame() {
                        Ok(Some(f)) => Ok(f),
                        Ok(None) => break,
                        Err(e) => Err(e),
                    };
                    // An unreadable stretch is reported and the source goes on; other errors end it.
                    let failed = item.as_ref().is_err_and(|e| !e.is_transient());
                    if live {
                        match tx.try_send(item) {
                            Ok(()) => {}
                            Err(mpsc::TrySendError::Full(_)) => dropped += 1,
                            Err(mpsc::TrySendError::Disconnected(_)) => break,
                        }
                    } else if tx.send(item).is_err() {
                        break;
                    }
                    if failed {
                        break;
                    }
                }
                dropped
            })
            .map_err(|e| SourceError::Camera(format!("cannot start capture thread: {e}")))?;
        self.show(Screen::Idle { title: self.options.title.clone(), enrolled: self.core.gallery().len() as u32 });
        loop {
            // Without frames (a paused source) the panel's answers still reach the screen.
            let item = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(item) => item,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.poll_door();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let frame = match item {
                Ok(f) => f,
                Err(e) if e.is_transient() => {
                    self.show(Screen::Error { message: e.to_string() });
                    continue;
                }
                Err(e) => {
                    self.show(Screen::Error { message: e.to_string() });
                    return Err(e.into());
                }
            };
            let t = Instant::now();
            if let Err(e) = self.frame(&frame) {
                // The door says it is out of order rather than freezing on its last screen.
                self.show(Screen::Error { message: e.to_string() });
                return Err(e);
            }
            self.stats.busy += t.elapsed();
            self.stats.frames += 1;
        }
        self.stats.dropped =
            capture.join().map_err(|_| SourceError::Camera("the capture thread panicked; see the log above".into()))?;
        self.stats.wall = started.elapsed();
        Ok(self.stats)
    }

    fn show(&mut self, screen: Screen) {
        if self.last_screen.as_ref() == Some(&screen) {
            return;
        }
        if let Some(d) = &mut self.display {
            if let Err(e) = d.show(&screen) {
                tracing::warn!(error = %e, "display update failed");
            }
        }
        self.last_screen = Some(screen);
    }

    /// One frame through the pipeline.
    pub fn frame(&mut self, frame: &CapturedFrame) -> Result<(), KioskError> {
        self.poll_unlock(frame.at);
        self.poll_door();
        if let Some(o) = self.open.as_mut() {
            o.first_frame.get_or_insert_with(Instant::now);
        }
        let settings = self.core.settings();
        let settings = if self.open.is_some() { settings.for_unlock() } else { settings };
        self.lockout.set_policy(settings.lockout());
        let img = &frame.image;
        let (w, h) = (img.width() as f32, img.height() as f32);
        let faces = match self.engine.detect(img) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(frame = frame.index, error = %e, "detection failed");
                Vec::new()
            }
        };
        let subject = detect::choose_subject(&faces, w, h);
        let step = self.tracker.observe(subject.map(|i| &faces[i]));
        let Some(subject) = subject else {
            // A panel's answer, or the wait for it, stays up with nobody in front of the camera.
            let holding = self.hold_until.is_some_and(|t| Instant::now() < t)
                || self.door.as_ref().is_some_and(|d| d.waiting.is_some());
            if self.tracker.current().is_none() && !holding {
                self.track = None;
                let lockout = self.lockout.remaining(frame.at);
                let idle = match (lockout, self.core.sync_progress(), self.core.pairing_seconds_left()) {
                    (Some(left), _, _) => Screen::LockedOut { remaining_secs: secs_left(left) },
                    // In 10% steps: one new screen per step, not one per frame.
                    (None, Some((received, total)), _) => {
                        Screen::Syncing { received: received * 10 / total.max(1) * total.max(1) / 10, total }
                    }
                    // In 10 s steps, likewise.
                    (None, None, Some(secs)) => Screen::Pairing { seconds_left: secs / 10 * 10 },
                    (None, None, None) if self.core.replaced_within(NEW_HOST_NOTICE) => Screen::NewHost,
                    (None, None, None) => {
                        Screen::Idle { title: self.options.title.clone(), enrolled: self.core.gallery().len() as u32 }
                    }
                };
                self.show(idle);
            }
            return Ok(());
        };
        let face = faces[subject];
        if let Some(o) = self.open.as_mut() {
            o.saw_face = true;
        }
        let rect = NormRect { x: face.x1 / w, y: face.y1 / h, w: face.width() / w, h: face.height() / h };
        if matches!(step, Step::New(_)) {
            self.start_track(frame);
        }
        // Locked out: one refusal per visitor, nothing embedded.
        if let Some(left) = self.lockout.remaining(frame.at) {
            self.show(Screen::LockedOut { remaining_secs: secs_left(left) });
            if let Some(t) = self.tracker.current_mut().filter(|t| !t.decided) {
                t.decided = true;
                let track_latency = self.track.as_ref().map_or(Duration::ZERO, |s| s.first_seen.elapsed());
                let verdict = Verdict { matched: None, score: 0.0 };
                self.report(frame, Decision::LockedOut, verdict, None, track_latency, None);
            }
            return Ok(());
        }
        let observation = match self.engine.observe(img, &face) {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(frame = frame.index, error = %e, "face not usable");
                self.show(Screen::Looking { face: Some(rect), guidance: Some("Face the camera".into()) });
                return Ok(());
            }
        };
        let signature = Signature::of(&observation.aligned);
        if let Some(t) = self.tracker.current() {
            let same = t.signature.as_ref().is_none_or(|s| s.correlation(&signature) >= SAME_FACE_MIN_CORRELATION);
            if t.decided && same {
                // Already decided for this face: no embedding, keep the verdict on screen.
                return Ok(());
            }
            if !same {
                // Someone else took the same spot.
                self.tracker.restart(face);
                self.start_track(frame);
            }
        }
        if let Some(t) = self.tracker.current_mut() {
            t.signature = Some(signature);
        }
        if let Some(issue) = self.options.gate.check(&observation.quality).first() {
            let dark = matches!(
                issue,
                QualityIssue::TooDark { .. } | QualityIssue::LowContrast { .. } | QualityIssue::UnevenLight { .. }
            );
            if let Some(o) = self.open.as_mut() {
                o.too_dark |= dark;
                o.dark_run = if dark { o.dark_run + 1 } else { 0 };
                if o.dark_run >= unlock::DARK_FRAMES {
                    self.close_unlock(UnlockReply::TooDark, None, true);
                }
            }
            self.show(Screen::Looking { face: Some(rect), guidance: Some(guidance(issue).into()) });
            return Ok(());
        }
        self.show(Screen::Looking { face: Some(rect), guidance: None });
        if let Some(o) = self.open.as_mut() {
            o.dark_run = 0;
        }
        if settings.liveness {
            if let Some(net) = &self.liveness {
                match net.score(img, &face) {
                    Ok(s) => {
                        if let Some(ts) = &mut self.track {
                            ts.liveness.push(s);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "liveness failed"),
                }
            }
        }
        let embedding = self.engine.embedder.embed(&observation.aligned)?;
        self.stats.embedded += 1;
        let threshold = self.threshold(&settings)?;
        let mut vote = self.vote(&embedding, threshold);
        let first_vote = vote;
        if self.engine.needs_second_look(vote.score()) {
            let steadier = self.engine.embed_with_mirror(&observation, &embedding)?;
            self.stats.second_looks += 1;
            vote = self.vote(&steadier, threshold);
        }
        let Some(track) = &mut self.track else { return Ok(()) };
        let Some(verdict) = track.consensus.push(vote) else { return Ok(()) };
        // Fail closed: with liveness on, a visit no frame of which could be scored (model
        // missing, inference error) shows no life.
        let liveness = settings.liveness.then(|| liveness::visit_score(&track.liveness).unwrap_or(0.0));
        let track_latency = track.first_seen.elapsed();
        let decision = match (verdict.matched, self.mode()) {
            _ if liveness.is_some_and(|l| l < self.liveness_threshold()) => Decision::SpoofSuspected,
            (Some(_), _) => Decision::Granted,
            (None, Mode::Identify) => Decision::Unknown,
            (None, Mode::Verify { .. }) => Decision::Denied,
        };
        if let Some(t) = self.tracker.current_mut() {
            t.decided = true;
        }
        // The rules bind the door, not an unlock (which serves one computer's own users).
        let refusal = match (decision, verdict.matched, &self.open) {
            (Decision::Granted, Some((person, _)), None) => self.refusal(person),
            _ => None,
        };
        let decision = if refusal.is_some() { Decision::NotAllowedNow } else { decision };
        self.report(frame, decision, verdict, liveness, track_latency, refusal);
        // After the report, so the door never waits on it: a clear grant may keep this face as
        // a proposed template (on one pass's score: a probe that needed a second look is no
        // clear grant).
        if let (Decision::Granted, Vote::Match { person_id, template_id, score }) = (decision, first_vote) {
            if verdict.matched.is_some_and(|(p, _)| p == person_id) {
                let granted = propose::Granted {
                    observation: &observation,
                    embedding: &embedding,
                    person: person_id,
                    matched: template_id,
                    score,
                    threshold,
                };
                let now = self.options.clock.unix_seconds();
                propose::consider(self.engine, &self.core, &self.options.updates, &granted, now);
            }
        }
        Ok(())
    }

    /// Why the access rules keep `person` out now, if they do.
    fn refusal(&self, person: PersonId) -> Option<String> {
        let entry = self.core.lock().store.access_of(person).cloned()?;
        let now = self.options.clock.now();
        match entry.check(now) {
            facegate_proto::Verdict::Allowed => None,
            v => Some(rules::refusal(&entry, v, now)),
        }
    }

    /// The live probability a visit must reach: the configured one, else the one chosen with
    /// the networks on development data.
    fn liveness_threshold(&self) -> f32 {
        self.options.liveness_threshold.or(self.liveness.as_ref().map(|l| l.threshold)).unwrap_or(1.0)
    }

    /// The cosine threshold for the gallery as it is now (a sync changes the number of
    /// templates, so an FPIR's per-comparison threshold); logged whenever it changes.
    fn threshold(&mut self, settings: &Settings) -> Result<f32, KioskError> {
        let templates = self.core.gallery().len();
        let t = settings.effective_threshold(self.core.calibration.as_ref(), templates)?;
        if self.logged_threshold != Some(t) {
            self.logged_threshold = Some(t);
            let (far, fpir) = (t.far.map(|f| format!("{f:.1e}")), t.fpir().map(|f| format!("{f:.1e}")));
            tracing::info!(cosine = t.cosine, templates, far, fpir, setting = ?settings.threshold, "effective threshold");
            if !t.vouched {
                tracing::warn!(
                    templates,
                    setting = ?settings.threshold,
                    can_promise_fpir = fpir,
                    "the target needs a per-comparison rate below what the calibration vouches for; using its floor"
                );
            }
        }
        Ok(t.cosine)
    }

    fn start_track(&mut self, frame: &CapturedFrame) {
        let s = self.core.settings();
        self.track = Some(TrackState {
            consensus: Consensus::new(s.consensus_required, s.consensus_window),
            first_seen: frame.captured,
            liveness: Vec::new(),
        });
    }

    fn vote(&self, probe: &facegate_engine::Embedding, threshold: f32) -> Vote {
        let gallery = self.core.gallery();
        let best = match self.mode() {
            Mode::Identify => gallery.identify(probe),
            Mode::Verify { owner } => gallery.verify(probe, owner),
        };
        match best {
            Some(c) if c.score >= threshold => Vote::Match {
                person_id: c.person_id,
                template_id: gallery.template(c.index).map_or(0, |r| r.template_id),
                score: c.score,
            },
            Some(c) => Vote::NoMatch { best: c.score },
            None => Vote::NoMatch { best: -1.0 },
        }
    }

    /// Reports a decision everywhere it must go; while an unlock request is open, the decision
    /// is its answer (audited as the unlock, and no door action).
    fn report(
        &mut self,
        frame: &CapturedFrame,
        decision: Decision,
        verdict: Verdict,
        liveness: Option<f32>,
        track_latency: Duration,
        refusal: Option<String>,
    ) {
        let gallery = self.core.gallery();
        let identity = verdict.matched.map(|(person_id, template_id)| MatchedIdentity { template_id, person_id });
        let name = verdict
            .matched
            .and_then(|(_, tid)| (0..gallery.len()).filter_map(|i| gallery.template(i)).find(|r| r.template_id == tid))
            .map(|r| r.name.clone());
        let kind = match decision {
            Decision::Granted => AuditKind::AccessGranted,
            Decision::Denied => AuditKind::AccessDenied,
            Decision::Unknown => AuditKind::UnknownFace,
            Decision::LockedOut => AuditKind::LockedOut,
            Decision::SpoofSuspected => AuditKind::SpoofSuspected,
            Decision::NotAllowedNow => AuditKind::NotAllowed,
        };
        let person = identity.map(|i| i.person_id);
        let detail = match (refusal, liveness) {
            // First, like the liveness figure, so a long frame label cannot cut it off.
            (Some(why), _) => format!("{why}; {}", frame.label),
            (None, Some(l)) if decision == Decision::SpoofSuspected => {
                // First, so a long frame label cannot cut it off.
                format!("liveness {l:.4} below {:.4}; {}", self.liveness_threshold(), frame.label)
            }
            _ => frame.label.clone(),
        };
        let unlock = self.open.as_ref().map(|o| {
            let locked_s = self.lockout.remaining(frame.at).map_or(0, secs_left);
            (unlock::reply_for(decision, o.person_id, verdict.score, liveness, locked_s), &o.job.request)
        });
        let (kind, detail) = match &unlock {
            Some((reply, request)) => (AuditKind::Unlock, unlock::audit_detail(request, reply)),
            None => (kind, detail),
        };
        let unlock_reply = unlock.map(|(reply, _)| reply);
        let seq = self.core.audit(kind, person, Some(verdict.score), &detail).unwrap_or(0);
        let latency = frame.captured.elapsed();
        let event = MatchEvent {
            event_seq: seq,
            frame_counter: frame.index,
            identity,
            score: verdict.score,
            decision,
            liveness,
            latency_ms: u32::try_from(latency.as_millis()).unwrap_or(u32::MAX),
        };
        self.core.publish(&event);
        tracing::info!(
            frame = frame.index, label = %frame.label, ?decision, person = ?person, name = ?name,
            score = verdict.score, latency_ms = event.latency_ms, "decision"
        );
        // A door grant goes to the door's outputs; with the panel's authority the screen waits
        // for its answer.
        let door_grant = decision == Decision::Granted && unlock_reply.is_none();
        let mut asking_panel = false;
        if let (true, Some(door), Some(p)) = (door_grant, self.door.as_mut(), person) {
            let card = door.credential(p, self.core.card_for(p));
            door.granted(card.as_ref(), name.clone());
            asking_panel = door.waiting.is_some();
        }
        self.show(match decision {
            Decision::Granted if asking_panel => Screen::AskingPanel { name: name.clone().unwrap_or_default() },
            Decision::Granted => Screen::Granted { name: name.clone().unwrap_or_default(), score: verdict.score },
            Decision::Denied => Screen::Denied { name: name.clone() },
            Decision::Unknown => Screen::Unknown,
            Decision::LockedOut => {
                let left = self.lockout.remaining(frame.at).unwrap_or_default();
                Screen::LockedOut { remaining_secs: secs_left(left) }
            }
            Decision::SpoofSuspected => Screen::SpoofSuspected,
            Decision::NotAllowedNow => Screen::NotAllowedNow { name: name.clone().unwrap_or_default() },
        });
        // An unlock opens a session, not the door; a panel with the authority opens it itself.
        let device_opens = self.door.as_ref().is_none_or(|d| d.authority == Authority::Device);
        if door_grant && device_opens {
            if let Some(action) = &self.options.action {
                let ctx = ActionContext {
                    decision,
                    person_id: person,
                    name: name.clone(),
                    score: verdict.score,
                    event_seq: seq,
                };
                // Not joined: the door opens in the background.
                drop(action.spawn(&ctx));
            }
        }
        if self.lockout.record(decision, frame.at) == LockoutChange::Locked {
            let policy = self.core.settings().lockout();
            let detail = format!("locked for {} s", policy.cooldown.as_secs());
            self.core.audit(AuditKind::LockedOut, None, None, &detail);
            tracing::warn!(cooldown_s = policy.cooldown.as_secs(), "too many failed attempts: locked out");
            self.show(Screen::LockedOut { remaining_secs: policy.cooldown.as_secs() as u32 });
        }
        self.stats.decisions.push(DecisionRecord {
            frame: frame.index,
            label: frame.label.clone(),
            decision,
            person_id: person,
            name,
            score: verdict.score,
            latency,
            track_latency,
        });
        if let Some(reply) = unlock_reply {
            self.close_unlock(reply, Some(verdict.score), false);
        }
    }
}

/// Default options for a door kiosk.
pub fn default_options() -> KioskOptions {
    KioskOptions {
        mode: Mode::Identify,
        gate: QualityGate::VERIFY,
        liveness_threshold: None,
        action: None,
        max_missed: 2,
        title: "Facegate".into(),
        clock: rules::DoorClock::new(None, None).unwrap_or_else(|_| unreachable!("no zone or start to parse")),
        updates: UpdatePolicy::default(),
    }
}
