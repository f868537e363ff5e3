//! Unlock through real PAM: Debian's `pamtester` drives `libpam_facegate.so` under cwrap's
//! pam_wrapper (a service file in a temporary folder, no root login), and the module asks a real
//! `facegate-device` serving its unlock socket with the camera opened per request (a folder of
//! frames, refilled between cases). Prints the time to answer of every case.

use crate::util::{binary, data_dir, facegate, lfw_people, missing, path_str, run_ok, DeviceProcess};
use facegate_device::audit_log::AuditLog;
use facegate_proto::AuditKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// pamtester and pam_wrapper, or `None` (said clearly) when they are not installed.
fn pam_tools(test: &str) -> Option<PathBuf> {
    let wrapper = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]
        .iter()
        .map(|d| Path::new(d).join("libpam_wrapper.so"))
        .find(|p| p.is_file());
    let pamtester = Command::new("pamtester").arg("--version").output().is_ok();
    match wrapper {
        Some(w) if pamtester => Some(w),
        _ => missing(format!("{test}: pamtester and libpam-wrapper are needed (apt install pamtester libpam-wrapper)")),
    }
}

/// The module as cargo built it for this profile.
fn module() -> PathBuf {
    let so = binary("libpam_facegate.so");
    if !so.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok =
            Command::new(cargo).args(["build", "--quiet", "-p", "pam-facegate"]).status().is_ok_and(|s| s.success());
        assert!(ok, "building pam-facegate failed");
    }
    so
}

fn pam_deny() -> PathBuf {
    ["/usr/lib/x86_64-linux-gnu/security", "/usr/lib/aarch64-linux-gnu/security", "/lib/security", "/usr/lib/security"]
        .iter()
        .map(|d| Path::new(d).join("pam_deny.so"))
        .find(|p| p.is_file())
        .expect("pam_deny.so (libpam-modules)")
}

struct Pam {
    wrapper: PathBuf,
    services: PathBuf,
}

/// What pamtester said and how long it took.
struct Attempt {
    ok: bool,
    output: String,
    elapsed: Duration,
}

impl Pam {
    fn authenticate(&self, user: &str, as_nobody: bool) -> Attempt {
        let mut cmd = if as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "pamtester"]);
            c
        } else {
            Command::new("pamtester")
        };
        cmd.args(["facegate-test", user, "authenticate"])
            .env("LD_PRELOAD", &self.wrapper)
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &self.services)
            .stdin(std::process::Stdio::null());
        let started = Instant::now();
        let out = cmd.output().expect("run pamtester");
        let elapsed = started.elapsed();
        let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Attempt { ok: out.status.success(), output, elapsed }
    }
}

/// Replaces the frames the "camera" will show at the next request.
fn show(frames: &Path, images: &[image::RgbImage]) {
    let _ = std::fs::remove_dir_all(frames);
    std::fs::create_dir_all(frames).expect("frames dir");
    for (i, img) in images.iter().enumerate() {
        img.save(frames.join(format!("{i:04}.png"))).expect("frame");
    }
}

fn darkened(img: &image::RgbImage, factor: f32) -> image::RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (f32::from(*c) * factor).round() as u8;
        }
    }
    out
}

fn unlock_records(store: &Path) -> Vec<String> {
    let log = AuditLog::open(&store.join("audit.log")).expect("audit log");
    log.read(0, 10_000)
        .expect("records")
        .into_iter()
        .filter(|r| r.kind == AuditKind::Unlock)
        .map(|r| r.detail.to_string())
        .collect()
}

#[test]
fn pam_unlock_through_the_device() {
    let Some(data) = data_dir("pam_unlock_through_the_device") else { return };
    let Some(wrapper) = pam_tools("pam_unlock_through_the_device") else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, registry, frames) =
        (tmp.path().join("store"), tmp.path().join("registry.sqlite3"), tmp.path().join("frames"));
    let socket = tmp.path().join("run/unlock.sock");
    let people = lfw_people(&data.join("lfw"), 10);
    let (alice, stranger) = (&people[0], &people[1]);
    let photo = |p: &PathBuf| image::open(p).expect("LFW photo").to_rgb8();
    show(&frames, &[photo(&alice.1[1])]);

    // Liveness off: the "camera" shows photos, which is what it is there to refuse.
    let mut device = DeviceProcess::start(
        &[
            "--store",
            path_str(&store),
            "--listen",
            "127.0.0.1:0",
            "--allow-pairing",
            "60",
            "--unlock-socket",
            path_str(&socket),
            "--frames",
            path_str(&frames),
            "--loop",
            "--liveness",
            "off",
        ],
        &tmp.path().join("device.log"),
    );
    let addr = device.addr.clone().expect("device address");
    run_ok(facegate(&registry).args(["pair", "--device", &addr]));
    run_ok(facegate(&registry).args(["enroll", &alice.0, "--login", "alice", "--json"]).arg(&alice.1[0]));
    let synced = run_ok(facegate(&registry).args(["sync", "--json"]));
    assert!(synced.contains("\"logins\":1"), "{synced}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Root only: the socket is not open to others.
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).expect("socket").permissions());
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    let services = tmp.path().join("pam.d");
    std::fs::create_dir_all(&services).expect("pam.d");
    std::fs::write(
        services.join("facegate-test"),
        format!(
            "auth sufficient {} socket={} timeout=3\nauth required {}\n",
            module().display(),
            socket.display(),
            pam_deny().display()
        ),
    )
    .expect("service file");
    let pam = Pam { wrapper, services };
    let report = |case: &str, a: &Attempt| {
        println!("{case:<28} {:>6.0} ms  {}", a.elapsed.as_secs_f64() * 1e3, if a.ok { "success" } else { "failure" });
    };

    // The enrolled login, their face in front of the camera.
    let a = pam.authenticate("alice", false);
    report("granted", &a);
    assert!(a.ok, "{}\n{}", a.output, device.log());
    assert!(a.output.contains("Looking for alice's face"), "{}", a.output);

    // A login nobody enrolled: answered at once, the password follows.
    let a = pam.authenticate("bob", false);
    report("login not enrolled", &a);
    assert!(!a.ok && a.elapsed < Duration::from_millis(200), "{:?}\n{}", a.elapsed, a.output);

    // Too dark to compare: said so, failure, without waiting out the timeout.
    show(&frames, &[darkened(&photo(&alice.1[1]), 0.05)]);
    let a = pam.authenticate("alice", false);
    report("too dark", &a);
    assert!(!a.ok && a.output.contains("Too dark"), "{}", a.output);
    assert!(a.elapsed < Duration::from_secs(3), "waited out the timeout: {:?}", a.elapsed);

    // A stranger in front of the camera, until the lockout.
    show(&frames, &[photo(&stranger.1[0])]);
    let a = pam.authenticate("alice", false);
    report("not recognised", &a);
    assert!(!a.ok && a.output.contains("not recognised"), "{}", a.output);
    let mut attempts = 1;
    let locked = loop {
        let a = pam.authenticate("alice", false);
        attempts += 1;
        if a.output.contains("locked") {
            break a;
        }
        assert!(attempts <= 6 && !a.ok, "no lockout after {attempts} failures: {}", a.output);
    };
    report("locked out", &locked);
    assert!(!locked.ok && locked.elapsed < Duration::from_millis(200), "{:?}", locked.elapsed);
    // Every attempt is in the audit log, with the login, the outcome and the service.
    let records = unlock_records(&store);
    println!("audit: {records:?}");
    assert_eq!(records.len(), 3 + attempts, "{records:?}");
    assert!(records.iter().any(|r| r == "alice granted (facegate-test)"), "{records:?}");
    assert!(records.iter().any(|r| r == "bob not enrolled (facegate-test)"), "{records:?}");
    assert!(records.iter().any(|r| r.starts_with("alice locked out")), "{records:?}");

    // Another user may not ask: with the socket opened to all by mistake, the device still
    // checks the peer's uid.
    std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666)).expect("chmod");
    for dir in [tmp.path().to_path_buf(), tmp.path().join("run")] {
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod dir");
    }
    let module_dir = module().parent().map(Path::to_path_buf).unwrap_or_default();
    let readable = std::fs::metadata(&module_dir).is_ok();
    if readable {
        let a = pam.authenticate("alice", true);
        report("peer with another uid", &a);
        assert!(!a.ok, "{}", a.output);
        let refused = AuditLog::open(&store.join("audit.log"))
            .expect("audit")
            .read(0, 10_000)
            .expect("records")
            .into_iter()
            .any(|r| r.kind == AuditKind::AuthFailure && r.detail.contains("uid 65534 refused"));
        assert!(refused, "the device did not refuse uid 65534:\n{}", device.log());
    }

    // The daemon stopped: the socket is gone or dead; answered at once.
    assert!(device.terminate().success());
    let a = pam.authenticate("alice", false);
    report("daemon stopped", &a);
    assert!(!a.ok && a.elapsed < Duration::from_millis(200), "{:?}\n{}", a.elapsed, a.output);
    let _ = std::fs::remove_file(&socket);
    let a = pam.authenticate("alice", false);
    report("socket absent", &a);
    assert!(!a.ok && a.elapsed < Duration::from_millis(200), "{:?}", a.elapsed);

    // Time to the first frame and to the answer, camera opened per request.
    for line in device.log().lines().filter(|l| l.contains("unlock answered")) {
        println!("{line}");
    }
}
