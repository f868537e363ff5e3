use std::path::PathBuf;

/// Everything the face engine can refuse, each with enough context to act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read image {path}: {error}")]
    ImageIo { path: PathBuf, error: std::io::Error },
    #[error("unreadable image: {0}")]
    UnreadableImage(String),
    #[error("image too large: {width}x{height} (limit {limit}x{limit})")]
    ImageTooLarge { width: u32, height: u32, limit: u32 },
    #[error(
        "frame too large: {width}x{height} is {} megapixels, more than the {} allowed (max_frame_pixels)",
        mp(u64::from(*width) * u64::from(*height)),
        mp(*max_pixels)
    )]
    FrameTooLarge { width: u32, height: u32, max_pixels: u64 },
    #[error("bad frame: {0}")]
    BadFrame(String),
    #[error("no face found")]
    NoFace,
    #[error("face too small: {size_px:.0} px (need at least {min_px:.0} px)")]
    FaceTooSmall { size_px: f32, min_px: f32 },
    #[error("{count} faces found where exactly one is required")]
    SeveralFaces { count: usize },
    #[error("low quality: {0}")]
    LowQuality(String),
    #[error("model {name}: {reason}")]
    Model { name: String, reason: String },
    #[error("model mismatch: template made by {found:?}, engine runs {expected:?}")]
    ModelMismatch { expected: String, found: String },
    #[error("manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("inference failed in {stage}: {reason}")]
    Inference { stage: &'static str, reason: String },
}

impl EngineError {
    pub(crate) fn inference(stage: &'static str, e: impl std::fmt::Display) -> Self {
        EngineError::Inference { stage, reason: format!("{e:#}") }
    }
}

/// Megapixels, one decimal.
fn mp(pixels: u64) -> String {
    format!("{:.1}", pixels as f64 / 1e6)
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
