//! The aarch64 build against the x86-64 one, image by image: `facegate eval embed` runs natively
//! and, cross-built for `aarch64-unknown-linux-gnu`, under `qemu-aarch64`, on LFW photos from
//! View 2 pairs. Five points, embedding cosine (int8 and fp32), pair scores and decisions must
//! agree. Emulated time means nothing and is not reported.
//!
//! `.ci/board` cross-builds `target/aarch64-unknown-linux-gnu/debug/facegate` before the tests
//! (README: Install on a board); without it, or without `qemu-aarch64`, the test says so and
//! passes unless `FACEGATE_REQUIRE_BOARD=1`.

use crate::util::{binary, board_missing as missing, data_dir, repo_root};
use facegate_engine::calibration::Calibration;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The model variants checked and the View 2 pairs taken of each kind (genuine and impostor)
/// for each. Emulated inference costs ~20 s of CPU a photo for int8 (the shipped variant) and
/// ~45 s for fp32, so few.
const CHECKS: [(&str, usize); 2] = [("int8", 2), ("fp32", 1)];

use facegate_host::commands::eval::embed::EmbedRecord as Record;

fn aarch64_facegate() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    let bin = target.join("aarch64-unknown-linux-gnu/debug/facegate");
    if !bin.is_file() {
        return missing(format!(
            "aarch64_e2e: {} not built (cargo build --target aarch64-unknown-linux-gnu -p facegate-host)",
            bin.display()
        ));
    }
    if Command::new("qemu-aarch64").arg("--version").output().is_err() {
        return missing("aarch64_e2e: qemu-aarch64 not installed (apt install qemu-user)".into());
    }
    Some(bin)
}

/// Starts `facegate --model MODEL eval embed` with `cmd` as the binary (native, or qemu running
/// the aarch64 one).
fn start_embed(mut cmd: Command, model: &str, root: &Path, list: &Path) -> std::process::Child {
    cmd.env("FACEGATE_MODELS", repo_root().join("models"))
        .args(["--model", model, "eval", "embed", "--root"])
        .arg(root)
        .arg("--list")
        .arg(list)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run facegate eval embed")
}

/// The records of a finished `eval embed`, by image.
fn records(child: std::process::Child) -> HashMap<String, Record> {
    let out = child.wait_with_output().expect("facegate eval embed");
    assert!(out.status.success(), "eval embed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Record>(l).expect("a JSON record"))
        .map(|r| (r.image.clone(), r))
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The first `per_kind` genuine and `per_kind` impostor pairs of View 2 as relative photo paths.
fn view2_pairs(lfw: &Path, per_kind: usize) -> Vec<(String, String, bool)> {
    let text = std::fs::read_to_string(lfw.join("pairs.txt")).expect("pairs.txt");
    let photo = |name: &str, n: &str| format!("{name}/{name}_{:04}.jpg", n.parse::<u32>().expect("number"));
    let mut pairs: Vec<(String, String, bool)> = Vec::new();
    for f in text.lines().skip(1).map(|l| l.split_whitespace().collect::<Vec<_>>()) {
        match f.as_slice() {
            [n, a, b] if pairs.iter().filter(|p| p.2).count() < per_kind => {
                pairs.push((photo(n, a), photo(n, b), true))
            }
            [n, a, m, b] if pairs.iter().filter(|p| !p.2).count() < per_kind => {
                pairs.push((photo(n, a), photo(m, b), false))
            }
            _ => {}
        }
    }
    pairs
}

/// One model's check: its pairs, their photos and the list file `eval embed` reads.
struct Check {
    model: &'static str,
    pairs: Vec<(String, String, bool)>,
    photos: Vec<String>,
    list: PathBuf,
}

#[test]
fn the_aarch64_build_agrees_with_x86_64_on_lfw() {
    let Some(data) = data_dir("aarch64_e2e") else { return };
    let Some(arm) = aarch64_facegate() else { return };
    let lfw = data.join("lfw");
    let tmp = tempfile::tempdir().expect("tempdir");
    let checks: Vec<Check> = CHECKS
        .iter()
        .map(|&(model, n)| {
            let pairs = view2_pairs(&lfw, n);
            let mut photos: Vec<String> = pairs.iter().flat_map(|(a, b, _)| [a.clone(), b.clone()]).collect();
            photos.sort();
            photos.dedup();
            let list = tmp.path().join(format!("{model}.txt"));
            std::fs::write(&list, photos.iter().map(|p| format!("{p}\n")).collect::<String>()).expect("list");
            Check { model, pairs, photos, list }
        })
        .collect();
    let emulated = || {
        let mut c = Command::new("qemu-aarch64");
        c.args(["-L", "/usr/aarch64-linux-gnu"]).arg(&arm);
        c
    };

    // The emulated runs at once (one core each), the native ones meanwhile.
    let emulated_runs: Vec<_> = checks.iter().map(|c| start_embed(emulated(), c.model, &lfw, &c.list)).collect();
    let native: Vec<_> =
        checks.iter().map(|c| records(start_embed(Command::new(binary("facegate")), c.model, &lfw, &c.list))).collect();
    for ((check, x86), a64) in checks.iter().zip(native).zip(emulated_runs.into_iter().map(records)) {
        let model = check.model;
        let calibration =
            Calibration::load(&repo_root().join(format!("models/calibration-{model}.toml"))).expect("calibration");
        let threshold = calibration.promise(1e-3).cosine;
        let (mut worst_cos, mut worst_px) = (1.0f32, 0.0f32);
        for p in &check.photos {
            let (x, a) = (&x86[p.as_str()], &a64[p.as_str()]);
            let (Some(ex), Some(ea)) = (&x.embedding, &a.embedding) else {
                assert_eq!(x.embedding.is_some(), a.embedding.is_some(), "{p}: a face on one build only");
                continue;
            };
            let (px, pa) = (x.points.expect("points"), a.points.expect("points"));
            let px_diff = px.iter().zip(&pa).flat_map(|(u, v)| [(u[0] - v[0]).abs(), (u[1] - v[1]).abs()]);
            worst_px = px_diff.fold(worst_px, f32::max);
            worst_cos = worst_cos.min(cosine(ex, ea));
        }
        let mut worst_score = 0.0f32;
        let mut same_decisions = 0;
        let mut compared = 0;
        for (a, b, _) in &check.pairs {
            let get = |m: &HashMap<String, Record>, k: &str| m[k].embedding.clone();
            let (Some(xa), Some(xb), Some(aa), Some(ab)) = (get(&x86, a), get(&x86, b), get(&a64, a), get(&a64, b))
            else {
                continue;
            };
            let (sx, sa) = (cosine(&xa, &xb), cosine(&aa, &ab));
            worst_score = worst_score.max((sx - sa).abs());
            compared += 1;
            same_decisions += usize::from((sx >= threshold) == (sa >= threshold));
        }
        eprintln!(
            "aarch64 vs x86-64, {model}: {} photos, embedding cosine >= {worst_cos:.6}, five points within \
             {worst_px:.3} px; {compared} pairs: |score difference| <= {worst_score:.5}, \
             {same_decisions}/{compared} same decisions at FAR 1e-3 ({threshold:.3})",
            check.photos.len()
        );
        assert!(worst_cos >= 0.999, "{model}: embeddings differ across architectures (cosine {worst_cos})");
        assert!(worst_score < 0.01, "{model}: a pair score differs by {worst_score}");
        assert_eq!(same_decisions, compared, "{model}: a decision differs across architectures");
        assert!(compared >= check.pairs.len() / 2, "{model}: too few pairs compared ({compared})");
    }
}
