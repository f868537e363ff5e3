//! Wiegand output: a card sent as pulses on two lines, D0 for a 0 bit and D1 for a 1 bit, first
//! bit first. Lines idle high; a pulse pulls one low for `pulse`, and bits are `interval`
//! apart (the usual reader timing: 50 us pulses, 2 ms apart).

use super::gpio::WiegandPins;
use facegate_proto::Card;
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub pulse: Duration,
    pub interval: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { pulse: Duration::from_micros(50), interval: Duration::from_millis(2) }
    }
}

/// One of the two data lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    D0,
    D1,
}

/// The line pulsed for each bit of `card`, in sending order.
pub fn lines(card: &Card) -> impl Iterator<Item = Line> + '_ {
    (0..usize::from(card.bits)).map(move |i| {
        let byte = card.data.get(i / 8).copied().unwrap_or(0);
        if byte & (0x80 >> (i % 8)) != 0 {
            Line::D1
        } else {
            Line::D0
        }
    })
}

/// Sends cards on a pair of GPIO lines from its own thread (a 26-bit card takes ~52 ms).
#[derive(Debug)]
pub struct Output {
    cards: Sender<Card>,
}

impl Output {
    pub fn spawn(pins: WiegandPins, timing: Timing) -> std::io::Result<Output> {
        let (cards, rx) = channel::<Card>();
        std::thread::Builder::new().name("wiegand".into()).spawn(move || {
            for card in rx {
                for line in lines(&card) {
                    if let Err(e) = pins.pulse(line, timing.pulse) {
                        tracing::error!(error = %e, "Wiegand output failed");
                        break;
                    }
                    std::thread::sleep(timing.interval);
                }
            }
        })?;
        Ok(Output { cards })
    }

    pub fn send(&self, card: &Card) {
        if self.cards.send(card.clone()).is_err() {
            tracing::error!("the Wiegand thread has stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_proto::CardFormat;

    #[test]
    fn bits_go_out_first_bit_first_on_d0_for_zero_and_d1_for_one() {
        let card = CardFormat::H10301.encode(1, 1).expect("card");
        let sent: String = lines(&card).map(|l| if l == Line::D1 { '1' } else { '0' }).collect();
        assert_eq!(sent, "10000000100000000000000010");
        let card = CardFormat::H10304.encode(65535, 524_287).expect("card");
        assert_eq!(lines(&card).count(), 37);
        assert_eq!(lines(&card).filter(|l| *l == Line::D1).count(), 16 + 19 + 1);
    }
}
