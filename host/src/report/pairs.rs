//! The 1:1 report (`facegate eval pairs --report DIR`): DET and ROC curves, score histograms
//! with the door's thresholds, the figures with their 10-fold spread, FNMR at fixed FMR, and the
//! failures themselves.

use super::chart::{self, Axis, Chart, Mark, Series};
use super::gallery::{self, Thumbs};
use super::page::{Page, Tile};
use super::{file_name, percent, rate_label, Context, ReportError, Written, FAR_TARGETS};
use facegate_engine::calibration::Calibration;
use facegate_engine::metrics;
use std::path::{Path, PathBuf};

/// Tiles per gallery row of worst pairs.
pub const WORST: usize = 12;

/// One scored pair; a pair with an image that has no usable face scores -1 (a rejection).
#[derive(Debug, Clone)]
pub struct Scored {
    pub fold: usize,
    pub same: bool,
    pub score: f32,
    pub a: PathBuf,
    pub b: PathBuf,
}

/// Another set of scores on one DET/ROC plot (another model variant, another build).
#[derive(Debug, Clone)]
pub struct Compared {
    pub label: String,
    pub pairs: Vec<Scored>,
}

#[derive(Debug)]
pub struct Input<'a> {
    pub context: Context,
    /// The curve's name in the legend (e.g. the model variant).
    pub label: String,
    pub pairs: &'a [Scored],
    pub compare: &'a [Compared],
    /// Images with no usable face and why.
    pub no_face: &'a [(PathBuf, String)],
    /// The shipped score calibration: its thresholds are the ones a door uses.
    pub calibration: Option<&'a Calibration>,
    pub kfold: &'a metrics::KFold,
}

fn split(pairs: &[Scored]) -> (Vec<f32>, Vec<f32>) {
    let genuine = pairs.iter().filter(|p| p.same).map(|p| p.score).collect();
    let impostor = pairs.iter().filter(|p| !p.same).map(|p| p.score).collect();
    (genuine, impostor)
}

/// Mean, standard deviation, min and max.
fn spread(v: &[f64]) -> [f64; 4] {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return [f64::NAN; 4];
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    [mean, sd, v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max)]
}

/// DET points (FMR, FNMR) at every distinct score.
pub fn det_points(genuine: &[f32], impostor: &[f32]) -> Vec<(f64, f64)> {
    metrics::roc(genuine, impostor).into_iter().map(|(_, far, tar)| (far, 1.0 - tar)).collect()
}

/// Writes `dir/index.html` and its pictures.
pub fn write(dir: &Path, input: &Input, thumbs: &dyn Thumbs) -> Result<Written, ReportError> {
    std::fs::create_dir_all(dir).map_err(ReportError::io(dir))?;
    let ctx = &input.context;
    let (genuine, impostor) = split(input.pairs);
    let mut page = Page::new(&ctx.title("Verification (1:1)"));
    page.note(&format!(
        "{} pairs ({} genuine, {} impostor), {} images without a usable face (their pairs count as rejections).",
        input.pairs.len(),
        genuine.len(),
        impostor.len(),
        input.no_face.len()
    ));

    page.heading("Accuracy");
    page.table(&["measure", "all pairs", "per fold: mean ± sd", "per fold: min – max"], &summary_rows(input));
    if !input.compare.is_empty() {
        let mut rows = vec![compare_row(&input.label, input.pairs)];
        rows.extend(input.compare.iter().map(|c| compare_row(&c.label, &c.pairs)));
        page.table(&["scores", "pairs", "AUC", "EER", "TAR @ FAR 1e-3"], &rows);
    }

    page.heading("FNMR at fixed FMR");
    page.table(
        &["FMR", "threshold (these impostors)", "FNMR", "threshold (shipped calibration)", "FMR here", "FNMR here"],
        &fixed_fmr_rows(&genuine, &impostor, input.calibration),
    );
    page.note(
        "A threshold measured on these impostors needs at least 1/FMR of them; the shipped calibration's \
               thresholds are the ones the device turns a FAR setting into.",
    );

    page.heading("Curves");
    let marks: Vec<(f64, f32)> = input
        .calibration
        .map(|c| FAR_TARGETS.iter().map(|&far| (far, c.promise(far).cosine)).collect())
        .unwrap_or_default();
    det_chart(input, &genuine, &impostor, &marks).draw(&dir.join("det.png"))?;
    page.figure(
        "det.png",
        "DET: false non-match rate against false match rate, both log; circles: the shipped calibration's thresholds",
    );
    roc_chart(input).draw(&dir.join("roc.png"))?;
    page.figure("roc.png", "ROC: true accept rate against false accept rate (log)");
    histogram_chart(ctx, &genuine, &impostor, &marks).draw(&dir.join("scores.png"))?;
    page.figure("scores.png", "Score distributions (log count) with the thresholds for each FAR target");

    page.heading("Worst genuine pairs (same person, lowest scores)");
    let mut worst_genuine: Vec<&Scored> = input.pairs.iter().filter(|p| p.same).collect();
    worst_genuine.sort_by(|a, b| a.score.total_cmp(&b.score));
    let tiles = pair_tiles(dir, "genuine", &worst_genuine[..worst_genuine.len().min(WORST)], thumbs)?;
    page.gallery(&tiles, "no genuine pairs");
    page.heading("Worst impostor pairs (different people, highest scores)");
    let mut worst_impostor: Vec<&Scored> = input.pairs.iter().filter(|p| !p.same).collect();
    worst_impostor.sort_by(|a, b| b.score.total_cmp(&a.score));
    let tiles = pair_tiles(dir, "impostor", &worst_impostor[..worst_impostor.len().min(WORST)], thumbs)?;
    page.gallery(&tiles, "no impostor pairs");
    page.heading("Images without a usable face");
    let no_face: Vec<(&Path, &str)> = input.no_face.iter().map(|(p, why)| (p.as_path(), why.as_str())).collect();
    gallery::add_no_face(&mut page, dir, &no_face, thumbs, "every image had a usable face")?;
    let index = page.write(dir)?;
    Ok(Written { index, files: page.files().to_vec() })
}

fn summary_rows(input: &Input) -> Vec<Vec<String>> {
    let mut folds: Vec<usize> = input.pairs.iter().map(|p| p.fold).collect();
    folds.sort_unstable();
    folds.dedup();
    let per_fold = |f: &dyn Fn(&[f32], &[f32]) -> f64| -> Vec<f64> {
        folds
            .iter()
            .map(|&k| {
                let fold: Vec<Scored> = input.pairs.iter().filter(|p| p.fold == k).cloned().collect();
                let (g, i) = split(&fold);
                f(&g, &i)
            })
            .collect()
    };
    let (g, i) = split(input.pairs);
    let row = |name: &str, all: f64, folds: &[f64], show: &dyn Fn(f64) -> String| {
        let [mean, sd, min, max] = spread(folds);
        vec![
            name.to_owned(),
            show(all),
            format!("{} ± {}", show(mean), show(sd)),
            format!("{} – {}", show(min), show(max)),
        ]
    };
    let ratio = |x: f64| if x.is_finite() { format!("{x:.5}") } else { "n/a".into() };
    vec![
        row(
            "accuracy (10-fold: threshold from the other folds)",
            input.kfold.accuracy,
            &input.kfold.fold_accuracy,
            &percent,
        ),
        row("ROC AUC", metrics::auc(&g, &i), &per_fold(&|g, i| metrics::auc(g, i)), &ratio),
        row("EER", metrics::eer(&g, &i), &per_fold(&|g, i| metrics::eer(g, i)), &percent),
        row(
            "TAR @ FAR 1e-2",
            metrics::tar_at_far(&g, &i, 1e-2),
            &per_fold(&|g, i| metrics::tar_at_far(g, i, 1e-2)),
            &percent,
        ),
        row(
            "TAR @ FAR 1e-3",
            metrics::tar_at_far(&g, &i, 1e-3),
            &per_fold(&|g, i| metrics::tar_at_far(g, i, 1e-3)),
            &percent,
        ),
    ]
}

fn compare_row(label: &str, pairs: &[Scored]) -> Vec<String> {
    let (g, i) = split(pairs);
    vec![
        label.to_owned(),
        pairs.len().to_string(),
        format!("{:.5}", metrics::auc(&g, &i)),
        percent(metrics::eer(&g, &i)),
        percent(metrics::tar_at_far(&g, &i, 1e-3)),
    ]
}

fn fixed_fmr_rows(genuine: &[f32], impostor: &[f32], calibration: Option<&Calibration>) -> Vec<Vec<String>> {
    let (g, im) = (metrics::sorted(genuine), metrics::sorted(impostor));
    let mut fmrs = vec![1e-1];
    fmrs.extend(FAR_TARGETS);
    fmrs.into_iter()
        .map(|fmr| {
            let mut row = vec![rate_label(fmr)];
            if (im.len() as f64) * fmr >= 1.0 {
                let t = metrics::threshold_at_far(&im, fmr);
                row.push(format!("{t:.4}"));
                row.push(percent(1.0 - metrics::rate_at_or_above(&g, t)));
            } else {
                row.push(format!("n/a ({} impostors)", im.len()));
                row.push(String::new());
            }
            match calibration {
                Some(c) => {
                    let p = c.promise(fmr);
                    row.push(format!("{:.4}{}", p.cosine, if p.vouched { "" } else { " (not vouched)" }));
                    row.push(percent(metrics::rate_at_or_above(&im, p.cosine)));
                    row.push(percent(1.0 - metrics::rate_at_or_above(&g, p.cosine)));
                }
                None => row.extend(["no calibration".to_owned(), String::new(), String::new()]),
            }
            row
        })
        .collect()
}

fn det_chart(input: &Input, genuine: &[f32], impostor: &[f32], marks: &[(f64, f32)]) -> Chart {
    let mut series = vec![Series { label: input.label.clone(), points: det_points(genuine, impostor), steps: false }];
    for c in input.compare {
        let (g, i) = split(&c.pairs);
        series.push(Series { label: c.label.clone(), points: det_points(&g, &i), steps: false });
    }
    let smallest = |pick: fn(&(f64, f64)) -> f64| {
        series.iter().flat_map(|s| s.points.iter().map(pick)).filter(|v| *v > 0.0).fold(1.0, f64::min)
    };
    let (g, im) = (metrics::sorted(genuine), metrics::sorted(impostor));
    let x = Axis::log_rate("false match rate (FMR)", smallest(|p| p.0), 1e-6);
    // A threshold above every impostor has no place on a log axis: it sits on the left edge.
    let marks = marks
        .iter()
        .map(|&(far, t)| {
            let fmr = metrics::rate_at_or_above(&im, t);
            Mark::Point {
                x: if fmr > 0.0 { fmr } else { x.min },
                y: 1.0 - metrics::rate_at_or_above(&g, t),
                label: format!("FAR {} → {t:.3}{}", rate_label(far), if fmr > 0.0 { "" } else { " (FMR 0 here)" }),
            }
        })
        .collect();
    Chart {
        title: input.context.title("DET"),
        x,
        y: Axis::log_rate("false non-match rate (FNMR)", smallest(|p| p.1), 1e-4),
        series,
        marks,
    }
}

/// The ROC chart (TAR against log FAR) of the scores and any compared ones.
pub fn roc_chart(input: &Input) -> Chart {
    let (genuine, impostor) = split(input.pairs);
    let roc = |g: &[f32], i: &[f32]| -> Vec<(f64, f64)> {
        metrics::roc(g, i).into_iter().map(|(_, far, tar)| (far, tar)).collect()
    };
    let mut series = vec![Series { label: input.label.clone(), points: roc(&genuine, &impostor), steps: false }];
    for c in input.compare {
        let (g, i) = split(&c.pairs);
        series.push(Series { label: c.label.clone(), points: roc(&g, &i), steps: false });
    }
    let min_far = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).filter(|v| *v > 0.0).fold(1.0, f64::min);
    // TAR axis from a round value below the TAR at the smallest FAR shown.
    let low_tar =
        series.iter().flat_map(|s| s.points.iter().filter(|p| p.0 >= min_far).map(|p| p.1)).fold(1.0, f64::min);
    Chart {
        title: input.context.title("ROC"),
        x: Axis::log_rate("false accept rate (FAR)", min_far, 1e-6),
        y: Axis::linear("true accept rate (TAR)", ((low_tar * 20.0).floor() / 20.0).clamp(0.0, 0.95), 1.0),
        series,
        marks: Vec::new(),
    }
}

fn histogram_chart(ctx: &Context, genuine: &[f32], impostor: &[f32], marks: &[(f64, f32)]) -> Chart {
    // Pairs that scored -1 (no face) are left out: they are counted in the table.
    let shown = |v: &[f32]| -> Vec<f32> { v.iter().copied().filter(|s| *s > -1.0).collect() };
    let (g, i) = (shown(genuine), shown(impostor));
    let marks = marks
        .iter()
        .map(|&(far, t)| Mark::Vertical { x: f64::from(t), label: format!("FAR {}: {t:.3}", rate_label(far)) })
        .collect();
    chart::score_histogram(
        ctx.title("Scores"),
        "pairs per 0.02 of score",
        [(format!("genuine ({})", g.len()), &g), (format!("impostor ({})", i.len()), &i)],
        marks,
    )
}

fn pair_tiles(dir: &Path, kind: &str, pairs: &[&Scored], thumbs: &dyn Thumbs) -> Result<Vec<Tile>, ReportError> {
    let mut tiles = Vec::new();
    for (k, p) in pairs.iter().enumerate() {
        let mut images = Vec::new();
        let mut caption = vec![format!("score {:.3}", p.score)];
        for (side, path) in [("a", &p.a), ("b", &p.b)] {
            let (img, note) = match thumbs.face(path) {
                Ok(face) => (face.crop, face.notes),
                Err(why) => (thumbs.original(path).unwrap_or_else(|_| gallery::placeholder()), why),
            };
            images.push(gallery::save(dir, &format!("{kind}-{:02}-{side}", k + 1), &img)?);
            caption.push(format!("{}: {note}", file_name(path)));
        }
        tiles.push(Tile { images, caption });
    }
    Ok(tiles)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::gallery::Face;
    use image::RgbImage;

    /// Synthetic faces: a crop whose colour depends on the file name.
    pub struct Fake;
    impl Thumbs for Fake {
        fn face(&self, path: &Path) -> Result<Face, String> {
            let name = path.to_string_lossy();
            if name.contains("noface") {
                return Err("no face found".into());
            }
            let shade = (name.len() * 37 % 200) as u8;
            Ok(Face { crop: RgbImage::from_pixel(112, 112, image::Rgb([shade, 90, 160])), notes: "yaw 3°".into() })
        }
        fn original(&self, _: &Path) -> Result<RgbImage, String> {
            Ok(RgbImage::from_pixel(160, 120, image::Rgb([20, 140, 60])))
        }
    }

    /// 10 folds of 60 genuine and 60 impostor scores, overlapping a little.
    pub fn scored() -> Vec<Scored> {
        let mut out = Vec::new();
        let mut x = 12345u64;
        let mut noise = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as f32 / (1u64 << 31) as f32
        };
        for fold in 0..10 {
            for k in 0..120 {
                let same = k % 2 == 0;
                let score = if same { 0.25 + 0.6 * noise() } else { -0.1 + 0.45 * noise() };
                out.push(Scored {
                    fold,
                    same,
                    score,
                    a: PathBuf::from(format!("p{k}/a_{fold}.jpg")),
                    b: PathBuf::from(format!("p{k}/b_{fold}.jpg")),
                });
            }
        }
        out
    }

    /// A PNG that exists, has the chart's size and is more than a blank page.
    pub fn assert_drawn(path: &Path) {
        let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
        assert_eq!(img.dimensions(), super::super::chart::SIZE, "{}", path.display());
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        let share = 1.0 - white as f64 / f64::from(img.width() * img.height());
        assert!(share > 0.02, "{}: only {:.3} of the pixels drawn", path.display(), share);
        let colours: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(colours.len() > 20, "{}: {} colours (text is anti-aliased)", path.display(), colours.len());
    }

    #[test]
    fn a_report_has_its_plots_tables_and_failures() {
        let pairs = scored();
        let kfold = metrics::kfold_accuracy(&pairs.iter().map(|p| (p.fold, p.score, p.same)).collect::<Vec<_>>());
        let mut other = pairs.clone();
        other.iter_mut().filter(|p| p.same).for_each(|p| p.score -= 0.1);
        let compare = [Compared { label: "fp32".into(), pairs: other }];
        let no_face = [(PathBuf::from("p9/noface.jpg"), "no face found".to_owned())];
        let dir = tempfile::tempdir().expect("temp dir");
        let input = Input {
            context: Context { dataset: "synthetic".into(), model: "test/int8".into(), date: "2026-11-30".into() },
            label: "int8".into(),
            pairs: &pairs,
            compare: &compare,
            no_face: &no_face,
            calibration: None,
            kfold: &kfold,
        };
        let written = write(dir.path(), &input, &Fake).expect("report written");
        for plot in ["det.png", "roc.png", "scores.png"] {
            assert_drawn(&dir.path().join(plot));
        }
        for file in &written.files {
            assert!(dir.path().join(file).is_file(), "{file} is referenced but missing");
        }
        // 12 worst genuine + 12 worst impostor pairs (two crops each), one original.
        assert_eq!(written.files.iter().filter(|f| f.starts_with("gallery/")).count(), 49);
        let html = std::fs::read_to_string(&written.index).expect("index");
        assert!(html.contains("FNMR at fixed FMR") && html.contains("fp32") && html.contains("noface.jpg"));
        // The lowest genuine score leads its gallery.
        let lowest = pairs.iter().filter(|p| p.same).map(|p| p.score).fold(f32::INFINITY, f32::min);
        assert!(html.contains(&format!("score {lowest:.3}")));
    }

    #[test]
    fn histograms_count_every_score_in_range() {
        let h = chart::histogram(&[0.0, 0.01, 0.5, 0.99, 1.5], 0.0, 1.0, 0.1);
        assert_eq!(h.len(), 11);
        assert_eq!(h.iter().map(|p| p.1).sum::<f64>(), 4.0, "1.5 is out of range");
        assert_eq!(h[0].1, 2.0);
    }

    #[test]
    fn det_points_fall_as_the_threshold_rises() {
        let d = det_points(&[0.9, 0.8, 0.3], &[0.1, 0.2, 0.85]);
        // Highest threshold first: FMR rises and FNMR falls along the list.
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1));
    }
}
