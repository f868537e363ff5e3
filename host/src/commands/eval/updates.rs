//! `facegate eval updates`: do template updates help, and are they safe? Each person with many
//! photos is enrolled from their first (by file name) and the rest are replayed in order, once
//! with the enrolment template only and once with every proposal the device would make accepted.
//! Every other person's photos are then tried against each person's final templates: how many
//! strangers are granted, and how many would have been proposed as that person's template.

use crate::batch;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::updates::UpdatePolicy;
use facegate_engine::{Embedding, Engine, FacePolicy, QualityGate};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EvalUpdatesArgs {
    /// Folder of `<person>/<photo>`.
    #[arg(long)]
    pub root: PathBuf,
    /// People with at least this many photos take part.
    #[arg(long, default_value_t = 10)]
    pub min_photos: usize,
    /// FAR target the decision threshold is taken at (from the calibration).
    #[arg(long, default_value_t = 1e-3)]
    pub far: f64,
    /// The policy's margin above the threshold (default: the device's).
    #[arg(long)]
    pub margin: Option<f32>,
    /// The policy's novelty limit (default: the device's).
    #[arg(long)]
    pub novelty: Option<f32>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Accepted updates a person keeps in this replay, newest last (an administrator would prune).
pub const MAX_UPDATES: usize = 8;

#[derive(Debug, Clone, serde::Serialize)]
pub struct UpdatesReport {
    pub model: String,
    pub people: usize,
    /// Replayed photos that passed the door's quality gate.
    pub probes: usize,
    pub threshold: f32,
    pub margin: f32,
    pub novelty: f32,
    pub tar_without: f64,
    pub tar_with: f64,
    /// Proposals made (and accepted) during the replay.
    pub accepted: usize,
    /// Stranger photos tried against each person's final templates.
    pub impostor_trials: usize,
    pub strangers_granted_without: usize,
    pub strangers_granted_with: usize,
    /// Strangers that would have been proposed as someone else's template.
    pub strangers_proposed: usize,
}

/// What the engine made of one photo.
struct Seen {
    door_ok: bool,
    enrol_ok: bool,
    single: Embedding,
    mirrored: Embedding,
}

fn best(probe: &Embedding, templates: &[Embedding]) -> f32 {
    templates.iter().map(|t| probe.cosine(t)).fold(f32::MIN, f32::max)
}

pub fn run(engine: &Engine, args: &EvalUpdatesArgs) -> Result<UpdatesReport> {
    let calibration = engine.calibration.as_ref().context("no calibration table for this model")?;
    let threshold = calibration.threshold_for_far(args.far);
    let defaults = UpdatePolicy::default();
    let policy = UpdatePolicy {
        margin: args.margin.unwrap_or(defaults.margin),
        novelty: args.novelty.unwrap_or(defaults.novelty),
        ..defaults
    };
    policy.validate().map_err(anyhow::Error::msg)?;
    let people = facegate_engine::dataset::people(&args.root, args.min_photos.max(2))
        .with_context(|| format!("listing {}", args.root.display()))?;
    if people.len() < 2 {
        bail!("need at least two people with {} photos under {}", args.min_photos, args.root.display());
    }
    let paths: Vec<PathBuf> = people.iter().flat_map(|(_, p)| p.iter().cloned()).collect();
    let seen = batch::run_files(
        engine,
        std::path::Path::new(""),
        &paths,
        super::threads(args.threads),
        None,
        "embedding",
        |img| {
            let face = engine.process(img, FacePolicy::Subject, &QualityGate::NONE)?;
            let q = &face.observation.quality;
            Ok(Seen {
                door_ok: QualityGate::VERIFY.check(q).is_empty(),
                enrol_ok: QualityGate::ENROL.check(q).is_empty(),
                mirrored: engine.embed_with_mirror(&face.observation, &face.embedding)?,
                single: face.embedding,
            })
        },
    );
    // Per person, their photos' outcomes in file-name order.
    let mut by_person: Vec<Vec<Option<&Seen>>> = Vec::new();
    let mut it = seen.iter();
    for (_, photos) in &people {
        by_person.push(photos.iter().filter_map(|_| it.next()).map(|d| d.result.as_ref().ok()).collect());
    }
    let (mut probes, mut granted_without, mut granted_with, mut accepted) = (0usize, 0usize, 0usize, 0usize);
    let mut finals: Vec<(Vec<Embedding>, Vec<Embedding>)> = Vec::new();
    for photos in &by_person {
        // Enrolled from the first photo that passes the enrolment gate; replayed from the next.
        let Some(first) = photos.iter().position(|s| s.is_some_and(|s| s.enrol_ok)) else {
            finals.push((Vec::new(), Vec::new()));
            continue;
        };
        let enrolled = photos[first].map(|s| s.mirrored.clone()).into_iter().collect::<Vec<_>>();
        let mut updated = enrolled.clone();
        for s in photos[first + 1..].iter().flatten().filter(|s| s.door_ok) {
            probes += 1;
            granted_without += usize::from(best(&s.single, &enrolled) >= threshold);
            let score = best(&s.single, &updated);
            if score >= threshold {
                granted_with += 1;
                if policy.proposes(score, threshold, s.enrol_ok) {
                    accepted += 1;
                    if updated.len() > MAX_UPDATES {
                        updated.remove(1);
                    }
                    updated.push(s.mirrored.clone());
                }
            }
        }
        finals.push((enrolled, updated));
    }
    let (mut trials, mut strangers_without, mut strangers_with, mut strangers_proposed) =
        (0usize, 0usize, 0usize, 0usize);
    for (p, (enrolled, updated)) in finals.iter().enumerate() {
        if enrolled.is_empty() {
            continue;
        }
        for (q, photos) in by_person.iter().enumerate() {
            if p == q {
                continue;
            }
            for s in photos.iter().flatten().filter(|s| s.door_ok) {
                trials += 1;
                strangers_without += usize::from(best(&s.single, enrolled) >= threshold);
                let score = best(&s.single, updated);
                strangers_with += usize::from(score >= threshold);
                strangers_proposed += usize::from(score >= threshold && policy.proposes(score, threshold, s.enrol_ok));
            }
        }
    }
    let share = |n: usize| n as f64 / probes.max(1) as f64;
    Ok(UpdatesReport {
        model: engine.embedding_id.clone(),
        people: finals.iter().filter(|f| !f.0.is_empty()).count(),
        probes,
        threshold,
        margin: policy.margin,
        novelty: policy.novelty,
        tar_without: share(granted_without),
        tar_with: share(granted_with),
        accepted,
        impostor_trials: trials,
        strangers_granted_without: strangers_without,
        strangers_granted_with: strangers_with,
        strangers_proposed,
    })
}

pub fn print(r: &UpdatesReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    println!("model              {}", r.model);
    println!("people / probes    {} / {} (replayed in file order after the enrolment photo)", r.people, r.probes);
    println!("threshold          {:.4}; policy margin {:.2}, novelty {:.2}", r.threshold, r.margin, r.novelty);
    println!(
        "TAR                {:.2}% without updates, {:.2}% with ({} accepted)",
        r.tar_without * 100.0,
        r.tar_with * 100.0,
        r.accepted
    );
    println!(
        "strangers          {} of {} granted without updates, {} with; {} would have been proposed",
        r.strangers_granted_without, r.impostor_trials, r.strangers_granted_with, r.strangers_proposed
    );
    Ok(())
}
