//! Card credentials: the bits a door reader reports to an access-control panel for a person
//! (OSDP card read, Wiegand). A face reader that plugs into an existing panel reports the
//! matched person's card, so the panel's rules and logs keep working.
//!
//! Bits are stored as the reader sends them: first bit in the most significant bit of
//! `data[0]`. The HID formats here put an even parity bit first and an odd parity bit last:
//!
//! | format | bits | facility | number | even parity over | odd parity over |
//! |--------|------|----------|--------|------------------|-----------------|
//! | H10301 | 26   | 8 bits   | 16     | bits 2-13        | bits 14-25      |
//! | H10306 | 34   | 16       | 16     | bits 2-17        | bits 18-33      |
//! | H10304 | 37   | 16       | 19     | bits 2-19        | bits 19-36      |
//!
//! (bit 1 is the first sent; H10304's two parity ranges share bit 19.)

use core::fmt;
use serde::{Deserialize, Serialize};

use crate::template::PersonId;

/// Longest credential carried, in bytes (128 bits covers every common access-control format).
pub const CARD_BYTES: usize = 16;
/// Credentials per [`Request::SetCards`](crate::Request::SetCards) message.
pub const CARDS_PER_MESSAGE: usize = 128;

/// A credential as raw bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Card {
    /// Number of valid bits in `data` (1..=128).
    pub bits: u8,
    /// The bits, first one in the most significant bit of `data[0]`; unused low bits are 0.
    pub data: heapless::Vec<u8, CARD_BYTES>,
}

/// One person's credential, as the host sends it to a door.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardEntry {
    pub person_id: PersonId,
    pub card: Card,
}

/// The facility-code / card-number formats this crate encodes and decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardFormat {
    /// HID standard 26-bit: facility 0-255, card 0-65535.
    H10301,
    /// HID 34-bit: facility 0-65535, card 0-65535.
    H10306,
    /// HID 37-bit with facility: facility 0-65535, card 0-524287.
    H10304,
}

/// Why a credential could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardError {
    FacilityOutOfRange {
        max: u32,
    },
    NumberOutOfRange {
        max: u32,
    },
    /// Bit count outside 1..=128.
    BitCount,
    /// The value has more bits than declared.
    ValueTooWide,
    /// Not `FACILITY:NUMBER` or `BITS:HEX`.
    Syntax,
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardError::FacilityOutOfRange { max } => write!(f, "facility code out of range (0-{max})"),
            CardError::NumberOutOfRange { max } => write!(f, "card number out of range (0-{max})"),
            CardError::BitCount => f.write_str("bit count out of range (1-128)"),
            CardError::ValueTooWide => f.write_str("the value has more bits than the bit count"),
            CardError::Syntax => f.write_str("expected FACILITY:NUMBER (or BITS:HEX for a raw credential)"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CardError {}

impl CardFormat {
    pub const ALL: [CardFormat; 3] = [CardFormat::H10301, CardFormat::H10306, CardFormat::H10304];

    /// (total bits, number bits, last bit of the even-parity range, first bit of the odd one);
    /// the facility takes the bits between the leading parity bit and the number.
    const fn layout(self) -> (u8, u8, u8, u8) {
        match self {
            CardFormat::H10301 => (26, 16, 13, 14),
            CardFormat::H10306 => (34, 16, 17, 18),
            CardFormat::H10304 => (37, 19, 19, 19),
        }
    }

    pub const fn bits(self) -> u8 {
        self.layout().0
    }

    pub const fn max_facility(self) -> u32 {
        let (bits, nbits, _, _) = self.layout();
        (1 << (bits - 2 - nbits)) - 1
    }

    pub const fn max_number(self) -> u32 {
        (1 << self.layout().1) - 1
    }

    /// Name used on the command line and in the registry: `h10301`, `h10306`, `h10304`.
    pub const fn name(self) -> &'static str {
        match self {
            CardFormat::H10301 => "h10301",
            CardFormat::H10306 => "h10306",
            CardFormat::H10304 => "h10304",
        }
    }

    /// `h10301` or `26`, `h10306` or `34`, `h10304` or `37`.
    pub fn from_name(name: &str) -> Option<CardFormat> {
        CardFormat::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name) || name.parse() == Ok(f.bits()))
    }

    /// The credential for `facility` / `number`, parity included.
    pub fn encode(self, facility: u32, number: u32) -> Result<Card, CardError> {
        let (bits, nbits, even_end, odd_start) = self.layout();
        if facility > self.max_facility() {
            return Err(CardError::FacilityOutOfRange { max: self.max_facility() });
        }
        if number > self.max_number() {
            return Err(CardError::NumberOutOfRange { max: self.max_number() });
        }
        let value = ((u128::from(facility) << nbits) | u128::from(number)) << 1;
        let ones = |from: u8, to: u8| (from..=to).map(|i| bit(value, bits, i)).sum::<u128>();
        let even = ones(2, even_end) & 1;
        let odd = 1 ^ (ones(odd_start, bits - 1) & 1);
        Card::from_value(bits, value | (even << (bits - 1)) | odd)
    }

    /// Facility and number, if `card` is this format with both parity bits right.
    pub fn decode(self, card: &Card) -> Option<(u32, u32)> {
        let (bits, nbits, even_end, odd_start) = self.layout();
        if card.bits != bits {
            return None;
        }
        let value = card.value()?;
        let ones = |from: u8, to: u8| (from..=to).map(|i| bit(value, bits, i)).sum::<u128>();
        let parity_ok = ones(1, even_end) % 2 == 0 && ones(odd_start, bits) % 2 == 1;
        let payload = (value >> 1) & ((1u128 << (bits - 2)) - 1);
        parity_ok.then(|| ((payload >> nbits) as u32, (payload & ((1 << nbits) - 1)) as u32))
    }
}

/// Bit `i` (1-based, first sent) of a `bits`-long credential read as a number.
fn bit(value: u128, bits: u8, i: u8) -> u128 {
    (value >> (bits - i)) & 1
}

impl Card {
    /// The credential whose bits, read as a number (first bit most significant), are `value`.
    pub fn from_value(bits: u8, value: u128) -> Result<Card, CardError> {
        if bits == 0 || usize::from(bits) > CARD_BYTES * 8 {
            return Err(CardError::BitCount);
        }
        if bits < 128 && value >> bits != 0 {
            return Err(CardError::ValueTooWide);
        }
        let bytes = usize::from(bits).div_ceil(8);
        let aligned = value << (bytes * 8 - usize::from(bits));
        let mut data = heapless::Vec::new();
        for i in (0..bytes).rev() {
            // Cannot fail: at most CARD_BYTES bytes.
            let _ = data.push((aligned >> (i * 8)) as u8);
        }
        Ok(Card { bits, data })
    }

    /// The bits read as a number, first bit most significant (`None` if `data` is too short).
    pub fn value(&self) -> Option<u128> {
        let bytes = usize::from(self.bits).div_ceil(8);
        if self.bits == 0 || self.data.len() < bytes || bytes > CARD_BYTES {
            return None;
        }
        let aligned = self.data[..bytes].iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        Some(aligned >> (bytes * 8 - usize::from(self.bits)))
    }

    /// The format and facility/number this credential decodes as, if any.
    pub fn decode(&self) -> Option<(CardFormat, u32, u32)> {
        CardFormat::ALL.into_iter().find_map(|f| f.decode(self).map(|(fc, n)| (f, fc, n)))
    }

    /// `FACILITY:NUMBER` in `format`, or `BITS:HEX` (`raw`): what `facegate card` takes.
    pub fn parse(text: &str, format: CardFormat, raw: bool) -> Result<Card, CardError> {
        let (a, b) = text.trim().split_once(':').ok_or(CardError::Syntax)?;
        if raw {
            let bits: u8 = a.trim().parse().map_err(|_| CardError::BitCount)?;
            let hex = b.trim().trim_start_matches("0x").trim_start_matches("0X");
            if hex.is_empty() || hex.len() > 32 {
                return Err(CardError::Syntax);
            }
            let value = u128::from_str_radix(hex, 16).map_err(|_| CardError::Syntax)?;
            Card::from_value(bits, value)
        } else {
            let facility = a.trim().parse().map_err(|_| CardError::Syntax)?;
            let number = b.trim().parse().map_err(|_| CardError::Syntax)?;
            format.encode(facility, number)
        }
    }
}

/// `h10301 12:3456`, or `37 bits 0x1f2e...` for a credential of no known format.
impl fmt::Display for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.decode(), self.value()) {
            (Some((format, facility, number)), _) => write!(f, "{} {facility}:{number}", format.name()),
            (None, Some(v)) => write!(f, "{} bits 0x{v:x}", self.bits),
            (None, None) => write!(f, "{} bits (malformed)", self.bits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::ToString;

    /// A credential written out bit by bit, first bit first.
    fn bits(s: &str) -> Card {
        let s: heapless::String<128> = s.chars().filter(|c| *c != ' ').collect();
        Card::from_value(s.len() as u8, u128::from_str_radix(&s, 2).expect("binary")).expect("card")
    }

    #[test]
    fn h10301_examples_bit_for_bit() {
        //                                  P FFFFFFFF NNNNNNNNNNNNNNNN P
        assert_eq!(CardFormat::H10301.encode(1, 1), Ok(bits("1 00000001 0000000000000001 0")));
        assert_eq!(CardFormat::H10301.encode(255, 65535), Ok(bits("0 11111111 1111111111111111 1")));
        assert_eq!(CardFormat::H10301.encode(12, 3456), Ok(bits("0 00001100 0000110110000000 1")));
        assert_eq!(CardFormat::H10301.encode(0, 0), Ok(bits("0 00000000 0000000000000000 1")));
        // On the wire (OSDP card read): first bit in the top bit of the first byte.
        let card = CardFormat::H10301.encode(1, 1).expect("card");
        assert_eq!((card.bits, card.data.as_slice()), (26, &[0x80, 0x80, 0x00, 0x80][..]));
    }

    #[test]
    fn h10306_and_h10304_examples_bit_for_bit() {
        assert_eq!(CardFormat::H10306.encode(1, 1), Ok(bits("1 0000000000000001 0000000000000001 0")));
        assert_eq!(CardFormat::H10306.encode(65535, 65535), Ok(bits("0 1111111111111111 1111111111111111 1")));
        assert_eq!(CardFormat::H10304.encode(1, 1), Ok(bits("1 0000000000000001 0000000000000000001 0")));
        // Bit 19 counts for both parities: facility 0, number with only its second bit set.
        assert_eq!(CardFormat::H10304.encode(0, 1 << 17), Ok(bits("1 0000000000000000 0100000000000000000 0")));
    }

    #[test]
    fn out_of_range_is_refused_with_the_range() {
        assert_eq!(CardFormat::H10301.encode(256, 1), Err(CardError::FacilityOutOfRange { max: 255 }));
        assert_eq!(CardFormat::H10301.encode(1, 65536), Err(CardError::NumberOutOfRange { max: 65535 }));
        assert_eq!(CardFormat::H10304.encode(1, 524_288), Err(CardError::NumberOutOfRange { max: 524_287 }));
        assert_eq!(Card::from_value(0, 0), Err(CardError::BitCount));
        assert_eq!(Card::from_value(129, 0), Err(CardError::BitCount));
        assert_eq!(Card::from_value(4, 0x10), Err(CardError::ValueTooWide));
    }

    #[test]
    fn a_flipped_bit_fails_parity() {
        let card = CardFormat::H10301.encode(12, 3456).expect("card");
        let value = card.value().expect("value");
        for i in 0..26 {
            let flipped = Card::from_value(26, value ^ (1 << i)).expect("card");
            assert_eq!(CardFormat::H10301.decode(&flipped), None, "bit {i}");
        }
    }

    #[test]
    fn parse_and_display() {
        let card = Card::parse("12:3456", CardFormat::H10301, false).expect("card");
        assert_eq!(card.decode(), Some((CardFormat::H10301, 12, 3456)));
        assert_eq!(card.to_string(), "h10301 12:3456");
        let raw = Card::parse("35:0x1ABCDEF01", CardFormat::H10301, true).expect("raw");
        assert_eq!((raw.bits, raw.value()), (35, Some(0x1_abcd_ef01)));
        assert_eq!(raw.to_string(), "35 bits 0x1abcdef01");
        assert_eq!(Card::parse("12-3456", CardFormat::H10301, false), Err(CardError::Syntax));
        assert_eq!(Card::parse("x:1", CardFormat::H10301, false), Err(CardError::Syntax));
        assert_eq!(Card::parse("300:1", CardFormat::H10301, false), Err(CardError::FacilityOutOfRange { max: 255 }));
        assert_eq!(CardFormat::from_name("37"), Some(CardFormat::H10304));
        assert_eq!(CardFormat::from_name("H10306"), Some(CardFormat::H10306));
        assert_eq!(CardFormat::from_name("27"), None);
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(f in 0usize..3, facility in any::<u32>(), number in any::<u32>()) {
            let format = CardFormat::ALL[f];
            let (facility, number) = (facility % (format.max_facility() + 1), number % (format.max_number() + 1));
            let card = format.encode(facility, number).expect("in range");
            prop_assert_eq!(card.bits, format.bits());
            prop_assert_eq!(format.decode(&card), Some((facility, number)));
            prop_assert_eq!(card.decode(), Some((format, facility, number)));
        }

        #[test]
        fn raw_value_round_trips(n in 1u8..=128, value in any::<u128>()) {
            let value = if n == 128 { value } else { value & ((1u128 << n) - 1) };
            let card = Card::from_value(n, value).expect("fits");
            prop_assert_eq!(card.data.len(), usize::from(n).div_ceil(8));
            prop_assert_eq!(card.value(), Some(value));
        }
    }
}
