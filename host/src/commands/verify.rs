//! `facegate verify A B`: are these two photos the same person?

use anyhow::{Context, Result};
use clap::Args;
use facegate_engine::{Engine, FacePolicy, FaceResult, QualityGate};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// First photo.
    pub a: PathBuf,
    /// Second photo.
    pub b: PathBuf,
    /// Target false-accept rate used to pick the decision threshold from the calibration.
    #[arg(long, default_value_t = 1e-3)]
    pub far: f64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also draw why (`facegate explain`'s picture) to this PNG.
    #[arg(long, value_name = "PNG")]
    pub explain: Option<PathBuf>,
}

/// Returns whether the photos show the same person.
pub fn run(engine: &Engine, args: &VerifyArgs) -> Result<bool> {
    let calibration = engine
        .calibration
        .as_ref()
        .context("no calibration-<variant>.toml beside the models (make one with `facegate eval pairs --calibration-out`): cannot turn a FAR target into a threshold")?;
    let embed = |p: &PathBuf| {
        engine.process_file(p, FacePolicy::Subject, &QualityGate::VERIFY).with_context(|| format!("{}", p.display()))
    };
    let (a, b) = (embed(&args.a)?, embed(&args.b)?);
    let mut score = a.embedding.cosine(&b.embedding);
    // Too close to call on one pass: look again with both faces embedded with their mirror image.
    let second_look = engine.needs_second_look(score);
    if second_look {
        let mirrored = |f: &FaceResult| engine.embed_with_mirror(&f.observation, &f.embedding);
        score = mirrored(&a)?.cosine(&mirrored(&b)?);
    }
    let threshold = calibration.threshold_for_far(args.far);
    let same = score >= threshold;
    let probability = calibration.probability(score);
    let explained = match &args.explain {
        Some(out) => Some(super::explain::explain_pair(
            engine,
            [&a, &b],
            [&args.a, &args.b],
            Default::default(),
            super::eval::threads(None),
            out,
        )?),
        None => None,
    };
    if args.json {
        let mut out = serde_json::json!({
            "score": score,
            "probability": probability,
            "threshold": threshold,
            "far_target": args.far,
            "same": same,
            "decision": if same { "same" } else { "different" },
            "second_look": second_look,
            "model": engine.embedding_id,
        });
        if let Some(e) = &explained {
            out["explain"] = super::explain::to_json(e);
        }
        println!("{out}");
    } else {
        println!(
            "score        {score:.4}{}",
            if second_look { " (second look: faces embedded with their mirror image)" } else { "" }
        );
        println!("probability  {:.1}% same person", probability * 100.0);
        println!("threshold    {threshold:.4} (FAR {:.0e})", args.far);
        println!("decision     {}", if same { "SAME person" } else { "DIFFERENT people" });
        if let (Some(e), Some(out)) = (&explained, &args.explain) {
            println!("explained    {} ({:.1} s)", out.display(), e.millis / 1e3);
        }
    }
    Ok(same)
}
