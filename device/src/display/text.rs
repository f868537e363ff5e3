//! Text preparation for the built-in ASCII mono fonts: transliteration, truncation, wrapping,
//! and drawing helpers that keep every glyph inside a given width.

use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::prelude::*;
use embedded_graphics::text::renderer::TextRenderer;
use embedded_graphics::text::{Baseline, Text};

/// Marks text that was cut to fit. ASCII because the fonts have no U+2026 glyph.
pub(crate) const ELLIPSIS: &str = "...";

/// Reduces `s` to printable ASCII on one line.
///
/// Accented Latin letters lose their accent (`José` -> `Jose`, `ß` -> `ss`), combining marks
/// and zero-width characters vanish, control characters (including newlines, which the text
/// renderer would honour) become spaces, and anything else becomes `?` so that a character
/// the font cannot show is still visibly there. Runs of spaces collapse.
pub(crate) fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else if c.is_whitespace() || c.is_control() {
            out.push(' ');
        } else if let Some(t) = transliterate(c) {
            out.push_str(t);
        } else {
            out.push('?');
        }
    }
    // Collapse whitespace so a name padded with tabs or newlines does not waste width.
    out.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// ASCII stand-in for common non-ASCII characters; `Some("")` drops the character.
fn transliterate(c: char) -> Option<&'static str> {
    let t = match c {
        // Combining diacritics (decomposed accents) and zero-width/format characters.
        '\u{0300}'..='\u{036F}' | '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => "",
        'À'..='Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'à'..='å' | 'ā' | 'ă' | 'ą' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'Ð' | 'Ď' | 'Đ' => "D",
        'ð' | 'ď' | 'đ' => "d",
        'È'..='Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ì'..='Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'Ò'..='Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'Œ' => "OE",
        'œ' => "oe",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' | 'Ș' => "S",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'Ţ' | 'Ť' | 'Ŧ' | 'Ț' => "T",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'Þ' => "Th",
        'þ' => "th",
        'Ù'..='Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ŵ' => "W",
        'ŵ' => "w",
        'Ý' | 'Ÿ' | 'Ŷ' => "Y",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        '‘' | '’' | 'ʼ' | '`' | '´' => "'",
        '“' | '”' | '„' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' => "-",
        '…' => "...",
        '·' => ".",
        '×' => "x",
        _ => return None,
    };
    Some(t)
}

/// How many glyphs of `font` fit in `width` pixels.
pub(crate) fn max_chars(font: &MonoFont<'_>, width: u32) -> usize {
    let advance = font.character_size.width + font.character_spacing;
    if advance == 0 {
        return 0;
    }
    // The last glyph needs no trailing spacing.
    ((width + font.character_spacing) / advance) as usize
}

/// Cuts already-sanitised `s` to at most `max` characters, ending in [`ELLIPSIS`] when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max <= ELLIPSIS.len() {
        return ELLIPSIS.chars().take(max).collect();
    }
    let kept: String = s.chars().take(max - ELLIPSIS.len()).collect();
    format!("{}{ELLIPSIS}", kept.trim_end())
}

/// Sanitises `s` and cuts it to one line of `font` within `width` pixels.
pub(crate) fn fit_line(s: &str, font: &MonoFont<'_>, width: u32) -> String {
    truncate(&sanitize(s), max_chars(font, width))
}

/// Greedy word wrap of sanitised `s` into at most `max_lines` lines of `max` characters.
/// Words longer than a line are split; text beyond the last line is replaced by [`ELLIPSIS`].
pub(crate) fn wrap(s: &str, max: usize, max_lines: usize) -> Vec<String> {
    if max == 0 || max_lines == 0 {
        return Vec::new();
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = line.chars().count();
            let sep = usize::from(used > 0);
            if used + sep + word.len() <= max {
                if sep == 1 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a whole line: hard split.
            let rest = word.split_off(max);
            lines.push(word.iter().collect());
            word = rest;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    if lines.len() > max_lines {
        // Greedy breaking guarantees the overflow does not fit on the last line, so this
        // always ends in an ellipsis.
        let tail = lines.split_off(max_lines - 1).join(" ");
        lines.push(truncate(&tail, max));
    }
    lines
}

/// Sanitises and wraps `s` for `font` within `width` pixels.
pub(crate) fn fit_lines(s: &str, font: &MonoFont<'_>, width: u32, max_lines: usize) -> Vec<String> {
    wrap(&sanitize(s), max_chars(font, width), max_lines)
}

/// The first of `fonts` that shows all of sanitised `s` on one line within `width`; failing
/// that, the last font with `s` truncated. `None` only when `fonts` is empty.
pub(crate) fn fit_best<'f>(s: &str, fonts: &[&'f MonoFont<'f>], width: u32) -> Option<(&'f MonoFont<'f>, String)> {
    let clean = sanitize(s);
    let n = clean.chars().count();
    if let Some(font) = fonts.iter().find(|f| n <= max_chars(f, width)) {
        return Some((font, clean));
    }
    let last = fonts.last()?;
    Some((last, truncate(&clean, max_chars(last, width))))
}

/// A single line of text with its top edge at `top`, horizontally centred on `center_x`:
/// the text spans `center_x - width / 2` to `center_x + (width + 1) / 2 - 1`, so a line as
/// wide as the panel centred on `panel_width / 2` touches both edges and crosses neither.
/// (The library's own centre alignment puts even-width text one pixel further right.)
pub(crate) fn centered<'a, C: PixelColor>(
    text: &'a str,
    font: &'a MonoFont<'a>,
    color: C,
    center_x: i32,
    top: i32,
) -> Text<'a, MonoTextStyle<'a, C>> {
    let style = MonoTextStyle::new(font, color);
    let width = style.measure_string(text, Point::zero(), Baseline::Top).bounding_box.size.width;
    let x = center_x - (width / 2) as i32;
    Text::with_baseline(text, Point::new(x, top), style, Baseline::Top)
}

/// A single line of text with its top-left corner at `top_left`.
pub(crate) fn left<'a, C: PixelColor>(
    text: &'a str,
    font: &'a MonoFont<'a>,
    color: C,
    top_left: Point,
) -> Text<'a, MonoTextStyle<'a, C>> {
    Text::with_baseline(text, top_left, MonoTextStyle::new(font, color), Baseline::Top)
}

/// Draws `lines` centred on `center_x`, the first with its top at `top`; returns the y below
/// the last line.
pub(crate) fn draw_centered_lines<D, S>(
    target: &mut D,
    lines: &[S],
    font: &MonoFont<'_>,
    color: D::Color,
    center_x: i32,
    top: i32,
    line_gap: i32,
) -> Result<i32, D::Error>
where
    D: DrawTarget,
    S: AsRef<str>,
{
    let height = font.character_size.height as i32 + line_gap;
    let mut y = top;
    for line in lines {
        centered(line.as_ref(), font, color, center_x, y).draw(target)?;
        y += height;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10};
    use embedded_graphics::pixelcolor::BinaryColor;
    use embedded_graphics::primitives::Rectangle;

    #[test]
    fn sanitize_strips_accents_and_marks_the_unknown() {
        assert_eq!(sanitize("José Müller-Łukasiewicz"), "Jose Muller-Lukasiewicz");
        assert_eq!(sanitize("Straße Œuvre"), "Strasse OEuvre");
        // Decomposed accent: e + combining acute.
        assert_eq!(sanitize("Rene\u{301}e"), "Renee");
        // Characters without an ASCII form stay visible as '?', never silently dropped.
        assert_eq!(sanitize("王伟"), "??");
        assert_eq!(sanitize("Zoë 🙂"), "Zoe ?");
    }

    #[test]
    fn sanitize_keeps_text_on_one_line() {
        assert_eq!(sanitize("  Ann\n\tLee\r\n "), "Ann Lee");
        assert_eq!(sanitize("a\u{0}b"), "a b");
        assert_eq!(sanitize(""), "");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("Alice", 5), "Alice");
        assert_eq!(truncate("Alice Smith", 8), "Alice...");
        // No space before the ellipsis.
        assert_eq!(truncate("Alice Smith", 9), "Alice...");
        assert_eq!(truncate("Alice", 2), "..");
        assert_eq!(truncate("Alice", 0), "");
    }

    #[test]
    fn max_chars_matches_font_advance() {
        assert_eq!(max_chars(&FONT_10X20, 240), 24);
        assert_eq!(max_chars(&FONT_10X20, 239), 23);
        assert_eq!(max_chars(&FONT_6X10, 128), 21);
    }

    #[test]
    fn wrap_breaks_on_words_and_ellipsises_overflow() {
        assert_eq!(wrap("One person at a time", 10, 3), ["One person", "at a time"]);
        assert_eq!(wrap("Move closer", 20, 2), ["Move closer"]);
        assert_eq!(wrap("abcdefghijkl", 5, 3), ["abcde", "fghij", "kl"]);
        assert_eq!(wrap("aaa bbb ccc ddd", 7, 2), ["aaa bbb", "ccc ddd"]);
        assert_eq!(wrap("aaa bbb ccc ddd eee", 7, 2), ["aaa bbb", "ccc..."]);
        assert!(wrap("", 5, 2).is_empty());
        assert!(wrap("abc", 0, 2).is_empty());
        for lines in [wrap("word ".repeat(50).as_str(), 9, 3), wrap(&"x".repeat(100), 9, 3)] {
            assert_eq!(lines.len(), 3);
            assert!(lines.iter().all(|l| l.chars().count() <= 9), "{lines:?}");
            assert!(lines[2].ends_with(ELLIPSIS));
        }
    }

    #[test]
    fn fitted_line_bounding_box_stays_inside_the_width() {
        let long = "Maximiliane Alexandra von und zu Hohenzollern-Sigmaringen ".repeat(3);
        for (font, width) in [(&FONT_10X20, 220u32), (&FONT_10X20, 240), (&FONT_6X10, 128), (&FONT_6X10, 7)] {
            let line = fit_line(&long, font, width);
            assert!(line.ends_with(ELLIPSIS) || width < 18);
            let center = width as i32 / 2;
            let bb = centered(&line, font, BinaryColor::On, center, 0).bounding_box();
            let area = Rectangle::new(Point::zero(), Size::new(width, font.character_size.height));
            assert!(
                area.contains(bb.top_left)
                    && (bb.size.width == 0 || area.contains(bb.bottom_right().unwrap_or_default())),
                "{line:?} {bb:?} not within {area:?}"
            );
        }
    }
}
