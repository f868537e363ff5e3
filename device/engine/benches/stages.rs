//! Criterion benches of each engine stage on a synthetic frame (no data set needed).
//! `facegate bench` is the end-to-end figure against onnxruntime; these track each stage.

use criterion::{criterion_group, criterion_main, Criterion};
use facegate_engine::matcher::{Gallery, TemplateRef};
use facegate_engine::{align, detect, Embedding, Engine, EngineConfig, FaceBox};
use image::RgbImage;

fn frame() -> RgbImage {
    // A smooth pattern with some texture: the networks' cost does not depend on content.
    RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8]))
}

fn stages(c: &mut Criterion) {
    let engine = match Engine::load(&EngineConfig { flip: false, ..EngineConfig::default() }) {
        Ok(e) => e,
        Err(e) => panic!("models must load for the benches: {e}"),
    };
    let img = frame();
    let face = FaceBox { x1: 200.0, y1: 120.0, x2: 360.0, y2: 320.0, score: 1.0 };
    let five = align::ARCFACE_TEMPLATE.map(|[x, y]| [x * 1.5 + 200.0, y * 1.5 + 130.0]);
    let (crop, _) = align::align(&img, &five).expect("template points are not degenerate");
    c.bench_function("detect/preprocess 640x480", |b| b.iter(|| detect::preprocess(&img)));
    c.bench_function("detect/full 640x480", |b| b.iter(|| engine.detect(&img)));
    c.bench_function("landmarks", |b| b.iter(|| engine.landmarks.landmarks(&img, &face)));
    c.bench_function("align", |b| b.iter(|| align::align(&img, &five)));
    c.bench_function(&format!("embed/{}", engine.embed_variant), |b| b.iter(|| engine.embedder.embed(&crop)));

    let mut gallery = Gallery::new();
    for i in 0..10_000u32 {
        let v =
            (0..512).map(|k| ((k as u32 * 2654435761u32.wrapping_mul(i + 1)) >> 16) as f32 / 65536.0 - 0.5).collect();
        if let Some(e) = Embedding::from_raw(v) {
            gallery.push(TemplateRef { template_id: i, person_id: i, name: String::new() }, &e);
        }
    }
    let probe = Embedding::from_raw((0..512).map(|k| (k as f32).sin()).collect()).expect("non-zero");
    c.bench_function("identify/10k", |b| b.iter(|| gallery.identify(&probe)));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = stages
}
criterion_main!(benches);
