//! `facegate eval ...`: the engine measured on labelled photos.
//!
//! [`pairs`]: 1:1 verification on a pair list; [`faces`]: how many faces are found and usable;
//! [`identify`]: 1:N at a door with strangers ([`split`] writes such a protocol from a folder);
//! [`calibrate`]: the score calibration the device turns a FAR target into a threshold with;
//! [`liveness`]: presentation-attack detection (APCER, BPCER); [`embed`]: the raw points and
//! embeddings, to compare two builds; [`updates`]: template updates replayed on people with
//! many photos.

pub mod calibrate;
pub mod embed;
pub mod faces;
pub mod identify;
pub mod liveness;
pub mod pairs;
pub mod split;
pub mod updates;

use std::path::{Path, PathBuf};

/// Worker threads: the flag, else every core.
pub fn threads(flag: Option<usize>) -> usize {
    flag.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The photos under `root` as `<person>/<photo>` paths relative to it; with `max_images`, at
/// most about that many: whole people, taken evenly through the list.
pub fn photos(root: &Path, max_images: Option<usize>) -> std::io::Result<Vec<PathBuf>> {
    let people = facegate_engine::dataset::people(root, 1)?;
    let total: usize = people.iter().map(|(_, p)| p.len()).sum();
    let keep_every = max_images.map_or(1, |m| total.div_ceil(m.max(1)).max(1));
    let mut out = Vec::new();
    for (_, photos) in people.into_iter().step_by(keep_every) {
        out.extend(photos.into_iter().filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf)));
    }
    Ok(out)
}
