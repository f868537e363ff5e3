//! Host and device over a serial line: a `socat` pseudo-terminal pair stands in for the USB
//! cable. Pair, enrol from LFW, sync, and follow decisions, all over the pty.

use crate::util::{data_dir, facegate, lfw_people, run_ok, DeviceProcess, PtyPair};
use facegate_engine::{Engine, EngineConfig, FacePolicy, QualityGate};
use facegate_host::commands::demo::FrameWriter;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn enrol_sync_and_follow_events_over_a_pty_pair() {
    let Some(data) = data_dir("serial_e2e") else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(line) = PtyPair::new(tmp.path(), "ttyDEVICE", "ttyHOST", "serial_e2e") else { return };
    let (dev_end, host_end) = (line.a.clone(), line.b.clone());
    let (store, frames, registry) =
        (tmp.path().join("store"), tmp.path().join("frames"), tmp.path().join("registry.sqlite3"));
    std::fs::create_dir(&frames).expect("frames");
    let device = DeviceProcess::start(
        &[
            "--store",
            store.to_str().expect("utf-8"),
            "--serial",
            dev_end.to_str().expect("utf-8"),
            "--allow-pairing",
            "60",
            "--frames",
            frames.to_str().expect("utf-8"),
            "--follow",
            "--consensus",
            "1/1",
        ],
        &tmp.path().join("device.log"),
    );
    let addr = format!("serial:{}", host_end.display());
    run_ok(facegate(&registry).args(["pair", "--device", &addr]));
    let people = lfw_people(&data.join("lfw"), 10);
    let (alice, bob, stranger) = (&people[10], &people[11], &people[12]);
    for (name, photos) in [alice, bob] {
        run_ok(facegate(&registry).args(["enroll", name]).arg(&photos[0]));
    }
    let out = run_ok(facegate(&registry).args(["sync", "--json"]));
    assert!(out.contains("\"templates\":2"), "{out}");

    let mut follower = facegate(&registry)
        .args(["events", "--device", &addr, "--follow", "--json", "--last", "0", "--count", "3", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("events");
    let mut line = String::new();
    BufReader::new(follower.stderr.take().expect("stderr")).read_line(&mut line).expect("stderr");
    assert!(line.starts_with("following events"), "{line}");
    // Frames: each visitor once, separated by blank frames.
    let blank = image::RgbImage::from_pixel(250, 250, image::Rgb([128, 128, 128]));
    let mut writer = FrameWriter { dir: frames.clone(), next: 0 };
    // A visitor faces the door camera: show the stranger's first photo the verification gate
    // accepts (some LFW photos are profiles the kiosk rightly declines to judge).
    let engine = Engine::load(&EngineConfig::default()).expect("engine");
    let stranger_photo = stranger
        .1
        .iter()
        .find(|p| engine.process_file(p, FacePolicy::Subject, &QualityGate::VERIFY).is_ok())
        .expect("a usable photo of the stranger");
    for photo in [&alice.1[1], &bob.1[1], stranger_photo] {
        let img = image::open(photo).expect("photo").to_rgb8();
        for f in [&img, &blank, &blank, &blank] {
            writer.put(f).expect("frame");
        }
    }
    let events: Vec<serde_json::Value> = BufReader::new(follower.stdout.take().expect("stdout"))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("line")).expect("json"))
        .collect();
    assert!(follower.wait().expect("exit").success());
    let got: Vec<(&str, Option<&str>)> =
        events.iter().map(|e| (e["decision"].as_str().unwrap_or("?"), e["name"].as_str())).collect();
    let want = vec![("Granted", Some(alice.0.as_str())), ("Granted", Some(bob.0.as_str())), ("Unknown", None)];
    assert_eq!(got, want, "device log:\n{}", device.log());
}
