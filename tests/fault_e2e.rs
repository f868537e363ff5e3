//! Sync through a damaged link: a proxy between host and device flips bits, drops bytes,
//! duplicates and delays frames. CRC-32 on every frame, MACs on every request and the
//! commit digest must let nothing corrupted in; retries must get the sync through.

use crate::util::fault_proxy::{FaultProxy, Faults};
use crate::util::{add_people, facegate, run_ok, start_device};
use facegate_host::link::{Addr, Client, Patience};
use facegate_host::paired::connect_paired;
use facegate_host::registry::Registry;
use facegate_host::sync::{device_templates, sync_device_with};
use std::time::{Duration, Instant};

fn check_through(name: &str, faults: Faults, seed: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, reg_path) = (tmp.path().join("store"), tmp.path().join("registry.sqlite3"));
    let device = start_device(&store, "127.0.0.1:0", &tmp.path().join("device.log"));
    let device_addr = device.addr.clone().expect("address");
    let proxy = FaultProxy::start(
        device_addr.trim_start_matches("tcp:").parse().expect("socket address"),
        Faults::default(),
        seed,
    )
    .expect("proxy");
    let addr_s = format!("tcp:{}", proxy.addr);
    let addr: Addr = addr_s.parse().expect("address");
    // Pairing happens on a clean line (it is a one-off, on a cable, inside a window).
    run_ok(facegate(&reg_path).args(["pair", "--device", &addr_s]));
    let model = Client::connect(&addr, Patience::default()).expect("connect").info.model_id.to_string();
    let mut registry = Registry::open(&reg_path).expect("registry");
    add_people(&mut registry, &model, 0, 1000);

    proxy.set(faults);
    let patience = Patience { reply: Duration::from_millis(500), retries: 20 };
    let t = Instant::now();
    let outcome = sync_device_with(&mut registry, &addr, patience, false).expect("sync through the faults");
    let took = t.elapsed();
    proxy.set(Faults::default());
    eprintln!(
        "{name}: 1000 templates in {:.1} s, {} host retries; proxy: {}",
        took.as_secs_f64(),
        outcome.retries,
        proxy.stats.summary()
    );
    assert_eq!(outcome.templates, 1000);
    // The faults really happened, and the host got through them by retrying: every frame the
    // proxy cut or corrupted costs the exchange it was in one retry (a cut can merge two frames
    // into one bad one, hence the factor 2 below); duplicates and delays may cost one more.
    let count = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let damaged = count(&proxy.stats.corrupted) + count(&proxy.stats.dropped);
    let harmless = count(&proxy.stats.duplicated) + count(&proxy.stats.delayed);
    assert!(damaged > 0, "{name}: the proxy damaged no frame: {}", proxy.stats.summary());
    assert!(2 * outcome.retries >= damaged, "{name}: {damaged} damaged frames but only {} retries", outcome.retries);
    assert!(
        outcome.retries <= 2 * (damaged + harmless) + 5,
        "{name}: {} retries for {damaged} damaged and {harmless} duplicated or delayed frames",
        outcome.retries
    );

    // The device holds exactly the registry's set (the device checked the digest at commit;
    // here the ids and names), and a clean second sync finds nothing to do.
    let mut c = connect_paired(&registry, &addr).expect("connect");
    let on_device: Vec<(u32, String)> =
        device_templates(&mut c).expect("list").into_values().map(|t| (t.id, t.display_name.to_string())).collect();
    let wanted: Vec<(u32, String)> = registry
        .wire_templates(&model)
        .expect("templates")
        .iter()
        .map(|t| (t.id, t.display_name.to_string()))
        .collect();
    assert_eq!(on_device, wanted);
    let again = sync_device_with(&mut registry, &addr, Patience::default(), false).expect("second sync");
    assert!(again.up_to_date, "{again:?}");
    assert_eq!(again.digest, outcome.digest);
    drop(device);
}

#[test]
fn sync_of_1000_templates_survives_one_percent_damaged_frames() {
    let faults = Faults {
        corrupt: 0.01,
        drop: 0.01,
        duplicate: 0.01,
        delay: 0.01,
        max_delay: Duration::from_millis(200),
        ..Faults::default()
    };
    check_through("1% of frames corrupted, 1% cut, 1% duplicated, 1% delayed", faults, 1);
}

#[test]
fn sync_survives_random_bit_errors() {
    // 1e-4 per byte damages about one 4.4 kB chunk frame in ten.
    check_through("bit error rate 1e-4 per byte", Faults { flip_per_byte: 1e-4, ..Faults::default() }, 2);
}
