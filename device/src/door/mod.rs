//! The door the kiosk stands at: what a grant is reported as (an OSDP card read to an
//! access-control panel, Wiegand pulses, a relay), who opens the lock (the device or the
//! panel), and what the panel says back (LED, buzzer, text).

pub mod gpio;
pub mod osdp;
pub mod wiegand;

use facegate_proto::{Card, CardFormat, PersonId};
use serde::Deserialize;
use std::fmt;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

/// Who opens the lock on a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Authority {
    /// The device's own grant drives `action` and the relay; the panel is told.
    #[default]
    Device,
    /// The device only reports the card; the panel decides and drives the lock, and the display
    /// waits for its LED answer.
    Panel,
}

/// What a recognised person without a card is reported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Uncarded {
    /// Nothing: the panel never hears of them.
    #[default]
    None,
    /// An H10301 card: the configured facility code and the person id as the card number.
    PersonId,
}

/// The `[door]` table of the device configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DoorConfig {
    pub authority: Option<Authority>,
    /// How long the display waits for the panel's answer (panel authority).
    pub panel_timeout_ms: Option<u64>,
    pub uncarded: Option<Uncarded>,
    pub uncarded_facility: Option<u32>,
    /// OSDP: serial device, address 0-126, baud rate, secure channel base key (32 hex digits).
    pub osdp: Option<String>,
    pub osdp_address: Option<u8>,
    pub osdp_baud: Option<u32>,
    pub osdp_scbk: Option<String>,
    /// Relay line (`gpiochip0:17`) and how long it holds the door open.
    pub relay: Option<String>,
    pub relay_ms: Option<u64>,
    /// Wiegand output lines D0,D1 (`gpiochip0:5,6`) and the pulse timing.
    pub wiegand: Option<String>,
    pub wiegand_pulse_us: Option<u64>,
    pub wiegand_interval_us: Option<u64>,
}

pub const DEFAULT_OSDP_ADDRESS: u8 = 0;
pub const DEFAULT_OSDP_BAUD: u32 = 9600;
pub const DEFAULT_PANEL_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_RELAY: Duration = Duration::from_secs(3);
/// How long a panel's answer stays on screen when its LED command gives no time.
const DEFAULT_HOLD: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    #[error("door config: {0}")]
    Invalid(String),
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    #[error("{0} needs the `gpio` build feature (cargo build --features gpio)")]
    NoGpio(&'static str),
}

/// The secure channel base key from 32 hex digits.
pub fn parse_scbk(hex_key: &str) -> Result<[u8; 16], DoorError> {
    let bytes = hex::decode(hex_key.trim()).map_err(|e| DoorError::Invalid(format!("osdp_scbk is not hex: {e}")))?;
    bytes.try_into().map_err(|_| DoorError::Invalid("osdp_scbk must be 16 bytes (32 hex digits)".into()))
}

/// The colour of a panel's LED command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedColour {
    Off,
    Red,
    Green,
    Amber,
    Blue,
    Other,
}

impl LedColour {
    fn from_osdp(c: libosdp::OsdpLedColor) -> LedColour {
        match c {
            libosdp::OsdpLedColor::None => LedColour::Off,
            libosdp::OsdpLedColor::Red => LedColour::Red,
            libosdp::OsdpLedColor::Green => LedColour::Green,
            libosdp::OsdpLedColor::Amber => LedColour::Amber,
            libosdp::OsdpLedColor::Blue => LedColour::Blue,
            _ => LedColour::Other,
        }
    }
}

/// A command from the panel, as the kiosk uses it.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelCommand {
    /// `temporary`: an answer lasting `ms`; otherwise the reader's idle colour.
    Led {
        colour: LedColour,
        temporary: bool,
        ms: u32,
    },
    Buzzer {
        on_ms: u32,
        repeat: u8,
        tone: u8,
    },
    Text(String),
    /// The panel set a new secure channel key (kept in the store).
    KeySet,
    Output {
        number: u8,
        control: u8,
    },
}

/// For the audit log: "led green 3.0 s", "buzzer 200 ms x2", "text \"Welcome\"".
impl fmt::Display for PanelCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PanelCommand::Led { colour, temporary: true, ms } => {
                write!(f, "led {} {:.1} s", format!("{colour:?}").to_lowercase(), *ms as f32 / 1000.0)
            }
            PanelCommand::Led { colour, temporary: false, .. } => {
                write!(f, "led {} (idle)", format!("{colour:?}").to_lowercase())
            }
            PanelCommand::Buzzer { on_ms, repeat, tone } => write!(f, "buzzer {on_ms} ms x{repeat} tone {tone}"),
            PanelCommand::Text(t) => write!(f, "text {t:?}"),
            PanelCommand::KeySet => f.write_str("new secure channel key"),
            PanelCommand::Output { number, control } => write!(f, "output {number} control {control}"),
        }
    }
}

/// What the display should do with a panel event.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelAnswer {
    Open { hold: Duration },
    Refused { hold: Duration },
    Text { text: String, hold: Duration },
}

impl PanelAnswer {
    /// The answer a command gives, if it is one the person at the door should see: a temporary
    /// green (open) or red (refused) LED, or text.
    pub fn of(command: &PanelCommand) -> Option<PanelAnswer> {
        let hold = |ms: u32| if ms == 0 { DEFAULT_HOLD } else { Duration::from_millis(u64::from(ms)) };
        match command {
            PanelCommand::Led { colour: LedColour::Green, temporary: true, ms } => {
                Some(PanelAnswer::Open { hold: hold(*ms) })
            }
            PanelCommand::Led { colour: LedColour::Red, temporary: true, ms } => {
                Some(PanelAnswer::Refused { hold: hold(*ms) })
            }
            PanelCommand::Text(text) => Some(PanelAnswer::Text { text: text.clone(), hold: DEFAULT_HOLD }),
            _ => None,
        }
    }
}

/// A grant waiting for the panel's answer (panel authority).
#[derive(Debug, Clone)]
pub struct Waiting {
    pub name: Option<String>,
    pub until: Instant,
}

/// The kiosk's door: outputs for a grant and the panel's answers.
pub struct Door {
    pub authority: Authority,
    pub panel_timeout: Duration,
    uncarded: Uncarded,
    uncarded_facility: u32,
    panel: Option<Sender<Card>>,
    events: Option<Receiver<PanelCommand>>,
    wiegand: Option<wiegand::Output>,
    relay: Option<gpio::Relay>,
    /// A grant the panel has not answered yet.
    pub waiting: Option<Waiting>,
    /// The last grant's name and time, for the panel's answer to name the person.
    recent: Option<(Option<String>, Instant)>,
}

impl fmt::Debug for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Door")
            .field("authority", &self.authority)
            .field("panel", &self.panel.is_some())
            .field("wiegand", &self.wiegand.is_some())
            .field("relay", &self.relay.is_some())
            .finish()
    }
}

impl Door {
    /// A door with no outputs yet (the kiosk still runs `action`).
    pub fn new(config: &DoorConfig) -> Result<Door, DoorError> {
        let uncarded_facility = config.uncarded_facility.unwrap_or(0);
        if uncarded_facility > CardFormat::H10301.max_facility() {
            return Err(DoorError::Invalid(format!("uncarded_facility {uncarded_facility} is above 255")));
        }
        Ok(Door {
            authority: config.authority.unwrap_or_default(),
            panel_timeout: config.panel_timeout_ms.map_or(DEFAULT_PANEL_TIMEOUT, Duration::from_millis),
            uncarded: config.uncarded.unwrap_or_default(),
            uncarded_facility,
            panel: None,
            events: None,
            wiegand: None,
            relay: None,
            waiting: None,
            recent: None,
        })
    }

    pub fn with_panel(mut self, cards: Sender<Card>, events: Receiver<PanelCommand>) -> Door {
        self.panel = Some(cards);
        self.events = Some(events);
        self
    }

    pub fn with_wiegand(mut self, output: wiegand::Output) -> Door {
        self.wiegand = Some(output);
        self
    }

    pub fn with_relay(mut self, relay: gpio::Relay) -> Door {
        self.relay = Some(relay);
        self
    }

    /// The door `config` describes, its outputs opened (the OSDP line on its own thread);
    /// `None` when it names none.
    pub fn open(config: &DoorConfig, core: &std::sync::Arc<crate::state::Core>) -> Result<Option<Door>, DoorError> {
        let authority = config.authority.unwrap_or_default();
        if authority == Authority::Panel && config.osdp.is_none() {
            return Err(DoorError::Invalid("authority = \"panel\" needs a panel: give osdp (--osdp PATH)".into()));
        }
        if config.osdp.is_none() && config.relay.is_none() && config.wiegand.is_none() {
            return Ok(None);
        }
        let mut door = Door::new(config)?;
        if let Some(path) = &config.osdp {
            let address = config.osdp_address.unwrap_or(DEFAULT_OSDP_ADDRESS);
            if address > 126 {
                return Err(DoorError::Invalid(format!("osdp_address {address} is out of range (0-126)")));
            }
            let scbk = config.osdp_scbk.as_deref().map(parse_scbk).transpose()?;
            let osdp = osdp::OsdpConfig {
                path: path.clone(),
                address,
                baud: config.osdp_baud.unwrap_or(DEFAULT_OSDP_BAUD),
                scbk,
            };
            // Small: answers are few, and a stalled kiosk must not make the line thread wait.
            let (events_tx, events_rx) = std::sync::mpsc::sync_channel(32);
            let cards = osdp::spawn(osdp, core.clone(), events_tx)
                .map_err(|error| DoorError::Io { what: "starting the OSDP thread".into(), error })?;
            door = door.with_panel(cards, events_rx);
        }
        if let Some(spec) = &config.wiegand {
            let pins = gpio::WiegandPins::open(&gpio::LineSpec::parse(spec, 2, "wiegand")?)?;
            let defaults = wiegand::Timing::default();
            let timing = wiegand::Timing {
                pulse: config.wiegand_pulse_us.map_or(defaults.pulse, Duration::from_micros),
                interval: config.wiegand_interval_us.map_or(defaults.interval, Duration::from_micros),
            };
            let output = wiegand::Output::spawn(pins, timing)
                .map_err(|error| DoorError::Io { what: "starting the Wiegand thread".into(), error })?;
            door = door.with_wiegand(output);
        }
        if let Some(spec) = &config.relay {
            let hold = config.relay_ms.map_or(DEFAULT_RELAY, Duration::from_millis);
            door = door.with_relay(gpio::Relay::open(&gpio::LineSpec::parse(spec, 1, "relay")?, hold)?);
        }
        Ok(Some(door))
    }

    /// The card a grant of `person` is reported as: theirs, else as configured for people
    /// without one.
    pub fn credential(&self, person: PersonId, own: Option<Card>) -> Option<Card> {
        own.or_else(|| match self.uncarded {
            Uncarded::None => None,
            Uncarded::PersonId => CardFormat::H10301.encode(self.uncarded_facility, person).ok(),
        })
    }

    /// Reports a grant: the card to the panel and the Wiegand lines, and the relay when the
    /// device has the authority. Nothing here blocks the camera loop.
    pub fn granted(&mut self, card: Option<&Card>, name: Option<String>) {
        self.recent = Some((name.clone(), Instant::now()));
        if let Some(card) = card {
            // Wall-clock, so a panel's log can be lined up with the device's.
            let unix_ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
            tracing::info!(%card, unix_ms, "grant reported as a card read");
            if let Some(panel) = &self.panel {
                if panel.send(card.clone()).is_err() {
                    tracing::error!("the OSDP thread has stopped; the panel was not told");
                }
            }
            if let Some(w) = &self.wiegand {
                w.send(card);
            }
        }
        match self.authority {
            Authority::Device => {
                if let Some(relay) = &self.relay {
                    relay.pulse();
                }
            }
            Authority::Panel if card.is_some() && self.panel.is_some() => {
                self.waiting = Some(Waiting { name, until: Instant::now() + self.panel_timeout });
            }
            Authority::Panel => {}
        }
    }

    /// What the panel said since the last call.
    pub fn poll(&mut self) -> Vec<PanelCommand> {
        self.events.as_ref().map(|r| r.try_iter().collect()).unwrap_or_default()
    }

    /// The panel answered: no longer waiting; the name of the grant it answers, if recent.
    pub fn answered(&mut self) -> Option<String> {
        self.waiting = None;
        self.recent.take().filter(|(_, at)| at.elapsed() <= self.panel_timeout.max(DEFAULT_HOLD)).and_then(|(n, _)| n)
    }

    /// The grant the panel left unanswered past its timeout, taken (once).
    pub fn unanswered(&mut self) -> Option<Waiting> {
        self.waiting.take_if(|w| Instant::now() >= w.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_without_a_card_are_reported_as_configured() {
        let none = Door::new(&DoorConfig::default()).expect("door");
        assert_eq!(none.credential(7, None), None);
        let own = CardFormat::H10301.encode(12, 3456).expect("card");
        assert_eq!(none.credential(7, Some(own.clone())), Some(own));
        let config =
            DoorConfig { uncarded: Some(Uncarded::PersonId), uncarded_facility: Some(9), ..Default::default() };
        let by_id = Door::new(&config).expect("door");
        assert_eq!(by_id.credential(7, None).and_then(|c| c.decode()), Some((CardFormat::H10301, 9, 7)));
        // An id that does not fit 16 bits is not reported rather than reported wrong.
        assert_eq!(by_id.credential(70_000, None), None);
        let bad = DoorConfig { uncarded_facility: Some(256), ..Default::default() };
        assert!(Door::new(&bad).is_err());
    }

    #[test]
    fn panel_answers_are_temporary_green_or_red_leds_and_text() {
        let led = |colour, temporary, ms| PanelCommand::Led { colour, temporary, ms };
        assert_eq!(
            PanelAnswer::of(&led(LedColour::Green, true, 2000)),
            Some(PanelAnswer::Open { hold: Duration::from_secs(2) })
        );
        assert_eq!(PanelAnswer::of(&led(LedColour::Red, true, 0)), Some(PanelAnswer::Refused { hold: DEFAULT_HOLD }));
        // The idle colour is not an answer, nor is amber.
        assert_eq!(PanelAnswer::of(&led(LedColour::Red, false, 0)), None);
        assert_eq!(PanelAnswer::of(&led(LedColour::Amber, true, 500)), None);
        assert!(matches!(PanelAnswer::of(&PanelCommand::Text("Hi".into())), Some(PanelAnswer::Text { .. })));
        assert_eq!(led(LedColour::Green, true, 2500).to_string(), "led green 2.5 s");
        assert_eq!(led(LedColour::Red, false, 0).to_string(), "led red (idle)");
    }

    #[test]
    fn panel_authority_waits_only_when_the_panel_is_told() {
        let config = DoorConfig { authority: Some(Authority::Panel), ..Default::default() };
        let card = CardFormat::H10301.encode(1, 1).expect("card");
        let mut door = Door::new(&config).expect("door");
        door.granted(Some(&card), Some("Ada".into()));
        assert!(door.waiting.is_none(), "no panel attached: nothing to wait for");
        let (tx, rx) = std::sync::mpsc::channel();
        let (_events_tx, events_rx) = std::sync::mpsc::channel();
        let mut door = Door::new(&config).expect("door").with_panel(tx, events_rx);
        door.granted(Some(&card), Some("Ada".into()));
        assert_eq!(rx.try_recv().ok(), Some(card));
        assert_eq!(door.waiting.as_ref().and_then(|w| w.name.as_deref()), Some("Ada"));
        assert_eq!(parse_scbk("000102030405060708090a0b0c0d0e0f").ok(), Some(core::array::from_fn(|i| i as u8)));
        assert!(parse_scbk("0001").is_err() && parse_scbk("zz").is_err());
    }
}
