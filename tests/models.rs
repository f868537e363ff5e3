//! Every embedding variant the manifest lists can run on a device with a FAR target: it has a
//! calibration table made for its own embedding space.

use facegate_engine::model::{default_models_dir, Manifest};
use facegate_engine::Calibration;

#[test]
fn every_embedding_variant_has_its_own_calibration() {
    let dir = default_models_dir();
    let manifest = Manifest::load(&dir).expect("models/manifest.toml");
    let variants = manifest.variants("embed");
    assert!(variants.len() >= 2, "fp32 and at least one int8 variant");
    for entry in variants {
        let path = dir.join(format!("calibration-{}.toml", entry.variant));
        let c = Calibration::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(Some(&c.embedding_id), entry.embedding_id.as_ref(), "{}", path.display());
        // A usable table: thresholds rise as the FAR target falls.
        assert!(c.threshold_for_far(1e-4) >= c.threshold_for_far(1e-3));
        assert!(c.threshold_for_far(1e-3) > c.threshold_for_far(1e-2));
    }
}

/// Our depthwise/PReLU/softmax operators compute what tract's own do, on every shipped
/// network: the same input through both plans gives the same outputs (to float rounding:
/// ours use fused multiply-adds in another order).
#[test]
fn own_kernels_match_tract_on_every_network() {
    use facegate_engine::kernels::Kernels;
    use facegate_engine::model::{input_shape, Net};
    let dir = default_models_dir();
    let manifest = Manifest::load(&dir).expect("models/manifest.toml");
    let mut rewritten = 0;
    for entry in &manifest.models {
        if input_shape(entry).is_none() {
            continue;
        }
        let tract = Net::from_manifest(&manifest, entry, Kernels::Tract).expect("tract plan");
        let own = Net::from_manifest(&manifest, entry, Kernels::Own).expect("own plan");
        assert_eq!(tract.rewrites, Default::default());
        let r = own.rewrites;
        println!("{}: {r:?}", entry.name);
        rewritten += r.depthwise + r.prelu + r.softmax;
        assert!(r.depthwise > 0, "{}: no depthwise convolution rewritten", entry.name);
        let n: usize = own.input_shape().iter().product();
        let input: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 128.0 - 1.0).collect();
        let (a, b) = (tract.run(input.clone()).expect("tract run"), own.run(input).expect("own run"));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            let scale = x.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            let worst = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
            println!("  output of {} values: max |diff| {worst:.2e} (max |value| {scale:.2e})", x.len());
            if r.int8 > 0 {
                // int8 arithmetic is an approximation of the float network, not a re-ordering.
                let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
                let norm = |v: &[f32]| v.iter().map(|p| p * p).sum::<f32>().sqrt();
                let cos = dot / (norm(x) * norm(y));
                println!("  int8: cosine with the float output {cos:.5}");
                assert!(cos >= 0.99, "{}: int8 output cosine {cos}", entry.name);
            } else {
                assert!(worst <= 1e-4 * scale, "{}: outputs differ by {worst} (scale {scale})", entry.name);
            }
        }
    }
    assert!(rewritten > 50, "{rewritten}");
}

/// Every embedding variant against fp32 on 500 real aligned LFW faces (the first photo of the
/// first 500 people in name order): the int8 variants must stay close to fp32 (the models
/// issue's bar: mean cosine >= 0.995 for the shipped one). Prints the figures.
#[test]
fn int8_variants_stay_close_to_fp32_on_real_faces() {
    use facegate_engine::embed::Embedder;
    use facegate_engine::kernels::Kernels;
    use facegate_engine::model::Net;
    use facegate_engine::{Engine, EngineConfig, FacePolicy, QualityGate};
    let Some(data) = crate::util::data_dir("int8_variants_stay_close_to_fp32_on_real_faces") else { return };
    let mut people = crate::util::lfw_people(&data.join("lfw"), 1);
    people.sort();
    let engine = Engine::load(&EngineConfig::default()).expect("engine");
    let crops: Vec<_> = people
        .iter()
        .take(500)
        .filter_map(|(_, photos)| {
            let r = engine.process_file(&photos[0], FacePolicy::Subject, &QualityGate::NONE).ok()?;
            Some(r.observation.aligned)
        })
        .collect();
    assert!(crops.len() >= 495, "{} of 500 faces found", crops.len());
    let manifest = &engine.manifest;
    let load = |variant: &str| {
        let entry = manifest.find("embed", Some(variant)).expect("variant");
        Embedder::new(Net::from_manifest(manifest, entry, Kernels::Own).expect("load"), false)
    };
    let fp32 = load("fp32");
    let reference: Vec<_> = crops.iter().map(|c| fp32.embed(c).expect("fp32 embed")).collect();
    for entry in manifest.variants("embed").into_iter().filter(|e| e.variant != "fp32") {
        let net = load(&entry.variant);
        let cos: Vec<f32> = crops.iter().zip(&reference).map(|(c, r)| net.embed(c).expect("embed").cosine(r)).collect();
        let mean = cos.iter().sum::<f32>() / cos.len() as f32;
        let min = cos.iter().copied().fold(1.0, f32::min);
        println!("{}: cosine vs fp32 over {} LFW faces: mean {mean:.5}, min {min:.5}", entry.variant, cos.len());
        let bar = if entry.variant == "int8qdq" { 0.98 } else { 0.995 };
        assert!(mean >= bar, "{}: mean cosine {mean} < {bar}", entry.variant);
    }
}

/// A manifest asking for a way of computing the engine does not know is refused by name, not
/// silently run in float.
#[test]
fn unknown_compute_in_the_manifest_is_refused() {
    use facegate_engine::kernels::Kernels;
    use facegate_engine::model::Net;
    let dir = default_models_dir();
    let manifest = Manifest::load(&dir).expect("models/manifest.toml");
    let mut entry = manifest.find("landmark", None).expect("landmark entry").clone();
    entry.compute = Some("int4".into());
    let err = Net::from_manifest(&manifest, &entry, Kernels::Own).expect_err("int4 is not a thing");
    assert!(err.to_string().contains("unknown compute \"int4\""), "{err}");
    entry.compute = Some("int8".into());
    let net = Net::from_manifest(&manifest, &entry, Kernels::Own).expect("int8 landmarks load");
    assert!(net.rewrites.int8 > 0, "{:?}", net.rewrites);
}

/// The second look embeds the face with its mirror image: a left-right symmetric crop is its
/// own mirror, so nothing changes; any other crop changes. Only scores too close to call get
/// one, and never when every embedding is mirrored already.
#[test]
fn second_look_mirrors_left_right_and_only_near_the_threshold() {
    use facegate_engine::{Engine, EngineConfig};
    use image::{Rgb, RgbImage};
    let engine = Engine::load(&EngineConfig::default()).expect("engine");
    let symmetric = RgbImage::from_fn(112, 112, |x, y| {
        let d = x.min(111 - x);
        Rgb([(d * 4 + y) as u8, (y * 2) as u8, ((d * y) % 251) as u8])
    });
    let single = engine.embedder.embed(&symmetric).expect("embed");
    let mirrored = engine.embedder.with_mirror(&symmetric, &single).expect("embed with mirror");
    assert!(single.cosine(&mirrored) > 0.99999, "symmetric crop: {}", single.cosine(&mirrored));
    // Shift the pattern sideways: no longer symmetric, so the mirror pass must change the result.
    let skewed = RgbImage::from_fn(112, 112, |x, y| *symmetric.get_pixel((x + 9).min(111), y));
    let single = engine.embedder.embed(&skewed).expect("embed");
    let mirrored = engine.embedder.with_mirror(&skewed, &single).expect("embed with mirror");
    assert!(single.cosine(&mirrored) < 0.9999, "skewed crop: {}", single.cosine(&mirrored));
    // The sum is the same whichever of the two images comes first: the first pass is added
    // back at its own scale, not as a unit vector.
    let flipped = image::imageops::flip_horizontal(&skewed);
    let from_flipped = engine.embedder.embed(&flipped).expect("embed");
    let other_way = engine.embedder.with_mirror(&flipped, &from_flipped).expect("embed with mirror");
    assert!(mirrored.cosine(&other_way) > 0.99999, "order changed the sum: {}", mirrored.cosine(&other_way));

    let c = engine.calibration.as_ref().expect("the shipped variant has a calibration");
    // Every threshold a door is set to lies in the band; clear scores do not.
    for far in [1e-2, 1e-3, 1e-4, 1e-5] {
        assert!(engine.needs_second_look(c.threshold_for_far(far)), "FAR {far}");
    }
    assert!(!engine.needs_second_look(0.0) && !engine.needs_second_look(0.8) && !engine.needs_second_look(-1.0));
    let always = Engine::load(&EngineConfig { flip: true, ..EngineConfig::default() }).expect("engine");
    assert!(!always.needs_second_look(c.threshold_for_far(1e-3)), "flip embeds every face mirrored already");
}
