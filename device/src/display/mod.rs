//! Kiosk display: what the door shows, for a 240x240 colour panel and a 128x64 monochrome one.
//!
//! [`draw_colour`] and [`draw_mono`] are generic over `embedded_graphics::DrawTarget`, so the
//! same code drives a real ST7789 / SSD1306 or the headless simulator behind [`render`] and
//! [`PngDisplay`]. The panels' fonts are ASCII only: names are transliterated (`José` ->
//! `Jose`), other characters show as `?`, and text too long for the panel ends in `...`.

mod colour;
mod mono;
mod png;
mod text;
mod widgets;

pub use colour::draw_colour;
pub use mono::draw_mono;
pub use png::{DisplayError, PngDisplay};

use embedded_graphics::pixelcolor::{BinaryColor, Rgb565};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_graphics_simulator::{OutputSettingsBuilder, SimulatorDisplay};

/// What the [`Screen::NewHost`] screen says.
pub(crate) const NEW_HOST: &str = "A new host was paired. The previous host's key no longer works.";

/// What the kiosk is showing.
#[derive(Clone, Debug, PartialEq)]
pub enum Screen {
    /// Waiting for someone: "Look at the camera", the device name, how many are enrolled.
    Idle {
        title: String,
        enrolled: u32,
    },
    /// A face is being tracked: its box in camera-normalised coordinates, and what the person
    /// should do ("Move closer", "Too dark", "Hold still", "One person at a time").
    Looking {
        face: Option<NormRect>,
        guidance: Option<String>,
    },
    Granted {
        name: String,
        score: f32,
    },
    /// Verify mode: the face is not the owner's.
    Denied {
        name: Option<String>,
    },
    /// Identify mode: the face is not enrolled.
    Unknown,
    LockedOut {
        remaining_secs: u32,
    },
    SpoofSuspected,
    /// The pairing window is open.
    Pairing {
        seconds_left: u32,
    },
    Syncing {
        received: u32,
        total: u32,
    },
    /// Another host paired with the device: the previous host's key no longer works.
    NewHost,
    Error {
        message: String,
    },
    /// Granted here; the access-control panel drives the lock and has not answered yet.
    AskingPanel {
        name: String,
    },
    /// The access-control panel opened the door (its green LED).
    DoorOpen {
        name: Option<String>,
    },
    /// The access-control panel refused (its red LED).
    PanelRefused,
    /// Text the access-control panel sent for the reader's display.
    PanelText {
        text: String,
    },
    /// Recognised, but the access rules do not let them in now (time window or dates).
    NotAllowedNow {
        name: String,
    },
}

impl Screen {
    /// Short kebab-case name of the variant, used in file names and logs.
    pub fn slug(&self) -> &'static str {
        match self {
            Screen::Idle { .. } => "idle",
            Screen::Looking { .. } => "looking",
            Screen::Granted { .. } => "granted",
            Screen::Denied { .. } => "denied",
            Screen::Unknown => "unknown",
            Screen::LockedOut { .. } => "locked-out",
            Screen::SpoofSuspected => "spoof-suspected",
            Screen::Pairing { .. } => "pairing",
            Screen::Syncing { .. } => "syncing",
            Screen::NewHost => "new-host",
            Screen::Error { .. } => "error",
            Screen::AskingPanel { .. } => "asking-panel",
            Screen::DoorOpen { .. } => "door-open",
            Screen::PanelRefused => "panel-refused",
            Screen::PanelText { .. } => "panel-text",
            Screen::NotAllowedNow { .. } => "not-allowed-now",
        }
    }
}

/// A rectangle in camera-normalised coordinates: (0,0) is the frame's top-left corner and
/// (1,1) its bottom-right, whatever the camera resolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormRect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl NormRect {
    /// The rectangle mapped onto `area` (the camera preview), clamped to it. `None` when it
    /// is not finite or covers less than a pixel, e.g. a box entirely outside the frame.
    pub fn to_pixels(&self, area: Rectangle) -> Option<Rectangle> {
        let edges = [self.x, self.y, self.x + self.w, self.y + self.h];
        if edges.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let map = |v: f32, origin: i32, extent: u32| origin + (v.clamp(0.0, 1.0) * extent as f32).round() as i32;
        let (w, h) = (area.size.width, area.size.height);
        let (x0, x1) = (map(edges[0], area.top_left.x, w), map(edges[2], area.top_left.x, w));
        let (y0, y1) = (map(edges[1], area.top_left.y, h), map(edges[3], area.top_left.y, h));
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        Some(Rectangle::with_corners(Point::new(x0, y0), Point::new(x1 - 1, y1 - 1)))
    }
}

/// The device name for the idle header, or the product name when none is configured.
fn title_or_default(title: &str) -> &str {
    if text::sanitize(title).is_empty() {
        "Facegate"
    } else {
        title
    }
}

/// The two supported panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Panel {
    /// 240x240 RGB565 (ST7789 class).
    Colour240,
    /// 128x64 monochrome (SSD1306 class).
    Mono128x64,
}

impl Panel {
    pub const ALL: [Panel; 2] = [Panel::Colour240, Panel::Mono128x64];

    /// Resolution in pixels.
    pub fn size(self) -> Size {
        match self {
            Panel::Colour240 => Size::new(colour::SIZE, colour::SIZE),
            Panel::Mono128x64 => Size::new(mono::WIDTH, mono::HEIGHT),
        }
    }

    /// Name used in file names: `colour` or `mono`.
    pub fn slug(self) -> &'static str {
        match self {
            Panel::Colour240 => "colour",
            Panel::Mono128x64 => "mono",
        }
    }
}

/// Renders `screen` headlessly as `panel` would show it (mono as pure black and white), one
/// image pixel per panel pixel.
pub fn render(screen: &Screen, panel: Panel) -> image::RgbImage {
    let settings = OutputSettingsBuilder::new().pixel_spacing(0).scale(1).build();
    let output = match panel {
        Panel::Colour240 => {
            let mut display = SimulatorDisplay::<Rgb565>::new(panel.size());
            // The simulator's draw error is `Infallible`.
            let Ok(()) = draw_colour(screen, &mut display);
            display.to_rgb_output_image(&settings)
        }
        Panel::Mono128x64 => {
            let mut display = SimulatorDisplay::<BinaryColor>::new(panel.size());
            let Ok(()) = draw_mono(screen, &mut display);
            display.to_rgb_output_image(&settings)
        }
    };
    let buffer = output.as_image_buffer();
    image::RgbImage::from_fn(buffer.width(), buffer.height(), |x, y| *buffer.get_pixel(x, y))
}

#[cfg(test)]
mod tests;
