//! The Rust pipeline against the Python + onnxruntime reference (`models/reference/`).
//!
//! Each stage is checked from the reference's own input to that stage, so a difference is
//! pinned to one stage: detection (boxes), landmarks from the reference box (five points),
//! and alignment + embedding from the reference five points (cosine >= 0.999). The two sides
//! decode JPEG with different libraries (Pillow/libjpeg vs the `image` crate), which differ by
//! up to 3 grey levels on ~10% of pixels; the tolerances below absorb exactly that.

use facegate_engine::{align, image_io, Embedding, Engine, EngineConfig, FaceBox};
use serde_json::Value;

fn reference() -> Value {
    let path = crate::util::repo_root().join("models/reference/conformance.json");
    let text = std::fs::read_to_string(&path).expect("models/reference/conformance.json is committed");
    serde_json::from_str(&text).expect("valid JSON")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect()).unwrap_or_default()
}

#[test]
fn rust_pipeline_matches_the_onnxruntime_reference() {
    let Some(data) = crate::util::data_dir("rust_pipeline_matches_the_onnxruntime_reference") else { return };
    let reference = reference();
    assert_eq!(reference["flip"], Value::Bool(false), "reference embeddings are computed without flip");
    let images = reference["images"].as_array().expect("images");
    assert!(images.len() >= 50);
    let (mut worst_box, mut worst_point, mut worst_cos) = (0.0f32, 0.0f32, (1.0f32, String::new()));
    for variant in ["fp32", "int8w", "int8qdq"] {
        let config = EngineConfig { embed_variant: Some(variant.into()), flip: false, ..EngineConfig::default() };
        let engine = Engine::load(&config).expect("models load");
        let key = if variant == "fp32" { "embedding".to_owned() } else { format!("embedding_{variant}") };
        for rec in images {
            let path = rec["path"].as_str().expect("path");
            let img = image_io::load_image(&data.join("lfw").join(path)).expect("decode");

            // Detection: the subject box.
            let faces = engine.detect(&img).expect("detect");
            let b = floats(&rec["box"]);
            let nearest = faces
                .iter()
                .map(|f| {
                    [f.x1 - b[0], f.y1 - b[1], f.x2 - b[2], f.y2 - b[3]].iter().fold(0.0f32, |m, d| m.max(d.abs()))
                })
                .fold(f32::INFINITY, f32::min);
            assert!(nearest < 3.0, "{path}: no box within 3 px of the reference {b:?}: {faces:?}");
            worst_box = worst_box.max(nearest);

            // Landmarks from the reference box.
            let ref_box = FaceBox { x1: b[0], y1: b[1], x2: b[2], y2: b[3], score: 1.0 };
            let pts = engine.landmarks.landmarks(&img, &ref_box).expect("landmarks");
            let five = facegate_engine::landmarks::five_points(&pts).expect("68 points");
            for (p, r) in five.iter().zip(rec["points5"].as_array().expect("points5")) {
                let r = floats(r);
                let d = (p[0] - r[0]).abs().max((p[1] - r[1]).abs());
                assert!(d < 1.0, "{path}: point {p:?} vs reference {r:?}");
                worst_point = worst_point.max(d);
            }

            // Alignment and embedding from the reference five points.
            let ref_five: Vec<[f32; 2]> = rec["points5"]
                .as_array()
                .expect("points5")
                .iter()
                .map(|p| {
                    let p = floats(p);
                    [p[0], p[1]]
                })
                .collect();
            let ref_five: [[f32; 2]; 5] = ref_five.try_into().expect("five points");
            let (crop, _) = align::align(&img, &ref_five).expect("align");
            let got = engine.embedder.embed(&crop).expect("embed");
            let expected = Embedding::from_raw(floats(&rec[key.as_str()])).expect("reference embedding");
            let cos = got.cosine(&expected);
            if variant != "int8qdq" && cos < worst_cos.0 {
                worst_cos = (cos, format!("{variant} {path}"));
            }
            // fp32 and weight-only int8 do the same float arithmetic on both sides. QDQ is
            // executed differently (onnxruntime: integer kernels; tract: dequantised floats),
            // so its activations round differently: a looser bar.
            let bar = if variant == "int8qdq" { 0.98 } else { 0.999 };
            assert!(cos >= bar, "{variant} {path}: cosine {cos} < {bar} against the reference");
        }
    }
    eprintln!(
        "conformance over {} images x 3 variants: box within {worst_box:.2} px, five points within \
         {worst_point:.2} px, worst fp32/int8w embedding cosine {:.5} ({})",
        images.len(),
        worst_cos.0,
        worst_cos.1
    );
}
