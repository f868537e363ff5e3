//! Helpers shared by the end-to-end suites: where the data and binaries are, a device process,
//! a paired device, synthetic templates and people.

pub mod browser;
pub mod fault_proxy;
pub mod raw;

use facegate_host::link::{Addr, Client, Patience};
use facegate_host::registry::Registry;
use facegate_proto::{bounded_str, Embedding, Template, EMBEDDING_DIM};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

pub use facegate_engine::embed::random_unit;

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
    missing(format!(
        "{test}: face data not found at {} (set FACEGATE_DATA to the folder holding lfw/ and att_orl/)",
        dir.display()
    ))
}

/// Something a test needs is not here: skipped with a loud message, or a failure under
/// `FACEGATE_REQUIRE_DATA=1` (CI, which installs everything).
pub fn missing<T>(msg: String) -> Option<T> {
    if std::env::var("FACEGATE_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {msg}");
    None
}

/// Two connected pseudo-terminals made by `socat`, e.g. a serial or RS-485 line with the device
/// on one end; removed when dropped. The line outlives a process that is killed on either end
/// and started again (`ignoreeof`).
pub struct PtyPair {
    socat: std::process::Child,
    pub a: PathBuf,
    pub b: PathBuf,
}

impl PtyPair {
    /// The pair as links `dir/a` and `dir/b`; `None` (see [`missing`]) without socat.
    pub fn new(dir: &Path, a: &str, b: &str, test: &str) -> Option<PtyPair> {
        if std::process::Command::new("socat").arg("-V").output().is_err() {
            return missing(format!("{test}: socat is required (apt install socat)"));
        }
        let (a, b) = (dir.join(a), dir.join(b));
        let socat = std::process::Command::new("socat")
            .arg(format!("pty,raw,echo=0,ignoreeof,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,ignoreeof,link={}", b.display()))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("socat");
        let t = std::time::Instant::now();
        while !(a.exists() && b.exists()) {
            assert!(t.elapsed() < std::time::Duration::from_secs(10), "socat did not create the pty pair");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(PtyPair { socat, a, b })
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.socat.wait();
    }
}

/// Like [`missing`] for what only the board checks build (the aarch64 binaries, the Debian
/// packages: `.ci/board`): a failure only under `FACEGATE_REQUIRE_BOARD=1`.
pub fn board_missing<T>(msg: String) -> Option<T> {
    if std::env::var("FACEGATE_REQUIRE_BOARD").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {msg}");
    None
}

/// Path of a workspace binary (`facegate`, `facegate-device`), built on first use.
///
/// Tests of the root package cannot see other packages' `CARGO_BIN_EXE_*`, so they ask cargo
/// (the same one, same profile, same target dir) to build the workspace's binaries. It asks
/// with `--workspace --tests` as well, so the features resolve as in `cargo test --workspace`
/// and nothing is compiled a second time (a `-p` build would rebuild tract with other features).
pub fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(repo_root())
            .args(["build", "--quiet", "--workspace", "--tests", "--bins"])
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build the binaries: {e}"));
        assert!(status.success(), "building the workspace's binaries failed");
    });
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    target.join("debug").join(name)
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
        let bin = binary("facegate-device");
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

/// The `facegate` host binary, for commands that need no registry.
pub fn facegate_bin() -> std::process::Command {
    std::process::Command::new(binary("facegate"))
}

/// `facegate` with its registry at `registry`.
pub fn facegate(registry: &Path) -> std::process::Command {
    let mut c = facegate_bin();
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
    facegate_engine::dataset::people(lfw, min_photos).unwrap_or_else(|e| panic!("listing {}: {e}", lfw.display()))
}

/// A wire template of a random face for `model` (person `id`, named `P<id>`).
pub fn template(id: u32, model: &str, rng: &mut impl Rng) -> Template {
    let v: [f32; EMBEDDING_DIM] = random_unit(rng).try_into().expect("512 values");
    Template {
        id,
        person_id: id,
        display_name: bounded_str(&format!("P{id}")),
        model_id: bounded_str(model),
        embedding: Embedding::quantize(&v),
    }
}

/// Enrols `n` synthetic people (`Person 0000`, ...; one random template each) for `model`,
/// numbered from `first`; the same `first` gives the same faces.
pub fn add_people(registry: &mut Registry, model: &str, first: usize, n: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(first as u64);
    for i in first..first + n {
        registry
            .enroll(&format!("Person {i:04}"), model, &[(random_unit(&mut rng), "synthetic".into(), None)])
            .expect("enroll synthetic person");
    }
}

/// A device on TCP at `listen` (`127.0.0.1:0` for any free port) with its pairing window
/// open, its log in `log`.
pub fn start_device(store: &Path, listen: &str, log: &Path) -> DeviceProcess {
    DeviceProcess::start(&["--store", path_str(store), "--listen", listen, "--allow-pairing", "60"], log)
}

/// A memory figure of a running process from `/proc/PID/status`, in MB (`VmRSS`: now,
/// `VmHWM`: its peak).
pub fn proc_status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    let kb: f64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The file names in `dir` (e.g. the screens a device's PNG display wrote).
pub fn file_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A path as the `&str` a command line takes (test paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

/// A fresh device paired with a fresh registry through `facegate pair`.
pub struct Paired {
    pub tmp: tempfile::TempDir,
    pub store: PathBuf,
    pub registry: PathBuf,
    pub device: DeviceProcess,
    /// `tcp:127.0.0.1:PORT`
    pub addr_s: String,
    pub addr: Addr,
    /// The device's embedding model id.
    pub model: String,
}

impl Paired {
    pub fn new() -> Paired {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (store, registry) = (tmp.path().join("store"), tmp.path().join("registry.sqlite3"));
        let device = start_device(&store, "127.0.0.1:0", &tmp.path().join("device.log"));
        let addr_s = device.addr.clone().expect("address");
        let addr: Addr = addr_s.parse().expect("address");
        run_ok(facegate(&registry).args(["pair", "--device", &addr_s]));
        let model = Client::connect(&addr, Patience::default()).expect("connect").info.model_id.to_string();
        Paired { tmp, store, registry, device, addr_s, addr, model }
    }
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

/// A fresh schema in the test PostgreSQL server (`FACEGATE_TEST_POSTGRES`, which `.ci/run`
/// starts), dropped afterwards; `url` selects it (`search_path`), `key` is its registry key.
pub struct PgSchema {
    admin: postgres::Client,
    name: String,
    pub url: String,
    pub key: String,
}

impl PgSchema {
    /// `None` (the test says it is skipped) without a server, unless `FACEGATE_REQUIRE_POSTGRES=1`.
    pub fn new(test: &str) -> Option<PgSchema> {
        let base = match std::env::var("FACEGATE_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("FACEGATE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
                panic!("{test}: FACEGATE_REQUIRE_POSTGRES=1 but FACEGATE_TEST_POSTGRES is not set")
            }
            _ => {
                eprintln!(
                    "SKIPPED {test}: no test PostgreSQL (set FACEGATE_TEST_POSTGRES=postgres://USER@HOST:PORT/DB)"
                );
                return None;
            }
        };
        let mut admin = postgres::Client::connect(&base, postgres::NoTls).expect("test PostgreSQL");
        let name = format!("e{}", hex::encode(rand::random::<[u8; 8]>()));
        admin.batch_execute(&format!("CREATE SCHEMA {name}")).expect("schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{name}");
        let key = facegate_host::registry::RegistryKey::generate().to_hex();
        Some(PgSchema { admin, name, url, key })
    }

    /// `facegate` on this registry, with its key.
    pub fn facegate(&self) -> std::process::Command {
        let mut c = facegate(Path::new(&self.url));
        c.env(facegate_host::registry::KEY_ENV, &self.key);
        c
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = self.admin.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
    }
}

/// Shows each photo in `visits` to the device at `addr` (a visit of frames written into its
/// `--follow` frames folder) and returns the decisions it reported, as `facegate events --json`
/// prints them, one per visit.
pub fn visit_and_follow(registry: &Path, addr: &str, frames: &Path, visits: &[&PathBuf]) -> Vec<serde_json::Value> {
    use std::io::{BufRead, BufReader};
    let mut follower = facegate(registry)
        .args(["events", "--device", addr, "--follow", "--json", "--last", "0", "--timeout", "300", "--count"])
        .arg(visits.len().to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("facegate events");
    let mut err = BufReader::new(follower.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("events stderr");
    assert!(line.starts_with("following events"), "events follower did not start: {line}");
    let mut writer = facegate_host::commands::demo::FrameWriter { dir: frames.to_path_buf(), next: 0 };
    for v in visits {
        writer.visit(&image::open(v).expect("photo").to_rgb8()).expect("frames");
    }
    let events = BufReader::new(follower.stdout.take().expect("stdout"))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("event line")).expect("event JSON"))
        .collect();
    assert!(follower.wait().expect("follower exit").success());
    events
}
