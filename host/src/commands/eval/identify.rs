//! `facegate eval identify`: 1:N at a door. A one-shot gallery embedded as at enrolment,
//! probes as at the door, strangers among them; FRVT 1:N figures and the FPIR the kiosk's
//! default configuration achieves on this gallery.

use crate::batch;
use crate::report;
use crate::report::identify::{cmc, rates_at, Outcome, Probe};
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::calibration::per_comparison_far;
use facegate_engine::{Embedding, Engine, FacePolicy, QualityGate};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// FPIR targets `fnir_at_fpir` reports.
pub const FPIR_TARGETS: [f64; 2] = [1e-1, 1e-2];

#[derive(Debug, Args)]
pub struct EvalIdentifyArgs {
    /// Folder the lists' image paths are relative to.
    #[arg(long)]
    pub root: PathBuf,
    /// Enrolment photos: `identity<TAB>relative/path` lines (one-shot: one per identity).
    #[arg(long)]
    pub gallery: PathBuf,
    /// Door photos, same format; an identity with no gallery entry is a stranger.
    #[arg(long)]
    pub probes: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write a report here: index.html with the CMC curve, FNIR against FPIR, the score
    /// distributions and a gallery of the misses.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct IdentifyReport {
    pub model: String,
    /// Identities enrolled (their photo passed the enrolment gate).
    pub gallery: usize,
    /// Gallery photos refused at enrolment (their identities' probes are left out).
    pub gallery_refused: usize,
    pub probes: usize,
    pub strangers: usize,
    /// Probes with no usable face (an enrolled one counts as a miss, a stranger as no match).
    pub no_face: usize,
    /// Share of enrolled probes whose best match is the right identity (any score).
    pub rank1: f64,
    /// FNIR at the threshold where the measured FPIR first meets each target.
    pub fnir_at_fpir: BTreeMap<String, f64>,
    /// The kiosk's default identify setting and its per-comparison threshold for this gallery.
    pub fpir_target: f64,
    pub threshold_default: f32,
    /// Share of stranger probes (with a face) matched to someone at that threshold.
    pub fpir_default: f64,
    /// Share of enrolled probes not matched to themselves at that threshold.
    pub fnir_default: f64,
    /// False when the target needs a per-comparison rate beyond what the calibration vouches for.
    pub vouched: bool,
    pub ms_per_probe: f64,
}

/// `identity<TAB>path` lines (`#` comments and blank lines skipped).
pub fn load_list(path: &Path) -> Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((who, file)) = line.split_once('\t') else {
            bail!("{}:{}: expected identity<TAB>relative/path", path.display(), i + 1);
        };
        out.push((who.trim().to_owned(), PathBuf::from(file.trim())));
    }
    if out.is_empty() {
        bail!("{} lists no images", path.display());
    }
    Ok(out)
}

pub fn run(engine: &Engine, args: &EvalIdentifyArgs) -> Result<IdentifyReport> {
    let calibration = engine.calibration.as_ref().context("no calibration table for this model")?;
    let gallery_list = load_list(&args.gallery)?;
    let probe_list = load_list(&args.probes)?;
    let threads = super::threads(args.threads);
    // Enrolment: the strict gate, the template embedded with its mirror image.
    let paths: Vec<PathBuf> = gallery_list.iter().map(|(_, p)| p.clone()).collect();
    let enrolled = batch::run_files(engine, &args.root, &paths, threads, None, "enrolling", |img| {
        let face = engine.process(img, FacePolicy::Subject, &QualityGate::ENROL)?;
        engine.embed_with_mirror(&face.observation, &face.embedding)
    });
    let mut names: Vec<&str> = Vec::new();
    let mut templates: Vec<Embedding> = Vec::new();
    let mut listed: Vec<&str> = Vec::new();
    for ((who, _), done) in gallery_list.iter().zip(enrolled) {
        listed.push(who);
        if let Ok(e) = done.result {
            names.push(who);
            templates.push(e);
        }
    }
    if templates.is_empty() {
        bail!("no gallery photo passed enrolment");
    }
    // At the door: the door's gate, one pass, a second look when too close to call.
    let paths: Vec<PathBuf> = probe_list.iter().map(|(_, p)| p.clone()).collect();
    let best_score = |probe: &Embedding| templates.iter().map(|t| probe.cosine(t)).fold(f32::MIN, f32::max);
    let started = Instant::now();
    let probed = batch::run_files(engine, &args.root, &paths, threads, None, "probing", |img| {
        let face = engine.process(img, FacePolicy::Subject, &QualityGate::VERIFY)?;
        if engine.needs_second_look(best_score(&face.embedding)) {
            return engine.embed_with_mirror(&face.observation, &face.embedding);
        }
        Ok(face.embedding)
    });
    let ms_per_probe = started.elapsed().as_secs_f64() * 1e3 * threads as f64 / paths.len().max(1) as f64;
    // Probes of identities refused at enrolment are left out: they are neither enrolled nor strangers.
    let probes: Vec<Probe> = probe_list
        .iter()
        .zip(probed)
        .filter(|((who, _), _)| names.contains(&who.as_str()) || !listed.contains(&who.as_str()))
        .map(|((who, path), done)| {
            let own = names.iter().position(|n| n == who);
            Probe {
                identity: who.clone(),
                path: path.clone(),
                enrolled: own.is_some(),
                outcome: done.result.map(|e| outcome(&e, &templates, own)).map_err(|e| e.to_string()),
            }
        })
        .collect();
    let considered = probes.len();
    let no_face = probes.iter().filter(|p| p.outcome.is_err()).count();
    let mates = probes.iter().filter(|p| p.enrolled).count();
    // The strangers with a face: only they can be matched to someone.
    let strangers: Vec<f32> =
        probes.iter().filter(|p| !p.enrolled).filter_map(|p| p.outcome.as_ref().ok().map(|o| o.best_score)).collect();
    if mates == 0 || strangers.is_empty() {
        bail!("need probes of enrolled identities and of strangers ({} and {})", mates, strangers.len());
    }
    let fnir = |t: f32| rates_at(&probes, t).1;
    let mut sorted = strangers.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let fnir_at_fpir = FPIR_TARGETS
        .iter()
        .map(|&target| {
            // The lowest threshold above the strangers' scores that leaves at most `target` of them.
            let allowed = (target * sorted.len() as f64).floor() as usize;
            let t = sorted.get(allowed).map_or(f32::MIN, |s| s.next_up());
            (format!("{target:.0e}"), fnir(t))
        })
        .collect();
    let fpir_target = f64::from(facegate_proto::DEFAULT_FPIR);
    let default = calibration.promise(per_comparison_far(fpir_target, templates.len()));
    let threshold_default = default.cosine;
    if let Some(dir) = &args.report {
        let gallery: Vec<(String, PathBuf)> = gallery_list
            .iter()
            .filter(|(who, _)| names.contains(&who.as_str()))
            .map(|(who, path)| (who.clone(), path.clone()))
            .collect();
        let input = report::identify::Input {
            context: report::Context::today(
                &format!("{}, {}", report::file_name(&args.root), report::file_name(&args.probes)),
                engine,
            ),
            gallery: &gallery,
            probes: &probes,
            threshold: threshold_default,
            fpir_target,
        };
        let thumbs = report::gallery::EngineThumbs { engine, root: &args.root, derive: None };
        let written = report::identify::write(dir, &input, &thumbs)
            .with_context(|| format!("writing the report in {}", dir.display()))?;
        eprintln!("report: {}", written.index.display());
    }
    Ok(IdentifyReport {
        model: engine.embedding_id.clone(),
        gallery: templates.len(),
        gallery_refused: listed.len() - templates.len(),
        probes: considered,
        strangers: strangers.len(),
        no_face,
        rank1: cmc(&probes, 1)[0].1,
        fnir_at_fpir,
        fpir_target,
        threshold_default,
        fpir_default: rates_at(&probes, threshold_default).0,
        fnir_default: fnir(threshold_default),
        vouched: default.vouched,
        ms_per_probe,
    })
}

/// How `probe` ranks against every template; `own` is the probe's identity's template, if enrolled.
fn outcome(probe: &Embedding, templates: &[Embedding], own: Option<usize>) -> Outcome {
    let scores: Vec<f32> = templates.iter().map(|t| probe.cosine(t)).collect();
    let (best, best_score) =
        scores.iter().copied().enumerate().fold((0, f32::MIN), |b, (i, s)| if s > b.1 { (i, s) } else { b });
    let own = own.map(|i| {
        let s = scores[i];
        // Ties rank the own template first, as the best-match scan above keeps the first maximum.
        let rank = 1 + scores.iter().enumerate().filter(|&(j, &x)| x > s || (x == s && j < i)).count();
        (s, rank)
    });
    Outcome { best, best_score, own }
}

pub fn print(report: &IdentifyReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!("model              {}", report.model);
    println!("gallery            {} enrolled ({} refused at enrolment)", report.gallery, report.gallery_refused);
    println!("probes             {} ({} strangers, {} no face)", report.probes, report.strangers, report.no_face);
    println!("rank-1             {:.2}%", report.rank1 * 100.0);
    for (fpir, fnir) in &report.fnir_at_fpir {
        println!("FNIR @ FPIR {fpir}   {:.2}%", fnir * 100.0);
    }
    println!(
        "kiosk default      FPIR target {:.0e}: threshold {:.4}, FPIR {:.2}%, FNIR {:.2}%{}",
        report.fpir_target,
        report.threshold_default,
        report.fpir_default * 100.0,
        report.fnir_default * 100.0,
        if report.vouched { "" } else { " (beyond what the calibration vouches for)" }
    );
    println!("ms per probe       {:.1}", report.ms_per_probe);
    Ok(())
}
