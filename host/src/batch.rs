//! Running the engine over many image files, on several threads, with a progress bar.

use crate::derive::Derive;
use facegate_engine::{image_io, Embedding, Engine, EngineError, FacePolicy, FaceResult, QualityGate};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The outcome for one image and how long its pipeline took.
pub struct Done<T> {
    pub path: PathBuf,
    pub result: Result<T, EngineError>,
    pub millis: f64,
}

/// One embedding per image.
pub type Embedded = Done<Embedding>;

/// A progress bar on a terminal, nothing otherwise.
pub fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Reads `root/path` and applies `derive` (a source with no face to derive from is `NoFace`).
pub fn load(engine: &Engine, root: &Path, path: &Path, derive: Option<Derive>) -> Result<RgbImage, EngineError> {
    let img = image_io::load_image(&root.join(path))?;
    match derive {
        None => Ok(img),
        Some(d) => d.apply(engine, &img, &path.to_string_lossy())?.ok_or(EngineError::NoFace),
    }
}

/// Runs `work` on every `root/path` (read, then derived) using `threads` workers, in order.
pub fn run_files<T: Send>(
    engine: &Engine,
    root: &Path,
    paths: &[PathBuf],
    threads: usize,
    derive: Option<Derive>,
    what: &str,
    work: impl Fn(&RgbImage) -> Result<T, EngineError> + Sync,
) -> Vec<Done<T>> {
    let bar = progress(paths.len(), what);
    let done = facegate_engine::parallel::map_in_order(paths.len(), threads, |i| {
        let path = &paths[i];
        let start = Instant::now();
        let result = load(engine, root, path, derive).and_then(|img| work(&img));
        let millis = start.elapsed().as_secs_f64() * 1e3;
        bar.inc(1);
        Done { path: path.clone(), result, millis }
    });
    bar.finish_and_clear();
    done
}

/// The subject face of every image, no quality gate.
pub fn process_files(
    engine: &Engine,
    root: &Path,
    paths: &[PathBuf],
    threads: usize,
    derive: Option<Derive>,
) -> Vec<Done<FaceResult>> {
    run_files(engine, root, paths, threads, derive, "finding faces", |img| {
        engine.process(img, FacePolicy::Subject, &QualityGate::NONE)
    })
}

/// Embeds every image's subject face (no quality gate); with `mirrored`, each face is embedded
/// with its mirror image ([`Engine::embed_with_mirror`]).
pub fn embed_files(
    engine: &Engine,
    root: &Path,
    paths: &[PathBuf],
    threads: usize,
    mirrored: bool,
    derive: Option<Derive>,
) -> Vec<Embedded> {
    run_files(engine, root, paths, threads, derive, if mirrored { "second look" } else { "embedding" }, |img| {
        let r = engine.process(img, FacePolicy::Subject, &QualityGate::NONE)?;
        if mirrored {
            engine.embed_with_mirror(&r.observation, &r.embedding)
        } else {
            Ok(r.embedding)
        }
    })
}
