//! A display that writes PNG files instead of driving a panel: for headless kiosks, demos and
//! tests. Each new screen becomes `{counter:05}-{slug}-{panel}.png`, once per panel.

use super::{render, Panel, Screen};
use std::io::Cursor;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// Creating, listing or writing the output directory failed.
    #[error("display output {path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// The PNG encoder refused the image.
    #[error("cannot encode {path} as PNG: {error}")]
    Encode { path: String, error: image::ImageError },
}

/// Writes every screen that differs from the previous one to a directory, for both panels.
#[derive(Debug)]
pub struct PngDisplay {
    dir: PathBuf,
    counter: u64,
    last: Option<Screen>,
}

impl PngDisplay {
    /// Creates `dir` if needed. Numbering continues after files already there, so a restarted
    /// kiosk does not overwrite the previous run's frames.
    pub fn new(dir: &Path) -> Result<PngDisplay, DisplayError> {
        let io = |error| DisplayError::Io { path: dir.display().to_string(), error };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut counter = 0;
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            if let Some(n) = name.to_str().and_then(frame_number) {
                counter = counter.max(n.saturating_add(1));
            }
        }
        Ok(PngDisplay { dir: dir.to_path_buf(), counter, last: None })
    }

    /// Shows `screen`: when it differs from the last one shown, writes one PNG per panel and
    /// returns their paths (colour first); otherwise writes nothing and returns no paths.
    /// After an error the screen counts as not shown, so showing it again retries.
    pub fn show(&mut self, screen: &Screen) -> Result<Vec<PathBuf>, DisplayError> {
        if self.last.as_ref() == Some(screen) {
            return Ok(Vec::new());
        }
        let mut written = Vec::with_capacity(Panel::ALL.len());
        for panel in Panel::ALL {
            let path = self.dir.join(format!("{:05}-{}-{}.png", self.counter, screen.slug(), panel.slug()));
            write_png(&render(screen, panel), &path)?;
            written.push(path);
        }
        tracing::debug!(screen = screen.slug(), counter = self.counter, "display frame written");
        self.counter += 1;
        self.last = Some(screen.clone());
        Ok(written)
    }
}

/// The counter of a file this display wrote: `00042-granted-colour.png` -> 42.
fn frame_number(name: &str) -> Option<u64> {
    let (digits, rest) = name.split_once('-')?;
    if digits.len() < 5 || !digits.bytes().all(|b| b.is_ascii_digit()) || !rest.ends_with(".png") {
        return None;
    }
    digits.parse().ok()
}

/// Encodes in memory and renames into place so a viewer polling the directory never reads a
/// half-written file.
fn write_png(img: &image::RgbImage, path: &Path) -> Result<(), DisplayError> {
    let shown = || path.display().to_string();
    let mut bytes = Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png).map_err(|error| DisplayError::Encode { path: shown(), error })?;
    let tmp = path.with_extension("png.tmp");
    std::fs::write(&tmp, bytes.into_inner())
        .map_err(|error| DisplayError::Io { path: tmp.display().to_string(), error })?;
    std::fs::rename(&tmp, path).map_err(|source| {
        // Best effort: a stray temporary file is harmless, the rename error is what matters.
        let _ = std::fs::remove_file(&tmp);
        DisplayError::Io { path: shown(), error: source }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_numbers_are_parsed_from_own_files_only() {
        assert_eq!(frame_number("00042-granted-colour.png"), Some(42));
        assert_eq!(frame_number("123456-idle-mono.png"), Some(123456));
        assert_eq!(frame_number("00042-granted-colour.png.tmp"), None);
        assert_eq!(frame_number("42-granted-colour.png"), None);
        assert_eq!(frame_number("notes.txt"), None);
        assert_eq!(frame_number("abcde-idle-mono.png"), None);
    }
}
