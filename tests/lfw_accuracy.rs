//! LFW View 2, 10-fold, with the shipped model: the accuracy bar of the engine issue.

use facegate_engine::{Engine, EngineConfig};
use facegate_host::commands::eval::pairs::{self as eval, EvalPairsArgs};

#[test]
fn lfw_view2_accuracy_meets_the_bar() {
    let Some(data) = crate::util::data_dir("lfw_view2_accuracy_meets_the_bar") else { return };
    let engine = Engine::load(&EngineConfig::default()).expect("models load");
    let lfw = data.join("lfw");
    let out = tempfile::tempdir().expect("temp dir");
    let report_dir = out.path().join("report");
    let args = EvalPairsArgs {
        root: lfw.clone(),
        pairs: lfw.join("pairs.txt"),
        threads: None,
        json: true,
        plot: None,
        report: Some(report_dir.clone()),
        compare: Vec::new(),
        calibration_out: None,
        no_second_look: false,
        scores: Some(out.path().join("scores.tsv")),
        derive: None,
    };
    let report = eval::run(&engine, &args).expect("eval runs");
    eprintln!(
        "LFW View 2 ({} / {}): {}",
        engine.embedding_id,
        engine.embed_variant,
        serde_json::to_string(&report).unwrap_or_default()
    );
    assert_eq!(report.pairs, 6000);
    assert_eq!(report.no_face, 0, "images without a face: {:?}", report.no_face_images);
    // Measured: 99.467% (int8 compute, second look on 289 of 6,000 pairs; one pass only
    // 99.43%). The engine issue's bar is 99.45%; one pair of 6,000 is 0.017 points.
    assert!(report.accuracy >= 0.9945, "accuracy {:.4} below the 99.45% bar", report.accuracy);
    // The second look is for the few pairs too close to call, not a second pass over everything.
    assert!(
        report.second_look_pairs > 0 && report.second_look_pairs < 700,
        "{} second looks",
        report.second_look_pairs
    );
    assert!(report.tar_at_far_1e_3 >= 0.985, "TAR@FAR=1e-3 {:.4} below 98.5%", report.tar_at_far_1e_3);

    // The report: 12 worst genuine and 12 worst impostor pairs as aligned 112x112 crops.
    let crops: Vec<_> = std::fs::read_dir(report_dir.join("gallery"))
        .expect("gallery written")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(crops.len(), 48, "{crops:?}");
    for crop in &crops {
        let size = image::image_dimensions(crop).expect("a PNG");
        assert_eq!(size, (112, 112), "{}", crop.display());
    }
    // Its own scores again as a second curve: the scores file reads back whole.
    let compared = facegate_host::commands::eval::pairs::read_scores(&out.path().join("scores.tsv")).expect("scores");
    assert_eq!(compared.len(), 6000);
    if let Some(chromium) = crate::util::browser::chromium("lfw_view2_accuracy_meets_the_bar (report in a browser)") {
        crate::util::browser::check_report(&chromium, &report_dir, &["det.png", "roc.png", "scores.png"]);
    }
}
