//! `facegate eval liveness`: how well the liveness check tells live people from presentation
//! attacks, in ISO/IEC 30107-3 terms, per frame and per visit.
//!
//! `ROOT/live/**` are bona fide presentations; every other top-level folder is one attack type
//! (`print_attack/`, `replay_attack/`, ...). A visit is the frames of one folder sharing a file
//! name up to its last `_` (subject, session, ...), scored by their mean as the kiosk does.
//! `--fit-out` chooses the networks and the threshold on every other subject and checks them on
//! the rest, the way the FAR calibration is checked on sources it was not fitted on.

use crate::batch;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::liveness::{self, LivenessConfig};
use facegate_engine::{Engine, EngineError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The folder of bona fide presentations.
pub const BONA_FIDE: &str = "live";
/// APCERs at which the BPCER is reported.
pub const APCER_TARGETS: [f64; 3] = [1e-2, 5e-2, 1e-1];
/// The configurations `--fit-out` chooses among: each network alone, the two MiniFASNets
/// averaged, the network shipped before them.
pub const CANDIDATES: [&[&str]; 4] =
    [&["liveness-v2"], &["liveness-v1se"], &["liveness-v2", "liveness-v1se"], &["liveness"]];

#[derive(Debug, Args)]
pub struct EvalLivenessArgs {
    /// Folder with `live/` (bona fide) and one folder per attack type.
    #[arg(long)]
    pub root: PathBuf,
    /// Liveness networks by manifest name, averaged (default: those of models/liveness.toml).
    #[arg(long, value_delimiter = ',')]
    pub nets: Vec<String>,
    /// Live probability below which a face is refused (default: models/liveness.toml's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Choose networks and threshold on every other subject (lowest BPCER at --target-apcer),
    /// check them on the others, and write the liveness configuration here.
    #[arg(long)]
    pub fit_out: Option<PathBuf>,
    /// The APCER a fitted threshold is chosen for.
    #[arg(long, default_value_t = 0.01)]
    pub target_apcer: f64,
    /// Write every image's score (`scores.tsv`) and the JSON report into this folder.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One image of the set.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Relative to the root.
    pub path: PathBuf,
    /// `live` or the attack type.
    pub kind: String,
    pub subject: String,
    pub visit: String,
}

/// Error rates of one set of scores at one threshold (ISO/IEC 30107-3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PadMetrics {
    pub bona_fide: usize,
    pub attacks: usize,
    /// Attack presentations accepted as live, per attack type.
    pub apcer: BTreeMap<String, f64>,
    pub apcer_worst: f64,
    /// Bona fide presentations refused.
    pub bpcer: f64,
    /// (worst APCER + BPCER) / 2.
    pub acer: f64,
    /// BPCER at the lowest threshold that keeps every attack type's APCER at or under the target.
    pub bpcer_at_apcer: BTreeMap<String, f64>,
    /// Where the worst APCER and the BPCER meet (the lower of the two maxima over thresholds).
    pub eer: f64,
}

/// A candidate's BPCER at the target APCER on the fit subjects: per visit decides, per frame
/// breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Candidate {
    pub visits: f64,
    pub frames: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub fit_subjects: Vec<String>,
    pub check_subjects: Vec<String>,
    pub target_apcer: f64,
    pub candidates: BTreeMap<String, Candidate>,
    pub chosen: Vec<String>,
    /// The lowest that keeps the fit subjects' attack visits at or under the target APCER.
    pub threshold: f32,
    pub fit: PadMetrics,
    pub fit_visits: PadMetrics,
    pub check: PadMetrics,
    pub check_visits: PadMetrics,
}

#[derive(Debug, Clone, Serialize)]
pub struct LivenessReport {
    pub root: String,
    pub nets: Vec<String>,
    pub images: usize,
    pub no_face: usize,
    pub threshold: f32,
    /// Detection and liveness, per image.
    pub ms_per_image: f64,
    /// The liveness networks alone, per face.
    pub ms_liveness_per_face: f64,
    /// Per frame.
    #[serde(flatten)]
    pub frames: PadMetrics,
    /// Per visit (mean score of its frames).
    pub visits: PadMetrics,
    pub fit: Option<FitReport>,
}

pub fn run(engine: &Engine, args: &EvalLivenessArgs) -> Result<LivenessReport> {
    let samples = list(&args.root).with_context(|| format!("listing {}", args.root.display()))?;
    if !samples.iter().any(|s| s.kind == BONA_FIDE) || !samples.iter().any(|s| s.kind != BONA_FIDE) {
        bail!("{} needs a {BONA_FIDE}/ folder and at least one attack folder beside it", args.root.display());
    }
    // The shipped configuration, read once, when networks or threshold are not given.
    let shipped = (args.fit_out.is_none() && (args.nets.is_empty() || args.threshold.is_none()))
        .then(|| LivenessConfig::load(&engine.manifest.dir.join(LivenessConfig::FILE)))
        .transpose()
        .context("the liveness configuration (or pass --nets and --threshold)")?;
    let nets: Vec<String> = match (&args.fit_out, &shipped) {
        (Some(_), _) => CANDIDATES
            .iter()
            .flat_map(|c| c.iter().map(|n| n.to_string()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        (None, Some(c)) if args.nets.is_empty() => c.models.clone(),
        (None, _) => args.nets.clone(),
    };
    let scored = score(engine, args, &samples, &nets)?;
    let images = samples.len();
    let ms_per_image = scored.iter().map(|d| d.millis).sum::<f64>() / images.max(1) as f64;
    let per_net: Vec<Option<Vec<f32>>> =
        scored.iter().map(|d| d.result.as_ref().ok().map(|(s, _)| s.clone())).collect();
    let faces = per_net.iter().flatten().count();
    let ms_liveness_per_face =
        scored.iter().filter_map(|d| d.result.as_ref().ok().map(|(_, ms)| ms)).sum::<f64>() / faces.max(1) as f64;
    for d in &scored {
        if let Err(e) = &d.result {
            if !matches!(e, EngineError::NoFace) {
                tracing::warn!("{}: {e}", d.path.display());
            }
        }
    }
    // The score of a configuration: the mean of its networks' scores.
    let combined = |chosen: &[String]| -> Vec<Option<f32>> {
        let idx: Vec<usize> = chosen.iter().filter_map(|c| nets.iter().position(|n| n == c)).collect();
        per_net
            .iter()
            .map(|s| s.as_ref().map(|s| idx.iter().map(|&i| s[i]).sum::<f32>() / idx.len().max(1) as f32))
            .collect()
    };
    let (chosen, threshold, fit) = match &args.fit_out {
        Some(out) => {
            let fit = fit(&samples, &combined, args.target_apcer)?;
            let evidence = format!(
                "{}: fitted on subjects {} (visits: APCER {:.4}, BPCER {:.4}); checked on subjects {} \
                 (visits: APCER {:.4}, BPCER {:.4}; frames: APCER {:.4}, BPCER {:.4})",
                crate::report::file_name(&args.root),
                fit.fit_subjects.join(","),
                fit.fit_visits.apcer_worst,
                fit.fit_visits.bpcer,
                fit.check_subjects.join(","),
                fit.check_visits.apcer_worst,
                fit.check_visits.bpcer,
                fit.check.apcer_worst,
                fit.check.bpcer,
            );
            let config = LivenessConfig {
                models: fit.chosen.clone(),
                threshold: fit.threshold,
                target_apcer: args.target_apcer,
                evidence,
            };
            std::fs::write(out, config.to_toml()).with_context(|| format!("writing {}", out.display()))?;
            (fit.chosen.clone(), fit.threshold, Some(fit))
        }
        None => {
            let threshold = args.threshold.or(shipped.map(|c| c.threshold)).unwrap_or_default();
            (nets.clone(), threshold, None)
        }
    };
    let scores = combined(&chosen);
    let no_face = scores.iter().filter(|s| s.is_none()).count();
    let all: Vec<usize> = (0..samples.len()).collect();
    let report = LivenessReport {
        root: args.root.display().to_string(),
        nets: chosen,
        images,
        no_face,
        threshold,
        ms_per_image,
        ms_liveness_per_face,
        frames: metrics(&frame_scores(&samples, &scores, &all), threshold),
        visits: metrics(&visit_scores(&samples, &scores, &all), threshold),
        fit,
    };
    if let Some(dir) = &args.report {
        write_report(dir, &samples, &scores, &report)?;
    }
    Ok(report)
}

/// Every network's live probability for an image's largest face, and the networks' time in ms.
type Scored = batch::Done<(Vec<f32>, f64)>;

/// Detects the largest face of every image once and scores it with every network.
fn score(engine: &Engine, args: &EvalLivenessArgs, samples: &[Sample], nets: &[String]) -> Result<Vec<Scored>> {
    let check = engine.liveness_of(nets, 0.5).context("loading the liveness networks")?;
    let paths: Vec<PathBuf> = samples.iter().map(|s| s.path.clone()).collect();
    let threads = super::threads(args.threads);
    Ok(batch::run_files(engine, &args.root, &paths, threads, None, "liveness", |img| {
        let faces = engine.detect(img)?;
        let face = faces.iter().max_by(|a, b| a.area().total_cmp(&b.area())).ok_or(EngineError::NoFace)?;
        let started = Instant::now();
        let scores = check.nets.iter().map(|n| n.score(img, face)).collect::<Result<Vec<f32>, _>>()?;
        Ok((scores, started.elapsed().as_secs_f64() * 1e3))
    }))
}

/// The set's images: `kind/**/file`, sorted.
pub fn list(root: &Path) -> std::io::Result<Vec<Sample>> {
    let mut out = Vec::new();
    for kind_dir in sorted_dir(root)? {
        if !kind_dir.is_dir() {
            continue;
        }
        let kind = file_name(&kind_dir);
        let mut stack = vec![kind_dir];
        while let Some(dir) = stack.pop() {
            for path in sorted_dir(&dir)? {
                if path.is_dir() {
                    stack.push(path);
                } else if facegate_engine::dataset::is_photo(&path) {
                    let rel = path.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| path.clone());
                    out.push(sample(rel, &kind));
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn sorted_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Subject: the folder under the kind when there is one, else the file name up to its first
/// `_`. Visit: the folder and the file name up to its last `_` (the frame number).
fn sample(rel: PathBuf, kind: &str) -> Sample {
    let stem = rel.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let subject = if parts.len() > 2 { parts[1].clone() } else { stem.split('_').next().unwrap_or("").to_owned() };
    let parent = rel.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let visit = format!("{parent}/{}", stem.rsplit_once('_').map_or(stem.as_str(), |(v, _)| v));
    Sample { path: rel, kind: kind.to_owned(), subject, visit }
}

/// Scores by kind, of the samples in `keep` that have one.
type ByKind = BTreeMap<String, Vec<f32>>;

fn frame_scores(samples: &[Sample], scores: &[Option<f32>], keep: &[usize]) -> ByKind {
    let mut out = ByKind::new();
    for &i in keep {
        if let Some(s) = scores[i] {
            out.entry(samples[i].kind.clone()).or_default().push(s);
        }
    }
    out
}

fn visit_scores(samples: &[Sample], scores: &[Option<f32>], keep: &[usize]) -> ByKind {
    let mut visits: BTreeMap<(&str, &str), Vec<f32>> = BTreeMap::new();
    for &i in keep {
        if let Some(s) = scores[i] {
            visits.entry((&samples[i].kind, &samples[i].visit)).or_default().push(s);
        }
    }
    let mut out = ByKind::new();
    for ((kind, _), frames) in visits {
        if let Some(v) = liveness::visit_score(&frames) {
            out.entry(kind.to_owned()).or_default().push(v);
        }
    }
    out
}

/// Share of `scores` accepted as live at `t`.
fn accepted(scores: &[f32], t: f32) -> f64 {
    scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len().max(1) as f64
}

fn attacks(by_kind: &ByKind) -> impl Iterator<Item = (&String, &Vec<f32>)> {
    by_kind.iter().filter(|(k, _)| k.as_str() != BONA_FIDE)
}

fn apcer_worst(by_kind: &ByKind, t: f32) -> f64 {
    attacks(by_kind).map(|(_, s)| accepted(s, t)).fold(0.0, f64::max)
}

fn bpcer(by_kind: &ByKind, t: f32) -> f64 {
    by_kind.get(BONA_FIDE).map_or(0.0, |s| 1.0 - accepted(s, t))
}

/// The lowest threshold at which every attack type's APCER is at most `target`.
pub fn threshold_for_apcer(by_kind: &ByKind, target: f64) -> f32 {
    attacks(by_kind)
        .map(|(_, s)| {
            let mut desc = s.clone();
            desc.sort_by(|a, b| b.total_cmp(a));
            let allowed = (target * desc.len() as f64).floor() as usize;
            desc.get(allowed).map_or(f32::MIN, |s| s.next_up())
        })
        .fold(f32::MIN, f32::max)
}

pub fn metrics(by_kind: &ByKind, threshold: f32) -> PadMetrics {
    let apcer: BTreeMap<String, f64> = attacks(by_kind).map(|(k, s)| (k.clone(), accepted(s, threshold))).collect();
    let worst = apcer.values().copied().fold(0.0, f64::max);
    let b = bpcer(by_kind, threshold);
    let bpcer_at_apcer = APCER_TARGETS
        .iter()
        .map(|&target| (format!("{target:.0e}"), bpcer(by_kind, threshold_for_apcer(by_kind, target))))
        .collect();
    // Every score is a candidate threshold; the EER is where the larger error is smallest.
    let eer = by_kind.values().flatten().map(|&t| apcer_worst(by_kind, t).max(bpcer(by_kind, t))).fold(1.0, f64::min);
    PadMetrics {
        bona_fide: by_kind.get(BONA_FIDE).map_or(0, Vec::len),
        attacks: attacks(by_kind).map(|(_, s)| s.len()).sum(),
        apcer,
        apcer_worst: worst,
        bpcer: b,
        acer: (worst + b) / 2.0,
        bpcer_at_apcer,
        eer,
    }
}

/// Every other subject (in name order) fits, the rest check: the candidate with the lowest
/// BPCER at the target APCER on the fit subjects' visits (the kiosk decides per visit), and its
/// threshold for that APCER there.
fn fit(samples: &[Sample], combined: &dyn Fn(&[String]) -> Vec<Option<f32>>, target: f64) -> Result<FitReport> {
    let subjects: Vec<String> =
        samples.iter().map(|s| s.subject.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    if subjects.len() < 2 {
        bail!("fitting needs at least two subjects to check on one not fitted on");
    }
    let fit_subjects: Vec<String> = subjects.iter().step_by(2).cloned().collect();
    let check_subjects: Vec<String> = subjects.iter().skip(1).step_by(2).cloned().collect();
    let pick =
        |set: &[String]| -> Vec<usize> { (0..samples.len()).filter(|&i| set.contains(&samples[i].subject)).collect() };
    let (fit_idx, check_idx) = (pick(&fit_subjects), pick(&check_subjects));
    // BPCER at the target APCER, per visit (what the kiosk decides on) and per frame.
    let at_target = |by_kind: &ByKind| bpcer(by_kind, threshold_for_apcer(by_kind, target));
    let mut candidates = BTreeMap::new();
    let mut best: Option<(Candidate, Vec<String>)> = None;
    for c in CANDIDATES {
        let names: Vec<String> = c.iter().map(|n| n.to_string()).collect();
        let scores = combined(&names);
        let score = Candidate {
            visits: at_target(&visit_scores(samples, &scores, &fit_idx)),
            frames: at_target(&frame_scores(samples, &scores, &fit_idx)),
        };
        candidates.insert(names.join("+"), score);
        if best.as_ref().is_none_or(|(b, _)| (score.visits, score.frames) < (b.visits, b.frames)) {
            best = Some((score, names));
        }
    }
    let Some((_, chosen)) = best else { bail!("no liveness candidates") };
    let scores = combined(&chosen);
    let (fit_frames, fit_visits) = (frame_scores(samples, &scores, &fit_idx), visit_scores(samples, &scores, &fit_idx));
    let threshold = threshold_for_apcer(&fit_visits, target);
    Ok(FitReport {
        fit_subjects,
        check_subjects,
        target_apcer: target,
        candidates,
        chosen,
        threshold,
        fit: metrics(&fit_frames, threshold),
        fit_visits: metrics(&fit_visits, threshold),
        check: metrics(&frame_scores(samples, &scores, &check_idx), threshold),
        check_visits: metrics(&visit_scores(samples, &scores, &check_idx), threshold),
    })
}

fn write_report(dir: &Path, samples: &[Sample], scores: &[Option<f32>], report: &LivenessReport) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tsv = String::from("path\tkind\tsubject\tvisit\tlive_probability\n");
    for (s, score) in samples.iter().zip(scores) {
        let score = score.map_or_else(|| "no face".to_owned(), |v| v.to_string());
        tsv += &format!("{}\t{}\t{}\t{}\t{score}\n", s.path.display(), s.kind, s.subject, s.visit);
    }
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("scores.tsv", &tsv)?;
    write("report.json", &serde_json::to_string_pretty(report)?)
}

pub fn print(report: &LivenessReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!("networks      {} (threshold {:.4})", report.nets.join(" + "), report.threshold);
    println!("images        {} ({} no face)", report.images, report.no_face);
    print_metrics("frames", &report.frames);
    print_metrics("visits", &report.visits);
    if let Some(f) = &report.fit {
        println!("fit on subjects {}, checked on {}", f.fit_subjects.join(","), f.check_subjects.join(","));
        for (name, c) in &f.candidates {
            println!("  {name:<28} BPCER at APCER {}: visits {:.4}, frames {:.4}", f.target_apcer, c.visits, c.frames);
        }
        println!("chosen        {} (threshold {:.4})", f.chosen.join(" + "), f.threshold);
        print_metrics("fit frames", &f.fit);
        print_metrics("fit visits", &f.fit_visits);
        print_metrics("check frames", &f.check);
        print_metrics("check visits", &f.check_visits);
    }
    println!("ms per image  {:.1} ({:.1} of it liveness)", report.ms_per_image, report.ms_liveness_per_face);
    Ok(())
}

fn print_metrics(what: &str, m: &PadMetrics) {
    let apcer: Vec<String> = m.apcer.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    let at: Vec<String> = m.bpcer_at_apcer.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect();
    println!(
        "{what:<13} {} bona fide, {} attacks: APCER {} | BPCER {:.4} | ACER {:.4} | EER {:.4} | BPCER at APCER {}",
        m.bona_fide,
        m.attacks,
        apcer.join(", "),
        m.bpcer,
        m.acer,
        m.eer,
        at.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(live: &[f32], print: &[f32]) -> ByKind {
        BTreeMap::from([(BONA_FIDE.to_owned(), live.to_vec()), ("print_attack".to_owned(), print.to_vec())])
    }

    #[test]
    fn error_rates_follow_their_definitions() {
        let by = kinds(&[0.9, 0.8, 0.7, 0.2], &[0.1, 0.3, 0.75, 0.05]);
        let m = metrics(&by, 0.5);
        // One print of four accepted, one live of four refused.
        assert_eq!(m.apcer["print_attack"], 0.25);
        assert_eq!(m.apcer_worst, 0.25);
        assert_eq!(m.bpcer, 0.25);
        assert_eq!(m.acer, 0.25);
        assert_eq!((m.bona_fide, m.attacks), (4, 4));
        // APCER 0 needs a threshold above 0.75: two live refused.
        assert_eq!(m.bpcer_at_apcer["1e-2"], 0.5);
        assert!(m.eer > 0.0 && m.eer <= 0.25, "{}", m.eer);
    }

    #[test]
    fn threshold_for_apcer_keeps_every_attack_type_under_the_target() {
        let mut by = kinds(&[0.9], &(0..100).map(|i| i as f32 / 100.0).collect::<Vec<_>>());
        by.insert("replay_attack".into(), vec![0.995; 10]);
        let t = threshold_for_apcer(&by, 0.05);
        assert!(apcer_worst(&by, t) <= 0.05);
        assert!(t > 0.995, "the worse attack type sets it: {t}");
        by.remove("replay_attack");
        let t = threshold_for_apcer(&by, 0.05);
        assert!((accepted(&by["print_attack"], t) - 0.05).abs() < 1e-9, "five of a hundred pass: {t}");
    }

    #[test]
    fn separable_scores_have_no_error() {
        let m = metrics(&kinds(&[0.6, 0.7, 0.9], &[0.01, 0.2, 0.3]), 0.5);
        assert_eq!((m.apcer_worst, m.bpcer, m.eer), (0.0, 0.0, 0.0));
        assert!(m.bpcer_at_apcer.values().all(|&b| b == 0.0));
    }

    #[test]
    fn samples_name_their_subject_and_visit() {
        let s = sample(PathBuf::from("print_attack/0003/0003_00_00_02_170.jpg"), "print_attack");
        assert_eq!((s.subject.as_str(), s.visit.as_str()), ("0003", "print_attack/0003/0003_00_00_02"));
        let flat = sample(PathBuf::from("live/0007_01_00_01_12.jpg"), "live");
        assert_eq!((flat.subject.as_str(), flat.visit.as_str()), ("0007", "live/0007_01_00_01"));
    }

    fn synthetic_set(kinds: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (k, kind) in kinds.iter().enumerate() {
            let sub = dir.path().join(kind).join("0001");
            std::fs::create_dir_all(&sub).expect("dirs");
            for frame in 0..2u8 {
                let img = image::RgbImage::from_fn(64, 48, |x, y| {
                    image::Rgb([(x * 4) as u8, (y * 5) as u8, frame + k as u8])
                });
                img.save(sub.join(format!("0001_00_00_01_{frame}.png"))).expect("png");
            }
            std::fs::write(sub.join("notes.txt"), "not an image").expect("txt");
        }
        dir
    }

    #[test]
    fn a_folder_lists_its_kinds_subjects_and_visits() {
        let dir = synthetic_set(&["live", "print_attack", "replay_attack"]);
        let samples = list(dir.path()).expect("list");
        assert_eq!(samples.len(), 6, "text files are skipped: {samples:?}");
        let kinds: BTreeSet<&str> = samples.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, BTreeSet::from(["live", "print_attack", "replay_attack"]));
        assert!(samples.iter().all(|s| s.subject == "0001"));
        let visits: BTreeSet<&str> = samples.iter().map(|s| s.visit.as_str()).collect();
        assert_eq!(visits.len(), 3, "one visit per kind: {visits:?}");
    }

    #[test]
    fn images_without_a_face_are_counted_not_scored() {
        let engine = Engine::load(&facegate_engine::EngineConfig::default()).expect("models");
        let dir = synthetic_set(&["live", "print_attack"]);
        let args = |root: &Path| EvalLivenessArgs {
            root: root.to_path_buf(),
            nets: vec!["liveness-v2".into()],
            threshold: Some(0.5),
            fit_out: None,
            target_apcer: 0.01,
            report: None,
            threads: Some(1),
            json: true,
        };
        let report = run(&engine, &args(dir.path())).expect("eval liveness");
        assert_eq!((report.images, report.no_face), (4, 4));
        assert_eq!((report.frames.bona_fide, report.frames.attacks), (0, 0));
        // Without an attack folder there is nothing to measure: a clear error, not a report.
        let only_live = synthetic_set(&["live"]);
        let err = run(&engine, &args(only_live.path())).expect_err("no attacks");
        assert!(err.to_string().contains("attack folder"), "{err}");
    }

    #[test]
    fn visits_are_scored_by_their_mean() {
        let samples: Vec<Sample> = ["live/a_1_0.jpg", "live/a_1_1.jpg", "live/a_2_0.jpg", "print_attack/a_1_0.jpg"]
            .iter()
            .map(|p| {
                let kind = p.split('/').next().unwrap_or_default();
                sample(PathBuf::from(p), kind)
            })
            .collect();
        let scores = [Some(0.2), Some(0.6), None, Some(0.1)];
        let v = visit_scores(&samples, &scores, &[0, 1, 2, 3]);
        assert_eq!(v[BONA_FIDE].len(), 1, "the visit without a face is not scored");
        assert!((v[BONA_FIDE][0] - 0.4).abs() < 1e-6);
        assert_eq!(v["print_attack"], vec![0.1]);
    }
}
