//! One SQL connection, SQLite or PostgreSQL, behind the few calls the registry makes: statements
//! with `?N` parameters (rewritten to `$N` for PostgreSQL), rows of plain values, and a write
//! transaction that rolls back unless committed. Everything above this file is backend-neutral.

use super::RegistryError;
use std::cell::RefCell;

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<u8> for Value {
    fn from(v: u8) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// `args![a, b]`: statement parameters.
macro_rules! args {
    ($($x:expr),* $(,)?) => { &[$($crate::registry::db::Value::from($x)),*][..] };
}
pub(super) use args;

/// A value read back as a Rust type.
pub(super) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}
impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for u32 {
    fn from_value(v: &Value) -> Option<u32> {
        i64::from_value(v).and_then(|i| u32::try_from(i).ok())
    }
}
impl FromValue for u8 {
    fn from_value(v: &Value) -> Option<u8> {
        i64::from_value(v).and_then(|i| u8::try_from(i).ok())
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<f64> {
        match v {
            Value::Real(f) => Some(*f),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug)]
pub(super) struct Row(Vec<Value>);

impl Row {
    /// Column `i` as `T`; a missing column or another type is a corrupt registry (the schema's
    /// types and checks rule it out).
    pub(super) fn get<T: FromValue>(&self, i: usize) -> Result<T, RegistryError> {
        let v = self.0.get(i).ok_or_else(|| RegistryError::Corrupt(format!("column {i} missing")))?;
        T::from_value(v).ok_or_else(|| {
            RegistryError::Corrupt(format!("column {i} holds {v:?}, not a {}", std::any::type_name::<T>()))
        })
    }
}

pub(super) enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

/// The connection. Not `Sync`; a registry is opened per thread or process.
pub(super) struct Db {
    conn: RefCell<Conn>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &*self.conn.borrow() {
            Conn::Sqlite(_) => "sqlite",
            Conn::Postgres(_) => "postgres",
        };
        f.debug_struct("Db").field("backend", &kind).finish()
    }
}

/// The advisory lock every PostgreSQL write transaction takes first, so writers queue as they
/// do on SQLite's `BEGIN IMMEDIATE` ("FGRG").
pub(super) const PG_WRITE_LOCK: i64 = 0x4647_5247;

impl Db {
    pub(super) fn new(conn: Conn) -> Db {
        Db { conn: RefCell::new(conn) }
    }

    pub(super) fn is_postgres(&self) -> bool {
        matches!(&*self.conn.borrow(), Conn::Postgres(_))
    }

    /// Runs the SQLite connection's own calls (pragmas, file checks); `None` on PostgreSQL.
    pub(super) fn with_sqlite<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> T) -> Option<T> {
        match &*self.conn.borrow() {
            Conn::Sqlite(c) => Some(f(c)),
            Conn::Postgres(_) => None,
        }
    }

    /// Statements without parameters or results (DDL), in one go.
    pub(super) fn batch(&self, sql: &str) -> Result<(), RegistryError> {
        match &mut *self.conn.borrow_mut() {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => Ok(c.batch_execute(sql)?),
        }
    }

    /// Rows changed.
    pub(super) fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, RegistryError> {
        match &mut *self.conn.borrow_mut() {
            Conn::Sqlite(c) => Ok(c.execute(sql, rusqlite::params_from_iter(params.iter()))? as u64),
            Conn::Postgres(c) => Ok(c.execute(&dollar_params(sql), &pg_params(params))?),
        }
    }

    pub(super) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, RegistryError> {
        match &mut *self.conn.borrow_mut() {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare(sql)?;
                let n = stmt.column_count();
                let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    (0..n).map(|i| r.get_ref(i).map(sqlite_value)).collect::<rusqlite::Result<Vec<_>>>().map(Row)
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Conn::Postgres(c) => {
                let rows = c.query(&dollar_params(sql), &pg_params(params))?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    pub(super) fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, RegistryError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    pub(super) fn query_one(&self, sql: &str, params: &[Value]) -> Result<Row, RegistryError> {
        self.query_opt(sql, params)?.ok_or_else(|| RegistryError::Corrupt(format!("no row from {sql:?}")))
    }

    /// A write transaction: SQLite's `BEGIN IMMEDIATE` (waits for the file lock), PostgreSQL's
    /// `BEGIN` and the registry's advisory lock (waits for the other writer), so a read-then-write
    /// inside sees no other writer's change in between.
    pub(super) fn write_tx(&self) -> Result<Tx<'_>, RegistryError> {
        if self.is_postgres() {
            self.batch("BEGIN")?;
            let tx = Tx { db: self, done: false };
            tx.execute("SELECT pg_advisory_xact_lock(?1)", args![PG_WRITE_LOCK])?;
            Ok(tx)
        } else {
            self.batch("BEGIN IMMEDIATE")?;
            Ok(Tx { db: self, done: false })
        }
    }
}

/// An open write transaction; dropped without [`Tx::commit`], it rolls back.
pub(super) struct Tx<'a> {
    db: &'a Db,
    done: bool,
}

impl Tx<'_> {
    pub(super) fn commit(mut self) -> Result<(), RegistryError> {
        self.done = true;
        self.db.batch("COMMIT")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.db.batch("ROLLBACK") {
                tracing::warn!(error = %e, "registry rollback failed");
            }
        }
    }
}

/// Whether `e` is a unique-constraint violation, on either backend.
pub(super) fn is_unique_violation(e: &RegistryError) -> bool {
    match e {
        RegistryError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        }
        RegistryError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
        _ => false,
    }
}

/// `?N` (SQLite's numbered parameters) as `$N`. The registry's SQL has no `?` in literals.
fn dollar_params(sql: &str) -> String {
    sql.replace('?', "$")
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        // STRICT tables hold valid UTF-8 in TEXT columns; anything else is kept visible, not dropped.
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match self {
            Value::Null => Ok(postgres::types::IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        // The value's own `to_sql` refuses a type it cannot be sent as.
        true
    }

    postgres::types::to_sql_checked!();
}

fn pg_params(params: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect()
}

fn pg_row(row: &postgres::Row) -> Result<Row, RegistryError> {
    use postgres::types::Type;
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let v = match *col.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(i64::from(v))),
            Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(|v| Value::Int(i64::from(v))),
            Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(|v| Value::Int(i64::from(v))),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Value::Real),
            Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(|v| Value::Real(f64::from(v))),
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
                row.try_get::<_, Option<String>>(i)?.map(Value::Text)
            }
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
            ref other => return Err(RegistryError::Corrupt(format!("column {} has type {other}", col.name()))),
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_become_dollars() {
        assert_eq!(
            dollar_params("SELECT a FROM t WHERE b = ?1 AND c = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = $12"
        );
    }

    #[test]
    fn values_read_back_as_their_types_only() {
        let row = Row(vec![Value::Int(7), Value::Null, Value::Text("x".into()), Value::Int(-1)]);
        assert_eq!(row.get::<u32>(0).ok(), Some(7));
        assert_eq!(row.get::<Option<i64>>(1).ok(), Some(None));
        assert_eq!(row.get::<String>(2).ok().as_deref(), Some("x"));
        assert!(row.get::<i64>(2).is_err(), "text is not an integer");
        assert!(row.get::<u32>(3).is_err(), "a negative id is corrupt, not wrapped");
        assert!(row.get::<i64>(9).is_err());
    }
}
