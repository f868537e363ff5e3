//! Line charts as PNG: titled, labelled axes (linear or log), a legend, marked thresholds.
//!
//! One drawing function serves every plot of a report (DET, ROC, score histograms, CMC,
//! FNIR/FPIR): a log axis is drawn as a linear one over log10 of the values, with decades as
//! labelled ticks and 2..9 of each decade as grid lines, so one coordinate type fits them all.

use super::ReportError;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

/// Pixel size of every chart.
pub const SIZE: (u32, u32) = (800, 560);

/// Curve colours, in the order series are given.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

#[derive(Debug, Clone)]
pub struct Axis {
    pub label: String,
    /// Shown range, in data units (both ends > 0 on a log axis).
    pub min: f64,
    pub max: f64,
    pub log: bool,
}

impl Axis {
    pub fn linear(label: &str, min: f64, max: f64) -> Axis {
        Axis { label: label.to_owned(), min, max, log: false }
    }

    pub fn log(label: &str, min: f64, max: f64) -> Axis {
        Axis { label: label.to_owned(), min, max, log: true }
    }

    /// A log axis from the decade at or below `smallest` (never below `floor`) to 1.
    pub fn log_rate(label: &str, smallest: f64, floor: f64) -> Axis {
        let low = if smallest > 0.0 { 10f64.powf(smallest.log10().floor()) } else { floor };
        Axis::log(label, low.max(floor).min(0.1), 1.0)
    }

    /// Data value to chart coordinate; `None` where a log axis cannot show it.
    fn to_chart(&self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            return None;
        }
        if self.log {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    }

    fn chart_range(&self) -> (f64, f64) {
        if self.log {
            (self.min.log10(), self.max.log10())
        } else {
            (self.min, self.max)
        }
    }

    /// Labelled ticks (decades, or round steps) and grid lines between them.
    fn coord(&self) -> Scale {
        let (lo, hi) = self.chart_range();
        let (bold, light) = if self.log {
            let decades: Vec<f64> = (lo.ceil() as i32..=hi.floor() as i32).map(f64::from).collect();
            let light: Vec<f64> = (lo.floor() as i32..=hi.floor() as i32)
                .flat_map(|d| (2..10).map(move |k| f64::from(d) + f64::from(k).log10()))
                .filter(|v| (lo..=hi).contains(v))
                .collect();
            (decades, light)
        } else {
            let step = nice_step((hi - lo) / 8.0);
            let ticks: Vec<f64> =
                ((lo / step).ceil() as i64..=(hi / step).floor() as i64).map(|k| k as f64 * step).collect();
            let light = ((lo / step * 2.0).ceil() as i64..=(hi / step * 2.0).floor() as i64)
                .map(|k| k as f64 * step / 2.0)
                .collect();
            (ticks, light)
        };
        Scale { lo, hi, bold, light }
    }

    fn format(&self, v: f64) -> String {
        if self.log {
            let d = v.round() as i32;
            match d {
                0..=9 => 10u64.pow(d as u32).to_string(),
                -1 => "0.1".to_owned(),
                _ => format!("1e{d}"),
            }
        } else if v.abs() < 1e-9 {
            "0".to_owned()
        } else {
            let s = format!("{v:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
    }
}

/// A linear coordinate with the ticks [`Axis::coord`] chose: labelled (`bold`) and grid (`light`).
struct Scale {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ranged for Scale {
    type ValueType = f64;
    // Labels come from the chart's formatter ([`Axis::format`]).
    type FormatOption = DefaultFormatting;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let share = if self.hi > self.lo { (v - self.lo) / (self.hi - self.lo) } else { 0.0 };
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|k| k * p).find(|s| *s >= raw).unwrap_or(10.0 * p)
}

/// One curve, in data units.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn as a staircase through the points (a histogram's outline).
    pub steps: bool,
}

/// Something marked on the chart: an operating point, or a vertical line (a threshold).
#[derive(Debug, Clone)]
pub enum Mark {
    Point { x: f64, y: f64, label: String },
    Vertical { x: f64, label: String },
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
}

/// The embedded font, registered once for the whole process.
pub(crate) fn register_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    // Cannot fail for the bundled font; the check is for a broken build.
    ok.then_some(()).ok_or_else(|| ReportError::Plot("the embedded font did not load".into()))
}

fn plot_err<E: std::fmt::Debug>(e: E) -> ReportError {
    ReportError::Plot(format!("{e:?}"))
}

impl Chart {
    /// Draws the chart to `path` (PNG, [`SIZE`]).
    pub fn draw(&self, path: &Path) -> Result<(), ReportError> {
        register_font()?;
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (x, y) = (&self.x, &self.y);
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x.coord(), y.coord())
            .map_err(plot_err)?;
        let (fx, fy) = (|v: &f64| x.format(*v), |v: &f64| y.format(*v));
        chart
            .configure_mesh()
            .x_desc(x.label.as_str())
            .y_desc(y.label.as_str())
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .bold_line_style(BLACK.mix(0.25))
            .light_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(plot_err)?;
        let (xr, yr) = (x.chart_range(), y.chart_range());
        let inside = |(px, py): (f64, f64)| (px, py.clamp(yr.0, yr.1));
        for (i, s) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let mut pts: Vec<(f64, f64)> =
                s.points.iter().filter_map(|&(a, b)| Some((x.to_chart(a)?, y.to_chart(b)?))).collect();
            if s.steps {
                pts = staircase(&pts);
            }
            let pts: Vec<(f64, f64)> = pts.into_iter().filter(|p| (xr.0..=xr.1).contains(&p.0)).map(inside).collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(plot_err)?
                .label(s.label.as_str())
                .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 20, ly)], color.stroke_width(2)));
        }
        for (k, m) in self.marks.iter().enumerate() {
            let style = BLACK.mix(0.8);
            match m {
                Mark::Point { x: px, y: py, label } => {
                    let (Some(cx), Some(cy)) = (x.to_chart(*px), y.to_chart(*py)) else { continue };
                    if !(xr.0..=xr.1).contains(&cx) || !(yr.0..=yr.1).contains(&cy) {
                        continue;
                    }
                    chart
                        .draw_series([EmptyElement::at((cx, cy))
                            + Circle::new((0, 0), 5, style.stroke_width(2))
                            + Text::new(label.clone(), (8, -4 - 14 * (k as i32 % 2)), ("sans-serif", 13))])
                        .map_err(plot_err)?;
                }
                Mark::Vertical { x: px, label } => {
                    let Some(cx) = x.to_chart(*px) else { continue };
                    if !(xr.0..=xr.1).contains(&cx) {
                        continue;
                    }
                    chart
                        .draw_series(DashedLineSeries::new([(cx, yr.0), (cx, yr.1)], 6, 4, style.into()))
                        .map_err(plot_err)?;
                    // Labels stepped down the plot so neighbouring thresholds stay readable.
                    chart
                        .draw_series([EmptyElement::at((cx, yr.1))
                            + Text::new(label.clone(), (4, 4 + 16 * k as i32), ("sans-serif", 13))])
                        .map_err(plot_err)?;
                }
            }
        }
        if self.series.len() > 1 || self.series.first().is_some_and(|s| !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font(("sans-serif", 14))
                .border_style(BLACK.mix(0.4))
                .background_style(WHITE.mix(0.85))
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
        Ok(())
    }
}

/// Histogram outline: (left edge, count) per bin of `width` from `lo`, closed at the right.
pub fn histogram(scores: &[f32], lo: f64, hi: f64, width: f64) -> Vec<(f64, f64)> {
    let bins = ((hi - lo) / width).ceil().max(1.0) as usize;
    let mut counts = vec![0usize; bins];
    for &s in scores {
        let k = ((f64::from(s) - lo) / width).floor();
        if k >= 0.0 && (k as usize) < bins {
            counts[k as usize] += 1;
        }
    }
    let mut out: Vec<(f64, f64)> = counts.iter().enumerate().map(|(k, &c)| (lo + k as f64 * width, c as f64)).collect();
    out.push((lo + bins as f64 * width, 0.0));
    out
}

/// Two score distributions as histogram outlines (bins of 0.02, log count), with `marks`.
pub fn score_histogram(title: String, y_label: &str, series: [(String, &[f32]); 2], marks: Vec<Mark>) -> Chart {
    let lo = series.iter().flat_map(|s| s.1.iter().copied()).fold(0.0f32, f32::min);
    let lo = (f64::from(lo) * 10.0).floor() / 10.0;
    let hists: Vec<(String, Vec<(f64, f64)>)> =
        series.into_iter().map(|(label, v)| (label, histogram(v, lo, 1.0, 0.02))).collect();
    let top = hists.iter().flat_map(|h| h.1.iter().map(|p| p.1)).fold(1.0, f64::max);
    Chart {
        title,
        x: Axis::linear("cosine score", lo, 1.0),
        y: Axis::log(y_label, 0.5, 10f64.powf(top.log10().ceil()).max(10.0)),
        series: hists
            .into_iter()
            // Empty bins sit on the bottom edge (0.5) of the log count axis.
            .map(|(label, h)| Series {
                label,
                points: h.into_iter().map(|(x, c)| (x, c.max(0.5))).collect(),
                steps: true,
            })
            .collect(),
        marks,
    }
}

/// Horizontal-then-vertical steps through `pts` (already in chart coordinates).
fn staircase(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(pts.len() * 2);
    for w in pts.windows(2) {
        out.push(w[0]);
        out.push((w[1].0, w[0].1));
    }
    out.extend(pts.last());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(0.04), 0.05);
        assert_eq!(nice_step(7.0), 10.0);
    }

    #[test]
    fn log_axes_label_decades() {
        let a = Axis::log_rate("FMR", 3.3e-4, 1e-6);
        assert_eq!((a.min, a.max), (1e-4, 1.0));
        assert_eq!(a.format(-3.0), "1e-3");
        assert_eq!(a.format(0.0), "1");
        assert_eq!(a.format(2.0), "100", "counts read as numbers");
        assert_eq!(a.to_chart(0.0), None, "zero has no place on a log axis");
        let lin = Axis::linear("score", -0.2, 1.0);
        assert_eq!(lin.format(0.25), "0.25");
        assert_eq!(lin.format(1e-12), "0");
    }
}
