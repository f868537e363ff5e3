//! Card credentials: the card a door reports to its access-control panel when it grants a person
//! (one card per person, each card one person's), carried to devices with the sync.

use super::db::args;
use super::people::find_person_by_name;
use super::{Registry, RegistryError};
use facegate_proto::{Card, PersonId};

impl Registry {
    /// Gives the person `name` the card `card` (replacing their previous one).
    pub fn set_card(&mut self, name: &str, card: &Card) -> Result<PersonId, RegistryError> {
        let tx = self.write_tx()?;
        let person =
            find_person_by_name(&tx, name)?.ok_or_else(|| RegistryError::PersonNotFound(name.trim().into()))?;
        let owner: Option<PersonId> = tx
            .query_opt(
                "SELECT person_id FROM cards WHERE bits = ?1 AND data = ?2",
                args![card.bits, card.data.as_slice()],
            )?
            .map(|r| r.get(0))
            .transpose()?;
        if let Some(other) = owner.filter(|&o| o != person.id) {
            return Err(RegistryError::CardTaken { card: card.to_string(), person_id: other });
        }
        tx.execute(
            "INSERT INTO cards (person_id, bits, data) VALUES (?1, ?2, ?3)
             ON CONFLICT (person_id) DO UPDATE SET bits = excluded.bits, data = excluded.data",
            args![person.id, card.bits, card.data.as_slice()],
        )?;
        tx.commit()?;
        Ok(person.id)
    }

    /// Takes the person's card away; `false` if they had none.
    pub fn remove_card(&mut self, name: &str) -> Result<bool, RegistryError> {
        self.remove_person_row("cards", name)
    }

    /// Every person's card, by person id.
    pub fn cards(&self) -> Result<Vec<(PersonId, Card)>, RegistryError> {
        let rows = self.db.query("SELECT person_id, bits, data FROM cards ORDER BY person_id", &[])?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let (person, bits, data): (PersonId, u8, Vec<u8>) = (r.get(0)?, r.get(1)?, r.get(2)?);
            // The table's checks keep `data` within 16 bytes; a row edited around them is an error.
            let data = facegate_proto::heapless::Vec::from_slice(&data)
                .map_err(|()| RegistryError::MalformedCard { person_id: person })?;
            out.push((person, Card { bits, data }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_proto::CardFormat;

    #[test]
    fn one_card_per_person_and_one_person_per_card() {
        for place in crate::registry::tests::places() {
            let mut reg = place.open();
            let alice = reg.add_person("Alice").expect("alice").id;
            let bob = reg.add_person("Bob").expect("bob").id;
            let card = |n| CardFormat::H10301.encode(12, n).expect("in range");
            assert_eq!(reg.set_card("alice", &card(1)).expect("set"), alice);
            assert!(
                matches!(reg.set_card("Bob", &card(1)), Err(RegistryError::CardTaken { person_id, .. }) if person_id == alice)
            );
            reg.set_card("Alice", &card(2)).expect("replace");
            reg.set_card("Bob", &card(1)).expect("free now");
            let raw = Card::from_value(35, 0x1_abcd_ef01).expect("raw");
            let carol = reg.add_person("Carol").expect("carol").id;
            reg.set_card("Carol", &raw).expect("raw card");
            assert_eq!(reg.cards().expect("cards"), vec![(alice, card(2)), (bob, card(1)), (carol, raw)]);
            assert!(reg.remove_card("Carol").expect("remove"));
            assert!(!reg.remove_card("Carol").expect("nothing left"));
            assert!(matches!(reg.set_card("Dave", &card(5)), Err(RegistryError::PersonNotFound(_))));
            // Removing a person removes their card.
            reg.remove_person("Bob").expect("remove");
            assert_eq!(reg.cards().expect("cards"), vec![(alice, card(2))]);
        }
    }
}
