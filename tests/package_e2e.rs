//! The Debian packages as a user gets them: their layout (`dpkg-deb --contents`), the conffile,
//! the systemd unit (`systemd-analyze verify`), and the installed binaries run from a scratch
//! root (`dpkg -x`) with the installed models. `.ci/board` builds the packages (`cargo deb`)
//! before the tests; without them the test says so and passes unless `FACEGATE_REQUIRE_BOARD=1`.

use crate::util::{board_missing as missing, data_dir, lfw_people, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest `NAME_*_ARCH.deb` under `target/debian/`.
fn package(name: &str, arch: &str) -> Option<PathBuf> {
    let dir = repo_root().join("target/debian");
    let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let f = p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                f.starts_with(&format!("{name}_")) && f.ends_with(&format!("_{arch}.deb"))
            })
            .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
    });
    found.or_else(|| missing(format!("package_e2e: no {name}_*_{arch}.deb in {} (run `cargo deb`)", dir.display())))
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn contents(deb: &Path) -> String {
    output(Command::new("dpkg-deb").arg("--contents").arg(deb))
}

#[test]
fn the_packages_hold_what_a_board_needs_and_their_binaries_run_installed() {
    let Some(device) = package("facegate-device", "amd64") else { return };
    let Some(host) = package("facegate", "amd64") else { return };
    let Some(pam) = package("libpam-facegate", "amd64") else { return };
    let Some(data) = data_dir("package_e2e") else { return };

    let listing = contents(&device);
    for path in [
        "./usr/bin/facegate-device",
        "./etc/facegate/device.toml",
        "./usr/share/facegate/models/manifest.toml",
        "./usr/share/facegate/models/embed-int8w.onnx",
        "./usr/share/facegate/models/calibration-int8.toml",
        "./usr/share/facegate/models/liveness.toml",
        "facegate-device.service",
    ] {
        assert!(listing.contains(path), "{path} missing from {}:\n{listing}", device.display());
    }
    let conffiles = output(Command::new("dpkg-deb").arg("--info").arg(&device).arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/facegate/device.toml");
    assert!(contents(&host).contains("./usr/bin/facegate"));
    let depends = output(Command::new("dpkg-deb").args(["--field"]).arg(&host).arg("Depends"));
    assert!(depends.contains("facegate-device"), "the host tool's models come with facegate-device: {depends}");
    assert!(contents(&pam).contains("/security/pam_facegate.so"));

    let root = tempfile::tempdir().expect("scratch root");
    for deb in [&device, &host, &pam] {
        output(Command::new("dpkg").arg("-x").arg(deb).arg(root.path()));
    }
    let unit = ["lib/systemd/system", "usr/lib/systemd/system"]
        .iter()
        .map(|d| root.path().join(d).join("facegate-device.service"))
        .find(|p| p.is_file())
        .expect("the unit in the package");
    let text = std::fs::read_to_string(&unit).expect("unit");
    for line in [
        "StateDirectory=facegate",
        "SupplementaryGroups=video dialout",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing from the unit");
    }
    // systemd-analyze checks that ExecStart exists on this machine: a copy of the unit whose
    // ExecStart names the binary in the scratch root, everything else as packaged.
    let checked = root.path().join("facegate-device.service");
    let bin_path = root.path().join("usr/bin/facegate-device");
    std::fs::write(&checked, text.replace("/usr/bin/facegate-device", &bin_path.to_string_lossy())).expect("unit copy");
    match Command::new("systemd-analyze").arg("verify").arg(&checked).output() {
        // It warns on stderr, exit code 0, about a value it ignores.
        Ok(out) => assert!(
            out.status.success() && out.stderr.is_empty(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            missing::<()>(format!("package_e2e: systemd-analyze not runnable: {e}"));
        }
    }

    // The installed binaries, with the installed models (not the source tree's).
    let bin = |name: &str| root.path().join("usr/bin").join(name);
    let models = root.path().join("usr/share/facegate/models");
    let version = output(Command::new(bin("facegate-device")).arg("--version"));
    assert!(version.starts_with("facegate-device "), "{version}");
    assert!(output(Command::new(bin("facegate")).arg("--version")).starts_with("facegate "));
    let people = lfw_people(&data.join("lfw"), 2);
    let (a, b) = (&people[0].1[0], &people[0].1[1]);
    let out = Command::new(bin("facegate"))
        .arg("--models")
        .arg(&models)
        .args(["verify", "--json"])
        .args([a, b])
        .output()
        .expect("installed facegate verify");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify --json: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(json["score"].as_f64().is_some_and(|s| s > -1.0 && s <= 1.0), "{json}");
    assert!(matches!(out.status.code(), Some(0 | 1)), "verify exits 0 (same) or 1 (different)");
}

#[test]
fn the_arm64_packages_hold_aarch64_binaries_that_run() {
    let Some(device) = package("facegate-device", "arm64") else { return };
    let Some(host) = package("facegate", "arm64") else { return };
    let Some(pam) = package("libpam-facegate", "arm64") else { return };
    let root = tempfile::tempdir().expect("scratch root");
    for deb in [&device, &host, &pam] {
        let arch = output(Command::new("dpkg-deb").arg("--field").arg(deb).arg("Architecture"));
        assert_eq!(arch.trim(), "arm64", "{}", deb.display());
        output(Command::new("dpkg").arg("-x").arg(deb).arg(root.path()));
    }
    // ELF machine 183 (EM_AARCH64), at offset 18.
    let elf = |p: &Path| {
        let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        bytes.len() > 20 && &bytes[..4] == b"\x7fELF" && u16::from_le_bytes([bytes[18], bytes[19]]) == 183
    };
    let pam_dir = root.path().join("usr/lib/aarch64-linux-gnu/security");
    for bin in [
        root.path().join("usr/bin/facegate-device"),
        root.path().join("usr/bin/facegate"),
        pam_dir.join("pam_facegate.so"),
    ] {
        assert!(elf(&bin), "{} is not an aarch64 ELF file", bin.display());
    }
    let version = output(
        Command::new("qemu-aarch64")
            .args(["-L", "/usr/aarch64-linux-gnu"])
            .arg(root.path().join("usr/bin/facegate-device"))
            .arg("--version"),
    );
    assert!(version.starts_with("facegate-device "), "{version}");
}
