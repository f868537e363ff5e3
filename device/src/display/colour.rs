//! The 240x240 colour layout (ST7789 class panels).
//!
//! Outcome screens flood the panel with their status colour so the result reads from across a
//! corridor; the live screens (idle, looking) stay dark so the face box stands out.

use super::text::{centered, draw_centered_lines, fit_best, fit_line, fit_lines, max_chars, sanitize, truncate};
use super::widgets::{clock, draw_brackets, draw_icon, draw_progress, progress, Icon, Scaled};
use super::{title_or_default, NormRect, Screen, NEW_HOST};
use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10, FONT_8X13};
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle, StrokeAlignment};

/// Panel side in pixels.
pub(crate) const SIZE: u32 = 240;
const CX: i32 = SIZE as i32 / 2;
/// Text never comes closer than this to the left and right edges.
const MARGIN: u32 = 10;
const TEXT_W: u32 = SIZE - 2 * MARGIN;

/// Camera preview area of the Looking screen: 4:3 like the camera, between header and footer.
pub(crate) const VIEWPORT: Rectangle = Rectangle::new(Point::new(0, 30), Size::new(240, 180));
/// Stroke of the face box, drawn inside the box's edges.
pub(crate) const FACE_STROKE: u32 = 3;

const fn rgb(r: u8, g: u8, b: u8) -> Rgb565 {
    Rgb565::new(r >> 3, g >> 2, b >> 3)
}

pub(crate) const GREEN: Rgb565 = rgb(0, 128, 56);
pub(crate) const RED: Rgb565 = rgb(200, 30, 36);
pub(crate) const AMBER: Rgb565 = rgb(255, 176, 0);
pub(crate) const BLUE: Rgb565 = rgb(24, 92, 184);
pub(crate) const FACE: Rgb565 = rgb(0, 220, 255);
const NAVY: Rgb565 = rgb(12, 20, 36);
const HEADER: Rgb565 = rgb(32, 52, 88);
const PREVIEW: Rgb565 = rgb(4, 8, 16);
const MUTED: Rgb565 = rgb(150, 170, 200);
const BRACKET: Rgb565 = rgb(90, 110, 140);
const SLATE: Rgb565 = rgb(28, 28, 34);
const WHITE: Rgb565 = Rgb565::WHITE;
const BLACK: Rgb565 = Rgb565::BLACK;

/// Background and foreground of a status screen; the foreground is picked for contrast.
#[derive(Clone, Copy)]
struct Palette {
    bg: Rgb565,
    ink: Rgb565,
}

const GRANTED: Palette = Palette { bg: GREEN, ink: WHITE };
const REFUSED: Palette = Palette { bg: RED, ink: WHITE };
const CAUTION: Palette = Palette { bg: AMBER, ink: BLACK };
const SERVICE: Palette = Palette { bg: BLUE, ink: WHITE };
const FAULT: Palette = Palette { bg: SLATE, ink: WHITE };

/// Top of the body text under the headline of a status screen.
const BODY_TOP: i32 = 142;
/// Top of the detail line under a (possibly two-line) name.
const DETAIL_TOP: i32 = 194;

/// Draws `screen` for a 240x240 colour panel. Everything is drawn inside (0,0)-(239,239).
pub fn draw_colour<D: DrawTarget<Color = Rgb565>>(screen: &Screen, target: &mut D) -> Result<(), D::Error> {
    match screen {
        Screen::Idle { title, enrolled } => idle(target, title, *enrolled),
        Screen::Looking { face, guidance } => looking(target, face.as_ref(), guidance.as_deref()),
        Screen::Granted { name, score } => {
            status(target, GRANTED, Icon::Check, "ACCESS GRANTED")?;
            name_block(target, name, GRANTED.ink)?;
            let score = if score.is_finite() { format!("match {score:.2}") } else { "match --".to_string() };
            centered(&score, &FONT_6X10, GRANTED.ink, CX, DETAIL_TOP).draw(target)?;
            Ok(())
        }
        Screen::Denied { name } => {
            status(target, REFUSED, Icon::Cross, "ACCESS DENIED")?;
            let named = name.as_deref().filter(|n| !sanitize(n).is_empty());
            // Without a name the explanation moves up into the name's place.
            let top = match named {
                Some(n) => {
                    name_block(target, n, REFUSED.ink)?;
                    DETAIL_TOP
                }
                None => BODY_TOP,
            };
            centered("Face does not match", &FONT_8X13, REFUSED.ink, CX, top).draw(target)?;
            Ok(())
        }
        Screen::Unknown => {
            status(target, REFUSED, Icon::Cross, "NOT RECOGNISED")?;
            draw_centered_lines(
                target,
                &["This face is not", "enrolled here"],
                &FONT_8X13,
                REFUSED.ink,
                CX,
                BODY_TOP,
                4,
            )?;
            Ok(())
        }
        Screen::LockedOut { remaining_secs } => {
            status(target, CAUTION, Icon::Padlock, "LOCKED OUT")?;
            countdown(target, CAUTION.ink, "Try again in", *remaining_secs, "Too many failed attempts")
        }
        Screen::SpoofSuspected => {
            status(target, CAUTION, Icon::NoPhoto, "SPOOF SUSPECTED")?;
            let lines = ["Show your face,", "not a photo"];
            draw_centered_lines(target, &lines, &FONT_8X13, CAUTION.ink, CX, BODY_TOP, 4)?;
            Ok(())
        }
        Screen::Pairing { seconds_left } => {
            status(target, SERVICE, Icon::Key, "PAIRING")?;
            countdown(target, SERVICE.ink, "Open for", *seconds_left, "Connect the enrolment tool")
        }
        Screen::Syncing { received, total } => {
            status(target, SERVICE, Icon::Sync, "SYNCING")?;
            let bar = Rectangle::new(Point::new(MARGIN as i32 + 10, BODY_TOP + 4), Size::new(TEXT_W - 20, 22));
            draw_progress(target, bar, *received, *total, SERVICE.ink)?;
            let (shown, pct) = progress(*received, *total);
            // Drop the wording before dropping digits.
            let long = format!("{shown} of {total} templates ({pct}%)");
            let count =
                if long.len() <= max_chars(&FONT_8X13, TEXT_W) { long } else { format!("{shown}/{total} ({pct}%)") };
            let count = fit_line(&count, &FONT_8X13, TEXT_W);
            centered(&count, &FONT_8X13, SERVICE.ink, CX, BODY_TOP + 36).draw(target)?;
            centered("Keep the device powered", &FONT_6X10, SERVICE.ink, CX, BODY_TOP + 60).draw(target)?;
            Ok(())
        }
        Screen::NewHost => {
            status(target, SERVICE, Icon::Key, "PAIRED")?;
            let lines = fit_lines(NEW_HOST, &FONT_8X13, TEXT_W, 5);
            draw_centered_lines(target, &lines, &FONT_8X13, SERVICE.ink, CX, BODY_TOP, 2)?;
            Ok(())
        }
        Screen::Error { message } => {
            status(target, FAULT, Icon::Exclaim, "ERROR")?;
            let lines = fit_lines(message, &FONT_8X13, TEXT_W, 5);
            draw_centered_lines(target, &lines, &FONT_8X13, FAULT.ink, CX, BODY_TOP, 2)?;
            Ok(())
        }
        Screen::AskingPanel { name } => {
            status(target, SERVICE, Icon::Sync, "ONE MOMENT")?;
            name_block(target, name, SERVICE.ink)?;
            centered("Asking the door controller", &FONT_6X10, SERVICE.ink, CX, DETAIL_TOP).draw(target)?;
            Ok(())
        }
        Screen::DoorOpen { name } => {
            status(target, GRANTED, Icon::Check, "DOOR OPEN")?;
            match name.as_deref().filter(|n| !sanitize(n).is_empty()) {
                Some(n) => name_block(target, n, GRANTED.ink)?,
                None => centered("Please enter", &FONT_8X13, GRANTED.ink, CX, BODY_TOP).draw(target).map(drop)?,
            }
            Ok(())
        }
        Screen::PanelRefused => {
            status(target, REFUSED, Icon::Cross, "ACCESS DENIED")?;
            let lines = ["Refused by the", "door controller"];
            draw_centered_lines(target, &lines, &FONT_8X13, REFUSED.ink, CX, BODY_TOP, 4)?;
            Ok(())
        }
        Screen::NotAllowedNow { name } => {
            status(target, CAUTION, Icon::Exclaim, "NOT NOW")?;
            name_block(target, name, CAUTION.ink)?;
            centered("Not allowed at this time", &FONT_6X10, CAUTION.ink, CX, DETAIL_TOP).draw(target)?;
            Ok(())
        }
        Screen::PanelText { text } => {
            status(target, SERVICE, Icon::Exclaim, "MESSAGE")?;
            let lines = fit_lines(text, &FONT_8X13, TEXT_W, 5);
            draw_centered_lines(target, &lines, &FONT_8X13, SERVICE.ink, CX, BODY_TOP, 2)?;
            Ok(())
        }
    }
}

/// Background, icon disc and headline shared by the outcome and service screens.
fn status<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    pal: Palette,
    icon: Icon,
    headline: &str,
) -> Result<(), D::Error> {
    target.clear(pal.bg)?;
    let center = Point::new(CX, 62);
    Circle::with_center(center, 84).into_styled(PrimitiveStyle::with_fill(pal.ink)).draw(target)?;
    // Exclaim is a slim glyph; the others are drawn at a size that leaves a ring of disc.
    let glyph_size = if icon == Icon::Exclaim { 64 } else { 60 };
    draw_icon(target, icon, center, glyph_size, pal.bg, pal.ink)?;
    let headline = fit_line(headline, &FONT_10X20, TEXT_W);
    centered(&headline, &FONT_10X20, pal.ink, CX, 112).draw(target)?;
    Ok(())
}

/// The person's name in the largest font, on up to two lines (BODY_TOP up to DETAIL_TOP).
fn name_block<D: DrawTarget<Color = Rgb565>>(target: &mut D, name: &str, ink: Rgb565) -> Result<(), D::Error> {
    let lines = fit_lines(name, &FONT_10X20, TEXT_W, 2);
    draw_centered_lines(target, &lines, &FONT_10X20, ink, CX, BODY_TOP, 2)?;
    Ok(())
}

/// "`label`", a big `M:SS` and a footnote.
fn countdown<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    ink: Rgb565,
    label: &str,
    secs: u32,
    note: &str,
) -> Result<(), D::Error> {
    centered(label, &FONT_8X13, ink, CX, BODY_TOP).draw(target)?;
    big_line(target, &clock(secs), ink, BODY_TOP + 16)?;
    centered(note, &FONT_6X10, ink, CX, BODY_TOP + 64).draw(target)?;
    Ok(())
}

/// One line at twice the size of FONT_10X20 when it fits the width, else at normal size.
fn big_line<D: DrawTarget<Color = Rgb565>>(target: &mut D, text: &str, ink: Rgb565, top: i32) -> Result<(), D::Error> {
    let font = &FONT_10X20;
    let clean = sanitize(text);
    if clean.chars().count() <= max_chars(font, TEXT_W / 2) {
        // Drawn at (0,0) in a 2x space anchored at the screen position.
        let mut big = Scaled::new(target, Point::new(CX, top), 2);
        centered(&clean, font, ink, 0, 0).draw(&mut big)?;
    } else {
        let line = truncate(&clean, max_chars(font, TEXT_W));
        centered(&line, font, ink, CX, top + font.character_size.height as i32 / 2).draw(target)?;
    }
    Ok(())
}

fn idle<D: DrawTarget<Color = Rgb565>>(target: &mut D, title: &str, enrolled: u32) -> Result<(), D::Error> {
    target.clear(NAVY)?;
    Rectangle::new(Point::zero(), Size::new(SIZE, 36)).into_styled(PrimitiveStyle::with_fill(HEADER)).draw(target)?;
    let title = fit_line(title_or_default(title), &FONT_10X20, TEXT_W);
    centered(&title, &FONT_10X20, WHITE, CX, 8).draw(target)?;
    draw_icon(target, Icon::Face, Point::new(CX, 100), 100, FACE, NAVY)?;
    centered("Look at the camera", &FONT_10X20, WHITE, CX, 164).draw(target)?;
    let people = if enrolled == 1 { "person" } else { "people" };
    centered(&format!("{enrolled} {people} enrolled"), &FONT_8X13, MUTED, CX, 204).draw(target)?;
    Ok(())
}

fn looking<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    face: Option<&NormRect>,
    guidance: Option<&str>,
) -> Result<(), D::Error> {
    target.clear(NAVY)?;
    Rectangle::new(Point::zero(), Size::new(SIZE, 30)).into_styled(PrimitiveStyle::with_fill(HEADER)).draw(target)?;
    centered("FACE CHECK", &FONT_10X20, WHITE, CX, 5).draw(target)?;
    VIEWPORT.into_styled(PrimitiveStyle::with_fill(PREVIEW)).draw(target)?;
    draw_brackets(target, VIEWPORT.offset(-6), 22, BRACKET, 3)?;
    // An unusable box (NaN, off-frame) counts as no face at all.
    let rect = face.and_then(|f| f.to_pixels(VIEWPORT));
    if let Some(rect) = rect {
        let style = PrimitiveStyleBuilder::new()
            .stroke_color(FACE)
            .stroke_width(FACE_STROKE)
            .stroke_alignment(StrokeAlignment::Inside)
            .build();
        rect.into_styled(style).draw(target)?;
    }
    // Footer: an instruction on amber demands attention; otherwise a calm status line.
    let footer = Rectangle::new(Point::new(0, 210), Size::new(SIZE, 30));
    let guidance = guidance.filter(|g| !sanitize(g).is_empty());
    let (bg, ink, text) = match (guidance, rect.is_some()) {
        (Some(g), _) => (AMBER, BLACK, g),
        (None, true) => (NAVY, WHITE, "Checking..."),
        (None, false) => (NAVY, WHITE, "Look at the camera"),
    };
    footer.into_styled(PrimitiveStyle::with_fill(bg)).draw(target)?;
    if let Some((font, line)) = fit_best(text, &[&FONT_10X20, &FONT_8X13], TEXT_W) {
        let top = 210 + (30 - font.character_size.height as i32) / 2;
        centered(&line, font, ink, CX, top).draw(target)?;
    }
    Ok(())
}
