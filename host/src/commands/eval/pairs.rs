//! `facegate eval pairs`: verification accuracy on a labelled pair list (LFW View 2 protocol).

use crate::derive::Derive;
use crate::report::pairs::{Compared, Scored};
use crate::{batch, pairs, report};
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::metrics;
use facegate_engine::{Calibration, Embedding, Engine};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct EvalPairsArgs {
    /// Folder the pair list's image paths are relative to.
    #[arg(long)]
    pub root: PathBuf,
    /// Pair list (LFW pairs.txt or fold<TAB>path1<TAB>path2<TAB>same).
    #[arg(long)]
    pub pairs: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Draw the ROC curve (TAR against log FAR, with any --compare curves) to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write a report here: index.html with DET, ROC, score histograms, the figures with their
    /// 10-fold spread, FNMR at fixed FMR and a gallery of the failures.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Another run's scores (from --scores) on the same plots, as LABEL=FILE; repeatable.
    #[arg(long, value_name = "LABEL=FILE")]
    pub compare: Vec<String>,
    /// Also fit a score calibration on every same/different-person combination of the
    /// images (identity = parent folder) and write it here (TOML).
    #[arg(long)]
    pub calibration_out: Option<PathBuf>,
    /// Score every pair from one pass per image only: no second look at pairs too close to
    /// call (by default those are re-scored with both faces embedded with their mirror image).
    #[arg(long)]
    pub no_second_look: bool,
    /// Write every pair's score here (tab-separated: fold, same, score, a, b), for error analysis.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Derive each image first: tight:MARGIN, small:WIDTH, turn:DEG or dark:FACTOR.
    #[arg(long)]
    pub derive: Option<Derive>,
}

/// The figures `eval pairs` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairsReport {
    pub model: String,
    pub pairs: usize,
    pub images: usize,
    pub no_face: usize,
    /// Pairs too close to call on one pass, re-scored with mirrored embeddings.
    pub second_look_pairs: usize,
    pub accuracy: f64,
    pub accuracy_std: f64,
    pub auc: f64,
    pub eer: f64,
    #[serde(rename = "tar_at_far_1e-3")]
    pub tar_at_far_1e_3: f64,
    #[serde(rename = "tar_at_far_1e-2")]
    pub tar_at_far_1e_2: f64,
    pub ms_per_image: f64,
    pub fold_accuracy: Vec<f64>,
    pub no_face_images: Vec<String>,
}

pub fn run(engine: &Engine, args: &EvalPairsArgs) -> Result<PairsReport> {
    let pairs = pairs::load(&args.pairs)?;
    let mut images: Vec<PathBuf> = pairs.iter().flat_map(|p| [p.a.clone(), p.b.clone()]).collect();
    images.sort();
    images.dedup();
    let missing: Vec<&PathBuf> = images.iter().filter(|p| !args.root.join(p).is_file()).take(3).collect();
    if !missing.is_empty() {
        bail!("images missing under {}: {:?} ...", args.root.display(), missing);
    }
    let threads = super::threads(args.threads);
    let embedded = batch::embed_files(engine, &args.root, &images, threads, false, args.derive);
    let ms_per_image = embedded.iter().map(|e| e.millis).sum::<f64>() / embedded.len().max(1) as f64;
    let mut by_path: HashMap<&Path, &Embedding> = HashMap::new();
    let mut no_face = Vec::new();
    for e in &embedded {
        match &e.result {
            Ok(emb) => {
                by_path.insert(&e.path, emb);
            }
            Err(err) => {
                tracing::warn!("{}: {err}", e.path.display());
                no_face.push((e.path.clone(), err.to_string()));
            }
        }
    }
    // Read before the long part, so a mistyped file fails at once.
    let compare = args.compare.iter().map(|c| read_compared(c)).collect::<Result<Vec<_>>>()?;
    // A pair with an unusable image counts as a rejection (score -1), as in the usual protocol.
    let mut scored: Vec<(usize, f32, bool)> = pairs
        .iter()
        .map(|p| {
            let s = match (by_path.get(p.a.as_path()), by_path.get(p.b.as_path())) {
                (Some(a), Some(b)) => a.cosine(b),
                _ => -1.0,
            };
            (p.fold, s, p.same)
        })
        .collect();
    // As the kiosk does: a pair too close to call on one pass is scored again with both faces
    // embedded with their mirror image.
    let close: Vec<usize> = if args.no_second_look {
        Vec::new()
    } else {
        (0..pairs.len()).filter(|&i| scored[i].1 > -1.0 && engine.needs_second_look(scored[i].1)).collect()
    };
    if !close.is_empty() {
        // Those few images go through the pipeline again rather than every crop being kept
        // from the first pass (7,701 crops would be ~290 MB); their one-pass embedding is
        // recomputed on the way and only the mirror pass is new.
        let mut again: Vec<PathBuf> = close.iter().flat_map(|&i| [pairs[i].a.clone(), pairs[i].b.clone()]).collect();
        again.sort();
        again.dedup();
        let mirrored = batch::embed_files(engine, &args.root, &again, threads, true, args.derive);
        let by_path: HashMap<&Path, &Embedding> =
            mirrored.iter().filter_map(|e| e.result.as_ref().ok().map(|emb| (e.path.as_path(), emb))).collect();
        for &i in &close {
            if let (Some(a), Some(b)) = (by_path.get(pairs[i].a.as_path()), by_path.get(pairs[i].b.as_path())) {
                scored[i].1 = a.cosine(b);
            }
        }
    }
    if let Some(path) = &args.scores {
        write_scores(path, &pairs, &scored).with_context(|| format!("writing {}", path.display()))?;
    }
    let genuine: Vec<f32> = scored.iter().filter(|p| p.2).map(|p| p.1).collect();
    let impostor: Vec<f32> = scored.iter().filter(|p| !p.2).map(|p| p.1).collect();
    let kfold = metrics::kfold_accuracy(&scored);
    let report = PairsReport {
        model: engine.embedding_id.clone(),
        pairs: pairs.len(),
        images: images.len(),
        no_face: no_face.len(),
        second_look_pairs: close.len(),
        accuracy: kfold.accuracy,
        accuracy_std: kfold.accuracy_std,
        auc: metrics::auc(&genuine, &impostor),
        eer: metrics::eer(&genuine, &impostor),
        tar_at_far_1e_3: metrics::tar_at_far(&genuine, &impostor, 1e-3),
        tar_at_far_1e_2: metrics::tar_at_far(&genuine, &impostor, 1e-2),
        ms_per_image,
        fold_accuracy: kfold.fold_accuracy.clone(),
        no_face_images: no_face.iter().map(|(p, _)| p.display().to_string()).collect(),
    };
    if args.plot.is_some() || args.report.is_some() {
        let scored: Vec<Scored> = pairs
            .iter()
            .zip(&scored)
            .map(|(p, &(fold, score, same))| Scored { fold, same, score, a: p.a.clone(), b: p.b.clone() })
            .collect();
        let dataset = format!("{}, {}", report::file_name(&args.root), report::file_name(&args.pairs));
        let input = report::pairs::Input {
            context: report::Context::today(&dataset, engine),
            label: engine.embed_variant.clone(),
            pairs: &scored,
            compare: &compare,
            no_face: &no_face,
            calibration: engine.calibration.as_ref(),
            kfold: &kfold,
        };
        if let Some(path) = &args.plot {
            report::pairs::roc_chart(&input).draw(path).with_context(|| format!("drawing {}", path.display()))?;
        }
        if let Some(dir) = &args.report {
            let thumbs = report::gallery::EngineThumbs { engine, root: &args.root, derive: args.derive };
            let written = report::pairs::write(dir, &input, &thumbs)
                .with_context(|| format!("writing the report in {}", dir.display()))?;
            eprintln!("report: {}", written.index.display());
        }
    }
    if let Some(path) = &args.calibration_out {
        let cal = calibrate(engine, &embedded, &args.root);
        std::fs::write(path, cal.to_toml()).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "calibration: {} genuine, {} impostor pairs -> {}",
            cal.genuine_pairs,
            cal.impostor_pairs,
            path.display()
        );
    }
    Ok(report)
}

/// `LABEL=FILE` of a `--scores` file.
fn read_compared(spec: &str) -> Result<Compared> {
    let (label, file) = spec.split_once('=').with_context(|| format!("--compare {spec}: expected LABEL=FILE"))?;
    let pairs = read_scores(Path::new(file)).with_context(|| format!("reading --compare {file}"))?;
    Ok(Compared { label: label.to_owned(), pairs })
}

/// Reads what [`write_scores`] wrote.
pub fn read_scores(path: &Path) -> Result<Vec<Scored>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let parsed = match f.as_slice() {
            [fold, same, score, a, b] => match (fold.parse(), score.parse()) {
                (Ok(fold), Ok(score)) => {
                    Some(Scored { fold, same: *same == "1", score, a: PathBuf::from(a), b: PathBuf::from(b) })
                }
                _ => None,
            },
            _ => None,
        };
        out.push(parsed.with_context(|| format!("{}:{}: expected fold, same, score, a, b", path.display(), i + 1))?);
    }
    if out.is_empty() {
        bail!("{} holds no scores", path.display());
    }
    Ok(out)
}

fn write_scores(path: &Path, pairs: &[pairs::Pair], scored: &[(usize, f32, bool)]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "fold\tsame\tscore\ta\tb")?;
    for (p, (fold, score, same)) in pairs.iter().zip(scored) {
        writeln!(out, "{fold}\t{}\t{score:.6}\t{}\t{}", u8::from(*same), p.a.display(), p.b.display())?;
    }
    out.flush()
}

pub fn print(report: &PairsReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!("model            {}", report.model);
    println!("pairs / images   {} / {}", report.pairs, report.images);
    println!("accuracy         {:.2}% +- {:.2}% (10-fold)", report.accuracy * 100.0, report.accuracy_std * 100.0);
    println!("ROC AUC          {:.5}", report.auc);
    println!("EER              {:.2}%", report.eer * 100.0);
    println!("TAR @ FAR 1e-3   {:.2}%", report.tar_at_far_1e_3 * 100.0);
    println!("TAR @ FAR 1e-2   {:.2}%", report.tar_at_far_1e_2 * 100.0);
    println!("no face          {}", report.no_face);
    println!("second looks     {} pairs too close to call on one pass", report.second_look_pairs);
    println!("ms per image     {:.1}", report.ms_per_image);
    Ok(())
}

/// Genuine = every pair of images of one identity; impostor = pairs across identities.
fn calibrate(engine: &Engine, embedded: &[batch::Embedded], root: &Path) -> Calibration {
    let ok: Vec<(&Path, &Embedding)> = embedded
        .iter()
        .filter_map(|e| e.result.as_ref().ok().map(|emb| (e.path.parent().unwrap_or(Path::new("")), emb)))
        .collect();
    let (genuine, impostor) = super::calibrate::all_pairs(&ok);
    let source = format!("{} (identity = folder), {} images", root.display(), ok.len());
    Calibration::fit(&genuine, &impostor, &engine.embedding_id, &source)
}
