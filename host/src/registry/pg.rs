//! Opening a shared registry on PostgreSQL: the connection, the schema, and the registry key's
//! check.

use super::db::{args, Conn, Db};
use super::{Registry, RegistryError, RegistryKey};
use std::path::PathBuf;
use std::time::Duration;

/// How long a write waits for another administrator's write to finish.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `location` names a PostgreSQL registry rather than an SQLite file.
pub(super) fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// A registry location for messages: a PostgreSQL URL without its password, a path as it is.
pub fn shown_location(location: &str) -> String {
    match location.parse::<postgres::Config>() {
        Ok(config) if is_url(location) => display(&config),
        _ => location.to_owned(),
    }
}

/// `postgres://user@host/db`: the URL without its password, for messages.
fn display(config: &postgres::Config) -> String {
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(dir) => dir.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) if *port != 5432 => format!("{host}:{port}"),
                _ => host,
            }
        })
        .collect();
    format!("postgres://{user}{}/{}", hosts.join(","), config.get_dbname().unwrap_or(""))
}

impl Registry {
    /// Connects to the PostgreSQL registry at `url` (libpq-style: `postgres://user@host/db`, or a
    /// socket directory as `host=/run/postgresql`), creates or migrates its schema, and checks
    /// that `key` is the registry's key (the first to open a new registry sets it).
    pub fn open_postgres(url: &str, key: RegistryKey) -> Result<Registry, RegistryError> {
        let config: postgres::Config = url.parse()?;
        let location = PathBuf::from(display(&config));
        // No TLS here: a registry across a network is reached through a TLS-terminating proxy or
        // an SSH tunnel (docs/REGISTRY.md); the pairing keys are sealed either way.
        let client = config.connect(postgres::NoTls)?;
        let mut registry = Registry { db: Db::new(Conn::Postgres(Box::new(client))), location, sealer: Some(key) };
        registry.db.batch(&format!("SET lock_timeout = '{}s'", LOCK_TIMEOUT.as_secs()))?;
        registry.migrate()?;
        registry.check_key()?;
        Ok(registry)
    }

    fn check_key(&mut self) -> Result<(), RegistryError> {
        let Some(key) = self.sealer.clone() else { return Ok(()) };
        // Set once: read without the write lock, which only the first opener needs.
        let set: Option<Vec<u8>> = self.db.query_one("SELECT key_check FROM registry_meta", &[])?.get(0)?;
        match set {
            Some(check) if key.matches(&check) => return Ok(()),
            Some(_) => return Err(RegistryError::WrongRegistryKey),
            None => {}
        }
        let tx = self.db.write_tx()?;
        let check: Option<Vec<u8>> = tx.query_one("SELECT key_check FROM registry_meta", &[])?.get(0)?;
        match check {
            Some(check) if key.matches(&check) => Ok(()),
            Some(_) => Err(RegistryError::WrongRegistryKey),
            None => {
                tx.execute("UPDATE registry_meta SET key_check = ?1", args![key.check_value()?.as_slice()])?;
                tx.commit()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart_and_passwords_are_not_shown() {
        assert!(is_url("postgres://admin@db.example/facegate"));
        assert!(is_url("postgresql://localhost/facegate"));
        assert!(!is_url("/home/admin/registry.sqlite3"));
        assert!(!is_url("postgres.sqlite3"));
        let config: postgres::Config = "postgres://admin:secret@db.example:5433/facegate".parse().expect("url");
        assert_eq!(display(&config), "postgres://admin@db.example:5433/facegate");
        assert_eq!(
            shown_location("postgres://admin:secret@db.example/facegate"),
            "postgres://admin@db.example/facegate"
        );
    }
}
