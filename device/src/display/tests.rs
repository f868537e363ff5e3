//! Rendering tests on synthetic screens: sizes, colours, text placement, bounds, PNG output.

use super::*;
use embedded_graphics::mono_font::ascii::FONT_10X20;
use embedded_graphics::pixelcolor::Rgb888;
use image::Rgb;
use std::convert::Infallible;

const LONG: &str = "Maximiliane Alexandra Konstantina von und zu Hohenzollern-Sigmaringen-Wittelsbach";

/// One of every screen, with ordinary content.
fn every_screen() -> Vec<Screen> {
    vec![
        Screen::Idle { title: "Front door".into(), enrolled: 12 },
        Screen::Looking { face: None, guidance: None },
        Screen::Looking {
            face: Some(NormRect { x: 0.3, y: 0.2, w: 0.35, h: 0.5 }),
            guidance: Some("Move closer".into()),
        },
        Screen::Looking { face: Some(NormRect { x: 0.3, y: 0.2, w: 0.35, h: 0.5 }), guidance: None },
        Screen::Granted { name: "Alice Martin".into(), score: 0.87 },
        Screen::Denied { name: Some("Alice Martin".into()) },
        Screen::Denied { name: None },
        Screen::Unknown,
        Screen::LockedOut { remaining_secs: 299 },
        Screen::SpoofSuspected,
        Screen::Pairing { seconds_left: 120 },
        Screen::Syncing { received: 12, total: 40 },
        Screen::NewHost,
        Screen::Error { message: "Camera not found: /dev/video0 is missing".into() },
        Screen::AskingPanel { name: "Alice Martin".into() },
        Screen::DoorOpen { name: Some("Alice Martin".into()) },
        Screen::DoorOpen { name: None },
        Screen::PanelRefused,
        Screen::PanelText { text: "Badge at the front desk".into() },
        Screen::NotAllowedNow { name: "Alice Martin".into() },
    ]
}

/// Content chosen to break layouts: overlong text, control and non-ASCII characters, extreme
/// numbers, face boxes outside the frame or not finite.
fn hostile_screens() -> Vec<Screen> {
    let nan = f32::NAN;
    vec![
        Screen::Idle { title: LONG.repeat(3), enrolled: u32::MAX },
        Screen::Idle { title: String::new(), enrolled: 1 },
        Screen::Looking { face: Some(NormRect { x: -0.5, y: -0.5, w: 3.0, h: 3.0 }), guidance: Some(LONG.into()) },
        Screen::Looking { face: Some(NormRect { x: nan, y: 0.1, w: 0.2, h: 0.2 }), guidance: Some("\n\t".into()) },
        Screen::Looking { face: Some(NormRect { x: 0.9, y: 0.9, w: -0.5, h: f32::INFINITY }), guidance: None },
        Screen::Looking { face: Some(NormRect { x: 0.0, y: 0.0, w: 1.0, h: 1.0 }), guidance: None },
        Screen::Granted { name: LONG.into(), score: nan },
        Screen::Granted { name: "X".repeat(500), score: f32::INFINITY },
        Screen::Granted { name: "王伟\nÉlodie\u{0}Ørsted".into(), score: -1.0 },
        Screen::Denied { name: Some(LONG.into()) },
        Screen::Denied { name: Some("   ".into()) },
        Screen::LockedOut { remaining_secs: u32::MAX },
        Screen::LockedOut { remaining_secs: 0 },
        Screen::Pairing { seconds_left: 86_399 },
        Screen::Syncing { received: u32::MAX, total: 7 },
        Screen::Syncing { received: 0, total: 0 },
        Screen::Syncing { received: u32::MAX, total: u32::MAX },
        Screen::Error { message: LONG.repeat(5) },
        Screen::Error { message: String::new() },
        Screen::AskingPanel { name: LONG.into() },
        Screen::DoorOpen { name: Some("\u{0}\u{7f}".into()) },
        Screen::PanelText { text: LONG.repeat(4) },
        Screen::PanelText { text: "\x1b[31m\r\n".into() },
    ]
}

/// A draw target that records pixels drawn outside its area. The simulator silently drops
/// them, which would hide text running off the panel.
struct Strict<C> {
    size: Size,
    inside: usize,
    outside: usize,
    _color: std::marker::PhantomData<C>,
}

impl<C> Strict<C> {
    fn new(size: Size) -> Self {
        Strict { size, inside: 0, outside: 0, _color: std::marker::PhantomData }
    }
}

impl<C: PixelColor> OriginDimensions for Strict<C> {
    fn size(&self) -> Size {
        self.size
    }
}

impl<C: PixelColor> DrawTarget for Strict<C> {
    type Color = C;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<C>>>(&mut self, pixels: I) -> Result<(), Infallible> {
        let area = self.bounding_box();
        for Pixel(p, _) in pixels {
            if area.contains(p) {
                self.inside += 1;
            } else {
                self.outside += 1;
            }
        }
        Ok(())
    }
}

fn rgb(c: Rgb565) -> Rgb<u8> {
    let c = Rgb888::from(c);
    Rgb([c.r(), c.g(), c.b()])
}

/// Share of the image's pixels that satisfy `pred`.
fn share(img: &image::RgbImage, pred: impl Fn(&Rgb<u8>) -> bool) -> f64 {
    img.pixels().filter(|p| pred(p)).count() as f64 / f64::from(img.width() * img.height())
}

// Hue classes, deliberately loose so they test "looks green", not one exact palette value.
fn greenish(p: &Rgb<u8>) -> bool {
    let [r, g, b] = p.0.map(i32::from);
    g > 90 && g > r + 60 && g > b + 40
}
fn reddish(p: &Rgb<u8>) -> bool {
    let [r, g, b] = p.0.map(i32::from);
    r > 150 && r > g + 100 && r > b + 100
}
fn amber(p: &Rgb<u8>) -> bool {
    let [r, g, b] = p.0.map(i32::from);
    r > 200 && (110..=210).contains(&g) && b < 80
}
fn blueish(p: &Rgb<u8>) -> bool {
    let [r, g, b] = p.0.map(i32::from);
    b > 140 && b > r + 80 && b > g + 40
}

/// Pixels in `rows` x `cols` that differ from `bg`.
fn ink_in(img: &image::RgbImage, rows: std::ops::Range<u32>, cols: std::ops::Range<u32>, bg: Rgb<u8>) -> usize {
    rows.flat_map(|y| cols.clone().map(move |x| (x, y))).filter(|&(x, y)| *img.get_pixel(x, y) != bg).count()
}

#[test]
fn every_screen_renders_at_panel_size() {
    for screen in every_screen().iter().chain(&hostile_screens()) {
        let colour = render(screen, Panel::Colour240);
        assert_eq!(colour.dimensions(), (240, 240), "{screen:?}");
        let mono = render(screen, Panel::Mono128x64);
        assert_eq!(mono.dimensions(), (128, 64), "{screen:?}");
    }
}

#[test]
fn mono_output_is_pure_black_and_white() {
    for screen in every_screen() {
        let img = render(&screen, Panel::Mono128x64);
        let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        colours.sort_unstable();
        colours.dedup();
        assert_eq!(colours, [[0, 0, 0], [255, 255, 255]], "{screen:?}");
    }
}

#[test]
fn outcome_screens_are_dominated_by_their_status_colour() {
    type Class = fn(&Rgb<u8>) -> bool;
    let cases: [(Screen, Class, &str); 11] = [
        (Screen::Granted { name: "Alice".into(), score: 0.9 }, greenish, "green"),
        (Screen::Denied { name: Some("Alice".into()) }, reddish, "red"),
        (Screen::Unknown, reddish, "red"),
        (Screen::LockedOut { remaining_secs: 30 }, amber, "amber"),
        (Screen::SpoofSuspected, amber, "amber"),
        (Screen::Pairing { seconds_left: 60 }, blueish, "blue"),
        (Screen::Syncing { received: 1, total: 2 }, blueish, "blue"),
        (Screen::DoorOpen { name: Some("Alice".into()) }, greenish, "green"),
        (Screen::PanelRefused, reddish, "red"),
        (Screen::AskingPanel { name: "Alice".into() }, blueish, "blue"),
        (Screen::NotAllowedNow { name: "Alice".into() }, amber, "amber"),
    ];
    let classes: [Class; 4] = [greenish, reddish, amber, blueish];
    for (screen, class, label) in cases {
        let img = render(&screen, Panel::Colour240);
        let own = share(&img, class);
        assert!(own > 0.6, "{screen:?}: only {own:.2} {label}");
        // No other status colour competes with it.
        for other in classes.iter().filter(|&&c| c as usize != class as usize) {
            assert!(share(&img, other) < 0.02, "{screen:?} mixes status colours");
        }
    }
    // The live screens are not mistaken for an outcome.
    let idle = render(&Screen::Idle { title: "Door".into(), enrolled: 3 }, Panel::Colour240);
    for class in classes {
        assert!(share(&idle, class) < 0.1);
    }
}

#[test]
fn nothing_is_drawn_outside_either_panel() {
    for screen in every_screen().iter().chain(&hostile_screens()) {
        let mut colour = Strict::<Rgb565>::new(Panel::Colour240.size());
        let Ok(()) = draw_colour(screen, &mut colour);
        assert_eq!(colour.outside, 0, "colour {screen:?}");
        assert!(colour.inside >= 240 * 240, "colour {screen:?} did not fill the panel");
        let mut mono = Strict::<BinaryColor>::new(Panel::Mono128x64.size());
        let Ok(()) = draw_mono(screen, &mut mono);
        assert_eq!(mono.outside, 0, "mono {screen:?}");
        assert!(mono.inside >= 128 * 64, "mono {screen:?} did not fill the panel");
    }
}

#[test]
fn long_name_lines_fit_the_colour_panel() {
    // The same fitting and placement as the colour name block.
    let lines = text::fit_lines(LONG, &FONT_10X20, colour::SIZE - 20, 2);
    assert_eq!(lines.len(), 2);
    assert!(lines[1].ends_with(text::ELLIPSIS), "{lines:?}");
    let panel = Rectangle::new(Point::zero(), Panel::Colour240.size());
    for line in &lines {
        let bb = text::centered(line, &FONT_10X20, Rgb565::WHITE, 120, 142).bounding_box();
        let br = bb.bottom_right().unwrap_or(bb.top_left);
        assert!(panel.contains(bb.top_left) && panel.contains(br), "{line:?} at {bb:?}");
        assert!(bb.top_left.x >= 10 && br.x <= 229, "{line:?} enters the margin: {bb:?}");
    }
}

#[test]
fn names_are_drawn_in_the_name_region() {
    let named = |name: &str| Screen::Granted { name: name.into(), score: 0.8 };
    let bg = rgb(colour::GREEN);
    let alice = render(&named("Alice"), Panel::Colour240);
    let blank = render(&named(""), Panel::Colour240);
    assert!(ink_in(&alice, 142..162, 0..240, bg) > 50, "no name pixels");
    assert_eq!(ink_in(&blank, 142..162, 0..240, bg), 0);
    assert_ne!(alice, render(&named("Bob"), Panel::Colour240));

    // A long name fills the line up to the margins, no further.
    let long = render(&named(LONG), Panel::Colour240);
    assert!(ink_in(&long, 142..184, 10..30, bg) > 0 && ink_in(&long, 142..184, 210..230, bg) > 0);
    assert_eq!(ink_in(&long, 142..184, 0..10, bg) + ink_in(&long, 142..184, 230..240, bg), 0);

    let black = Rgb([0, 0, 0]);
    let mono = render(&named("Alice"), Panel::Mono128x64);
    assert!(ink_in(&mono, 16..50, 0..128, black) > 30);
    assert_eq!(ink_in(&render(&named(""), Panel::Mono128x64), 16..50, 0..128, black), 0);
    let mono_long = render(&named(LONG), Panel::Mono128x64);
    assert!(ink_in(&mono_long, 16..50, 0..128, black) > 0);
    assert_eq!(ink_in(&mono_long, 13..64, 0..2, black) + ink_in(&mono_long, 13..64, 126..128, black), 0);
}

#[test]
fn non_ascii_names_are_shown_not_dropped() {
    let screen = |name: &str| Screen::Granted { name: name.into(), score: 0.8 };
    // Transliterated: identical to the plain ASCII spelling.
    assert_eq!(render(&screen("José Müller"), Panel::Colour240), render(&screen("Jose Muller"), Panel::Colour240));
    // No ASCII form: shown as '?' rather than an empty name.
    assert_eq!(render(&screen("王伟"), Panel::Mono128x64), render(&screen("??"), Panel::Mono128x64));
}

#[test]
fn idle_without_a_device_name_shows_the_product_name() {
    let idle = |title: &str| Screen::Idle { title: title.into(), enrolled: 0 };
    for panel in Panel::ALL {
        assert_eq!(render(&idle(" \n"), panel), render(&idle("Facegate"), panel));
    }
}

#[test]
fn face_box_lands_where_the_camera_saw_it() {
    let face = NormRect { x: 0.25, y: 0.25, w: 0.5, h: 0.5 };
    let screen = Screen::Looking { face: Some(face), guidance: None };

    // Colour: viewport (0,30) 240x180 -> box x 60..=179, y 75..=164, 3 px stroke inside.
    let img = render(&screen, Panel::Colour240);
    let box_colour = rgb(colour::FACE);
    let at = |x, y| *img.get_pixel(x, y);
    for (x, y) in [(60, 120), (62, 120), (179, 120), (177, 120), (120, 75), (120, 77), (120, 164), (120, 162)] {
        assert_eq!(at(x, y), box_colour, "edge pixel ({x},{y})");
    }
    for (x, y) in [(59, 120), (63, 120), (180, 120), (176, 120), (120, 74), (120, 78), (120, 165), (120, 120)] {
        assert_ne!(at(x, y), box_colour, "off-edge pixel ({x},{y})");
    }

    // Mono: viewport (0,15) 64x48 -> box x 16..=47, y 27..=50, 1 px stroke.
    let img = render(&screen, Panel::Mono128x64);
    let on = Rgb([255, 255, 255]);
    let at = |x, y| *img.get_pixel(x, y);
    for (x, y) in [(16, 39), (47, 39), (32, 27), (32, 50)] {
        assert_eq!(at(x, y), on, "edge pixel ({x},{y})");
    }
    for (x, y) in [(15, 39), (17, 39), (48, 39), (32, 26), (32, 51), (32, 39)] {
        assert_ne!(at(x, y), on, "off-edge pixel ({x},{y})");
    }

    // Without a face there is no box.
    let empty = render(&Screen::Looking { face: None, guidance: None }, Panel::Colour240);
    assert!(empty.pixels().all(|p| *p != box_colour));
}

#[test]
fn norm_rect_mapping_clamps_and_rejects_garbage() {
    let area = Rectangle::new(Point::new(0, 30), Size::new(240, 180));
    let r = |x, y, w, h| NormRect { x, y, w, h }.to_pixels(area);
    assert_eq!(r(0.25, 0.25, 0.5, 0.5), Some(Rectangle::new(Point::new(60, 75), Size::new(120, 90))));
    assert_eq!(r(-1.0, -1.0, 5.0, 5.0), Some(area));
    assert_eq!(r(1.5, 0.0, 0.5, 0.5), None);
    assert_eq!(r(0.5, 0.5, 0.0, 0.2), None);
    assert_eq!(r(0.5, 0.5, -0.2, 0.2), None);
    assert_eq!(r(f32::NAN, 0.5, 0.2, 0.2), None);
    assert_eq!(r(0.5, 0.5, f32::INFINITY, 0.2), None);
}

#[test]
fn guidance_is_shown_on_amber() {
    let with = render(&Screen::Looking { face: None, guidance: Some("Too dark".into()) }, Panel::Colour240);
    let without = render(&Screen::Looking { face: None, guidance: None }, Panel::Colour240);
    let footer_amber = |img: &image::RgbImage| (0..240).filter(|&x| amber(img.get_pixel(x, 212))).count();
    assert_eq!(footer_amber(&with), 240);
    assert_eq!(footer_amber(&without), 0);
}

#[test]
fn countdown_and_progress_change_the_picture() {
    let locked = |s| render(&Screen::LockedOut { remaining_secs: s }, Panel::Colour240);
    assert_ne!(locked(59), locked(58));
    let sync = |r| render(&Screen::Syncing { received: r, total: 10 }, Panel::Colour240);
    let white = rgb(Rgb565::WHITE);
    // Bar row inside the outline: the filled part grows with `received`.
    let filled = |img: &image::RgbImage| (0..240).filter(|&x| *img.get_pixel(x, 157) == white).count();
    let (none, half, full) = (filled(&sync(0)), filled(&sync(5)), filled(&sync(10)));
    assert!(none < half && half < full, "{none} {half} {full}");
    let mono_sync = |r| render(&Screen::Syncing { received: r, total: 10 }, Panel::Mono128x64);
    assert_ne!(mono_sync(3), mono_sync(4));
}

#[test]
fn slugs_are_distinct_file_name_safe() {
    let mut slugs: Vec<&str> = every_screen().iter().map(Screen::slug).collect();
    slugs.dedup();
    let all = [
        "idle",
        "looking",
        "granted",
        "denied",
        "unknown",
        "locked-out",
        "spoof-suspected",
        "pairing",
        "syncing",
        "new-host",
        "error",
        "asking-panel",
        "door-open",
        "panel-refused",
        "panel-text",
        "not-allowed-now",
    ];
    assert_eq!(slugs, all);
    assert!(all.iter().all(|s| s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')));
}

#[test]
fn png_display_writes_only_new_screens() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("frames");
    let mut display = PngDisplay::new(&out)?;
    let idle = Screen::Idle { title: "Door".into(), enrolled: 2 };
    let granted = Screen::Granted { name: "Alice".into(), score: 0.9 };

    let first = display.show(&idle)?;
    assert_eq!(first, [out.join("00000-idle-colour.png"), out.join("00000-idle-mono.png")]);
    assert!(display.show(&idle)?.is_empty(), "unchanged screen rewritten");
    let second = display.show(&granted)?;
    assert_eq!(second, [out.join("00001-granted-colour.png"), out.join("00001-granted-mono.png")]);
    // Back to a screen seen before, but not the last one: it is new again.
    let third = display.show(&idle)?;
    assert_eq!(third[0], out.join("00002-idle-colour.png"));

    for (path, size) in first.iter().chain(&second).chain(&third).zip([(240, 240), (128, 64)].iter().cycle()) {
        let img = image::open(path)?;
        assert_eq!((img.width(), img.height()), *size, "{}", path.display());
    }
    // Decoded colour file equals the in-memory render.
    assert_eq!(image::open(&second[0])?.to_rgb8(), render(&granted, Panel::Colour240));

    let mut names: Vec<String> = std::fs::read_dir(&out)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");

    // A new display on the same directory continues the numbering.
    let mut again = PngDisplay::new(&out)?;
    assert_eq!(again.show(&granted)?[1], out.join("00003-granted-mono.png"));
    Ok(())
}

#[test]
fn png_display_reports_an_unusable_directory() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x")?;
    let err = PngDisplay::new(&file).err().ok_or("a file accepted as output directory")?;
    assert!(matches!(err, DisplayError::Io { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    Ok(())
}

/// Renders every screen (and the hostile ones) for both panels into `FACEGATE_DISPLAY_GALLERY` (default: a
/// `facegate-display-gallery` folder in the temp directory) to look at:
/// `cargo test gallery -- --ignored --nocapture`.
#[test]
#[ignore = "writes PNG files for a human to inspect"]
fn gallery() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("FACEGATE_DISPLAY_GALLERY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("facegate-display-gallery"));
    let mut display = PngDisplay::new(&dir)?;
    let extra = [
        Screen::Granted { name: LONG.into(), score: 0.734 },
        Screen::Granted { name: "José Ørsted-Müller".into(), score: 0.91 },
        Screen::Looking {
            face: Some(NormRect { x: 0.05, y: 0.1, w: 0.2, h: 0.25 }),
            guidance: Some("One person at a time".into()),
        },
        Screen::LockedOut { remaining_secs: 4000 },
        Screen::Syncing { received: 40, total: 40 },
    ];
    for screen in every_screen().iter().chain(&extra).chain(&hostile_screens()) {
        for path in display.show(screen)? {
            println!("{}", path.display());
        }
    }
    Ok(())
}
