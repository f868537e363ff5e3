//! Load: the device plays frames at its maximum rate (looping a folder of LFW visits) while a
//! host syncs changing sets and follows the events. Memory must stay flat. 20 s here;
//! `FACEGATE_LOAD_SECS=600` for the ten-minute run, which prints RSS over time.

use crate::util::{data_dir, facegate, lfw_people, proc_status_mb, run_ok, DeviceProcess};
use facegate_host::commands::demo::FrameWriter;
use facegate_host::link::Addr;
use facegate_host::registry::Registry;
use facegate_host::sync::sync_device;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn device_under_full_frame_rate_with_syncs_and_events_keeps_memory_flat() {
    let Some(data) = data_dir("load_e2e") else { return };
    let secs: u64 = std::env::var("FACEGATE_LOAD_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, frames, registry) =
        (tmp.path().join("store"), tmp.path().join("frames"), tmp.path().join("registry.sqlite3"));
    std::fs::create_dir(&frames).expect("frames dir");
    let people = lfw_people(&data.join("lfw"), 4);
    let mut writer = FrameWriter { dir: frames.clone(), next: 0 };
    for (_, photos) in people.iter().step_by(people.len() / 12).take(12) {
        writer.visit(&image::open(&photos[1]).expect("photo").to_rgb8()).expect("frames");
    }
    let device = DeviceProcess::start(
        &[
            "--store",
            store.to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
            "--allow-pairing",
            "60",
            "--frames",
            frames.to_str().expect("utf-8"),
            "--loop",
            "--consensus",
            "2/3",
        ],
        &tmp.path().join("device.log"),
    );
    let addr_s = device.addr.clone().expect("address");
    let addr: Addr = addr_s.parse().expect("address");
    run_ok(facegate(&registry).args(["pair", "--device", &addr_s]));
    // Strangers come round every few seconds here: without this they would lock the door.
    run_ok(facegate(&registry).args(["config", "--device", &addr_s, "lockout", "0/60/30"]));
    // Some first photos are refused by the enrolment gate (two faces, profile): that is fine.
    let enrolled = people
        .iter()
        .step_by(people.len() / 12)
        .take(6)
        .filter(|(name, photos)| {
            facegate(&registry).args(["enroll", name]).arg(&photos[0]).output().is_ok_and(|o| o.status.success())
        })
        .count();
    assert!(enrolled >= 3, "only {enrolled} enrolled");
    let model = facegate_host::link::Client::connect(&addr, Default::default()).expect("connect").info.model_id;
    let mut follower = facegate(&registry)
        .args(["events", "--device", &addr_s, "--follow", "--json", "--last", "0", "--timeout"])
        .arg((secs + 5).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("events follower");
    let out = follower.stdout.take().expect("stdout");
    let counter = std::thread::spawn(move || BufReader::new(out).lines().count());

    // Two registry states the syncs alternate between: with and without 200 extra people.
    let mut reg = Registry::open(&registry).expect("registry");
    let start = Instant::now();
    let (mut syncs, mut samples) = (0u32, Vec::new());
    let mut extra = false;
    let mut next_sample = Duration::ZERO;
    while start.elapsed() < Duration::from_secs(secs) {
        if extra {
            for i in 0..200 {
                let _ = reg.remove_person(&format!("Extra {i:03}"));
            }
        } else {
            for i in 0..200u32 {
                let mut v = vec![0.0f32; 512];
                v[(i % 512) as usize] = 0.6;
                v[((i * 7 + 1) % 512) as usize] = 0.8;
                reg.enroll(&format!("Extra {i:03}"), &model, &[(v, "synthetic".into(), None)]).expect("enroll");
            }
        }
        extra = !extra;
        sync_device(&mut reg, &addr, false).expect("sync under load");
        syncs += 1;
        if start.elapsed() >= next_sample {
            samples.push((start.elapsed().as_secs(), proc_status_mb(device.child.id(), "VmRSS").expect("device RSS")));
            next_sample += Duration::from_secs((secs / 20).max(1));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    samples.push((start.elapsed().as_secs(), proc_status_mb(device.child.id(), "VmRSS").expect("device RSS")));
    let events = counter.join().expect("event counter");
    let _ = follower.wait();
    let audit = run_ok(facegate(&registry).args(["audit", "--device", &addr_s, "--json"]));
    let decisions = audit.lines().filter(|l| l.contains("\"AccessGranted\"") || l.contains("\"UnknownFace\"")).count();
    assert!(!audit.contains("\"LockedOut\""), "lockout was disabled");
    let table: Vec<String> = samples.iter().map(|(t, r)| format!("{t}s {r:.0}MB")).collect();
    eprintln!(
        "{secs} s at full frame rate: {decisions} decisions, {events} events followed, {syncs} syncs of {enrolled}/{} \
         templates; device RSS: {}",
        enrolled + 200,
        table.join(", ")
    );
    assert!(events > 0 && decisions > 0, "the loop kept deciding");
    // After warm-up (the first quarter), RSS may not grow by more than 10%.
    let warm = samples[samples.len() / 4].1;
    let peak = samples.iter().skip(samples.len() / 4).map(|s| s.1).fold(0.0, f64::max);
    assert!(peak <= warm * 1.10 + 5.0, "RSS grew from {warm:.0} MB to {peak:.0} MB");
}
