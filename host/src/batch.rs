//! Running the engine over many image files, on several threads, with a progress bar.

use facegate_engine::{Embedding, Engine, EngineError, FacePolicy, QualityGate};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The outcome for one image and how long its pipeline took.
pub struct Embedded {
    pub path: PathBuf,
    pub result: Result<Embedding, EngineError>,
    pub millis: f64,
}

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

/// Embeds every `root/path` (subject face, no quality gate) using `threads` workers; with
/// `mirrored`, each face is embedded with its mirror image ([`Engine::embed_with_mirror`]).
pub fn embed_files(engine: &Engine, root: &Path, paths: &[PathBuf], threads: usize, mirrored: bool) -> Vec<Embedded> {
    let bar = progress(paths.len(), if mirrored { "second look" } else { "embedding" });
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Embedded>>> = Mutex::new((0..paths.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let start = Instant::now();
                let result =
                    engine.process_file(&root.join(path), FacePolicy::Subject, &QualityGate::NONE).and_then(|r| {
                        if mirrored {
                            engine.embed_with_mirror(&r.observation, &r.embedding)
                        } else {
                            Ok(r.embedding)
                        }
                    });
                let millis = start.elapsed().as_secs_f64() * 1e3;
                if let Ok(mut slots) = results.lock() {
                    slots[i] = Some(Embedded { path: path.clone(), result, millis });
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    results.into_inner().unwrap_or_default().into_iter().flatten().collect()
}
