//! Paired devices (with their keys, never printed) and the sync history.

use super::db::{args, Db, Row};
use super::templates::validate_model_id;
use super::{check_text, now_ms, Registry, RegistryError};
use facegate_proto::{Key, KEY_LEN};
use std::fmt;

/// [`SyncRecord::outcome`] of a sync whose `SyncCommit` the device accepted.
pub const OUTCOME_COMMITTED: &str = "committed";

pub(super) const DIGEST_LEN: usize = 32;

/// A paired device. `key` is the pairing secret: it never appears in `Debug` output.
#[derive(Clone)]
pub struct DeviceRecord {
    pub addr: String,
    pub device_id: String,
    pub model_id: String,
    pub key: Key,
    pub paired_ms: i64,
    /// Store generation after the last committed sync.
    pub last_generation: Option<u64>,
    /// [`SyncDigest`](facegate_proto::SyncDigest) of the template set last committed.
    pub last_digest: Option<[u8; DIGEST_LEN]>,
    pub last_sync_ms: Option<i64>,
}

impl fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("addr", &self.addr)
            .field("device_id", &self.device_id)
            .field("model_id", &self.model_id)
            .field("key", &format_args!("<redacted>"))
            .field("paired_ms", &self.paired_ms)
            .field("last_generation", &self.last_generation)
            .field("last_digest", &self.last_digest.map(hex::encode))
            .field("last_sync_ms", &self.last_sync_ms)
            .finish()
    }
}

/// One sync attempt, as kept in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    pub addr: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// Free-form outcome; [`OUTCOME_COMMITTED`] also updates the device's sync state.
    pub outcome: String,
    pub added: u32,
    pub removed: u32,
    pub changed: u32,
    /// Store generation reported by the device (required when committed).
    pub generation: Option<u64>,
    /// Digest of the template set sent (required when committed).
    pub digest: Option<[u8; DIGEST_LEN]>,
}

impl Registry {
    /// Records a (re-)pairing. If the address now holds a different device or model, its previous sync state is
    /// forgotten, since it describes another template store.
    pub fn upsert_device(
        &mut self,
        addr: &str,
        device_id: &str,
        model_id: &str,
        key: &Key,
    ) -> Result<(), RegistryError> {
        validate_addr(addr)?;
        validate_model_id(model_id)?;
        let stored = match &self.sealer {
            Some(sealer) => sealer.seal(addr, key)?,
            None => key.to_vec(),
        };
        self.db.execute(
            "INSERT INTO devices (addr, device_id, model_id, pairing_key, paired_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (addr) DO UPDATE SET
                 last_generation = CASE WHEN devices.device_id = excluded.device_id
                                         AND devices.model_id = excluded.model_id THEN devices.last_generation END,
                 last_digest = CASE WHEN devices.device_id = excluded.device_id
                                     AND devices.model_id = excluded.model_id THEN devices.last_digest END,
                 last_sync_ms = CASE WHEN devices.device_id = excluded.device_id
                                      AND devices.model_id = excluded.model_id THEN devices.last_sync_ms END,
                 device_id = excluded.device_id,
                 model_id = excluded.model_id,
                 pairing_key = excluded.pairing_key,
                 paired_ms = excluded.paired_ms",
            args![addr, device_id, model_id, stored.as_slice(), now_ms()],
        )?;
        tracing::info!(addr, device_id, model_id, "device paired");
        Ok(())
    }

    pub fn device(&self, addr: &str) -> Result<Option<DeviceRecord>, RegistryError> {
        let row = self.db.query_opt(&format!("{DEVICE_SELECT} WHERE addr = ?1"), args![addr])?;
        row.map(|r| self.device_from_row(&r)).transpose()
    }

    /// All paired devices, ordered by address.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, RegistryError> {
        let rows = self.db.query(&format!("{DEVICE_SELECT} ORDER BY addr"), &[])?;
        rows.iter().map(|r| self.device_from_row(r)).collect()
    }

    fn device_from_row(&self, r: &Row) -> Result<DeviceRecord, RegistryError> {
        let addr: String = r.get(0)?;
        let stored: Vec<u8> = r.get(3)?;
        let key = match &self.sealer {
            Some(sealer) => sealer.open(&addr, &stored)?,
            None => <Key>::try_from(stored.as_slice())
                .map_err(|_| RegistryError::Corrupt(format!("device {addr:?}: pairing key is not {KEY_LEN} bytes")))?,
        };
        let last_digest: Option<Vec<u8>> = r.get(6)?;
        Ok(DeviceRecord {
            device_id: r.get(1)?,
            model_id: r.get(2)?,
            key,
            paired_ms: r.get(4)?,
            last_generation: r.get::<Option<i64>>(5)?.map(generation_from_sql),
            last_digest: last_digest.map(|d| digest_from_blob("devices", &d)).transpose()?,
            last_sync_ms: r.get(7)?,
            addr,
        })
    }

    /// Appends `rec` to the sync history. A [`OUTCOME_COMMITTED`] record must carry the generation and digest and
    /// name a paired device, whose sync state is updated in the same transaction.
    pub fn record_sync(&mut self, rec: &SyncRecord) -> Result<(), RegistryError> {
        let committed = rec.outcome == OUTCOME_COMMITTED;
        let state = if committed {
            let generation =
                rec.generation.ok_or(RegistryError::InvalidSyncRecord("committed without a generation"))?;
            let digest = rec.digest.ok_or(RegistryError::InvalidSyncRecord("committed without a digest"))?;
            Some((generation, digest))
        } else {
            None
        };
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO sync_history
                 (addr, started_ms, finished_ms, outcome, added, removed, changed, generation, digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            args![
                &rec.addr,
                rec.started_ms,
                rec.finished_ms,
                &rec.outcome,
                rec.added,
                rec.removed,
                rec.changed,
                rec.generation.map(generation_to_sql),
                rec.digest.as_ref().map(|d| d.as_slice()),
            ],
        )?;
        if let Some((generation, digest)) = state {
            update_synced(&tx, &rec.addr, generation, &digest, rec.finished_ms.unwrap_or(rec.started_ms))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets a device's sync state directly (e.g. after reading it back from the device), stamped now.
    pub fn set_device_synced(&mut self, addr: &str, generation: u64, digest: [u8; 32]) -> Result<(), RegistryError> {
        update_synced(&self.db, addr, generation, &digest, now_ms())
    }

    /// The latest `limit` sync records of `addr`, newest first.
    pub fn sync_history(&self, addr: &str, limit: usize) -> Result<Vec<SyncRecord>, RegistryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.db.query(
            "SELECT addr, started_ms, finished_ms, outcome, added, removed, changed, generation, digest
             FROM sync_history WHERE addr = ?1 ORDER BY id DESC LIMIT ?2",
            args![addr, limit],
        )?;
        rows.iter()
            .map(|r| {
                let digest: Option<Vec<u8>> = r.get(8)?;
                Ok(SyncRecord {
                    addr: r.get(0)?,
                    started_ms: r.get(1)?,
                    finished_ms: r.get(2)?,
                    outcome: r.get(3)?,
                    added: r.get(4)?,
                    removed: r.get(5)?,
                    changed: r.get(6)?,
                    generation: r.get::<Option<i64>>(7)?.map(generation_from_sql),
                    digest: digest.map(|d| digest_from_blob("sync_history", &d)).transpose()?,
                })
            })
            .collect()
    }
}

pub(super) fn validate_addr(addr: &str) -> Result<(), RegistryError> {
    check_text(addr, None).map_err(|problem| RegistryError::InvalidAddress { addr: addr.into(), problem })
}

pub(super) fn digest_from_blob(table: &str, blob: &[u8]) -> Result<[u8; DIGEST_LEN], RegistryError> {
    <[u8; DIGEST_LEN]>::try_from(blob).map_err(|_| RegistryError::Corrupt(format!("{table}: digest is not 32 bytes")))
}

/// Generations are `u64` on the wire; SQLite integers are `i64`. Bit-casting is lossless both ways, and nothing
/// compares generations in SQL, so a device reporting a huge generation cannot make a record unstorable.
pub(super) fn generation_to_sql(g: u64) -> i64 {
    g as i64
}

pub(super) fn generation_from_sql(g: i64) -> u64 {
    g as u64
}

pub(super) fn update_synced(
    db: &Db,
    addr: &str,
    generation: u64,
    digest: &[u8; DIGEST_LEN],
    at_ms: i64,
) -> Result<(), RegistryError> {
    let n = db.execute(
        "UPDATE devices SET last_generation = ?2, last_digest = ?3, last_sync_ms = ?4 WHERE addr = ?1",
        args![addr, generation_to_sql(generation), digest.as_slice(), at_ms],
    )?;
    if n == 0 {
        return Err(RegistryError::DeviceNotFound(addr.into()));
    }
    Ok(())
}

pub(super) const DEVICE_SELECT: &str =
    "SELECT addr, device_id, model_id, pairing_key, paired_ms, last_generation, last_digest, last_sync_ms FROM devices";
