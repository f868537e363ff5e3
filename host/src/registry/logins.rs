//! Unix logins: which enrolled person unlocks which account (one login per person, each login
//! one person), carried to devices with the sync.

use super::db::args;
use super::people::find_person_by_name;
use super::{Registry, RegistryError};
use facegate_proto::{PersonId, LOGIN_LEN};

impl Registry {
    /// Maps `login` to the person `name` (replacing that person's previous login).
    pub fn set_login(&mut self, name: &str, login: &str) -> Result<PersonId, RegistryError> {
        check_login(login)?;
        let tx = self.write_tx()?;
        let person =
            find_person_by_name(&tx, name)?.ok_or_else(|| RegistryError::PersonNotFound(name.trim().into()))?;
        let owner: Option<PersonId> = tx
            .query_opt("SELECT person_id FROM logins WHERE login = ?1", args![login])?
            .map(|r| r.get(0))
            .transpose()?;
        if let Some(other) = owner.filter(|&o| o != person.id) {
            return Err(RegistryError::LoginTaken { login: login.to_owned(), person_id: other });
        }
        tx.execute("DELETE FROM logins WHERE person_id = ?1", args![person.id])?;
        tx.execute("INSERT INTO logins (login, person_id) VALUES (?1, ?2)", args![login, person.id])?;
        tx.commit()?;
        Ok(person.id)
    }

    /// Takes the person's login away; `false` if they had none.
    pub fn remove_login(&mut self, name: &str) -> Result<bool, RegistryError> {
        self.remove_person_row("logins", name)
    }

    /// Every login and its person, by login.
    pub fn logins(&self) -> Result<Vec<(String, PersonId)>, RegistryError> {
        let rows = self.db.query("SELECT login, person_id FROM logins ORDER BY login", &[])?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
    }
}

/// A Unix login as `useradd` accepts it: a lower-case letter or `_` first, then lower-case
/// letters, digits, `_`, `-` (and a final `$` for machine accounts), at most 32 bytes.
pub fn check_login(login: &str) -> Result<(), RegistryError> {
    let bad = |problem: &str| Err(RegistryError::InvalidLogin { login: login.to_owned(), problem: problem.to_owned() });
    if login.is_empty() || login.len() > LOGIN_LEN {
        return bad("must be 1 to 32 characters");
    }
    let body = login.strip_suffix('$').unwrap_or(login);
    let mut chars = body.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_') {
        return bad("must start with a lower-case letter or _");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
        return bad("may hold only lower-case letters, digits, _ and -");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_checked_like_useradd_does() {
        for ok in ["alice", "_svc", "bob-2", "host$", "a"] {
            assert!(check_login(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Alice", "1abc", "a b", "a/b", &"x".repeat(33), "al;ice"] {
            assert!(check_login(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_login_per_person_and_one_person_per_login() {
        for place in crate::registry::tests::places() {
            let mut reg = place.open();
            let alice = reg.add_person("Alice").expect("alice").id;
            let bob = reg.add_person("Bob").expect("bob").id;
            assert_eq!(reg.set_login("alice", "alice").expect("set"), alice);
            assert!(
                matches!(reg.set_login("Bob", "alice"), Err(RegistryError::LoginTaken { person_id, .. }) if person_id == alice)
            );
            reg.set_login("Alice", "al").expect("change");
            reg.set_login("Bob", "alice").expect("free now");
            assert_eq!(reg.logins().expect("logins"), vec![("al".to_owned(), alice), ("alice".to_owned(), bob)]);
            assert!(matches!(reg.set_login("Carol", "carol"), Err(RegistryError::PersonNotFound(_))));
            // Removing a person removes their login.
            reg.remove_person("Bob").expect("remove");
            assert_eq!(reg.logins().expect("logins"), vec![("al".to_owned(), alice)]);
            assert!(reg.remove_login("Alice").expect("remove login"));
            assert!(!reg.remove_login("Alice").expect("nothing left"));
            assert!(reg.logins().expect("logins").is_empty());
        }
    }
}
