//! `facegate eval faces`: how many of a folder's photos give a usable face, and why not.

use crate::batch;
use crate::derive::Derive;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::{Engine, EngineError, QualityGate};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EvalFacesArgs {
    /// Folder of `<person>/<photo>` images.
    #[arg(long)]
    pub root: PathBuf,
    /// Derive each image first: tight:MARGIN, small:WIDTH, turn:DEG or dark:FACTOR.
    #[arg(long)]
    pub derive: Option<Derive>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FacesReport {
    pub root: String,
    pub derive: Option<String>,
    pub images: usize,
    /// A face found and aligned (any quality).
    pub found: usize,
    pub no_face: usize,
    /// Found only in the picture turned (in-plane rotation).
    pub turned: usize,
    /// Found faces the door's quality gate refuses, by first reason.
    pub refused_at_door: BTreeMap<String, usize>,
    /// Images that failed for another reason (unreadable, ...).
    pub errors: usize,
    pub ms_per_image: f64,
    pub no_face_images: Vec<String>,
}

pub fn run(engine: &Engine, args: &EvalFacesArgs) -> Result<FacesReport> {
    let images = super::photos(&args.root, None).with_context(|| format!("listing {}", args.root.display()))?;
    if images.is_empty() {
        bail!("{} holds no <person>/<photo> images", args.root.display());
    }
    let done = batch::process_files(engine, &args.root, &images, super::threads(args.threads), args.derive);
    let mut report = FacesReport {
        root: args.root.display().to_string(),
        derive: args.derive.map(|d| d.to_string()),
        images: images.len(),
        found: 0,
        no_face: 0,
        turned: 0,
        refused_at_door: BTreeMap::new(),
        errors: 0,
        ms_per_image: done.iter().map(|d| d.millis).sum::<f64>() / done.len().max(1) as f64,
        no_face_images: Vec::new(),
    };
    for d in &done {
        match &d.result {
            Ok(face) => {
                report.found += 1;
                report.turned += usize::from(face.observation.turned_deg != 0.0);
                if let Some(issue) = QualityGate::VERIFY.check(&face.observation.quality).first() {
                    *report.refused_at_door.entry(kind(&issue.to_string())).or_default() += 1;
                }
            }
            Err(EngineError::NoFace) => {
                report.no_face += 1;
                report.no_face_images.push(d.path.display().to_string());
            }
            Err(e) => {
                tracing::warn!("{}: {e}", d.path.display());
                report.errors += 1;
            }
        }
    }
    Ok(report)
}

/// The reason without its figures ("too dark (brightness 12 < 30)" -> "too dark").
fn kind(reason: &str) -> String {
    reason.split(" (").next().unwrap_or(reason).to_owned()
}

pub fn print(report: &FacesReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    let derived = report.derive.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
    println!("images        {}{derived}", report.images);
    println!("faces found   {} ({} only turned)", report.found, report.turned);
    println!("no face       {}", report.no_face);
    for (why, n) in &report.refused_at_door {
        println!("  refused at the door: {why}: {n}");
    }
    if report.errors > 0 {
        println!("errors        {}", report.errors);
    }
    println!("ms per image  {:.1}", report.ms_per_image);
    Ok(())
}
