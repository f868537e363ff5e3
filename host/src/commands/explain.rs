//! `facegate explain A B --out why.png`: which parts of each face the score rests on.

use crate::report::explain::{self as why, Explanation};
use crate::report::file_name;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::explain::Occlusion;
use facegate_engine::{Engine, FacePolicy, FaceResult, QualityGate};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// First photo.
    pub a: PathBuf,
    /// Second photo.
    pub b: PathBuf,
    /// The picture: both aligned faces with the heat of each patch's effect (PNG).
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object: the top regions by effect, named by face area.
    #[arg(long)]
    pub json: bool,
    /// Side of the grey patch, in pixels of the 112 px aligned crop.
    #[arg(long, default_value_t = 16)]
    pub patch: u32,
    /// Step between patch positions.
    #[arg(long, default_value_t = 8)]
    pub stride: u32,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ExplainArgs {
    fn occlusion(&self) -> Result<Occlusion> {
        if !(1..=112).contains(&self.patch) || self.stride == 0 {
            bail!("--patch must be 1..=112 and --stride at least 1");
        }
        Ok(Occlusion { patch: self.patch, stride: self.stride })
    }
}

/// Both faces' maps, drawn to `out`; every face is explained, whatever its quality.
pub fn explain_pair(
    engine: &Engine,
    faces: [&FaceResult; 2],
    paths: [&Path; 2],
    occlusion: Occlusion,
    threads: usize,
    out: &Path,
) -> Result<Explanation> {
    let e = why::explain(engine, faces[0], faces[1], occlusion, threads).context("scoring the occluded faces")?;
    why::draw(
        &e,
        [&faces[0].observation.aligned, &faces[1].observation.aligned],
        [&file_name(paths[0]), &file_name(paths[1])],
        e.a.score,
        out,
    )
    .with_context(|| format!("drawing {}", out.display()))?;
    Ok(e)
}

pub fn run(engine: &Engine, args: &ExplainArgs) -> Result<Explanation> {
    let occlusion = args.occlusion()?;
    let face = |p: &PathBuf| {
        engine.process_file(p, FacePolicy::Subject, &QualityGate::NONE).with_context(|| format!("{}", p.display()))
    };
    let (a, b) = (face(&args.a)?, face(&args.b)?);
    let threads = super::eval::threads(args.threads);
    explain_pair(engine, [&a, &b], [&args.a, &args.b], occlusion, threads, &args.out)
}

pub fn to_json(e: &Explanation) -> serde_json::Value {
    serde_json::json!({
        "score": e.a.score,
        "patch": e.a.occlusion.patch,
        "stride": e.a.occlusion.stride,
        "positions": e.a.patches.len() + e.b.patches.len(),
        "millis": e.millis,
        "a": why::side_json(&e.a),
        "b": why::side_json(&e.b),
    })
}

pub fn print(e: &Explanation, args: &ExplainArgs) -> Result<()> {
    if args.json {
        println!("{}", to_json(e));
        return Ok(());
    }
    println!("score        {:.4} (one pass)", e.a.score);
    for (label, map) in [("A", &e.a), ("B", &e.b)] {
        let side = why::side_json(map);
        let list =
            |v: &[why::Region]| v.iter().map(|r| format!("{} {:+.3}", r.area, r.effect)).collect::<Vec<_>>().join(", ");
        println!("{label} alike      {}", list(&side.alike));
        println!("{label} disagrees  {}", if side.disagree.is_empty() { "-".to_owned() } else { list(&side.disagree) });
    }
    println!("picture      {}", args.out.display());
    println!("took         {:.1} s ({} occluded faces)", e.millis / 1e3, e.a.patches.len() + e.b.patches.len());
    Ok(())
}
