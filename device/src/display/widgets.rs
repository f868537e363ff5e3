//! Icons drawn from primitives (no bitmaps, so they scale to either panel), a progress bar and
//! an integer-scaling draw target for text larger than the biggest built-in font.

use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{
    Arc, Circle, Line, Polyline, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle, Sector, StrokeAlignment, Triangle,
};

/// Pictograms, each drawn within a `size` x `size` square.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Icon {
    Check,
    Cross,
    Padlock,
    /// A photo with a slash through it: "no pictures of faces".
    NoPhoto,
    Key,
    Sync,
    Face,
    Exclaim,
}

/// A point at `(fx, fy)` times `size` from `center`.
fn at(center: Point, size: u32, fx: f32, fy: f32) -> Point {
    let s = size as f32;
    center + Point::new((fx * s).round() as i32, (fy * s).round() as i32)
}

/// A length of `f` times `size`, at least one pixel.
fn len(size: u32, f: f32) -> u32 {
    ((size as f32 * f).round() as u32).max(1)
}

/// Draws `icon` centred on `center` in `color`; `hole` fills the cut-outs (keyhole, the dot of
/// an exclamation mark), i.e. it should be the colour behind the icon.
pub(crate) fn draw_icon<D: DrawTarget>(
    target: &mut D,
    icon: Icon,
    center: Point,
    size: u32,
    color: D::Color,
    hole: D::Color,
) -> Result<(), D::Error> {
    // Strokes scale with the icon but stay at least 2 px so small header icons remain legible.
    let stroke = PrimitiveStyle::with_stroke(color, len(size, 0.13).max(2));
    let fill = PrimitiveStyle::with_fill(color);
    match icon {
        Icon::Check => {
            let pts = [at(center, size, -0.32, 0.0), at(center, size, -0.1, 0.24), at(center, size, 0.34, -0.24)];
            Polyline::new(&pts).into_styled(stroke).draw(target)
        }
        Icon::Cross => {
            let d = 0.27;
            Line::new(at(center, size, -d, -d), at(center, size, d, d)).into_styled(stroke).draw(target)?;
            Line::new(at(center, size, d, -d), at(center, size, -d, d)).into_styled(stroke).draw(target)
        }
        Icon::Exclaim => {
            let bar = Rectangle::with_corners(at(center, size, -0.06, -0.36), at(center, size, 0.06, 0.12));
            bar.into_styled(fill).draw(target)?;
            Circle::with_center(at(center, size, 0.0, 0.3), len(size, 0.15)).into_styled(fill).draw(target)
        }
        Icon::Padlock => {
            let shackle = PrimitiveStyle::with_stroke(color, len(size, 0.09).max(2));
            let top = at(center, size, 0.0, -0.12);
            Arc::with_center(top, len(size, 0.4), 180.0.deg(), 180.0.deg()).into_styled(shackle).draw(target)?;
            for fx in [-0.2, 0.2] {
                Line::new(at(center, size, fx, -0.12), at(center, size, fx, 0.0)).into_styled(shackle).draw(target)?;
            }
            let body = Rectangle::with_corners(at(center, size, -0.3, -0.02), at(center, size, 0.3, 0.36));
            body.into_styled(fill).draw(target)?;
            if size >= 24 {
                // The keyhole only reads at larger sizes; at header size it is noise.
                Circle::with_center(at(center, size, 0.0, 0.12), len(size, 0.1))
                    .into_styled(PrimitiveStyle::with_fill(hole))
                    .draw(target)?;
                Rectangle::with_corners(at(center, size, -0.02, 0.14), at(center, size, 0.02, 0.26))
                    .into_styled(PrimitiveStyle::with_fill(hole))
                    .draw(target)?;
            }
            Ok(())
        }
        Icon::NoPhoto => {
            let frame = PrimitiveStyle::with_stroke(color, len(size, 0.07).max(1));
            Rectangle::with_corners(at(center, size, -0.28, -0.36), at(center, size, 0.28, 0.36))
                .into_styled(frame)
                .draw(target)?;
            // Head and shoulders of the portrait.
            Circle::with_center(at(center, size, 0.0, -0.1), len(size, 0.24)).into_styled(fill).draw(target)?;
            Sector::with_center(at(center, size, 0.0, 0.3), len(size, 0.44), 180.0.deg(), 180.0.deg())
                .into_styled(fill)
                .draw(target)?;
            // The slash gets a halo in the background colour so it stays separate from the portrait.
            let (a, b) = (at(center, size, -0.42, 0.42), at(center, size, 0.42, -0.42));
            let width = len(size, 0.1).max(2);
            Line::new(a, b).into_styled(PrimitiveStyle::with_stroke(hole, width + 4)).draw(target)?;
            Line::new(a, b).into_styled(PrimitiveStyle::with_stroke(color, width)).draw(target)
        }
        Icon::Key => {
            let thick = PrimitiveStyle::with_stroke(color, len(size, 0.1).max(2));
            Circle::with_center(at(center, size, -0.2, 0.0), len(size, 0.34)).into_styled(thick).draw(target)?;
            Line::new(at(center, size, -0.03, 0.0), at(center, size, 0.38, 0.0)).into_styled(thick).draw(target)?;
            for fx in [0.22, 0.33] {
                Line::new(at(center, size, fx, 0.0), at(center, size, fx, 0.16)).into_styled(thick).draw(target)?;
            }
            Ok(())
        }
        Icon::Sync => {
            let thick = PrimitiveStyle::with_stroke(color, len(size, 0.1).max(2));
            let radius = size as f32 * 0.3;
            // Two arcs chasing each other, each ending in an arrow head (angles clockwise from 3 o'clock).
            for start in [200.0f32, 20.0] {
                let sweep = 125.0f32;
                Arc::with_center(center, len(size, 0.6), start.deg(), sweep.deg()).into_styled(thick).draw(target)?;
                let end = (start + sweep).to_radians();
                let tip = Point::new(
                    center.x + (radius * end.cos()).round() as i32,
                    center.y + (radius * end.sin()).round() as i32,
                );
                // Tangent (clockwise direction) and outward normal at the arc's end.
                let (tx, ty) = (-end.sin(), end.cos());
                let (nx, ny) = (end.cos(), end.sin());
                let head = size as f32 * 0.16;
                let p = |a: f32, b: f32| {
                    Point::new(tip.x + (a * tx + b * nx).round() as i32, tip.y + (a * ty + b * ny).round() as i32)
                };
                Triangle::new(p(head, 0.0), p(-head * 0.4, head), p(-head * 0.4, -head))
                    .into_styled(fill)
                    .draw(target)?;
            }
            Ok(())
        }
        Icon::Face => {
            let thin = PrimitiveStyle::with_stroke(color, len(size, 0.05).max(1));
            Circle::with_center(center, len(size, 0.84)).into_styled(thin).draw(target)?;
            for fx in [-0.15, 0.15] {
                Circle::with_center(at(center, size, fx, -0.1), len(size, 0.1)).into_styled(fill).draw(target)?;
            }
            Arc::with_center(at(center, size, 0.0, 0.0), len(size, 0.44), 35.0.deg(), 110.0.deg())
                .into_styled(thin)
                .draw(target)
        }
    }
}

/// A `received / total` bar: outline in `color`, filled proportionally. `total == 0` shows empty.
pub(crate) fn draw_progress<D: DrawTarget>(
    target: &mut D,
    area: Rectangle,
    received: u32,
    total: u32,
    color: D::Color,
) -> Result<(), D::Error> {
    let border = if area.size.height >= 12 { 2 } else { 1 };
    let outline = PrimitiveStyleBuilder::new()
        .stroke_color(color)
        .stroke_width(border)
        .stroke_alignment(StrokeAlignment::Inside)
        .build();
    area.into_styled(outline).draw(target)?;
    // One pixel of air between the outline and the fill keeps a full bar distinguishable.
    let inner = area.offset(-(border as i32 + 1));
    let filled = fraction_of(inner.size.width, received, total);
    if filled > 0 {
        Rectangle::new(inner.top_left, Size::new(filled, inner.size.height))
            .into_styled(PrimitiveStyle::with_fill(color))
            .draw(target)?;
    }
    Ok(())
}

/// `width * received / total`, clamped to `width`, without overflow.
pub(crate) fn fraction_of(width: u32, received: u32, total: u32) -> u32 {
    if total == 0 {
        return 0;
    }
    let part = u64::from(width) * u64::from(received.min(total)) / u64::from(total);
    // `part <= width` because `received <= total`.
    u32::try_from(part).unwrap_or(width)
}

/// `received` clamped to `total`, and the share in whole percent (0 when `total` is 0).
pub(crate) fn progress(received: u32, total: u32) -> (u32, u64) {
    let shown = received.min(total);
    let pct = if total == 0 { 0 } else { u64::from(shown) * 100 / u64::from(total) };
    (shown, pct)
}

/// Corner brackets marking a camera frame.
pub(crate) fn draw_brackets<D: DrawTarget>(
    target: &mut D,
    area: Rectangle,
    arm: i32,
    color: D::Color,
    width: u32,
) -> Result<(), D::Error> {
    let Some(br) = area.bottom_right() else { return Ok(()) };
    let tl = area.top_left;
    let style = PrimitiveStyle::with_fill(color);
    let w = width as i32;
    for (corner, dx, dy) in [(tl, 1, 1), (Point::new(br.x, tl.y), -1, 1), (Point::new(tl.x, br.y), 1, -1), (br, -1, -1)]
    {
        let h_end = corner + Point::new(dx * (arm - 1), dy * (w - 1));
        let v_end = corner + Point::new(dx * (w - 1), dy * (arm - 1));
        Rectangle::with_corners(corner, h_end).into_styled(style).draw(target)?;
        Rectangle::with_corners(corner, v_end).into_styled(style).draw(target)?;
    }
    Ok(())
}

/// Draws everything `factor` times larger, anchored at `origin`: point `p` covers the
/// `factor` x `factor` block at `origin + p * factor`.
pub(crate) struct Scaled<'a, D> {
    inner: &'a mut D,
    origin: Point,
    factor: u32,
}

impl<'a, D: DrawTarget> Scaled<'a, D> {
    pub(crate) fn new(inner: &'a mut D, origin: Point, factor: u32) -> Self {
        Scaled { inner, origin, factor: factor.max(1) }
    }
}

impl<D: DrawTarget> Dimensions for Scaled<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        let bb = self.inner.bounding_box();
        let f = self.factor as i32;
        let tl = bb.top_left - self.origin;
        Rectangle::new(Point::new(tl.x.div_euclid(f), tl.y.div_euclid(f)), bb.size / self.factor)
    }
}

impl<D: DrawTarget> DrawTarget for Scaled<'_, D> {
    type Color = D::Color;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let f = self.factor as i32;
        let origin = self.origin;
        self.inner.draw_iter(pixels.into_iter().flat_map(move |Pixel(p, c)| {
            (0..f * f).map(move |i| Pixel(origin + Point::new(p.x * f + i % f, p.y * f + i / f), c))
        }))
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let scaled = Rectangle::new(self.origin + area.top_left * self.factor as i32, area.size * self.factor);
        self.inner.fill_solid(&scaled, color)
    }
}

/// Seconds as `M:SS`, or `H:MM:SS` from an hour up.
pub(crate) fn clock(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::pixelcolor::BinaryColor;
    use embedded_graphics_simulator::SimulatorDisplay;

    #[test]
    fn clock_formats() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(59), "0:59");
        assert_eq!(clock(61), "1:01");
        assert_eq!(clock(3600), "1:00:00");
        assert_eq!(clock(u32::MAX), "1193046:28:15");
    }

    #[test]
    fn fraction_is_clamped_and_overflow_free() {
        assert_eq!(fraction_of(100, 0, 0), 0);
        assert_eq!(fraction_of(100, 5, 0), 0);
        assert_eq!(fraction_of(100, 1, 2), 50);
        assert_eq!(fraction_of(100, 9, 4), 100);
        assert_eq!(fraction_of(u32::MAX, u32::MAX - 1, u32::MAX), u32::MAX - 1);
    }

    #[test]
    fn progress_clamps() {
        assert_eq!(progress(12, 40), (12, 30));
        assert_eq!(progress(50, 40), (40, 100));
        assert_eq!(progress(3, 0), (0, 0));
        assert_eq!(progress(u32::MAX, u32::MAX), (u32::MAX, 100));
    }

    #[test]
    fn scaled_target_draws_blocks() {
        let mut d = SimulatorDisplay::<BinaryColor>::new(Size::new(10, 10));
        let mut s = Scaled::new(&mut d, Point::new(2, 3), 3);
        let Ok(()) = Pixel(Point::new(1, 0), BinaryColor::On).draw(&mut s);
        let on: Vec<Point> = d.bounding_box().points().filter(|&p| d.get_pixel(p) == BinaryColor::On).collect();
        let expected: Vec<Point> = Rectangle::new(Point::new(5, 3), Size::new(3, 3)).points().collect();
        assert_eq!(on, expected);
    }

    #[test]
    fn progress_fill_tracks_ratio() {
        let mut d = SimulatorDisplay::<BinaryColor>::new(Size::new(40, 12));
        let Ok(()) = draw_progress(&mut d, Rectangle::new(Point::zero(), Size::new(40, 12)), 1, 2, BinaryColor::On);
        // Inner area is x 3..37 (34 px); half of it is filled.
        let row = 6;
        let filled = (3..37).filter(|&x| d.get_pixel(Point::new(x, row)) == BinaryColor::On).count();
        assert_eq!(filled, 17);
    }
}
