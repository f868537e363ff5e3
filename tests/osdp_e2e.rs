//! The door kiosk as an OSDP reader for an independent access-control panel: PyPI's `libosdp`
//! (`osdp.ControlPanel`, tests/osdp/panel.py) on the other end of a `socat` pty pair, over the
//! secure channel. A granted person's card reaches the panel; strangers and people without a
//! card send nothing; the panel's LED shows on the display; noise and a restart are survived.

use crate::util::{data_dir, facegate, lfw_people, missing, path_str, repo_root, run_ok, DeviceProcess, PtyPair};
use facegate_engine::{Engine, EngineConfig, FacePolicy, QualityGate};
use facegate_host::commands::demo::FrameWriter;
use facegate_proto::CardFormat;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "8f3a0c1d2e4b5a69788796a5b4c3d2e1";
const ADDRESS: &str = "101";

/// A Python with PyPI's `libosdp`: `$FACEGATE_OSDP_PYTHON` (CI makes a venv), else `python3`.
fn osdp_python() -> Option<PathBuf> {
    let python = std::env::var_os("FACEGATE_OSDP_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let ok = Command::new(&python).args(["-c", "import osdp"]).output().is_ok_and(|o| o.status.success());
    if ok {
        Some(python)
    } else {
        missing(format!(
            "osdp_e2e: {} has no `osdp` module (pip install libosdp, or set FACEGATE_OSDP_PYTHON)",
            python.display()
        ))
    }
}

/// The panel process, asked one JSON line at a time.
struct Panel {
    child: Child,
    stdin: ChildStdin,
    stdout: std::io::Lines<BufReader<ChildStdout>>,
}

impl Panel {
    /// `key`: the secure channel key, or `install:KEY` to give a new reader `KEY`.
    fn start(python: &Path, tty: &Path, key: &str, log: &Path) -> Panel {
        let mut child = Command::new(python)
            .arg(repo_root().join("tests/osdp/panel.py"))
            .args([path_str(tty), ADDRESS, key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("panel log"))
            .spawn()
            .expect("start the panel");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = stdout.next().and_then(Result::ok).unwrap_or_default();
        assert!(
            first.contains("ready"),
            "panel did not start: {first} {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        Panel { child, stdin, stdout }
    }

    fn ask(&mut self, request: Value) -> Value {
        writeln!(self.stdin, "{request}").expect("write to the panel");
        let line = self.stdout.next().and_then(Result::ok).expect("the panel answers");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("panel said {line:?}: {e}"))
    }

    fn ok(&mut self, request: Value) -> bool {
        self.ask(request)["ok"].as_bool() == Some(true)
    }
}

impl Drop for Panel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the device log has `n` lines containing `needle`.
fn wait_log(device: &DeviceProcess, needle: &str, n: usize, timeout: Duration) -> String {
    let t = Instant::now();
    loop {
        let log = device.log();
        if log.matches(needle).count() >= n {
            return log;
        }
        assert!(t.elapsed() < timeout, "no {n}x {needle:?} in the device log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `unix_ms` of the last "grant reported as a card read" line.
fn last_grant_ms(log: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("grant reported as a card read"))?;
    line.split("unix_ms=").nth(1)?.split_whitespace().next()?.parse().ok()
}

/// A visitor: their photo for a few frames, then an empty scene.
fn visit(writer: &mut FrameWriter, photo: &Path) {
    let img = image::open(photo).expect("photo").to_rgb8();
    let blank = image::RgbImage::from_pixel(250, 250, image::Rgb([128, 128, 128]));
    for f in [&img, &img, &blank, &blank, &blank] {
        writer.put(f).expect("frame");
    }
}

/// The RS-485 line (a pty pair: the reader's end, the panel's) and the panel's Python, or why
/// the test cannot run here.
fn tools(dir: &Path, test: &str) -> Option<(PtyPair, PathBuf)> {
    let line = PtyPair::new(dir, "ttyREADER", "ttyPANEL", test)?;
    Some((line, osdp_python()?))
}

#[test]
fn an_independent_panel_receives_the_card_of_the_person_the_door_grants() {
    let Some(data) = data_dir("osdp_e2e") else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some((line, python)) = tools(tmp.path(), "osdp_e2e") else { return };
    let (dev_end, panel_end) = (line.a.clone(), line.b.clone());
    let (store, frames, screens, registry) = (
        tmp.path().join("store"),
        tmp.path().join("frames"),
        tmp.path().join("screens"),
        tmp.path().join("registry.sqlite3"),
    );
    std::fs::create_dir(&frames).expect("frames");
    let args = [
        "--store",
        path_str(&store),
        "--listen",
        "127.0.0.1:0",
        "--allow-pairing",
        "60",
        "--frames",
        path_str(&frames),
        "--follow",
        "--consensus",
        "1/1",
        "--liveness",
        "off",
        "--display-png",
        path_str(&screens),
        "--osdp",
        path_str(&dev_end),
        "--osdp-address",
        ADDRESS,
        "--osdp-scbk",
        KEY,
    ];
    let device_log = tmp.path().join("device.log");
    let mut device = DeviceProcess::start(&args, &device_log);
    let addr = device.addr.clone().expect("device address");
    run_ok(facegate(&registry).args(["pair", "--device", &addr]));

    // Alice carries card 12:3456; Bob is enrolled without a card; the stranger is not enrolled.
    let engine = Engine::load(&EngineConfig::default()).expect("engine");
    let usable = |photos: &[PathBuf]| -> PathBuf {
        photos
            .iter()
            .find(|p| engine.process_file(p, FacePolicy::Subject, &QualityGate::VERIFY).is_ok())
            .expect("a usable photo")
            .clone()
    };
    let people = lfw_people(&data.join("lfw"), 10);
    let (alice, bob, stranger) = (&people[10], &people[11], &people[12]);
    run_ok(facegate(&registry).args(["enroll", &alice.0, "--card", "12:3456"]).arg(&alice.1[0]));
    run_ok(facegate(&registry).args(["enroll", &bob.0]).arg(&bob.1[0]));
    let out = run_ok(facegate(&registry).args(["sync", "--json"]));
    assert!(out.contains("\"cards\":1"), "{out}");

    let mut panel = Panel::start(&python, &panel_end, KEY, &tmp.path().join("panel.log"));
    assert!(panel.ok(json!({"op": "wait_online", "timeout": 20})), "the panel never saw the reader");
    assert!(panel.ok(json!({"op": "wait_sc", "timeout": 20})), "no secure channel");
    assert_eq!(panel.ask(json!({"op": "status"})), json!({"online": true, "sc": true}));

    let mut writer = FrameWriter { dir: frames.clone(), next: 0 };
    let want = CardFormat::H10301.encode(12, 3456).expect("card");
    let want_hex = hex::encode(&want.data);

    // 1. Alice is granted: the panel reads her card, bit for bit.
    visit(&mut writer, &usable(&alice.1[1..]));
    let card = panel.ask(json!({"op": "card", "timeout": 30}));
    assert_eq!(card["ok"], json!(true), "no card read; device log:\n{}", device.log());
    assert_eq!((card["bits"].as_u64(), card["data"].as_str()), (Some(26), Some(want_hex.as_str())));
    let log = wait_log(&device, "grant reported as a card read", 1, Duration::from_secs(5));
    let granted_ms = last_grant_ms(&log).expect("the grant's time in the device log");
    let card_ms = card["unix_ms"].as_u64().expect("panel time");
    eprintln!("decision -> panel card read: {} ms", card_ms as i64 - granted_ms as i64);

    // 2. A stranger and Bob (no card, and the device reports nobody without one): no card read.
    visit(&mut writer, &usable(&stranger.1));
    wait_log(&device, "decision=Unknown", 1, Duration::from_secs(30));
    visit(&mut writer, &usable(&bob.1[1..]));
    wait_log(&device, &format!("name=Some(\"{}\")", bob.0), 1, Duration::from_secs(30));
    assert!(panel.ok(json!({"op": "no_card", "secs": 2})), "a card read for a stranger or an uncarded person");

    // 3. The panel's green LED shows "door open" on the display.
    assert!(panel.ok(json!({"op": "led", "colour": "green", "ms": 3000})));
    let t = Instant::now();
    let door_open = loop {
        let found = std::fs::read_dir(&screens)
            .expect("screens")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with("-door-open-colour.png"));
        if let Some(p) = found {
            break p;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no door-open screen; device log:\n{}", device.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let img = image::open(&door_open).expect("screen png").to_rgb8();
    let green = img.pixels().filter(|p| p[1] > 100 && p[0] < 60 && p[2] < 100).count() as f64;
    assert!(green / f64::from(img.width() * img.height()) > 0.5, "the door-open screen is not green");
    // The panel's commands and link are in the device's audit log.
    let audit = run_ok(facegate(&registry).args(["audit", "--device", &addr, "--json"]));
    for detail in ["led green 3.0 s", "panel online, secure channel", "1 card(s) mapped"] {
        assert!(audit.contains(detail), "no audit record {detail:?}:\n{audit}");
    }

    // 4. 1 MB of noise on the line: the device keeps running and serves the panel again as soon
    // as the panel retries (libosdp's own panel waits 300 s before retrying an offline reader;
    // `retry` is what a quicker panel does by itself).
    let noise = panel.ask(json!({"op": "garbage", "bytes": 1_000_000}));
    assert_eq!(noise["written"], json!(1_000_000));
    std::thread::sleep(Duration::from_secs(1));
    assert!(device.child.try_wait().expect("status").is_none(), "the device died of noise:\n{}", device.log());
    let t = Instant::now();
    assert!(panel.ok(json!({"op": "retry"})));
    assert!(panel.ok(json!({"op": "wait_online", "timeout": 20})), "the link did not recover");
    assert!(panel.ok(json!({"op": "wait_sc", "timeout": 20})), "the secure channel did not recover");
    eprintln!("after 1 MB of noise: back online with SC {} ms after the panel's retry", t.elapsed().as_millis());
    visit(&mut writer, &usable(&alice.1[2..]));
    let card = panel.ask(json!({"op": "card", "timeout": 30}));
    assert_eq!(card["data"].as_str(), Some(want_hex.as_str()), "no card after the noise: {card}");

    // 5. Restart: the panel sees the reader go offline, and back once it runs again.
    device.kill();
    assert!(panel.ok(json!({"op": "wait_offline", "timeout": 20})), "the panel did not notice the reader was gone");
    let mut device = DeviceProcess::start(&args, &device_log);
    assert!(panel.ok(json!({"op": "retry"})));
    assert!(panel.ok(json!({"op": "wait_online", "timeout": 20})), "the reader did not come back:\n{}", device.log());
    assert!(panel.ok(json!({"op": "wait_sc", "timeout": 20})), "no secure channel after the restart");
    device.terminate();
}

#[test]
fn a_new_reader_takes_the_key_its_panel_gives_it_and_keeps_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some((line, python)) = tools(tmp.path(), "osdp_e2e") else { return };
    let (dev_end, panel_end) = (line.a.clone(), line.b.clone());
    let store = tmp.path().join("store");
    // No key: the reader starts in install mode.
    let args = [
        "--store",
        path_str(&store),
        "--listen",
        "127.0.0.1:0",
        "--osdp",
        path_str(&dev_end),
        "--osdp-address",
        ADDRESS,
    ];
    let device_log = tmp.path().join("device.log");
    let mut device = DeviceProcess::start(&args, &device_log);
    let mut panel = Panel::start(&python, &panel_end, &format!("install:{KEY}"), &tmp.path().join("panel.log"));
    assert!(panel.ok(json!({"op": "wait_sc", "timeout": 20})), "no secure channel in install mode:\n{}", device.log());
    let log = wait_log(&device, "the panel set a new secure channel key", 1, Duration::from_secs(5));
    assert!(log.contains("install mode"), "{log}");
    // The key is in the sealed store: after a restart the reader uses it, not the default key.
    device.kill();
    assert!(panel.ok(json!({"op": "wait_offline", "timeout": 20})));
    let device = DeviceProcess::start(&args, &device_log);
    assert!(panel.ok(json!({"op": "retry"})));
    assert!(panel.ok(json!({"op": "wait_sc", "timeout": 20})), "the panel's key was not kept:\n{}", device.log());
    let restarted = device.log();
    let second_start = restarted.rsplit("device started").next().unwrap_or_default();
    assert!(second_start.contains("secure=true") && !second_start.contains("install mode"), "{second_start}");
}
