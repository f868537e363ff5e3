//! Security against a real device: state-changing frames that are unsigned, replayed,
//! reordered or altered are all rejected (counted), pairing cannot be brute-forced outside its
//! window, the store on disk reveals nothing without the device key, and a tampered store
//! stops the device instead of being replaced.

use crate::util::raw::{error_code as code, RawSession};
use crate::util::{facegate, run_ok, Paired};
use facegate_host::registry::Registry;
use facegate_proto::{Body, ErrorCode, Frame, Request, Setting, Signer, Threshold};

/// Every kind of state-changing request, harmless if it were accepted twice.
fn state_changing(i: u32) -> Request {
    match i % 4 {
        0 => Request::DeleteTemplate { id: 1 },
        1 => Request::SetConfig(Setting::Threshold(Threshold::Cosine(0.99))),
        2 => Request::SyncBegin { expected_generation: 1, total_templates: 0 },
        _ => Request::SyncAbort,
    }
}

#[test]
fn forged_frames_are_rejected_and_the_store_is_sealed() {
    let Paired { tmp: _tmp, store, registry, mut device, addr_s: addr, model, .. } = Paired::new();
    let key = Registry::open(&registry).expect("registry").device(&addr).expect("db").expect("paired").key;
    {
        // Three named people on the device.
        let mut reg = Registry::open(&registry).expect("registry");
        for (i, name) in ["Zelda Secretname", "Quentin Hiddenface", "Ursula Private"].iter().enumerate() {
            let mut v = vec![0.0f32; 512];
            v[i] = 1.0;
            reg.enroll(name, &model, &[(v, "synthetic".into(), None)]).expect("enroll");
        }
    }
    run_ok(facegate(&registry).args(["sync"]));

    const N: u32 = 100;
    let mut raw = RawSession::connect(&addr, None);
    let mut signer = Signer::new(key, raw.info.session_nonce);
    let (mut unsigned, mut replayed, mut reordered, mut altered, mut wrong_key) = (0, 0, 0, 0, 0);
    for i in 0..N {
        let id = 10 + i;
        // Unsigned.
        if code(&raw.exchange(&Frame::request(id, state_changing(i)))) == Some(ErrorCode::Unauthenticated) {
            unsigned += 1;
        }
        // A genuine frame, then the same bytes again.
        let genuine = signer.signed_request(id, Request::SyncAbort);
        let _ = raw.exchange(&genuine);
        if code(&raw.exchange(&genuine)) == Some(ErrorCode::Replay) {
            replayed += 1;
        }
        // Two genuine frames delivered in the wrong order: the later-counter one is accepted,
        // the earlier one is then a replay.
        let first = signer.signed_request(id, Request::SyncAbort);
        let second = signer.signed_request(id, Request::SyncAbort);
        let _ = raw.exchange(&second);
        if code(&raw.exchange(&first)) == Some(ErrorCode::Replay) {
            reordered += 1;
        }
        // Signed, then changed in flight (re-encoded, so the CRC is right and only the MAC can tell).
        let mut changed = signer.signed_request(id, Request::DeleteTemplate { id: 999 });
        changed.body = Body::Request(state_changing(i));
        if code(&raw.exchange(&changed)) == Some(ErrorCode::BadMac) {
            altered += 1;
        }
        // Signed with a guessed key.
        let mut guess = Signer::new([i as u8; 32], raw.info.session_nonce);
        if code(&raw.exchange(&guess.signed_request(id, state_changing(i)))) == Some(ErrorCode::BadMac) {
            wrong_key += 1;
        }
    }
    // Pairing outside the window (it closed with the first pairing). The device closes a
    // connection after its third refused try, so a brute force has to keep reconnecting.
    let mut pair_refused = 0;
    let mut brute = RawSession::connect(&addr, None);
    for i in 0..1000u32 {
        if i > 0 && i % 3 == 0 {
            brute = RawSession::connect(&addr, None);
        }
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        if code(&brute.exchange(&Frame::request(i, Request::Pair { key: k }))) == Some(ErrorCode::PairingClosed) {
            pair_refused += 1;
        }
    }
    drop(brute);
    eprintln!(
        "rejected: unsigned {unsigned}/{N}, replayed {replayed}/{N}, reordered {reordered}/{N}, altered {altered}/{N}, \
         wrong key {wrong_key}/{N}; pairing attempts outside the window refused {pair_refused}/1000"
    );
    assert_eq!((unsigned, replayed, reordered, altered, wrong_key), (N, N, N, N, N));
    assert_eq!(pair_refused, 1000);
    // Nothing changed: still the three templates, threshold untouched.
    let out = run_ok(facegate(&registry).args(["sync", "--json"]));
    assert!(out.contains("\"up_to_date\":true"), "{out}");
    let cfg = run_ok(facegate(&registry).args(["config", "--device", &addr, "--json"]));
    assert!(!cfg.contains("0.99"), "{cfg}");

    // On disk: neither the names nor the key appear in any file of the store.
    device.terminate();
    for entry in std::fs::read_dir(&store).expect("store dir").flatten() {
        let bytes = std::fs::read(entry.path()).expect("read");
        for needle in [&b"Secretname"[..], b"Hiddenface", b"Ursula", &key[..]] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{:?} leaks a secret", entry.path());
        }
    }
    // Tampering with the store stops the device at start, loudly, and the file is kept.
    let path = store.join("store.fgs");
    let mut bytes = std::fs::read(&path).expect("store file");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).expect("tamper");
    let out = std::process::Command::new(crate::util::binary("facegate-device"))
        .args(["run", "--store"])
        .arg(&store)
        .output()
        .expect("run device");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a tampered store must stop the device");
    assert!(stderr.contains("store"), "{stderr}");
    assert_eq!(std::fs::read(&path).expect("store file"), bytes, "the evidence is kept as it was");
}
