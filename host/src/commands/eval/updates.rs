//! `facegate eval updates`: do template updates help, and are they safe? Each person with many
//! photos is enrolled from their first (by file name) and the rest are replayed in order, once
//! with the enrolment template only and once with every proposal the device would make accepted.
//! Every other person's photos are then tried against each person's final templates: how many
//! strangers are granted, and how many would have been proposed as that person's template.

use crate::batch;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::updates::{Candidate, UpdatePolicy};
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
    /// Accepted update templates a person keeps (the oldest goes first); several values
    /// (`1,3,8`) replay once each on the same embeddings.
    #[arg(long, value_delimiter = ',', default_value = "3")]
    pub max_updates: Vec<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

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
    /// Stranger photos tried against each person's templates.
    pub impostor_trials: usize,
    pub strangers_granted_without: usize,
    /// One replay per `--max-updates` value.
    pub with_updates: Vec<UpdatesRun>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UpdatesRun {
    pub max_updates: usize,
    pub tar: f64,
    /// Proposals made (and accepted) during the replay.
    pub accepted: usize,
    pub strangers_granted: usize,
    /// People whose templates let any stranger in, and the most strangers one of them let in.
    pub people_letting_strangers_in: usize,
    pub most_strangers_one_person: usize,
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
    // Enrolled from the first photo that passes the enrolment gate; replayed from the next.
    let enrolled: Vec<Option<(usize, Embedding)>> = by_person
        .iter()
        .map(|photos| {
            let first = photos.iter().position(|s| s.is_some_and(|s| s.enrol_ok))?;
            photos[first].map(|s| (first, s.mirrored.clone()))
        })
        .collect();
    let replayed = |p: usize| -> Vec<&Seen> {
        enrolled[p].as_ref().map_or_else(Vec::new, |(first, _)| {
            by_person[p][first + 1..].iter().flatten().copied().filter(|s| s.door_ok).collect()
        })
    };
    let strangers_of = |p: usize| -> Vec<&Seen> {
        let others = by_person.iter().enumerate().filter(|(q, _)| *q != p);
        others.flat_map(|(_, v)| v.iter().flatten().copied().filter(|s| s.door_ok)).collect()
    };
    let people_in: Vec<usize> = (0..by_person.len()).filter(|&p| enrolled[p].is_some()).collect();
    // The door's gallery holds everyone's enrolment template: a candidate's runner-up is its
    // best score among the others'.
    let runner_up = |p: usize, probe: &Embedding| -> Option<f32> {
        people_in
            .iter()
            .filter(|&&q| q != p)
            .filter_map(|&q| enrolled[q].as_ref())
            .map(|e| probe.cosine(&e.1))
            .reduce(f32::max)
    };
    let enrolment = |p: usize| -> Vec<Embedding> { enrolled[p].iter().map(|e| e.1.clone()).collect() };
    let (mut probes, mut granted_without, mut trials, mut strangers_without) = (0usize, 0usize, 0usize, 0usize);
    for &p in &people_in {
        let templates = enrolment(p);
        for s in replayed(p) {
            probes += 1;
            granted_without += usize::from(best(&s.single, &templates) >= threshold);
        }
        for s in strangers_of(p) {
            trials += 1;
            strangers_without += usize::from(best(&s.single, &templates) >= threshold);
        }
    }
    let mut runs = Vec::new();
    for &max_updates in &args.max_updates {
        let mut run = UpdatesRun {
            max_updates,
            tar: 0.0,
            accepted: 0,
            strangers_granted: 0,
            people_letting_strangers_in: 0,
            most_strangers_one_person: 0,
            strangers_proposed: 0,
        };
        let mut granted = 0usize;
        for &p in &people_in {
            let mut templates = enrolment(p);
            for s in replayed(p) {
                let score = best(&s.single, &templates);
                if score < threshold {
                    continue;
                }
                granted += 1;
                let candidate = Candidate { score, runner_up: runner_up(p, &s.single), enrol_quality: s.enrol_ok };
                if max_updates > 0 && policy.proposes(&candidate, threshold) {
                    run.accepted += 1;
                    if templates.len() > max_updates {
                        templates.remove(1);
                    }
                    templates.push(s.mirrored.clone());
                }
            }
            // Strangers against the person's final set: the most permissive it became.
            let mut let_in = 0;
            for s in strangers_of(p) {
                let score = best(&s.single, &templates);
                let_in += usize::from(score >= threshold);
                // Only a granted stranger can be proposed (and only then is the runner-up needed).
                if score >= threshold {
                    let candidate = Candidate { score, runner_up: runner_up(p, &s.single), enrol_quality: s.enrol_ok };
                    run.strangers_proposed += usize::from(policy.proposes(&candidate, threshold));
                }
            }
            run.strangers_granted += let_in;
            run.people_letting_strangers_in += usize::from(let_in > 0);
            run.most_strangers_one_person = run.most_strangers_one_person.max(let_in);
        }
        run.tar = granted as f64 / probes.max(1) as f64;
        runs.push(run);
    }
    Ok(UpdatesReport {
        model: engine.embedding_id.clone(),
        people: people_in.len(),
        probes,
        threshold,
        margin: policy.margin,
        novelty: policy.novelty,
        tar_without: granted_without as f64 / probes.max(1) as f64,
        impostor_trials: trials,
        strangers_granted_without: strangers_without,
        with_updates: runs,
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
        "without updates    TAR {:.2}%; {} of {} stranger trials granted",
        r.tar_without * 100.0,
        r.strangers_granted_without,
        r.impostor_trials
    );
    for run in &r.with_updates {
        println!(
            "keeping {:>2}         TAR {:.2}% ({} accepted); {} strangers granted (by {} people, at most {} by one), {} would have been proposed",
            run.max_updates,
            run.tar * 100.0,
            run.accepted,
            run.strangers_granted,
            run.people_letting_strangers_in,
            run.most_strangers_one_person,
            run.strangers_proposed
        );
    }
    Ok(())
}
