//! Quantization accuracy: cosine(original, dequantized) >= 0.9999 for random
//! unit vectors (the realistic case) and for adversarial spiky vectors.

mod common;

use common::*;
use facegate_proto::*;
use proptest::collection::vec;
use proptest::prelude::*;

const MIN_COS: f32 = 0.9999;

fn arr(v: &[f32]) -> [f32; EMBEDDING_DIM] {
    let mut a = [0f32; EMBEDDING_DIM];
    a.copy_from_slice(v);
    a
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt() as f32;
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Gaussian unit vector via Box-Muller from uniform pairs.
fn gaussian_unit() -> impl Strategy<Value = [f32; EMBEDDING_DIM]> {
    vec((1e-12f64..1.0, 0.0f64..1.0), EMBEDDING_DIM).prop_map(|pairs| {
        let mut v: Vec<f32> = pairs
            .into_iter()
            .map(|(u1, u2)| ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32)
            .collect();
        normalize(&mut v);
        arr(&v)
    })
}

fn check(v: &[f32; EMBEDDING_DIM]) -> f32 {
    let e = Embedding::quantize(v);
    let d = e.dequantize();
    let c = cosine(v, &d);
    assert!(c >= MIN_COS, "cosine {c} < {MIN_COS}");
    // Max component maps to ±32767 and nothing uses -32768.
    assert!(e.values().iter().all(|q| *q != i16::MIN));
    c
}

proptest! {
    #[test]
    fn random_unit_vectors(v in gaussian_unit()) {
        let c = check(&v);
        prop_assert!(c >= 0.99999, "gaussian cosine {}", c);
        // Integer-domain similarity agrees with the float one.
        let e = Embedding::quantize(&v);
        prop_assert!((e.cosine_similarity(&e) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn spike_plus_small_rest(
        pos in 0..EMBEDDING_DIM,
        spike in prop_oneof![Just(1.0f32), Just(-1.0f32), 0.5f32..1e6],
        rest in vec(-1.0f32..1.0, EMBEDDING_DIM),
        rest_scale in prop_oneof![Just(1e-3f32), Just(1e-5f32), Just(1e-8f32), 1e-9f32..1e-2],
    ) {
        let mut v: Vec<f32> = rest.iter().map(|r| r * rest_scale).collect();
        v[pos] = spike;
        normalize(&mut v);
        check(&arr(&v));
    }

    #[test]
    fn few_spikes(spikes in vec((0..EMBEDDING_DIM, -1.0f32..1.0), 1..5), floor in -1e-4f32..1e-4) {
        let mut v = vec![floor; EMBEDDING_DIM];
        for (p, s) in spikes { v[p] = s; }
        if v.iter().all(|x| *x == 0.0) { return Ok(()); }
        check(&arr(&v));
    }

    #[test]
    fn similarity_is_preserved(a in gaussian_unit(), b in gaussian_unit()) {
        let (qa, qb) = (Embedding::quantize(&a), Embedding::quantize(&b));
        let exact = cosine(&a, &b);
        prop_assert!((qa.cosine_similarity(&qb) - exact).abs() < 1e-3);
        prop_assert!((cosine(&qa.dequantize(), &qb.dequantize()) - exact).abs() < 1e-3);
    }
}

/// Worst case for rounding: every small component sits just under half a
/// quantization step, so all of them round to zero.
#[test]
fn worst_case_rounding() {
    let mut v = [0f32; EMBEDDING_DIM];
    v[0] = 1.0;
    let half_step = 0.5 / 32767.0;
    for x in v.iter_mut().skip(1) {
        *x = half_step * 0.999;
    }
    check(&v);
    for x in v.iter_mut().skip(1) {
        *x = half_step * 1.001;
    }
    check(&v);
}

/// The reason int8 was rejected: it fails the bound on spiky vectors.
#[test]
fn int8_would_not_meet_the_bound() {
    let mut v = [0f32; EMBEDDING_DIM];
    v[0] = 1.0;
    for x in v.iter_mut().skip(1) {
        *x = 0.49 / 127.0; // rounds to zero in int8
    }
    let scale = 1.0 / 127.0;
    let q8: Vec<f32> = v.iter().map(|x| (x / scale).round() * scale).collect();
    assert!(cosine(&v, &q8) < MIN_COS);
    assert!(check(&v) >= MIN_COS);
}

#[test]
fn degenerate_inputs() {
    let z = Embedding::quantize(&[0.0; EMBEDDING_DIM]);
    assert_eq!(z.scale(), 0.0);
    assert!(!z.is_valid());
    assert_eq!(z.dequantize(), [0.0; EMBEDDING_DIM]);
    assert_eq!(z.cosine_similarity(&z), 0.0);

    let mut v = [0.01f32; EMBEDDING_DIM];
    v[3] = f32::NAN;
    v[4] = f32::INFINITY;
    let e = Embedding::quantize(&v);
    assert!(e.is_valid());
    assert_eq!(e.values()[3], 0);
    assert_eq!(e.values()[4], 0);
    assert_eq!(e.values()[0], 32767);

    assert!(!Embedding::from_parts(f32::NAN, [1; EMBEDDING_DIM]).is_valid());
    assert!(!Embedding::from_parts(-1.0, [1; EMBEDDING_DIM]).is_valid());
}

#[test]
fn template_validation() {
    let t = fixed_template(1);
    assert_eq!(t.validate("arcface-r100-v1"), Ok(()));
    assert_eq!(t.validate("other-model"), Err(ErrorCode::ModelMismatch));
    let mut bad = t.clone();
    bad.embedding = Embedding::from_parts(f32::INFINITY, [1; EMBEDDING_DIM]);
    assert_eq!(bad.validate("arcface-r100-v1"), Err(ErrorCode::InvalidTemplate));
}

#[test]
fn embedding_wire_size_is_fixed() {
    // f32 scale (4) + length varint (2) + 1024 bytes.
    assert_eq!(to_vec(&fixed_embedding(3)).len(), 4 + 2 + 1024);
}

#[test]
fn sync_digest_is_order_sensitive_and_deterministic() {
    let (a, b) = (fixed_template(1), fixed_template(2));
    let digest = |ts: &[&Template]| {
        let mut d = SyncDigest::new();
        ts.iter().for_each(|t| d.update(t));
        assert_eq!(d.count() as usize, ts.len());
        d.finalize()
    };
    assert_eq!(digest(&[&a, &b]), digest(&[&a, &b]));
    assert_ne!(digest(&[&a, &b]), digest(&[&b, &a]));
    // Definition: SHA-256 over the concatenated postcard encodings.
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(to_vec(&a));
    h.update(to_vec(&b));
    assert_eq!(digest(&[&a, &b]), <[u8; 32]>::from(h.finalize()));
}

#[test]
fn settings_validate() {
    assert_eq!(Setting::Threshold(Threshold::Cosine(0.4)).validate(), Ok(()));
    assert_eq!(Setting::Threshold(Threshold::Cosine(1.5)).validate(), Err(ErrorCode::InvalidConfig));
    assert_eq!(Setting::Threshold(Threshold::Cosine(f32::NAN)).validate(), Err(ErrorCode::InvalidConfig));
    assert_eq!(Setting::Threshold(Threshold::FarTarget(1e-6)).validate(), Ok(()));
    assert_eq!(Setting::Threshold(Threshold::FarTarget(0.0)).validate(), Err(ErrorCode::InvalidConfig));
    assert_eq!(Setting::Threshold(Threshold::FpirTarget(1e-2)).validate(), Ok(()));
    assert_eq!(Setting::Threshold(Threshold::FpirTarget(1.0)).validate(), Err(ErrorCode::InvalidConfig));
    assert_eq!(Setting::Consensus { required: 3, window: 5 }.validate(), Ok(()));
    assert_eq!(Setting::Consensus { required: 6, window: 5 }.validate(), Err(ErrorCode::InvalidConfig));
    assert_eq!(Setting::Consensus { required: 0, window: 5 }.validate(), Err(ErrorCode::InvalidConfig));
    assert_eq!(Setting::Lockout { max_failures: 0, window_secs: 0, cooldown_secs: 0 }.validate(), Ok(()));
    assert_eq!(
        Setting::Lockout { max_failures: 5, window_secs: 0, cooldown_secs: 30 }.validate(),
        Err(ErrorCode::InvalidConfig)
    );
    for k in ConfigKey::ALL {
        let s = match k {
            ConfigKey::Threshold => Setting::Threshold(Threshold::Cosine(0.5)),
            ConfigKey::Consensus => Setting::Consensus { required: 1, window: 1 },
            ConfigKey::Liveness => Setting::Liveness(true),
            ConfigKey::Lockout => Setting::Lockout { max_failures: 3, window_secs: 60, cooldown_secs: 300 },
        };
        assert_eq!(s.key(), k);
    }
}
