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
