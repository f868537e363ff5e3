//! `facegate explain` and `verify --explain`: the picture and JSON through the real binary,
//! and the occlusion self-check on 100 LFW genuine pairs.

use crate::util::{data_dir, facegate_bin as facegate};
use facegate_engine::explain::{occlude, Occlusion};
use facegate_engine::{Engine, EngineConfig, FacePolicy, QualityGate};
use rand::{Rng, SeedableRng};

#[test]
fn explain_draws_both_faces_and_names_the_regions() {
    let Some(lfw) = data_dir("explain_draws_both_faces_and_names_the_regions").map(|d| d.join("lfw")) else { return };
    let a = lfw.join("Victoria_Beckham/Victoria_Beckham_0001.jpg");
    let b = lfw.join("Victoria_Beckham/Victoria_Beckham_0003.jpg");
    let dir = tempfile::tempdir().expect("temp dir");
    let why = dir.path().join("why.png");
    let out = facegate().args(["explain", "--json", "--out"]).arg(&why).arg(&a).arg(&b).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["positions"], 2 * 13 * 13);
    let areas = ["forehead", "eyes", "nose", "left cheek", "right cheek", "mouth", "chin", "background"];
    for side in ["a", "b"] {
        let alike = v[side]["alike"].as_array().expect("alike regions");
        assert!(!alike.is_empty(), "{v}");
        for r in alike {
            assert!(areas.contains(&r["area"].as_str().unwrap_or("")), "{r}");
            assert!(r["effect"].as_f64().unwrap_or(0.0) < 0.0, "{r}");
        }
    }
    // B wears sunglasses and A does not: hiding A's eyes is among what raises the score.
    let disagree: Vec<&str> =
        v["a"]["disagree"].as_array().expect("list").iter().filter_map(|r| r["area"].as_str()).collect();
    assert!(disagree.contains(&"eyes"), "{disagree:?}");
    eprintln!("explain took {:.0} ms for {} occluded faces", v["millis"].as_f64().unwrap_or(0.0), v["positions"]);
    assert_eq!(image::image_dimensions(&why).expect("a PNG"), (2 * 224 + 60, 224 + 150));

    let why2 = dir.path().join("why2.png");
    let out = facegate().args(["verify", "--json", "--explain"]).arg(&why2).arg(&a).arg(&b).output().expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["decision"].is_string() && v["explain"]["a"]["alike"].is_array(), "{v}");
    assert!(why2.is_file());
    // A photo without a face: a clear error, no picture.
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(160, 160, image::Rgb([90, 90, 90])).save(&blank).expect("png");
    let why3 = dir.path().join("why3.png");
    let out = facegate().args(["explain", "--out"]).arg(&why3).arg(&a).arg(&blank).output().expect("run");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no face found"));
    assert!(!why3.exists());
}

/// Occluding the patch the map ranks first lowers a genuine pair's score more than occluding a
/// random patch of the same size, on most of the first 100 genuine pairs of LFW View 2.
fn self_check(test: &str, occlusion: Occlusion) {
    let Some(lfw) = data_dir(test).map(|d| d.join("lfw")) else { return };
    let engine = Engine::load(&EngineConfig::default()).expect("models load");
    let pairs = facegate_host::pairs::load(&lfw.join("pairs.txt")).expect("pairs.txt");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut checked, mut top_wins, mut top_drop, mut random_drop) = (0usize, 0usize, 0f64, 0f64);
    let started = std::time::Instant::now();
    for pair in pairs.iter().filter(|p| p.same).take(100) {
        let face = |p: &std::path::Path| engine.process_file(&lfw.join(p), FacePolicy::Subject, &QualityGate::NONE);
        let (Ok(a), Ok(b)) = (face(&pair.a), face(&pair.b)) else { continue };
        let map = engine.explain(&a.observation, &b.embedding, occlusion, threads).expect("map");
        let top = map.lowering()[0];
        let score_hiding = |x: u32, y: u32| {
            let hidden = occlude(&a.observation.aligned, x, y, occlusion.patch, occlusion.patch);
            engine.embedder.embed(&hidden).expect("embeds").cosine(&b.embedding)
        };
        let last = map.side - occlusion.patch;
        let (rx, ry) = (rng.gen_range(0..=last), rng.gen_range(0..=last));
        let (dt, dr) = (map.score - score_hiding(top.x, top.y), map.score - score_hiding(rx, ry));
        checked += 1;
        top_wins += usize::from(dt > dr);
        top_drop += f64::from(dt);
        random_drop += f64::from(dr);
    }
    let share = top_wins as f64 / checked.max(1) as f64;
    eprintln!(
        "explain self-check (patch {}, stride {}): top patch lowers the score more than a random one on {top_wins} of \
         {checked} genuine pairs ({:.0}%); mean drop {:.4} against {:.4}; {:.1} s",
        occlusion.patch,
        occlusion.stride,
        share * 100.0,
        top_drop / checked.max(1) as f64,
        random_drop / checked.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    assert!(checked >= 95, "{checked} pairs with both faces");
    assert!(share > 0.8, "{share}");
}

/// The map at a coarser stride (49 positions a face) keeps CI's time down; the default
/// stride's figure is measured by the ignored test below (docs/ACCURACY.md#explain).
#[test]
fn explain_self_check_on_100_lfw_genuine_pairs() {
    self_check("explain_self_check_on_100_lfw_genuine_pairs", Occlusion { patch: 16, stride: 16 });
}

#[test]
#[ignore = "about 2 minutes on 2 cores: run by hand for the documented figure"]
fn explain_self_check_at_the_default_stride() {
    self_check("explain_self_check_at_the_default_stride", Occlusion::default());
}
