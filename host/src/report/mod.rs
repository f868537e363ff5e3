//! Evaluation reports a person can read: one static HTML page with its PNGs in a folder.
//!
//! [`chart`] draws the plots (DET, ROC, score histograms, CMC, FNIR/FPIR) with an embedded
//! font; [`gallery`] makes the failure thumbnails (aligned crops, or the downscaled original when
//! no face was found); [`page`] writes the HTML. [`pairs`] (1:1) and [`identify`] (1:N) decide
//! what a report shows, from the scores `facegate eval pairs|identify` computed.

pub mod chart;
pub mod explain;
pub mod gallery;
pub mod identify;
pub mod page;
pub mod pairs;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("drawing a plot: {0}")]
    Plot(String),
    #[error("writing {path}: {source}")]
    Image { path: std::path::PathBuf, source: image::ImageError },
}

impl ReportError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
        move |source| ReportError::Io { path: path.to_owned(), source }
    }
}

/// A report written: its page and every file the page refers to (relative to it).
#[derive(Debug)]
pub struct Written {
    pub index: std::path::PathBuf,
    pub files: Vec<String>,
}

/// What a report's title names: the data, the model, the day.
#[derive(Debug, Clone)]
pub struct Context {
    pub dataset: String,
    pub model: String,
    pub date: String,
}

impl Context {
    /// `engine`'s model and variant on `dataset`, today (local time zone).
    pub fn today(dataset: &str, engine: &facegate_engine::Engine) -> Context {
        Context {
            dataset: dataset.to_owned(),
            model: format!("{} ({})", engine.embedding_id, engine.embed_variant),
            date: jiff::Zoned::now().date().to_string(),
        }
    }

    pub fn title(&self, what: &str) -> String {
        format!("{what}: {}, {}, {}", self.dataset, self.model, self.date)
    }
}

/// A path's file name, or the whole path when it has none: how a report and a command name an
/// image or a data set.
pub fn file_name(p: &std::path::Path) -> String {
    p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// FAR targets whose thresholds are drawn and tabled.
pub const FAR_TARGETS: [f64; 4] = [1e-2, 1e-3, 1e-4, 1e-5];

/// `1e-3` style.
pub fn rate_label(r: f64) -> String {
    format!("{r:.0e}")
}

/// A share as a percentage with two decimals.
pub fn percent(r: f64) -> String {
    if r.is_finite() {
        format!("{:.2}%", r * 100.0)
    } else {
        "n/a".to_owned()
    }
}
