//! The kiosk loop with the real engine on LFW faces, driven in-process through a synthetic
//! frame source: consensus, no re-embedding of a decided face, lockout, verify mode.

use crate::util::{data_dir, lfw_people};
use facegate_device::audit_log::AuditLog;
use facegate_device::kiosk::{self, Kiosk, KioskStats, Mode};
use facegate_device::state::{Core, Identity, Settings};
use facegate_device::store::TemplateStore;
use facegate_engine::source::SyntheticSource;
use facegate_engine::{Engine, EngineConfig, FacePolicy, QualityGate};
use facegate_proto::{bounded_str, Capabilities, Decision, Embedding, Template, EMBEDDING_DIM};
use image::{Rgb, RgbImage};
use std::sync::Arc;
use std::time::Duration;

struct Rig {
    engine: Engine,
    people: Vec<(String, Vec<std::path::PathBuf>)>,
    _tmp: tempfile::TempDir,
    core: Arc<Core>,
}

fn rig(settings: Settings, enrolled: usize) -> Option<Rig> {
    let data = data_dir("kiosk_loop")?;
    let engine = Engine::load(&EngineConfig::default()).expect("models");
    let people = lfw_people(&data.join("lfw"), 10);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = TemplateStore::open(&tmp.path().join("store"), &engine.embedding_id).expect("store");
    for (i, (name, photos)) in people.iter().take(enrolled).enumerate() {
        let face = engine.process_file(&photos[0], FacePolicy::Single, &QualityGate::ENROL).expect("enrol photo");
        // As `facegate enroll` makes templates: with the mirror image.
        let template = engine.embed_with_mirror(&face.observation, &face.embedding).expect("template");
        let v: [f32; EMBEDDING_DIM] = template.as_slice().try_into().expect("512-d");
        let t = Template {
            id: 100 + i as u32,
            person_id: 1 + i as u32,
            display_name: bounded_str(name),
            model_id: bounded_str(&engine.embedding_id),
            embedding: Embedding::quantize(&v),
        };
        store.upsert(t).expect("upsert");
    }
    let audit = AuditLog::open(&tmp.path().join("audit.log")).expect("audit");
    let identity = Identity {
        device_id: "test".into(),
        model_id: engine.embedding_id.clone(),
        capabilities: Capabilities::NONE,
        identify: true,
    };
    let core = Arc::new(Core::new(identity, engine.calibration.clone(), store, audit, settings).expect("core"));
    Some(Rig { engine, people, _tmp: tmp, core })
}

fn blank() -> RgbImage {
    RgbImage::from_pixel(250, 250, Rgb([128, 128, 128]))
}

fn run(rig: &Rig, mode: Mode, frames: Vec<RgbImage>, period: Duration) -> KioskStats {
    run_with_display(rig, mode, frames, period, None)
}

fn run_with_display(
    rig: &Rig,
    mode: Mode,
    frames: Vec<RgbImage>,
    period: Duration,
    display: Option<facegate_device::display::PngDisplay>,
) -> KioskStats {
    let mut options = kiosk::default_options();
    options.mode = mode;
    let n = frames.len() as u64;
    let source = SyntheticSource::new(n, period, move |i| frames[i as usize].clone());
    Kiosk::new(&rig.engine, rig.core.clone(), options, display).expect("kiosk").run(Box::new(source)).expect("run")
}

fn photo(rig: &Rig, person: usize, index: usize) -> RgbImage {
    image::open(&rig.people[person].1[index]).expect("photo").to_rgb8()
}

fn decisions(s: &KioskStats) -> Vec<(Decision, Option<u32>)> {
    s.decisions.iter().map(|d| (d.decision, d.person_id)).collect()
}

#[test]
fn a_decided_face_is_not_embedded_again() {
    let Some(rig) = rig(Settings { consensus_required: 2, consensus_window: 3, ..Settings::default() }, 3) else {
        return;
    };
    let face = photo(&rig, 1, 1);
    let stats = run(&rig, Mode::Identify, vec![face.clone(); 6], Duration::from_millis(100));
    assert_eq!(decisions(&stats), vec![(Decision::Granted, Some(2))]);
    assert_eq!(stats.embedded, 2, "two votes decide; the other four frames only track");
    assert_eq!(stats.frames, 6);
}

#[test]
fn someone_else_in_the_same_spot_is_a_new_visitor() {
    let Some(rig) = rig(Settings { consensus_required: 1, consensus_window: 1, ..Settings::default() }, 3) else {
        return;
    };
    // No blank frame between them: LFW faces sit at the same place, so only the appearance
    // signature can tell the track changed hands.
    let frames = vec![photo(&rig, 0, 1), photo(&rig, 0, 1), photo(&rig, 2, 1), photo(&rig, 2, 1)];
    let stats = run(&rig, Mode::Identify, frames, Duration::from_millis(100));
    assert_eq!(decisions(&stats), vec![(Decision::Granted, Some(1)), (Decision::Granted, Some(3))]);
}

#[test]
fn repeated_failures_lock_the_door_for_the_cooldown() {
    let settings = Settings {
        consensus_required: 1,
        consensus_window: 1,
        lockout_max_failures: 2,
        lockout_window_secs: 60,
        lockout_cooldown_secs: 30,
        ..Settings::default()
    };
    let Some(rig) = rig(settings, 2) else { return };
    let visit = |img: RgbImage| vec![img, blank(), blank(), blank()];
    let mut frames = Vec::new();
    frames.extend(visit(photo(&rig, 5, 0))); // stranger
    frames.extend(visit(photo(&rig, 6, 0))); // stranger -> lockout starts
    frames.extend(visit(photo(&rig, 0, 1))); // enrolled, but locked out
                                             // 1 s per frame: 12 s in, still inside the 30 s cooldown; then wait it out with blanks.
    frames.extend((0..30).map(|_| blank()));
    frames.extend(visit(photo(&rig, 0, 1))); // after the cooldown
    let stats = run(&rig, Mode::Identify, frames, Duration::from_secs(1));
    assert_eq!(
        decisions(&stats),
        vec![
            (Decision::Unknown, None),
            (Decision::Unknown, None),
            (Decision::LockedOut, None),
            (Decision::Granted, Some(1)),
        ]
    );
    assert_eq!(stats.embedded, 3, "nothing is embedded while locked out");
}

#[test]
fn verify_mode_grants_the_owner_only() {
    let Some(rig) = rig(Settings { consensus_required: 1, consensus_window: 1, ..Settings::default() }, 3) else {
        return;
    };
    let visit = |img: RgbImage| vec![img, blank(), blank(), blank()];
    let mut frames = visit(photo(&rig, 1, 1));
    frames.extend(visit(photo(&rig, 0, 1))); // enrolled, but not the owner
    let stats = run(&rig, Mode::Verify { owner: 2 }, frames, Duration::from_millis(100));
    assert_eq!(decisions(&stats), vec![(Decision::Granted, Some(2)), (Decision::Denied, None)]);
}

#[test]
fn the_screen_follows_pairing_and_sync_while_nobody_is_there() {
    let Some(rig) = rig(Settings::default(), 1) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let display = facegate_device::display::PngDisplay::new(dir.path()).expect("display");
    rig.core.open_pairing(Duration::from_secs(60));
    rig.core.set_sync_progress(Some((5, 10)));
    run_with_display(&rig, Mode::Identify, vec![blank(); 2], Duration::from_millis(100), Some(display));
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).expect("dir").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert!(names.iter().any(|n| n.contains("syncing")), "{names:?}");
    rig.core.set_sync_progress(None);
    let display = facegate_device::display::PngDisplay::new(dir.path()).expect("display");
    run_with_display(&rig, Mode::Identify, vec![blank(); 2], Duration::from_millis(100), Some(display));
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).expect("dir").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert!(names.iter().any(|n| n.contains("pairing")), "{names:?}");
}

#[test]
fn the_appearance_signature_separates_people_but_not_frames_of_one_face() {
    use facegate_device::kiosk::track::{Signature, SAME_FACE_MIN_CORRELATION};
    let Some(rig) = rig(Settings::default(), 0) else { return };
    let mut same = Vec::new();
    let mut sigs = Vec::new();
    for (_, photos) in rig.people.iter().step_by(4).take(60) {
        let img = image::open(&photos[0]).expect("photo").to_rgb8();
        let Ok(face) = rig.engine.process(&img, FacePolicy::Subject, &QualityGate::NONE) else {
            continue;
        };
        let base = Signature::of(&face.observation.aligned);
        // The same face a frame later: moved a few pixels, exposure changed.
        for f in facegate_engine::source::visit_frames(&img).iter().skip(1) {
            if let Ok(o) = rig.engine.process(f, FacePolicy::Subject, &QualityGate::NONE) {
                same.push(base.correlation(&Signature::of(&o.observation.aligned)));
            }
        }
        sigs.push(base);
    }
    let mut different = Vec::new();
    for i in 0..sigs.len() {
        for j in i + 1..sigs.len() {
            different.push(sigs[i].correlation(&sigs[j]));
        }
    }
    let min_same = same.iter().copied().fold(f32::MAX, f32::min);
    let confusable = different.iter().filter(|&&c| c >= SAME_FACE_MIN_CORRELATION).count();
    eprintln!(
        "signature correlation: same face moved/brighter min {min_same:.3} over {} frames; different people \
         {confusable} of {} pairs at or above {SAME_FACE_MIN_CORRELATION}",
        same.len(),
        different.len()
    );
    assert!(min_same >= SAME_FACE_MIN_CORRELATION, "a moved face would start a new visit");
    // Two people alike enough to pass for one are left to the box test and the empty frames
    // between visitors; they must be rare.
    assert!(confusable * 50 <= different.len(), "{confusable} of {}", different.len());
}

#[test]
fn the_door_serves_an_unlock_request_for_the_login_in_front_of_it() {
    use facegate_device::kiosk::unlock::UnlockJob;
    use facegate_proto::{LoginEntry, UnlockReply, UnlockRequest};
    use std::sync::mpsc;
    let Some(rig) = rig(Settings { consensus_required: 1, consensus_window: 1, ..Settings::default() }, 3) else {
        return;
    };
    // Person 2 unlocks login "bob"; "carol" is nobody's.
    rig.core.lock().store.set_logins(vec![LoginEntry { person_id: 2, login: bounded_str("bob") }]).expect("logins");
    let (tx, rx) = mpsc::sync_channel(4);
    let ask = |login: &str| {
        let (reply, answer) = mpsc::sync_channel(1);
        let request = UnlockRequest { login: bounded_str(login), timeout_ms: 20_000, service: bounded_str("test") };
        tx.send(UnlockJob { request, reply, received: std::time::Instant::now() }).expect("queue");
        answer
    };
    let (carol, bob, again) = (ask("carol"), ask("bob"), ask("bob"));
    // A stranger first (the door would say unknown; for bob's unlock it is not bob), then bob.
    let mut frames = vec![photo(&rig, 5, 0), blank(), blank(), blank()];
    frames.extend([photo(&rig, 1, 1), photo(&rig, 1, 1)]);
    let n = frames.len() as u64;
    let source = SyntheticSource::new(n, Duration::from_millis(100), move |i| frames[i as usize].clone());
    Kiosk::new(&rig.engine, rig.core.clone(), kiosk::default_options(), None)
        .expect("kiosk")
        .with_unlock(rx)
        .run(Box::new(source))
        .expect("run");
    assert_eq!(carol.try_recv(), Ok(UnlockReply::NotEnrolled));
    assert!(matches!(bob.try_recv(), Ok(UnlockReply::NotRecognised { .. })), "the stranger answered bob's request");
    assert_eq!(again.try_recv(), Ok(UnlockReply::Busy));
    // Asked again with bob at the door: granted, as the door's one decision.
    let (tx, rx) = mpsc::sync_channel(1);
    let (reply, answer) = mpsc::sync_channel(1);
    let request = UnlockRequest { login: bounded_str("bob"), timeout_ms: 20_000, service: bounded_str("test") };
    tx.send(UnlockJob { request, reply, received: std::time::Instant::now() }).expect("queue");
    let frames = [photo(&rig, 1, 1), photo(&rig, 1, 1)];
    let source = SyntheticSource::new(2, Duration::from_millis(100), move |i| frames[i as usize].clone());
    let stats = Kiosk::new(&rig.engine, rig.core.clone(), kiosk::default_options(), None)
        .expect("kiosk")
        .with_unlock(rx)
        .run(Box::new(source))
        .expect("run");
    assert!(matches!(answer.try_recv(), Ok(UnlockReply::Granted { person_id: 2, .. })));
    assert_eq!(decisions(&stats), vec![(Decision::Granted, Some(2))]);
}

/// The screens a display directory holds, in order.
fn screens(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).expect("dir").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    names.sort();
    names.into_iter().filter(|n| n.ends_with("-colour.png")).collect()
}

#[test]
fn with_the_panels_authority_the_door_waits_for_its_answer_and_opens_nothing_itself() {
    use facegate_device::door::{Authority, Door, DoorConfig, LedColour, PanelCommand};
    use facegate_proto::{CardEntry, CardFormat};
    let Some(rig) = rig(Settings { consensus_required: 1, consensus_window: 1, ..Settings::default() }, 2) else {
        return;
    };
    let card = CardFormat::H10301.encode(12, 3456).expect("card");
    rig.core.lock().store.set_cards(vec![CardEntry { person_id: 1, card: card.clone() }]).expect("cards");
    let config = DoorConfig { authority: Some(Authority::Panel), panel_timeout_ms: Some(400), ..DoorConfig::default() };
    let tmp = tempfile::tempdir().expect("tempdir");
    let opened = tmp.path().join("opened");
    let run_door = |answer: bool, frames: Vec<RgbImage>, dir: &std::path::Path| {
        let (cards_tx, cards_rx) = std::sync::mpsc::channel();
        let (events_tx, events_rx) = std::sync::mpsc::sync_channel(8);
        // The panel: answers a card read with a green LED, or says nothing.
        let panel = std::thread::spawn(move || {
            let got = cards_rx.recv_timeout(Duration::from_secs(10)).ok();
            if answer {
                let led = PanelCommand::Led { colour: LedColour::Green, temporary: true, ms: 2000 };
                events_tx.send(led).expect("kiosk listening");
            }
            got
        });
        let door = Door::new(&config).expect("door").with_panel(cards_tx, events_rx);
        let mut options = kiosk::default_options();
        options.action = Some(facegate_device::kiosk::action::Action {
            command: format!("touch {}", opened.display()),
            timeout: Duration::from_secs(5),
        });
        let n = frames.len() as u64;
        // Paced like a camera, so the panel's time runs while frames come.
        let source = SyntheticSource::new(n, Duration::from_millis(100), move |i| {
            std::thread::sleep(Duration::from_millis(100));
            frames[i as usize].clone()
        });
        let display = facegate_device::display::PngDisplay::new(dir).expect("display");
        let stats = Kiosk::new(&rig.engine, rig.core.clone(), options, Some(display))
            .expect("kiosk")
            .with_door(door)
            .run(Box::new(source))
            .expect("run");
        (stats, panel.join().expect("panel thread"))
    };
    let mut frames = vec![photo(&rig, 0, 1)];
    frames.extend(vec![blank(); 10]);

    let answered = tmp.path().join("answered");
    let (stats, sent) = run_door(true, frames.clone(), &answered);
    assert_eq!(decisions(&stats), [(Decision::Granted, Some(1))]);
    assert_eq!(sent, Some(card.clone()), "the panel gets the person's card");
    let shown = screens(&answered);
    let asking = shown.iter().position(|n| n.contains("asking-panel")).expect("asking the panel");
    let open = shown.iter().position(|n| n.contains("door-open")).expect("the panel's answer");
    assert!(asking < open, "{shown:?}");
    // The panel's answer stays up while nobody is in front of the camera.
    assert!(!shown[open..].iter().any(|n| n.contains("idle")), "{shown:?}");

    let unanswered = tmp.path().join("unanswered");
    run_door(false, frames, &unanswered);
    let shown = screens(&unanswered);
    assert!(shown.iter().any(|n| n.contains("error")), "an unanswered grant says so: {shown:?}");
    let audit = rig.core.lock().audit.read(0, usize::MAX).expect("audit");
    assert!(audit.iter().any(|r| r.detail.contains("no answer to the grant")), "{audit:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!opened.exists(), "with the panel's authority the device runs no door action");
}
