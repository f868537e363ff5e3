//! `facegate eval crops`: the engine's aligned 112x112 face crops for a list of images, as PNG.
//!
//! `models/rebuild.sh` calibrates the int8 embedding network's activation ranges on these, so
//! that quantization sees exactly the crops the engine will feed it (the Rust alignment, not
//! the Python reference's).

use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::{Engine, FacePolicy, QualityGate};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CropsArgs {
    /// Folder the listed image paths are relative to.
    #[arg(long)]
    pub root: PathBuf,
    /// Text file with one relative image path per line (`#` comments and blank lines ignored).
    #[arg(long)]
    pub list: PathBuf,
    /// Output folder; each crop is written as the path with `/` replaced by `__`, `.png`.
    #[arg(long)]
    pub out: PathBuf,
}

/// What was written and what was not.
#[derive(Debug, serde::Serialize)]
pub struct CropsReport {
    pub written: usize,
    pub failed: Vec<(String, String)>,
}

pub fn run(engine: &Engine, args: &CropsArgs) -> Result<CropsReport> {
    let text = std::fs::read_to_string(&args.list).with_context(|| format!("reading {}", args.list.display()))?;
    let paths: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if paths.is_empty() {
        bail!("{} lists no images", args.list.display());
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let bar = crate::batch::progress(paths.len(), "aligning");
    let mut report = CropsReport { written: 0, failed: Vec::new() };
    for rel in paths {
        bar.inc(1);
        match engine.process_file(&args.root.join(rel), FacePolicy::Subject, &QualityGate::NONE) {
            Ok(face) => {
                let name = format!("{}.png", rel.rsplit_once('.').map_or(rel, |(stem, _)| stem).replace('/', "__"));
                crate::save_png(&face.observation.aligned, &args.out.join(name))?;
                report.written += 1;
            }
            Err(e) => report.failed.push((rel.to_owned(), e.to_string())),
        }
    }
    bar.finish_and_clear();
    Ok(report)
}

pub fn print(report: &CropsReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!("{} crops written", report.written);
    for (path, why) in &report.failed {
        println!("  skipped {path}: {why}");
    }
    Ok(())
}
