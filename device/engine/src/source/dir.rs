//! A directory of images played as a camera would deliver them.

use super::{CapturedFrame, FrameSource, SourceError};
use crate::image_io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// After this many unreadable frames in a row, each further one waits [`BACKOFF`] first, so a
/// folder of damaged files costs a few reads a second, not a core.
const BACKOFF_AFTER: u64 = 3;
const BACKOFF: Duration = Duration::from_millis(200);
/// How often a run of unreadable frames is logged (once, with a count) and reported as
/// [`SourceError::Unreadable`].
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// How to play the directory.
#[derive(Debug, Clone, Default)]
pub struct DirSourceOptions {
    /// Start again at the first image after the last.
    pub looped: bool,
    /// Pace frames at this rate (real time, like a camera); `None` = as fast as consumed.
    pub fps: Option<f32>,
    /// After the last image, wait for new ones (named after it) to appear, like `tail -f`.
    pub follow: bool,
    /// Frames with more pixels are refused from their header (`None`:
    /// [`image_io::DEFAULT_MAX_FRAME_PIXELS`]).
    pub max_frame_pixels: Option<u64>,
}

/// Images under a directory (recursively), in path order.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    files: Vec<PathBuf>,
    pos: usize,
    options: DirSourceOptions,
    index: u64,
    started: Instant,
    stop: Arc<AtomicBool>,
    unreadable: Unreadable,
}

/// A run of frames that would not decode.
#[derive(Debug, Default)]
struct Unreadable {
    /// In a row, since the last good frame.
    count: u64,
    since: Option<Instant>,
    reported: Option<Instant>,
    /// Counted since the last log line.
    unlogged: u64,
    last: String,
}

impl DirSource {
    /// Lists the images now; `stop` ends a following or looping source.
    pub fn open(root: &Path, options: DirSourceOptions, stop: Arc<AtomicBool>) -> Result<DirSource, SourceError> {
        let files = list_images(root)?;
        if files.is_empty() && !options.follow {
            return Err(SourceError::Empty(root.display().to_string()));
        }
        Ok(DirSource {
            root: root.to_path_buf(),
            files,
            pos: 0,
            options,
            index: 0,
            started: Instant::now(),
            stop,
            unreadable: Unreadable::default(),
        })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Path of the next image, waiting for one in follow mode.
    fn next_path(&mut self) -> Result<Option<PathBuf>, SourceError> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if let Some(p) = self.files.get(self.pos) {
                self.pos += 1;
                return Ok(Some(p.clone()));
            }
            if self.options.follow {
                // New files sort after the last one played; earlier names are not replayed.
                let last = self.files.last().cloned();
                let fresh: Vec<PathBuf> =
                    list_images(&self.root)?.into_iter().filter(|p| last.as_ref().is_none_or(|l| p > l)).collect();
                if fresh.is_empty() {
                    std::thread::sleep(FOLLOW_POLL);
                } else {
                    self.files.extend(fresh);
                }
            } else if self.options.looped && !self.files.is_empty() {
                self.pos = 0;
            } else {
                return Ok(None);
            }
        }
    }
}

impl FrameSource for DirSource {
    fn next_frame(&mut self) -> Result<Option<CapturedFrame>, SourceError> {
        loop {
            let Some(path) = self.next_path()? else { return Ok(None) };
            let at = match self.options.fps.filter(|f| *f > 0.0) {
                Some(fps) => {
                    let due = Duration::from_secs_f64(self.index as f64 / f64::from(fps));
                    let now = self.started.elapsed();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    due
                }
                None => self.started.elapsed(),
            };
            // A frame that will not decode is skipped, as a camera glitch would be.
            let max_pixels = self.options.max_frame_pixels.unwrap_or(image_io::DEFAULT_MAX_FRAME_PIXELS);
            let image = match read_frame(&path, max_pixels) {
                Ok(img) => img,
                Err(reason) => {
                    if let Some(report) = self.unreadable_frame(&path, reason) {
                        return Err(report);
                    }
                    continue;
                }
            };
            if self.unreadable.count > 0 {
                tracing::info!(after = self.unreadable.count, "frames readable again");
                self.unreadable = Unreadable::default();
            }
            let index = self.index;
            self.index += 1;
            let label = path.strip_prefix(&self.root).unwrap_or(&path).display().to_string();
            return Ok(Some(CapturedFrame { index, at, captured: Instant::now(), image, label }));
        }
    }
}

impl DirSource {
    /// Counts an unreadable frame: logs the first of a run and then a count every
    /// [`REPORT_EVERY`], waits once the run is long, and returns the error to report when one
    /// is due.
    fn unreadable_frame(&mut self, path: &Path, reason: String) -> Option<SourceError> {
        let now = Instant::now();
        let u = &mut self.unreadable;
        u.count += 1;
        u.unlogged += 1;
        u.last = format!("{}: {reason}", path.display());
        let since = *u.since.get_or_insert(now);
        if u.count == 1 {
            tracing::warn!(path = %path.display(), error = %reason, "skipping unreadable frame");
            u.unlogged = 0;
            u.reported = Some(now);
        }
        if u.count > BACKOFF_AFTER {
            std::thread::sleep(BACKOFF);
        }
        if u.reported.is_some_and(|r| now.duration_since(r) >= REPORT_EVERY) {
            tracing::warn!(count = u.unlogged, last = %u.last, "unreadable frames, still skipping");
            u.unlogged = 0;
            u.reported = Some(now);
            let secs = now.duration_since(since).as_secs();
            return Some(SourceError::Unreadable { secs, count: u.count, last: u.last.clone() });
        }
        None
    }
}

/// Reads and decodes one frame file. Only regular files are read: a FIFO or a device node
/// would block the capture thread forever.
fn read_frame(path: &Path, max_pixels: u64) -> Result<image::RgbImage, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => image_io::load_frame(path, max_pixels).map_err(|e| e.to_string()),
        Ok(_) => Err("not a regular file (a FIFO, socket or device)".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn list_images(root: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let io = |error| SourceError::Io { path: dir.display().to_string(), error };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_dir() {
                stack.push(path);
            } else if crate::dataset::is_photo(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn write(dir: &Path, name: &str, w: u32) {
        RgbImage::from_pixel(w, 8, Rgb([1, 2, 3])).save(dir.join(name)).expect("write test image");
    }

    fn widths(src: &mut DirSource, n: usize) -> Vec<u32> {
        (0..n).filter_map(|_| src.next_frame().expect("frame").map(|f| f.image.width())).collect()
    }

    #[test]
    fn plays_in_name_order_skipping_bad_files_and_non_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "b.png", 2);
        write(dir.path(), "a.png", 1);
        std::fs::create_dir(dir.path().join("c")).expect("subdir");
        write(&dir.path().join("c"), "x.png", 3);
        std::fs::write(dir.path().join("b2.png"), b"not a png").expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"hello").expect("write");
        let mut s = DirSource::open(dir.path(), DirSourceOptions::default(), Arc::default()).expect("open");
        assert_eq!(widths(&mut s, 5), vec![1, 2, 3]);
    }

    #[test]
    fn loops_when_asked_and_stops_on_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.png", 1);
        write(dir.path(), "b.png", 2);
        let stop = Arc::new(AtomicBool::new(false));
        let opts = DirSourceOptions { looped: true, ..Default::default() };
        let mut s = DirSource::open(dir.path(), opts, stop.clone()).expect("open");
        assert_eq!(widths(&mut s, 5), vec![1, 2, 1, 2, 1]);
        stop.store(true, Ordering::Relaxed);
        assert!(s.next_frame().expect("stop is not an error").is_none());
    }

    #[test]
    fn follow_mode_picks_up_new_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "0001.png", 1);
        let opts = DirSourceOptions { follow: true, ..Default::default() };
        let mut s = DirSource::open(dir.path(), opts, Arc::default()).expect("open");
        assert_eq!(widths(&mut s, 1), vec![1]);
        let path = dir.path().to_path_buf();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            write(&path, "0002.png", 2);
        });
        assert_eq!(widths(&mut s, 1), vec![2]);
        writer.join().expect("writer thread");
    }

    #[test]
    fn paced_replay_uses_virtual_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..3 {
            write(dir.path(), &format!("{i}.png"), 1);
        }
        let opts = DirSourceOptions { fps: Some(50.0), ..Default::default() };
        let mut s = DirSource::open(dir.path(), opts, Arc::default()).expect("open");
        let ats: Vec<Duration> = (0..3).filter_map(|_| s.next_frame().expect("frame").map(|f| f.at)).collect();
        assert_eq!(ats, vec![Duration::ZERO, Duration::from_millis(20), Duration::from_millis(40)]);
    }

    #[test]
    fn empty_directory_is_an_error_unless_following() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            DirSource::open(dir.path(), DirSourceOptions::default(), Arc::default()),
            Err(SourceError::Empty(_))
        ));
        let follow = DirSourceOptions { follow: true, ..Default::default() };
        assert!(DirSource::open(dir.path(), follow, Arc::default()).is_ok());
    }

    /// Every frame unreadable (damaged files, a FIFO) used to spin a core and log each skip.
    /// Now the source backs off, says so once per interval, reports a transient error the kiosk
    /// shows, and picks up again when a frame reads.
    #[test]
    fn a_folder_of_unreadable_frames_backs_off_and_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["a.png", "b.png", "c.jpg"] {
            std::fs::write(dir.path().join(name), b"damaged").expect("write");
        }
        let fifo = dir.path().join("d.png");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
        assert!(made.success(), "mkfifo");
        let opts = DirSourceOptions { looped: true, ..Default::default() };
        let mut s = DirSource::open(dir.path(), opts, Arc::default()).expect("open");
        let t = Instant::now();
        let err = s.next_frame().expect_err("a report after a while");
        let took = t.elapsed();
        let SourceError::Unreadable { count, .. } = err else { panic!("{err}") };
        assert!(err.is_transient());
        assert!(took >= REPORT_EVERY && took < REPORT_EVERY * 2, "{took:?}");
        // A few reads a second, not a busy loop (which made millions).
        let bound = BACKOFF_AFTER + (took.as_secs_f64() / BACKOFF.as_secs_f64()) as u64 + 2;
        assert!(count <= bound, "{count} reads in {took:?}");
        // A readable frame ends the run.
        write(dir.path(), "b.png", 7);
        assert_eq!(widths(&mut s, 1), vec![7]);
        assert_eq!(s.unreadable.count, 0);
    }
}
