//! GPIO lines through the Linux GPIO character device (`gpiocdev`, behind the `gpio` build
//! feature): the door relay and the Wiegand data lines. Without the feature the line specs
//! still parse, and opening a line says which feature is missing.

use super::wiegand::Line;
use super::DoorError;
use std::path::PathBuf;
use std::time::Duration;

/// `gpiochip0:17` or `/dev/gpiochip0:5,6`: a chip and line offsets on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSpec {
    pub chip: PathBuf,
    pub offsets: Vec<u32>,
}

impl LineSpec {
    /// Parses a spec that must name exactly `count` lines.
    pub fn parse(spec: &str, count: usize, what: &str) -> Result<LineSpec, DoorError> {
        let bad = |why: &str| DoorError::Invalid(format!("{what} {spec:?}: {why} (e.g. gpiochip0:17)"));
        let (chip, lines) = spec.rsplit_once(':').ok_or_else(|| bad("expected CHIP:LINE"))?;
        let chip = chip.trim();
        if chip.is_empty() {
            return Err(bad("no chip"));
        }
        let chip = if chip.starts_with('/') { PathBuf::from(chip) } else { PathBuf::from("/dev").join(chip) };
        let offsets = lines
            .split(',')
            .map(|l| l.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("bad line number"))?;
        if offsets.len() != count {
            return Err(bad(&format!("expected {count} line(s)")));
        }
        Ok(LineSpec { chip, offsets })
    }
}

#[cfg(feature = "gpio")]
mod imp {
    use super::*;
    use gpiocdev::line::Value;
    use gpiocdev::Request;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn request(spec: &LineSpec, active_low: bool, what: &str) -> Result<Request, DoorError> {
        let mut b = Request::builder();
        b.on_chip(&spec.chip).with_consumer("facegate").with_lines(&spec.offsets).as_output(Value::Inactive);
        if active_low {
            b.as_active_low();
        }
        b.request().map_err(|e| DoorError::Io {
            what: format!("{what} {}", spec.chip.display()),
            error: std::io::Error::other(e),
        })
    }

    /// The door relay: active for `hold` after each grant.
    #[derive(Debug, Clone)]
    pub struct Relay {
        req: Arc<Request>,
        offset: u32,
        hold: Duration,
        /// Grants so far: a pulse releases the relay only if no later grant extended it.
        pulses: Arc<AtomicU64>,
    }

    impl Relay {
        pub fn open(spec: &LineSpec, hold: Duration) -> Result<Relay, DoorError> {
            let req = request(spec, false, "relay")?;
            Ok(Relay { req: Arc::new(req), offset: spec.offsets[0], hold, pulses: Arc::new(AtomicU64::new(0)) })
        }

        pub fn pulse(&self) {
            let n = self.pulses.fetch_add(1, Ordering::SeqCst) + 1;
            if let Err(e) = self.req.set_value(self.offset, Value::Active) {
                tracing::error!(error = %e, "relay did not switch");
                return;
            }
            let me = self.clone();
            std::thread::spawn(move || {
                std::thread::sleep(me.hold);
                if me.pulses.load(Ordering::SeqCst) == n {
                    if let Err(e) = me.req.set_value(me.offset, Value::Inactive) {
                        tracing::error!(error = %e, "relay did not release");
                    }
                }
            });
        }
    }

    /// D0 and D1, active low (idle high, a pulse pulls the line down).
    #[derive(Debug)]
    pub struct WiegandPins {
        req: Request,
        d0: u32,
        d1: u32,
    }

    impl WiegandPins {
        pub fn open(spec: &LineSpec) -> Result<WiegandPins, DoorError> {
            Ok(WiegandPins { req: request(spec, true, "wiegand")?, d0: spec.offsets[0], d1: spec.offsets[1] })
        }

        pub fn pulse(&self, line: Line, width: Duration) -> std::io::Result<()> {
            let offset = if line == Line::D0 { self.d0 } else { self.d1 };
            self.req.set_value(offset, Value::Active).map_err(std::io::Error::other)?;
            std::thread::sleep(width);
            self.req.set_value(offset, Value::Inactive).map_err(std::io::Error::other)
        }
    }
}

#[cfg(not(feature = "gpio"))]
mod imp {
    use super::*;

    #[derive(Debug, Clone)]
    pub struct Relay;

    impl Relay {
        pub fn open(_spec: &LineSpec, _hold: Duration) -> Result<Relay, DoorError> {
            Err(DoorError::NoGpio("--relay"))
        }

        pub fn pulse(&self) {}
    }

    #[derive(Debug)]
    pub struct WiegandPins;

    impl WiegandPins {
        pub fn open(_spec: &LineSpec) -> Result<WiegandPins, DoorError> {
            Err(DoorError::NoGpio("--wiegand"))
        }

        pub fn pulse(&self, _line: Line, _width: Duration) -> std::io::Result<()> {
            Ok(())
        }
    }
}

pub use imp::{Relay, WiegandPins};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_specs_parse_with_a_clear_error() {
        let s = LineSpec::parse("gpiochip0:17", 1, "relay").expect("spec");
        assert_eq!(s, LineSpec { chip: "/dev/gpiochip0".into(), offsets: vec![17] });
        let s = LineSpec::parse("/dev/gpiochip2:5,6", 2, "wiegand").expect("spec");
        assert_eq!(s, LineSpec { chip: "/dev/gpiochip2".into(), offsets: vec![5, 6] });
        for bad in ["gpiochip0", ":17", "gpiochip0:x", "gpiochip0:1,2"] {
            let e = LineSpec::parse(bad, 1, "relay").expect_err(bad).to_string();
            assert!(e.contains("relay") && e.contains("gpiochip0:17"), "{e}");
        }
    }

    #[cfg(not(feature = "gpio"))]
    #[test]
    fn without_the_feature_opening_says_which_feature() {
        let spec = LineSpec::parse("gpiochip0:17", 1, "relay").expect("spec");
        let e = Relay::open(&spec, Duration::from_secs(1)).expect_err("no gpio").to_string();
        assert!(e.contains("--features gpio"), "{e}");
    }
}
