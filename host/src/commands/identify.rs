//! `facegate identify PHOTO`: offline 1:N against the registry.

use crate::registry::Registry;
use anyhow::{Context, Result};
use clap::Args;
use facegate_engine::embed::dot;
use facegate_engine::{Embedding, Engine, FacePolicy, QualityGate};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct IdentifyArgs {
    pub photo: PathBuf,
    /// Target false-accept rate for the threshold (per comparison).
    #[arg(long, default_value_t = 1e-3)]
    pub far: f64,
    /// Candidates to list.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    #[arg(long)]
    pub json: bool,
}

/// Returns the identified person's name, if any.
pub fn run(registry: &Registry, engine: &Engine, args: &IdentifyArgs) -> Result<Option<String>> {
    let calibration = engine.calibration.as_ref().context("no calibration table for this model")?;
    let threshold = calibration.threshold_for_far(args.far);
    let face = engine
        .process_file(&args.photo, FacePolicy::Subject, &QualityGate::VERIFY)
        .with_context(|| args.photo.display().to_string())?;
    let templates = registry.templates(&engine.embedding_id)?;
    let best_per_person = |probe: &Embedding| {
        let mut best: BTreeMap<u32, f32> = BTreeMap::new();
        for t in &templates {
            let e = best.entry(t.person_id).or_insert(f32::MIN);
            *e = e.max(dot(probe.as_slice(), &t.embedding));
        }
        best
    };
    let mut best = best_per_person(&face.embedding);
    // As the kiosk does: a best score too close to call gets a second look.
    let top = best.values().copied().fold(f32::MIN, f32::max);
    if engine.needs_second_look(top) {
        best = best_per_person(&engine.embed_with_mirror(&face.observation, &face.embedding)?);
    }
    let mut ranked: Vec<(String, f32)> = best
        .into_iter()
        .map(|(pid, s)| Ok((registry.person_by_id(pid)?.map_or_else(|| format!("person {pid}"), |p| p.name), s)))
        .collect::<Result<_>>()?;
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(args.top.max(1));
    let winner = ranked.first().filter(|(_, s)| *s >= threshold).map(|(n, _)| n.clone());
    if args.json {
        let candidates: Vec<serde_json::Value> = ranked
            .iter()
            .map(|(n, s)| serde_json::json!({"name": n, "score": s, "probability": calibration.probability(*s)}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"identified": winner, "threshold": threshold, "far_target": args.far,
                               "model": engine.embedding_id, "candidates": candidates})
        );
    } else {
        match &winner {
            Some(n) => println!("identified: {n}"),
            None => println!("unknown: nobody in the registry scores above {threshold:.3} (FAR {:.0e})", args.far),
        }
        for (n, s) in &ranked {
            println!("  {s:.3}  {:>5.1}%  {n}", calibration.probability(*s) * 100.0);
        }
    }
    Ok(winner)
}
