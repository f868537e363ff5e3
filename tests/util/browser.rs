//! A real browser looks at a report: headless Chromium renders `index.html` to a screenshot,
//! and a second page (the test's, not the report's) lists every image the report loaded.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Chromium, or `None` (the test says it is skipped) unless `FACEGATE_REQUIRE_BROWSER=1` (CI).
pub fn chromium(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("FACEGATE_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.is_file() {
        return Some(path);
    }
    let msg = format!("{test}: no Chromium at {} (Debian package chromium, or set FACEGATE_CHROMIUM)", path.display());
    if std::env::var("FACEGATE_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {msg}");
    None
}

/// Headless, offline, in a throwaway profile: without the background-networking flags the
/// browser keeps trying hosts this machine cannot reach.
fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// One `<img>` of the report as the browser saw it.
#[derive(Debug)]
pub struct LoadedImage {
    pub src: String,
    pub complete: bool,
    pub natural: (u32, u32),
    pub rendered: (u32, u32),
}

/// What the browser made of a report.
pub struct Rendered {
    pub screenshot: image::RgbImage,
    pub images: Vec<LoadedImage>,
}

/// Renders `dir/index.html`: a screenshot of its top `height` pixels, and every image's state
/// once the page has loaded (read by a probe page in an iframe; the report itself has no script).
pub fn render(chromium: &Path, dir: &Path, height: u32) -> Rendered {
    let work = tempfile::tempdir().expect("temp dir");
    let index = dir.join("index.html").canonicalize().expect("index.html exists");
    let shot = work.path().join("shot.png");
    let out = headless(chromium, &work.path().join("profile"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size=1400,{height}"))
        .arg(format!("file://{}", index.display()))
        .output()
        .expect("chromium runs");
    assert!(shot.is_file(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let screenshot = image::open(&shot).expect("screenshot decodes").to_rgb8();

    let probe = work.path().join("probe.html");
    let script = "const f = document.getElementById('r');\
        f.addEventListener('load', () => {\
          const rows = [...f.contentDocument.images].map(i =>\
            [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight, i.width, i.height].join('\\t'));\
          const pre = document.createElement('pre'); pre.id = 'loaded'; pre.textContent = '\\n' + rows.join('\\n') + '\\n';\
          document.body.appendChild(pre);\
        });";
    std::fs::write(
        &probe,
        format!(
            "<!DOCTYPE html><html><body><iframe id=\"r\" width=\"1400\" height=\"900\" src=\"file://{}\"></iframe>\
             <script>{script}</script></body></html>",
            index.display()
        ),
    )
    .expect("probe page written");
    let out = headless(chromium, &work.path().join("profile2"))
        .args(["--allow-file-access-from-files", "--virtual-time-budget=20000", "--dump-dom"])
        .arg(format!("file://{}", probe.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let listed = dom
        .split_once("<pre id=\"loaded\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(list, _)| list.to_owned())
        .unwrap_or_else(|| panic!("the probe page saw no report load: {}", String::from_utf8_lossy(&out.stderr)));
    let images = listed
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let n = |k: usize| f.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            LoadedImage {
                src: f.first().copied().unwrap_or_default().to_owned(),
                complete: f.get(1) == Some(&"true"),
                natural: (n(2), n(3)),
                rendered: (n(4), n(5)),
            }
        })
        .collect();
    Rendered { screenshot, images }
}

/// The checks every report passes in a browser: each image the page refers to exists, loaded
/// and is shown at its own size; the screenshot is a page of plots, not a blank one.
pub fn check_report(chromium: &Path, dir: &Path, plots: &[&str]) {
    let html = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    assert!(!html.contains("<script"), "the report must not need scripts");
    assert!(!html.contains("http://") && !html.contains("https://"), "the report must not need the network");
    let rendered = render(chromium, dir, 2400);
    let srcs: Vec<&str> = html.split("src=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
    assert_eq!(rendered.images.len(), srcs.len(), "the browser saw every image of the page");
    for img in &rendered.images {
        assert!(dir.join(&img.src).is_file(), "{} is referenced but missing", img.src);
        assert!(img.complete && img.natural.0 > 0, "{} did not load: {img:?}", img.src);
        assert_eq!(img.rendered, img.natural, "{} is not shown at its size", img.src);
    }
    for plot in plots {
        let img = rendered.images.iter().find(|i| i.src == *plot).unwrap_or_else(|| panic!("{plot} not on the page"));
        assert_eq!(img.natural, (800, 560), "{plot}");
    }
    let shot = &rendered.screenshot;
    let white = shot.pixels().filter(|p| p.0.iter().all(|&c| c >= 250)).count();
    let drawn = 1.0 - white as f64 / f64::from(shot.width() * shot.height());
    let colours: std::collections::HashSet<[u8; 3]> = shot.pixels().map(|p| p.0).collect();
    // The plots' first curve colour (report::chart::PALETTE[0]) on screen: the plots were painted.
    let curve = shot.pixels().filter(|p| p.0.iter().zip([31u8, 119, 180]).all(|(&a, b)| a.abs_diff(b) <= 3)).count();
    eprintln!(
        "browser: {} images loaded; screenshot {}x{}, {:.1}% drawn, {} colours, {curve} curve pixels",
        rendered.images.len(),
        shot.width(),
        shot.height(),
        drawn * 100.0,
        colours.len()
    );
    assert!(
        drawn > 0.03 && colours.len() > 100,
        "the screenshot looks blank: {drawn:.3} drawn, {} colours",
        colours.len()
    );
    assert!(curve > 200, "no plotted curve on the screenshot ({curve} pixels of its colour)");
}

/// The check itself can fail: a page whose image is missing is seen as such.
#[test]
fn the_browser_sees_a_missing_image() {
    let Some(chromium) = chromium("the_browser_sees_a_missing_image") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    image::RgbImage::from_pixel(40, 30, image::Rgb([200, 30, 30])).save(dir.path().join("here.png")).expect("png");
    std::fs::write(
        dir.path().join("index.html"),
        "<html><body><img src=\"here.png\"><img src=\"gone.png\"></body></html>",
    )
    .expect("page");
    let rendered = render(&chromium, dir.path(), 300);
    let state: Vec<(&str, u32)> = rendered.images.iter().map(|i| (i.src.as_str(), i.natural.0)).collect();
    assert_eq!(state, [("here.png", 40), ("gone.png", 0)]);
    // The red square is on the screenshot, at the page's top left.
    let red = rendered.screenshot.pixels().filter(|p| p.0 == [200, 30, 30]).count();
    assert!(red >= 40 * 30, "{red} red pixels");
}
