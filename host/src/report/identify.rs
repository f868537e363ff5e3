//! The 1:N report (`facegate eval identify --report DIR`): the CMC curve, FNIR against FPIR,
//! the score distributions with the door's threshold, and the misses and near-misses.

use super::chart::{self, Axis, Chart, Mark, Series};
use super::gallery::{self, Thumbs};
use super::page::{Page, Tile};
use super::{percent, rate_label, Context, ReportError, Written};
use std::path::{Path, PathBuf};

/// Ranks the CMC curve shows, at most.
pub const MAX_RANK: usize = 20;
/// Tiles per gallery row.
pub const WORST: usize = 12;

/// How a probe with a face was matched against the gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Index of the best-matching enrolled identity and its score.
    pub best: usize,
    pub best_score: f32,
    /// For an enrolled person: the score with their own template and its rank (1 = best).
    pub own: Option<(f32, usize)>,
}

/// One probe: who it is (an identity with no gallery entry is a stranger), and what happened.
#[derive(Debug, Clone)]
pub struct Probe {
    pub identity: String,
    pub path: PathBuf,
    pub enrolled: bool,
    /// Err: no usable face, and why.
    pub outcome: Result<Outcome, String>,
}

#[derive(Debug)]
pub struct Input<'a> {
    pub context: Context,
    /// Enrolled identities and their enrolment photos, in gallery order.
    pub gallery: &'a [(String, PathBuf)],
    pub probes: &'a [Probe],
    /// The kiosk's threshold for this gallery and the FPIR it was chosen for.
    pub threshold: f32,
    pub fpir_target: f64,
}

/// Share of enrolled probes whose own template ranks within `k` (no face counts as a miss).
pub fn cmc(probes: &[Probe], max_rank: usize) -> Vec<(f64, f64)> {
    let mates: Vec<&Probe> = probes.iter().filter(|p| p.enrolled).collect();
    (1..=max_rank)
        .map(|k| {
            let hit =
                mates.iter().filter(|p| matches!(&p.outcome, Ok(Outcome { own: Some((_, r)), .. }) if *r <= k)).count();
            (k as f64, hit as f64 / mates.len().max(1) as f64)
        })
        .collect()
}

/// A mate is found at `t` when its own template ranks first with a score at or above `t`.
fn found(p: &Probe, t: f32) -> bool {
    matches!(&p.outcome, Ok(Outcome { own: Some((s, 1)), .. }) if *s >= t)
}

/// A stranger is matched to someone at `t` when its best score reaches `t`.
fn false_alarm(p: &Probe, t: f32) -> bool {
    matches!(&p.outcome, Ok(o) if o.best_score >= t)
}

/// (FPIR, FNIR) at `t`. FPIR is over the strangers with a face (only they can be matched to
/// anyone); FNIR over every enrolled probe (no face is a miss).
pub fn rates_at(probes: &[Probe], t: f32) -> (f64, f64) {
    let (mut strangers, mut alarms, mut mates, mut misses) = (0usize, 0usize, 0usize, 0usize);
    for p in probes {
        if p.enrolled {
            mates += 1;
            misses += usize::from(!found(p, t));
        } else if p.outcome.is_ok() {
            strangers += 1;
            alarms += usize::from(false_alarm(p, t));
        }
    }
    (alarms as f64 / strangers.max(1) as f64, misses as f64 / mates.max(1) as f64)
}

/// The FNIR/FPIR curve at every distinct best score.
pub fn fnir_fpir(probes: &[Probe]) -> Vec<(f64, f64)> {
    let mut ts: Vec<f32> = probes.iter().filter_map(|p| p.outcome.as_ref().ok().map(|o| o.best_score)).collect();
    ts.sort_by(|a, b| b.total_cmp(a));
    ts.dedup();
    ts.into_iter().map(|t| rates_at(probes, t)).collect()
}

pub fn write(dir: &Path, input: &Input, thumbs: &dyn Thumbs) -> Result<Written, ReportError> {
    std::fs::create_dir_all(dir).map_err(ReportError::io(dir))?;
    let ctx = &input.context;
    let probes = input.probes;
    let mates = probes.iter().filter(|p| p.enrolled).count();
    let strangers = probes.len() - mates;
    let no_face = probes.iter().filter(|p| p.outcome.is_err()).count();
    let mut page = Page::new(&ctx.title("Identification (1:N)"));
    page.note(&format!(
        "{} enrolled identities (one photo each); {} probes: {mates} of enrolled people, {strangers} of strangers; \
         {no_face} without a usable face.",
        input.gallery.len(),
        probes.len()
    ));

    page.heading("Accuracy");
    let curve = cmc(probes, MAX_RANK.min(input.gallery.len()).max(1));
    let rank = |k: usize| curve.get(k - 1).map_or(f64::NAN, |p| p.1);
    let (fpir, fnir) = rates_at(probes, input.threshold);
    let rows = vec![
        vec!["rank-1 identification rate".to_owned(), percent(rank(1))],
        vec!["rank-5 identification rate".to_owned(), percent(rank(5.min(curve.len())))],
        vec![
            format!("kiosk threshold (FPIR target {})", rate_label(input.fpir_target)),
            format!("{:.4}", input.threshold),
        ],
        vec!["FPIR at that threshold (strangers matched to someone)".to_owned(), percent(fpir)],
        vec!["FNIR at that threshold (enrolled people not found)".to_owned(), percent(fnir)],
    ];
    page.table(&["measure", "value"], &rows);

    page.heading("Curves");
    Chart {
        title: ctx.title("CMC"),
        x: Axis::linear("rank", 1.0, curve.len().max(2) as f64),
        y: Axis::linear(
            "identification rate",
            ((curve.first().map_or(0.0, |p| p.1) * 20.0).floor() / 20.0).clamp(0.0, 0.95),
            1.0,
        ),
        series: vec![Series { label: String::new(), points: curve.clone(), steps: false }],
        marks: Vec::new(),
    }
    .draw(&dir.join("cmc.png"))?;
    page.figure("cmc.png", "CMC: share of enrolled people whose own template ranks within k");
    let points = fnir_fpir(probes);
    let smallest = |pick: fn(&(f64, f64)) -> f64| points.iter().map(pick).filter(|v| *v > 0.0).fold(1.0, f64::min);
    Chart {
        title: ctx.title("FNIR against FPIR"),
        x: Axis::log_rate("false positive identification rate (FPIR)", smallest(|p| p.0), 1e-5),
        y: Axis::log_rate("false negative identification rate (FNIR)", smallest(|p| p.1), 1e-4),
        series: vec![Series { label: String::new(), points, steps: false }],
        marks: vec![Mark::Point { x: fpir, y: fnir, label: format!("kiosk threshold {:.3}", input.threshold) }],
    }
    .draw(&dir.join("fnir_fpir.png"))?;
    page.figure("fnir_fpir.png", "FNIR against FPIR, both log; circle: the kiosk's default threshold");
    scores_chart(input).draw(&dir.join("scores.png"))?;
    page.figure("scores.png", "Enrolled people's score with their own template, and strangers' best score (log count)");

    page.heading("Enrolled people not found at the kiosk threshold (lowest own score first)");
    let mut missed: Vec<&Probe> =
        probes.iter().filter(|p| p.enrolled && p.outcome.is_ok() && !found(p, input.threshold)).collect();
    let own = |p: &Probe| p.outcome.as_ref().ok().and_then(|o| o.own).map_or(f32::MIN, |o| o.0);
    missed.sort_by(|a, b| own(a).total_cmp(&own(b)));
    let tiles = probe_tiles(dir, "missed", &missed[..missed.len().min(WORST)], input, thumbs)?;
    page.gallery(&tiles, "every enrolled person with a face was found");
    page.heading("Strangers closest to someone enrolled (highest best score first)");
    let mut close: Vec<&Probe> = probes.iter().filter(|p| !p.enrolled && p.outcome.is_ok()).collect();
    let best = |p: &Probe| p.outcome.as_ref().map_or(f32::MIN, |o| o.best_score);
    close.sort_by(|a, b| best(b).total_cmp(&best(a)));
    let tiles = probe_tiles(dir, "stranger", &close[..close.len().min(WORST)], input, thumbs)?;
    page.gallery(&tiles, "no stranger probes with a face");
    page.heading("Probes without a usable face");
    let no_face: Vec<(&Path, &str)> =
        probes.iter().filter_map(|p| p.outcome.as_ref().err().map(|why| (p.path.as_path(), why.as_str()))).collect();
    gallery::add_no_face(&mut page, dir, &no_face, thumbs, "every probe had a usable face")?;
    let index = page.write(dir)?;
    Ok(Written { index, files: page.files().to_vec() })
}

fn scores_chart(input: &Input) -> Chart {
    let own: Vec<f32> = input
        .probes
        .iter()
        .filter(|p| p.enrolled)
        .filter_map(|p| p.outcome.as_ref().ok().and_then(|o| o.own).map(|o| o.0))
        .collect();
    let strangers: Vec<f32> = input
        .probes
        .iter()
        .filter(|p| !p.enrolled)
        .filter_map(|p| p.outcome.as_ref().ok().map(|o| o.best_score))
        .collect();
    chart::score_histogram(
        input.context.title("Scores"),
        "probes per 0.02 of score",
        [
            (format!("enrolled, own template ({})", own.len()), &own),
            (format!("strangers, best match ({})", strangers.len()), &strangers),
        ],
        vec![Mark::Vertical {
            x: f64::from(input.threshold),
            label: format!("kiosk threshold (FPIR {}): {:.3}", rate_label(input.fpir_target), input.threshold),
        }],
    )
}

/// Each probe's crop beside the enrolment crop it matched best (or should have matched).
fn probe_tiles(
    dir: &Path,
    kind: &str,
    probes: &[&Probe],
    input: &Input,
    thumbs: &dyn Thumbs,
) -> Result<Vec<Tile>, ReportError> {
    let mut tiles = Vec::new();
    for (k, p) in probes.iter().enumerate() {
        let Ok(o) = &p.outcome else { continue };
        let (best_name, best_path) = &input.gallery[o.best];
        let mut caption = vec![format!("{} ({})", p.identity, p.path.display())];
        let shown = match (p.enrolled, o.own) {
            (true, Some((s, r))) => {
                caption.push(format!("own score {s:.3}, rank {r}"));
                if r > 1 {
                    caption.push(format!("best: {best_name} {:.3}", o.best_score));
                }
                input.gallery.iter().find(|(n, _)| n == &p.identity).map_or(best_path, |(_, path)| path)
            }
            _ => {
                caption.push(format!("best: {best_name} {:.3}", o.best_score));
                best_path
            }
        };
        let mut images = Vec::new();
        for (side, path) in [("probe", &p.path), ("enrolled", shown)] {
            let img = thumbs.face(path).map(|f| f.crop).unwrap_or_else(|_| gallery::placeholder());
            images.push(gallery::save(dir, &format!("{kind}-{:02}-{side}", k + 1), &img)?);
        }
        tiles.push(Tile { images, caption });
    }
    Ok(tiles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::pairs::tests::{assert_drawn, Fake};

    fn probe(identity: &str, enrolled: bool, outcome: Result<Outcome, String>) -> Probe {
        Probe { identity: identity.into(), path: PathBuf::from(format!("{identity}/1.jpg")), enrolled, outcome }
    }

    fn probes() -> Vec<Probe> {
        let mut v = Vec::new();
        for k in 0..40 {
            let s = 0.2 + 0.015 * k as f32;
            let rank = if k < 5 { 2 } else { 1 };
            v.push(probe(
                &format!("p{}", k % 8),
                true,
                Ok(Outcome { best: k % 8, best_score: s + 0.05, own: Some((s, rank)) }),
            ));
            v.push(probe(
                &format!("s{k}"),
                false,
                Ok(Outcome { best: k % 8, best_score: 0.1 + 0.008 * k as f32, own: None }),
            ));
        }
        v.push(probe("p1", true, Err("no face found".into())));
        v
    }

    #[test]
    fn cmc_and_rates_follow_the_definitions() {
        let p = probes();
        let curve = cmc(&p, 3);
        // 41 mates: 35 at rank 1, 5 at rank 2, 1 without a face.
        assert!((curve[0].1 - 35.0 / 41.0).abs() < 1e-9);
        assert!((curve[1].1 - 40.0 / 41.0).abs() < 1e-9);
        assert_eq!(curve[1].1, curve[2].1);
        let (fpir, fnir) = rates_at(&p, 0.4);
        // Strangers at 0.1 + 0.008k reach 0.4 from k = 38; mates at rank 1 with 0.2 + 0.015k >= 0.4 from k = 14.
        assert!((fpir - 2.0 / 40.0).abs() < 1e-9, "{fpir}");
        assert!((fnir - 15.0 / 41.0).abs() < 1e-9, "{fnir}");
        let curve = fnir_fpir(&p);
        assert!(curve.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1));
    }

    #[test]
    fn a_report_has_its_plots_and_failures() {
        let p = probes();
        let gallery: Vec<(String, PathBuf)> =
            (0..8).map(|k| (format!("p{k}"), PathBuf::from(format!("p{k}/0.jpg")))).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let input = Input {
            context: Context { dataset: "synthetic".into(), model: "test/int8".into(), date: "2026-11-30".into() },
            gallery: &gallery,
            probes: &p,
            threshold: 0.4,
            fpir_target: 1e-2,
        };
        let written = write(dir.path(), &input, &Fake).expect("written");
        for plot in ["cmc.png", "fnir_fpir.png", "scores.png"] {
            assert_drawn(&dir.path().join(plot));
        }
        for file in &written.files {
            assert!(dir.path().join(file).is_file(), "{file} is referenced but missing");
        }
        let html = std::fs::read_to_string(&written.index).expect("index");
        assert!(html.contains("rank 2") && html.contains("no face found"));
    }
}
