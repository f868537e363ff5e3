//! Helpers for the end-to-end tests in `tests/`.

pub mod fault_proxy;
pub mod raw;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The face data sets folder: `$FACEGATE_DATA`, else `../shared/faces` beside the checkout.
///
/// When it is missing the test is skipped with a loud message, unless
/// `FACEGATE_REQUIRE_DATA=1` (set by CI), where a missing data set is a failure.
pub fn data_dir(test: &str) -> Option<PathBuf> {
    let dir =
        std::env::var_os("FACEGATE_DATA").map(PathBuf::from).unwrap_or_else(|| repo_root().join("../shared/faces"));
    let dir = if dir.is_relative() { repo_root().join(dir) } else { dir };
    if dir.join("lfw/pairs.txt").is_file() {
        return Some(dir);
    }
    let msg = format!(
        "{test}: face data not found at {} (set FACEGATE_DATA to the folder holding lfw/ and att_orl/)",
        dir.display()
    );
    if std::env::var("FACEGATE_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {msg}");
    None
}

/// Path of a workspace binary, built on first use.
///
/// Tests of the root package cannot see other packages' `CARGO_BIN_EXE_*`, so they ask cargo
/// (the same one, same profile, same target dir) to build it; it is a no-op when up to date.
pub fn binary(package: &str, name: &str) -> PathBuf {
    use std::sync::Mutex;
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("debug").join(name);
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(repo_root())
            .args(["build", "--quiet", "-p", package, "--bin", name])
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
        assert!(status.success(), "building {name} failed");
        built.push(name.to_string());
    }
    path
}

/// A running `facegate-device`, killed when dropped.
pub struct DeviceProcess {
    pub child: std::process::Child,
    /// `tcp:127.0.0.1:PORT` when started with `--listen`.
    pub addr: Option<String>,
    pub stderr_log: PathBuf,
}

impl DeviceProcess {
    /// Starts the device with `args` (after `run`) and waits until it serves (or exits).
    /// Its log goes to `log`.
    pub fn start(args: &[&str], log: &Path) -> DeviceProcess {
        use std::io::BufRead;
        let bin = binary("facegate-device", "facegate-device");
        // Appended, so restarts of one device share a log.
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("device log file");
        let mut child = std::process::Command::new(bin)
            .arg("run")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start facegate-device");
        let stdout = child.stdout.take().expect("device stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut addr = None;
        // The device prints where it serves once it is ready.
        for line in lines.by_ref() {
            let line = line.expect("device stdout");
            if let Some(a) = line.strip_prefix("facegate-device: listening on ") {
                addr = Some(a.trim().to_string());
                break;
            }
            if line.starts_with("facegate-device: serving serial:") {
                break;
            }
        }
        if addr.is_none() && args.contains(&"--listen") {
            let _ = child.wait();
            panic!("device did not start: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        // Keep draining stdout so the device never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        DeviceProcess { child, addr, stderr_log: log.to_path_buf() }
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().expect("device exit status")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for DeviceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `facegate` with its registry at `registry`.
pub fn facegate(registry: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(binary("facegate-host", "facegate"));
    c.env("FACEGATE_REGISTRY", registry);
    c
}

/// Runs a command, asserting success; returns stdout.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// LFW people with at least `min_photos` images, in name order: (name, photo paths).
pub fn lfw_people(lfw: &Path, min_photos: usize) -> Vec<(String, Vec<PathBuf>)> {
    let mut people = Vec::new();
    let Ok(entries) = std::fs::read_dir(lfw) else { return people };
    for e in entries.flatten() {
        let dir = e.path();
        if !dir.is_dir() {
            continue;
        }
        let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|r| r.flatten().map(|f| f.path()).filter(|p| p.extension().is_some_and(|x| x == "jpg")).collect())
            .unwrap_or_default();
        if photos.len() >= min_photos {
            photos.sort();
            people.push((e.file_name().to_string_lossy().into_owned(), photos));
        }
    }
    people.sort();
    people
}

/// `jpeg` with an EXIF APP1 segment carrying `orientation` (1..=8) inserted after SOI.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    // TIFF little-endian header, one IFD entry: tag 0x0112 (Orientation), SHORT, count 1.
    let mut tiff = b"II*\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}
