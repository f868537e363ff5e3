//! `facegate-device bench`: the kiosk loop's throughput and decision latency on LFW visits,
//! against the naive loop (full pipeline on every frame) measured in the same run.

use crate::audit_log::AuditLog;
use crate::kiosk::summary::Summary;
use crate::kiosk::{self, Kiosk};
use crate::state::{Core, Identity, Settings};
use crate::store::TemplateStore;
use anyhow::{bail, Context, Result};
use facegate_engine::dataset::people;
use facegate_engine::source::{empty_frame, visit_frames, SyntheticSource};
use facegate_engine::{image_io, Engine, FacePolicy, QualityGate};
use facegate_proto::{bounded_str, Capabilities, Embedding, Template, EMBEDDING_DIM};
use image::RgbImage;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ENROLLED: usize = 20;
const STRANGERS: usize = 10;

pub fn run(engine: &Engine, lfw: &Path) -> Result<Value> {
    let people: Vec<Vec<std::path::PathBuf>> = people(lfw, 2)
        .with_context(|| format!("reading {}", lfw.display()))?
        .into_iter()
        .map(|(_, photos)| photos)
        .collect();
    if people.len() < ENROLLED + STRANGERS {
        bail!("{} has too few people with two photos", lfw.display());
    }
    let step = people.len() / (ENROLLED + STRANGERS);
    let work = std::env::temp_dir().join(format!("facegate-bench-kiosk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let mut store = TemplateStore::open(&work.join("store"), &engine.embedding_id)?;
    let mut frames: Vec<RgbImage> = Vec::new();
    let mut visits = 0;
    for i in 0..ENROLLED + STRANGERS {
        let photos = &people[i * step];
        if i < ENROLLED {
            let Ok(face) = engine.process_file(&photos[0], FacePolicy::Single, &QualityGate::NONE) else { continue };
            // As `facegate enroll` makes templates: with the mirror image.
            let template = engine.embed_with_mirror(&face.observation, &face.embedding)?;
            let v: [f32; EMBEDDING_DIM] = template.as_slice().try_into().context("512-d embedding")?;
            store.upsert(Template {
                id: i as u32 + 1,
                person_id: i as u32 + 1,
                display_name: bounded_str(&format!("person {i}")),
                model_id: bounded_str(&engine.embedding_id),
                embedding: Embedding::quantize(&v),
            })?;
        }
        let img = image_io::load_image(&photos[1])?;
        frames.extend(visit_frames(&img));
        frames.extend((0..3).map(|_| empty_frame(img.width(), img.height())));
        visits += 1;
    }
    let audit = AuditLog::open(&work.join("audit.log"))?;
    let identity = Identity {
        device_id: "bench".into(),
        model_id: engine.embedding_id.clone(),
        capabilities: Capabilities::NONE,
        identify: true,
    };
    let settings =
        Settings { consensus_required: 2, consensus_window: 3, lockout_max_failures: 0, ..Settings::default() };
    let core = Arc::new(Core::new(identity, engine.calibration.clone(), store, audit, settings)?);

    // Baseline: the naive loop, the whole pipeline and the match (with the same second look
    // when too close to call) on every frame.
    let gallery = core.gallery();
    let t = Instant::now();
    for f in &frames {
        if let Ok(face) = engine.process(f, FacePolicy::Subject, &QualityGate::VERIFY) {
            let best = gallery.identify(&face.embedding).map_or(-1.0, |c| c.score);
            if engine.needs_second_look(best) {
                let steadier = engine.embed_with_mirror(&face.observation, &face.embedding)?;
                let _ = gallery.identify(&steadier);
            }
        }
    }
    let naive = t.elapsed();
    drop(gallery);

    let n = frames.len() as u64;
    let replay = frames.clone();
    let source = SyntheticSource::new(n, Duration::from_millis(100), move |i| replay[i as usize].clone());
    let stats = Kiosk::new(engine, core, kiosk::default_options(), None)?.run(Box::new(source))?;
    let s = Summary::of(&stats);
    let _ = std::fs::remove_dir_all(&work);
    let naive_ms = naive.as_secs_f64() * 1e3 / n as f64;
    let kiosk_ms = stats.busy.as_secs_f64() * 1e3 / n as f64;
    Ok(json!({
        "frames": s.frames,
        "visits": visits,
        "embedded": s.embedded,
        "second_looks": s.second_looks,
        "decisions": stats.decisions.len(),
        "fps_capacity": s.fps_capacity,
        "frame_ms": kiosk_ms,
        "naive_frame_ms": naive_ms,
        "ratio_vs_naive": kiosk_ms / naive_ms,
        "decision_ms_median": s.decision_ms_median,
        "decision_ms_p95": s.decision_ms_p95,
        "visit_ms_median": s.visit_ms_median,
        "visit_ms_p95": s.visit_ms_p95,
        "granted": s.granted,
        "unknown": s.unknown,
    }))
}

pub fn print(v: &Value, json_out: bool) {
    if json_out {
        println!("{v}");
        return;
    }
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!("kiosk loop, {} frames of {} visits (one core):", v["frames"], v["visits"]);
    println!(
        "  {:.1} fps capacity ({:.1} ms a frame; {} embedded, {} second looks)",
        f("fps_capacity"),
        f("frame_ms"),
        v["embedded"],
        v["second_looks"]
    );
    println!(
        "  naive loop (whole pipeline every frame): {:.1} ms a frame -> kiosk/naive {:.2}",
        f("naive_frame_ms"),
        f("ratio_vs_naive")
    );
    println!(
        "  decision latency median {:.0} ms (p95 {:.0}); visit (first frame -> decision) median {:.0} ms (p95 {:.0})",
        f("decision_ms_median"),
        f("decision_ms_p95"),
        f("visit_ms_median"),
        f("visit_ms_p95")
    );
    println!("  decisions: {} granted, {} unknown", v["granted"], v["unknown"]);
}
