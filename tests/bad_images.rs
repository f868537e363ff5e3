//! Bad input through the real `facegate` binary: every malformed file gets exit code 2 and a
//! reason, never a panic, in bounded memory; odd-but-valid files (grey, alpha, 16-bit,
//! EXIF-rotated) are handled correctly.

use crate::util::{binary, data_dir, with_exif_orientation};
use image::{DynamicImage, ImageFormat};
use std::io::Cursor;
use std::path::Path;
use std::process::Command;

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).expect("encode");
    out
}

/// Runs `facegate verify a b --json` under /usr/bin/time; returns (exit code, stdout, stderr, peak RSS in MB).
fn verify(a: &Path, b: &Path) -> (i32, String, String, f64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "PEAK_RSS_KB=%M"])
        .arg(binary("facegate"))
        .args(["verify", "--json"])
        .args([a, b])
        .output()
        .expect("run facegate under /usr/bin/time");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let kb: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_RSS_KB="))
        .and_then(|v| v.trim().parse().ok())
        .expect("peak RSS from /usr/bin/time");
    let code = out.status.code().unwrap_or(-1);
    // /usr/bin/time reports a non-zero exit on its own line; the code itself is passed through.
    (code, String::from_utf8_lossy(&out.stdout).into_owned(), stderr, kb / 1024.0)
}

#[test]
fn malformed_files_are_refused_clearly_in_bounded_memory() {
    let Some(data) = data_dir("bad_images") else { return };
    let good = data.join("lfw/Aaron_Peirsol/Aaron_Peirsol_0001.jpg");
    let tmp = tempfile::tempdir().expect("tempdir");
    let jpeg = std::fs::read(&good).expect("LFW photo");
    let png = encode(&image::open(&good).expect("decode"), ImageFormat::Png);
    let mut huge_png = png.clone(); // the IHDR chunk is bytes 8..33: claim 20000x20000
    huge_png[16..20].copy_from_slice(&20000u32.to_be_bytes());
    huge_png[20..24].copy_from_slice(&20000u32.to_be_bytes());
    // A well-formed header (valid chunk CRC) that merely lies about the size.
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&huge_png[12..29]);
    huge_png[29..33].copy_from_slice(&crc.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero.jpg", Vec::new(), "empty"),
        ("truncated.jpg", jpeg[..jpeg.len() / 3].to_vec(), "unreadable"),
        ("truncated.png", png[..png.len() / 2].to_vec(), "unreadable"),
        ("header-only.png", png[..40].to_vec(), "unreadable"),
        ("huge.png", huge_png, "too large"),
        ("huge.ppm", b"P6\n20000 20000\n255\n\0\0\0".to_vec(), "too large"),
        ("text.jpg", b"this is not an image at all".to_vec(), "unreadable"),
        ("gif.jpg", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(), "unreadable"),
        ("blank.png", encode(&DynamicImage::new_rgb8(300, 300), ImageFormat::Png), "no face"),
    ];
    let mut worst_rss: f64 = 0.0;
    for (name, bytes, reason) in &cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).expect("write case");
        let (code, stdout, stderr, rss) = verify(&path, &good);
        assert_eq!(code, 2, "{name}: exit code\nstdout: {stdout}\nstderr: {stderr}");
        assert!(stderr.contains(name) && stderr.to_lowercase().contains(reason), "{name}: unclear error: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        worst_rss = worst_rss.max(rss);
    }
    let missing = tmp.path().join("missing.jpg");
    let (code, _, stderr, _) = verify(&missing, &good);
    assert!(code == 2 && stderr.contains("missing.jpg"), "{stderr}");
    eprintln!("{} malformed inputs refused with exit 2; peak RSS {worst_rss:.0} MB", cases.len() + 1);
    // The models take ~100 MB; a decoder tricked into a 20000x20000 buffer would take 1.2 GB.
    assert!(worst_rss < 400.0, "peak RSS {worst_rss:.0} MB");
}

#[test]
fn grey_alpha_16_bit_and_exif_rotated_photos_still_match() {
    let Some(data) = data_dir("bad_images") else { return };
    let good = data.join("lfw/Aaron_Peirsol/Aaron_Peirsol_0001.jpg");
    let img = image::open(&good).expect("decode");
    let tmp = tempfile::tempdir().expect("tempdir");
    let rotated = encode(&img.rotate90(), ImageFormat::Jpeg);
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("grey.png", encode(&DynamicImage::ImageLuma8(img.to_luma8()), ImageFormat::Png)),
        ("alpha.png", encode(&DynamicImage::ImageRgba8(img.to_rgba8()), ImageFormat::Png)),
        ("deep.png", encode(&DynamicImage::ImageRgb16(img.to_rgb16()), ImageFormat::Png)),
        // Stored turned a quarter clockwise, with the EXIF tag (8) that says how to undo it.
        ("exif-rotated.jpg", with_exif_orientation(&rotated, 8)),
    ];
    let mut exif_score = 0.0;
    for (name, bytes) in variants {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let (code, stdout, stderr, _) = verify(&path, &good);
        assert_eq!(code, 0, "{name}: should match its source\n{stdout}\n{stderr}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("verify --json");
        let score = v["score"].as_f64().unwrap_or(0.0);
        assert!(score > 0.8, "{name}: {v}");
        exif_score = score;
    }
    // Without the EXIF tag the rotated photo is a sideways face: not a confident match.
    let sideways = tmp.path().join("sideways.jpg");
    std::fs::write(&sideways, &rotated).expect("write");
    let (code, stdout, stderr, _) = verify(&sideways, &good);
    if code != 2 {
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("verify --json");
        let score = v["score"].as_f64().unwrap_or(1.0);
        assert!(score < exif_score - 0.1, "sideways {score} vs EXIF-corrected {exif_score}: {stderr}");
    }
}
