//! `facegate enroll NAME PHOTO... | --camera [INDEX]`: quality-gate each photo, embed it with
//! the shared engine, and keep it as a template of NAME in the registry. One photo is enough;
//! more become extra templates.

use crate::batch::progress;
use crate::registry::{HistoryNote, Registry};
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_engine::embed::dot;
use facegate_engine::{Engine, FacePolicy, FaceResult, QualityGate};
use std::path::PathBuf;

/// Cosine above which two different people are suspiciously alike (FAR 1e-4 on LFW when
/// the model has no calibration table).
const SIMILAR_FALLBACK: f32 = 0.5;
/// The same-person bar when the model has no calibration table.
const SAME_PERSON_FALLBACK: f32 = 0.35;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  facegate enroll \"Ada Lovelace\" ada1.jpg ada2.jpg\n  facegate enroll Bob --camera 0"
)]
pub struct EnrollArgs {
    /// The person's name (unique in the registry; enrolling an existing name adds templates).
    pub name: String,
    /// One or more photos of that person alone.
    #[arg(required_unless_present = "camera")]
    pub photos: Vec<PathBuf>,
    /// Capture from this camera instead (needs the `camera` build feature).
    #[arg(long, num_args = 0..=1, default_missing_value = "0", conflicts_with = "photos")]
    pub camera: Option<u32>,
    /// Add the photos to an existing person even when they do not match that person's templates
    /// (e.g. a new look); recorded in the registry's history with your user name.
    #[arg(long)]
    pub force: bool,
    /// The Unix login this person unlocks (local unlock through the PAM module).
    #[arg(long)]
    pub login: Option<String>,
    #[command(flatten)]
    pub card: super::card::CardSpec,
    /// First day the doors let this person in (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day the doors let this person in, inclusive (YYYY-MM-DD), e.g. a contractor's end.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// What happened to each photo.
#[derive(Debug, Default, serde::Serialize)]
pub struct EnrollReport {
    pub person: String,
    pub person_id: u32,
    pub model: String,
    pub accepted: Vec<Accepted>,
    pub refused: Vec<Refused>,
    /// Other enrolled people this face resembles (possible duplicate or twin).
    pub similar_to: Vec<(String, f32)>,
    /// Lowest score of a new photo against this person's earlier templates, if any (each photo
    /// scored by its best match among them).
    pub consistency: Option<f32>,
    /// Templates this person now has under this model, the new ones included.
    pub total_templates: u32,
    /// The photos were added although they did not match the person's templates (`--force`).
    pub forced: bool,
    /// The Unix login mapped to this person (`--login`).
    pub login: Option<String>,
    /// The card given with `--card` / `--card-raw`, as `h10301 12:3456`.
    pub card: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Accepted {
    pub source: String,
    pub template_id: u32,
    pub face_px: f32,
    pub sharpness: f32,
}

#[derive(Debug, serde::Serialize)]
pub struct Refused {
    pub source: String,
    pub reason: String,
}

fn similar_threshold(engine: &Engine) -> f32 {
    engine.calibration.as_ref().map_or(SIMILAR_FALLBACK, |c| c.threshold_for_far(1e-4))
}

/// The score a new photo of an enrolled person must reach against their templates: the
/// device's default decision threshold (FAR 1e-3), so enrolment never binds a face the door
/// would not have granted as that person.
fn same_person_threshold(engine: &Engine) -> f32 {
    engine.calibration.as_ref().map_or(SAME_PERSON_FALLBACK, |c| c.threshold_for_far(1e-3))
}

/// Gates and embeds `(source, result)` pairs and stores the good ones in one transaction.
pub fn enroll_results(
    registry: &mut Registry,
    engine: &Engine,
    name: &str,
    results: Vec<(String, facegate_engine::Result<FaceResult>)>,
    force: bool,
) -> Result<EnrollReport> {
    let mut report =
        EnrollReport { person: name.trim().to_string(), model: engine.embedding_id.clone(), ..Default::default() };
    let mut good = Vec::new();
    for (source, r) in results {
        match r {
            Ok(face) => good.push((source, face)),
            Err(e) => report.refused.push(Refused { source, reason: e.to_string() }),
        }
    }
    // Templates are embedded with their mirror image: enrolment has the time, and every later
    // comparison with this person gains from the steadier template.
    for (source, face) in &mut good {
        face.embedding = engine
            .embed_with_mirror(&face.observation, &face.embedding)
            .with_context(|| format!("embedding {source}"))?;
    }
    if good.is_empty() {
        let reasons: Vec<String> = report.refused.iter().map(|r| format!("  {}: {}", r.source, r.reason)).collect();
        bail!("no usable photo of {name}:\n{}", reasons.join("\n"));
    }
    // Compare with everyone already enrolled under this model.
    let existing = registry.person(name)?;
    let threshold = similar_threshold(engine);
    let mut best_other: std::collections::BTreeMap<u32, f32> = Default::default();
    // Each new photo's best score against the person's own templates.
    let mut own_best: Vec<Option<f32>> = vec![None; good.len()];
    for t in registry.templates(&engine.embedding_id)? {
        for ((_, face), own) in good.iter().zip(&mut own_best) {
            let s = dot(face.embedding.as_slice(), &t.embedding);
            if existing.as_ref().is_some_and(|p| p.id == t.person_id) {
                *own = Some(own.map_or(s, |m: f32| m.max(s)));
            } else {
                let e = best_other.entry(t.person_id).or_insert(f32::MIN);
                *e = e.max(s);
            }
        }
    }
    for (pid, score) in best_other.into_iter().filter(|(_, s)| *s >= threshold) {
        let other = registry.person_by_id(pid)?.map_or_else(|| format!("person {pid}"), |p| p.name);
        report.similar_to.push((other, score));
    }
    report.consistency = own_best.iter().flatten().copied().reduce(f32::min);
    // A photo that does not match the person it is filed under would let its face in as them.
    let bar = same_person_threshold(engine);
    let mismatched: Vec<String> = good
        .iter()
        .zip(&own_best)
        .filter_map(|((source, _), s)| s.filter(|s| *s < bar).map(|s| format!("{source} scores {s:.3}")))
        .collect();
    let note = if mismatched.is_empty() {
        None
    } else if force {
        report.forced = true;
        let detail = format!("{} (threshold {bar:.3})", mismatched.join(", "));
        Some(HistoryNote::by_current_user("enroll --force", detail))
    } else {
        bail!(
            "not the same person? {} against {}'s templates, below the same-person threshold {bar:.3} \
             (FAR 1e-3); nothing was added. Check the photos, or pass --force if it is really {} \
             (recorded in the registry's history)",
            mismatched.join(", "),
            report.person,
            report.person
        );
    };
    let rows: Vec<(Vec<f32>, String, Option<f32>)> = good
        .iter()
        .map(|(source, face)| {
            (face.embedding.as_slice().to_vec(), source.clone(), Some(face.observation.quality.detector_score))
        })
        .collect();
    let (person, ids) =
        registry.enroll_noted(name, &engine.embedding_id, &rows, note.as_ref()).context("storing the templates")?;
    report.total_templates = registry
        .templates(&engine.embedding_id)?
        .iter()
        .filter(|t| t.person_id == person.id)
        .count()
        .try_into()
        .unwrap_or(u32::MAX);
    report.person = person.name;
    report.person_id = person.id;
    for ((source, face), id) in good.iter().zip(ids) {
        report.accepted.push(Accepted {
            source: source.clone(),
            template_id: id,
            face_px: face.observation.quality.face_px,
            sharpness: face.observation.quality.sharpness,
        });
    }
    Ok(report)
}

pub fn run(registry: &mut Registry, engine: &Engine, args: &EnrollArgs) -> Result<EnrollReport> {
    // A bad login is refused before any photo is looked at.
    if let Some(login) = &args.login {
        crate::registry::check_login(login)?;
    }
    let card = args.card.card()?;
    for date in [&args.from, &args.until].into_iter().flatten() {
        if facegate_proto::access::parse_date(date).is_none() {
            anyhow::bail!("invalid date {date:?}: dates are YYYY-MM-DD");
        }
    }
    let results = match args.camera {
        Some(index) => camera_capture(engine, index)?,
        None => {
            let bar = progress(args.photos.len(), "checking photos");
            if args.photos.len() < 2 || args.json {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let out = args
                .photos
                .iter()
                .map(|p| {
                    let r = engine.process_file(p, FacePolicy::Single, &QualityGate::ENROL);
                    bar.inc(1);
                    (p.display().to_string(), r)
                })
                .collect();
            bar.finish_and_clear();
            out
        }
    };
    let mut report = enroll_results(registry, engine, &args.name, results, args.force)?;
    if let Some(login) = &args.login {
        registry.set_login(&report.person, login).with_context(|| format!("mapping login {login}"))?;
        report.login = Some(login.clone());
    }
    if let Some(card) = &card {
        registry.set_card(&report.person, card).with_context(|| format!("giving {} card {card}", report.person))?;
        report.card = Some(card.to_string());
    }
    if args.from.is_some() || args.until.is_some() {
        let validity = crate::registry::Validity { from: args.from.clone(), until: args.until.clone() };
        registry.set_validity(&report.person, &validity).with_context(|| format!("{}'s dates", report.person))?;
    }
    print(&report, args.json)?;
    Ok(report)
}

fn print(r: &EnrollReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    for a in &r.accepted {
        println!(
            "  ok       {}  (face {:.0} px, sharpness {:.0}) -> template {}",
            a.source, a.face_px, a.sharpness, a.template_id
        );
    }
    for x in &r.refused {
        println!("  refused  {}: {}", x.source, x.reason);
    }
    println!(
        "enrolled {} (id {}): {} template(s) added, {} in all, model {}",
        r.person,
        r.person_id,
        r.accepted.len(),
        r.total_templates,
        r.model
    );
    if r.forced {
        eprintln!(
            "warning: added with --force although they do not match {}'s templates (recorded in the history)",
            r.person
        );
    }
    for (other, score) in &r.similar_to {
        eprintln!(
            "warning: {} looks very much like {other} (score {score:.3}): a duplicate enrolment or a twin?",
            r.person
        );
    }
    println!("run `facegate sync` to send the change to devices");
    Ok(())
}

#[cfg(feature = "camera")]
fn camera_capture(engine: &Engine, index: u32) -> Result<Vec<(String, facegate_engine::Result<FaceResult>)>> {
    use facegate_engine::source::FrameSource;
    // A few frames: keep the best the gate accepts, so a blink does not spoil the enrolment.
    let mut cam = facegate_engine::source::camera::CameraSource::open(index)?;
    let mut best: Option<(String, facegate_engine::Result<FaceResult>)> = None;
    for _ in 0..15 {
        let Some(frame) = cam.next_frame()? else { break };
        let r = engine.process(&frame.image, FacePolicy::Single, &QualityGate::ENROL);
        let better = match (&r, &best) {
            (Ok(a), Some((_, Ok(b)))) => a.observation.quality.sharpness > b.observation.quality.sharpness,
            (Ok(_), _) => true,
            (Err(_), None) => true,
            (Err(_), Some(_)) => false,
        };
        if better {
            best = Some((format!("camera {index} frame {}", frame.index), r));
        }
    }
    best.map(|b| vec![b]).context("the camera gave no frames")
}

#[cfg(not(feature = "camera"))]
fn camera_capture(_: &Engine, _: u32) -> Result<Vec<(String, facegate_engine::Result<FaceResult>)>> {
    bail!("this build has no camera support: rebuild with `--features camera`, or enrol from photos")
}
