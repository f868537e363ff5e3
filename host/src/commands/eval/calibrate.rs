//! `facegate eval calibrate`: fits the score calibration on several photo sources and checks,
//! source by source, that its FAR promise holds on a source it was not fitted on.

use crate::batch;
use crate::derive::Derive;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::calibration::{upper_bound, SourceScores};
use facegate_engine::{metrics, Calibration, Embedding, Engine, QualityGate};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// FAR targets the leave-one-out check reports.
pub const TARGETS: [f64; 4] = [1e-2, 1e-3, 1e-4, 1e-5];
/// A left-out source tests a target only with at least this many impostor pairs per expected
/// false accept (fewer and the measured rate is noise).
pub const MIN_EXPECTED_ACCEPTS: f64 = 10.0;
/// Most different-person pairs kept per source (a deterministic sample).
pub const MAX_IMPOSTORS: usize = 4_000_000;

/// `NAME=DIR` or `NAME=DIR@DERIVATION`.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: String,
    pub root: PathBuf,
    pub derive: Option<Derive>,
}

impl FromStr for SourceSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<SourceSpec> {
        let (name, rest) = s.split_once('=').with_context(|| format!("{s:?}: expected NAME=DIR[@DERIVATION]"))?;
        let (root, derive) = match rest.rsplit_once('@') {
            Some((root, d)) => (root, Some(d.parse()?)),
            None => (rest, None),
        };
        if name.is_empty() || root.is_empty() {
            bail!("{s:?}: expected NAME=DIR[@DERIVATION]");
        }
        Ok(SourceSpec { name: name.to_owned(), root: root.into(), derive })
    }
}

#[derive(Debug, Args)]
pub struct EvalCalibrateArgs {
    /// A source of `<person>/<photo>` images: NAME=DIR, or NAME=DIR@DERIVATION (see `eval faces
    /// --derive`). Repeat for each source.
    #[arg(long = "source", required = true)]
    pub sources: Vec<SourceSpec>,
    /// At most this many images per source: whole people, taken evenly through the list.
    #[arg(long)]
    pub max_images: Option<usize>,
    /// The factor the promised FAR carries over the sources' worst upper bound.
    #[arg(long, default_value_t = 1.0)]
    pub far_margin: f64,
    /// Write the fitted calibration here (TOML), e.g. models/calibration-int8.toml.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep each source's scores here and reuse them on the next run (refitting with another
    /// margin then takes seconds). Keyed by model, source name and derivation.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceReport {
    pub name: String,
    pub images: usize,
    /// Faces the door's quality gate accepts (the others are left out, as a door refuses them).
    pub usable: usize,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
}

/// One target on a left-out source.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Holdout {
    pub left_out: String,
    pub far_target: f64,
    pub threshold: f32,
    /// Measured FAR on the left-out source / target; `None` when it has too few pairs.
    pub ratio: Option<f64>,
    /// One-sided 95% upper bound of that ratio.
    pub ratio_upper: Option<f64>,
    pub frr: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CalibrateReport {
    pub model: String,
    pub far_margin: f64,
    pub sources: Vec<SourceReport>,
    /// Threshold for each of [`TARGETS`] on all sources.
    pub thresholds: Vec<(f64, f32)>,
    /// Fitted on all sources but one, measured on that one.
    pub leave_one_out: Vec<Holdout>,
    /// The same check for a table fitted on the first source alone with no margin (how the
    /// calibration used to be made).
    pub first_source_only: Vec<Holdout>,
    pub second_look: Option<[f32; 2]>,
}

pub fn run(engine: &Engine, args: &EvalCalibrateArgs) -> Result<CalibrateReport> {
    let threads = super::threads(args.threads);
    let mut scores = Vec::new();
    let mut reports = Vec::new();
    for spec in &args.sources {
        let cached = args.cache.as_ref().map(|dir| cache_path(dir, engine, spec, args.max_images));
        let (s, r) = match cached.as_ref().and_then(|p| read_cache(p, &spec.name)) {
            Some(hit) => hit,
            None => {
                let fresh = source_scores(engine, spec, args.max_images, threads)?;
                if let Some(path) = &cached {
                    write_cache(path, &fresh).with_context(|| format!("writing {}", path.display()))?;
                }
                fresh
            }
        };
        eprintln!(
            "{}: {} of {} images usable, {} genuine / {} impostor pairs",
            r.name, r.usable, r.images, r.genuine_pairs, r.impostor_pairs
        );
        scores.push(s);
        reports.push(r);
    }
    let names: Vec<&str> = args.sources.iter().map(|s| s.name.as_str()).collect();
    let description = format!("sources {} (identity = folder, faces the door gate accepts)", names.join(", "));
    let cal = Calibration::fit_sources(&scores, args.far_margin, &engine.embedding_id, &description);
    let mut leave_one_out = Vec::new();
    let mut first_source_only = Vec::new();
    for (i, held) in scores.iter().enumerate() {
        if scores.len() > 1 {
            let rest: Vec<SourceScores> =
                scores.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s.clone()).collect();
            let fitted = Calibration::fit_sources(&rest, args.far_margin, &engine.embedding_id, "");
            leave_one_out.extend(holdout(&fitted, held));
        }
        if i > 0 {
            let first = Calibration::fit_sources(&scores[..1], 1.0, &engine.embedding_id, "");
            first_source_only.extend(holdout(&first, held));
        }
    }
    if let Some(path) = &args.out {
        std::fs::write(path, cal.to_toml()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(CalibrateReport {
        model: engine.embedding_id.clone(),
        far_margin: args.far_margin,
        sources: reports,
        thresholds: TARGETS.iter().map(|&f| (f, cal.threshold_for_far(f))).collect(),
        leave_one_out,
        first_source_only,
        second_look: cal.second_look,
    })
}

fn cache_path(dir: &Path, engine: &Engine, spec: &SourceSpec, max_images: Option<usize>) -> PathBuf {
    let derive = spec.derive.map(|d| format!("@{d}")).unwrap_or_default();
    let limit = max_images.map(|m| format!("#{m}")).unwrap_or_default();
    let key = format!("{}-{}{derive}{limit}", engine.embedding_id, spec.name);
    dir.join(format!("{}.json", key.replace(['/', ':'], "_")))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    images: usize,
    usable: usize,
    genuine: Vec<f32>,
    impostor: Vec<f32>,
}

fn read_cache(path: &Path, name: &str) -> Option<(SourceScores, SourceReport)> {
    let c: Cached = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let name = name.to_owned();
    let report = SourceReport {
        name: name.clone(),
        images: c.images,
        usable: c.usable,
        genuine_pairs: c.genuine.len(),
        impostor_pairs: c.impostor.len(),
    };
    Some((SourceScores { name, genuine: c.genuine, impostor: c.impostor }, report))
}

fn write_cache(path: &Path, (s, r): &(SourceScores, SourceReport)) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let c = Cached { images: r.images, usable: r.usable, genuine: s.genuine.clone(), impostor: s.impostor.clone() };
    std::fs::write(path, serde_json::to_vec(&c)?)?;
    Ok(())
}

/// The table's thresholds measured on `held`.
fn holdout(cal: &Calibration, held: &SourceScores) -> Vec<Holdout> {
    let (g, im) = (metrics::sorted(&held.genuine), metrics::sorted(&held.impostor));
    TARGETS
        .iter()
        .map(|&target| {
            let t = cal.threshold_for_far(target);
            let k = metrics::count_at_or_above(&im, t);
            let enough = im.len() as f64 * target >= MIN_EXPECTED_ACCEPTS;
            Holdout {
                left_out: held.name.clone(),
                far_target: target,
                threshold: t,
                ratio: enough.then(|| k as f64 / im.len() as f64 / target),
                ratio_upper: enough.then(|| upper_bound(k, im.len()) / target),
                frr: 1.0 - metrics::rate_at_or_above(&g, t),
            }
        })
        .collect()
}

/// Every usable face of the source embedded; genuine = same folder, impostor = different.
fn source_scores(
    engine: &Engine,
    spec: &SourceSpec,
    max_images: Option<usize>,
    threads: usize,
) -> Result<(SourceScores, SourceReport)> {
    let paths = super::photos(&spec.root, max_images).with_context(|| format!("listing {}", spec.root.display()))?;
    if paths.is_empty() {
        bail!("{} holds no <person>/<photo> images", spec.root.display());
    }
    let done = batch::run_files(engine, &spec.root, &paths, threads, spec.derive, &spec.name, |img| {
        let face = engine.process(img, facegate_engine::FacePolicy::Subject, &QualityGate::VERIFY)?;
        Ok(face.embedding)
    });
    let usable: Vec<(&Path, &Embedding)> = done
        .iter()
        .filter_map(|d| d.result.as_ref().ok().map(|e| (d.path.parent().unwrap_or(Path::new("")), e)))
        .collect();
    let (genuine, impostor) = all_pairs(&usable);
    let report = SourceReport {
        name: spec.name.clone(),
        images: paths.len(),
        usable: usable.len(),
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
    };
    Ok((SourceScores { name: spec.name.clone(), genuine, impostor }, report))
}

/// Scores of every same-identity pair and of a deterministic sample of at most
/// [`MAX_IMPOSTORS`] different-identity pairs.
pub fn all_pairs(faces: &[(&Path, &Embedding)]) -> (Vec<f32>, Vec<f32>) {
    let total = faces.len() * faces.len().saturating_sub(1) / 2;
    let stride = total.div_ceil(MAX_IMPOSTORS).max(1);
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    let mut k = 0usize;
    for i in 0..faces.len() {
        for j in i + 1..faces.len() {
            k += 1;
            if faces[i].0 == faces[j].0 {
                genuine.push(faces[i].1.cosine(faces[j].1));
            } else if k.is_multiple_of(stride) {
                impostor.push(faces[i].1.cosine(faces[j].1));
            }
        }
    }
    (genuine, impostor)
}

pub fn print(report: &CalibrateReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!("model {}  margin {}", report.model, report.far_margin);
    for s in &report.sources {
        println!(
            "  {:<14} {:>6} images, {:>6} usable, {:>8} genuine, {:>9} impostor pairs",
            s.name, s.images, s.usable, s.genuine_pairs, s.impostor_pairs
        );
    }
    for (far, t) in &report.thresholds {
        println!("  FAR {far:.0e}: threshold {t:.4}");
    }
    for (title, rows) in [("left out", &report.leave_one_out), ("first source only", &report.first_source_only)] {
        println!("{title}: measured FAR / target (95% upper), FRR");
        for h in rows.iter() {
            let ratio = h.ratio.map_or("   -".into(), |r| format!("{r:5.2} ({:5.2})", h.ratio_upper.unwrap_or(0.0)));
            println!(
                "  {:<14} {:.0e}  t {:.4}  {ratio}  FRR {:.2}%",
                h.left_out,
                h.far_target,
                h.threshold,
                h.frr * 100.0
            );
        }
    }
    Ok(())
}
