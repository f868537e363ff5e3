//! `facegate bench`: per-stage latency of the engine against the onnxruntime reference,
//! measured in the same invocation on the same images, so the ratio survives a noisy machine.

use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_device::engine::embed::Embedder;
use facegate_device::engine::matcher::{Gallery, TemplateRef};
use facegate_device::engine::model::Net;
use facegate_device::engine::{align, image_io, landmarks, Embedding, Engine, EngineConfig};
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Face data folder holding lfw/ (default: $FACEGATE_DATA or ../shared/faces).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Timed runs per stage (images are cycled).
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Skip the onnxruntime reference.
    #[arg(long)]
    pub no_ort: bool,
    /// Python with onnxruntime for the reference (default: models/.work/venv, then python3).
    #[arg(long, env = "FACEGATE_PYTHON")]
    pub python: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Profile every network node by node instead (where tract spends its time).
    #[arg(long, conflicts_with = "kiosk")]
    pub profile: bool,
    /// With --profile: profile this ONNX file instead of the manifest's (no hash check; for
    /// trying graph rewrites).
    #[arg(long, requires = "profile")]
    pub onnx: Option<PathBuf>,
    /// With --onnx: its input shape, e.g. 1,3,112,112.
    #[arg(long, requires = "onnx", value_delimiter = ',')]
    pub shape: Vec<usize>,
    /// Benchmark the device's kiosk loop instead (frames per second, decision latency).
    #[arg(long)]
    pub kiosk: bool,
}

/// Median and 95th percentile of millisecond samples.
fn stats(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (q(0.5), q(0.95))
}

fn time<T>(samples: &mut Vec<f64>, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    samples.push(start.elapsed().as_secs_f64() * 1e3);
    out
}

pub fn data_dir(args: &BenchArgs) -> PathBuf {
    args.data.clone().unwrap_or_else(crate::default_data_dir)
}

/// Peak resident memory of this process, from the kernel.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn random_gallery(n: usize, seed: u64) -> (Gallery, Embedding) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut unit = || {
        let v: Vec<f32> = (0..512).map(|_| (0..4).map(|_| rng.gen::<f32>() - 0.5).sum()).collect();
        Embedding::from_raw(v)
    };
    let mut g = Gallery::new();
    for i in 0..n {
        if let Some(e) = unit() {
            g.push(TemplateRef { template_id: i as u32, person_id: i as u32, name: String::new() }, &e);
        }
    }
    // A sum of uniforms is never the zero vector in practice; fall back to a fixed one.
    let probe = unit().or_else(|| Embedding::from_raw(vec![1.0; 512]));
    (g, probe.expect("a constant vector normalises"))
}

pub fn run(config: &EngineConfig, args: &BenchArgs) -> Result<Value> {
    let lfw = data_dir(args).join("lfw");
    let list_path = config.models_dir.join("reference/conformance_list.txt");
    let list: Vec<PathBuf> = std::fs::read_to_string(&list_path)
        .with_context(|| format!("reading the bench image list {}", list_path.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .collect();
    if !lfw.join(&list[0]).is_file() {
        bail!("bench images not found under {} (pass --data DIR holding lfw/)", lfw.display());
    }
    let engine = Engine::load(&EngineConfig { flip: false, ..config.clone() })?;

    let mut decode_ms = Vec::new();
    let images = list
        .iter()
        .map(|p| time(&mut decode_ms, || image_io::load_image(&lfw.join(p))))
        .collect::<Result<Vec<_>, _>>()?;

    // Warm up caches and lazy allocations before timing.
    for img in images.iter().take(3) {
        let faces = engine.detect(img)?;
        if let Some(f) = faces.first() {
            let o = engine.observe(img, f)?;
            engine.embedder.embed(&o.aligned)?;
        }
    }
    let (mut detect_ms, mut landmark_ms, mut align_ms, mut embed_ms, mut pipeline_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut crops = Vec::new();
    for k in 0..args.runs {
        let img = &images[k % images.len()];
        let start = Instant::now();
        let faces = time(&mut detect_ms, || engine.detect(img))?;
        let Some(subject) =
            facegate_device::engine::detect::choose_subject(&faces, img.width() as f32, img.height() as f32)
        else {
            continue;
        };
        let pts = time(&mut landmark_ms, || engine.landmarks.landmarks(img, &faces[subject]))?;
        let aligned = time(&mut align_ms, || landmarks::five_points(&pts).and_then(|f| align::align(img, &f)));
        let Some((crop, _)) = aligned else { continue };
        time(&mut embed_ms, || engine.embedder.embed(&crop))?;
        pipeline_ms.push(start.elapsed().as_secs_f64() * 1e3);
        if crops.len() < images.len() {
            crops.push(crop);
        }
    }

    // Every embedding variant in the manifest, on the same crops.
    let mut variants = Map::new();
    let mut variants_p95 = Map::new();
    for entry in engine.manifest.variants("embed") {
        let net = Net::from_manifest(&engine.manifest, entry, &[1, 3, 112, 112], config.kernels)?;
        let embedder = Embedder::new(net, false);
        for c in crops.iter().take(3) {
            embedder.embed(c)?;
        }
        let mut ms = Vec::new();
        for k in 0..args.runs {
            time(&mut ms, || embedder.embed(&crops[k % crops.len()]))?;
        }
        let (median, p95) = stats(&mut ms);
        variants.insert(entry.variant.clone(), json!(median));
        variants_p95.insert(entry.variant.clone(), json!(p95));
    }

    let mut match_10k = Vec::new();
    let (g10k, probe) = random_gallery(10_000, 1);
    for _ in 0..50 {
        time(&mut match_10k, || g10k.identify(&probe));
    }
    drop(g10k);
    let mut match_100k = Vec::new();
    let (g100k, probe) = random_gallery(100_000, 2);
    for _ in 0..30 {
        time(&mut match_100k, || g100k.identify(&probe));
    }
    drop(g100k);

    let (pipeline, pipeline_p95) = stats(&mut pipeline_ms);
    let mut out = json!({
        "images": images.len(),
        "runs": pipeline_ms.len(),
        "embed_variant": engine.embed_variant,
        "pipeline_ms": pipeline,
        "pipeline_p95_ms": pipeline_p95,
        "decode_ms": stats(&mut decode_ms).0,
        "detect_ms": stats(&mut detect_ms).0,
        "landmark_ms": stats(&mut landmark_ms).0,
        "align_ms": stats(&mut align_ms).0,
        "embed_shipped_ms": stats(&mut embed_ms).0,
        "embed_ms": variants,
        "embed_p95_ms": variants_p95,
        "match_10k_ms": stats(&mut match_10k).0,
        "identify_100k_ms": stats(&mut match_100k).0,
        "rss_mb": peak_rss_mb(),
        "dlib_face_recognition_ms": 125.0,
        "speedup_vs_dlib": 125.0 / pipeline,
    });
    if !args.no_ort {
        let ort = ort_reference(config, args, &lfw, &list_path, &engine)?;
        let ort_pipeline = ort.get("pipeline_ms").and_then(Value::as_f64);
        out["ort_pipeline_ms"] = json!(ort_pipeline);
        out["ratio_vs_ort"] = json!(ort_pipeline.map(|o| pipeline / o));
        out["ort"] = ort;
    }
    Ok(out)
}

fn python(config: &EngineConfig, args: &BenchArgs) -> PathBuf {
    if let Some(p) = &args.python {
        return p.clone();
    }
    let venv = config.models_dir.join(".work/venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Runs `models/reference/pipeline.py bench` on the same images and returns its JSON.
fn ort_reference(config: &EngineConfig, args: &BenchArgs, lfw: &Path, list: &Path, engine: &Engine) -> Result<Value> {
    let py = python(config, args);
    let script = config.models_dir.join("reference/pipeline.py");
    let mut cmd = Command::new(&py);
    cmd.arg(&script)
        .arg("--models")
        .arg(&config.models_dir)
        .args(["bench", "--threads", "1", "--json", "--runs", &args.runs.to_string()])
        .arg("--images")
        .arg(list)
        .arg("--root")
        .arg(lfw);
    let shipped = engine.manifest.find("embed", Some(&engine.embed_variant))?;
    cmd.arg("--model").arg(engine.manifest.path_of(shipped));
    for entry in engine.manifest.variants("embed") {
        cmd.arg("--embed").arg(format!("{}={}", entry.variant, engine.manifest.path_of(entry).display()));
    }
    let output = cmd.output().with_context(|| format!("running {} {}", py.display(), script.display()))?;
    if !output.status.success() {
        bail!(
            "onnxruntime reference failed (python {}; run models/rebuild.sh to create its venv, or pass --no-ort): {}",
            py.display(),
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("")
        );
    }
    serde_json::from_slice(&output.stdout).context("parsing the reference's JSON")
}

pub fn print(v: &Value, json: bool) {
    if json {
        println!("{v}");
        return;
    }
    let f = |k: &str| v.get(k).and_then(Value::as_f64).map_or("-".to_owned(), |x| format!("{x:.2}"));
    println!("per-face median latency, one core ({} runs over {} images)", v["runs"], v["images"]);
    println!("  decode     {} ms", f("decode_ms"));
    println!("  detect     {} ms   (onnxruntime {})", f("detect_ms"), v["ort"]["detect_ms"]);
    println!("  landmarks  {} ms   (onnxruntime {})", f("landmark_ms"), v["ort"]["landmark_ms"]);
    println!("  align      {} ms   (onnxruntime {})", f("align_ms"), v["ort"]["align_ms"]);
    println!("  embed      {} ms   [{}]", f("embed_shipped_ms"), v["embed_variant"]);
    for (name, ms) in v["embed_ms"].as_object().into_iter().flatten() {
        println!("    {name:<8} {ms:.2} ms   (onnxruntime {})", v["ort"]["embed_variants"][name]);
    }
    println!("  pipeline   {} ms   p95 {} ms", f("pipeline_ms"), f("pipeline_p95_ms"));
    println!("  onnxruntime pipeline {} ms   ratio tract/ort {}", f("ort_pipeline_ms"), f("ratio_vs_ort"));
    println!("  vs dlib face_recognition (125 ms): {}x faster", f("speedup_vs_dlib"));
    println!("  identify 1:10k {} ms, 1:100k {} ms", f("match_10k_ms"), f("identify_100k_ms"));
    println!("  peak RSS {} MB", f("rss_mb"));
}
