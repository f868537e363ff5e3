//! Every embedding variant the manifest lists can run on a device with a FAR target: it has a
//! calibration table made for its own embedding space.

use facegate_device::engine::model::{default_models_dir, Manifest};
use facegate_device::engine::Calibration;

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
    use facegate_device::engine::kernels::Kernels;
    use facegate_device::engine::model::{input_shape, Net};
    let dir = default_models_dir();
    let manifest = Manifest::load(&dir).expect("models/manifest.toml");
    let mut rewritten = 0;
    for entry in &manifest.models {
        let Some(shape) = input_shape(&entry.role) else { continue };
        let tract = Net::from_manifest(&manifest, entry, &shape, Kernels::Tract).expect("tract plan");
        let own = Net::from_manifest(&manifest, entry, &shape, Kernels::Own).expect("own plan");
        assert_eq!(tract.rewrites, Default::default());
        let r = own.rewrites;
        println!("{}: {r:?}", entry.name);
        rewritten += r.depthwise + r.prelu + r.softmax;
        assert!(r.depthwise > 0, "{}: no depthwise convolution rewritten", entry.name);
        let n: usize = shape.iter().product();
        let input: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 128.0 - 1.0).collect();
        let (a, b) = (tract.run(input.clone()).expect("tract run"), own.run(input).expect("own run"));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            let scale = x.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            let worst = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
            println!("  output of {} values: max |diff| {worst:.2e} (max |value| {scale:.2e})", x.len());
            assert!(worst <= 1e-4 * scale, "{}: outputs differ by {worst} (scale {scale})", entry.name);
        }
    }
    assert!(rewritten > 50, "{rewritten}");
}
