//! The Facegate face engine: one stage per module, data flowing one way. The device firmware
//! and the host tool both run it.
//!
//! ```text
//! source -> image_io -> detect -> landmarks -> align -> quality -> embed -> matcher
//!  frames    decode     boxes     68 -> 5 pts   112x112   gate      512-d    1:1 / 1:N
//! ```
//! [`calibration`] and [`metrics`] turn scores into decisions and figures; [`explain`] shows
//! which parts of a face a score rests on (occlusion maps); [`model`] loads
//! and verifies the networks, [`kernels`] are our tract operators; [`parallel`] spreads work over
//! threads in order; [`dataset`] lists folders
//! of labelled photos for evaluation and benchmarks.

pub mod align;
pub mod calibration;
pub mod dataset;
pub mod detect;
pub mod embed;
pub mod error;
pub mod explain;
pub mod image_io;
pub mod kernels;
pub mod landmarks;
pub mod liveness;
pub mod matcher;
pub mod metrics;
pub mod model;
pub mod parallel;
pub mod quality;
pub mod resample;
pub mod search;
pub mod source;
pub mod updates;

pub use calibration::Calibration;
pub use detect::{DetectConfig, FaceBox};
pub use embed::Embedding;
pub use error::{EngineError, Result};
pub use quality::{QualityGate, QualityIssue, QualityMetrics};
pub use search::Search;

use align::Similarity;
use image::RgbImage;
use kernels::Kernels;
use landmarks::{FivePoints, Point};
use model::{Manifest, Net};
use std::path::PathBuf;

/// What to load.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub models_dir: PathBuf,
    /// Embedding variant from the manifest (e.g. `int8`, `fp32`); `None` = the manifest's
    /// `shipped_embed`.
    pub embed_variant: Option<String>,
    /// Embed every crop with its mirror image as well (raw outputs summed). Off by default: the
    /// second look gets the same accuracy on LFW by mirroring only templates and the probes too
    /// close to call, without a second pass on every face.
    pub flip: bool,
    pub detect: DetectConfig,
    /// Our depthwise/PReLU operators (default) or tract's alone (for comparison).
    pub kernels: Kernels,
    /// How hard [`Engine::detect`] looks when the plain pass finds nothing.
    pub search: Search,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            models_dir: model::default_models_dir(),
            embed_variant: None,
            flip: false,
            detect: DetectConfig::default(),
            kernels: Kernels::default(),
            search: Search::default(),
        }
    }
}

/// How many faces an image may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FacePolicy {
    /// Exactly one face: another face at least half the subject's size is an error
    /// (enrolment must not guess who is meant).
    Single,
    /// Take the subject (largest, then most central) and report the others (door camera).
    Subject,
}

/// A face found, located and aligned, before embedding.
#[derive(Debug, Clone)]
pub struct Observation {
    pub face: FaceBox,
    pub landmarks: Vec<Point>,
    pub five: FivePoints,
    pub to_crop: Similarity,
    pub aligned: RgbImage,
    pub quality: QualityMetrics,
    /// The face was found only in the picture turned this many degrees counter-clockwise;
    /// `face`, `landmarks`, `five` and `to_crop` are in that turned picture's pixels.
    pub turned_deg: f32,
}

/// A face embedded, with what else was in the picture.
#[derive(Debug, Clone)]
pub struct FaceResult {
    pub observation: Observation,
    pub embedding: Embedding,
    /// Other faces in the frame (not the subject).
    pub others: Vec<FaceBox>,
}

pub struct Engine {
    pub detector: detect::Detector,
    pub landmarks: landmarks::LandmarkNet,
    pub embedder: embed::Embedder,
    /// Embedding-space id: templates from another id are refused.
    pub embedding_id: String,
    pub embed_variant: String,
    pub manifest: Manifest,
    /// Score calibration for this embedding space, if shipped.
    pub calibration: Option<Calibration>,
    kernels: Kernels,
    search: Search,
}

impl Engine {
    pub fn load(config: &EngineConfig) -> Result<Engine> {
        let manifest = Manifest::load(&config.models_dir)?;
        let detect_net = Net::from_manifest(&manifest, manifest.find("detect", None)?, config.kernels)?;
        let landmark_net = Net::from_manifest(&manifest, manifest.find("landmark", None)?, config.kernels)?;
        let variant = config.embed_variant.as_deref().or(manifest.shipped_embed.as_deref());
        let embed_entry = manifest.find("embed", variant)?;
        let embed_net = Net::from_manifest(&manifest, embed_entry, config.kernels)?;
        let embedding_id = embed_entry.embedding_id.clone().unwrap_or_else(|| embed_entry.name.clone());
        let embed_variant = embed_entry.variant.clone();
        // Scores differ slightly between variants, so each has its own calibration.
        let calibration_path = config.models_dir.join(format!("calibration-{embed_variant}.toml"));
        let calibration = if calibration_path.exists() {
            let c = Calibration::load(&calibration_path)?;
            if c.embedding_id != embedding_id {
                return Err(EngineError::ModelMismatch { expected: embedding_id, found: c.embedding_id });
            }
            Some(c)
        } else {
            None
        };
        Ok(Engine {
            detector: detect::Detector::new(detect_net, config.detect)?,
            landmarks: landmarks::LandmarkNet::new(landmark_net),
            embedder: embed::Embedder::new(embed_net, config.flip),
            embedding_id,
            embed_variant,
            manifest,
            calibration,
            kernels: config.kernels,
            search: config.search,
        })
    }

    /// All faces, best score first: the plain pass, then the fallbacks of [`search`] that
    /// apply (each only when the passes before found nothing or, for tiles, only tiny faces).
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<FaceBox>> {
        let mut faces = self.detector.detect(img)?;
        if self.search == Search::Plain {
            return Ok(faces);
        }
        let (w, h) = img.dimensions();
        if self.search == Search::Photo && search::only_tiny(&faces, w, h) {
            for region in search::tiles(w, h) {
                faces.extend(self.detector.detect_region(img, region)?);
            }
            // The same face seen by the plain pass and a tile keeps one (score-weighted) box.
            faces = detect::nms(faces, self.detector.config.nms_iou);
        }
        if faces.is_empty() {
            faces = self.detect_padded(img)?;
        }
        if faces.is_empty() && search::mean_grey(img) < search::DARK_MEAN {
            // Found in the brightened copy, judged (and refused as too dark) on the real one.
            let bright = search::brightened(img);
            faces = self.detector.detect(&bright)?;
            if faces.is_empty() {
                faces = self.detect_padded(&bright)?;
            }
        }
        Ok(faces)
    }

    /// The plain pass on the picture centred on a larger canvas (a face filling the frame).
    fn detect_padded(&self, img: &RgbImage) -> Result<Vec<FaceBox>> {
        let (canvas, (ox, oy)) = search::padded(img);
        let mut faces = self.detector.detect(&canvas)?;
        for f in &mut faces {
            (f.x1, f.y1, f.x2, f.y2) = (f.x1 - ox, f.y1 - oy, f.x2 - ox, f.y2 - oy);
        }
        Ok(faces)
    }

    /// Landmarks, alignment and quality for one detected face.
    pub fn observe(&self, img: &RgbImage, face: &FaceBox) -> Result<Observation> {
        let landmarks = self.landmarks.landmarks(img, face)?;
        let five = landmarks::five_points(&landmarks)
            .ok_or_else(|| EngineError::inference("landmarks", "expected 68 points"))?;
        let (aligned, to_crop) =
            align::align(img, &five).ok_or_else(|| EngineError::LowQuality("landmarks collapsed to a point".into()))?;
        let quality = quality::measure(face, &five, &aligned);
        Ok(Observation { face: *face, landmarks, five, to_crop, aligned, quality, turned_deg: 0.0 })
    }

    /// Picks the subject according to `policy`; returns its index and the other faces.
    pub fn choose(&self, img: &RgbImage, faces: &[FaceBox], policy: FacePolicy) -> Result<usize> {
        let subject =
            detect::choose_subject(faces, img.width() as f32, img.height() as f32).ok_or(EngineError::NoFace)?;
        if policy == FacePolicy::Single {
            let side = faces[subject].width().min(faces[subject].height());
            let rivals = faces.iter().filter(|f| f.width().min(f.height()) >= 0.5 * side).count();
            if rivals > 1 {
                return Err(EngineError::SeveralFaces { count: rivals });
            }
        }
        Ok(subject)
    }

    /// The whole pipeline on one picture: detect, choose, observe, gate, embed.
    /// A photo with no face upright is tried turned ([`search::ROTATIONS`]).
    pub fn process(&self, img: &RgbImage, policy: FacePolicy, gate: &QualityGate) -> Result<FaceResult> {
        let faces = self.detect(img)?;
        if faces.is_empty() && self.search == Search::Photo {
            for deg in search::ROTATIONS {
                let turned = search::rotated(img, deg);
                let faces = self.detect(&turned)?;
                if !faces.is_empty() {
                    let mut found = self.process_faces(&turned, &faces, policy, gate)?;
                    found.observation.turned_deg = deg;
                    return Ok(found);
                }
            }
        }
        self.process_faces(img, &faces, policy, gate)
    }

    fn process_faces(
        &self,
        img: &RgbImage,
        faces: &[FaceBox],
        policy: FacePolicy,
        gate: &QualityGate,
    ) -> Result<FaceResult> {
        let subject = self.choose(img, faces, policy)?;
        let observation = self.observe(img, &faces[subject])?;
        let issues = gate.check(&observation.quality);
        if let Some(first) = issues.first() {
            if let QualityIssue::TooSmall { px, min } = *first {
                return Err(EngineError::FaceTooSmall { size_px: px, min_px: min });
            }
            let reasons: Vec<String> = issues.iter().map(ToString::to_string).collect();
            return Err(EngineError::LowQuality(reasons.join("; ")));
        }
        let embedding = self.embedder.embed(&observation.aligned)?;
        let others = faces.iter().enumerate().filter(|(i, _)| *i != subject).map(|(_, f)| *f).collect();
        Ok(FaceResult { observation, embedding, others })
    }

    /// Whether a single-pass score is too close to call, so the probe deserves a second look
    /// with [`Engine::embed_with_mirror`]. Never without a calibration, nor when every
    /// embedding is mirrored already (`flip`).
    pub fn needs_second_look(&self, score: f32) -> bool {
        !self.embedder.flip && self.calibration.as_ref().is_some_and(|c| c.too_close_to_call(score))
    }

    /// The observed face's one-pass embedding `single` with its mirror image's pass added
    /// (see [`embed::Embedder::with_mirror`]).
    pub fn embed_with_mirror(&self, observation: &Observation, single: &Embedding) -> Result<Embedding> {
        self.embedder.with_mirror(&observation.aligned, single)
    }

    /// The occlusion map of `observation`'s aligned crop against `other` ([`explain`]), with
    /// the face areas placed by the observation's own five points.
    pub fn explain(
        &self,
        observation: &Observation,
        other: &Embedding,
        occlusion: explain::Occlusion,
        threads: usize,
    ) -> Result<explain::OcclusionMap> {
        let five = observation.five.map(|p| observation.to_crop.apply(p));
        explain::occlusion_map(&self.embedder, &observation.aligned, &five, other, occlusion, threads)
    }

    /// Loads the liveness check `models/liveness.toml` chose (kept out of [`Engine::load`]: a
    /// door without it does not pay for it).
    pub fn load_liveness(&self) -> Result<liveness::Liveness> {
        let config = liveness::LivenessConfig::load(&self.manifest.dir.join(liveness::LivenessConfig::FILE))?;
        self.liveness_of(&config.models, config.threshold)
    }

    /// Liveness networks by manifest name, their scores averaged.
    pub fn liveness_of(&self, names: &[String], threshold: f32) -> Result<liveness::Liveness> {
        let mut nets = Vec::with_capacity(names.len());
        for name in names {
            let entry =
                self.manifest.models.iter().find(|m| m.role == "liveness" && &m.name == name).ok_or_else(|| {
                    EngineError::Manifest {
                        path: self.manifest.dir.join("manifest.toml"),
                        reason: format!("no liveness model named {name:?}"),
                    }
                })?;
            let crop = entry.crop.ok_or_else(|| EngineError::Model {
                name: name.clone(),
                reason: "liveness entry without its crop".into(),
            })?;
            nets.push(liveness::LivenessNet::new(Net::from_manifest(&self.manifest, entry, self.kernels)?, crop));
        }
        Ok(liveness::Liveness { nets, threshold })
    }

    /// Decodes a file and runs [`Engine::process`].
    pub fn process_file(&self, path: &std::path::Path, policy: FacePolicy, gate: &QualityGate) -> Result<FaceResult> {
        let img = image_io::load_image(path)?;
        self.process(&img, policy, gate)
    }
}

/// Keeps memory the networks free inside the process instead of handing it back to the kernel
/// after every inference. Their intermediate tensors are 0.1-2 MB; glibc serves blocks that
/// large with `mmap` and unmaps them on free, so every frame paid the page faults again
/// (docs/PERFORMANCE.md). Binaries call it first thing; it is process-wide, so the library never
/// calls it on its own. No-op off glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator thresholds; called before other threads start.
        unsafe {
            // Blocks up to 32 MB (glibc's maximum) come from the heap, not fresh mappings...
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            // ...and up to 64 MB of free heap stays mapped rather than being trimmed.
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        }
    }
}
