//! Regression tests for what an independent attack on a running device and on the enrolment
//! tool found: each test reproduces the attack and checks it now fails safely.

use crate::util::raw::{error_code, RawSession};
use crate::util::{
    add_people, data_dir, facegate, file_names, lfw_people, path_str, proc_status_mb, run_ok, start_device, template,
    DeviceProcess, Paired,
};
use facegate_host::link::{Client, Patience};
use facegate_host::registry::Registry;
use facegate_host::sync::sync_device;
use facegate_proto::{Embedding, ErrorCode, Request};
use rand::SeedableRng;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `facegate enroll Ann other.jpg` on an existing Ann used to add the other person's face with a
/// warning, after which the door granted them as Ann.
#[test]
fn enrolling_a_stranger_under_an_existing_name_is_refused_unless_forced() {
    let Some(data) = data_dir("enrolling_a_stranger_under_an_existing_name_is_refused_unless_forced") else { return };
    let people = lfw_people(&data.join("lfw"), 4);
    let (ann, other) = (&people[0].1, &people[1].1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let registry = tmp.path().join("registry.sqlite3");
    let templates = || {
        let reg = Registry::open(&registry).expect("registry");
        reg.person("Ann").expect("db").map_or(0, |p| p.templates)
    };

    run_ok(facegate(&registry).args(["enroll", "Ann"]).arg(&ann[0]));
    let out = run_ok(facegate(&registry).args(["enroll", "Ann"]).arg(&ann[1]));
    assert!(out.contains("1 template(s) added, 2 in all"), "the summary counts the person's templates: {out}");

    let refused = facegate(&registry).args(["enroll", "Ann"]).arg(&other[0]).output().expect("run facegate");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!("stranger under Ann's name: {}", stderr.trim());
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("below the same-person threshold") && stderr.contains("--force"), "{stderr}");
    assert_eq!(templates(), 2, "nothing was added");
    assert!(Registry::open(&registry).expect("registry").history(None).expect("history").is_empty());

    let forced =
        run_ok(facegate(&registry).env("USER", "alice-admin").args(["enroll", "Ann", "--force"]).arg(&other[0]));
    assert!(forced.contains("1 template(s) added, 3 in all"), "{forced}");
    let reg = Registry::open(&registry).expect("registry");
    let history = reg.history(reg.person("Ann").expect("db").map(|p| p.id)).expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!((history[0].actor.as_str(), history[0].action.as_str()), ("alice-admin", "enroll --force"));
    let photo = other[0].file_name().expect("file name").to_string_lossy();
    assert!(history[0].detail.contains(photo.as_ref()) && history[0].detail.contains("threshold"), "{history:?}");
}

/// One signed template with a scale of 3.4e38 (or 1e-30) used to be stored (the reply said
/// Internal error) and then stopped the device from restarting. Now admission applies the check
/// loading applies: refused, nothing stored, and the device restarts.
#[test]
fn a_template_the_device_cannot_load_is_refused_and_the_device_restarts() {
    let Paired { tmp, store, registry, mut device, addr_s, model, .. } = Paired::new();
    let key = Registry::open(&registry).expect("registry").device(&addr_s).expect("db").expect("paired").key;
    let mut raw = RawSession::connect(&addr_s, Some(key));
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let good = template(1, &model, &mut rng);
    assert!(error_code(&raw.call(Request::UpsertTemplate(good))).is_none());
    for (i, scale) in [3.4e38f32, 1e-30].into_iter().enumerate() {
        let mut bad = template(10 + i as u32, &model, &mut rng);
        bad.embedding = Embedding::from_parts(scale, *bad.embedding.values());
        let reply = raw.call(Request::UpsertTemplate(bad.clone()));
        assert_eq!(error_code(&reply), Some(ErrorCode::InvalidTemplate), "scale {scale}: {reply:?}");
        // The same through a sync.
        let generation = raw.info.store_generation;
        let begin = raw.call(Request::SyncBegin { expected_generation: generation + 1, total_templates: 1 });
        assert!(error_code(&begin).is_none(), "{begin:?}");
        let chunk = facegate_proto::heapless::Vec::from_slice(&[bad]).expect("chunk");
        let reply = raw.call(Request::SyncChunk { seq: 0, templates: chunk });
        assert_eq!(error_code(&reply), Some(ErrorCode::InvalidTemplate), "sync, scale {scale}: {reply:?}");
        raw.call(Request::SyncAbort);
    }
    assert_eq!(raw.ids().into_iter().collect::<Vec<_>>(), [1], "nothing but the good template was stored");
    drop(raw);

    assert!(device.terminate().success());
    let listen = addr_s.trim_start_matches("tcp:").to_string();
    let _device = start_device(&store, &listen, &tmp.path().join("device2.log"));
    let mut raw = RawSession::connect(&addr_s, Some(key));
    assert_eq!(raw.ids().into_iter().collect::<Vec<_>>(), [1], "the device restarted with its set");
}

/// A session authenticated with the old key kept working after another host paired in a new
/// window (it listed templates, started a sync, changed config), and the old host then saw only
/// "bad MAC". Now the pairing closes it at once, the old key is answered with its own error
/// code, `facegate` says what to do, and the audit log and the display record the re-pairing.
#[test]
fn a_new_pairing_revokes_the_old_hosts_sessions_and_says_so() {
    let Paired { tmp, store, registry, mut device, addr_s, .. } = Paired::new();
    let key = Registry::open(&registry).expect("registry").device(&addr_s).expect("db").expect("paired").key;
    assert!(device.terminate().success());
    // The device restarts with its pairing window open (e.g. an installer re-pairing it).
    let (screens, frames) = (tmp.path().join("screens"), tmp.path().join("frames"));
    std::fs::create_dir(&frames).expect("frames dir");
    facegate_engine::source::empty_frame(320, 240).save(frames.join("empty.png")).expect("frame");
    let listen = addr_s.trim_start_matches("tcp:").to_string();
    #[rustfmt::skip]
    let args = ["--store", path_str(&store), "--listen", &listen, "--allow-pairing", "60",
                "--frames", path_str(&frames), "--loop", "--fps", "10", "--display-png", path_str(&screens)];
    let _device = DeviceProcess::start(&args, &tmp.path().join("device2.log"));
    let mut old = RawSession::connect(&addr_s, Some(key));
    assert_eq!(old.ids().len(), 0, "the old host is served before the re-pairing");

    let other = tmp.path().join("other.sqlite3");
    run_ok(facegate(&other).args(["pair", "--device", &addr_s]));
    assert!(old.closed_within(Duration::from_secs(2)), "the old host's open session is closed at once");

    let mut again = RawSession::connect(&addr_s, Some(key));
    let reply = again.call(Request::ListTemplates { cursor: 0, limit: 8 });
    assert_eq!(error_code(&reply), Some(ErrorCode::PairedElsewhere), "{reply:?}");
    let out = facegate(&registry).args(["sync"]).output().expect("run facegate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("old host after a re-pairing: {}", stderr.trim());
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("paired to another host") && stderr.contains("facegate pair"), "{stderr}");

    let audit = run_ok(facegate(&other).args(["audit", "--device", &addr_s, "--json"]));
    assert!(audit.contains("replacing the previous host's key"), "{audit}");
    // The kiosk loop shows it on its next frame; a loaded machine may take a while to get there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut shown = file_names(&screens);
    while !shown.iter().any(|s| s.contains("new-host")) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        shown = file_names(&screens);
    }
    assert!(shown.iter().any(|s| s.contains("new-host")), "{shown:?}");
}

/// Eight idle TCP connections used to lock the paired host out, indefinitely ("Connection
/// reset by peer"). Now a connection that does not authenticate makes room for one that might,
/// silent connections are closed, and only when authenticated hosts hold every session is a
/// newcomer refused, with a reason.
#[test]
fn idle_connections_cannot_lock_the_paired_host_out() {
    let p = Paired::new();
    let mut registry = Registry::open(&p.registry).expect("registry");
    add_people(&mut registry, &p.model, 0, 20);
    let addr = p.addr_s.trim_start_matches("tcp:").to_string();
    let idle: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(&addr).expect("connect")).collect();
    let t = Instant::now();
    let outcome = sync_device(&mut registry, &p.addr, false).expect("the paired host syncs past 200 idle connections");
    let took = t.elapsed();
    println!("sync of 20 templates with 200 idle connections held: {:.2} s", took.as_secs_f64());
    assert_eq!(outcome.templates, 20);
    assert!(took < Duration::from_secs(15), "{took:?}");
    drop(idle);

    // A connection that never says Hello is closed.
    let mut silent = TcpStream::connect(&addr).expect("connect");
    silent.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let t = Instant::now();
    let closed = matches!(silent.read(&mut [0u8; 64]), Ok(0) | Err(_));
    println!("a silent connection closed after {:.1} s", t.elapsed().as_secs_f64());
    assert!(closed && t.elapsed() < Duration::from_secs(9), "{:?}", t.elapsed());

    // Authenticated hosts on every session: a newcomer is told why it is refused.
    let key = registry.device(&p.addr_s).expect("db").expect("paired").key;
    let held: Vec<RawSession> = (0..8)
        .map(|_| {
            let mut r = RawSession::connect(&p.addr_s, Some(key));
            assert_eq!(r.ids().len(), 20);
            r
        })
        .collect();
    let e = Client::connect(&p.addr, Patience::default()).expect_err("a ninth host is refused");
    println!("ninth host: {e}");
    assert!(e.to_string().contains("device busy: too many sessions"), "{e}");
    drop(held);
}

/// 134,050 refused `Pair` requests in 30 s used to write one audit record each (6.4 MB). Now a
/// connection is closed after its third refused try, and the audit log gets one record for the
/// first refusal of a burst and one summing up each minute.
#[test]
fn a_pairing_flood_does_not_grow_the_audit_log() {
    let p = Paired::new();
    let key = Registry::open(&p.registry).expect("registry").device(&p.addr_s).expect("db").expect("paired").key;
    let records = || RawSession::connect(&p.addr_s, Some(key)).audit_len();
    let before = records();
    let (mut attempts, mut connections) = (0, 0);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        let mut raw = RawSession::connect(&p.addr_s, None);
        connections += 1;
        for _ in 0..3 {
            let reply = raw.call(Request::Pair { key: [7; 32] });
            assert_eq!(error_code(&reply), Some(ErrorCode::PairingClosed), "{reply:?}");
            attempts += 1;
        }
        assert!(raw.closed_within(Duration::from_secs(2)), "a third refused try closes the connection");
    }
    let after = records();
    println!(
        "pairing flood: {attempts} refused attempts on {connections} connections in 3 s; audit log +{}",
        after - before
    );
    assert!(attempts >= 9, "at least three connections' worth: {attempts}");
    // One record for the whole burst (the minute's sum comes after the test).
    assert_eq!(after - before, 1, "the burst is coalesced");
}

/// A frame folder where nothing decodes used to spin the capture thread at a full core and
/// write 400 MB of warnings in 5 s. Now it backs off, logs a count per interval, and the
/// display says what is wrong.
#[test]
fn unreadable_frames_do_not_spin_or_flood_the_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (frames, screens, store) = (tmp.path().join("frames"), tmp.path().join("screens"), tmp.path().join("store"));
    std::fs::create_dir(&frames).expect("frames dir");
    for i in 0..20 {
        std::fs::write(frames.join(format!("{i:02}.jpg")), b"\xff\xd8\xff damaged").expect("frame");
    }
    let log = tmp.path().join("device.log");
    #[rustfmt::skip]
    let args = ["--store", path_str(&store), "--listen", "127.0.0.1:0",
                "--frames", path_str(&frames), "--loop", "--display-png", path_str(&screens)];
    let device = DeviceProcess::start(&args, &log);
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", device.child.id())).expect("proc stat");
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        ticks as f64 / 100.0
    };
    let (cpu0, t) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(7));
    let used = cpu() - cpu0;
    let wall = t.elapsed().as_secs_f64();
    let log_bytes = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    println!("unreadable frames for {wall:.0} s: device CPU {used:.2} s, log {log_bytes} bytes");
    assert!(used < 0.25 * wall, "the capture loop spins: {used:.2} s of CPU in {wall:.1} s");
    assert!(log_bytes < 20_000, "the log grows: {log_bytes} bytes");
    let shown = file_names(&screens);
    assert!(shown.iter().any(|s| s.contains("error")), "no error screen: {shown:?}");
}

/// An 8192x8192 PNG frame used to take the device to 243 MB (45 MB otherwise). Now a frame over
/// `max_frame_pixels` (default 3840x2160) is refused from its header, with the reason.
#[test]
fn an_oversized_frame_is_refused_unread() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (frames, store) = (tmp.path().join("frames"), tmp.path().join("store"));
    std::fs::create_dir(&frames).expect("frames dir");
    image::RgbImage::from_pixel(8192, 8192, image::Rgb([90, 90, 90])).save(frames.join("big.png")).expect("big frame");
    let log = tmp.path().join("device.log");
    #[rustfmt::skip]
    let args = ["--store", path_str(&store), "--listen", "127.0.0.1:0", "--frames", path_str(&frames), "--loop"];
    let device = DeviceProcess::start(&args, &log);
    std::thread::sleep(Duration::from_secs(3));
    let peak_mb = proc_status_mb(device.child.id(), "VmHWM").expect("device peak RSS");
    let text = device.log();
    println!("8192x8192 frame: device peak RSS {peak_mb:.0} MB");
    assert!(text.contains("frame too large: 8192x8192 is 67.1 megapixels, more than the 8.3 allowed"), "{text}");
    assert!(peak_mb < 120.0, "peak RSS {peak_mb:.0} MB");
}
