//! `facegate eval embed`: the five points and the embedding of each listed photo, one JSON
//! object a line. The raw material for comparing two builds image by image (x86-64 against
//! aarch64 under emulation: `tests/aarch64_e2e.rs`).

use anyhow::{Context, Result};
use clap::Args;
use facegate_engine::{Engine, FacePolicy, QualityGate};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EvalEmbedArgs {
    /// Folder the listed paths are relative to.
    #[arg(long)]
    pub root: PathBuf,
    /// One photo path a line.
    #[arg(long)]
    pub list: PathBuf,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One photo's result.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct EmbedRecord {
    pub image: String,
    pub points: Option<[[f32; 2]; 5]>,
    pub embedding: Option<Vec<f32>>,
    pub error: Option<String>,
}

pub fn run(engine: &Engine, args: &EvalEmbedArgs) -> Result<usize> {
    let list = std::fs::read_to_string(&args.list).with_context(|| format!("reading {}", args.list.display()))?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut n = 0;
    for image in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // No quality gate: the builds are compared on whatever face they find.
        let record = match engine.process_file(&args.root.join(image), FacePolicy::Subject, &QualityGate::NONE) {
            Ok(r) => EmbedRecord {
                image: image.to_owned(),
                points: Some(r.observation.five),
                embedding: Some(r.embedding.as_slice().to_vec()),
                error: None,
            },
            Err(e) => {
                EmbedRecord { image: image.to_owned(), points: None, embedding: None, error: Some(e.to_string()) }
            }
        };
        writeln!(out, "{}", serde_json::to_string(&record)?)?;
        n += 1;
    }
    Ok(n)
}
