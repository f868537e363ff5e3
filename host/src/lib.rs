//! The host side of Facegate as a library, so end-to-end tests drive the same code as the CLI.
//!
//! [`registry`] (SQLite: people, templates, devices), [`link`] (the protocol client),
//! [`paired`] (a signed session with a paired device) and [`sync`] (bringing a device to the
//! registry's set); [`report`] (evaluation reports: plots, failure gallery, one HTML page);
//! [`commands`] holds one module per `facegate` subcommand: arguments and printing.

pub mod batch;
pub mod commands;
pub mod derive;
pub mod link;
pub mod paired;
pub mod pairs;
pub mod proposals;
pub mod registry;
pub mod report;
pub mod sync;

/// Writes `img` as PNG under `<path>.part`, then renames it to `path`: a reader polling the
/// folder (the device following its frame folder, a calibration run) never sees half a file.
pub fn save_png(img: &image::RgbImage, path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let part = path.with_extension("png.part");
    img.save_with_format(&part, image::ImageFormat::Png).with_context(|| format!("writing {}", part.display()))?;
    std::fs::rename(&part, path).with_context(|| format!("renaming {} into place", part.display()))
}
