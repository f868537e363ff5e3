//! The link between host and device, against a real `facegate-device` process: sync survives
//! the device being killed mid-way, a host without the key changes nothing, templates from
//! another model are refused, and the same works over a serial line (a `socat` pty pair).

use crate::util::raw::{error_code, RawSession};
use crate::util::{add_people, facegate, run_ok, start_device, Paired};
use facegate_host::link::{Client, LinkError, Patience};
use facegate_host::paired::connect_paired;
use facegate_host::registry::Registry;
use facegate_proto::{Embedding, ErrorCode, Request, Signer, Template, EMBEDDING_DIM};

fn template_ids(client: &mut Client) -> Vec<u32> {
    facegate_host::sync::device_templates(client).expect("list templates").into_keys().collect()
}

#[test]
fn sync_interrupted_by_a_killed_device_keeps_the_old_set_and_a_rerun_completes() {
    let Paired { tmp, store, registry, mut device, addr_s, addr, model } = Paired::new();

    add_people(&mut Registry::open(&registry).expect("registry"), &model, 0, 40);
    run_ok(facegate(&registry).args(["sync"]));
    let reg = Registry::open(&registry).expect("registry");
    let mut client = connect_paired(&reg, &addr).expect("connect");
    let (old_generation, old_ids) = (client.info.store_generation, template_ids(&mut client));
    assert_eq!(old_ids.len(), 40);

    // A bigger set, half sent, then the device dies.
    add_people(&mut Registry::open(&registry).expect("registry"), &model, 40, 300);
    let wanted = reg.wire_templates(&model).expect("templates");
    assert_eq!(wanted.len(), 340);
    client.request(Request::SyncBegin { expected_generation: old_generation, total_templates: 340 }).expect("begin");
    for (seq, part) in wanted.chunks(4).take(40).enumerate() {
        let templates = facegate_proto::heapless::Vec::from_slice(part).expect("chunk of 4");
        client.request(Request::SyncChunk { seq: seq as u32, templates }).expect("chunk");
    }
    device.kill();
    drop(client);

    let listen = addr_s.trim_start_matches("tcp:").to_string();
    let _device = start_device(&store, &listen, &tmp.path().join("device2.log"));
    let mut client = connect_paired(&reg, &addr).expect("reconnect");
    assert_eq!(client.info.store_generation, old_generation, "half a sync must not change the store");
    assert_eq!(template_ids(&mut client), old_ids, "the old complete set is still there");

    let out = run_ok(facegate(&registry).args(["sync", "--json"]));
    let outcome: serde_json::Value = serde_json::from_str(out.trim()).expect("sync --json");
    assert_eq!(outcome["templates"], 340);
    assert_eq!(outcome["added"], 300);
    let mut client = connect_paired(&reg, &addr).expect("reconnect");
    assert_eq!(client.info.store_generation, old_generation + 1);
    assert_eq!(template_ids(&mut client), wanted.iter().map(|t| t.id).collect::<Vec<_>>());
}

#[test]
fn a_host_without_the_key_changes_nothing() {
    let Paired { tmp, store: _, registry, device: _device, addr_s, addr, model } = Paired::new();
    add_people(&mut Registry::open(&registry).expect("registry"), &model, 0, 3);
    run_ok(facegate(&registry).args(["sync"]));
    let reg = Registry::open(&registry).expect("registry");
    let before = connect_paired(&reg, &addr).expect("connect").info.store_generation;

    // Another registry: not paired, and the pairing window closed with the first pairing.
    let stranger = tmp.path().join("other.sqlite3");
    add_people(&mut Registry::open(&stranger).expect("registry"), &model, 100, 2);
    let out = facegate(&stranger).args(["sync", "--device", &addr_s]).output().expect("run");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no pairing"));
    let out = facegate(&stranger).args(["pair", "--device", &addr_s]).output().expect("run");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not accepting pairing"));

    let t = reg.wire_templates(&model).expect("templates").remove(0);
    let upsert = Request::UpsertTemplate(t);
    // Unsigned.
    let mut c = Client::connect(&addr, Patience::default()).expect("connect");
    let e = c.request(upsert.clone()).expect_err("unsigned upsert");
    assert_eq!(e.device_code(), Some(ErrorCode::Unauthenticated));
    // Signed with a guessed key.
    c.authenticate([7u8; 32]);
    let e = c.request(upsert.clone()).expect_err("wrong key");
    assert_eq!(e.device_code(), Some(ErrorCode::BadMac));
    // Pairing outside the window.
    let e = c.request(Request::Pair { key: [9u8; 32] }).expect_err("pair outside window");
    assert_eq!(e.device_code(), Some(ErrorCode::PairingClosed));

    // A replayed (captured) frame and an altered one, on a raw connection.
    let key = reg.device(&addr_s).expect("registry").expect("paired").key;
    let mut raw = RawSession::connect(&addr_s, None);
    let mut signer = Signer::new(key, raw.info.session_nonce);
    let delete = signer.signed_request(2, Request::DeleteTemplate { id: 999_999 });
    // Legitimate, but the template does not exist: the MAC was accepted.
    assert_eq!(error_code(&raw.exchange(&delete)), Some(ErrorCode::NotFound));
    assert_eq!(error_code(&raw.exchange(&delete)), Some(ErrorCode::Replay));
    let mut altered = signer.signed_request(3, Request::DeleteTemplate { id: 1 });
    altered.body = facegate_proto::Body::Request(Request::DeleteTemplate { id: 2 });
    assert_eq!(error_code(&raw.exchange(&altered)), Some(ErrorCode::BadMac));

    let mut c = connect_paired(&reg, &addr).expect("connect");
    assert_eq!(c.info.store_generation, before, "nothing changed");
    assert_eq!(template_ids(&mut c).len(), 3);
}

#[test]
fn templates_of_another_model_are_refused() {
    let Paired { tmp: _tmp, store: _, registry, device: _device, addr_s: _, addr, model: _ } = Paired::new();
    add_people(&mut Registry::open(&registry).expect("registry"), "some-other-model/fp32", 0, 2);

    let out = facegate(&registry).args(["sync"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("embedding model"), "{stderr}");

    let reg = Registry::open(&registry).expect("registry");
    let foreign = reg.wire_templates("some-other-model/fp32").expect("templates");
    let mut c = connect_paired(&reg, &addr).expect("connect");
    let e = c.request(Request::UpsertTemplate(foreign[0].clone())).expect_err("foreign template");
    assert_eq!(e.device_code(), Some(ErrorCode::ModelMismatch));
    let generation = c.info.store_generation;
    c.request(Request::SyncBegin { expected_generation: generation, total_templates: 2 }).expect("begin");
    let chunk = facegate_proto::heapless::Vec::from_slice(&foreign).expect("chunk");
    let e = c.request(Request::SyncChunk { seq: 0, templates: chunk }).expect_err("foreign chunk");
    assert!(matches!(e, LinkError::Device { code: ErrorCode::ModelMismatch, .. }));
    // A template the device's model made is fine.
    let mut own: Template = foreign[0].clone();
    own.model_id = facegate_proto::bounded_str(&c.info.model_id);
    own.embedding = Embedding::quantize(&[1.0 / (EMBEDDING_DIM as f32).sqrt(); EMBEDDING_DIM]);
    c.request(Request::SyncAbort).expect("abort");
    c.request(Request::UpsertTemplate(own)).expect("own-model template accepted");
}

#[test]
fn a_commit_after_another_host_changed_the_store_is_refused() {
    let Paired { tmp: _tmp, store: _, registry, device: _device, addr_s, addr: _, model } = Paired::new();
    add_people(&mut Registry::open(&registry).expect("registry"), &model, 0, 3);
    let reg = Registry::open(&registry).expect("registry");
    let key = reg.device(&addr_s).expect("registry").expect("paired").key;
    let set = reg.wire_templates(&model).expect("templates");

    // Host A starts a sync of two templates...
    let mut a = RawSession::connect(&addr_s, Some(key));
    let generation = a.info.store_generation;
    a.call(Request::SyncBegin { expected_generation: generation, total_templates: 2 });
    let chunk = facegate_proto::heapless::Vec::from_slice(&set[..2]).expect("chunk");
    a.call(Request::SyncChunk { seq: 0, templates: chunk });
    // ...host B adds one meanwhile...
    let mut b = RawSession::connect(&addr_s, Some(key));
    assert!(error_code(&b.call(Request::UpsertTemplate(set[2].clone()))).is_none());
    // ...so A's commit would silently drop B's template: refused.
    let mut digest = facegate_proto::SyncDigest::new();
    set[..2].iter().for_each(|t| digest.update(t));
    let reply = a.call(Request::SyncCommit { template_count: 2, digest: digest.finalize() });
    assert_eq!(error_code(&reply), Some(ErrorCode::GenerationMismatch));
    assert_eq!(RawSession::connect(&addr_s, Some(key)).ids().len(), 1, "B's template is still there");
}

#[test]
fn removing_the_last_card_and_login_removes_them_from_the_device() {
    let Paired { tmp: _tmp, store: _, registry, device: _device, addr_s, addr: _, model } = Paired::new();
    let mut reg = Registry::open(&registry).expect("registry");
    add_people(&mut reg, &model, 0, 2);
    reg.set_card(
        "Person 0000",
        &facegate_proto::Card::parse("12:3456", facegate_proto::CardFormat::H10301, false).expect("card"),
    )
    .expect("card");
    reg.set_login("Person 0001", "bob").expect("login");
    drop(reg);
    let sync = |registry: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(run_ok(facegate(registry).args(["sync", "--json"])).trim()).expect("sync --json")
    };
    let first = sync(&registry);
    assert_eq!((first["cards"].as_u64(), first["logins"].as_u64()), (Some(1), Some(1)));

    // A revoked card or login must not stay on the door, also when it was the last one.
    run_ok(facegate(&registry).args(["card", "Person 0000", "--remove"]));
    run_ok(facegate(&registry).args(["login", "Person 0001", "--remove"]));
    let second = sync(&registry);
    assert_eq!((second["cards"].as_u64(), second["logins"].as_u64()), (Some(0), Some(0)));
    let audit = run_ok(facegate(&registry).args(["audit", "--device", &addr_s, "--json"]));
    for detail in ["1 card(s) mapped", "0 card(s) mapped", "1 login(s) mapped", "0 login(s) mapped"] {
        assert!(audit.contains(detail), "no audit record {detail:?}:\n{audit}");
    }
    // An unchanged map is not written (or audited) again.
    sync(&registry);
    let again = run_ok(facegate(&registry).args(["audit", "--device", &addr_s, "--json"]));
    assert_eq!(again.matches("card(s) mapped").count(), 2, "{again}");
    assert_eq!(again.matches("login(s) mapped").count(), 2, "{again}");
}
