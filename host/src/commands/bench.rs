//! `facegate bench`: per-stage latency of the engine against the onnxruntime reference,
//! measured in the same invocation on the same images, so the ratio survives a noisy machine.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use facegate_engine::detect::FaceBox;
use facegate_engine::embed::random_unit;
use facegate_engine::embed::Embedder;
use facegate_engine::kernels::Kernels;
use facegate_engine::matcher::{Gallery, TemplateRef};
use facegate_engine::model::Net;
use facegate_engine::{align, image_io, landmarks, Embedding, Engine, EngineConfig, Search};
use rand::SeedableRng;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// `facegate bench [stages|profile]`: without a subcommand, `stages`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCommand {
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
    #[command(flatten)]
    pub stages: BenchArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchMode {
    /// Per-stage latency against tract's operators alone and onnxruntime, in one run (the default).
    #[command(after_help = "Example:\n  facegate bench stages --data ../shared/faces --json")]
    Stages(BenchArgs),
    /// Time per network node, as tract runs the optimised plan (where the time goes).
    #[command(after_help = "Example:\n  facegate bench profile --tract-kernels")]
    Profile(super::profile::ProfileArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Face data folder holding lfw/ (default: $FACEGATE_DATA or ../shared/faces).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Time on your own photos instead (a folder of face photos, e.g. on a board): every
    /// image under it, without the onnxruntime reference (which reads LFW's list).
    #[arg(long, conflicts_with = "data")]
    pub images: Option<PathBuf>,
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
}

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
    args.data.clone().unwrap_or_else(facegate_engine::dataset::default_data_dir)
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
    let mut unit = || Embedding::from_raw(random_unit(&mut rng)).expect("a unit vector normalises");
    let mut g = Gallery::new();
    for i in 0..n {
        g.push(TemplateRef { template_id: i as u32, person_id: i as u32, name: String::new() }, &unit());
    }
    (g, unit())
}

/// The images timed: the reference's LFW list, or every image under `--images`.
fn bench_images(config: &EngineConfig, args: &BenchArgs) -> Result<(PathBuf, Vec<PathBuf>)> {
    if let Some(dir) = &args.images {
        let people = facegate_engine::dataset::people(dir, 1).with_context(|| format!("listing {}", dir.display()))?;
        let mut list: Vec<PathBuf> = people.into_iter().flat_map(|(_, p)| p).collect();
        if list.is_empty() {
            // A flat folder of photos.
            list = std::fs::read_dir(dir)
                .with_context(|| format!("listing {}", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| facegate_engine::dataset::is_photo(p))
                .collect();
            list.sort();
        }
        if list.is_empty() {
            bail!("no images under {}", dir.display());
        }
        return Ok((PathBuf::new(), list));
    }
    let lfw = data_dir(args).join("lfw");
    let list_path = config.models_dir.join(REFERENCE_LIST);
    let list: Vec<PathBuf> = std::fs::read_to_string(&list_path)
        .with_context(|| format!("reading the bench image list {} (or pass --images DIR)", list_path.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .collect();
    if list.first().is_none_or(|first| !lfw.join(first).is_file()) {
        bail!(
            "bench images not found under {} (pass --data DIR holding lfw/, or --images DIR of your photos)",
            lfw.display()
        );
    }
    Ok((lfw, list))
}

/// The LFW images the onnxruntime reference and our bench share.
const REFERENCE_LIST: &str = "reference/conformance_list.txt";

pub fn run(config: &EngineConfig, args: &BenchArgs) -> Result<Value> {
    let (lfw, list) = bench_images(config, args)?;
    let list_path = config.models_dir.join(REFERENCE_LIST);
    let engine = Engine::load(&EngineConfig { flip: false, ..config.clone() })?;

    let mut decode_ms = Vec::new();
    let images = list
        .iter()
        .map(|p| time(&mut decode_ms, || image_io::load_image(&lfw.join(p))))
        .collect::<Result<Vec<_>, _>>()?;

    let own = stage_times(&engine, &images, args.runs)?;
    let crops = &own.crops;
    // The same pipeline with tract's operators only, same images, same run: what our own
    // depthwise/PReLU/softmax operators buy (see engine::kernels).
    let tract_engine = Engine::load(&EngineConfig { flip: false, kernels: Kernels::Tract, ..config.clone() })?;
    let mut tract_only = stage_times(&tract_engine, &images, args.runs)?;
    let liveness = liveness_cost(&engine, &tract_engine, &images, args.runs)?;
    drop(tract_engine);

    // Every embedding variant in the manifest, on the same crops.
    let mut variants = Map::new();
    let mut variants_p95 = Map::new();
    let mut variants_tract = Map::new();
    for entry in engine.manifest.variants("embed") {
        for kernels in [Kernels::Own, Kernels::Tract] {
            let net = Net::from_manifest(&engine.manifest, entry, kernels)?;
            let embedder = Embedder::new(net, false);
            for c in crops.iter().take(3) {
                embedder.embed(c)?;
            }
            let mut ms = Vec::new();
            for k in 0..args.runs {
                time(&mut ms, || embedder.embed(&crops[k % crops.len()]))?;
            }
            let (median, p95) = stats(&mut ms);
            if kernels == Kernels::Own {
                variants.insert(entry.variant.clone(), json!(median));
                variants_p95.insert(entry.variant.clone(), json!(p95));
            } else {
                variants_tract.insert(entry.variant.clone(), json!(median));
            }
        }
    }

    // The second look that probes too close to call get: the mirror image's pass, added to
    // the one-pass embedding they already have.
    let singles = crops.iter().map(|c| engine.embedder.embed(c)).collect::<Result<Vec<_>, _>>()?;
    let mut second_look = Vec::new();
    for k in 0..args.runs {
        let i = k % crops.len();
        time(&mut second_look, || engine.embedder.with_mirror(&crops[i], &singles[i]))?;
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

    let search = search_cost(config, &images, args.runs)?;

    let mut own = own;
    let (pipeline, pipeline_p95) = stats(&mut own.pipeline);
    let tract_pipeline = stats(&mut tract_only.pipeline).0;
    let mut out = json!({
        "images": images.len(),
        "runs": own.pipeline.len(),
        "embed_variant": engine.embed_variant,
        "pipeline_ms": pipeline,
        "pipeline_p95_ms": pipeline_p95,
        "decode_ms": stats(&mut decode_ms).0,
        "detect_ms": stats(&mut own.detect).0,
        "landmark_ms": stats(&mut own.landmark).0,
        "align_ms": stats(&mut own.align).0,
        "embed_shipped_ms": stats(&mut own.embed).0,
        "embed_ms": variants,
        "second_look_ms": stats(&mut second_look).0,
        "embed_p95_ms": variants_p95,
        "tract_only": {
            "pipeline_ms": tract_pipeline,
            "detect_ms": stats(&mut tract_only.detect).0,
            "landmark_ms": stats(&mut tract_only.landmark).0,
            "embed_ms": variants_tract,
        },
        "speedup_vs_tract_only": tract_pipeline / pipeline,
        "match_10k_ms": stats(&mut match_10k).0,
        "identify_100k_ms": stats(&mut match_100k).0,
        "rss_mb": peak_rss_mb(),
        "dlib_face_recognition_ms": 125.0,
        "speedup_vs_dlib": 125.0 / pipeline,
        "search": search,
        "liveness": liveness,
    });
    if let Some(ms) = out["liveness"]["ms"].as_f64() {
        out["liveness"]["ratio_to_pipeline"] = json!(ms / pipeline);
    }
    // The reference needs Python with onnxruntime, which a board rarely has: without it the
    // column is empty and the report says why.
    let ort = match (args.no_ort, &args.images) {
        (true, _) => Err("--no-ort".to_owned()),
        (false, Some(_)) => Err("the reference times LFW's list, not --images".to_owned()),
        (false, None) => ort_reference(config, args, &lfw, &list_path, &engine).map_err(|e| format!("{e:#}")),
    };
    match ort {
        Ok(ort) => {
            let ort_pipeline = ort.get("pipeline_ms").and_then(Value::as_f64);
            out["ort_pipeline_ms"] = json!(ort_pipeline);
            out["ratio_vs_ort"] = json!(ort_pipeline.map(|o| pipeline / o));
            out["ort"] = ort;
        }
        Err(why) => out["ort_skipped"] = json!(why),
    }
    Ok(out)
}

/// What the door camera's fallback passes cost per frame against the plain pass alone, in the
/// same run: on frames with a face (the common case: no fallback runs), on an empty frame and
/// on an empty dark frame (where they do).
fn search_cost(config: &EngineConfig, faces: &[image::RgbImage], runs: usize) -> Result<Value> {
    let plain = Engine::load(&EngineConfig { search: Search::Plain, ..config.clone() })?;
    let frame = Engine::load(&EngineConfig { search: Search::Frame, ..config.clone() })?;
    let empty = [image::RgbImage::from_pixel(640, 480, image::Rgb([150, 140, 130]))];
    let dark = [image::RgbImage::from_pixel(640, 480, image::Rgb([20, 18, 16]))];
    let mut out = Map::new();
    for (name, set) in [("face", faces), ("empty", &empty[..]), ("dark_empty", &dark[..])] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for k in 0..runs.max(2) {
            let img = &set[k % set.len()];
            time(&mut a, || plain.detect(img))?;
            time(&mut b, || frame.detect(img))?;
        }
        let (pa, fb) = (stats(&mut a).0, stats(&mut b).0);
        out.insert(name.into(), json!({"plain_ms": pa, "door_ms": fb, "ratio": fb / pa}));
    }
    Ok(Value::Object(out))
}

/// The shipped liveness check per face (models/liveness.toml), with our operators and with
/// tract's alone, in the same run.
fn liveness_cost(engine: &Engine, tract_engine: &Engine, images: &[image::RgbImage], runs: usize) -> Result<Value> {
    let faces: Vec<(usize, FaceBox)> = images
        .iter()
        .enumerate()
        .filter_map(|(i, img)| engine.detect(img).ok()?.into_iter().next().map(|f| (i, f)))
        .collect();
    if faces.is_empty() {
        bail!("no face found in the bench images");
    }
    let mut out = Map::new();
    for (key, e) in [("ms", engine), ("tract_only_ms", tract_engine)] {
        let check = e.load_liveness()?;
        out.insert("nets".into(), json!(check.name()));
        for (i, face) in faces.iter().take(3) {
            check.score(&images[*i], face)?;
        }
        let mut ms = Vec::new();
        for k in 0..runs.max(2) {
            let (i, face) = &faces[k % faces.len()];
            time(&mut ms, || check.score(&images[*i], face))?;
        }
        out.insert(key.into(), json!(stats(&mut ms).0));
    }
    Ok(Value::Object(out))
}

/// Per-stage samples of the whole per-face pipeline over `runs` images (cycled), and the
/// aligned crops of the first pass over the images.
struct StageTimes {
    detect: Vec<f64>,
    landmark: Vec<f64>,
    align: Vec<f64>,
    embed: Vec<f64>,
    pipeline: Vec<f64>,
    crops: Vec<image::RgbImage>,
}

fn stage_times(engine: &Engine, images: &[image::RgbImage], runs: usize) -> Result<StageTimes> {
    // Warm up caches and lazy allocations before timing.
    for img in images.iter().take(3) {
        let faces = engine.detect(img)?;
        if let Some(f) = faces.first() {
            let o = engine.observe(img, f)?;
            engine.embedder.embed(&o.aligned)?;
        }
    }
    let mut t = StageTimes {
        detect: Vec::new(),
        landmark: Vec::new(),
        align: Vec::new(),
        embed: Vec::new(),
        pipeline: Vec::new(),
        crops: Vec::new(),
    };
    for k in 0..runs {
        let img = &images[k % images.len()];
        let start = Instant::now();
        let faces = time(&mut t.detect, || engine.detect(img))?;
        let Some(subject) = facegate_engine::detect::choose_subject(&faces, img.width() as f32, img.height() as f32)
        else {
            continue;
        };
        let pts = time(&mut t.landmark, || engine.landmarks.landmarks(img, &faces[subject]))?;
        let aligned = time(&mut t.align, || landmarks::five_points(&pts).and_then(|f| align::align(img, &f)));
        let Some((crop, _)) = aligned else { continue };
        time(&mut t.embed, || engine.embedder.embed(&crop))?;
        t.pipeline.push(start.elapsed().as_secs_f64() * 1e3);
        if t.crops.len() < images.len() {
            t.crops.push(crop);
        }
    }
    if t.crops.is_empty() {
        bail!("no face found in the bench images");
    }
    Ok(t)
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
    let num = |x: &Value| x.as_f64().map_or("-".to_owned(), |x| format!("{x:.2}"));
    let f = |k: &str| num(&v[k]);
    let ort = &v["ort"];
    let tract = &v["tract_only"];
    println!("per-face median latency in ms, one core ({} runs over {} images)", v["runs"], v["images"]);
    println!("  stage      facegate   tract alone   onnxruntime");
    println!("  decode     {:>8}", f("decode_ms"));
    println!("  detect     {:>8}   {:>11}   {:>11}", f("detect_ms"), num(&tract["detect_ms"]), num(&ort["detect_ms"]));
    println!(
        "  landmarks  {:>8}   {:>11}   {:>11}",
        f("landmark_ms"),
        num(&tract["landmark_ms"]),
        num(&ort["landmark_ms"])
    );
    println!("  align      {:>8}   {:>11}   {:>11}", f("align_ms"), "", num(&ort["align_ms"]));
    println!("  embed      {:>8}   {:>11}   {:>11}   [{}]", f("embed_shipped_ms"), "", "", v["embed_variant"]);
    for (name, ms) in v["embed_ms"].as_object().into_iter().flatten() {
        println!(
            "    {name:<8} {:>8}   {:>11}   {:>11}",
            num(ms),
            num(&tract["embed_ms"][name]),
            num(&ort["embed_variants"][name])
        );
    }
    println!(
        "  pipeline   {:>8}   {:>11}   {:>11}   (p95 {})",
        f("pipeline_ms"),
        num(&tract["pipeline_ms"]),
        f("ort_pipeline_ms"),
        f("pipeline_p95_ms")
    );
    println!(
        "  second look {} ms (crop + mirror image; only probes too close to call, ~5% of LFW pairs)",
        f("second_look_ms")
    );
    println!("  ratio vs onnxruntime {}   speed-up vs tract alone {}x", f("ratio_vs_ort"), f("speedup_vs_tract_only"));
    if let Some(why) = v["ort_skipped"].as_str() {
        println!("  (no onnxruntime column: {why})");
    }
    println!("  vs dlib face_recognition (125 ms): {}x faster", f("speedup_vs_dlib"));
    println!("  identify 1:10k {} ms, 1:100k {} ms", f("match_10k_ms"), f("identify_100k_ms"));
    println!("  peak RSS {} MB", f("rss_mb"));
    let s = &v["search"];
    println!(
        "  door detection against the plain pass: face {}x, empty frame {}x, dark empty frame {}x",
        num(&s["face"]["ratio"]),
        num(&s["empty"]["ratio"]),
        num(&s["dark_empty"]["ratio"])
    );
    let l = &v["liveness"];
    println!(
        "  liveness ({}) {} ms per face ({}x the pipeline; tract alone {} ms)",
        l["nets"].as_str().unwrap_or("-"),
        num(&l["ms"]),
        num(&l["ratio_to_pipeline"]),
        num(&l["tract_only_ms"])
    );
}
