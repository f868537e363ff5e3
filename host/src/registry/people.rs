//! Enrolled people: names unique ignoring case, ids never reused.

use super::db::{args, is_unique_violation, Db, Row};
use super::{check_text, inserted_id, now_ms, Registry, RegistryError};
use facegate_proto::{PersonId, DISPLAY_NAME_LEN};

/// An enrolled person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    pub created_ms: i64,
    /// Number of templates (all models).
    pub templates: u32,
}

impl Registry {
    /// Adds a person. The name is trimmed and must be unique ignoring case.
    pub fn add_person(&mut self, name: &str) -> Result<Person, RegistryError> {
        let name = validate_name(name)?;
        let tx = self.write_tx()?;
        let person = insert_person(&tx, name, now_ms())?;
        tx.commit()?;
        Ok(person)
    }

    /// Looks a person up by name (ignoring case and surrounding whitespace).
    pub fn person(&self, name: &str) -> Result<Option<Person>, RegistryError> {
        find_person_by_name(&self.db, name)
    }

    pub fn person_by_id(&self, id: PersonId) -> Result<Option<Person>, RegistryError> {
        find_person_by_id(&self.db, id)
    }

    /// All people, ordered by name (ignoring case).
    pub fn people(&self) -> Result<Vec<Person>, RegistryError> {
        self.db.query(&format!("{PERSON_SELECT} ORDER BY p.name_key, p.id"), &[])?.iter().map(person_from_row).collect()
    }

    /// Renames a person; changing only the case of the name is allowed.
    pub fn rename_person(&mut self, old: &str, new: &str) -> Result<Person, RegistryError> {
        let new = validate_name(new)?;
        let tx = self.write_tx()?;
        let person = find_person_by_name(&tx, old)?.ok_or_else(|| RegistryError::PersonNotFound(old.trim().into()))?;
        tx.execute("UPDATE people SET name = ?1, name_key = ?2 WHERE id = ?3", args![new, name_key(new), person.id])
            .map_err(|e| duplicate_or(e, new))?;
        tx.commit()?;
        Ok(Person { name: new.to_owned(), ..person })
    }

    /// Removes a person and (by cascade) all their templates; returns how many templates went with them.
    pub fn remove_person(&mut self, name: &str) -> Result<u32, RegistryError> {
        let tx = self.write_tx()?;
        let person =
            find_person_by_name(&tx, name)?.ok_or_else(|| RegistryError::PersonNotFound(name.trim().into()))?;
        tx.execute("DELETE FROM people WHERE id = ?1", args![person.id])?;
        tx.commit()?;
        tracing::info!(person = person.id, templates = person.templates, "person removed");
        Ok(person.templates)
    }
}

impl Registry {
    /// Deletes the person `name`'s row of `table` (one of ours, keyed by `person_id`); `false`
    /// if they had none.
    pub(super) fn remove_person_row(&mut self, table: &'static str, name: &str) -> Result<bool, RegistryError> {
        let tx = self.write_tx()?;
        let person =
            find_person_by_name(&tx, name)?.ok_or_else(|| RegistryError::PersonNotFound(name.trim().into()))?;
        let removed = tx.execute(&format!("DELETE FROM {table} WHERE person_id = ?1"), args![person.id])? > 0;
        tx.commit()?;
        Ok(removed)
    }
}

/// Trims and validates a display name; returns the trimmed name.
pub(super) fn validate_name(raw: &str) -> Result<&str, RegistryError> {
    let name = raw.trim();
    check_text(name, Some(DISPLAY_NAME_LEN))
        .map_err(|problem| RegistryError::InvalidName { name: raw.into(), problem })?;
    Ok(name)
}

/// Key for case-insensitive uniqueness and lookup. Unicode lowercase (not full case folding or normalisation);
/// changing this rule needs a migration that recomputes `people.name_key`.
pub(super) fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

pub(super) const PERSON_SELECT: &str =
    "SELECT p.id, p.name, p.created_ms, (SELECT count(*) FROM templates t WHERE t.person_id = p.id) FROM people p";

pub(super) fn person_from_row(r: &Row) -> Result<Person, RegistryError> {
    Ok(Person { id: r.get(0)?, name: r.get(1)?, created_ms: r.get(2)?, templates: r.get(3)? })
}

pub(super) fn find_person_by_name(db: &Db, name: &str) -> Result<Option<Person>, RegistryError> {
    let sql = format!("{PERSON_SELECT} WHERE p.name_key = ?1");
    db.query_opt(&sql, args![name_key(name)])?.as_ref().map(person_from_row).transpose()
}

pub(super) fn find_person_by_id(db: &Db, id: PersonId) -> Result<Option<Person>, RegistryError> {
    let sql = format!("{PERSON_SELECT} WHERE p.id = ?1");
    db.query_opt(&sql, args![id])?.as_ref().map(person_from_row).transpose()
}

pub(super) fn duplicate_or(e: RegistryError, name: &str) -> RegistryError {
    if is_unique_violation(&e) {
        RegistryError::DuplicateName { name: name.into() }
    } else {
        e
    }
}

/// Inserts a validated (trimmed) name.
pub(super) fn insert_person(db: &Db, name: &str, now: i64) -> Result<Person, RegistryError> {
    let row = db
        .query_one(
            "INSERT INTO people (name, name_key, created_ms) VALUES (?1, ?2, ?3) RETURNING id",
            args![name, name_key(name), now],
        )
        .map_err(|e| duplicate_or(e, name))?;
    let id = inserted_id(&row, "person")?;
    Ok(Person { id, name: name.to_owned(), created_ms: now, templates: 0 })
}
