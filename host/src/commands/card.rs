//! `facegate card NAME FACILITY:NUMBER | --card-raw BITS:HEX | --remove`: the card credential a
//! door reports to its access-control panel when it grants this person.

use crate::registry::Registry;
use anyhow::{bail, Context, Result};
use clap::Args;
use facegate_proto::{Card, CardFormat};

/// How a card is given on the command line (shared by `card` and `enroll`).
#[derive(Debug, Clone, Args)]
pub struct CardSpec {
    /// The person's card as FACILITY:NUMBER in --card-format (default 26-bit H10301).
    #[arg(long = "card", value_name = "FACILITY:NUMBER", conflicts_with = "card_raw")]
    pub card: Option<String>,
    /// A card of another format as its bit count and value in hex, e.g. 35:1ABCDEF01.
    #[arg(long, value_name = "BITS:HEX")]
    pub card_raw: Option<String>,
    /// h10301 (26-bit), h10306 (34-bit) or h10304 (37-bit).
    #[arg(long, default_value = "h10301", value_parser = parse_format)]
    pub card_format: CardFormat,
}

fn parse_format(s: &str) -> Result<CardFormat, String> {
    CardFormat::from_name(s).ok_or_else(|| format!("unknown card format {s:?} (h10301, h10306 or h10304)"))
}

impl CardSpec {
    /// The card asked for, if any; a malformed or out-of-range one is an error naming the range.
    pub fn card(&self) -> Result<Option<Card>> {
        let (text, raw) = match (&self.card, &self.card_raw) {
            (Some(c), None) => (c, false),
            (None, Some(r)) => (r, true),
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => bail!("give --card or --card-raw, not both"),
        };
        let what = if raw { "BITS:HEX".to_owned() } else { format!("{} FACILITY:NUMBER", self.card_format.name()) };
        Card::parse(text, self.card_format, raw).map(Some).with_context(|| format!("card {text:?} ({what})"))
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  facegate card \"Ada Lovelace\" 12:3456\n  facegate card Bob 1000:70000 \
                        --card-format h10304\n  facegate card Carol --card-raw 35:1ABCDEF01\n  facegate card Bob --remove")]
pub struct CardArgs {
    /// The enrolled person.
    pub name: String,
    /// FACILITY:NUMBER in --card-format.
    #[arg(value_name = "FACILITY:NUMBER", conflicts_with_all = ["card_raw", "remove"])]
    pub number: Option<String>,
    /// A card of another format as its bit count and value in hex.
    #[arg(long, value_name = "BITS:HEX", conflicts_with = "remove")]
    pub card_raw: Option<String>,
    #[arg(long, default_value = "h10301", value_parser = parse_format)]
    pub card_format: CardFormat,
    /// Take the person's card away.
    #[arg(long)]
    pub remove: bool,
}

pub fn run(registry: &mut Registry, args: &CardArgs) -> Result<()> {
    let name = args.name.trim();
    if args.remove {
        let removed = registry.remove_card(name)?;
        let verb = if removed { "no longer has a card" } else { "had no card" };
        println!("{name} {verb}; run `facegate sync` to update devices");
        return Ok(());
    }
    let spec = CardSpec { card: args.number.clone(), card_raw: args.card_raw.clone(), card_format: args.card_format };
    let Some(card) = spec.card()? else { bail!("give the card as FACILITY:NUMBER, or --card-raw BITS:HEX") };
    let id = registry.set_card(name, &card).with_context(|| format!("giving {name} card {card}"))?;
    println!("{name} (id {id}) carries card {card}; run `facegate sync` to update devices");
    Ok(())
}
