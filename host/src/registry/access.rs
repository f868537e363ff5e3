//! Access rules: groups of people, which groups each door lets in and when, and each person's
//! validity dates. [`Registry::door_access`] turns them into what one door receives.

use super::db::{args, Db, Row};
use super::people::{find_person_by_name, name_key, Person, PERSON_SELECT};
use super::{check_text, inserted_id, now_ms, Registry, RegistryError};
use facegate_proto::access::{parse_date, parse_schedule, Window, WINDOWS_PER_PERSON};
use facegate_proto::{AccessEntry, PersonId, DISPLAY_NAME_LEN};
use std::collections::BTreeMap;

/// An access group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    pub id: u32,
    pub name: String,
    pub members: u32,
}

/// One group a door lets in, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DoorRule {
    pub group: String,
    /// Canonical text (`Mon-Fri 07:00-19:00`), `always` for any time.
    pub schedule: String,
}

/// A person's validity dates, `YYYY-MM-DD`, inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Validity {
    pub from: Option<String>,
    pub until: Option<String>,
}

/// What one door receives: the people it lets in (all enrolled people when it was never given
/// a rule) and the rules of those who have any (validity dates, time windows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorAccess {
    /// The people it lets in (none when it has no group left); `None`: the door was never given
    /// a rule (or was opened to everyone again) and lets in everyone enrolled.
    pub people: Option<std::collections::BTreeSet<PersonId>>,
    /// Entries for the people with dates or windows, by person id.
    pub entries: Vec<AccessEntry>,
}

impl DoorAccess {
    /// Only its groups' members may pass (see [`DoorAccess::people`]).
    pub fn restricted(&self) -> bool {
        self.people.is_some()
    }

    pub fn admits(&self, person: PersonId) -> bool {
        self.people.as_ref().is_none_or(|p| p.contains(&person))
    }
}

/// `text` checked and written canonically (`always` for any time).
pub fn canonical_schedule(text: &str) -> Result<String, RegistryError> {
    let windows = parse_schedule(text)
        .map_err(|e| RegistryError::InvalidSchedule { schedule: text.to_owned(), problem: e.to_string() })?;
    Ok(if windows.is_empty() {
        "always".into()
    } else {
        windows.iter().map(Window::to_string).collect::<Vec<_>>().join("; ")
    })
}

fn check_date(text: &str) -> Result<String, RegistryError> {
    let text = text.trim();
    parse_date(text).map(|_| text.to_owned()).ok_or_else(|| RegistryError::InvalidDate(text.to_owned()))
}

fn find_group(db: &Db, name: &str) -> Result<Group, RegistryError> {
    let row = db.query_opt(&format!("{GROUP_SELECT} WHERE g.name_key = ?1"), args![name_key(name)])?;
    row.as_ref().map(group_from_row).transpose()?.ok_or_else(|| RegistryError::GroupNotFound(name.trim().to_owned()))
}

const GROUP_SELECT: &str = "SELECT g.id, g.name, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)
                            FROM access_groups g";

fn group_from_row(r: &Row) -> Result<Group, RegistryError> {
    Ok(Group { id: r.get(0)?, name: r.get(1)?, members: r.get(2)? })
}

impl Registry {
    /// Adds an access group; names are unique ignoring case.
    pub fn add_group(&mut self, name: &str) -> Result<Group, RegistryError> {
        let name = name.trim();
        check_text(name, Some(DISPLAY_NAME_LEN))
            .map_err(|problem| RegistryError::InvalidName { name: name.into(), problem })?;
        let tx = self.write_tx()?;
        let row = tx
            .query_one(
                "INSERT INTO access_groups (name, name_key, created_ms) VALUES (?1, ?2, ?3) RETURNING id",
                args![name, name_key(name), now_ms()],
            )
            .map_err(|e| match super::db::is_unique_violation(&e) {
                true => RegistryError::DuplicateGroup(name.into()),
                false => e,
            })?;
        let id = inserted_id(&row, "group")?;
        tx.commit()?;
        Ok(Group { id, name: name.into(), members: 0 })
    }

    /// Removes a group (its members stay enrolled; doors that let it in no longer do).
    pub fn remove_group(&mut self, name: &str) -> Result<(), RegistryError> {
        let tx = self.write_tx()?;
        let group = find_group(&tx, name)?;
        tx.execute("DELETE FROM access_groups WHERE id = ?1", args![group.id])?;
        tx.commit()
    }

    /// All groups, by name.
    pub fn groups(&self) -> Result<Vec<Group>, RegistryError> {
        self.db.query(&format!("{GROUP_SELECT} ORDER BY g.name_key"), &[])?.iter().map(group_from_row).collect()
    }

    /// Adds and removes members by name, in one transaction (an unknown name changes nothing).
    pub fn change_members(&mut self, group: &str, add: &[String], remove: &[String]) -> Result<Group, RegistryError> {
        let tx = self.write_tx()?;
        let g = find_group(&tx, group)?;
        let person = |name: &String| -> Result<Person, RegistryError> {
            find_person_by_name(&tx, name)?.ok_or_else(|| RegistryError::PersonNotFound(name.trim().into()))
        };
        for name in add {
            let p = person(name)?;
            tx.execute(
                "INSERT INTO group_members (group_id, person_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                args![g.id, p.id],
            )?;
        }
        for name in remove {
            let p = person(name)?;
            tx.execute("DELETE FROM group_members WHERE group_id = ?1 AND person_id = ?2", args![g.id, p.id])?;
        }
        let g = find_group(&tx, group)?;
        tx.commit()?;
        Ok(g)
    }

    /// A group's members, by name.
    pub fn members(&self, group: &str) -> Result<Vec<Person>, RegistryError> {
        let g = find_group(&self.db, group)?;
        let sql = format!(
            "{PERSON_SELECT} WHERE p.id IN (SELECT person_id FROM group_members WHERE group_id = ?1) ORDER BY p.name_key"
        );
        self.db.query(&sql, args![g.id])?.iter().map(super::people::person_from_row).collect()
    }

    /// Lets `group` through the paired device at `addr` on `schedule` (replacing its previous
    /// schedule there).
    pub fn allow(&mut self, addr: &str, group: &str, schedule: &str) -> Result<DoorRule, RegistryError> {
        let schedule = canonical_schedule(schedule)?;
        let tx = self.write_tx()?;
        let g = find_group(&tx, group)?;
        if tx.query_opt("SELECT 1 FROM devices WHERE addr = ?1", args![addr])?.is_none() {
            return Err(RegistryError::DeviceNotFound(addr.into()));
        }
        tx.execute(
            "INSERT INTO door_rules (addr, group_id, schedule) VALUES (?1, ?2, ?3)
             ON CONFLICT (addr, group_id) DO UPDATE SET schedule = excluded.schedule",
            args![addr, g.id, &schedule],
        )?;
        tx.execute("UPDATE devices SET restricted = 1 WHERE addr = ?1", args![addr])?;
        tx.commit()?;
        Ok(DoorRule { group: g.name, schedule })
    }

    /// Stops letting `group` through `addr`; `false` if it was not let through.
    pub fn disallow(&mut self, addr: &str, group: &str) -> Result<bool, RegistryError> {
        let tx = self.write_tx()?;
        let g = find_group(&tx, group)?;
        let n = tx.execute("DELETE FROM door_rules WHERE addr = ?1 AND group_id = ?2", args![addr, g.id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Lets everyone enrolled through `addr` again, at any time (its groups are forgotten).
    pub fn open_to_everyone(&mut self, addr: &str) -> Result<(), RegistryError> {
        let tx = self.write_tx()?;
        if tx.execute("UPDATE devices SET restricted = 0 WHERE addr = ?1", args![addr])? == 0 {
            return Err(RegistryError::DeviceNotFound(addr.into()));
        }
        tx.execute("DELETE FROM door_rules WHERE addr = ?1", args![addr])?;
        tx.commit()
    }

    /// Whether `addr` lets in only its groups' members (see [`DoorAccess::people`]).
    pub fn is_restricted(&self, addr: &str) -> Result<bool, RegistryError> {
        let row = self.db.query_opt("SELECT restricted FROM devices WHERE addr = ?1", args![addr])?;
        Ok(row.map(|r| r.get::<i64>(0)).transpose()?.is_some_and(|r| r != 0))
    }

    /// The groups `addr` lets in, by group name.
    pub fn door_rules(&self, addr: &str) -> Result<Vec<DoorRule>, RegistryError> {
        let rows = self.db.query(
            "SELECT g.name, r.schedule FROM door_rules r JOIN access_groups g ON g.id = r.group_id
             WHERE r.addr = ?1 ORDER BY g.name_key",
            args![addr],
        )?;
        rows.iter().map(|r| Ok(DoorRule { group: r.get(0)?, schedule: r.get(1)? })).collect()
    }

    /// Sets (or, both `None`, clears) a person's validity dates, `YYYY-MM-DD` inclusive.
    pub fn set_validity(&mut self, name: &str, validity: &Validity) -> Result<PersonId, RegistryError> {
        let from = validity.from.as_deref().map(check_date).transpose()?;
        let until = validity.until.as_deref().map(check_date).transpose()?;
        if let (Some(f), Some(u)) = (&from, &until) {
            if parse_date(f) > parse_date(u) {
                return Err(RegistryError::InvalidDate(format!("{f} is after {u}")));
            }
        }
        let tx = self.write_tx()?;
        let person =
            find_person_by_name(&tx, name)?.ok_or_else(|| RegistryError::PersonNotFound(name.trim().into()))?;
        tx.execute("DELETE FROM validity WHERE person_id = ?1", args![person.id])?;
        if from.is_some() || until.is_some() {
            tx.execute(
                "INSERT INTO validity (person_id, valid_from, valid_until) VALUES (?1, ?2, ?3)",
                args![person.id, from, until],
            )?;
        }
        tx.commit()?;
        Ok(person.id)
    }

    /// Every person's validity dates, by person id.
    pub fn validity(&self) -> Result<BTreeMap<PersonId, Validity>, RegistryError> {
        let rows = self.db.query("SELECT person_id, valid_from, valid_until FROM validity", &[])?;
        rows.iter().map(|r| Ok((r.get(0)?, Validity { from: r.get(1)?, until: r.get(2)? }))).collect()
    }

    /// What the door at `addr` receives: who it lets in, and their dates and windows there.
    pub fn door_access(&self, addr: &str) -> Result<DoorAccess, RegistryError> {
        let rows = self.db.query(
            "SELECT m.person_id, r.schedule FROM door_rules r JOIN group_members m ON m.group_id = r.group_id
             WHERE r.addr = ?1 ORDER BY m.person_id",
            args![addr],
        )?;
        // Per person: None = any time (some group of theirs is let in always), else the union.
        let mut windows: BTreeMap<PersonId, Option<Vec<Window>>> = BTreeMap::new();
        for r in &rows {
            let (person, schedule): (PersonId, String) = (r.get(0)?, r.get(1)?);
            let parsed = parse_schedule(&schedule)
                .map_err(|e| RegistryError::Corrupt(format!("door {addr:?}: schedule {schedule:?}: {e}")))?;
            let slot = windows.entry(person).or_insert_with(|| Some(Vec::new()));
            match (slot.as_mut(), parsed.is_empty()) {
                (_, true) => *slot = None,
                (Some(list), false) => {
                    list.extend(parsed.iter().filter(|w| !list.contains(w)).copied().collect::<Vec<_>>())
                }
                (None, false) => {}
            }
        }
        let validity = self.validity()?;
        let people =
            self.is_restricted(addr)?.then(|| windows.keys().copied().collect::<std::collections::BTreeSet<_>>());
        let mut entries = Vec::new();
        let everyone: Vec<PersonId> = match &people {
            Some(p) => p.iter().copied().collect(),
            None => validity.keys().copied().collect(),
        };
        for person in everyone {
            let dates = validity.get(&person).cloned().unwrap_or_default();
            let list = windows.get(&person).cloned().flatten().unwrap_or_default();
            if dates.from.is_none() && dates.until.is_none() && list.is_empty() {
                continue;
            }
            let windows = facegate_proto::heapless::Vec::from_slice(&list)
                .map_err(|()| RegistryError::TooManyWindows { person, max: WINDOWS_PER_PERSON })?;
            entries.push(AccessEntry {
                person_id: person,
                valid_from: dates.from.as_deref().and_then(parse_date),
                valid_until: dates.until.as_deref().and_then(parse_date),
                windows,
            });
        }
        Ok(DoorAccess { people, entries })
    }
}
