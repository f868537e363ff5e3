//! The registry's history: who did what, when, for the changes an administrator should be able
//! to account for later (an enrolment forced past the same-person check, ...).

use super::db::{args, Db};
use super::{now_ms, Registry, RegistryError};
use facegate_proto::PersonId;

/// One entry of the history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryRecord {
    pub at_ms: i64,
    /// Who: the operating-system user that ran the command.
    pub actor: String,
    /// What, as a short verb phrase, e.g. `enroll --force`.
    pub action: String,
    pub person_id: Option<PersonId>,
    pub detail: String,
}

/// What to write into the history alongside a change (the time and person are filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryNote {
    pub actor: String,
    pub action: String,
    pub detail: String,
}

impl HistoryNote {
    /// A note by the user running this process (`$USER`, else `$LOGNAME`, else the uid).
    pub fn by_current_user(action: &str, detail: String) -> HistoryNote {
        let actor = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            // SAFETY: getuid has no preconditions and cannot fail.
            .unwrap_or_else(|_| format!("uid {}", unsafe { libc::getuid() }));
        HistoryNote { actor, action: action.to_owned(), detail }
    }
}

pub(super) fn insert_note(db: &Db, note: &HistoryNote, person: Option<PersonId>) -> Result<(), RegistryError> {
    db.execute(
        "INSERT INTO history (at_ms, actor, action, person_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        args![now_ms(), &note.actor, &note.action, person, &note.detail],
    )?;
    Ok(())
}

impl Registry {
    /// The history, oldest first; only `person`'s entries when given.
    pub fn history(&self, person: Option<PersonId>) -> Result<Vec<HistoryRecord>, RegistryError> {
        let rows = match person {
            Some(p) => self.db.query(
                "SELECT at_ms, actor, action, person_id, detail FROM history WHERE person_id = ?1 ORDER BY id",
                args![p],
            )?,
            None => self.db.query("SELECT at_ms, actor, action, person_id, detail FROM history ORDER BY id", &[])?,
        };
        rows.iter()
            .map(|r| {
                Ok(HistoryRecord {
                    at_ms: r.get(0)?,
                    actor: r.get(1)?,
                    action: r.get(2)?,
                    person_id: r.get(3)?,
                    detail: r.get(4)?,
                })
            })
            .collect()
    }
}
