//! The 128x64 monochrome layout (SSD1306 class panels): an inverted header bar naming the
//! state, the details below it in compact fonts.

use super::text::{centered, draw_centered_lines, fit_best, fit_line, fit_lines, left, max_chars, sanitize};
use super::widgets::{clock, draw_brackets, draw_icon, draw_progress, progress, Icon};
use super::{title_or_default, NormRect, Screen, NEW_HOST};
use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_5X8, FONT_6X10, FONT_7X13, FONT_9X15};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

/// Panel size in pixels.
pub(crate) const WIDTH: u32 = 128;
pub(crate) const HEIGHT: u32 = 64;
const CX: i32 = WIDTH as i32 / 2;
const HEADER_H: u32 = 12;
/// Usable text width: two pixels of margin each side.
const TEXT_W: u32 = WIDTH - 4;

/// Camera preview of the Looking screen: 4:3, left of the guidance column.
pub(crate) const VIEWPORT: Rectangle = Rectangle::new(Point::new(0, 15), Size::new(64, 48));

const ON: BinaryColor = BinaryColor::On;
const OFF: BinaryColor = BinaryColor::Off;

/// Draws `screen` for a 128x64 monochrome panel. Everything is drawn inside (0,0)-(127,63).
pub fn draw_mono<D: DrawTarget<Color = BinaryColor>>(screen: &Screen, target: &mut D) -> Result<(), D::Error> {
    target.clear(OFF)?;
    match screen {
        Screen::Idle { title, enrolled } => {
            header(target, None, title_or_default(title))?;
            draw_centered_lines(target, &["Look at the", "camera"], &FONT_9X15, ON, CX, 16, 0)?;
            let people = if *enrolled == 1 { "person" } else { "people" };
            let count = fit_line(&format!("{enrolled} {people} enrolled"), &FONT_6X10, TEXT_W);
            centered(&count, &FONT_6X10, ON, CX, 52).draw(target)?;
        }
        Screen::Looking { face, guidance } => looking(target, face.as_ref(), guidance.as_deref())?,
        Screen::Granted { name, score } => {
            header(target, Some(Icon::Check), "ACCESS GRANTED")?;
            name_block(target, name)?;
            let score = if score.is_finite() { format!("match {score:.2}") } else { "match --".to_string() };
            centered(&score, &FONT_6X10, ON, CX, 53).draw(target)?;
        }
        Screen::Denied { name } => {
            header(target, Some(Icon::Cross), "ACCESS DENIED")?;
            match name.as_deref().filter(|n| !sanitize(n).is_empty()) {
                Some(n) => {
                    name_block(target, n)?;
                    centered("Face does not match", &FONT_6X10, ON, CX, 53).draw(target)?;
                }
                None => {
                    draw_centered_lines(target, &["Face does", "not match"], &FONT_9X15, ON, CX, 20, 2)?;
                }
            }
        }
        Screen::Unknown => {
            header(target, Some(Icon::Cross), "NOT RECOGNISED")?;
            centered("Unknown face", &FONT_10X20, ON, CX, 20).draw(target)?;
            centered("Not enrolled here", &FONT_6X10, ON, CX, 53).draw(target)?;
        }
        Screen::LockedOut { remaining_secs } => {
            header(target, Some(Icon::Padlock), "LOCKED OUT")?;
            countdown(target, "Try again in", *remaining_secs, "Too many attempts")?;
        }
        Screen::SpoofSuspected => {
            header(target, Some(Icon::Exclaim), "SPOOF SUSPECTED")?;
            let lines = fit_lines("Show your face, not a photo", &FONT_7X13, TEXT_W, 3);
            draw_centered_lines(target, &lines, &FONT_7X13, ON, CX, 16, 1)?;
        }
        Screen::Pairing { seconds_left } => {
            header(target, Some(Icon::Key), "PAIRING")?;
            countdown(target, "Open for", *seconds_left, "Connect the tool")?;
        }
        Screen::Syncing { received, total } => {
            header(target, Some(Icon::Sync), "SYNCING")?;
            let (shown, pct) = progress(*received, *total);
            if let Some((font, count)) = fit_best(&format!("{shown} of {total}"), &[&FONT_7X13, &FONT_6X10], TEXT_W) {
                centered(&count, font, ON, CX, 17).draw(target)?;
            }
            draw_progress(target, Rectangle::new(Point::new(4, 34), Size::new(120, 10)), *received, *total, ON)?;
            centered(&format!("{pct}%"), &FONT_6X10, ON, CX, 50).draw(target)?;
        }
        Screen::NewHost => {
            header(target, Some(Icon::Key), "PAIRED")?;
            let lines = fit_lines(NEW_HOST, &FONT_6X10, TEXT_W, 5);
            draw_centered_lines(target, &lines, &FONT_6X10, ON, CX, 14, 0)?;
        }
        Screen::Error { message } => {
            header(target, Some(Icon::Exclaim), "ERROR")?;
            let lines = fit_lines(message, &FONT_6X10, TEXT_W, 5);
            draw_centered_lines(target, &lines, &FONT_6X10, ON, CX, 14, 0)?;
        }
        Screen::AskingPanel { name } => {
            header(target, Some(Icon::Sync), "ONE MOMENT")?;
            name_block(target, name)?;
            centered("Asking the door", &FONT_6X10, ON, CX, 53).draw(target)?;
        }
        Screen::DoorOpen { name } => {
            header(target, Some(Icon::Check), "DOOR OPEN")?;
            match name.as_deref().filter(|n| !sanitize(n).is_empty()) {
                Some(n) => name_block(target, n)?,
                None => {
                    draw_centered_lines(target, &["Please", "enter"], &FONT_9X15, ON, CX, 20, 2)?;
                }
            }
        }
        Screen::PanelRefused => {
            header(target, Some(Icon::Cross), "ACCESS DENIED")?;
            draw_centered_lines(target, &["Refused by the", "door controller"], &FONT_7X13, ON, CX, 20, 2)?;
        }
        Screen::NotAllowedNow { name } => {
            header(target, Some(Icon::Exclaim), "NOT NOW")?;
            name_block(target, name)?;
            centered("Not allowed now", &FONT_6X10, ON, CX, 53).draw(target)?;
        }
        Screen::PanelText { text } => {
            header(target, Some(Icon::Exclaim), "MESSAGE")?;
            let lines = fit_lines(text, &FONT_6X10, TEXT_W, 5);
            draw_centered_lines(target, &lines, &FONT_6X10, ON, CX, 14, 0)?;
        }
    }
    Ok(())
}

/// Inverted bar across the top with an optional icon and the title.
fn header<D: DrawTarget<Color = BinaryColor>>(target: &mut D, icon: Option<Icon>, title: &str) -> Result<(), D::Error> {
    Rectangle::new(Point::zero(), Size::new(WIDTH, HEADER_H))
        .into_styled(PrimitiveStyle::with_fill(ON))
        .draw(target)?;
    match icon {
        Some(icon) => {
            draw_icon(target, icon, Point::new(7, 6), 11, OFF, ON)?;
            let text_x = 16;
            let line = fit_line(title, &FONT_6X10, WIDTH - text_x as u32 - 2);
            left(&line, &FONT_6X10, OFF, Point::new(text_x, 1)).draw(target)?;
        }
        None => {
            let line = fit_line(title, &FONT_6X10, TEXT_W);
            centered(&line, &FONT_6X10, OFF, CX, 1).draw(target)?;
        }
    }
    Ok(())
}

/// The name between header and footnote: one big line if it fits, else two smaller lines.
fn name_block<D: DrawTarget<Color = BinaryColor>>(target: &mut D, name: &str) -> Result<(), D::Error> {
    match fit_best(name, &[&FONT_10X20], TEXT_W) {
        Some((font, line)) if line == sanitize(name) => {
            centered(&line, font, ON, CX, 22).draw(target)?;
        }
        _ => {
            let lines = fit_lines(name, &FONT_7X13, TEXT_W, 2);
            let top = if lines.len() > 1 { 18 } else { 25 };
            draw_centered_lines(target, &lines, &FONT_7X13, ON, CX, top, 1)?;
        }
    }
    Ok(())
}

fn countdown<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    label: &str,
    secs: u32,
    note: &str,
) -> Result<(), D::Error> {
    centered(label, &FONT_6X10, ON, CX, 15).draw(target)?;
    if let Some((font, line)) = fit_best(&clock(secs), &[&FONT_10X20, &FONT_7X13], TEXT_W) {
        let top = 26 + (20 - font.character_size.height as i32) / 2;
        centered(&line, font, ON, CX, top).draw(target)?;
    }
    centered(note, &FONT_6X10, ON, CX, 53).draw(target)?;
    Ok(())
}

fn looking<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    face: Option<&NormRect>,
    guidance: Option<&str>,
) -> Result<(), D::Error> {
    header(target, None, "FACE CHECK")?;
    draw_brackets(target, VIEWPORT, 8, ON, 1)?;
    // An unusable box (NaN, off-frame) counts as no face at all.
    let rect = face.and_then(|f| f.to_pixels(VIEWPORT));
    if let Some(rect) = rect {
        rect.into_styled(PrimitiveStyle::with_stroke(ON, 1)).draw(target)?;
    }
    let text = match (guidance.filter(|g| !sanitize(g).is_empty()), rect.is_some()) {
        (Some(g), _) => g,
        // Unlike the colour panel's "Checking...", this fits the 10-character column.
        (None, true) => "Checking",
        (None, false) => "Look at the camera",
    };
    // Column right of the preview: x 67..127. A word too long for 6x10 there switches to
    // 5x8 rather than being split mid-word.
    let column_w = WIDTH - 67;
    let clean = sanitize(text);
    let font =
        if clean.split(' ').all(|w| w.len() <= max_chars(&FONT_6X10, column_w)) { &FONT_6X10 } else { &FONT_5X8 };
    let line_h = font.character_size.height as i32 + 1;
    let lines = fit_lines(&clean, font, column_w, 4);
    let top = 15 + (48 - line_h * lines.len() as i32) / 2;
    draw_centered_lines(target, &lines, font, ON, 67 + column_w as i32 / 2, top, 1)?;
    Ok(())
}
